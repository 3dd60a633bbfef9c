//! Group enrolment on the phone: the union's batches, its bank transfer, the association's
//! confirmation. (Rosters are uploaded through `POST /enrolments`, see `roster_upload`.)

use actix_web::{get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{OrganisationRef, upload, validated};
use crate::auth::Principal;
use crate::domain::Money;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::service::enrolment::{self, Batch, BatchStatus, Closing, EnrolmentError, StepError};
use crate::service::import::{self, ProblemReportError};
use crate::service::page::{Page, PageQuery};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(submit)
        .service(import_job)
        .service(problem_report)
        .service(list)
        .service(get_one)
        .service(comparison)
        .service(record_transfer)
        .service(confirm)
        .service(refuse)
        .service(withdraw);
}

/// An enrolment batch: one unit union's roster for one scheme.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// Public id.
    pub id: String,
    pub organisation: OrganisationRef,
    pub scheme_code: String,
    pub scheme_version: i32,
    pub status: BatchStatus,
    /// Eligible employees the union declared.
    pub head_count: i32,
    pub member_count: i32,
    /// Paid by the members (to transfer).
    pub fee_total: Money,
    /// Added by the regional union, shown apart (not transferred by the unit).
    pub regional_share_total: Money,
    #[schema(value_type = String, example = "0.80")]
    pub participation_ratio: Decimal,
    pub transfer_reference: Option<String>,
    pub coverage_start: Option<NaiveDate>,
    pub coverage_end: Option<NaiveDate>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Send back with the next step; a stale version is refused with 409.
    pub version: i32,
    /// Why the batch was refused or withdrawn (`refused`, `withdrawn`).
    pub closed_reason: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl From<Batch> for BatchResponse {
    fn from(b: Batch) -> Self {
        let ratio = if b.head_count > 0 {
            (Decimal::from(b.member_count) / Decimal::from(b.head_count))
                .round_dp(4)
                .normalize()
        } else {
            Decimal::ZERO
        };
        Self {
            id: b.pid,
            organisation: OrganisationRef {
                id: b.organisation_pid,
                name: b.organisation_name,
            },
            scheme_code: b.scheme_code,
            scheme_version: b.scheme_version,
            status: b.status,
            head_count: b.head_count,
            member_count: b.member_count,
            fee_total: b.fee_total,
            regional_share_total: b.regional_share_total,
            participation_ratio: ratio,
            transfer_reference: b.transfer_reference,
            coverage_start: b.coverage.map(|c| c.0),
            coverage_end: b.coverage.map(|c| c.1),
            confirmed_at: b.confirmed_at,
            created_at: b.created_at,
            version: b.version,
            closed_reason: b.closed.as_ref().map(|c| c.0.clone()),
            closed_at: b.closed.map(|c| c.1),
        }
    }
}

/// Maps enrolment refusals to clear errors.
pub fn enrolment_error(e: EnrolmentError) -> ApiError {
    match e.into_problem() {
        Ok(problem) => problem.into(),
        Err(db) => db.into(),
    }
}

fn step_error(e: StepError) -> ApiError {
    match e {
        StepError::NotFound => ApiError::NotFound,
        StepError::Refused(e) => enrolment_error(e),
    }
}

/// The multipart form of `POST /enrolments` (for the document).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct RosterUpload {
    /// Public id of the unit union.
    organisation_id: String,
    #[schema(example = "nm-inpatient-2025")]
    scheme_code: String,
    /// Eligible employees of the unit (for Xinkang: its active women).
    head_count: u32,
    /// The roster, `.xlsx` (序号, 姓名, 身份证号码, 手机号码, 工作单位, 部门, 工号, 是否参加医保,
    /// 在职/退休, 备注; any other column with a header is kept on the entry, personal numbers
    /// in it masked).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A roster import's progress and outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportJobResponse {
    /// Public id; poll `GET /import-jobs/{id}`.
    pub id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub total_rows: i32,
    pub processed_rows: i32,
    /// When refused: `{code, message, details}`. Every problem is found in one pass:
    /// `details.problems` lists every row problem — the file's own checks, duplicates inside it,
    /// and the database's (already enrolled elsewhere, retirees' continuity) — each with `row`
    /// (Excel's), `column`, `code`, `message_zh`; `details.batch_problems` the batch's
    /// (`participation_too_low`, `head_count_too_small`: `code`, `message_zh`, `details`);
    /// `details.rows_with_problems` how many rows are bad. `code` is `roster_invalid` when a row
    /// is bad, else the first batch problem's. Nothing was imported; the same report as the
    /// clerk's workbook: `GET /import-jobs/{id}/problems.xlsx`.
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    /// The enrolment batch created, when it succeeded.
    pub enrolment_id: Option<String>,
    /// What to look at without being refused (`phone_landline`, `name_rare_character`,
    /// `personal_number_masked`, `text_cut`, `column_not_kept`): each
    /// with `row`, `column`, `code`, `message_zh`.
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<serde_json::Value>,
}

