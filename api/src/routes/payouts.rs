//! Payout batches (the association): put every approved claim into a batch, download the
//! bank's payout file, import the bank's result.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{upload, validated};
use crate::auth::Principal;
use crate::domain::Money;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::service::claim::payout::{
    self, BatchError, BatchFilter, ImportError, ItemOutcome, PayoutBatch, PayoutBatchStatus,
    PayoutLine,
};
use crate::service::claim::payout_file::{self, FileError, FileFormat};
use crate::service::page::{Page, PageQuery};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(get_one)
        .service(file_xlsx)
        .service(file_csv)
        .service(import_result);
}

/// Who may pay claims: the association's benefit officers and administrators.
const PAYOUT_ROLES: &[Role] = &[Role::AssociationReviewer, Role::Admin];

/// Largest result file accepted.
const RESULT_LIMIT: usize = 16 * 1024 * 1024;

/// `POST /payout-batches`.
#[derive(Debug, Default, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct NewPayoutBatch {
    /// Only claims of this scheme; every scheme when absent.
    #[schema(example = "nm-inpatient-2025")]
    #[validate(length(min = 1, max = 64))]
    pub scheme_code: Option<String>,
}

/// A payout batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutBatchResponse {
    /// Public id.
    pub id: String,
    pub status: PayoutBatchStatus,
    /// Claims in the batch.
    pub item_count: i32,
    pub total: Money,
    /// Items awaiting the bank's result.
    pub pending: usize,
    pub paid: usize,
    pub failed: usize,
    pub created_at: DateTime<Utc>,
    /// When the last item got its result.
    pub result_imported_at: Option<DateTime<Utc>>,
}

impl From<&PayoutBatch> for PayoutBatchResponse {
    fn from(b: &PayoutBatch) -> Self {
        Self {
            id: b.pid.clone(),
            status: b.status,
            item_count: b.item_count,
            total: b.total,
            pending: b.tally.pending,
            paid: b.tally.paid,
            failed: b.tally.failed,
            created_at: b.created_at,
            result_imported_at: b.result_imported_at,
        }
    }
}

/// One claim's line in a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutItemResponse {
    /// 流水号, as in the bank's files.
    pub serial: String,
    /// Public id of the claim.
    pub claim_id: String,
    pub payee_name: String,
    pub amount: Money,
    pub outcome: ItemOutcome,
    /// The bank's reason, when it failed.
    pub failure_reason: Option<String>,
}

impl From<PayoutLine> for PayoutItemResponse {
    fn from(i: PayoutLine) -> Self {
        Self {
            serial: i.serial,
            claim_id: i.claim_pid,
            payee_name: i.payee_name,
            amount: i.amount,
            outcome: i.outcome,
            failure_reason: i.failure_reason,
        }
    }
}

/// A batch with its items, in the file's order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutBatchDetailResponse {
    pub batch: PayoutBatchResponse,
    pub items: Vec<PayoutItemResponse>,
}

/// Puts every claim in the caller's part of the tree that is approved with an amount to pay
/// (or whose earlier payout failed) into a new batch, optionally of one scheme, and moves each
/// to `paying`. A claim changed while the batch is made is left for the next one; no claim is
/// ever in two batches.
#[utoipa::path(
    operation_id = "createPayoutBatch",
    tag = "payouts",
    security(("bearer" = [])),
    request_body = NewPayoutBatch,
    responses(
        (status = 201, body = PayoutBatchResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "`invalid_request`, `nothing_to_pay`", body = ErrorBody),
    )
)]
#[post("/payout-batches")]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<NewPayoutBatch>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(PAYOUT_ROLES)?;
    let body = validated(body.into_inner())?;
    let filter = BatchFilter {
        scheme_code: body.scheme_code,
    };
    let created = payout::create_batch(
        &state.db,
        &principal.scope,
        &principal.subject,
        &filter,
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        BatchError::NothingToPay => ApiError::invalid_value(
            "nothing_to_pay",
            "scheme_code",
            "没有待拨付的已审批申领 / no approved claim awaits payment",
        ),
        BatchError::Db(e) => e.into(),
    })?;
    Ok(HttpResponse::Created().json(PayoutBatchResponse::from(&created.batch)))
}

/// Payout batches, newest first.
#[utoipa::path(
    operation_id = "listPayoutBatches",
    tag = "payouts",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<PayoutBatchResponse>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "`invalid_request` (cursor, limit)", body = ErrorBody),
    )
)]
#[get("/payout-batches")]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<PayoutBatchResponse>>, ApiError> {
    principal.require(PAYOUT_ROLES)?;
    let found = payout::list(&state.db, &principal.scope, page.after_id()?, page.limit()?).await?;
    Ok(web::Json(found.map(|b| PayoutBatchResponse::from(&b))))
}

