//! 免申即享, step one: the medical-insurance bureau's inpatient settlement file, imported by the
//! association and matched to its members' coverage periods.
//!
//! The file is stored and read by an import job ([`super::import`]: the same job rows, progress
//! and restart as rosters). Matching is set-based — the whole file is read, then members are
//! found by their ID look-up hash and memberships by member id in batched `IN` lists, and the
//! matches are inserted in batches — so a file of 200,000 rows costs a few hundred statements,
//! not a few per row.
//!
//! Data minimisation: a row that does not match (not a member, not covered that day, an
//! outpatient settlement, another insurance) is never stored. The job's report in the database
//! names such rows by their row number and reason only; the downloadable report workbook (in
//! object storage) shows their ID numbers masked; the uploaded file itself is deleted once the
//! report is written. A settlement ID already imported by the organisation is skipped, so
//! importing a file again adds nothing.
//!
//! A row is matched twice over when its main diagnosis (ICD-10) is on the disease list of a
//! women's scheme (馨康, the list is the scheme's data) and the member has a period of that
//! scheme holding the discharge date: the stay for the inpatient scheme, the diagnosis for the
//! women's — one stored row each, told apart by `event_kind`.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use entity::{import_job, member, membership, settlement};

use super::bulk::{self, Kind};
use super::import::{self, finish, refusal};
use super::scope::{Scope, Scoped};
use super::{Problem, new_pid, organisation, scheme};
use crate::auth::crypto::PiiKind;
use crate::engine::EventKind;
use crate::engine::scheme::DiagnosisRules;
use crate::formats::roster::RosterError;
use crate::formats::settlement::{RowProblem, SettlementRow, read_settlements};
use crate::formats::workbook::{Cell, Sheet, WorkbookError, write_workbook};
use crate::state::AppState;

/// The `kind` of a settlement import job.
pub const JOB_KIND: &str = "settlement";

/// Values per look-up (one JSON parameter each, [`bulk`]): 200,000 rows take a few dozen
/// statements.
const BATCH: usize = 10_000;

/// The columns of a stored settlement, as the import writes them.
const SETTLEMENT_COLUMNS: [(&str, Kind); 26] = [
    ("pid", Kind::Text),
    ("organisation_id", Kind::Int),
    ("import_job_id", Kind::Int),
    ("row", Kind::Int),
    ("settlement_id", Kind::Text),
    ("member_id", Kind::Int),
    ("membership_id", Kind::Int),
    ("hospital", Kind::Text),
    ("admitted_on", Kind::Date),
    ("discharged_on", Kind::Date),
    ("billed_days", Kind::Int),
    ("total_fen", Kind::Int),
    ("fund_fen", Kind::Int),
    ("critical_illness_fen", Kind::Int),
    ("deductible_fen", Kind::Int),
    ("eligible_self_pay_fen", Kind::Int),
    ("self_funded_fen", Kind::Int),
    ("settled_on", Kind::Date),
    ("insurance_type", Kind::Text),
    ("medical_category", Kind::Text),
    ("diagnosis_code", Kind::Text),
    ("diagnosis_name", Kind::Text),
    ("discharge_way", Kind::Text),
    ("event_kind", Kind::Text),
    ("outcome", Kind::Text),
    ("created_at", Kind::Timestamp),
];

/// Most problems and unmatched rows listed in the job's report (all are counted; the report
/// workbook lists every row).
const MAX_LISTED: usize = 1_000;

/// What a settlement import needs besides the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SettlementImport {
    /// The importing organisation (the association).
    organisation_id: i64,
    /// Its materialised path: members are matched inside this subtree only.
    path: String,
}

/// Why a settlement row was not matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// No member with this ID number in the organisation's subtree.
    NotAMember,
    /// A member, but with no coverage period of a scheme with inpatient benefits holding the
    /// admission date (nor, for a listed diagnosis, of a women's scheme holding the discharge
    /// date).
    NotCovered,
    /// An outpatient settlement (医疗类别 not inpatient).
    Outpatient,
    /// Another insurance than the employees' basic medical insurance (险种类型).
    OtherInsurance,
    /// The main diagnosis is on a women's scheme's disease list, but the member has no
    /// coverage period of that scheme holding the discharge date (the stay itself may match).
    DiagnosisNotCovered,
}