impl From<import::Job> for ImportJobResponse {
    fn from(j: import::Job) -> Self {
        Self {
            id: j.pid,
            status: j.status,
            total_rows: j.total_rows,
            processed_rows: j.processed_rows,
            report: j.report,
            enrolment_id: j.result_pid,
            warnings: j.warnings,
        }
    }
}

/// Largest roster file accepted.
const MAX_ROSTER_BYTES: usize = 20 * 1024 * 1024;

/// A unit union submits its roster for a scheme (`multipart/form-data`, one `.xlsx`). The
/// file is checked as a job: poll `GET /import-jobs/{id}` for progress; every row is checked
/// and a file with any bad row imports nothing (union reviewers, administrators).
#[utoipa::path(
    operation_id = "submitEnrolment",
    tag = "enrolments",
    security(("bearer" = [])),
    request_body(content = RosterUpload, content_type = "multipart/form-data"),
    responses(
        (status = 202, body = ImportJobResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "`invalid_request`, `file_type` (not an .xlsx), `unknown_scheme`", body = ErrorBody),
    )
)]
#[post("/enrolments")]
pub async fn submit(
    state: web::Data<AppState>,
    principal: Principal,
    payload: actix_multipart::Multipart,
) -> Result<(web::Json<ImportJobResponse>, actix_web::http::StatusCode), ApiError> {
    principal.require(&[Role::UnionReviewer, Role::Admin])?;
    let mut parts = upload::read_form(payload, MAX_ROSTER_BYTES).await?;
    let organisation_id = upload::required(&parts, "organisation_id")?.text("organisation_id")?;
    let scheme_code = upload::required(&parts, "scheme_code")?.text("scheme_code")?;
    let head_count: u32 = upload::required(&parts, "head_count")?
        .text("head_count")?
        .parse()
        .ok()
        .filter(|n| *n > 0 && *n <= 1_000_000)
        .ok_or_else(|| {
            ApiError::invalid_field("head_count", "职工人数应为正整数 / a positive whole number")
        })?;
    let file = upload::take(&mut parts, "file")?;
    let roster = import::RosterUpload {
        organisation_pid: organisation_id,
        scheme_code,
        head_count,
        file: file.bytes,
        today: state.settings.today(),
    };
    let job = import::submit_roster(&state, &principal.scope, &principal.subject, roster)
        .await
        .map_err(|e| upload::submit_error(e, "storing the roster"))?;
    Ok((web::Json(job.into()), actix_web::http::StatusCode::ACCEPTED))
}

/// A roster import's progress, and its report or enrolment when done.
#[utoipa::path(
    operation_id = "getImportJob",
    tag = "enrolments",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ImportJobResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/import-jobs/{id}")]
