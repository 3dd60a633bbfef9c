//! Monthly bank deductions (the association's officer's desk): open a late window, create a
//! month's batch inside the enrolment window, list batches with their totals, each batch's
//! lines and results, download the bank's deduction file, import the bank's result file, the
//! failed deductions per union, and the refunds due (list, bank file, mark refunded).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{upload, validated};
use crate::auth::Principal;
use crate::domain::Money;
use crate::domain::Role;
use crate::engine::YearMonth;
use crate::error::{ApiError, ErrorBody};
use crate::service::deduction::{
    self, BatchError, BatchFilter, BatchStatus, DeductionBatch, DeductionLine, FailedFilter,
    FileError, ImportError, LateWindowError, Outcomes, Refund, RefundError,
};
use crate::service::page::{Page, PageQuery};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    // Fixed paths before `/deductions/{id}`.
    cfg.service(list)
        .service(failed)
        .service(create)
        .service(open_late_window)
        .service(list_refunds)
        .service(refund_file)
        .service(refund_file_xlsx)
        .service(mark_refunded)
        .service(get_one)
        .service(batch_lines)
        .service(file)
        .service(file_xlsx)
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
    /// First day of the coverage period the batch pays for.
    #[schema(example = "2022-01-01")]
    pub coverage_start: Option<NaiveDate>,
    /// Last day of that period.
    #[schema(example = "2022-12-31")]
    pub coverage_end: Option<NaiveDate>,
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
            coverage_start: b.period.map(|p| p.0),
            coverage_end: b.period.map(|p| p.1),
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
        (status = 422, description = "`month_invalid`, `month_not_started`, `not_individual_scheme`, `nothing_to_deduct`; `month_outside_window` (`details.opens`, `details.closes`: the month is before the window's month or begins after it closes); `enrolment_not_open` (`details.opens`) or `enrolment_closed` (`details.closes`, `details.coverage_start`, `details.coverage_end`): today (the service's calendar) is outside the scheme version's enrolment window and any late window, so no batch and no bank file exist", body = ErrorBody),
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
        state.settings.today(),
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        BatchError::SchemeNotFound => ApiError::NotFound,
        BatchError::WindowNotOpen { opens } => ApiError::Invalid {
            code: "enrolment_not_open",
            message: format!("参保登记 {opens} 开始 / the enrolment window opens on {opens}"),
            details: json!({ "field": "scheme_code", "opens": opens }),
        },
        BatchError::WindowClosed {
            closes,
            period_start,
            period_end,
        } => ApiError::Invalid {
            code: "enrolment_closed",
            message: format!(
                "{period_start} 至 {period_end} 保障期的参保登记已于 {closes} 截止 / the enrolment window for {period_start}..{period_end} closed on {closes}"
            ),
            details: json!({
                "field": "scheme_code",
                "closes": closes,
                "coverage_start": period_start,
                "coverage_end": period_end,
            }),
        },
        BatchError::MonthOutsideWindow {
            month,
            opens,
            closes,
        } => ApiError::Invalid {
            code: "month_outside_window",
            message: format!(
                "{month} 不在参保登记期内（截止 {closes}）/ the month {month} is outside the enrolment window (closing {closes})"
            ),
            details: json!({ "field": "month", "opens": opens, "closes": closes }),
        },
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
    let batch = deduction::get_within(&state.db, &principal.scope, &id)
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
    download(&state, &principal, &id, request_id, false).await
}

/// The same deduction file as an `.xlsx` workbook (ID and card numbers as text, a totals row),
/// for banks that take Excel. Every download is audited.
#[utoipa::path(
    operation_id = "getDeductionFileXlsx",
    tag = "deductions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = Vec<u8>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/deductions/{id}/file.xlsx")]
pub async fn file_xlsx(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    download(&state, &principal, &id, request_id, true).await
}

async fn download(
    state: &AppState,
    principal: &Principal,
    id: &str,
    request_id: RequestId,
    xlsx: bool,
) -> Result<HttpResponse, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let (batch, bytes) = deduction::download_file(
        &state.db,
        &state.pii,
        &principal.scope,
        id,
        &principal.subject,
        xlsx,
        Some(request_id.to_string()),
    )
    .await
    .map_err(file_error)?;
    let (extension, content_type) = if xlsx {
        ("xlsx", super::XLSX)
    } else {
        ("csv", "text/csv; charset=utf-8")
    };
    let filename = format!(
        "deduction-{}-{}.{extension}",
        batch.scheme_code, batch.month
    );
    Ok(super::attachment(bytes, content_type, &filename))
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
    /// membership; a refund record is due for each).
    pub already_enrolled: Vec<String>,
    /// Public ids of the refund records created (see `GET /deduction-refunds`).
    pub refunds: Vec<String>,
}

