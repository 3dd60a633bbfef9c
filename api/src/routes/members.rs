//! Members, as far as the caller may see them. Personal numbers are masked unless the caller's
//! role needs the full value (the association, which pays to bank cards).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{OrganisationRef, validated};
use crate::auth::Principal;
use crate::domain::Role;
use crate::domain::{BankCardNumber, IdNumber, PersonName, PhoneNumber, Sex};
use crate::error::{ApiError, ErrorBody};
use crate::service::enrolment::BatchStatus;
use crate::service::member::{self, Member, MemberError, MemberFilter, NewMember};
use crate::service::page::{Page, PageQuery};
use crate::service::roster_facts::{self, MemberRosterLine, RosterFacts};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    // `search` before `get_one`, whose `{id}` would otherwise take the path `search`.
    cfg.service(list)
        .service(search)
        .service(get_one)
        .service(create);
}

/// A member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberResponse {
    /// Public id.
    pub id: String,
    pub organisation: OrganisationRef,
    pub name: String,
    /// Masked (`1501**********1234`) unless the caller's role needs the full number.
    #[schema(example = "1501**********1234")]
    pub id_number: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    #[schema(example = "138****5678")]
    pub phone: Option<String>,
    #[schema(example = "6222***********0128")]
    pub bank_card: Option<String>,
    pub retired: bool,
    pub wechat_bound: bool,
}

impl MemberResponse {
    /// The JSON view of a member; `full` reveals the personal numbers.
    pub fn from_member(m: &Member, full: bool) -> Self {
        Self {
            id: m.pid.clone(),
            organisation: OrganisationRef {
                id: m.organisation_pid.clone(),
                name: m.organisation_name.clone(),
            },
            name: m.name.as_str().to_owned(),
            id_number: if full {
                m.id_number.as_str().to_owned()
            } else {
                m.id_number.masked()
            },
            sex: m.sex(),
            birth_date: m.id_number.birth_date(),
            phone: m.phone.as_ref().map(|p| {
                if full {
                    p.as_str().to_owned()
                } else {
                    p.masked()
                }
            }),
            bank_card: m.bank_card.as_ref().map(|c| {
                if full {
                    c.as_str().to_owned()
                } else {
                    c.masked()
                }
            }),
            retired: m.retired,
            wechat_bound: m.wechat_bound,
        }
    }
}

/// A member in detail: for staff, with every roster line naming them (what each union's
/// roster said: workplace, department, employee number, remarks, its other columns).
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDetailResponse {
    #[serde(flatten)]
    pub member: MemberResponse,
    /// The roster lines naming the member on enrolments inside the caller's subtree, newest
    /// first; empty for the member's own view.
    pub roster_lines: Vec<RosterLineResponse>,
}

/// One roster line naming a member.
#[derive(Debug, Serialize, ToSchema)]
pub struct RosterLineResponse {
    /// The enrolment (batch) the line is on.
    pub enrolment_id: String,
    pub organisation: OrganisationRef,
    pub scheme_code: String,
    pub status: BatchStatus,
    /// The Excel row the person was on.
    pub row: i32,
    pub submitted_at: DateTime<Utc>,
    #[serde(flatten)]
    pub facts: RosterFacts,
}

impl From<MemberRosterLine> for RosterLineResponse {
    fn from(l: MemberRosterLine) -> Self {
        Self {
            enrolment_id: l.enrolment_pid,
            organisation: OrganisationRef {
                id: l.organisation_pid,
                name: l.organisation_name,
            },
            scheme_code: l.scheme_code,
            status: l.status,
            row: l.row,
            submitted_at: l.submitted_at,
            facts: l.facts,
        }
    }
}

/// Filters of `GET /members`. Personal numbers are never query parameters (they would sit in
/// access logs and proxies): look members up by them with `POST /members/search`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemberQuery {
    /// Only members of this unit union (public id).
    pub organisation: Option<String>,
}