pub async fn import_job(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<ImportJobResponse>, ApiError> {
    principal.require_staff()?;
    import::get_within(&state.db, &principal.scope, &id)
        .await?
        .map(|j| web::Json(j.into()))
        .ok_or(ApiError::NotFound)
}

/// A refused roster as the clerk's own workbook: every cell as uploaded, a 问题 column filled on
/// each bad row, the cells at fault highlighted, the batch's problems on a second sheet. Fix it
/// in Excel and upload it again (staff).
#[utoipa::path(
    operation_id = "getImportProblemWorkbook",
    tag = "enrolments",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`no_problems`: the import was not refused for its rows or batch", body = ErrorBody),
    )
)]
#[get("/import-jobs/{id}/problems.xlsx")]
pub async fn problem_report(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<actix_web::HttpResponse, ApiError> {
    principal.require_staff()?;
    let (bytes, filename) = import::problem_report_within(&state, &principal.scope, &id)
        .await
        .map_err(|e| match e {
            ProblemReportError::NotFound => ApiError::NotFound,
            ProblemReportError::Refused(problem) => problem.into(),
            ProblemReportError::Db(e) => e.into(),
            ProblemReportError::Storage(e) => {
                ApiError::Internal(anyhow::Error::new(e).context("reading the roster"))
            }
            ProblemReportError::Workbook(e) => {
                ApiError::Internal(anyhow::Error::new(e).context("writing the problem workbook"))
            }
        })?;
    Ok(super::xlsx(bytes, &filename))
}

/// Filters of `GET /enrolments`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchQuery {
    pub status: Option<BatchStatus>,
    pub scheme: Option<String>,
}

/// Enrolment batches in the caller's subtree, newest first (staff).
#[utoipa::path(
    operation_id = "listEnrolments",
    tag = "enrolments",
    security(("bearer" = [])),
    params(BatchQuery, PageQuery),
    responses((status = 200, body = Page<BatchResponse>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/enrolments")]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    filter: web::Query<BatchQuery>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<BatchResponse>>, ApiError> {
    principal.require_staff()?;
    let found = enrolment::list_within(
        &state.db,
        &principal.scope,
        filter.status,
        filter.scheme.as_deref(),
        page.after_id()?,
        page.limit()?,
    )
    .await?;
    Ok(web::Json(found.map(BatchResponse::from)))
}

/// One batch (404 outside the caller's subtree).
#[utoipa::path(
    operation_id = "getEnrolment",
    tag = "enrolments",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = BatchResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/enrolments/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<BatchResponse>, ApiError> {
    principal.require_staff()?;
    enrolment::get_within(&state.db, &principal.scope, &id)
        .await?
        .map(|b| web::Json(b.into()))
        .ok_or(ApiError::NotFound)
}

/// `POST /enrolments/{id}/transfer`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reference": "202503150001234", "version": 2}))]
pub struct TransferRequest {
    /// The bank transfer's reference (流水号).
    #[validate(length(min = 1, max = 100))]
    pub reference: String,
    /// The batch version read.
    pub version: i32,
}

/// The union records its bank transfer of the fees (union reviewers, administrators).
#[utoipa::path(
    operation_id = "recordEnrolmentTransfer",
    tag = "enrolments",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = TransferRequest,
    responses(
        (status = 200, body = BatchResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`wrong_state` or `stale_version`", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/enrolments/{id}/transfer")]
pub async fn record_transfer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<TransferRequest>,
    request_id: RequestId,
) -> Result<web::Json<BatchResponse>, ApiError> {
    principal.require(&[Role::UnionReviewer, Role::Admin])?;
    let body = validated(body.into_inner())?;
    let updated = enrolment::record_transfer_within(
        &state.db,
        &principal.scope,
        &id,
        body.version,
        &body.reference,
        &principal.subject,
        Some(request_id.to_string()),
    )
    .await
    .map_err(step_error)?;
    Ok(web::Json(updated.into()))
}

/// `POST /enrolments/{id}/confirm`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"version": 3}))]
pub struct ConfirmRequest {
    /// The batch version read.
    pub version: i32,
}

/// The association confirms receipt of the fees: the enrolment completes, each member's
/// coverage period is fixed (the day after completion for a year, or the calendar year, per
/// scheme) and each member is told (association reviewers, administrators).
#[utoipa::path(
    operation_id = "confirmEnrolment",
    tag = "enrolments",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = ConfirmRequest,
    responses(
        (status = 200, body = BatchResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`wrong_state` or `stale_version`", body = ErrorBody),
    )
)]
#[post("/enrolments/{id}/confirm")]
pub async fn confirm(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<ConfirmRequest>,
    request_id: RequestId,
) -> Result<web::Json<BatchResponse>, ApiError> {
    principal.require(&[Role::AssociationReviewer, Role::Admin])?;
    let updated = enrolment::confirm_within(
        &state.db,
        &principal.scope,
        &id,
        body.version,
        &principal.subject,
        state.settings.today(),
        Some(request_id.to_string()),
    )
    .await
    .map_err(step_error)?;
    Ok(web::Json(updated.into()))
}