/// Imports the bank's result file (CSV, UTF-8 or GBK: `流水号,结果,失败原因` with 结果 成功 or 失败,
/// then `合计,<count>`). Every serial must belong to the batch and appear once, and the count
/// must match; otherwise 422 with a line-by-line report and nothing changes. In one
/// transaction each success enrols its member into the batch's coverage period (whatever day it
/// is imported) and each failure keeps the bank's reason, and each queues a message to the
/// member. A success for a member already enrolled for the period, or imported after the
/// period ended (on the service's calendar), enrols nobody and becomes a refund record.
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
        &principal.scope,
        &id,
        &body,
        &principal.subject,
        Utc::now(),
        state.settings.today(),
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
        refunds: summary.refunds,
    }))
}

/// `GET /deductions?scheme_code=&status=&month_from=&month_to=&cursor=&limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchListQuery {
    pub scheme_code: Option<String>,
    /// `exported` or `result_imported`.
    pub status: Option<String>,
    /// `YYYY-MM`, inclusive.
    pub month_from: Option<String>,
    /// `YYYY-MM`, inclusive.
    pub month_to: Option<String>,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<u64>,
}

fn month_param(field: &'static str, value: Option<&str>) -> Result<Option<YearMonth>, ApiError> {
    value
        .map(|v| {
            YearMonth::parse(v).ok_or_else(|| {
                ApiError::invalid_value(
                    "month_invalid",
                    field,
                    "月份格式应为 YYYY-MM / expected YYYY-MM",
                )
            })
        })
        .transpose()
}

/// A batch in the officer's list, with how its deductions ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeductionBatchSummary {
    #[serde(flatten)]
    pub batch: DeductionBatchResponse,
    pub pending: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub succeeded_amount: Money,
    pub failed_amount: Money,
}

/// The totals of the listed batches.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeductionTotals {
    pub batches: i64,
    pub items: i64,
    pub amount: Money,
    pub succeeded: i64,
    pub succeeded_amount: Money,
    pub failed: i64,
    pub failed_amount: Money,
    pub pending: i64,
}

/// The officer's list of batches: one page, and the totals of every batch the filter matches.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeductionBatchList {
    pub items: Vec<DeductionBatchSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
    pub totals: DeductionTotals,
}

/// The deduction batches inside the caller's part of the tree (newest first, a page at a time),
/// filtered, with each batch's outcome and the totals of all that match the filter.
#[utoipa::path(
    operation_id = "listDeductionBatches",
    tag = "deductions",
    security(("bearer" = [])),
    params(BatchListQuery),
    responses(
        (status = 200, body = DeductionBatchList),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "`month_invalid`, `invalid_request` (status, cursor, limit)", body = ErrorBody),
    )
)]
#[get("/deductions")]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<BatchListQuery>,
) -> Result<web::Json<DeductionBatchList>, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let status = match query.status.as_deref() {
        None => None,
        Some("exported") => Some(BatchStatus::Exported),
        Some("result_imported") => Some(BatchStatus::ResultImported),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "status",
                "状态应为 exported 或 result_imported / expected exported or result_imported",
            ));
        }
    };
    let filter = BatchFilter {
        scheme_code: query.scheme_code.clone(),
        status,
        month_from: month_param("month_from", query.month_from.as_deref())?,
        month_to: month_param("month_to", query.month_to.as_deref())?,
    };
    let page = page_query(&query.cursor, query.limit);
    let found = deduction::list_batches(
        &state.db,
        &principal.scope,
        &filter,
        page.after_id()?,
        page.limit()?,
    )
    .await?;
    let t = found.totals;
    Ok(web::Json(DeductionBatchList {
        items: found
            .page
            .items
            .iter()
            .map(
                |(b, o): &(DeductionBatch, Outcomes)| DeductionBatchSummary {
                    batch: DeductionBatchResponse::from(b),
                    pending: o.pending,
                    succeeded: o.succeeded,
                    failed: o.failed,
                    succeeded_amount: o.succeeded_amount,
                    failed_amount: o.failed_amount,
                },
            )
            .collect(),
        next_cursor: found.page.next_cursor,
        totals: DeductionTotals {
            batches: t.batches,
            items: t.items,
            amount: t.amount,
            succeeded: t.outcomes.succeeded,
            succeeded_amount: t.outcomes.succeeded_amount,
            failed: t.outcomes.failed,
            failed_amount: t.outcomes.failed_amount,
            pending: t.outcomes.pending,
        },
    }))
}

