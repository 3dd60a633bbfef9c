//! Claims (申领): the member (or the union on their behalf) files, edits, submits and withdraws;
//! everyone lists, counts and opens the claims they may see. Reviewers' decisions are in
//! [`super::claim_review`], photos in [`super::claim_materials`]; every answer that shows a
//! claim is the read model of [`crate::service::claim::view`].

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::validated;
use crate::auth::Principal;
use crate::domain::Role;
use crate::domain::{BankCardNumber, IdNumber, PersonName};
use crate::error::{ApiError, ErrorBody};
use crate::service::claim::filing::{ClaimEdit, NewBeneficiary, NewClaim};
use crate::service::claim::materials;
use crate::service::claim::offer::OfferConfirmation;
use crate::service::claim::review::{self, ClaimFilter};
use crate::service::claim::view::{self, ClaimDetail, ClaimResponse, Viewer};
use crate::service::claim::{Caller, ClaimError, ClaimStatus};
use crate::service::page::{Page, PageQuery};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    // Literal paths before `/claims/{id}`.
    cfg.service(counts)
        .service(create)
        .service(list)
        .service(get_one)
        .service(edit)
        .service(submit)
        .service(confirm_offer)
        .service(withdraw);
}

/// The caller as the claim services take it (no HTTP type below `routes/`).
pub(super) fn caller(p: &Principal) -> Caller {
    Caller {
        pid: p.subject.clone(),
        role: p.role,
        scope: p.scope.clone(),
    }
}

/// The caller as a claim's reader: what the read model hides from members, today's date for
/// overdue payments, the key that signs photo links.
pub(super) fn viewer<'a>(state: &'a AppState, p: &Principal) -> Viewer<'a> {
    Viewer {
        caller: caller(p),
        today: state.settings.today(),
        links: &state.pii.hasher,
    }
}

