//! Claims (申领): the member (or the union on their behalf) files with photos; reviewers work
//! their queues on the phone; the association approves the money.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::upload::{read_form, required};
use super::{OrganisationRef, validated};
use crate::auth::Principal;
use crate::domain::Role;
use crate::domain::{BankCardNumber, IdNumber, Money, PersonName};
use crate::engine::scheme::Material;
use crate::engine::{Component, EventKind};
use crate::error::{ApiError, ErrorBody};
use crate::formats::photos::PhotoLimits;
use crate::service::claim::approval::{self, Adjustment};
use crate::service::claim::filing::{self, ClaimEdit, NewBeneficiary, NewClaim};
use crate::service::claim::materials::{self, StoredMaterial, UploadError, Variant};
use crate::service::claim::review::{self, ClaimFilter, Refs, RejectReason};
use crate::service::claim::timeline;
use crate::service::claim::{
    Caller, Claim, ClaimError, ClaimStatus, FiledBy, Level, ReturnRequest,
};
use crate::service::page::{Page, PageQuery};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    // Literal paths before `/claims/{id}`.
    cfg.service(counts)
        .service(create)
        .service(list)
        .service(get_one)
        .service(edit)
        .service(upload_material)
        .service(remove_material)
        .service(submit)
        .service(withdraw)
        .service(approve)
        .service(return_claim)
        .service(reject)
        .service(photo);
}

fn caller(p: &Principal) -> Caller {
    Caller {
        pid: p.subject.clone(),
        role: p.role,
        scope: p.scope.clone(),
    }
}