fn page_query(cursor: &Option<String>, limit: Option<u64>) -> PageQuery {
    PageQuery {
        cursor: cursor.clone(),
        limit,
    }
}

/// Where a deduction stands.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeductionStatus {
    /// In the bank's file; the result is awaited.
    Pending,
    /// Deducted: the member is enrolled for the period (or a refund is due).
    Succeeded,
    /// Not deducted: `failure_reason` says why.
    Failed,
}

/// One deduction (no personal numbers).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeductionLineResponse {
    /// Place in the bank's file.
    pub seq: usize,
    /// 流水号.
    pub serial: String,
    /// Public id of the batch.
    pub batch_id: String,
    pub scheme_code: String,
    #[schema(example = "2021-11")]
    pub month: String,
    /// Public id of the member.
    pub member_id: String,
    pub member_name: String,
    /// The member's unit union.
    pub union_name: String,
    pub amount: Money,
    pub status: DeductionStatus,
    /// The bank's reason, for a failure.
    pub failure_reason: Option<String>,
    pub coverage_start: Option<NaiveDate>,
    pub coverage_end: Option<NaiveDate>,
}

impl From<&DeductionLine> for DeductionLineResponse {
    fn from(l: &DeductionLine) -> Self {
        Self {
            seq: l.seq,
            serial: l.serial.clone(),
            batch_id: l.batch_pid.clone(),
            scheme_code: l.scheme_code.clone(),
            month: l.month.to_string(),
            member_id: l.member_pid.clone(),
            member_name: l.member_name.clone(),
            union_name: l.union_name.clone(),
            amount: l.amount,
            status: match l.status.as_str() {
                "succeeded" => DeductionStatus::Succeeded,
                "failed" => DeductionStatus::Failed,
                _ => DeductionStatus::Pending,
            },
            failure_reason: l.failure_reason.clone(),
            coverage_start: l.period.map(|p| p.0),
            coverage_end: l.period.map(|p| p.1),
        }
    }
}

/// A batch's deductions and their results, in the file's order, a page at a time.
#[utoipa::path(
    operation_id = "listDeductionLines",
    tag = "deductions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id"), PageQuery),
    responses(
        (status = 200, body = Page<DeductionLineResponse>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_request` (cursor, limit)", body = ErrorBody),
    )
)]
#[get("/deductions/{id}/lines")]
pub async fn batch_lines(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<DeductionLineResponse>>, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let lines = deduction::batch_lines(
        &state.db,
        &principal.scope,
        &id,
        page.after_id()?,
        page.limit()?,
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    Ok(web::Json(lines.map(|l| DeductionLineResponse::from(&l))))
}

/// `GET /deductions/failed?scheme_code=&month=&union_id=&cursor=&limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FailedQuery {
    pub scheme_code: Option<String>,
    /// `YYYY-MM`; absent: every month.
    pub month: Option<String>,
    /// Public id of one unit union; absent: every union.
    pub union_id: Option<String>,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<u64>,
}

/// One unit union's failed deductions, counted, for its follow-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedByUnion {
    /// Public id of the union (filter the lines with `union_id`).
    pub union_id: String,
    pub union_name: String,
    pub count: i64,
    pub amount: Money,
}

/// Failed deductions: every union's count and amount, and a page of the lines.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedDeductionList {
    /// Each union with failures (by name), over everything the filter matches.
    pub unions: Vec<FailedByUnion>,
    /// The failed deductions, newest first, each with the bank's reason.
    pub items: Vec<DeductionLineResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The failed deductions inside the caller's part of the tree, per unit union, each with the
/// bank's reason.
#[utoipa::path(
    operation_id = "listFailedDeductions",
    tag = "deductions",
    security(("bearer" = [])),
    params(FailedQuery),
    responses(
        (status = 200, body = FailedDeductionList),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "`month_invalid`, `invalid_request` (cursor, limit)", body = ErrorBody),
    )
)]
#[get("/deductions/failed")]
pub async fn failed(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<FailedQuery>,
) -> Result<web::Json<FailedDeductionList>, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let filter = FailedFilter {
        scheme_code: query.scheme_code.clone(),
        month: month_param("month", query.month.as_deref())?,
        union_pid: query.union_id.clone(),
    };
    let page = page_query(&query.cursor, query.limit);
    let found = deduction::failed_lines(
        &state.db,
        &principal.scope,
        &filter,
        page.after_id()?,
        page.limit()?,
    )
    .await?;
    Ok(web::Json(FailedDeductionList {
        unions: found
            .unions
            .into_iter()
            .map(|u| FailedByUnion {
                union_id: u.union_pid,
                union_name: u.union_name,
                count: u.count,
                amount: u.amount,
            })
            .collect(),
        items: found.page.items.iter().map(Into::into).collect(),
        next_cursor: found.page.next_cursor,
    }))
}

