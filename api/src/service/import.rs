//! Roster imports as job resources: the upload is stored, a job row records it, and a
//! background task parses and checks every row (reporting progress the phone can poll), then
//! submits the enrolment in one transaction — all or nothing. A job survives a restart: queued
//! jobs (and ones left running by a stopped process) are picked up again on start.

use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use entity::import_job;

use super::enrolment::{self, CheckedRoster, EnrolmentError, EntryProblem, RosterEntry};
use super::roster_facts::{ExtraColumns, RosterFacts};
use super::{Problem, new_pid, organisation, scheme};
use crate::engine::primitives::coverage_period;
use crate::formats::roster::{
    ProblemWorkbookError, RosterError, RosterRules, RowProblem, check_roster, problem_workbook,
};
use crate::service::scope::{Scope, Scoped};
use crate::state::AppState;

/// What a roster import needs besides the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RosterImport {
    pub organisation_id: i64,
    pub scheme_code: String,
    pub head_count: u32,
    /// The day the roster counts from (enrolment window, ages).
    pub today: chrono::NaiveDate,
}

/// A job as the phone sees it.
#[derive(Clone, Debug)]
pub struct Job {
    pub pid: String,
    pub status: String,
    pub total_rows: i32,
    pub processed_rows: i32,
    /// `{"code","message","details"}` when the import was refused.
    pub report: Option<Value>,
    /// The enrolment batch created.
    pub result_pid: Option<String>,
    /// Row warnings that did not refuse the roster (`row`, `column`, `code`, `message_zh`).
    pub warnings: Vec<Value>,
}

fn to_job(m: import_job::Model) -> Job {
    let report: Option<Value> = m.report.and_then(|r| serde_json::from_str(&r).ok());
    let warnings = report
        .as_ref()
        .and_then(|r| r["details"]["warnings"].as_array().cloned())
        .unwrap_or_default();
    // A roster that went in with warnings only keeps them; its report is no refusal.
    let report = report.filter(|r| r["code"] != "imported");
    Job {
        pid: m.pid,
        status: m.status,
        total_rows: m.total_rows,
        processed_rows: m.processed_rows,
        report,
        result_pid: m.result_pid,
        warnings,
    }
}

/// A roster as a unit union uploads it.
#[derive(Clone, Debug)]
pub struct RosterUpload {
    /// Public id of the unit union.
    pub organisation_pid: String,
    pub scheme_code: String,
    pub head_count: u32,
    /// The `.xlsx` file.
    pub file: Vec<u8>,
    /// The day the roster counts from.
    pub today: chrono::NaiveDate,
}

/// Why an uploaded file (a roster, a settlement file) was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("no such organisation in the caller's subtree")]
    NotFound,
    /// `file_type` (not an `.xlsx`), `unknown_scheme`, `file_empty`.
    #[error("{}", .0.message)]
    Refused(Problem),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("storing the uploaded file: {0}")]
    Storage(#[from] opendal::Error),
}

/// `actor_pid` submits a roster for a unit union inside `scope`: the file is stored, a queued
/// job records it and is started in the background (poll it with [`get_within`]). Only the
/// file's first bytes are looked at here; every row is checked by the job. When the job cannot
/// be recorded the stored file is deleted again: nothing half-written.
pub async fn submit_roster(
    state: &AppState,
    scope: &Scope,
    actor_pid: &str,
    upload: RosterUpload,
) -> Result<Job, SubmitError> {
    if !upload.file.starts_with(b"PK\x03\x04") {
        let hint = if upload.file.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
            "这是旧版 .xls 文件，请在 Excel 中“另存为” .xlsx 后上传 / save the .xls as .xlsx"
        } else {
            "请上传 Excel .xlsx 文件 / upload an .xlsx file"
        };
        return Err(SubmitError::Refused(Problem::invalid_value(
            "file_type",
            "file",
            hint,
        )));
    }
    let unit = organisation::get_within(&state.db, scope, &upload.organisation_pid)
        .await?
        .ok_or(SubmitError::NotFound)?;
    if scheme::latest(&state.db, &upload.scheme_code)
        .await?
        .is_none()
    {
        return Err(SubmitError::Refused(Problem::invalid_value(
            "unknown_scheme",
            "scheme_code",
            format!("没有方案 {} / no such scheme", upload.scheme_code),
        )));
    }
    let key = format!("imports/{}.xlsx", new_pid());
    state.storage.write(&key, upload.file).await?;
    let params = RosterImport {
        organisation_id: unit.id,
        scheme_code: upload.scheme_code,
        head_count: upload.head_count,
        today: upload.today,
    };
    let (job_id, job) = match create_roster_job(&state.db, &params, &key, actor_pid).await {
        Ok(created) => created,
        Err(e) => {
            if let Err(deleted) = state.storage.delete(&key).await {
                tracing::warn!(key, error = %deleted, "could not delete the roster of a job not recorded");
            }
            return Err(e.into());
        }
    };
    tokio::spawn(run(state.clone(), job_id));
    Ok(job)
}