impl Unmatched {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAMember => "not_a_member",
            Self::NotCovered => "not_covered",
            Self::Outpatient => "outpatient",
            Self::OtherInsurance => "other_insurance",
            Self::DiagnosisNotCovered => "diagnosis_not_covered",
        }
    }

    fn message_zh(self) -> &'static str {
        match self {
            Self::NotAMember => "未匹配：不是本会参互职工",
            Self::NotCovered => "未匹配：入院当日不在住院互助保障期内",
            Self::Outpatient => "未匹配：门诊结算，非住院",
            Self::OtherInsurance => "未匹配：非职工基本医疗保险",
            Self::DiagnosisNotCovered => {
                "确诊未匹配：主要诊断属女性特殊疾病，但出院当日不在女性馨康互助保障期内"
            }
        }
    }
}

/// What became of one row of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// Matched and stored.
    Matched,
    /// The organisation imported this settlement ID before.
    AlreadyImported,
    /// The settlement ID appears on an earlier row of the same file.
    RepeatedInFile,
    Unmatched(Unmatched),
}

/// One row left unmatched, as the job's report lists it: no ID number, no name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnmatchedRow {
    /// The file's row number.
    pub row: u32,
    pub reason: Unmatched,
}

/// One row that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProblemRow {
    /// The file's row number.
    pub row: u32,
    /// The column's header as in the file.
    pub column: String,
    /// Stable code (`id_number_checksum`, `date_invalid`, `money_negative` …).
    pub code: String,
    pub message_zh: String,
}

/// What an import did, row by row counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportSummary {
    /// Settlement rows in the file, readable or not.
    pub data_rows: u32,
    /// Rows matched to a member's coverage period and stored.
    pub matched: u32,
    /// Rows whose settlement ID was imported before (skipped).
    pub already_imported: u32,
    /// Rows repeating a settlement ID of an earlier row of the file (skipped).
    pub repeated_in_file: u32,
    /// Rows not matched, by reason.
    pub not_a_member: u32,
    pub not_covered: u32,
    pub outpatient: u32,
    pub other_insurance: u32,
    /// Of the matched rows: those whose main diagnosis also matched a women's scheme's
    /// coverage period (stored once more, to be offered as a diagnosis).
    #[serde(default)]
    pub diagnoses_matched: u32,
    /// Rows whose main diagnosis is on a women's scheme's disease list, of members with no
    /// coverage period of that scheme on the discharge date (listed in `unmatched_rows` as
    /// `diagnosis_not_covered`; the row's stay may still have matched).
    #[serde(default)]
    pub diagnosis_not_covered: u32,
    /// Rows that could not be read.
    pub rows_with_problems: u32,
    /// Of the matched rows: offers made (a claim `offered`, the member told).
    pub offered: u32,
    /// Matched rows linked to a claim the member had already filed for the stay.
    pub corroborating: u32,
    /// Matched rows not offered (nothing to pay, refused by the rules, window closed …): the
    /// reason is kept with the settlement.
    pub not_offered: u32,
    /// The problems, in row order (at most 1000 listed; the report workbook has all).
    pub problems: Vec<ProblemRow>,
    /// The unmatched rows, in row order (at most 1000 listed).
    pub unmatched_rows: Vec<UnmatchedRow>,
}

/// A settlement import as the association sees it.
#[derive(Clone, Debug)]
pub struct SettlementJob {
    pub pid: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub total_rows: i32,
    pub processed_rows: i32,
    /// When it succeeded.
    pub summary: Option<ImportSummary>,
    /// When the file was refused: `{code, message, details}`.
    pub refusal: Option<serde_json::Value>,
}

fn to_job(m: import_job::Model) -> SettlementJob {
    let report: Option<serde_json::Value> = m
        .report
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    let (summary, refusal) = match report {
        Some(r) if r["code"] == "imported" => {
            (serde_json::from_value(r["details"].clone()).ok(), None)
        }
        other => (None, other),
    };
    SettlementJob {
        pid: m.pid,
        status: m.status,
        total_rows: m.total_rows,
        processed_rows: m.processed_rows,
        summary,
        refusal,
    }
}

/// Why a settlement file was not taken: as for a roster (one upload, one job).
pub use crate::service::import::SubmitError;

