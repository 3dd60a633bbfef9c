//! A reviewer's decisions on a claim at their stage (审核): approve (at the association's
//! stage, with the amount), return for more material, reject with a reason code. Each answers
//! with the claim as it now stands.

use actix_web::{post, web};
use serde::Deserialize;
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::claims::viewer;
use super::validated;
use crate::auth::Principal;
use crate::domain::Money;
use crate::error::{ApiError, ErrorBody};
use crate::service::claim::ReturnRequest;
use crate::service::claim::approval::Adjustment;
use crate::service::claim::review::RejectReason;
use crate::service::claim::view::{self, ClaimDetail};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(approve).service(return_claim).service(reject);
}

/// `POST /claims/{id}/approve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 7, "amount": "5000.00", "adjustment_reason": "发票金额与清单不符，按清单核定"}))]
pub struct ApproveRequest {
    pub version: i32,
    /// The association only: pay this instead of what the rules give (lower, never higher).
    pub amount: Option<Money>,
    /// Required with `amount`.
    pub adjustment_reason: Option<String>,
}

/// Approves the claim at the caller's stage. At the association's stage the engine judges it
/// against everything already approved in the member's period (one at a time per period) and
/// the amount, scheme version and breakdown are stored; before that, it moves to the next stage.
#[utoipa::path(
    operation_id = "approveClaim",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body = ApproveRequest,
    responses(
        (status = 200, body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`same_reviewer`: four eyes — you filed the claim, changed its payee card or approved another of its stages, so another reviewer of the stage must approve; `forbidden`: not your stage", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`version_conflict`, `invalid_transition`", body = ErrorBody),
        (status = 422, description = "`claim_not_payable` (details.refused: reject it), `scheme_incomplete`, `adjustment_out_of_range`, `reason_required`, `materials_missing` (appraisal certificate)", body = ErrorBody),
    )
)]
#[post("/claims/{id}/approve")]
pub async fn approve(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<ApproveRequest>,
    request_id: RequestId,
) -> Result<web::Json<ClaimDetail>, ApiError> {
    principal.require_staff()?;
    let body = body.into_inner();
    let adjustment = match (body.amount, body.adjustment_reason) {
        (Some(amount), reason) => Some(Adjustment {
            amount,
            reason: reason.unwrap_or_default(),
        }),
        (None, Some(_)) => {
            return Err(ApiError::invalid_field(
                "amount",
                "调整原因须与金额一起提交 / a reason goes with an amount",
            ));
        }
        (None, None) => None,
    };
    let detail = view::approve(
        &state.db,
        state.calendar.as_deref(),
        &viewer(&state, &principal),
        &id,
        body.version,
        adjustment,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail))
}

/// `POST /claims/{id}/return`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 6, "message": "发票照片模糊，请重新拍摄后提交", "materials": [{"category": "invoice", "note": "请重拍发票，保证四角完整、字迹清晰"}]}))]
pub struct ReturnRequestBody {
    pub version: i32,
    /// What the member should do, shown on the phone and sent by SMS.
    #[validate(length(min = 1, max = 500))]
    pub message: String,
    /// The materials to photograph again, each with a note.
    #[serde(default)]
    pub materials: Vec<ReturnRequest>,
}

/// Returns the claim for more material; the member resubmits into the same stage's queue.
#[utoipa::path(
    operation_id = "returnClaim",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body = ReturnRequestBody,
    responses(
        (status = 200, body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`version_conflict`, `invalid_transition`", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/claims/{id}/return")]
pub async fn return_claim(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<ReturnRequestBody>,
    request_id: RequestId,
) -> Result<web::Json<ClaimDetail>, ApiError> {
    principal.require_staff()?;
    let body = validated(body.into_inner())?;
    let detail = view::return_claim(
        &state.db,
        &viewer(&state, &principal),
        &id,
        body.version,
        body.message,
        body.materials,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail))
}

/// `POST /claims/{id}/reject`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 6, "reason": "excluded_traffic_accident", "note": "交通事故所致，属除外责任"}))]
pub struct RejectRequest {
    pub version: i32,
    pub reason: RejectReason,
    /// Required for `other`.
    #[validate(length(max = 500))]
    pub note: Option<String>,
}

/// Rejects the claim with a reason code (each exclusion has its own).
#[utoipa::path(
    operation_id = "rejectClaim",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body = RejectRequest,
    responses(
        (status = 200, body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`version_conflict`, `invalid_transition`", body = ErrorBody),
        (status = 422, description = "`note_required`", body = ErrorBody),
    )
)]
#[post("/claims/{id}/reject")]
pub async fn reject(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<RejectRequest>,
    request_id: RequestId,
) -> Result<web::Json<ClaimDetail>, ApiError> {
    principal.require_staff()?;
    let body = validated(body.into_inner())?;
    let detail = view::reject(
        &state.db,
        &viewer(&state, &principal),
        &id,
        body.version,
        body.reason,
        body.note,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail))
}