impl From<ClaimError> for ApiError {
    fn from(e: ClaimError) -> Self {
        match e {
            ClaimError::NotFound => ApiError::NotFound,
            ClaimError::Forbidden(m) => ApiError::Forbidden(m),
            ClaimError::SameReviewer(message) => ApiError::Refused {
                code: "same_reviewer",
                message,
            },
            ClaimError::VersionConflict { current } => ApiError::Conflict {
                code: "version_conflict",
                message: "申领已被他人处理，请刷新后重试 / the claim changed; reload it".into(),
                details: json!({ "current_version": current }),
            },
            ClaimError::WrongStatus { status } => ApiError::Conflict {
                code: "invalid_transition",
                message: format!(
                    "申领当前状态为 {0}，不能进行此操作 / not possible while the claim is {0}",
                    status.as_str()
                ),
                details: json!({ "status": status.as_str() }),
            },
            ClaimError::Invalid {
                code,
                field,
                message,
            } => ApiError::Invalid {
                code,
                message,
                details: json!({ "field": field }),
            },
            ClaimError::MaterialsMissing(missing) => ApiError::Invalid {
                code: "materials_missing",
                message: format!(
                    "缺少材料：{} / materials missing",
                    missing
                        .iter()
                        .map(|m| materials::category_name(*m))
                        .collect::<Vec<_>>()
                        .join("、")
                ),
                details: json!({ "missing": missing }),
            },
            ClaimError::WindowClosed { closed_on } => ApiError::Invalid {
                code: "claim_window_closed",
                message: format!(
                    "申领期限已于 {closed_on} 截止 / the window for this claim closed on {closed_on}"
                ),
                details: json!({ "closed_on": closed_on }),
            },
            ClaimError::SchemeIncomplete { missing } => ApiError::Invalid {
                code: "scheme_incomplete",
                message: "方案参数不完整，暂不能申领或审批 / the scheme version is incomplete"
                    .into(),
                details: json!({ "missing": missing }),
            },
            ClaimError::NotPayable { refused } => ApiError::Invalid {
                code: "claim_not_payable",
                message: format!(
                    "按方案规则此申领不予补助（{refused}），请以该理由拒付 / the rules refuse this claim ({refused}); reject it"
                ),
                details: json!({ "refused": refused }),
            },
            ClaimError::AlreadyOffered { offer } => ApiError::Conflict {
                code: "stay_already_offered",
                message: "这次住院已由医保结算数据主动提供补助，请在该补助上确认收款卡，无需另行申领 / this stay was already offered; confirm that offer instead".into(),
                details: json!({ "offer": offer }),
            },
            ClaimError::OfferLapsed { deadline } => ApiError::Conflict {
                code: "offer_lapsed",
                message: format!(
                    "该补助须在{deadline}前确认收款卡，已过期失效 / the offer had to be confirmed by {deadline} and has lapsed"
                ),
                details: json!({ "deadline": deadline }),
            },
            ClaimError::IdempotencyKeyReused => ApiError::Invalid {
                code: "idempotency_key_reused",
                message: "此 Idempotency-Key 已用于另一请求，请为新请求使用新的键 / this Idempotency-Key was used for a different request; use a new key for a new request"
                    .into(),
                details: json!({ "header": "Idempotency-Key" }),
            },
            ClaimError::Facts(e) => ApiError::Invalid {
                code: e.code.as_str(),
                message: e.message,
                details: e.details,
            },
            ClaimError::Db(e) => e.into(),
            ClaimError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// `Idempotency-Key`: 1–100 visible ASCII characters (a UUID from the phone).
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 100 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "Idempotency-Key",
                "Idempotency-Key 应为 1–100 个可见 ASCII 字符 / 1–100 visible ASCII characters",
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// The beneficiary of a deceased member.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct NewBeneficiaryRequest {
    #[schema(example = "王芳")]
    pub name: String,
    #[schema(example = "11010519491231002X")]
    pub id_number: String,
    /// e.g. 配偶, 子女, 父母.
    #[schema(example = "配偶")]
    #[validate(length(min = 1, max = 32))]
    pub relationship: String,
    #[schema(example = "6222020200112233445")]
    pub bank_card: String,
}

/// `POST /claims`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "membership_id": "01a20a19-47d8-7119-912d-42967fa50b3d",
    "event": {
        "kind": "inpatient",
        "admitted_on": "2025-03-01",
        "discharged_on": "2025-03-11",
        "billed_days": 10,
        "eligible_self_pay": "12000.00",
        "deductible": "800.00"
    },
    "bank_card": "6217000000000000004"
}))]
pub struct NewClaimRequest {
    /// Public id of the coverage period claimed against.
    pub membership_id: String,
    /// The facts, as an event of the simulation contract.
    #[schema(value_type = Object, example = json!({
        "kind": "inpatient",
        "admitted_on": "2025-03-01",
        "discharged_on": "2025-03-11",
        "billed_days": 10,
        "eligible_self_pay": "12000.00"
    }))]
    pub event: Value,
    /// Pay to this card instead of the one on file.
    pub bank_card: Option<String>,
    /// Filing for a deceased member's beneficiary (unit-union clerks only).
    #[validate(nested)]
    pub beneficiary: Option<NewBeneficiaryRequest>,
}

fn beneficiary(b: &NewBeneficiaryRequest) -> Result<NewBeneficiary, ApiError> {
    Ok(NewBeneficiary {
        name: PersonName::parse(&b.name).map_err(|e| {
            ApiError::invalid_value("invalid_name", "beneficiary.name", e.to_string())
        })?,
        id_number: IdNumber::parse(&b.id_number).map_err(|e| {
            ApiError::invalid_value("invalid_id_number", "beneficiary.id_number", e.to_string())
        })?,
        relationship: b.relationship.trim().to_owned(),
        bank_card: bank_card("beneficiary.bank_card", &b.bank_card)?,
    })
}

fn bank_card(field: &str, value: &str) -> Result<BankCardNumber, ApiError> {
    BankCardNumber::parse(value).map_err(|e| {
        ApiError::invalid_value(
            "invalid_bank_card",
            field,
            format!("银行卡号无效 / invalid bank card number: {e}"),
        )
    })
}