async fn find(state: &AppState, principal: &Principal, id: &str) -> Result<PayoutBatch, ApiError> {
    principal.require(PAYOUT_ROLES)?;
    payout::get(&state.db, &principal.scope, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// One batch with its items and their outcomes.
#[utoipa::path(
    operation_id = "getPayoutBatch",
    tag = "payouts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, body = PayoutBatchDetailResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/payout-batches/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<PayoutBatchDetailResponse>, ApiError> {
    let batch = find(&state, &principal, &id).await?;
    let items = payout::items(&state.db, &batch).await?;
    Ok(web::Json(PayoutBatchDetailResponse {
        batch: PayoutBatchResponse::from(&batch),
        items: items.into_iter().map(PayoutItemResponse::from).collect(),
    }))
}

async fn download(
    state: &AppState,
    principal: &Principal,
    id: &str,
    request_id: RequestId,
    format: FileFormat,
) -> Result<HttpResponse, ApiError> {
    principal.require(PAYOUT_ROLES)?;
    let file = payout_file::download(
        &state.db,
        &state.pii,
        &principal.scope,
        id,
        format,
        &principal.subject,
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        FileError::NotFound => ApiError::NotFound,
        FileError::Render(e) => ApiError::Internal(e),
        FileError::Db(e) => e.into(),
    })?;
    Ok(match file.format {
        FileFormat::Xlsx => super::xlsx(file.bytes, &file.filename),
        FileFormat::Csv => super::attachment(file.bytes, "text/csv; charset=utf-8", &file.filename),
    })
}

/// The bank's payout file as `.xlsx`: 序号, 流水号, 户名, 银行卡号 (in full), 金额 (yuan, two
/// decimals), 摘要 (职工医疗互助补助 and the claim's id), then a totals row. Every download is
/// audited.
#[utoipa::path(
    operation_id = "getPayoutFileXlsx",
    tag = "payouts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/payout-batches/{id}/file.xlsx")]
pub async fn file_xlsx(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    download(&state, &principal, &id, request_id, FileFormat::Xlsx).await
}

/// The same payout file as CSV (UTF-8 with a byte-order mark), last line
/// `合计,<count>,<total>`, for banks that take CSV. Every download is audited.
#[utoipa::path(
    operation_id = "getPayoutFileCsv",
    tag = "payouts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/payout-batches/{id}/file.csv")]
pub async fn file_csv(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    download(&state, &principal, &id, request_id, FileFormat::Csv).await
}

/// `POST /payout-batches/{id}/result` (`multipart/form-data`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PayoutResultUpload {
    /// The bank's result, CSV in UTF-8 or GBK: `流水号,户名,金额,结果,失败原因` (header
    /// optional; 结果 is 成功 or 失败, a failure needs its reason), last line `合计,<count>`.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// What importing the bank's result did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutResultResponse {
    pub batch: PayoutBatchResponse,
    /// Claims paid by this import: each member is told.
    pub paid: usize,
    /// Claims whose payout failed in this import, each with the bank's reason; a new batch
    /// takes them again.
    pub failed: usize,
    /// Lines for items already decided the same way (a repeated import changes nothing).
    pub unchanged: usize,
}

/// Imports the bank's result for a batch. Every line must name an item of the batch with its
/// amount and payee name, once; otherwise 422 with a line-by-line report and nothing changes.
/// A file may cover part of the batch (the batch stays `exported` until every item has its
/// result); lines for items already decided the same way are passed over, so importing the
/// same file again is harmless. In one transaction each success marks its claim paid and
/// queues the member's message, and each failure keeps the bank's reason.
#[utoipa::path(
    operation_id = "importPayoutResult",
    tag = "payouts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body(content = PayoutResultUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = PayoutResultResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`claim_changed`: a claim of the batch changed during the import; try again", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "`invalid_request` (no file); `result_file_invalid`: `details.problems` lists each line's problem (`line`, `serial`, `code`, `message`) — codes `unknown_serial`, `duplicate_serial`, `amount_mismatch`, `name_mismatch`, `outcome_contradicts`, `claim_not_paying` and the file's own (`file_encoding`, `total_missing`, `count_mismatch`, `reason_missing`, `result_invalid`, …)", body = ErrorBody),
    )
)]
#[post("/payout-batches/{id}/result")]
pub async fn import_result(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    payload: actix_multipart::Multipart,
    request_id: RequestId,
) -> Result<web::Json<PayoutResultResponse>, ApiError> {
    principal.require(PAYOUT_ROLES)?;
    let parts = upload::read_form(payload, RESULT_LIMIT).await?;
    let file = upload::required(&parts, "file")?;
    let summary = payout::import_result(
        &state.db,
        &principal.scope,
        &id,
        &file.bytes,
        &principal.subject,
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        ImportError::NotFound => ApiError::NotFound,
        ImportError::Invalid(problems) => super::result_file_invalid(problems),
        ImportError::Concurrent => ApiError::conflict(
            "claim_changed",
            "导入期间批次中的申领有变动，请重新导入 / a claim changed during the import; import again",
        ),
        ImportError::Db(e) => e.into(),
    })?;
    Ok(web::Json(PayoutResultResponse {
        batch: PayoutBatchResponse::from(&summary.batch),
        paid: summary.paid.len(),
        failed: summary.failed.len(),
        unchanged: summary.unchanged,
    }))
}