/// `actor_pid` submits the bureau's settlement file for `organisation_pid` (inside `scope`):
/// the file is stored, a queued job records it and runs in the background (poll it with
/// [`get_within`]).
pub async fn submit(
    state: &AppState,
    scope: &Scope,
    actor_pid: &str,
    organisation_pid: &str,
    file: Vec<u8>,
) -> Result<SettlementJob, SubmitError> {
    if file.iter().all(u8::is_ascii_whitespace) {
        return Err(SubmitError::Refused(Problem::invalid_value(
            "file_empty",
            "file",
            "文件为空 / the file is empty",
        )));
    }
    let organisation = organisation::get_within(&state.db, scope, organisation_pid)
        .await?
        .ok_or(SubmitError::NotFound)?;
    let key = format!("imports/{}.settlements", new_pid());
    state.storage.write(&key, file).await?;
    let params = SettlementImport {
        organisation_id: organisation.id,
        path: organisation.path.clone(),
    };
    let created = import::create_job(
        &state.db,
        JOB_KIND,
        organisation.id,
        &params,
        &key,
        actor_pid,
    )
    .await;
    let job = match created {
        Ok(job) => job,
        Err(e) => {
            if let Err(deleted) = state.storage.delete(&key).await {
                tracing::warn!(key, error = %deleted, "could not delete the file of a job not recorded");
            }
            return Err(e.into());
        }
    };
    tokio::spawn(import::run(state.clone(), job.id));
    Ok(to_job(job))
}

/// A settlement import by public id inside `scope` (`None` for another kind of job).
pub async fn get_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    pid: &str,
) -> Result<Option<SettlementJob>, DbErr> {
    Ok(import_job::Entity::find_pid_within(db, scope, pid)
        .await?
        .filter(|j| j.kind == JOB_KIND)
        .map(to_job))
}

/// Why there is no report workbook.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no such settlement import in the caller's subtree")]
    NotFound,
    /// `import_not_finished`.
    #[error("{}", .0.message)]
    Refused(Problem),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("reading the report: {0}")]
    Storage(#[from] opendal::Error),
}

/// The report workbook of a finished import: every row of the file with what became of it.
pub async fn report_within(
    state: &AppState,
    scope: &Scope,
    pid: &str,
) -> Result<(Vec<u8>, String), ReportError> {
    let job = import_job::Entity::find_pid_within(&state.db, scope, pid)
        .await?
        .filter(|j| j.kind == JOB_KIND)
        .ok_or(ReportError::NotFound)?;
    if job.status != "succeeded" {
        return Err(ReportError::Refused(Problem::conflict(
            "import_not_finished",
            "导入尚未完成或未成功，没有结果报告 / the import has no report (not finished, or refused)",
            json!({ "status": job.status }),
        )));
    }
    let bytes = state.storage.read(&job.object_key).await?.to_vec();
    Ok((bytes, "医保结算导入结果.xlsx".to_owned()))
}

/// Whether a settlement is a hospital stay (医疗类别): `住院` in any wording, or a national
/// code of the 2x family (21 普通住院, 22 外伤住院 …, 52 生育住院). An absent category means the
/// file holds inpatient settlements only.
fn is_inpatient(category: Option<&str>) -> bool {
    match category {
        None => true,
        Some(c) => c.contains("住院") || c.starts_with('2') || c == "52",
    }
}

/// Whether a settlement is of the employees' basic medical insurance (险种类型), which the
/// unions' schemes top up: `职工…` in any wording, or its national code 310. Absent means so.
fn is_employee_insurance(kind: Option<&str>) -> bool {
    match kind {
        None => true,
        Some(k) => k.contains("职工") || k == "310",
    }
}

