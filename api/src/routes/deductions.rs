//! Monthly bank deductions (the association): create a month's batch, download the bank's
//! deduction file, import the bank's result file.

use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{upload, validated};
use crate::auth::Principal;
use crate::domain::Money;
use crate::domain::Role;
use crate::engine::YearMonth;
use crate::error::{ApiError, ErrorBody};
use crate::service::deduction::{
    self, BatchError, BatchStatus, DeductionBatch, FileError, ImportError,
};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create)
        .service(get_one)
        .service(file)
        .service(import_result);
}

/// Who may run deductions: the association's benefit officers and administrators.
const DEDUCTION_ROLES: &[Role] = &[Role::AssociationReviewer, Role::Admin];

/// Largest result file accepted.
const RESULT_LIMIT: usize = 16 * 1024 * 1024;

/// `POST /deductions`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct NewDeductionBatch {
    #[schema(example = "wj-2022")]
    #[validate(length(min = 1, max = 64))]
    pub scheme_code: String,
    /// The month deducted, `YYYY-MM` (it must have begun).
    #[schema(example = "2021-11")]
    pub month: String,
}

/// Where a batch stands.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeductionBatchStatus {
    /// The file can be downloaded; the bank's result is awaited.
    Exported,
    /// The bank's result was imported.
    ResultImported,
}

/// A month's deduction batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeductionBatchResponse {
    /// Public id.
    pub id: String,
    pub scheme_code: String,
    #[schema(example = "2021-11")]
    pub month: String,
    pub status: DeductionBatchStatus,
    pub item_count: i32,
    pub total: Money,
    pub exported_at: DateTime<Utc>,
    pub result_imported_at: Option<DateTime<Utc>>,
}

impl From<&DeductionBatch> for DeductionBatchResponse {
    fn from(b: &DeductionBatch) -> Self {
        Self {
            id: b.pid.clone(),
            scheme_code: b.scheme_code.clone(),
            month: b.month.to_string(),
            status: match b.status {
                BatchStatus::Exported => DeductionBatchStatus::Exported,
                BatchStatus::ResultImported => DeductionBatchStatus::ResultImported,
            },
            item_count: b.item_count,
            total: b.total,
            exported_at: b.exported_at,
            result_imported_at: b.result_imported_at,
        }
    }
}

/// Creates the month's deduction batch of an individual scheme: every authorisation signed
/// before the month's end and in force on its first day, leaving out members already enrolled
/// for the coverage period (and those whose earlier deduction awaits the bank). One batch per
/// scheme and month.
#[utoipa::path(
    operation_id = "createDeductionBatch",
    tag = "deductions",
    security(("bearer" = [])),
    request_body = NewDeductionBatch,
    responses(
        (status = 201, body = DeductionBatchResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "no such scheme", body = ErrorBody),
        (status = 409, description = "`batch_exists`", body = ErrorBody),
        (status = 422, description = "`month_invalid`, `month_not_started`, `not_individual_scheme`, `nothing_to_deduct`", body = ErrorBody),
    )
)]
#[post("/deductions")]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<NewDeductionBatch>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let body = validated(body.into_inner())?;
    let month = YearMonth::parse(&body.month).ok_or_else(|| {
        ApiError::invalid_value(
            "month_invalid",
            "month",
            "月份格式应为 YYYY-MM / expected YYYY-MM",
        )
    })?;
    let batch = deduction::start_batch(
        &state.db,
        &body.scheme_code,
        month,
        &principal.subject,
        Utc::now(),
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        BatchError::SchemeNotFound => ApiError::NotFound,
        BatchError::NotIndividual => ApiError::invalid_value(
            "not_individual_scheme",
            "scheme_code",
            "该方案不通过银行代扣参加 / this scheme does not enrol by bank deduction",
        ),
        BatchError::MonthNotStarted => ApiError::invalid_value(
            "month_not_started",
            "month",
            "该月尚未开始，不能生成扣款批次 / the month has not begun",
        ),
        BatchError::Exists => ApiError::Conflict {
            code: "batch_exists",
            message: "该方案本月的扣款批次已生成 / this month's batch exists".into(),
            details: json!({ "field": "month" }),
        },
        BatchError::NothingToDeduct => ApiError::invalid_value(
            "nothing_to_deduct",
            "month",
            "本月没有需要扣款的授权 / no authorisation to deduct this month",
        ),
        BatchError::Db(e) => e.into(),
    })?;
    Ok(HttpResponse::Created().json(DeductionBatchResponse::from(&batch)))
}

