//! Spreadsheets for clerks who live in Excel: the ledger (参互单位台账), the yearly summary,
//! the progress against targets, the blank roster template and next year's roster.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use tracing_actix_web::RequestId;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::xlsx;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::formats::workbook::WorkbookError;
use crate::service::export::{self, Export, ExportError};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(ledger)
        .service(summary)
        .service(progress)
        .service(template)
        .service(renewal_roster);
}

/// A workbook that could not be written: a 500, the cause logged.
pub(super) fn workbook_error(e: WorkbookError) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("writing the workbook"))
}

/// The file, or why there is none.
fn download(export: Result<Export, ExportError>) -> Result<HttpResponse, ApiError> {
    match export {
        Ok(export) => Ok(xlsx(export.bytes, &export.filename)),
        Err(ExportError::NotFound) => Err(ApiError::NotFound),
        Err(ExportError::Workbook(e)) => Err(workbook_error(e)),
        Err(ExportError::Db(e)) => Err(e.into()),
    }
}

/// `?year=&scheme=` of the exports.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Periods starting in this year.
    pub year: Option<i32>,
    pub scheme: Option<String>,
}

/// The ledger (参互单位台账) of an organisation's subtree: every membership, one row each
/// (staff; personal numbers masked unless the role needs them).
#[utoipa::path(
    operation_id = "exportLedger",
    tag = "exports",
    security(("bearer" = [])),
    params(("id" = String, Path), ExportQuery),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    )
)]
#[get("/organisations/{id}/ledger.xlsx")]
pub async fn ledger(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_staff()?;
    let query = query.into_inner();
    download(
        export::ledger(
            &state.db,
            &state.pii,
            &principal.scope,
            &id,
            query.year,
            query.scheme,
            principal.role.sees_full_personal_data(),
        )
        .await,
    )
}

/// The yearly summary of an organisation's subtree: per unit union and scheme, people
/// enrolled (in service, retired) and fees (staff).
#[utoipa::path(
    operation_id = "exportYearlySummary",
    tag = "exports",
    security(("bearer" = [])),
    params(("id" = String, Path), ExportQuery),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)
    )
)]
#[get("/organisations/{id}/summary.xlsx")]
pub async fn summary(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_staff()?;
    let year = query
        .year
        .ok_or_else(|| ApiError::invalid_field("year", "请给出年度 / give the year"))?;
    download(
        export::yearly_summary(
            &state.db,
            &principal.scope,
            &id,
            year,
            query.into_inner().scheme,
        )
        .await,
    )
}

/// `?year=&scheme=` of the progress export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressExportQuery {
    pub year: i32,
    pub scheme: Option<String>,
}

/// Targets, enrolled, completion and renewal rates of the caller's subtree, as a sheet.
#[utoipa::path(
    operation_id = "exportTargetProgress",
    tag = "exports",
    security(("bearer" = [])),
    params(ProgressExportQuery),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)
    )
)]
#[get("/targets/progress.xlsx")]
pub async fn progress(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ProgressExportQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_staff()?;
    if !(2000..=2100).contains(&query.year) {
        return Err(ApiError::invalid_field("year", "年份无效 / invalid year"));
    }
    download(
        export::target_progress(
            &state.db,
            &principal.scope,
            query.year,
            query.scheme.as_deref(),
            state.settings.today(),
        )
        .await,
    )
}

/// A blank roster template with the standard headers (anyone).
#[utoipa::path(
    operation_id = "getRosterTemplate",
    tag = "exports",
    responses((status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
)]
#[get("/roster-template.xlsx")]
pub async fn template() -> Result<HttpResponse, ApiError> {
    download(export::roster_template())
}

/// `?scheme=` of the renewal roster.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RenewalRosterQuery {
    /// Only the people of this scheme's enrolments.
    pub scheme: Option<String>,
}

/// Next year's roster of a unit union (续互名单): this year's people of its group enrolments in
/// the roster template's columns, with full ID numbers, and a note telling the clerk to delete
/// leavers and append joiners; uploaded back, it is an ordinary roster and the people carried
/// over renew continuously. Staff of the union or above; every download is audited; never
/// cached.
#[utoipa::path(
    operation_id = "exportRenewalRoster",
    tag = "exports",
    security(("bearer" = [])),
    params(("id" = String, Path), RenewalRosterQuery),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    )
)]
#[get("/organisations/{id}/renewal-roster.xlsx")]
pub async fn renewal_roster(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    query: web::Query<RenewalRosterQuery>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require_staff()?;
    download(
        export::renewal_roster(
            &state.db,
            &state.pii,
            &principal.scope,
            &id,
            query.into_inner().scheme,
            state.settings.today(),
            &principal.subject,
            Some(request_id.to_string()),
        )
        .await,
    )
}