/// `POST /deduction-windows`: a late window for late payers.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct NewLateWindow {
    #[schema(example = "wj-2022")]
    #[validate(length(min = 1, max = 64))]
    pub scheme_code: String,
    /// Last day (inclusive) batches may be created, after the scheme's window and before the
    /// coverage period ends.
    #[schema(example = "2022-01-15")]
    pub closes: NaiveDate,
    /// Why (kept with the record).
    #[validate(length(min = 1, max = 500))]
    pub reason: String,
}

/// The late window as opened.
#[derive(Debug, Serialize, ToSchema)]
pub struct LateWindowResponse {
    pub scheme_code: String,
    pub closes: NaiveDate,
    pub coverage_start: NaiveDate,
    pub coverage_end: NaiveDate,
}

/// Opens a late window for a scheme's deductions (recorded with who, when and why): batches for
/// the same coverage period may be created until `closes`.
#[utoipa::path(
    operation_id = "openDeductionLateWindow",
    tag = "deductions",
    security(("bearer" = [])),
    request_body = NewLateWindow,
    responses(
        (status = 201, body = LateWindowResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`closes_out_of_range` (`details.earliest`, `details.latest`), `reason_required`, `not_individual_scheme`", body = ErrorBody),
    )
)]
#[post("/deduction-windows")]
pub async fn open_late_window(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<NewLateWindow>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let body = validated(body.into_inner())?;
    let (start, end) = deduction::open_late_window(
        &state.db,
        &body.scheme_code,
        body.closes,
        &body.reason,
        &principal.subject,
        Utc::now(),
        state.settings.today(),
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        LateWindowError::SchemeNotFound => ApiError::NotFound,
        LateWindowError::NotIndividual => ApiError::invalid_value(
            "not_individual_scheme",
            "scheme_code",
            "该方案不通过银行代扣参加 / this scheme does not enrol by bank deduction",
        ),
        LateWindowError::ReasonMissing => ApiError::invalid_value(
            "reason_required",
            "reason",
            "请写明原因 / a written reason is required",
        ),
        LateWindowError::ClosesOutOfRange { earliest, latest } => ApiError::Invalid {
            code: "closes_out_of_range",
            message: format!(
                "截止日应在 {earliest} 至 {latest} 之间 / the late window must close between {earliest} and {latest}"
            ),
            details: json!({ "field": "closes", "earliest": earliest, "latest": latest }),
        },
        LateWindowError::Db(e) => e.into(),
    })?;
    Ok(HttpResponse::Created().json(LateWindowResponse {
        scheme_code: body.scheme_code,
        closes: body.closes,
        coverage_start: start,
        coverage_end: end,
    }))
}

/// Why a fee goes back.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// Deducted while the member was already enrolled for the period by other means.
    AlreadyEnrolled,
    /// Deducted again after an earlier deduction had enrolled the member for the period.
    ChargedTwice,
    /// The bank's result came back after the coverage period had ended: nobody was enrolled.
    PeriodEnded,
}

/// Where a refund stands.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Due,
    Refunded,
}

/// A fee to give back.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundResponse {
    pub id: String,
    pub member_id: String,
    pub member_name: String,
    pub scheme_code: String,
    /// Public id of the batch that deducted it.
    pub batch_id: String,
    pub month: String,
    pub amount: Money,
    pub reason: RefundReason,
    pub status: RefundStatus,
    pub created_at: DateTime<Utc>,
    pub refunded_at: Option<DateTime<Utc>>,
}

impl From<&Refund> for RefundResponse {
    fn from(r: &Refund) -> Self {
        Self {
            id: r.pid.clone(),
            member_id: r.member_pid.clone(),
            member_name: r.member_name.clone(),
            scheme_code: r.scheme_code.clone(),
            batch_id: r.batch_pid.clone(),
            month: r.month.to_string(),
            amount: r.amount,
            reason: match r.reason.as_str() {
                deduction::REFUND_CHARGED_TWICE => RefundReason::ChargedTwice,
                deduction::REFUND_PERIOD_ENDED => RefundReason::PeriodEnded,
                _ => RefundReason::AlreadyEnrolled,
            },
            status: if r.status == deduction::REFUND_DONE {
                RefundStatus::Refunded
            } else {
                RefundStatus::Due
            },
            created_at: r.created_at,
            refunded_at: r.refunded_at,
        }
    }
}