impl From<ClaimError> for ApiError {
    fn from(e: ClaimError) -> Self {
        match e {
            ClaimError::NotFound => ApiError::NotFound,
            ClaimError::Forbidden(m) => ApiError::Forbidden(m),
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

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Photo(p) => ApiError::Invalid {
                code: p.code(),
                message: p.message_zh(),
                details: json!({ "field": "file" }),
            },
            UploadError::Claim(c) => c.into(),
            UploadError::Storage(s) => ApiError::Unavailable {
                code: "storage_unavailable",
                message: format!(
                    "照片存储暂不可用，请稍后重试 / storage unavailable: {}",
                    s.kind()
                ),
            },
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

/// One payout component.
#[derive(Debug, Serialize, ToSchema)]
pub struct JudgementResponse {
    /// The engine's refusal code, when refused.
    pub refused: Option<String>,
    /// Components of the payout (`banded`, `daily_allowance`, `minimum_top_up`, …).
    pub items: Vec<Component>,
}

/// A material asked for again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnResponse {
    pub message: String,
    pub materials: Vec<ReturnRequest>,
    pub returned_at: DateTime<Utc>,
}

/// A beneficiary (deceased member's claim).
#[derive(Debug, Serialize, ToSchema)]
pub struct BeneficiaryResponse {
    pub name: String,
    pub relationship: String,
}

/// A claim.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimResponse {
    /// Public id.
    pub id: String,
    pub status: ClaimStatus,
    /// Send it back with every action: a stale one gets 409 `version_conflict`.
    pub version: i32,
    /// The review stage it is at, or the one that returned it.
    pub stage: Option<ClaimStatus>,
    /// The review stages fixed at first submission.
    pub stages: Vec<ClaimStatus>,
    pub kind: EventKind,
    #[schema(example = "nm-inpatient-2025")]
    pub scheme_code: String,
    /// The facts, as in the simulation contract (`kind` included).
    #[schema(value_type = Object)]
    pub event: Value,
    pub member: OrganisationRef,
    /// Public id of the coverage period.
    pub membership_id: String,
    pub unit: OrganisationRef,
    pub filed_by: FiledBy,
    pub beneficiary: Option<BeneficiaryResponse>,
    /// Who is paid.
    pub payee_name: Option<String>,
    /// The return awaiting new material.
    pub returned: Option<ReturnResponse>,
    /// A bill in it looks like one in another claim (staff only; false for members).
    pub flagged: bool,
    /// The scheme version the approval used.
    pub scheme_version: Option<i32>,
    /// The engine's breakdown at approval.
    pub judgement: Option<JudgementResponse>,
    /// What the rules give.
    pub payable: Option<Money>,
    /// What is paid (differs from `payable` only with an adjustment).
    pub approved: Option<Money>,
    pub adjustment_reason: Option<String>,
    pub reject_reason: Option<String>,
    pub reject_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub first_submitted_at: Option<DateTime<Utc>>,
    pub approved_at: Option<DateTime<Utc>>,
    /// Pay by this day (5 working days after approval).
    pub pay_due_on: Option<NaiveDate>,
    /// Pay by this day at the latest (15 working days).
    pub pay_due_max_on: Option<NaiveDate>,
    /// Payment is late.
    pub overdue: bool,
    /// Payment is later than the longest allowance.
    pub overdue_beyond_maximum: bool,
    pub paid_at: Option<DateTime<Utc>>,
    /// The bank's reason, when payment failed.
    pub payout_failure: Option<String>,
}

fn pair(map: &std::collections::HashMap<i64, (String, String)>, id: i64) -> OrganisationRef {
    map.get(&id)
        .map(|(pid, name)| OrganisationRef {
            id: pid.clone(),
            name: name.clone(),
        })
        .unwrap_or_else(|| OrganisationRef {
            id: String::new(),
            name: String::new(),
        })
}

impl ClaimResponse {
    fn new(c: Claim, refs: &Refs, role: Role, today: NaiveDate) -> Self {
        let staff = role != Role::Member;
        Self {
            overdue: c.overdue(today),
            overdue_beyond_maximum: c.overdue_beyond_maximum(today),
            member: pair(&refs.members, c.member_id),
            unit: pair(&refs.units, c.organisation_id),
            membership_id: refs
                .memberships
                .get(&c.membership_id)
                .cloned()
                .unwrap_or_default(),
            beneficiary: c.beneficiary_name.clone().map(|name| BeneficiaryResponse {
                name,
                relationship: c.beneficiary_relationship.clone().unwrap_or_default(),
            }),
            returned: c.returned.map(|r| ReturnResponse {
                message: r.message,
                materials: r.requests,
                returned_at: r.returned_at,
            }),
            judgement: c.judgement.map(|j| JudgementResponse {
                refused: j.refused.and_then(|r| {
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                }),
                items: j.items,
            }),
            flagged: staff && c.flagged,
            payable: c.payable_fen.map(Money::from_fen),
            approved: c.approved_fen.map(Money::from_fen),
            id: c.pid,
            status: c.status,
            version: c.version,
            stage: c.stage,
            stages: c.stages,
            kind: c.kind,
            scheme_code: c.scheme_code,
            event: c.event,
            filed_by: c.filed_by,
            payee_name: c.payee_name,
            scheme_version: c.scheme_version,
            adjustment_reason: c.adjustment_reason,
            reject_reason: c.reject_reason,
            reject_note: c.reject_note,
            created_at: c.created_at,
            submitted_at: c.submitted_at,
            first_submitted_at: c.first_submitted_at,
            approved_at: c.approved_at,
            pay_due_on: c.pay_due_on,
            pay_due_max_on: c.pay_due_max_on,
            paid_at: c.paid_at,
            payout_failure: c.payout_failure,
        }
    }
}

/// A photographed material.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaterialResponse {
    /// Public id.
    pub id: String,
    pub category: Material,
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub byte_size: i64,
    /// SHA-256 of the upload as received.
    pub sha256: String,
    pub uploaded_at: DateTime<Utc>,
    /// The claim that holds the same bill (staff only).
    pub duplicate_of_claim: Option<String>,
    /// Signed link to the image, valid for 10 minutes.
    pub url: String,
    /// Signed link to the thumbnail, valid for 10 minutes.
    pub thumbnail_url: String,
}