/// `POST /enrolments/{id}/refuse` and `/withdraw`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "未收到转账，请核对后重新提交", "version": 2}))]
pub struct CloseRequest {
    /// Why, for the union and the audit trail.
    #[validate(length(min = 2, max = 500))]
    pub reason: String,
    /// The batch version read.
    pub version: i32,
}

/// The association sends a batch back unconfirmed — awaiting the union's transfer or its own
/// confirmation (no or a wrong transfer, a roster it will not take) — with a reason: nobody on
/// it is enrolled, it counts as refused in progress, and its people may be on a corrected
/// roster (association reviewers, administrators).
#[utoipa::path(
    operation_id = "refuseEnrolment",
    tag = "enrolments",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = CloseRequest,
    responses(
        (status = 200, body = BatchResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`wrong_state` (confirmed, refused or withdrawn already) or `stale_version`", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/enrolments/{id}/refuse")]
pub async fn refuse(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<CloseRequest>,
    request_id: RequestId,
) -> Result<web::Json<BatchResponse>, ApiError> {
    principal.require(&[Role::AssociationReviewer, Role::Admin])?;
    close(state, principal, id, body, request_id, Closing::Refuse).await
}

/// The union withdraws its batch before recording a transfer (to correct the roster), with a
/// reason: nobody on it is enrolled and its people may be on the corrected roster (union
/// reviewers, administrators).
#[utoipa::path(
    operation_id = "withdrawEnrolment",
    tag = "enrolments",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = CloseRequest,
    responses(
        (status = 200, body = BatchResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`wrong_state` (transfer recorded: the association refuses it instead; or ended already) or `stale_version`", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/enrolments/{id}/withdraw")]
pub async fn withdraw(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<CloseRequest>,
    request_id: RequestId,
) -> Result<web::Json<BatchResponse>, ApiError> {
    principal.require(&[Role::UnionReviewer, Role::Admin])?;
    close(state, principal, id, body, request_id, Closing::Withdraw).await
}

async fn close(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<CloseRequest>,
    request_id: RequestId,
    closing: Closing,
) -> Result<web::Json<BatchResponse>, ApiError> {
    let body = validated(body.into_inner())?;
    let updated = enrolment::close_within(
        &state.db,
        &principal.scope,
        &id,
        body.version,
        closing,
        &body.reason,
        &principal.subject,
        Some(request_id.to_string()),
    )
    .await
    .map_err(step_error)?;
    Ok(web::Json(updated.into()))
}

/// A person in a comparison.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonRef {
    pub member_id: String,
    pub name: String,
}

/// The roster against the unit's previous confirmed roster of the same scheme.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComparisonResponse {
    /// The previous enrolment, when there is one.
    pub previous_enrolment_id: Option<String>,
    pub carried_over: Vec<PersonRef>,
    pub left: Vec<PersonRef>,
    pub new: Vec<PersonRef>,
}

/// Who was carried over from the unit's last roster, who left, who is new (staff).
#[utoipa::path(
    operation_id = "compareEnrolment",
    tag = "enrolments",
    security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = ComparisonResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/enrolments/{id}/comparison")]
pub async fn comparison(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<ComparisonResponse>, ApiError> {
    principal.require_staff()?;
    let c = enrolment::comparison_within(&state.db, &principal.scope, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let people = |v: Vec<(String, String)>| {
        v.into_iter()
            .map(|(member_id, name)| PersonRef { member_id, name })
            .collect()
    };
    Ok(web::Json(ComparisonResponse {
        previous_enrolment_id: c.previous_pid,
        carried_over: people(c.carried_over),
        left: people(c.left),
        new: people(c.new),
    }))
}
