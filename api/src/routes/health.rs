//! Liveness and readiness for load balancers and orchestrators.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Liveness answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Readiness: every dependency answered.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// `ok` or `not_configured` per dependency.
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
}

/// The process is alive (no dependency is checked).
#[utoipa::path(operation_id = "healthz", tag = "health", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

async fn check<F, E>(fut: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// The database, Redis (when configured) and the object store all answer.
#[utoipa::path(
    operation_id = "readyz",
    tag = "health",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "a dependency is unreachable (`not_ready`, `details.checks`)", body = ErrorBody)
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let database = check(state.db.ping()).await;
    let redis = match &state.redis {
        Some(conn) => {
            let mut conn = conn.clone();
            Some(
                check(async move {
                    redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .map(|_| ())
                })
                .await,
            )
        }
        None => None,
    };
    let storage = check(state.storage.check()).await;

    let describe = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(_) => json!("unreachable"),
    };
    let checks = json!({
        "database": describe(&database),
        "redis": redis.as_ref().map(describe).unwrap_or(json!("not_configured")),
        "storage": describe(&storage),
    });
    let failures: Vec<String> = [
        ("database", Some(&database)),
        ("redis", redis.as_ref()),
        ("storage", Some(&storage)),
    ]
    .into_iter()
    .filter_map(|(name, r)| match r {
        Some(Err(e)) => Some(format!("{name}: {e}")),
        _ => None,
    })
    .collect();
    if failures.is_empty() {
        Ok(HttpResponse::Ok().json(Readiness {
            status: "ready",
            checks,
        }))
    } else {
        tracing::warn!(failures = ?failures, "not ready");
        Ok(HttpResponse::ServiceUnavailable().json(json!({
            "error": {
                "code": "not_ready",
                "message": "a dependency is unreachable",
                "details": { "checks": checks }
            }
        })))
    }
}