/// Members in the caller's subtree (staff).
#[utoipa::path(
    operation_id = "listMembers",
    tag = "members",
    security(("bearer" = [])),
    params(MemberQuery, PageQuery),
    responses(
        (status = 200, body = Page<MemberResponse>),
        (status = 400, description = "`pii_in_url`: an ID, phone or card number as a query parameter (`id_number=`, `phone=`, `bank_card=`); use `POST /api/v1/members/search`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[get("/members")]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    filter: web::Query<MemberQuery>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<MemberResponse>>, ApiError> {
    principal.require_staff()?;
    let found = member::list_within(
        &state.db,
        &state.pii,
        &principal.scope,
        &MemberFilter {
            organisation_pid: filter.into_inner().organisation,
            ..MemberFilter::default()
        },
        page.after_id()?,
        page.limit()?,
    )
    .await?;
    let full = principal.role.sees_full_personal_data();
    Ok(web::Json(
        found.map(|m| MemberResponse::from_member(&m, full)),
    ))
}

/// `POST /members/search`: look-up by personal numbers, in the body so they never reach a
/// URL, an access log or a proxy. At least one number; all given must match.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id_number": "11010519491231002X"}))]
pub struct MemberSearchRequest {
    /// Exact 18-character resident ID number.
    #[validate(length(max = 64))]
    pub id_number: Option<String>,
    /// Exact mobile number.
    #[validate(length(max = 64))]
    pub phone: Option<String>,
    /// Exact bank card number.
    #[validate(length(max = 64))]
    pub bank_card: Option<String>,
    /// Only members of this unit union (public id).
    pub organisation_id: Option<String>,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<u64>,
}

/// Members in the caller's subtree with these personal numbers (staff).
#[utoipa::path(
    operation_id = "searchMembers",
    tag = "members",
    security(("bearer" = [])),
    request_body = MemberSearchRequest,
    responses(
        (status = 200, body = Page<MemberResponse>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "`invalid_request` (no number given), `id_number_*`, `phone_invalid`, `bank_card_*`", body = ErrorBody),
    )
)]
#[post("/members/search")]
pub async fn search(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<MemberSearchRequest>,
) -> Result<web::Json<Page<MemberResponse>>, ApiError> {
    principal.require_staff()?;
    let body = validated(body.into_inner())?;
    if body.id_number.is_none() && body.phone.is_none() && body.bank_card.is_none() {
        return Err(ApiError::invalid_field(
            "id_number",
            "请给出身份证号、手机号或银行卡号 / give an id_number, phone or bank_card",
        ));
    }
    let filter = MemberFilter {
        organisation_pid: body.organisation_id,
        id_number: body
            .id_number
            .as_deref()
            .map(IdNumber::parse)
            .transpose()
            .map_err(|e| ApiError::invalid_value(e.code(), "id_number", e.message_zh()))?,
        phone: optional_phone(body.phone.as_deref())?,
        bank_card: optional_card(body.bank_card.as_deref())?,
    };
    let page = PageQuery {
        cursor: body.cursor,
        limit: body.limit,
    };
    let found = member::list_within(
        &state.db,
        &state.pii,
        &principal.scope,
        &filter,
        page.after_id()?,
        page.limit()?,
    )
    .await?;
    let full = principal.role.sees_full_personal_data();
    Ok(web::Json(
        found.map(|m| MemberResponse::from_member(&m, full)),
    ))
}

/// One member: staff inside their subtree, with what the union rosters said about them, or the
/// member themselves (404 otherwise).
#[utoipa::path(
    operation_id = "getMember",
    tag = "members",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, body = MemberDetailResponse),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/members/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<MemberDetailResponse>, ApiError> {
    let m = member::get_within(&state.db, &state.pii, &principal.scope, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let roster_lines = if principal.role.is_staff() {
        roster_facts::lines_of_member(&state.db, &principal.scope, &m.pid)
            .await?
            .into_iter()
            .map(RosterLineResponse::from)
            .collect()
    } else {
        Vec::new()
    };
    Ok(web::Json(MemberDetailResponse {
        member: MemberResponse::from_member(&m, principal.role.sees_full_personal_data()),
        roster_lines,
    }))
}

/// `POST /members`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct NewMemberRequest {
    /// Public id of the unit union.
    pub organisation_id: String,
    #[schema(example = "张三")]
    pub name: String,
    /// 18-character resident ID number (checksum verified).
    #[schema(example = "11010519491231002X")]
    pub id_number: String,
    #[schema(example = "13812345678")]
    pub phone: Option<String>,
    pub bank_card: Option<String>,
    #[serde(default)]
    pub retired: bool,
}

/// Adds one member to a unit union (the union's reviewer, or an administrator).
#[utoipa::path(
    operation_id = "createMember",
    tag = "members",
    security(("bearer" = [])),
    request_body = NewMemberRequest,
    responses(
        (status = 201, body = MemberResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "the unit union is not in the caller's subtree", body = ErrorBody),
        (status = 409, description = "`duplicate_id_number`", body = ErrorBody),
        (status = 422, description = "`invalid_request`, `id_number_*`, `phone_invalid`, `bank_card_*`, `name_invalid`, `not_a_unit_union`", body = ErrorBody),
    )
)]
#[post("/members")]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<NewMemberRequest>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::UnionReviewer, Role::Admin])?;
    let body = validated(body.into_inner())?;
    let new = NewMember {
        name: PersonName::parse(&body.name)
            .map_err(|e| ApiError::invalid_value("name_invalid", "name", e.to_string()))?,
        id_number: IdNumber::parse(&body.id_number)
            .map_err(|e| ApiError::invalid_value(e.code(), "id_number", e.message_zh()))?,
        phone: optional_phone(body.phone.as_deref())?,
        bank_card: optional_card(body.bank_card.as_deref())?,
        retired: body.retired,
    };
    let created = member::create_within(
        &state.db,
        &state.pii,
        &principal.scope,
        &body.organisation_id,
        &new,
        &principal.subject,
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        MemberError::UnitNotFound => ApiError::NotFound,
        MemberError::NotAUnitUnion => ApiError::invalid_value(
            "not_a_unit_union",
            "organisation_id",
            "会员只能加入基层工会 / members belong to a unit union",
        ),
        MemberError::DuplicateIdNumber => ApiError::Conflict {
            code: "duplicate_id_number",
            message: "该身份证号已登记 / a member with this ID number exists".into(),
            details: json!({ "field": "id_number" }),
        },
        MemberError::Db(e) => e.into(),
    })?;
    Ok(HttpResponse::Created().json(MemberResponse::from_member(
        &created,
        principal.role.sees_full_personal_data(),
    )))
}

/// An optional phone number from a request body (`field` `phone`).
fn optional_phone(value: Option<&str>) -> Result<Option<PhoneNumber>, ApiError> {
    value
        .map(PhoneNumber::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_value(e.code(), "phone", e.to_string()))
}

/// An optional bank card number from a request body (`field` `bank_card`).
fn optional_card(value: Option<&str>) -> Result<Option<BankCardNumber>, ApiError> {
    value
        .map(BankCardNumber::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_value(e.code(), "bank_card", e.to_string()))
}