impl MaterialResponse {
    fn new(state: &AppState, m: StoredMaterial, role: Role) -> Self {
        let now = Utc::now();
        let link = |variant: Variant| {
            let (expires, signature) =
                materials::sign_link(&state.pii.hasher, &m.pid, variant, now);
            format!(
                "/api/v1/claim-photos/{}?variant={}&expires={expires}&signature={signature}",
                m.pid,
                variant.as_str()
            )
        };
        Self {
            url: link(Variant::Full),
            thumbnail_url: link(Variant::Thumbnail),
            duplicate_of_claim: if role == Role::Member {
                None
            } else {
                m.duplicate_of_claim
            },
            id: m.pid,
            category: m.category,
            content_type: m.content_type,
            width: m.width,
            height: m.height,
            byte_size: m.byte_size,
            sha256: m.sha256,
            uploaded_at: m.created_at,
        }
    }
}

/// One step of the timeline (levels, never names).
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineStep {
    #[schema(example = "submitted")]
    pub action: String,
    pub status: ClaimStatus,
    pub level: Level,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// A claim with its materials, what it still needs, and its timeline.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"claim": {"id": "01a20a3f-c9ed-7093-a417-b0f339b55c81", "status": "union_review", "version": 2, "stage": "union_review", "stages": ["union_review", "service_point_review", "association_review"], "kind": "inpatient", "scheme_code": "nm-inpatient-2025", "event": {"admitted_on": "2025-03-01", "billed_days": 10, "cause": "illness", "deductible": "800.00", "discharged_on": "2025-03-11", "eligible_self_pay": "12000.00", "kind": "inpatient", "settled_by_insurance": true}, "member": {"id": "01a20a3f-c83a-7490-8427-03dbeb5b04c3", "name": "李文博"}, "membership_id": "01a20a3f-c83b-7733-8bc8-55158766e562", "unit": {"id": "01a20a3f-c837-71ba-ac19-f43e6b4f0bb6", "name": "内蒙古电力（集团）有限责任公司工会"}, "filed_by": "member", "beneficiary": null, "payee_name": "李文博", "returned": null, "flagged": false, "scheme_version": null, "judgement": null, "payable": null, "approved": null, "adjustment_reason": null, "reject_reason": null, "reject_note": null, "created_at": "2025-09-15T02:12:00Z", "submitted_at": "2025-09-15T02:13:00Z", "first_submitted_at": "2025-09-15T02:13:00Z", "approved_at": null, "pay_due_on": null, "pay_due_max_on": null, "overdue": false, "overdue_beyond_maximum": false, "paid_at": null, "payout_failure": null}, "materials": [{"id": "01a20a3f-ca91-703b-96f7-a5a06c4cc9c8", "category": "id_card_front", "content_type": "image/png", "width": 240, "height": 320, "byte_size": 1851, "sha256": "888b443ee02580abaa95c41144f36577da3a0559297281b532cb4baf740c14e0", "uploaded_at": "2025-09-15T02:12:00Z", "duplicate_of_claim": null, "url": "/api/v1/claim-photos/01a20a3f-ca91-703b-96f7-a5a06c4cc9c8?variant=full&expires=1757902800&signature=ef6f2f8af30939c1085661862cb3a9c1e1902e8e0768f3d144a08fe01d315620", "thumbnail_url": "/api/v1/claim-photos/01a20a3f-ca91-703b-96f7-a5a06c4cc9c8?variant=thumbnail&expires=1757902800&signature=3f1fb3e15df53dcafd7a11443156bedce52621fc2a0c30929e936e863030da97"}], "required_materials": ["id_card_front", "id_card_back", "insurance_card", "bank_card", "settlement_slip", "invoice", "medication_list", "discharge_certificate"], "filing_deadline": "2026-03-31", "timeline": [{"action": "filed", "status": "draft", "level": "member", "note": null, "at": "2025-09-15T02:12:00Z"}, {"action": "submitted", "status": "union_review", "level": "member", "note": null, "at": "2025-09-15T02:13:00Z"}]}))]
pub struct ClaimDetail {
    pub claim: ClaimResponse,
    pub materials: Vec<MaterialResponse>,
    /// Materials the scheme requires for this claim.
    pub required_materials: Vec<Material>,
    /// The last day it may be filed.
    pub filing_deadline: Option<NaiveDate>,
    pub timeline: Vec<TimelineStep>,
}

async fn detail(
    state: &AppState,
    principal: &Principal,
    c: Claim,
) -> Result<ClaimDetail, ApiError> {
    let today = state.settings.today();
    let stored = materials::of_claim(&state.db, c.id).await?;
    let steps = timeline::of_claim(&state.db, c.id)
        .await
        .map_err(ClaimError::from)?;
    let (_, def) = filing::current_scheme(&state.db, &c.scheme_code).await?;
    let event = serde_json::from_value::<crate::engine::Event>(c.event.clone()).ok();
    let appraisal = event
        .as_ref()
        .is_some_and(|e| filing::needs_appraisal(&def, e));
    let required = filing::required_materials(&def, c.kind, c.filed_by, appraisal);
    let deadline = match (event, membership_end(state, &c).await?) {
        (Some(event), Some(end)) => filing::filing_deadline(&def, end, &event),
        _ => None,
    };
    let refs = review::refs(&state.db, std::slice::from_ref(&c)).await?;
    Ok(ClaimDetail {
        claim: ClaimResponse::new(c, &refs, principal.role, today),
        materials: stored
            .into_iter()
            .map(|m| MaterialResponse::new(state, m, principal.role))
            .collect(),
        required_materials: required,
        filing_deadline: deadline,
        timeline: steps
            .into_iter()
            .map(|s| TimelineStep {
                action: s.action,
                status: s.status,
                level: s.level,
                note: s.note,
                at: s.at,
            })
            .collect(),
    })
}

async fn membership_end(state: &AppState, c: &Claim) -> Result<Option<NaiveDate>, ApiError> {
    Ok(crate::service::membership::coverage_end(&state.db, c.membership_id).await?)
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
#[schema(example = json!({"membership_id": "01a20a19-47d8-7119-912d-42967fa50b3d", "event": {"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-11", "billed_days": 10, "eligible_self_pay": "12000.00", "deductible": "800.00"}, "bank_card": "6217000000000000004"}))]
pub struct NewClaimRequest {
    /// Public id of the coverage period claimed against.
    pub membership_id: String,
    /// The facts, as an event of the simulation contract.
    #[schema(value_type = Object, example = json!({"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-11", "billed_days": 10, "eligible_self_pay": "12000.00"}))]
    pub event: Value,
    /// Pay to this card instead of the one on file.
    pub bank_card: Option<String>,
    /// Filing for a deceased member's beneficiary (unit-union clerks only).
    #[validate(nested)]
    pub beneficiary: Option<NewBeneficiaryRequest>,
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
/// With an `Idempotency-Key`, a retry returns the claim already made (200).
#[utoipa::path(
    operation_id = "createClaim",
    tag = "claims",
    security(("bearer" = [])),
    request_body = NewClaimRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "a retried request with the same key yields the same claim")),
    responses(
        (status = 201, body = ClaimDetail),
        (status = 200, description = "a retry: the claim the key already made", body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "no such membership in your scope", body = ErrorBody),
        (status = 422, description = "`invalid_request` (details.field), `wrong_event_kind`, `claim_window_closed` (details.closed_on), `scheme_incomplete`, `invalid_bank_card`", body = ErrorBody),
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
    let beneficiary = match &body.beneficiary {
        Some(b) => Some(NewBeneficiary {
            name: PersonName::parse(&b.name).map_err(|e| {
                ApiError::invalid_value("invalid_name", "beneficiary.name", e.to_string())
            })?,
            id_number: IdNumber::parse(&b.id_number).map_err(|e| {
                ApiError::invalid_value("invalid_id_number", "beneficiary.id_number", e.to_string())
            })?,
            relationship: b.relationship.trim().to_owned(),
            bank_card: bank_card("beneficiary.bank_card", &b.bank_card)?,
        }),
        None => None,
    };
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
    let (claim, created) = filing::create(
        &state.db,
        &state.pii,
        &caller(&principal),
        new,
        state.settings.today(),
        Some(request_id.to_string()),
    )
    .await?;
    let detail = detail(&state, &principal, claim).await?;
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
) -> Result<web::Json<Page<ClaimResponse>>, ApiError> {
    let q = query.into_inner();
    let page_query = PageQuery {
        cursor: q.cursor.clone(),
        limit: q.limit,
    };
    let filter = filter_of(&q)?;
    let today = state.settings.today();
    let page = review::list(
        &state.db,
        &caller(&principal),
        &filter,
        today,
        page_query.after_id()?,
        page_query.limit()?,
    )
    .await?;
    let refs = review::refs(&state.db, &page.items).await?;
    Ok(web::Json(page.map(|c| {
        ClaimResponse::new(c, &refs, principal.role, today)
    })))
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
    let counts = review::counts(
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
    let c = filing::get(&state.db, &caller(&principal), &id).await?;
    Ok(web::Json(detail(&state, &principal, c).await?))
}

/// `PATCH /claims/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 3, "event": {"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-12", "billed_days": 11, "eligible_self_pay": "12500.00"}}))]
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
        (status = 422, description = "`invalid_request`, `kind_changed`, `payee_fixed`, `invalid_bank_card`", body = ErrorBody),
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
    let c = filing::edit(
        &state.db,
        &state.pii,
        &caller(&principal),
        &id,
        body.version,
        change,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail(&state, &principal, c).await?))
}