/// Records a queued roster import whose file is stored at `object_key`.
pub async fn create_roster_job<C: ConnectionTrait>(
    db: &C,
    params: &RosterImport,
    object_key: &str,
    created_by: &str,
) -> Result<(i64, Job), DbErr> {
    let model = create_job(
        db,
        "roster",
        params.organisation_id,
        params,
        object_key,
        created_by,
    )
    .await?;
    Ok((model.id, to_job(model)))
}

/// Records a queued import of `kind` (`roster`, `settlement`) for an organisation, whose file
/// is stored at `object_key`; [`run`] takes it from there.
pub(crate) async fn create_job<C: ConnectionTrait, P: Serialize>(
    db: &C,
    kind: &str,
    organisation_id: i64,
    params: &P,
    object_key: &str,
    created_by: &str,
) -> Result<import_job::Model, DbErr> {
    import_job::ActiveModel {
        pid: Set(new_pid()),
        organisation_id: Set(organisation_id),
        kind: Set(kind.into()),
        status: Set("queued".into()),
        total_rows: Set(0),
        processed_rows: Set(0),
        report: Set(None),
        result_pid: Set(None),
        object_key: Set(object_key.to_owned()),
        parameters: Set(serde_json::to_string(params).map_err(|e| DbErr::Custom(e.to_string()))?),
        created_by: Set(created_by.to_owned()),
        created_at: Set(Utc::now()),
        finished_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// A job by public id inside `scope`.
pub async fn get_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    pid: &str,
) -> Result<Option<Job>, DbErr> {
    Ok(import_job::Entity::find_pid_within(db, scope, pid)
        .await?
        .map(to_job))
}

/// Ends a job with its status, report and result.
pub(crate) async fn finish(
    db: &impl ConnectionTrait,
    id: i64,
    status: &str,
    report: Option<Value>,
    result: Option<String>,
) -> Result<(), DbErr> {
    import_job::ActiveModel {
        id: Set(id),
        status: Set(status.into()),
        report: Set(report.map(|r| r.to_string())),
        result_pid: Set(result),
        finished_at: Set(Some(Utc::now())),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

/// A report in the API's error shape, `{code, message, details}`.
pub(crate) fn refusal(code: &str, message: String, details: Value) -> Value {
    json!({ "code": code, "message": message, "details": details })
}

/// Runs a queued job to its end. Safe to call for a job another task has claimed: the
/// claim (queued → running) succeeds only once.
pub async fn run(state: AppState, job_id: i64) {
    if let Err(e) = run_inner(&state, job_id).await {
        tracing::error!(job_id, error = %e, "import job failed unexpectedly");
        let _ = finish(
            &state.db,
            job_id,
            "failed",
            Some(refusal(
                "internal_error",
                "导入失败，请稍后重试 / the import failed; try again".into(),
                json!({}),
            )),
            None,
        )
        .await;
    }
}

async fn run_inner(state: &AppState, job_id: i64) -> Result<(), anyhow::Error> {
    let claimed = import_job::Entity::update_many()
        .col_expr(import_job::Column::Status, Expr::value("running"))
        .filter(import_job::Column::Id.eq(job_id))
        .filter(import_job::Column::Status.eq("queued"))
        .exec(&state.db)
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(());
    }
    let job = import_job::Entity::find_by_id(job_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job {job_id} vanished"))?;
    if job.kind == super::settlement::JOB_KIND {
        return super::settlement::run_job(state, job).await;
    }
    let params: RosterImport = serde_json::from_str(&job.parameters)?;
    let bytes = state.storage.read(&job.object_key).await?.to_vec();

    let unit = organisation::get_by_id(&state.db, params.organisation_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("organisation {} vanished", params.organisation_id))?;
    let Some(published) = scheme::latest(&state.db, &params.scheme_code).await? else {
        finish(
            &state.db,
            job_id,
            "failed",
            Some(refusal(
                "unknown_scheme",
                format!("没有方案 {}", params.scheme_code),
                json!({}),
            )),
            None,
        )
        .await?;
        return Ok(());
    };
    let age_on = coverage_period(&published.definition.coverage, params.today)
        .map(|(start, _)| start)
        .unwrap_or(params.today);

    let definition = published.definition.clone();
    let parsed = with_progress(&state.db, job_id, move |progress| {
        let rules = RosterRules {
            scheme: &definition,
            age_on,
        };
        check_roster(&bytes, &rules, progress)
    })
    .await?;

    let checked = match parsed {
        Ok(checked) => checked,
        Err(e) => {
            let details = match &e {
                RosterError::Invalid { problems, rows } => {
                    json!({ "problems": problems, "rows_with_problems": rows })
                }
                RosterError::MissingColumns(columns) => json!({ "missing_columns": columns }),
                RosterError::TooManyRows { limit } => json!({ "limit": limit }),
                RosterError::Unreadable(_) => json!({}),
            };
            finish(
                &state.db,
                job_id,
                "failed",
                Some(refusal(e.code(), e.message_zh(), details)),
                None,
            )
            .await?;
            return Ok(());
        }
    };
    // Men on a women-only scheme are already reported; they do not count towards its share.
    let not_counted = checked
        .problems
        .iter()
        .filter(|p| p.code == "women_only")
        .count();
    let roster = CheckedRoster {
        entries: checked
            .rows
            .into_iter()
            .map(|r| RosterEntry {
                row: r.row,
                name: r.name,
                id_number: r.id_number,
                phone: r.phone,
                retired: r.retired,
                facts: RosterFacts {
                    workplace: r.employer,
                    department: r.department,
                    employee_number: r.employee_number,
                    remarks: r.note,
                    insured: r.insured,
                    extra_columns: ExtraColumns(r.extra),
                },
            })
            .collect(),
        people: checked.people,
        not_counted: u32::try_from(not_counted).unwrap_or(u32::MAX),
        problems: checked
            .problems
            .into_iter()
            .map(|p| EntryProblem {
                row: p.row,
                column: p.column,
                code: p.code,
                message_zh: p.message_zh,
            })
            .collect(),
        rows_with_problems: checked.rows_with_problems,
        id_number_column: checked.id_number_column,
        status_column: checked.status_column,
    };
    let total = i32::try_from(roster.entries.len()).unwrap_or(i32::MAX);
    let warnings = json!(checked.warnings);

    let txn = crate::db::begin_write(&state.db).await?;
    let submitted = enrolment::submit(
        &txn,
        &state.pii,
        &unit,
        &published,
        params.head_count,
        roster,
        &job.created_by,
        params.today,
    )
    .await;
    match submitted {
        Ok(batch) => {
            super::audit::record(
                &txn,
                &super::audit::Actor::Account { pid: job.created_by.clone() },
                "enrolment.submitted",
                ("enrolment_batch", Some(&batch.pid)),
                json!({ "members": batch.member_count, "head_count": batch.head_count, "scheme": batch.scheme_code, "import_job": job.pid }),
                None,
            )
            .await?;
            import_job::ActiveModel {
                id: Set(job_id),
                processed_rows: Set(total),
                total_rows: Set(total),
                ..Default::default()
            }
            .update(&txn)
            .await?;
            let report = (warnings.as_array().is_some_and(|w| !w.is_empty())).then(|| {
                refusal(
                    "imported",
                    "已导入，有需核对的提示 / imported, with warnings to look at".into(),
                    json!({ "warnings": warnings }),
                )
            });
            finish(&txn, job_id, "succeeded", report, Some(batch.pid)).await?;
            txn.commit().await?;
        }
        Err(EnrolmentError::Db(e)) => return Err(e.into()),
        Err(refused) => {
            txn.rollback().await?;
            let mut body = refused.into_problem()?.body_value();
            body["details"]["warnings"] = warnings;
            finish(&state.db, job_id, "failed", Some(body), None).await?;
        }
    }
    Ok(())
}

/// Runs `parse` on a blocking thread, handing it a `progress(done, total)` callback whose
/// figures reach the job row a few times a second (the phone polls them).
pub(crate) async fn with_progress<T, F>(
    db: &sea_orm::DatabaseConnection,
    job_id: i64,
    parse: F,
) -> Result<T, tokio::task::JoinError>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn FnMut(u32, u32)) -> T + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::watch::channel((0u32, 0u32));
    let parser = tokio::task::spawn_blocking(move || {
        let mut last = std::time::Instant::now();
        parse(&mut |done, total| {
            if last.elapsed() >= std::time::Duration::from_millis(200) || done == total {
                last = std::time::Instant::now();
                let _ = tx.send((done, total));
            }
        })
    });
    let db = db.clone();
    let reporter = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let (done, total) = *rx.borrow_and_update();
            let _ = import_job::ActiveModel {
                id: Set(job_id),
                processed_rows: Set(i32::try_from(done).unwrap_or(i32::MAX)),
                total_rows: Set(i32::try_from(total).unwrap_or(i32::MAX)),
                ..Default::default()
            }
            .update(&db)
            .await;
        }
    });
    let parsed = parser.await;
    let _ = reporter.await;
    parsed
}

