//! Benefits without application (免申即享): the association imports the medical-insurance
//! bureau's inpatient settlement file; each row is matched to a member's coverage period.

use actix_web::{get, post, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::upload;
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::service::settlement::{self, ImportSummary, ReportError, SettlementJob};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(submit).service(get_one).service(report);
}

/// Who imports the bureau's file: the association.
const IMPORT_ROLES: &[Role] = &[Role::AssociationReviewer, Role::Admin];

/// Largest settlement file accepted (200,000 rows of CSV are about 40 MB).
const MAX_SETTLEMENT_BYTES: usize = 64 * 1024 * 1024;

/// The upload: one `.xlsx` or `.csv` file.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SettlementUpload {
    /// The bureau's settlement file, `.xlsx` or CSV (UTF-8 or GBK).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A settlement import's progress and outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementImportResponse {
    /// Public id; poll `GET /settlement-imports/{id}`.
    pub id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub total_rows: i32,
    pub processed_rows: i32,
    /// When it succeeded: what became of the rows (the full list row by row:
    /// `GET /settlement-imports/{id}/report.xlsx`).
    pub summary: Option<ImportSummary>,
    /// When the file was refused as a whole (`settlement_unreadable`,
    /// `settlement_missing_columns`, `settlement_too_many_rows`): `{code, message, details}`.
    #[schema(value_type = Option<Object>)]
    pub refusal: Option<serde_json::Value>,
}

impl From<SettlementJob> for SettlementImportResponse {
    fn from(j: SettlementJob) -> Self {
        Self {
            id: j.pid,
            status: j.status,
            total_rows: j.total_rows,
            processed_rows: j.processed_rows,
            summary: j.summary,
            refusal: j.refusal,
        }
    }
}

/// The association imports the bureau's inpatient settlement file (`multipart/form-data`,
/// one `.xlsx` or `.csv`, UTF-8 or GBK). Read as a job: poll `GET /settlement-imports/{id}`.
/// Rows are matched by ID number to members of the caller's organisation and to the coverage
/// period holding the admission date; unmatched rows are reported, never stored; settlements
/// imported before are skipped (association reviewers, administrators).
#[utoipa::path(
    operation_id = "importSettlements",
    tag = "settlements",
    security(("bearer" = [])),
    request_body(content = SettlementUpload, content_type = "multipart/form-data"),
    responses(
        (status = 202, body = SettlementImportResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "`invalid_request`, `file_empty`", body = ErrorBody),
    )
)]
#[post("/settlement-imports")]
pub async fn submit(
    state: web::Data<AppState>,
    principal: Principal,
    payload: actix_multipart::Multipart,
) -> Result<
    (
        web::Json<SettlementImportResponse>,
        actix_web::http::StatusCode,
    ),
    ApiError,
> {
    principal.require(IMPORT_ROLES)?;
    let organisation = principal.organisation.clone().ok_or(ApiError::NotFound)?;
    let mut parts = upload::read_form(payload, MAX_SETTLEMENT_BYTES).await?;
    let file = upload::take(&mut parts, "file")?;
    let job = settlement::submit(
        &state,
        &principal.scope,
        &principal.subject,
        &organisation,
        file.bytes,
    )
    .await
    .map_err(|e| upload::submit_error(e, "storing the settlement file"))?;
    Ok((web::Json(job.into()), actix_web::http::StatusCode::ACCEPTED))
}

/// A settlement import's progress, and its summary when done.
#[utoipa::path(
    operation_id = "getSettlementImport",
    tag = "settlements",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = SettlementImportResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/settlement-imports/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<SettlementImportResponse>, ApiError> {
    principal.require(IMPORT_ROLES)?;
    settlement::get_within(&state.db, &principal.scope, &id)
        .await?
        .map(|j| web::Json(j.into()))
        .ok_or(ApiError::NotFound)
}

/// The import report: every row of the file with what became of it (matched, skipped as
/// imported before or repeated, unmatched with the reason, unreadable with the problem); ID
/// numbers masked.
#[utoipa::path(
    operation_id = "getSettlementImportReport",
    tag = "settlements",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`import_not_finished`: the import is running or was refused", body = ErrorBody),
    )
)]
#[get("/settlement-imports/{id}/report.xlsx")]
pub async fn report(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<actix_web::HttpResponse, ApiError> {
    principal.require(IMPORT_ROLES)?;
    let (bytes, filename) = settlement::report_within(&state, &principal.scope, &id)
        .await
        .map_err(|e| match e {
            ReportError::NotFound => ApiError::NotFound,
            ReportError::Refused(problem) => problem.into(),
            ReportError::Db(e) => e.into(),
            ReportError::Storage(e) => {
                ApiError::Internal(anyhow::Error::new(e).context("reading the settlement report"))
            }
        })?;
    Ok(super::xlsx(bytes, &filename))
}
