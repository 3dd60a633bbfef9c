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

/// Readiness: the database answered; `degraded` when an optional dependency did not.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `degraded` when Redis or the object store does not answer (the replica still
    /// serves: the in-process fallbacks stand in for Redis, and only photos and exports need
    /// the store).
    #[schema(example = "ready")]
    pub status: &'static str,
    /// `ok`, `unreachable` or `not_configured` per dependency.
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
}

/// The process is alive (no dependency is checked).
#[utoipa::path(operation_id = "healthz", tag = "health", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// Whether this replica can serve: `503` only without the database (a load balancer then
/// takes it out); Redis or the object store not answering is reported as `degraded` with `200`,
/// so one shared dependency's outage does not take every replica out at once.
#[utoipa::path(
    operation_id = "readyz",
    tag = "health",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "`not_ready`: the database is unreachable (`details.checks`)", body = ErrorBody)
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
    if readiness.database.is_ok() {
        if !failures.is_empty() {
            tracing::warn!(failures = ?failures, "degraded");
        }
        Ok(HttpResponse::Ok().json(Readiness {
            status: if failures.is_empty() {
                "ready"
            } else {
                "degraded"
            },
            checks,
        }))
    } else {
        tracing::warn!(failures = ?failures, "not ready");
        Ok(HttpResponse::ServiceUnavailable()
            .insert_header((
                actix_web::http::header::RETRY_AFTER,
                crate::middleware::RETRY_AFTER_SECONDS,
            ))
            .json(json!({
                "error": {
                    "code": "not_ready",
                    "message": "a dependency is unreachable",
                    "details": { "checks": checks }
                }
            })))
    }
}