/// Runs a claimed settlement job to its end (called by [`import::run`]).
pub(crate) async fn run_job(state: &AppState, job: import_job::Model) -> anyhow::Result<()> {
    if let Some(upload_key) = job.object_key.strip_suffix(REPORT_SUFFIX) {
        // A restart after the matches were stored: only the offers are left to make.
        let summary: ImportSummary = job
            .report
            .as_deref()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
            .and_then(|r| serde_json::from_value(r["details"].clone()).ok())
            .unwrap_or_default();
        return offer_and_finish(state, &job, summary, upload_key).await;
    }
    let params: SettlementImport = serde_json::from_str(&job.parameters)?;
    let started = std::time::Instant::now();
    let bytes = state.storage.read(&job.object_key).await?.to_vec();
    let parsed = import::with_progress(&state.db, job.id, move |progress| {
        read_settlements(&bytes, progress)
    })
    .await?;
    let file = match parsed {
        Ok(file) => file,
        Err(e) => {
            let (code, message, details) = match &e {
                RosterError::MissingColumns(columns) => (
                    "settlement_missing_columns",
                    format!(
                        "未找到表头行或缺少必需的列：{}（表头须在前10行内，同一行中包含“证件号码”和“结算ID”）",
                        columns.join("、")
                    ),
                    json!({ "missing_columns": columns }),
                ),
                RosterError::TooManyRows { limit } => (
                    "settlement_too_many_rows",
                    format!("一次最多导入{limit}条结算记录，请拆分后上传"),
                    json!({ "limit": limit }),
                ),
                other => ("settlement_unreadable", other.message_zh(), json!({})),
            };
            finish(
                &state.db,
                job.id,
                "failed",
                Some(refusal(code, message, details)),
                None,
            )
            .await?;
            delete_upload(state, &job.object_key).await;
            return Ok(());
        }
    };

    let read_s = started.elapsed().as_secs_f64();
    let outcomes = match_rows(state, &state.db, &params, &file.rows).await?;
    let only_matched_s = started.elapsed().as_secs_f64() - read_s;
    let summary = summarise(file.data_rows, &file.problems, &file.rows, &outcomes);
    let report_key = format!("{}{REPORT_SUFFIX}", job.object_key);
    // The report workbook is compressed on a blocking thread while the matches are stored
    // (neither the HTTP worker running this job nor the database waits for it).
    let file = std::sync::Arc::new(file);
    let outcomes = std::sync::Arc::new(outcomes);
    let report = {
        let (file, outcomes) = (file.clone(), outcomes.clone());
        tokio::task::spawn_blocking(move || {
            report_workbook(&file.rows, &outcomes, &file.problems)
                .map_err(|e| anyhow::anyhow!("writing the settlement report: {e}"))
        })
    };
    let matched_s = started.elapsed().as_secs_f64();

    let matched: Vec<(&SettlementRow, &Match)> = file
        .rows
        .iter()
        .zip(outcomes.iter())
        .flat_map(|(r, (_, found))| found.matches.iter().map(move |m| (r, m)))
        .collect();
    let txn = crate::db::begin_write(&state.db).await?;
    let now = Utc::now();
    let stored: Vec<serde_json::Value> = matched
        .iter()
        .map(|(r, m)| {
            json!({
                "pid": new_pid(),
                "organisation_id": params.organisation_id,
                "import_job_id": job.id,
                "row": r.row,
                "settlement_id": r.settlement_id,
                "member_id": m.member_id,
                "membership_id": m.membership_id,
                "hospital": r.hospital,
                "admitted_on": bulk::date(r.admitted_on),
                "discharged_on": bulk::date(r.discharged_on),
                "billed_days": r.billed_days.and_then(|d| i32::try_from(d).ok()),
                "total_fen": r.total_fen,
                "fund_fen": r.fund_fen,
                "critical_illness_fen": r.critical_illness_fen,
                "deductible_fen": r.deductible_fen,
                "eligible_self_pay_fen": r.eligible_self_pay_fen,
                "self_funded_fen": r.self_funded_fen,
                "settled_on": r.settled_on.map(bulk::date),
                "insurance_type": r.insurance_type,
                "medical_category": r.medical_category,
                "diagnosis_code": r.diagnosis_code,
                "diagnosis_name": r.diagnosis_name,
                "discharge_way": r.discharge_way,
                "event_kind": m.event_kind.as_str(),
                "outcome": "matched",
                "created_at": bulk::timestamp(now),
            })
        })
        .collect();
    // A concurrent import of the same settlements stores each once (the unique index).
    bulk::insert(
        &txn,
        "settlement",
        &SETTLEMENT_COLUMNS,
        &stored,
        "ON CONFLICT (organisation_id, settlement_id, event_kind) DO NOTHING",
    )
    .await?;
    // Stored before the job names it its file (below, in this transaction).
    state.storage.write(&report_key, report.await??).await?;
    super::audit::record(
        &txn,
        &super::audit::Actor::Account {
            pid: job.created_by.clone(),
        },
        "settlement.imported",
        ("import_job", Some(&job.pid)),
        json!({
            "data_rows": summary.data_rows,
            "matched": summary.matched,
            "already_imported": summary.already_imported,
            "repeated_in_file": summary.repeated_in_file,
            "unmatched": summary.not_a_member + summary.not_covered + summary.outpatient + summary.other_insurance,
            "rows_with_problems": summary.rows_with_problems,
        }),
        None,
    )
    .await?;
    import_job::ActiveModel {
        id: Set(job.id),
        total_rows: Set(i32::try_from(file.data_rows).unwrap_or(i32::MAX)),
        processed_rows: Set(i32::try_from(file.data_rows).unwrap_or(i32::MAX)),
        // From now on the job's file is its report (the upload is deleted at the end), and the
        // matching's summary is kept: a restart only makes the offers left.
        object_key: Set(report_key),
        report: Set(Some(
            refusal(
                "matched",
                "已匹配，正在生成补助 / matched, making the offers".into(),
                serde_json::to_value(&summary)?,
            )
            .to_string(),
        )),
        ..Default::default()
    }
    .update(&txn)
    .await?;
    txn.commit().await?;
    tracing::info!(
        job = job.pid,
        rows = file.data_rows,
        matched = summary.matched,
        read_s,
        match_s = only_matched_s,
        summarised_s = matched_s - read_s - only_matched_s,
        stored_and_reported_s = started.elapsed().as_secs_f64() - matched_s,
        "settlement import: read, matched and stored; making the offers"
    );
    let offers_started = std::time::Instant::now();
    let result = offer_and_finish(state, &job, summary, &job.object_key).await;
    tracing::info!(
        job = job.pid,
        offers_s = offers_started.elapsed().as_secs_f64(),
        "settlement import: offers made"
    );
    result
}