/// Files a claim as a draft: the member for themselves, or a unit-union clerk for a member
/// without a smartphone or for a deceased member's beneficiary (then paid to the beneficiary).
/// With an `Idempotency-Key`, a retry returns the claim already made (200); the same key with a
/// different body is refused (422 `idempotency_key_reused`).
#[utoipa::path(
    operation_id = "createClaim",
    tag = "claims",
    security(("bearer" = [])),
    request_body = NewClaimRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "a retried request with the same key and body yields the same claim; another body under the same key is refused")),
    responses(
        (status = 201, body = ClaimDetail),
        (status = 200, description = "a retry: the claim the key already made", body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "no such membership in your scope", body = ErrorBody),
        (status = 422, description = "`invalid_request` (details.field), `wrong_event_kind`, `claim_window_closed` (details.closed_on), `event_in_future`, `event_outside_period`, `amount_out_of_range` (over 10,000,000.00), `scheme_incomplete`, `invalid_bank_card`, `idempotency_key_reused` (details.header; the key already made a claim from another body)", body = ErrorBody),
    )
)]
#[post("/claims")]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: web::Json<NewClaimRequest>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Member, Role::UnionReviewer])?;
    let key = idempotency_key(&req)?;
    let body = validated(body.into_inner())?;
    let beneficiary = body.beneficiary.as_ref().map(beneficiary).transpose()?;
    let new = NewClaim {
        membership_pid: body.membership_id.clone(),
        event: body.event.clone(),
        bank_card: body
            .bank_card
            .as_deref()
            .map(|c| bank_card("bank_card", c))
            .transpose()?,
        beneficiary,
        idempotency_key: key,
    };
    let viewer = viewer(&state, &principal);
    let (detail, created) = view::create(
        &state.db,
        &state.pii,
        &viewer,
        new,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(if created {
        HttpResponse::Created().json(detail)
    } else {
        HttpResponse::Ok().json(detail)
    })
}

/// `GET /claims` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClaimListQuery {
    /// Comma-separated statuses, e.g. `union_review` (a reviewer's queue) or `approved,paying`.
    pub status: Option<String>,
    pub scheme_code: Option<String>,
    /// Public id of a unit (or any organisation: its subtree).
    pub unit: Option<String>,
    /// First submitted on or after this day.
    pub submitted_from: Option<NaiveDate>,
    /// First submitted on or before this day.
    pub submitted_to: Option<NaiveDate>,
    /// Only claims whose payment is overdue (`true`) or not (`false`).
    pub overdue: Option<bool>,
    /// Only claims with (or without) a possible duplicate bill.
    pub flagged: Option<bool>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}

fn filter_of(q: &ClaimListQuery) -> Result<ClaimFilter, ApiError> {
    let statuses = match &q.status {
        Some(wanted) => wanted
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                ClaimStatus::parse(s).ok_or_else(|| {
                    ApiError::invalid_field("status", format!("未知状态 / unknown status `{s}`"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    Ok(ClaimFilter {
        statuses,
        scheme_code: q.scheme_code.clone(),
        organisation_pid: q.unit.clone(),
        submitted_from: q.submitted_from,
        submitted_to: q.submitted_to,
        overdue: q.overdue,
        flagged: q.flagged,
    })
}

/// The claims the caller may see, oldest first: a member's own; a reviewer's subtree (drafts
/// only when they filed them). Filter by `status` for a role's queue.
#[utoipa::path(
    operation_id = "listClaims",
    tag = "claims",
    security(("bearer" = [])),
    params(ClaimListQuery),
    responses(
        (status = 200, body = Page<ClaimResponse>),
        (status = 401, body = ErrorBody),
        (status = 422, description = "`invalid_request` (status, cursor, limit), `unknown_organisation`", body = ErrorBody),
    )
)]
#[get("/claims")]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ClaimListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page_query = PageQuery {
        cursor: q.cursor.clone(),
        limit: q.limit,
    };
    let filter = filter_of(&q)?;
    // Written by the service from the rows in place (`view::list`): a `Page<ClaimResponse>`.
    let page = view::list(
        &state.db,
        &viewer(&state, &principal),
        &filter,
        page_query.after_id()?,
        page_query.limit()?,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(page))
}

/// Claims per status (for badges), with the list's filters (`status` aside).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimCounts {
    /// Every status, with 0 where there are none.
    #[schema(value_type = Object, example = json!({"union_review": 3, "returned": 1}))]
    pub counts: std::collections::BTreeMap<String, i64>,
}

