//! `POST /simulations`: "how much will I get?" — the same engine that pays real claims, on the
//! newest published version of the scheme. No sign-in: it reads no personal data.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, post, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::engine::{SimulationErrorBody, SimulationRequest, SimulationResponse};
use crate::error::ApiError;
use crate::service::simulation;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(simulate);
}

/// Judges a member's events of one period in order and returns each breakdown. The CLI
/// `huzhu simulate FILE` answers byte for byte the same.
#[utoipa::path(
    operation_id = "simulate",
    tag = "simulations",
    request_body = SimulationRequest,
    responses(
        (status = 200, body = SimulationResponse),
        (status = 422, description = "`unknown_scheme`, `scheme_incomplete` (`details.missing`) or `invalid_request` (`details.field`); nothing is computed", body = SimulationErrorBody),
    )
)]
#[post("/simulations")]
pub async fn simulate(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let outcome = simulation::simulate_bytes(&state.db, &body).await?;
    let status = if outcome.accepted {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(HttpResponse::build(status)
        .content_type("application/json")
        .body(outcome.body))
}
