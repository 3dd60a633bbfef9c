//! Memberships: my coverage (members), the subtree's (staff), and free extension (association).

use actix_web::{get, post, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{OrganisationRef, requester, validated};
use crate::auth::Principal;
use crate::domain::Money;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::service::membership::{
    self, CoverageState, ExtensionError, Membership, MembershipFilter,
};
use crate::service::page::{Page, PageQuery};
use crate::service::roster_facts::RosterFacts;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(mine).service(list).service(extend);
}

/// A membership.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "01a20a3f-c83b-7733-8bc8-55158766e562", "member": {"id": "01a20a3f-c83a-7490-8427-03dbeb5b04c3", "name": "李文博"}, "organisation": {"id": "01a20a3f-c837-71ba-ac19-f43e6b4f0bb6", "name": "内蒙古电力（集团）有限责任公司工会"}, "scheme_code": "nm-inpatient-2025", "coverage_start": "2025-01-01", "coverage_end": "2025-12-31", "state": "covered", "consecutive_periods": 2, "continuous_renewal": false, "fee": "0.00", "source": "group", "extended": false, "open_offset": "0.00"}))]
pub struct MembershipResponse {
    /// Public id.
    pub id: String,
    pub member: OrganisationRef,
    pub organisation: OrganisationRef,
    #[schema(example = "nm-inpatient-2025")]
    pub scheme_code: String,
    pub coverage_start: NaiveDate,
    pub coverage_end: NaiveDate,
    /// Covered today, upcoming or ended.
    pub state: CoverageState,
    /// 1 for a first period; more when renewed continuously.
    pub consecutive_periods: i32,
    /// Renewed within the grace window: no observation period.
    pub continuous_renewal: bool,
    pub fee: Money,
    /// `group` (through the union) or `individual` (bank deduction).
    pub source: String,
    /// Coverage was extended for free.
    pub extended: bool,
    /// Granted to this period's claims beyond the period's total, because an earlier-filed claim
    /// was approved after a later one (an allowance or bracket moved to it); the period's next
    /// claims absorb it. `0.00` almost always.
    pub open_offset: Money,
    /// What the union's roster said about the person — workplace (工作单位), department,
    /// employee number, remarks and its other columns — for staff, on group enrolments; absent
    /// for the member's own view and for individual enrolments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roster: Option<RosterFacts>,
}

impl MembershipResponse {
    /// `roster`: whether the caller (staff) sees what the roster said.
    fn new(m: Membership, today: NaiveDate, roster: bool) -> Self {
        let state = m.state_on(today);
        Self {
            id: m.pid,
            member: OrganisationRef {
                id: m.member_pid,
                name: m.member_name,
            },
            organisation: OrganisationRef {
                id: m.organisation_pid,
                name: m.organisation_name,
            },
            scheme_code: m.scheme_code,
            coverage_start: m.coverage_start,
            coverage_end: m.coverage_end,
            state,
            consecutive_periods: m.consecutive_periods,
            continuous_renewal: m.continuous_renewal,
            fee: m.fee,
            source: m.source,
            extended: m.extended,
            open_offset: m.open_offset,
            roster: m.roster.filter(|_| roster),
        }
    }
}

/// My memberships, my coverage periods and their state (members).
#[utoipa::path(
    operation_id = "listMyMemberships",
    tag = "memberships",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<MembershipResponse>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
#[get("/me/memberships")]
pub async fn mine(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<MembershipResponse>>, ApiError> {
    principal.require(&[Role::Member])?;
    let found = membership::list_within(
        &state.db,
        &principal.scope,
        &MembershipFilter::default(),
        page.after_id()?,
        page.limit()?,
    )
    .await?;
    // The service's calendar (`clock.today` when pinned), as claims count in it too.
    let today = state.settings.today();
    Ok(web::Json(
        found.map(|m| MembershipResponse::new(m, today, false)),
    ))
}

/// Filters of `GET /memberships`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembershipQuery {
    /// Only this organisation's subtree (public id).
    pub organisation: Option<String>,
    pub scheme: Option<String>,
    /// Periods starting in this year.
    pub year: Option<i32>,
}