/// How many claims the caller may see are in each status.
#[utoipa::path(
    operation_id = "countClaims",
    tag = "claims",
    security(("bearer" = [])),
    params(ClaimListQuery),
    responses(
        (status = 200, body = ClaimCounts),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[get("/claims/counts")]
pub async fn counts(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ClaimListQuery>,
) -> Result<web::Json<ClaimCounts>, ApiError> {
    let filter = filter_of(&query)?;
    let counts = review::counts_kept(
        &state.tallies,
        &state.db,
        &caller(&principal),
        &filter,
        state.settings.today(),
    )
    .await?;
    Ok(web::Json(ClaimCounts { counts }))
}

/// One claim with its materials (signed image links), required materials and timeline.
#[utoipa::path(
    operation_id = "getClaim",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/claims/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<ClaimDetail>, ApiError> {
    let viewer = viewer(&state, &principal);
    Ok(web::Json(view::get(&state.db, &viewer, &id).await?))
}

/// `PATCH /claims/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "version": 3,
    "event": {
        "kind": "inpatient",
        "admitted_on": "2025-03-01",
        "discharged_on": "2025-03-12",
        "billed_days": 11,
        "eligible_self_pay": "12500.00"
    }
}))]
pub struct ClaimEditRequest {
    pub version: i32,
    /// New facts (same kind).
    #[schema(value_type = Option<Object>)]
    pub event: Option<Value>,
    pub bank_card: Option<String>,
}

/// Corrects the facts or the bank card of a draft or returned claim.
#[utoipa::path(
    operation_id = "editClaim",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body = ClaimEditRequest,
    responses(
        (status = 200, body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`version_conflict`, `invalid_transition`", body = ErrorBody),
        (status = 422, description = "`invalid_request`, `kind_changed`, `event_in_future`, `event_outside_period`, `amount_out_of_range`, `payee_fixed`, `invalid_bank_card`", body = ErrorBody),
    )
)]
#[patch("/claims/{id}")]
pub async fn edit(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<ClaimEditRequest>,
    request_id: RequestId,
) -> Result<web::Json<ClaimDetail>, ApiError> {
    let body = body.into_inner();
    let change = ClaimEdit {
        event: body.event,
        bank_card: body
            .bank_card
            .as_deref()
            .map(|c| bank_card("bank_card", c))
            .transpose()?,
    };
    let detail = view::edit(
        &state.db,
        &state.pii,
        &viewer(&state, &principal),
        &id,
        body.version,
        change,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail))
}

/// The claim's current version, for actions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 5}))]
pub struct VersionRequest {
    pub version: i32,
    /// A note (withdrawal reason).
    pub note: Option<String>,
}

