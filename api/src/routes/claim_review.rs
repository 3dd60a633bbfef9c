//! A reviewer's decisions on a claim at their stage (审核): approve (at the association's
//! stage, with the amount), return for more material, reject with a reason code. Each answers
//! with the claim as it now stands. Offers (免申即享) at the association's stage may also be
//! approved in bulk, with a summary back.

use actix_web::{post, web};
use serde::{Deserialize, Serialize};
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::claims::viewer;
use super::validated;
use crate::auth::Principal;
use crate::domain::Money;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::service::claim::approval::{self, Adjustment, BULK_MAX};
use crate::service::claim::review::RejectReason;
use crate::service::claim::view::{self, ClaimDetail};
use crate::service::claim::{ClaimStatus, ReturnRequest};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(approve_offers)
        .service(approve)
        .service(return_claim)
        .service(reject);
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

/// One offer of a bulk approval, at the version the officer read it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListedClaim {
    /// The claim's public id.
    pub id: String,
    pub version: i32,
}

/// `POST /claims/approve-offers`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"claims": [{"id": "0193a4c2-7d1e-7c11-9a0e-3f6a1b2c4d5e", "version": 3}, {"id": "0193a4c2-8e2f-7d22-8b1f-4a7b2c3d5e6f", "version": 3}]}))]
pub struct ApproveOffersRequest {
    /// 1 to 100 offers, as listed by `GET /claims?status=association_review`.
    #[validate(length(min = 1, max = BULK_MAX, message = "一次批量审批 1 至 100 件 / 1 to 100 claims at a time"))]
    pub claims: Vec<ListedClaim>,
}

/// An offer the bulk approval approved.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovedOffer {
    pub id: String,
    /// The claim's version after the approval.
    pub version: i32,
    /// `approved`, or `closed` when the period's earlier claims leave it nothing.
    pub status: ClaimStatus,
    pub approved: Money,
}

/// An offer the bulk approval left as it was, with the error its single approval would give.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedOffer {
    pub id: String,
    pub error: ErrorDetail,
}

/// What a bulk approval did, claim by claim.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkApprovalSummary {
    /// In the order of the request.
    pub approved: Vec<ApprovedOffer>,
    /// In the order of the request.
    pub skipped: Vec<SkippedOffer>,
    /// The sum approved.
    pub approved_total: Money,
}

/// Approves offered claims (免申即享) waiting at the association's review, each exactly as
/// `approveClaim` would without an adjustment — judged under its period's lock in its own
/// transaction, in filing order — and answers what became of each. A claim that cannot be
/// approved is skipped, unchanged, with the error its single approval would give:
/// `version_conflict` (details.current_version), `not_an_offer` (an application: approve it
/// alone), `invalid_transition` (details.status: not at the association's review),
/// `not_found`, `claim_not_payable` (details.refused: reject it), `scheme_incomplete`,
/// `same_reviewer`. To lower an amount, approve that claim alone with an adjustment.
#[utoipa::path(
    operation_id = "approveOffers",
    tag = "claims",
    security(("bearer" = [])),
    request_body = ApproveOffersRequest,
    responses(
        (status = 200, body = BulkApprovalSummary),
        (status = 401, body = ErrorBody),
        (status = 403, description = "not an association reviewer", body = ErrorBody),
        (status = 422, description = "`invalid_request`: no claim, or more than 100", body = ErrorBody),
    )
)]
#[post("/claims/approve-offers")]
pub async fn approve_offers(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<ApproveOffersRequest>,
    request_id: RequestId,
) -> Result<web::Json<BulkApprovalSummary>, ApiError> {
    principal.require_staff()?;
    let body = validated(body.into_inner())?;
    let listed: Vec<(String, i32)> = body.claims.into_iter().map(|c| (c.id, c.version)).collect();
    let viewer = viewer(&state, &principal);
    let outcomes = approval::approve_offers(
        &state.db,
        state.calendar.as_deref(),
        &viewer.caller,
        &listed,
        viewer.today,
        Some(request_id.to_string()),
    )
    .await?;
    let mut summary = BulkApprovalSummary {
        approved: Vec::new(),
        skipped: Vec::new(),
        approved_total: Money::ZERO,
    };
    for (id, outcome) in outcomes {
        match outcome {
            Ok(c) => {
                let approved = Money::from_fen(c.approved_fen.unwrap_or(0));
                summary.approved_total = summary.approved_total + approved;
                summary.approved.push(ApprovedOffer {
                    id,
                    version: c.version,
                    status: c.status,
                    approved,
                });
            }
            Err(e) => {
                let e = ApiError::from(e);
                if let ApiError::Internal(cause) = &e {
                    tracing::error!(claim = %id, error = ?cause, "bulk approval of an offer failed");
                }
                summary.skipped.push(SkippedOffer {
                    id,
                    error: e.detail(),
                });
            }
        }
    }
    Ok(web::Json(summary))
}