/// `GET /deduction-refunds?status=&cursor=&limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefundQuery {
    /// `due` or `refunded`; absent: both.
    pub status: Option<String>,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<u64>,
}

/// The refund records of members inside the caller's part of the tree, newest first, a page at
/// a time.
#[utoipa::path(
    operation_id = "listDeductionRefunds",
    tag = "deductions",
    security(("bearer" = [])),
    params(RefundQuery),
    responses(
        (status = 200, body = Page<RefundResponse>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[get("/deduction-refunds")]
pub async fn list_refunds(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<RefundQuery>,
) -> Result<web::Json<Page<RefundResponse>>, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s @ (deduction::REFUND_DUE | deduction::REFUND_DONE)) => Some(s),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "status",
                "状态应为 due 或 refunded / expected due or refunded",
            ));
        }
    };
    let page = page_query(&query.cursor, query.limit);
    let refunds = deduction::list_refunds(
        &state.db,
        &principal.scope,
        status,
        page.after_id()?,
        page.limit()?,
    )
    .await?;
    Ok(web::Json(refunds.map(|r| RefundResponse::from(&r))))
}

/// The refunds due as the bank's file: CSV with a byte-order mark, columns
/// 序号,退款编号,姓名,身份证号,银行卡号,金额,原因 (the card the fee came from, full numbers), last line
/// `合计,<count>,<total>`. Audited.
#[utoipa::path(
    operation_id = "getDeductionRefundFile",
    tag = "deductions",
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
#[get("/deduction-refunds/file")]
pub async fn refund_file(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    refund_download(&state, &principal, request_id, false).await
}

/// The same refund file as an `.xlsx` workbook (sheet 退款明细; ID and card numbers as text, a
/// totals row), for banks that take Excel. Audited.
#[utoipa::path(
    operation_id = "getDeductionRefundFileXlsx",
    tag = "deductions",
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", body = Vec<u8>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
#[get("/deduction-refunds/file.xlsx")]
pub async fn refund_file_xlsx(
    state: web::Data<AppState>,
    principal: Principal,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    refund_download(&state, &principal, request_id, true).await
}

async fn refund_download(
    state: &AppState,
    principal: &Principal,
    request_id: RequestId,
    xlsx: bool,
) -> Result<HttpResponse, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let bytes = deduction::refund_file(
        &state.db,
        &state.pii,
        &principal.scope,
        &principal.subject,
        xlsx,
        Some(request_id.to_string()),
    )
    .await
    .map_err(file_error)?;
    let (filename, content_type) = if xlsx {
        ("refunds.xlsx", super::XLSX)
    } else {
        ("refunds.csv", "text/csv; charset=utf-8")
    };
    Ok(super::attachment(bytes, content_type, filename))
}

/// Records that a refund was paid back (once; audited).
#[utoipa::path(
    operation_id = "markDeductionRefunded",
    tag = "deductions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id of the refund")),
    responses(
        (status = 200, body = RefundResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`already_refunded`", body = ErrorBody),
    )
)]
#[post("/deduction-refunds/{id}/refunded")]
pub async fn mark_refunded(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    request_id: RequestId,
) -> Result<web::Json<RefundResponse>, ApiError> {
    principal.require(DEDUCTION_ROLES)?;
    let refund = deduction::mark_refunded(
        &state.db,
        &principal.scope,
        &id,
        &principal.subject,
        Utc::now(),
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        RefundError::NotFound => ApiError::NotFound,
        RefundError::AlreadyRefunded => ApiError::conflict(
            "already_refunded",
            "该笔退款已标记为已退 / this refund is already marked refunded",
        ),
        RefundError::Db(e) => e.into(),
    })?;
    Ok(web::Json(RefundResponse::from(&refund)))
}

fn file_error(e: FileError) -> ApiError {
    match e {
        FileError::NotFound => ApiError::NotFound,
        FileError::Render(e) => ApiError::Internal(anyhow::Error::new(e).context("bank file")),
        FileError::Workbook(e) => {
            ApiError::Internal(anyhow::Error::new(e).context("bank workbook"))
        }
        FileError::Db(e) => e.into(),
    }
}