/// The report workbook's key: the upload's with this suffix.
const REPORT_SUFFIX: &str = ".report.xlsx";

/// Makes the offers of the job's matches (each in its own transaction), counts what became of
/// them, ends the job with its summary and deletes the upload.
async fn offer_and_finish(
    state: &AppState,
    job: &import_job::Model,
    mut summary: ImportSummary,
    upload_key: &str,
) -> anyhow::Result<()> {
    super::claim::offering::make_offers(&state.db, job.id, &job.created_by, state.settings.today())
        .await
        .map_err(|e| anyhow::anyhow!("making the offers: {e}"))?;
    let outcomes: Vec<(String, i64)> = settlement::Entity::find()
        .select_only()
        .column(settlement::Column::Outcome)
        .column_as(settlement::Column::Id.count(), "n")
        .filter(settlement::Column::ImportJobId.eq(job.id))
        .group_by(settlement::Column::Outcome)
        .into_tuple()
        .all(&state.db)
        .await?;
    let count = |o: &str| {
        outcomes
            .iter()
            .find(|(x, _)| x == o)
            .map_or(0, |(_, n)| u32::try_from(*n).unwrap_or(u32::MAX))
    };
    summary.offered = count("offered");
    summary.corroborating = count("corroborates");
    summary.not_offered = count("not_offered");
    finish(
        &state.db,
        job.id,
        "succeeded",
        Some(refusal(
            "imported",
            "已导入 / imported".into(),
            serde_json::to_value(&summary)?,
        )),
        None,
    )
    .await?;
    delete_upload(state, upload_key).await;
    Ok(())
}

/// The uploaded file holds the ID numbers of people who are not members: it is not kept once
/// the import has ended (the report workbook masks them).
async fn delete_upload(state: &AppState, key: &str) {
    if let Err(e) = state.storage.delete(key).await {
        tracing::warn!(key, error = %e, "could not delete an imported settlement file");
    }
}

/// A member's coverage period a settlement matched, and the event it is offered as there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Match {
    member_id: i64,
    membership_id: i64,
    /// `Inpatient` (the stay) or `Diagnosis` (its main diagnosis, on a women's scheme's list).
    event_kind: EventKind,
}

/// What a row matched: its stay, its diagnosis, both or neither.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RowMatch {
    matches: Vec<Match>,
    /// A listed diagnosis without a women's scheme's period holding the discharge date.
    diagnosis_not_covered: bool,
}