/// `?category=` of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The material's category, e.g. `invoice`, `settlement_slip`, `id_card_front`.
    pub category: String,
}

/// The multipart form `wx.uploadFile` sends: one file, in the field `file`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PhotoUpload {
    /// A JPEG, PNG or WebP photo, at most 15 MiB and 8000 × 8000 px.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Uploads one photo (as `wx.uploadFile` sends it). Only JPEG, PNG and WebP are accepted, by
/// their bytes (HEIC, PDF, SVG or a renamed file are refused); dimensions are checked before
/// decoding; orientation is applied and every EXIF field (GPS!) removed from what is stored; a
/// thumbnail is made. A bill already seen in another claim flags the claim for reviewers.
/// Nothing is stored when the photo is refused.
#[utoipa::path(
    operation_id = "uploadClaimMaterial",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id"), UploadQuery),
    request_body(content = PhotoUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = MaterialResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the claim no longer accepts materials", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "`unknown_category`, `file_empty`, `file_too_large`, `unsupported_type` and the other photo codes (details.field = file)", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
#[post("/claims/{id}/materials")]
pub async fn upload_material(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    query: web::Query<UploadQuery>,
    payload: Multipart,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let category = materials::parse_category(&query.category).ok_or_else(|| {
        ApiError::invalid_value(
            "unknown_category",
            "category",
            format!(
                "未知材料类别 / unknown material category `{}`",
                query.category
            ),
        )
    })?;
    let limits = PhotoLimits::default();
    let parts = read_form(payload, limits.max_bytes).await?;
    let file = required(&parts, "file")?;
    let stored = materials::upload(
        &state.db,
        &state.storage,
        &caller(&principal),
        &id,
        category,
        file.bytes.clone(),
        limits,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(HttpResponse::Created().json(MaterialResponse::new(&state, stored, principal.role)))
}

/// Removes a photo from a draft or returned claim.
#[utoipa::path(
    operation_id = "removeClaimMaterial",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "claim public id"), ("material_id" = String, Path, description = "material public id")),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
    )
)]
#[delete("/claims/{id}/materials/{material_id}")]
pub async fn remove_material(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let (claim_id, material_id) = path.into_inner();
    materials::remove(
        &state.db,
        &state.storage,
        &caller(&principal),
        &claim_id,
        &material_id,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
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
/// returns the submitted claim.
#[utoipa::path(
    operation_id = "submitClaim",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id"), ("Idempotency-Key" = Option<String>, Header, description = "a retried submission with the same key succeeds once")),
    request_body = VersionRequest,
    responses(
        (status = 200, body = ClaimDetail),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`version_conflict`, `invalid_transition`", body = ErrorBody),
        (status = 422, description = "`materials_missing` (details.missing), `claim_window_closed` (details.closed_on), `bank_card_missing`, `invalid_request`", body = ErrorBody),
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
    let done = filing::submit(
        &state.db,
        &caller(&principal),
        &id,
        body.version,
        key,
        state.settings.today(),
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail(&state, &principal, done.claim).await?))
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
    let c = filing::withdraw(
        &state.db,
        &caller(&principal),
        &id,
        body.version,
        body.note,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail(&state, &principal, c).await?))
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
        (status = 403, description = "not your stage", body = ErrorBody),
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
    let c = approval::approve(
        &state.db,
        state.calendar.as_deref(),
        &caller(&principal),
        &id,
        body.version,
        adjustment,
        state.settings.today(),
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail(&state, &principal, c).await?))
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
    let c = review::return_claim(
        &state.db,
        &caller(&principal),
        &id,
        body.version,
        body.message,
        body.materials,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail(&state, &principal, c).await?))
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
    let c = review::reject(
        &state.db,
        &caller(&principal),
        &id,
        body.version,
        body.reason,
        body.note,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(web::Json(detail(&state, &principal, c).await?))
}