impl From<MembershipQuery> for MembershipFilter {
    fn from(q: MembershipQuery) -> Self {
        Self {
            organisation_pid: q.organisation,
            scheme_code: q.scheme,
            year: q.year,
        }
    }
}

/// Memberships in the caller's subtree (staff): the clerk's ledger as JSON, each with what the
/// union's roster said about the person (`roster`).
#[utoipa::path(
    operation_id = "listMemberships",
    tag = "memberships",
    security(("bearer" = [])),
    params(MembershipQuery, PageQuery),
    responses((status = 200, body = Page<MembershipResponse>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/memberships")]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    filter: web::Query<MembershipQuery>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<MembershipResponse>>, ApiError> {
    principal.require_staff()?;
    let found = membership::list_within(
        &state.db,
        &principal.scope,
        &filter.into_inner().into(),
        page.after_id()?,
        page.limit()?,
    )
    .await?;
    // The service's calendar (`clock.today` when pinned), as claims count in it too.
    let today = state.settings.today();
    Ok(web::Json(
        found.map(|m| MembershipResponse::new(m, today, true)),
    ))
}

/// `POST /extensions`: either `membership_ids`, or `scheme_code` (with an optional
/// `organisation_id`) for every membership of that scheme in the caller's subtree.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scheme_code": "nm-inpatient-2025", "organisation_id": "01a20a19-47d5-757c-aff5-71d85f489965", "new_end": "2026-03-31", "reason": "疫情期间免费延长保障期"}))]
pub struct ExtensionRequest {
    #[validate(length(min = 1, max = 100000))]
    pub membership_ids: Option<Vec<String>>,
    pub scheme_code: Option<String>,
    pub organisation_id: Option<String>,
    /// The new last day of coverage.
    pub new_end: NaiveDate,
    /// Why (kept in the audit trail), e.g. 2023年度保障期免费延长至2024年12月31日.
    #[validate(length(min = 2, max = 500))]
    pub reason: String,
}

/// The extension done.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtensionResponse {
    pub id: String,
    pub new_end: NaiveDate,
    /// Memberships whose coverage was extended (those already ending later are untouched).
    pub membership_count: u64,
}

/// Extends coverage for free over a selection, in one audited action; each member is told
/// (association reviewers and administrators).
#[utoipa::path(
    operation_id = "extendMembership",
    tag = "memberships",
    security(("bearer" = [])),
    request_body = ExtensionRequest,
    responses(
        (status = 201, body = ExtensionResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "`organisation_id` names no organisation of the caller's subtree", body = ErrorBody),
        (status = 422, description = "`invalid_request`, `extension_too_long` (`new_end` more than one coverage term after the earliest coverage end it extends; details.latest)", body = ErrorBody),
    )
)]
#[post("/extensions")]
pub async fn extend(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<ExtensionRequest>,
    request_id: RequestId,
) -> Result<(web::Json<ExtensionResponse>, actix_web::http::StatusCode), ApiError> {
    principal.require(&[Role::AssociationReviewer, Role::Admin])?;
    let body = validated(body.into_inner())?;
    let request = membership::ExtensionRequest {
        membership_pids: body.membership_ids,
        scheme_code: body.scheme_code,
        organisation_pid: body.organisation_id,
        new_end: body.new_end,
        reason: body.reason,
    };
    let done = membership::extend(&state.db, &requester(&principal, &request_id), &request)
        .await
        .map_err(|e| match e {
            ExtensionError::Refused(problem) => ApiError::from(problem),
            ExtensionError::NotFound => ApiError::NotFound,
            ExtensionError::Db(e) => e.into(),
        })?;
    Ok((
        web::Json(ExtensionResponse {
            id: done.pid,
            new_end: done.new_end,
            membership_count: done.membership_count,
        }),
        actix_web::http::StatusCode::CREATED,
    ))
}