/// Every row's outcome, in file order, with its match when it has one. Set-based: a handful
/// of batched queries for the whole file.
async fn match_rows<C: ConnectionTrait>(
    state: &AppState,
    db: &C,
    params: &SettlementImport,
    rows: &[SettlementRow],
) -> Result<Vec<(Outcome, RowMatch)>, DbErr> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; rows.len()];
    // Rows the file itself rules out, and repeats inside the file.
    let mut first_seen: HashSet<&str> = HashSet::with_capacity(rows.len());
    let mut candidates: Vec<usize> = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        outcomes[i] = if !is_inpatient(r.medical_category.as_deref()) {
            Some(Outcome::Unmatched(Unmatched::Outpatient))
        } else if !is_employee_insurance(r.insurance_type.as_deref()) {
            Some(Outcome::Unmatched(Unmatched::OtherInsurance))
        } else if !first_seen.insert(r.settlement_id.as_str()) {
            Some(Outcome::RepeatedInFile)
        } else {
            candidates.push(i);
            None
        };
    }

    let t0 = std::time::Instant::now();
    // Settlements imported before.
    let mut known: HashSet<String> = HashSet::new();
    for chunk in candidates.chunks(BATCH) {
        let ids: Vec<&str> = chunk
            .iter()
            .map(|i| rows[*i].settlement_id.as_str())
            .collect();
        let found: Vec<String> = settlement::Entity::find()
            .select_only()
            .column(settlement::Column::SettlementId)
            .filter(settlement::Column::OrganisationId.eq(params.organisation_id))
            .filter(bulk::is_in(
                db.get_database_backend(),
                "settlement.settlement_id",
                Kind::Text,
                &ids,
            ))
            .into_tuple()
            .all(db)
            .await?;
        known.extend(found);
    }
    candidates.retain(|i| {
        if known.contains(&rows[*i].settlement_id) {
            outcomes[*i] = Some(Outcome::AlreadyImported);
            false
        } else {
            true
        }
    });

    let known_s = t0.elapsed().as_secs_f64();
    // Members by ID look-up hash, inside the organisation's subtree.
    let scope = Scope::Subtree {
        path: params.path.clone(),
    };
    let hashes: Vec<String> = candidates
        .iter()
        .map(|i| {
            state
                .pii
                .lookup_hash(PiiKind::IdNumber, rows[*i].id_number.as_str())
        })
        .collect();
    let mut members: HashMap<String, i64> = HashMap::new();
    let distinct: Vec<&String> = hashes.iter().collect::<HashSet<_>>().into_iter().collect();
    for chunk in distinct.chunks(BATCH) {
        let found: Vec<(i64, String)> = member::Entity::find()
            .select_only()
            .column(member::Column::Id)
            .column(member::Column::IdNumberLookup)
            .filter(scope.condition::<member::Entity>())
            .filter(bulk::is_in(
                db.get_database_backend(),
                "member.id_number_lookup",
                Kind::Text,
                chunk,
            ))
            .into_tuple()
            .all(db)
            .await?;
        members.extend(found.into_iter().map(|(id, lookup)| (lookup, id)));
    }

    let members_s = t0.elapsed().as_secs_f64() - known_s;
    // Their coverage periods: in schemes with inpatient benefits for the stay, and in schemes
    // whose disease list has ICD-10 codes (馨康) for the main diagnosis.
    let latest = scheme::all_latest(db).await?;
    let inpatient_schemes: Vec<String> = latest
        .iter()
        .filter(|s| s.definition.accepts(EventKind::Inpatient))
        .map(|s| s.definition.code.clone())
        .collect();
    let disease_lists: Vec<(String, DiagnosisRules)> = latest
        .into_iter()
        .filter(|s| s.definition.accepts(EventKind::Diagnosis))
        .filter_map(|s| {
            let rules = s.definition.diagnosis?;
            (!rules.icd10.is_empty()).then_some((s.definition.code, rules))
        })
        .collect();
    let member_ids: Vec<i64> = members
        .values()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let periods = periods_in(db, &member_ids, &inpatient_schemes).await?;
    let women_schemes: Vec<String> = disease_lists.iter().map(|(c, _)| c.clone()).collect();
    let women_periods = periods_in(db, &member_ids, &women_schemes).await?;

    let periods_s = t0.elapsed().as_secs_f64() - known_s - members_s;
    tracing::info!(known_s, members_s, periods_s, "settlement import: matching");
    let mut matches: Vec<RowMatch> = vec![RowMatch::default(); rows.len()];
    for (i, hash) in candidates.iter().zip(&hashes) {
        let r = &rows[*i];
        let Some(member_id) = members.get(hash) else {
            outcomes[*i] = Some(Outcome::Unmatched(Unmatched::NotAMember));
            continue;
        };
        let found = &mut matches[*i];
        // The period holding the admission day; of two (two inpatient schemes), the older row.
        if let Some(p) = period_holding(periods.get(member_id), r.admitted_on, |_| true) {
            found.matches.push(Match {
                member_id: *member_id,
                membership_id: p.id,
                event_kind: EventKind::Inpatient,
            });
        }
        let listing: Vec<&str> = disease_lists
            .iter()
            .filter(|(_, rules)| {
                r.diagnosis_code
                    .as_deref()
                    .is_some_and(|code| rules.icd10_entry(code).is_some())
            })
            .map(|(code, _)| code.as_str())
            .collect();
        if !listing.is_empty() {
            // The diagnosis date is the discharge date.
            match period_holding(women_periods.get(member_id), r.discharged_on, |code| {
                listing.contains(&code)
            }) {
                Some(p) => found.matches.push(Match {
                    member_id: *member_id,
                    membership_id: p.id,
                    event_kind: EventKind::Diagnosis,
                }),
                None => found.diagnosis_not_covered = true,
            }
        }
        outcomes[*i] = Some(if found.matches.is_empty() {
            Outcome::Unmatched(Unmatched::NotCovered)
        } else {
            Outcome::Matched
        });
    }
    Ok(outcomes
        .into_iter()
        .zip(matches)
        .map(|(o, m)| (o.unwrap_or(Outcome::Unmatched(Unmatched::NotAMember)), m))
        .collect())
}