/// A signed photo link's query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PhotoQuery {
    /// `full` or `thumbnail`.
    pub variant: String,
    pub expires: i64,
    pub signature: String,
}

/// A material's image through a signed link from a claim's detail (no bearer token: the
/// mini-program's `<image>` cannot send one). Links expire after 10 minutes.
#[utoipa::path(
    operation_id = "getClaimPhoto",
    tag = "claims",
    params(("material_id" = String, Path, description = "material public id"), PhotoQuery),
    responses(
        (status = 200, content_type = "image/jpeg", body = Vec<u8>),
        (status = 403, description = "`link_invalid`: expired or not signed by us", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/claim-photos/{material_id}")]
pub async fn photo(
    state: web::Data<AppState>,
    material_id: web::Path<String>,
    query: web::Query<PhotoQuery>,
) -> Result<HttpResponse, ApiError> {
    let variant = match query.variant.as_str() {
        "full" => Variant::Full,
        "thumbnail" => Variant::Thumbnail,
        _ => {
            return Err(ApiError::invalid_field(
                "variant",
                "full 或 thumbnail / full or thumbnail",
            ));
        }
    };
    if !materials::link_is_valid(
        &state.pii.hasher,
        &material_id,
        variant,
        query.expires,
        &query.signature,
        Utc::now(),
    ) {
        return Err(ApiError::Forbidden(
            "链接已过期或无效，请刷新 / the link expired or is invalid; reload the claim".into(),
        ));
    }
    let (bytes, content_type) =
        materials::image(&state.db, &state.storage, &material_id, variant).await?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "private, max-age=600"))
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_link_works_until_it_expires_and_only_for_its_photo() {
        let hasher = crate::auth::crypto::LookupHasher::new(&[7u8; 32]);
        let now = Utc::now();
        let (expires, sig) = materials::sign_link(&hasher, "m1", Variant::Full, now);
        assert!(materials::link_is_valid(
            &hasher,
            "m1",
            Variant::Full,
            expires,
            &sig,
            now
        ));
        assert!(!materials::link_is_valid(
            &hasher,
            "m2",
            Variant::Full,
            expires,
            &sig,
            now
        ));
        assert!(!materials::link_is_valid(
            &hasher,
            "m1",
            Variant::Thumbnail,
            expires,
            &sig,
            now
        ));
        assert!(!materials::link_is_valid(
            &hasher,
            "m1",
            Variant::Full,
            expires + 1,
            &sig,
            now
        ));
        let later = now + chrono::Duration::seconds(materials::LINK_SECONDS + 1);
        assert!(!materials::link_is_valid(
            &hasher,
            "m1",
            Variant::Full,
            expires,
            &sig,
            later
        ));
    }
}