/// One deduction batch.
#[utoipa::path(
    operation_id = "getDeductionBatch",
    tag = "deductions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, body = DeductionBatchResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/deductions/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<DeductionBatchResponse>, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let batch = deduction::get(&state.db, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(web::Json(DeductionBatchResponse::from(&batch)))
}

/// The bank's deduction file: CSV, UTF-8 with a byte-order mark, columns
/// 序号,流水号,姓名,身份证号,银行卡号,金额 (full numbers), last line `合计,<count>,<total>`.
/// Every download is audited.
#[utoipa::path(
    operation_id = "getDeductionFile",
    tag = "deductions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/deductions/{id}/file")]
pub async fn file(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let (batch, bytes) = deduction::download_file(
        &state.db,
        &state.pii,
        &id,
        &principal.subject,
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        FileError::NotFound => ApiError::NotFound,
        FileError::Render(e) => ApiError::Internal(anyhow::Error::new(e).context("deduction file")),
        FileError::Db(e) => e.into(),
    })?;
    let filename = format!("deduction-{}-{}.csv", batch.scheme_code, batch.month);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(filename)],
        })
        .insert_header(("cache-control", "no-store"))
        .body(bytes))
}

/// What importing the bank's result did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeductionResultResponse {
    pub batch: DeductionBatchResponse,
    /// Deductions that succeeded: each member is enrolled and told.
    pub succeeded: usize,
    /// Deductions that failed: each member is told why.
    pub failed: usize,
    /// Serial numbers deducted although the member was already enrolled for the period (no new
    /// membership; refund them).
    pub already_enrolled: Vec<String>,
}

/// Imports the bank's result file (CSV, UTF-8 or GBK: `流水号,结果,失败原因` with 结果 成功 or 失败,
/// then `合计,<count>`). Every serial must belong to the batch and appear once, and the count
/// must match; otherwise 422 with a line-by-line report and nothing changes. In one
/// transaction each success enrols its member and each failure keeps the bank's reason, and
/// each queues a message to the member.
#[utoipa::path(
    operation_id = "importDeductionResult",
    tag = "deductions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, body = DeductionResultResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`result_already_imported`", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "`result_file_invalid`: `details.problems` lists each line's problem (`line`, `serial`, `code`, `message`)", body = ErrorBody),
    )
)]
#[post("/deductions/{id}/result")]
pub async fn import_result(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    payload: web::Payload,
    request_id: RequestId,
) -> Result<web::Json<DeductionResultResponse>, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let body = upload::read_body(payload, RESULT_LIMIT).await?;
    let (batch, summary) = deduction::record_result(
        &state.db,
        &id,
        &body,
        &principal.subject,
        Utc::now(),
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        ImportError::NotFound => ApiError::NotFound,
        ImportError::AlreadyImported => ApiError::conflict(
            "result_already_imported",
            "该批次的扣款结果已导入 / this batch's result was already imported",
        ),
        ImportError::Invalid(problems) => super::result_file_invalid(problems),
        ImportError::Db(e) => e.into(),
    })?;
    Ok(web::Json(DeductionResultResponse {
        batch: DeductionBatchResponse::from(&batch),
        succeeded: summary.succeeded,
        failed: summary.failed,
        already_enrolled: summary.already_enrolled,
    }))
}