/// Picks up jobs a previous process left queued or running (after a crash or restart).
pub async fn resume(state: AppState) {
    let stale = Utc::now() - Duration::minutes(10);
    let Ok(jobs) = import_job::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(import_job::Column::Status.eq("queued"))
                .add(
                    sea_orm::Condition::all()
                        .add(import_job::Column::Status.eq("running"))
                        .add(import_job::Column::CreatedAt.lt(stale)),
                ),
        )
        .all(&state.db)
        .await
    else {
        return;
    };
    for job in jobs {
        if job.status == "running" {
            let _ = import_job::Entity::update_many()
                .col_expr(import_job::Column::Status, Expr::value("queued"))
                .filter(import_job::Column::Id.eq(job.id))
                .filter(import_job::Column::Status.eq("running"))
                .exec(&state.db)
                .await;
        }
        tokio::spawn(run(state.clone(), job.id));
    }
}

/// Why there is no problem workbook for a job.
#[derive(Debug, thiserror::Error)]
pub enum ProblemReportError {
    #[error("no such import job in the caller's subtree")]
    NotFound,
    /// `no_problems`: the job did not end refused with problems.
    #[error("{}", .0.message)]
    Refused(Problem),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("reading the roster: {0}")]
    Storage(#[from] opendal::Error),
    #[error(transparent)]
    Workbook(#[from] ProblemWorkbookError),
}

/// The refused roster of job `pid` (inside `scope`) as the clerk's own workbook with every
/// problem written in (see [`problem_workbook`]): `(bytes, filename)`.
pub async fn problem_report_within(
    state: &AppState,
    scope: &Scope,
    pid: &str,
) -> Result<(Vec<u8>, String), ProblemReportError> {
    let job = import_job::Entity::find_pid_within(&state.db, scope, pid)
        .await?
        .ok_or(ProblemReportError::NotFound)?;
    let report: Option<Value> = job
        .report
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    let details = report.as_ref().map(|r| &r["details"]);
    let rows: Vec<RowProblem> = details
        .and_then(|d| d["problems"].as_array())
        .map(|list| {
            list.iter()
                .map(|p| RowProblem {
                    row: p["row"]
                        .as_u64()
                        .and_then(|r| u32::try_from(r).ok())
                        .unwrap_or(0),
                    column: p["column"].as_str().unwrap_or_default().to_owned(),
                    message_zh: p["message_zh"].as_str().unwrap_or_default().to_owned(),
                })
                .filter(|p| p.row > 0)
                .collect()
        })
        .unwrap_or_default();
    let batch: Vec<String> = details
        .and_then(|d| d["batch_problems"].as_array())
        .map(|list| {
            list.iter()
                .filter_map(|p| p["message_zh"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if job.status != "failed" || (rows.is_empty() && batch.is_empty()) {
        return Err(ProblemReportError::Refused(Problem::conflict(
            "no_problems",
            "该导入没有问题报告 / this import has no problem report",
            json!({ "status": job.status }),
        )));
    }
    let bytes = state.storage.read(&job.object_key).await?.to_vec();
    let workbook = tokio::task::spawn_blocking(move || problem_workbook(&bytes, &rows, &batch))
        .await
        .map_err(|e| DbErr::Custom(format!("the problem workbook task: {e}")))??;
    Ok((workbook, "名单问题报告.xlsx".to_owned()))
}
