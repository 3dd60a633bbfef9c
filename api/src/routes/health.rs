//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::service::health;
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
    let readiness = health::readiness(&state.db, state.redis.as_ref(), &state.storage).await;
    let describe = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(_) => json!("unreachable"),
    };
    let checks = json!({
        "database": describe(&readiness.database),
        "redis": readiness.redis.as_ref().map(describe).unwrap_or(json!("not_configured")),
        "storage": describe(&readiness.storage),
    });
    let failures = readiness.failures();
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