/// Submits a draft into review, or a returned claim back to the stage that returned it.
/// Refused while a required material is missing (each named), after the scheme's window
/// (with the day it closed), or without a bank card. A retry with the same `Idempotency-Key`
/// returns the submitted claim; the same key with a different body is refused.
#[utoipa::path(
    operation_id = "submitClaim",
    tag = "claims",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "public id"),
        ("Idempotency-Key" = Option<String>, Header, description = "a retried submission with the same key succeeds once"),
    ),
    request_body = VersionRequest,
    responses(
        (status = 200, body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`version_conflict`, `invalid_transition`", body = ErrorBody),
        (status = 422, description = "`materials_missing` (details.missing), `claim_window_closed` (details.closed_on), `bank_card_missing`, `invalid_request`, `idempotency_key_reused` (details.header; the key already submitted another body)", body = ErrorBody),
    )
)]
#[post("/claims/{id}/submit")]
pub async fn submit(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<VersionRequest>,
    request_id: RequestId,
) -> Result<web::Json<ClaimDetail>, ApiError> {
    let key = idempotency_key(&req)?;
    let detail = view::submit(
        &state.db,
        &viewer(&state, &principal),
        &id,
        body.version,
        key,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail))
}

/// Confirming an offer: where to pay.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 1, "bank_card": "6217000000000000004"}))]
pub struct ConfirmOfferRequest {
    pub version: i32,
    /// Pay to this card; without it, the card on file.
    pub bank_card: Option<String>,
    /// The member died in hospital (the settlement's 离院方式 死亡): the unit union confirms
    /// for this beneficiary, paid to the beneficiary's card (not with `bank_card`).
    #[validate(nested)]
    pub beneficiary: Option<NewBeneficiaryRequest>,
}

/// The member confirms a benefit offered from the medical-insurance settlement file (免申即享):
/// where to pay (a card, or the one on file). The offer keeps its amount's place in the
/// period's filing order and enters the first review stage its scheme does not skip for offers
/// (review by exception), once the materials the scheme still asks of an offer are uploaded
/// (`required_materials` of its detail; most schemes ask none). A clerk of the member's unit union
/// may confirm for a retiree without a phone: recorded as on behalf, the member told of a card
/// the clerk set, and that clerk may not approve it (four eyes). Where the settlement says the
/// member died in hospital, the clerk confirms for the beneficiary (`beneficiary`; not for
/// schemes paid to the member only). An offer not confirmed by its `lapses_on` has lapsed.
#[utoipa::path(
    operation_id = "confirmClaimOffer",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body = ConfirmOfferRequest,
    responses(
        (status = 200, body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`version_conflict`, `invalid_transition` (not an open offer), `offer_lapsed` (details.deadline: not confirmed by the scheme's claim deadline)", body = ErrorBody),
        (status = 422, description = "`materials_missing` (details.missing, e.g. Hengyang's appraisal certificate), `bank_card_missing`, `invalid_bank_card`, `invalid_request`, `beneficiary_missing` (the member died in hospital: the union confirms for a beneficiary), `beneficiary_not_allowed` (the scheme pays the member only), `invalid_name`, `invalid_id_number`", body = ErrorBody),
    )
)]
#[post("/claims/{id}/confirm-offer")]
pub async fn confirm_offer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<ConfirmOfferRequest>,
    request_id: RequestId,
) -> Result<web::Json<ClaimDetail>, ApiError> {
    let body = validated(body.into_inner())?;
    let confirmation = OfferConfirmation {
        bank_card: body
            .bank_card
            .as_deref()
            .map(|c| bank_card("bank_card", c))
            .transpose()?,
        beneficiary: body.beneficiary.as_ref().map(beneficiary).transpose()?,
    };
    let detail = view::confirm_offer(
        &state.db,
        &state.pii,
        &viewer(&state, &principal),
        &id,
        body.version,
        confirmation,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail))
}

/// Withdraws a claim before approval (the member, or whoever filed it).
#[utoipa::path(
    operation_id = "withdrawClaim",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body = VersionRequest,
    responses(
        (status = 200, body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`version_conflict`, `invalid_transition` (approved already)", body = ErrorBody),
    )
)]
#[post("/claims/{id}/withdraw")]
pub async fn withdraw(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<VersionRequest>,
    request_id: RequestId,
) -> Result<web::Json<ClaimDetail>, ApiError> {
    let body = body.into_inner();
    let detail = view::withdraw(
        &state.db,
        &viewer(&state, &principal),
        &id,
        body.version,
        body.note,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail))
}