/// An active coverage period of a member, as the matching reads it.
struct Period {
    id: i64,
    scheme_code: String,
    start: NaiveDate,
    end: NaiveDate,
}

/// The active coverage periods in `schemes` of the members `member_ids`, by member (batched).
async fn periods_in<C: ConnectionTrait>(
    db: &C,
    member_ids: &[i64],
    schemes: &[String],
) -> Result<HashMap<i64, Vec<Period>>, DbErr> {
    let mut periods: HashMap<i64, Vec<Period>> = HashMap::new();
    if schemes.is_empty() {
        return Ok(periods);
    }
    for chunk in member_ids.chunks(BATCH) {
        let found: Vec<(i64, i64, String, NaiveDate, NaiveDate)> = membership::Entity::find()
            .select_only()
            .column(membership::Column::Id)
            .column(membership::Column::MemberId)
            .column(membership::Column::SchemeCode)
            .column(membership::Column::CoverageStart)
            .column(membership::Column::CoverageEnd)
            .filter(bulk::is_in(
                db.get_database_backend(),
                "membership.member_id",
                Kind::Int,
                chunk,
            ))
            .filter(membership::Column::SchemeCode.is_in(schemes.iter().cloned()))
            .filter(membership::Column::Status.eq("active"))
            .into_tuple()
            .all(db)
            .await?;
        for (id, member_id, scheme_code, start, end) in found {
            periods.entry(member_id).or_default().push(Period {
                id,
                scheme_code,
                start,
                end,
            });
        }
    }
    Ok(periods)
}

/// Of `periods`, the one of a scheme `scheme_ok` accepts holding `day`; of two, the older row.
fn period_holding(
    periods: Option<&Vec<Period>>,
    day: NaiveDate,
    scheme_ok: impl Fn(&str) -> bool,
) -> Option<&Period> {
    periods?
        .iter()
        .filter(|p| p.start <= day && day <= p.end && scheme_ok(&p.scheme_code))
        .min_by_key(|p| p.id)
}

