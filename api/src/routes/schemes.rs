//! The schemes as the mini-program shows them, and publishing new versions (administrators).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::requester;
use crate::auth::Principal;
use crate::domain::Role;
use crate::engine::SchemeDefinition;
use crate::engine::scheme::{CoverageStyle, EnrolmentMode, Fees};
use crate::error::{ApiError, ErrorBody};
use crate::service::scheme::{self, PublishError, PublishedScheme};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(get_one)
        .service(list_versions)
        .service(publish);
}

/// One scheme in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchemeSummary {
    #[schema(example = "nm-inpatient-2022")]
    pub code: String,
    /// The newest published version.
    pub version: i32,
    pub display_name_zh: String,
    pub region_zh: String,
    pub enrolment_mode: EnrolmentMode,
    pub enrolment_opens: Option<NaiveDate>,
    pub enrolment_closes: NaiveDate,
    pub coverage_style: CoverageStyle,
    pub fees: Fees,
    /// False while parameters are missing: shown, but nothing can be computed.
    pub complete: bool,
}

impl From<&PublishedScheme> for SchemeSummary {
    fn from(p: &PublishedScheme) -> Self {
        let d = &p.definition;
        Self {
            code: d.code.clone(),
            version: p.version,
            display_name_zh: d.display.display_name_zh.clone(),
            region_zh: d.display.region_zh.clone(),
            enrolment_mode: d.enrolment.mode,
            enrolment_opens: d.enrolment.opens,
            enrolment_closes: d.enrolment.closes,
            coverage_style: d.coverage.style,
            fees: d.fees.clone(),
            complete: d.is_complete(),
        }
    }
}

/// A scheme version in full: who may join, fees, enrolment window, coverage, what is paid,
/// the rules, and which materials each kind of claim needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchemeVersionResponse {
    pub version: i32,
    pub published_at: DateTime<Utc>,
    pub complete: bool,
    pub definition: SchemeDefinition,
}

impl From<PublishedScheme> for SchemeVersionResponse {
    fn from(p: PublishedScheme) -> Self {
        Self {
            version: p.version,
            published_at: p.published_at,
            complete: p.definition.is_complete(),
            definition: p.definition,
        }
    }
}

/// The schemes on offer (newest version of each). No sign-in needed.
#[utoipa::path(operation_id = "listSchemes", tag = "schemes", responses((status = 200, body = Vec<SchemeSummary>)))]
#[get("/schemes")]
pub async fn list(state: web::Data<AppState>) -> Result<web::Json<Vec<SchemeSummary>>, ApiError> {
    let all = scheme::all_latest(&state.db).await?;
    Ok(web::Json(all.iter().map(SchemeSummary::from).collect()))
}

/// One scheme's newest version in full. No sign-in needed.
#[utoipa::path(
    operation_id = "getScheme",
    tag = "schemes",
    params(("code" = String, Path, example = "nm-inpatient-2022")),
    responses((status = 200, body = SchemeVersionResponse), (status = 404, body = ErrorBody))
)]
#[get("/schemes/{code}")]
pub async fn get_one(
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<web::Json<SchemeVersionResponse>, ApiError> {
    scheme::latest(&state.db, &code)
        .await?
        .map(|p| web::Json(p.into()))
        .ok_or(ApiError::NotFound)
}

/// A version in the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchemeVersionInfo {
    pub version: i32,
    pub published_at: DateTime<Utc>,
    /// `seed`, `cli`, or the administrator's public id.
    pub published_by: String,
    pub complete: bool,
    pub missing: Vec<String>,
}

/// Every version of a scheme, newest first (administrators).
#[utoipa::path(
    operation_id = "listSchemeVersions",
    tag = "schemes",
    security(("bearer" = [])),
    params(("code" = String, Path)),
    responses(
        (status = 200, body = Vec<SchemeVersionInfo>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/schemes/{code}/versions")]
pub async fn list_versions(
    state: web::Data<AppState>,
    principal: Principal,
    code: web::Path<String>,
) -> Result<web::Json<Vec<SchemeVersionInfo>>, ApiError> {
    principal.require(&[Role::Admin, Role::AssociationReviewer])?;
    let all = scheme::versions(&state.db, &code).await?;
    if all.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(web::Json(
        all.into_iter()
            .map(|p| SchemeVersionInfo {
                version: p.version,
                published_at: p.published_at,
                published_by: p.published_by,
                complete: p.definition.is_complete(),
                missing: p.definition.missing_parameters().to_vec(),
            })
            .collect(),
    ))
}

/// Publishes a new version of a scheme (administrators). The definition is validated —
/// bands contiguous and ordered, rates within 0–1, amounts non-negative, required parameters
/// present — and refused with every problem found; published versions never change.
#[utoipa::path(
    operation_id = "publishSchemeVersion",
    tag = "schemes",
    security(("bearer" = [])),
    params(("code" = String, Path)),
    request_body = SchemeDefinition,
    responses(
        (status = 201, body = SchemeVersionResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "`publish_conflict`: published concurrently, retry", body = ErrorBody),
        (status = 422, description = "`scheme_invalid` with `details.problems[{path, reason}]`, or `invalid_request`", body = ErrorBody),
    )
)]
#[post("/schemes/{code}/versions")]
pub async fn publish(
    state: web::Data<AppState>,
    principal: Principal,
    code: web::Path<String>,
    body: web::Json<SchemeDefinition>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let definition = body.into_inner();
    if definition.code != *code {
        return Err(ApiError::invalid_field(
            "code",
            format!(
                "the definition's code `{}` differs from the path's `{code}`",
                definition.code
            ),
        ));
    }
    let published = scheme::publish(&state.db, &requester(&principal, &request_id), &definition)
        .await
        .map_err(|e| match e {
            PublishError::Invalid(problems) => ApiError::Invalid {
                code: "scheme_invalid",
                message: format!(
                    "方案定义无效，共 {} 处问题 / the definition has {} problem(s)",
                    problems.len(),
                    problems.len()
                ),
                details: json!({ "problems": problems }),
            },
            PublishError::Concurrent => ApiError::conflict(
                "publish_conflict",
                "另一版本刚刚发布，请重试 / another version was just published, try again",
            ),
            PublishError::Db(e) => e.into(),
        })?;
    Ok(HttpResponse::Created().json(SchemeVersionResponse::from(published)))
}
