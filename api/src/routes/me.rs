//! The signed-in account: who am I, and binding my phone number through WeChat.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::auth::account_error;
use super::deductions::{DeductionLineResponse, RefundResponse};
use super::members::MemberResponse;
use super::{OrganisationRef, requester, validated};
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::service::account::{self, Account};
use crate::service::deduction;
use crate::service::session::{self, AccountKind};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(me)
        .service(bind_phone)
        .service(revoke_sessions)
        .service(my_deductions);
}

/// The signed-in account.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "01a20a3f-c83a-7490-8427-03dbeb5b04c3", "role": "member", "name": "李文博", "organisation": {"id": "01a20a3f-c837-71ba-ac19-f43e6b4f0bb6", "name": "内蒙古电力（集团）有限责任公司工会"}, "member": {"id": "01a20a3f-c83a-7490-8427-03dbeb5b04c3", "organisation": {"id": "01a20a3f-c837-71ba-ac19-f43e6b4f0bb6", "name": "内蒙古电力（集团）有限责任公司工会"}, "name": "李文博", "id_number": "1501**********1011", "sex": "male", "birth_date": "1977-02-04", "phone": "139****0001", "bank_card": null, "retired": false, "wechat_bound": false}}))]
pub struct MeResponse {
    /// Public id of the account.
    pub id: String,
    pub role: Role,
    pub name: String,
    pub organisation: Option<OrganisationRef>,
    /// For members: their own record (personal numbers masked).
    pub member: Option<MemberResponse>,
}

/// Who is signed in.
#[utoipa::path(
    operation_id = "getMe",
    tag = "me",
    security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody))
)]
#[get("/me")]
pub async fn me(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<MeResponse>, ApiError> {
    let found = account::current(
        &state.db,
        &state.pii,
        &principal.scope,
        &principal.subject,
        principal.role,
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    Ok(web::Json(match found {
        Account::Member(m) => MeResponse {
            id: m.pid.clone(),
            role: Role::Member,
            name: m.name.as_str().to_owned(),
            organisation: Some(OrganisationRef {
                id: m.organisation_pid.clone(),
                name: m.organisation_name.clone(),
            }),
            member: Some(MemberResponse::from_member(&m, false)),
        },
        Account::Staff(s) => MeResponse {
            id: s.pid,
            role: s.role,
            name: s.name,
            organisation: Some(OrganisationRef {
                id: s.organisation_pid,
                name: s.organisation_name,
            }),
            member: None,
        },
    }))
}

/// `POST /me/phone`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144"}))]
pub struct BindPhone {
    /// The code from the `getPhoneNumber` button event.
    #[validate(length(min = 1, max = 256))]
    pub code: String,
}

/// The phone number now on record (masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct BindPhoneResponse {
    #[schema(example = "138****5678")]
    pub phone: String,
}

/// Records the member's phone number from WeChat's phone-number API.
#[utoipa::path(
    operation_id = "bindPhone",
    tag = "me",
    security(("bearer" = [])),
    request_body = BindPhone,
    responses(
        (status = 200, body = BindPhoneResponse),
        (status = 401, description = "`token_expired` (sign in again), `unauthenticated`, `invalid_token`; or `wechat_invalid_code`: the phone code is invalid or used (ask again with the button)", body = ErrorBody),
        (status = 403, description = "`forbidden`: members only, or WeChat flagged the user as risky", body = ErrorBody),
        (status = 404, description = "`not_found`: the member's record no longer exists", body = ErrorBody),
        (status = 422, description = "`phone_invalid`: not a mainland mobile number", body = ErrorBody),
        (status = 429, description = "`wechat_rate_limited`: WeChat's quota; try again shortly", body = ErrorBody),
        (status = 502, description = "`wechat_error`: WeChat answered with an error", body = ErrorBody),
        (status = 503, description = "`wechat_busy` or `wechat_unavailable`: try again shortly", body = ErrorBody),
    )
)]
#[post("/me/phone")]
pub async fn bind_phone(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<BindPhone>,
    request_id: RequestId,
) -> Result<web::Json<BindPhoneResponse>, ApiError> {
    principal.require(&[Role::Member])?;
    let body = validated(body.into_inner())?;
    let phone = account::bind_phone(
        &state.db,
        &state.pii,
        &state.wechat,
        &requester(&principal, &request_id),
        &body.code,
    )
    .await
    .map_err(account_error)?;
    Ok(web::Json(BindPhoneResponse {
        phone: phone.masked(),
    }))
}

/// Signs the account out everywhere: every token issued to it so far — on every phone, this
/// one included — answers `401 token_revoked` from now on (on every replica at once when Redis
/// is configured, within 5 s otherwise). Sign in again for a new token.
#[utoipa::path(
    operation_id = "revokeMySessions",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Done: every earlier token is refused"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "`not_found`: the account no longer exists", body = ErrorBody),
    )
)]
#[post("/me/sessions/revoke")]
pub async fn revoke_sessions(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let kind = if principal.role.is_staff() {
        AccountKind::Staff
    } else {
        AccountKind::Member
    };
    let generation = session::revoke_all(&state.db, &requester(&principal, &request_id), kind)
        .await?
        .ok_or(ApiError::NotFound)?;
    state
        .sessions
        .revoked(kind, &principal.subject, generation)
        .await;
    Ok(HttpResponse::NoContent().finish())
}

/// The member's money: every bank deduction (month, amount, status, the bank's reason) and
/// every refund due or made.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyDeductionsResponse {
    /// Newest first.
    pub deductions: Vec<DeductionLineResponse>,
    /// Newest first.
    pub refunds: Vec<RefundResponse>,
}

/// The signed-in member's deductions and refunds.
#[utoipa::path(
    operation_id = "listMyDeductions",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, body = MyDeductionsResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "members only", body = ErrorBody),
    )
)]
#[get("/me/deductions")]
pub async fn my_deductions(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<MyDeductionsResponse>, ApiError> {
    principal.require(&[Role::Member])?;
    let (lines, refunds) = deduction::for_member(&state.db, &principal.subject).await?;
    Ok(web::Json(MyDeductionsResponse {
        deductions: lines.iter().map(Into::into).collect(),
        refunds: refunds.iter().map(Into::into).collect(),
    }))
}
