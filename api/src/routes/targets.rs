//! Enrolment targets and progress per organisation: what each level sees of its subtree.

use actix_web::{HttpResponse, get, put, web};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{requester, validated};
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::service::organisation::OrganisationKind;
use crate::service::targets::{self, Progress, Target};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(set_target).service(progress);
}

/// `PUT /targets`: give `target_people`, or `target_ten_thousands` as the league tables
/// write it ("2.5" = 25,000 people).
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct TargetRequest {
    pub organisation_id: String,
    #[validate(range(min = 2000, max = 2100))]
    pub year: i32,
    /// A scheme (its yearly versions count together); absent: all schemes.
    pub scheme_code: Option<String>,
    #[validate(range(min = 0, max = 100000000))]
    pub target_people: Option<i32>,
    #[schema(value_type = Option<String>, example = "2.5")]
    pub target_ten_thousands: Option<Decimal>,
}

/// Sets an organisation's enrolment target for a year (association reviewers, admins).
#[utoipa::path(
    operation_id = "setTarget",
    tag = "targets",
    security(("bearer" = [])),
    request_body = TargetRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[put("/targets")]
pub async fn set_target(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<TargetRequest>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::AssociationReviewer, Role::Admin])?;
    let body = validated(body.into_inner())?;
    let people = match (body.target_people, body.target_ten_thousands) {
        (Some(p), None) => p,
        (None, Some(t)) if t >= Decimal::ZERO && t <= Decimal::from(10_000) => {
            use rust_decimal::prelude::ToPrimitive;
            (t * Decimal::from(10_000))
                .round()
                .to_i32()
                .ok_or_else(|| {
                    ApiError::invalid_field("target_ten_thousands", "目标过大 / too large")
                })?
        }
        _ => {
            return Err(ApiError::invalid_field(
                "target_people",
                "给出 target_people 或 target_ten_thousands 之一 / give one of the two",
            ));
        }
    };
    let target = Target {
        organisation_pid: body.organisation_id,
        year: body.year,
        scheme_code: body.scheme_code,
        people,
    };
    if !targets::set(&state.db, &requester(&principal, &request_id), &target).await? {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /targets/progress`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressQuery {
    pub year: i32,
    pub scheme: Option<String>,
}

/// One organisation's line.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressLine {
    pub organisation_id: String,
    pub name: String,
    pub kind: OrganisationKind,
    pub parent_id: Option<String>,
    /// 0 for the caller's own organisation.
    pub depth: usize,
    /// Set for this organisation, or the sum of its children's targets.
    pub target: Option<i64>,
    #[schema(value_type = Option<String>, example = "2.5000")]
    pub target_ten_thousands: Option<Decimal>,
    /// Confirmed: coverage fixed, periods starting in the year.
    pub enrolled: i64,
    /// On rosters submitted for the year, awaiting the union's transfer or the association's
    /// confirmation (not counted in `enrolled` yet).
    pub awaiting: i64,
    /// On rosters of the year the association refused or the union withdrew, and still out:
    /// neither enrolled nor on a roster awaiting confirmation (a clerk's to-do).
    pub refused: i64,
    /// enrolled / target.
    #[schema(value_type = Option<String>, example = "0.8125")]
    pub completion_rate: Option<Decimal>,
    /// Enrolled the year before.
    pub previous_year: i64,
    /// Of those, enrolled again.
    pub renewed: i64,
    /// renewed / previous_year (续会率; the seeds ask for at least 90%).
    #[schema(value_type = Option<String>, example = "0.9300")]
    pub renewal_rate: Option<Decimal>,
}

impl From<Progress> for ProgressLine {
    fn from(p: Progress) -> Self {
        let completion_rate = p.completion_rate();
        let renewal_rate = p.renewal_rate();
        Self {
            organisation_id: p.organisation_pid,
            name: p.organisation_name,
            kind: p.kind,
            parent_id: p.parent_pid,
            depth: p.depth,
            target: p.target,
            target_ten_thousands: p
                .target
                .map(|t| (Decimal::from(t) / Decimal::from(10_000)).round_dp(4)),
            enrolled: p.enrolled,
            awaiting: p.awaiting,
            refused: p.refused,
            completion_rate,
            previous_year: p.previous,
            renewed: p.renewed,
            renewal_rate,
        }
    }
}

/// Target, enrolled, completion and renewal rate for every organisation of the caller's
/// subtree, in tree order (staff).
#[utoipa::path(
    operation_id = "getTargetProgress",
    tag = "targets",
    security(("bearer" = [])),
    params(ProgressQuery),
    responses((status = 200, body = Vec<ProgressLine>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/targets/progress")]
pub async fn progress(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ProgressQuery>,
) -> Result<web::Json<Vec<ProgressLine>>, ApiError> {
    principal.require_staff()?;
    if !(2000..=2100).contains(&query.year) {
        return Err(ApiError::invalid_field("year", "年份无效 / invalid year"));
    }
    let lines = targets::progress(
        &state.db,
        &principal.scope,
        query.year,
        query.scheme.as_deref(),
    )
    .await?;
    Ok(web::Json(
        lines.into_iter().map(ProgressLine::from).collect(),
    ))
}