fn summarise(
    data_rows: u32,
    problems: &[RowProblem],
    rows: &[SettlementRow],
    outcomes: &[(Outcome, RowMatch)],
) -> ImportSummary {
    let mut s = ImportSummary {
        data_rows,
        ..ImportSummary::default()
    };
    let mut problem_rows: Vec<u32> = problems.iter().map(|p| p.row).collect();
    problem_rows.dedup();
    s.rows_with_problems = u32::try_from(problem_rows.len()).unwrap_or(u32::MAX);
    s.problems = problems
        .iter()
        .take(MAX_LISTED)
        .map(|p| ProblemRow {
            row: p.row,
            column: p.column.clone(),
            code: p.code.to_owned(),
            message_zh: p.message_zh.clone(),
        })
        .collect();
    for (r, (outcome, found)) in rows.iter().zip(outcomes) {
        if found
            .matches
            .iter()
            .any(|m| m.event_kind == EventKind::Diagnosis)
        {
            s.diagnoses_matched += 1;
        }
        if found.diagnosis_not_covered {
            s.diagnosis_not_covered += 1;
            if s.unmatched_rows.len() < MAX_LISTED {
                s.unmatched_rows.push(UnmatchedRow {
                    row: r.row,
                    reason: Unmatched::DiagnosisNotCovered,
                });
            }
        }
        match outcome {
            Outcome::Matched => s.matched += 1,
            Outcome::AlreadyImported => s.already_imported += 1,
            Outcome::RepeatedInFile => s.repeated_in_file += 1,
            Outcome::Unmatched(reason) => {
                match reason {
                    Unmatched::NotAMember => s.not_a_member += 1,
                    Unmatched::NotCovered => s.not_covered += 1,
                    Unmatched::Outpatient => s.outpatient += 1,
                    Unmatched::OtherInsurance => s.other_insurance += 1,
                    // Counted above, with the row's other outcome.
                    Unmatched::DiagnosisNotCovered => {}
                }
                if s.unmatched_rows.len() < MAX_LISTED {
                    s.unmatched_rows.push(UnmatchedRow {
                        row: r.row,
                        reason: *reason,
                    });
                }
            }
        }
    }
    s
}

/// The report workbook: every row of the file, in row order, with its outcome. ID numbers are
/// masked (the association holds the bureau's file; the report need not repeat them).
fn report_workbook(
    rows: &[SettlementRow],
    outcomes: &[(Outcome, RowMatch)],
    problems: &[RowProblem],
) -> Result<Vec<u8>, WorkbookError> {
    let mut lines: Vec<(u32, Vec<Cell>)> = rows
        .iter()
        .zip(outcomes)
        .map(|(r, (outcome, found))| {
            let (result, mut reason) = match outcome {
                Outcome::Matched => ("已匹配", String::new()),
                Outcome::AlreadyImported => ("已跳过", "该结算ID此前已导入".to_owned()),
                Outcome::RepeatedInFile => ("已跳过", "该结算ID在本文件中重复".to_owned()),
                Outcome::Unmatched(u) => ("未匹配", u.message_zh().to_owned()),
            };
            if found.diagnosis_not_covered {
                if !reason.is_empty() {
                    reason.push('；');
                }
                reason.push_str(Unmatched::DiagnosisNotCovered.message_zh());
            }
            (
                r.row,
                vec![
                    Cell::Int(i64::from(r.row)),
                    Cell::Code(r.settlement_id.clone()),
                    Cell::Text(r.name.clone().unwrap_or_default()),
                    Cell::Code(r.id_number.masked()),
                    Cell::Date(r.admitted_on),
                    Cell::Date(r.discharged_on),
                    Cell::Text(result.to_owned()),
                    Cell::Text(reason),
                ],
            )
        })
        .collect();
    let mut by_row: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for p in problems {
        by_row
            .entry(p.row)
            .or_default()
            .push(format!("{}：{}", p.column, p.message_zh));
    }
    for (row, messages) in by_row {
        lines.push((
            row,
            vec![
                Cell::Int(i64::from(row)),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Text("无法读取".to_owned()),
                Cell::Text(messages.join("；")),
            ],
        ));
    }
    lines.sort_by_key(|(row, _)| *row);
    write_workbook(&[Sheet {
        name: "导入结果".into(),
        title: Some("医保住院结算导入结果".into()),
        headers: [
            "行号",
            "结算ID",
            "姓名",
            "证件号码",
            "入院日期",
            "出院日期",
            "结果",
            "原因",
        ]
        .map(str::to_owned)
        .to_vec(),
        rows: lines.into_iter().map(|(_, cells)| cells).collect(),
        totals: None,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inpatient_and_employee_insurance_are_read_from_their_usual_wordings() {
        assert!(is_inpatient(None));
        assert!(is_inpatient(Some("普通住院")));
        assert!(is_inpatient(Some("21")));
        assert!(!is_inpatient(Some("门诊慢特病")));
        assert!(!is_inpatient(Some("11")));
        assert!(is_employee_insurance(None));
        assert!(is_employee_insurance(Some("职工基本医疗保险")));
        assert!(is_employee_insurance(Some("310")));
        assert!(!is_employee_insurance(Some("城乡居民基本医疗保险")));
        assert!(!is_employee_insurance(Some("390")));
    }
}
