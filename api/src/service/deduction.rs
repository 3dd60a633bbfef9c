//! Monthly bank deductions for individual schemes (Wujin): the aid centre creates a month's
//! batch from the authorisations in force, exports it as the bank's deduction file, and imports
//! the bank's result file. Each successful deduction enrols the member (a membership for the
//! scheme's coverage period) and each failure is kept with the bank's reason; both tell the
//! member through the outbox, in the same transaction.
//!
//! The year comes from the scheme version, never from the clock or the code: a version states
//! its enrolment window and its coverage period ([`period_of`]); a batch is created only inside
//! the window (or a late window the association opened, recorded in `deduction_window`), holds
//! only members whose unit union takes part in the scheme for that period
//! ([`super::participation`]), records the period, and its result enrols into that period
//! whatever day it is imported. Today is the caller's (`Settings::today()`). A fee taken from
//! someone already enrolled for the period becomes a refund record (`deduction_refund`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use entity::{
    deduction_batch, deduction_item, deduction_refund, deduction_window, member, membership,
    organisation, payment_authorisation,
};

use super::audit::{self, Actor};
use super::authorisation::{open_all, texts_of};
use super::outbox::{self, Occasion};
use super::page::{Page, page_from};
use super::participation::Participation;
use super::scope::Scope;
use super::{is_unique_violation, new_pid, scheme};
use crate::auth::crypto::{PiiKind, PiiVault};
use crate::domain::{IdNumber, Money, PersonName};
use crate::engine::SchemeDefinition;
use crate::engine::scheme::EnrolmentMode;
use crate::engine::{YearMonth, coverage_period};
use crate::formats::bank_file::{self, LineProblem, Outcome, ResultColumn, ResultLine, problem};
use crate::formats::workbook::{Cell, WorkbookError};

/// Where a batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchStatus {
    /// The file exists; the bank's result is awaited.
    Exported,
    /// The bank's result was imported; nothing changes any more.
    ResultImported,
}

impl BatchStatus {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Exported => "exported",
            BatchStatus::ResultImported => "result_imported",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "exported" => Some(BatchStatus::Exported),
            "result_imported" => Some(BatchStatus::ResultImported),
            _ => None,
        }
    }
}

const ITEM_PENDING: &str = "pending";
const ITEM_SUCCEEDED: &str = "succeeded";
const ITEM_FAILED: &str = "failed";

/// A refund is due: the member was already enrolled for the period by other means.
pub const REFUND_ALREADY_ENROLLED: &str = "already_enrolled";
/// A refund is due: an earlier deduction already enrolled the member for the period.
pub const REFUND_CHARGED_TWICE: &str = "charged_twice";
/// A refund is due: the bank's result came back after the coverage period had ended, so the
/// fee buys nothing (nobody is enrolled into a period that is over).
pub const REFUND_PERIOD_ENDED: &str = "period_ended";
/// Refund statuses.
pub const REFUND_DUE: &str = "due";
pub const REFUND_DONE: &str = "refunded";

/// A month's deduction batch.
#[derive(Clone, Debug)]
pub struct DeductionBatch {
    pub id: i64,
    pub pid: String,
    pub scheme_code: String,
    pub month: YearMonth,
    pub status: BatchStatus,
    pub item_count: i32,
    pub total: Money,
    pub exported_at: DateTime<Utc>,
    pub exported_by: String,
    pub result_imported_at: Option<DateTime<Utc>>,
    /// The coverage period the batch pays for (absent only on batches made before it was kept).
    pub period: Option<(NaiveDate, NaiveDate)>,
}

fn to_batch(m: deduction_batch::Model) -> Result<DeductionBatch, DbErr> {
    let corrupt = |what: &str| DbErr::Custom(format!("deduction batch {}: bad {what}", m.pid));
    Ok(DeductionBatch {
        month: YearMonth::parse(&m.month).ok_or_else(|| corrupt("month"))?,
        status: BatchStatus::parse(&m.status).ok_or_else(|| corrupt("status"))?,
        total: Money::from_fen(m.total_fen),
        id: m.id,
        pid: m.pid,
        scheme_code: m.scheme_code,
        item_count: m.item_count,
        exported_at: m.exported_at,
        exported_by: m.exported_by,
        result_imported_at: m.result_imported_at,
        period: m.coverage_start.zip(m.coverage_end),
    })
}

/// The coverage period a scheme version's enrolment pays for: the period of an enrolment
/// completed on the window's last day (for Wujin 2022: the calendar year 2022).
pub fn period_of(definition: &SchemeDefinition) -> Option<(NaiveDate, NaiveDate)> {
    coverage_period(&definition.coverage, definition.enrolment.closes)
}

/// The last day batches may be created for a scheme: its window's close, or the latest late
/// window the association opened.
pub async fn window_closes<C: ConnectionTrait>(
    db: &C,
    scheme_code: &str,
    definition: &SchemeDefinition,
) -> Result<NaiveDate, DbErr> {
    let late = deduction_window::Entity::find()
        .filter(deduction_window::Column::SchemeCode.eq(scheme_code))
        .order_by_desc(deduction_window::Column::Closes)
        .one(db)
        .await?
        .map(|w| w.closes);
    Ok(late
        .filter(|l| *l > definition.enrolment.closes)
        .unwrap_or(definition.enrolment.closes))
}

/// The serial number (流水号) of the `seq`-th item (1-based) of a batch, as the bank sees it:
/// the month, six characters of the batch's public id and the sequence.
pub fn serial(batch: &DeductionBatch, seq: usize) -> String {
    bank_file::serial(&batch.month.to_string().replace('-', ""), &batch.pid, seq)
}

/// Why a batch was not created.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("no such scheme")]
    SchemeNotFound,
    #[error("members of this scheme do not enrol by bank deduction")]
    NotIndividual,
    #[error("the month has not begun")]
    MonthNotStarted,
    /// Today is before the scheme's enrolment window opens.
    #[error("the enrolment window opens on {opens}")]
    WindowNotOpen { opens: NaiveDate },
    /// Today is after the window (and any late window) closed: the period is closed.
    #[error("the enrolment window for {period_start}..{period_end} closed on {closes}")]
    WindowClosed {
        closes: NaiveDate,
        period_start: NaiveDate,
        period_end: NaiveDate,
    },
    /// The month lies outside the window the batch is made in: before the month the window
    /// opens in, or beginning after the window (or the late window) closes.
    #[error("the month {month} is outside the enrolment window")]
    MonthOutsideWindow {
        month: YearMonth,
        opens: Option<NaiveDate>,
        closes: NaiveDate,
    },
    #[error("this month's batch exists")]
    Exists,
    #[error("no authorisation to deduct")]
    NothingToDeduct,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A batch by public id.
pub async fn get<C: ConnectionTrait>(db: &C, pid: &str) -> Result<Option<DeductionBatch>, DbErr> {
    deduction_batch::Entity::find()
        .filter(deduction_batch::Column::Pid.eq(pid))
        .one(db)
        .await?
        .map(to_batch)
        .transpose()
}

/// Creates `month`'s batch for a scheme's coverage period ([`period_of`]), only while its
/// enrolment window (or a late window) is open on `today`: every authorisation still in force
/// on the month's first day (not revoked, or revoked no earlier than that month), one per
/// member (the newest), of members whose unit union takes part in the scheme for the period,
/// leaving out members already enrolled for the period and members whose deduction in another
/// batch still awaits the bank's result. Each item is the scheme's in-service fee. Run inside a
/// transaction; `today` is the service's calendar day (a month that has not begun is refused,
/// since revocations may still come), `now` only stamps the record.
pub async fn create_batch<C: ConnectionTrait>(
    db: &C,
    scheme_code: &str,
    month: YearMonth,
    created_by: &str,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<DeductionBatch, BatchError> {
    let scheme = scheme::latest(db, scheme_code)
        .await?
        .ok_or(BatchError::SchemeNotFound)?;
    let definition = &scheme.definition;
    if definition.enrolment.mode != EnrolmentMode::Individual {
        return Err(BatchError::NotIndividual);
    }
    let first = month.first_day();
    if first > today {
        return Err(BatchError::MonthNotStarted);
    }
    let (period_start, period_end) = period_of(definition)
        .ok_or_else(|| DbErr::Custom(format!("scheme {scheme_code}: no coverage period")))?;
    if let Some(opens) = definition.enrolment.opens
        && today < opens
    {
        return Err(BatchError::WindowNotOpen { opens });
    }
    let closes = window_closes(db, scheme_code, definition).await?;
    if today > closes {
        return Err(BatchError::WindowClosed {
            closes,
            period_start,
            period_end,
        });
    }
    // The month deducted belongs to the window too: a month before the window opened, or one
    // beginning after it closes, is not this period's deduction.
    let opens = definition.enrolment.opens;
    if first > closes || opens.is_some_and(|o| super::authorisation::last_day(month) < o) {
        return Err(BatchError::MonthOutsideWindow {
            month,
            opens,
            closes,
        });
    }
    if deduction_batch::Entity::find()
        .filter(deduction_batch::Column::SchemeCode.eq(scheme_code))
        .filter(deduction_batch::Column::Month.eq(month.to_string()))
        .one(db)
        .await?
        .is_some()
    {
        return Err(BatchError::Exists);
    }
    let fee_fen = Money::from_decimal(definition.fees.in_service)
        .to_fen()
        .map_err(|e| DbErr::Custom(format!("scheme {scheme_code}: fee {e}")))?;
    let candidates = payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::TextId.in_subquery(texts_of(scheme_code)))
        .filter(
            Condition::any()
                .add(payment_authorisation::Column::EffectiveUntil.is_null())
                .add(payment_authorisation::Column::EffectiveUntil.gte(first)),
        )
        .order_by_desc(payment_authorisation::Column::SignedAt)
        .order_by_desc(payment_authorisation::Column::Id)
        .all(db)
        .await?;
    let enrolled: HashSet<i64> = membership::Entity::find()
        .filter(membership::Column::SchemeCode.eq(scheme_code))
        .filter(membership::Column::CoverageStart.lte(period_end))
        .filter(membership::Column::CoverageEnd.gte(period_start))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.member_id)
        .collect();
    let awaiting: HashSet<i64> = deduction_item::Entity::find()
        .filter(deduction_item::Column::Status.eq(ITEM_PENDING))
        .filter(
            deduction_item::Column::BatchId.in_subquery(
                Query::select()
                    .column(deduction_batch::Column::Id)
                    .from(deduction_batch::Entity)
                    .and_where(deduction_batch::Column::SchemeCode.eq(scheme_code))
                    .to_owned(),
            ),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|i| i.member_id)
        .collect();
    let unions: HashMap<i64, i64> = member::Entity::find()
        .filter(member::Column::Id.is_in(candidates.iter().map(|a| a.member_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m.organisation_id))
        .collect();
    let mut participation = Participation::default();
    let mut seen = HashSet::new();
    let mut chosen: Vec<&payment_authorisation::Model> = Vec::new();
    // Newest first, so a member who re-signed is deducted once, on the newest card.
    for a in &candidates {
        if enrolled.contains(&a.member_id)
            || awaiting.contains(&a.member_id)
            || !seen.insert(a.member_id)
        {
            continue;
        }
        let Some(union) = unions.get(&a.member_id) else {
            continue;
        };
        if participation
            .of(db, *union, scheme_code, period_start.year())
            .await?
        {
            chosen.push(a);
        }
    }
    if chosen.is_empty() {
        return Err(BatchError::NothingToDeduct);
    }
    chosen.sort_by_key(|a| a.id);
    let count = i32::try_from(chosen.len())
        .map_err(|_| DbErr::Custom("too many deductions in one batch".into()))?;
    let total_fen = fee_fen
        .checked_mul(i64::from(count))
        .ok_or_else(|| DbErr::Custom("deduction total overflows".into()))?;

    let batch = deduction_batch::ActiveModel {
        pid: Set(new_pid()),
        scheme_code: Set(scheme_code.to_owned()),
        month: Set(month.to_string()),
        status: Set(BatchStatus::Exported.as_str().to_owned()),
        item_count: Set(count),
        total_fen: Set(total_fen),
        exported_at: Set(now),
        exported_by: Set(created_by.to_owned()),
        result_imported_at: Set(None),
        coverage_start: Set(Some(period_start)),
        coverage_end: Set(Some(period_end)),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            BatchError::Exists
        } else {
            BatchError::Db(e)
        }
    })?;
    let items: Vec<deduction_item::ActiveModel> = chosen
        .iter()
        .map(|a| deduction_item::ActiveModel {
            batch_id: Set(batch.id),
            authorisation_id: Set(a.id),
            member_id: Set(a.member_id),
            amount_fen: Set(fee_fen),
            status: Set(ITEM_PENDING.to_owned()),
            failure_reason: Set(None),
            membership_id: Set(None),
            ..Default::default()
        })
        .collect();
    // Insert in id order, one statement per chunk: the file's order is the items' id order.
    for chunk in items.chunks(500) {
        deduction_item::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(to_batch(batch)?)
}

/// `actor_pid` creates `month`'s batch of a scheme (see [`create_batch`]), with its audit
/// entry, in one transaction.
pub async fn start_batch(
    db: &DatabaseConnection,
    scheme_code: &str,
    month: YearMonth,
    actor_pid: &str,
    now: DateTime<Utc>,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<DeductionBatch, BatchError> {
    let txn = crate::db::begin_write(db).await?;
    let batch = create_batch(&txn, scheme_code, month, actor_pid, now, today).await?;
    audit::record(
        &txn,
        &account(actor_pid),
        "deduction.batch_created",
        ("deduction_batch", Some(&batch.pid)),
        json!({
            "scheme_code": batch.scheme_code,
            "month": batch.month,
            "item_count": batch.item_count,
            "total": batch.total,
            "coverage_period": batch.period,
            "today": today,
        }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok(batch)
}

fn account(pid: &str) -> Actor {
    Actor::Account {
        pid: pid.to_owned(),
    }
}

/// One line of the deduction file, numbers in full.
#[derive(Clone, Debug)]
pub struct FileLine {
    pub seq: usize,
    pub serial: String,
    pub name: PersonName,
    pub id_number: IdNumber,
    pub bank_card: crate::domain::BankCardNumber,
    pub amount: Money,
}

async fn items_of<C: ConnectionTrait>(
    db: &C,
    batch_id: i64,
) -> Result<Vec<deduction_item::Model>, DbErr> {
    deduction_item::Entity::find()
        .filter(deduction_item::Column::BatchId.eq(batch_id))
        .order_by_asc(deduction_item::Column::Id)
        .all(db)
        .await
}

/// The lines of a batch's deduction file, decrypted (for the association only).
pub async fn file_lines<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    batch: &DeductionBatch,
) -> Result<Vec<FileLine>, DbErr> {
    let items = items_of(db, batch.id).await?;
    let member_ids: Vec<i64> = items.iter().map(|i| i.member_id).collect();
    let members = crate::service::member::rows_by_id(db, member_ids).await?;
    let auth_rows = payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::Id.is_in(items.iter().map(|i| i.authorisation_id)))
        .all(db)
        .await?;
    let authorisations: HashMap<i64, _> = open_all(db, vault, auth_rows)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let corrupt = |what: &str| {
                DbErr::Custom(format!("deduction item {}: {what} cannot be read", item.id))
            };
            let m = members
                .get(&item.member_id)
                .ok_or_else(|| corrupt("member"))?;
            let a = authorisations
                .get(&item.authorisation_id)
                .ok_or_else(|| corrupt("authorisation"))?;
            let id_number = vault
                .open(PiiKind::IdNumber, &m.id_number_cipher)
                .ok()
                .and_then(|plain| IdNumber::parse(&plain).ok())
                .ok_or_else(|| corrupt("ID number"))?;
            Ok(FileLine {
                seq: i + 1,
                serial: serial(batch, i + 1),
                name: PersonName::parse(&m.name).map_err(|_| corrupt("name"))?,
                id_number,
                bank_card: a.bank_card.clone(),
                amount: Money::from_fen(item.amount_fen),
            })
        })
        .collect()
}

/// The columns of the deduction file.
const FILE_HEADERS: [&str; 6] = ["序号", "流水号", "姓名", "身份证号", "银行卡号", "金额"];

/// The deduction file the bank reads: UTF-8 with a byte-order mark (so Excel opens it),
/// columns 序号,流水号,姓名,身份证号,银行卡号,金额 (yuan, two decimals), and a control line
/// `合计,<count>,<total>`.
pub fn render_file(lines: &[FileLine]) -> Result<Vec<u8>, csv::Error> {
    let rows = lines.iter().map(|l| {
        vec![
            l.seq.to_string(),
            l.serial.clone(),
            l.name.as_str().to_owned(),
            l.id_number.as_str().to_owned(),
            l.bank_card.as_str().to_owned(),
            l.amount.to_string(),
        ]
    });
    bank_file::render_csv(
        &FILE_HEADERS,
        rows,
        lines.len(),
        lines.iter().map(|l| l.amount).sum(),
    )
}

/// The same deduction file as an `.xlsx` workbook (sheet 扣款明细): the same columns, ID and card
/// numbers as text (never as numbers Excel would round), amounts as numbers, a totals row.
pub fn render_file_xlsx(lines: &[FileLine]) -> Result<Vec<u8>, WorkbookError> {
    bank_file::render_xlsx(
        "扣款明细",
        &FILE_HEADERS,
        lines
            .iter()
            .map(|l| {
                vec![
                    Cell::Int(i64::try_from(l.seq).unwrap_or(i64::MAX)),
                    Cell::Code(l.serial.clone()),
                    Cell::Text(l.name.as_str().to_owned()),
                    Cell::Code(l.id_number.as_str().to_owned()),
                    Cell::Code(l.bank_card.as_str().to_owned()),
                    Cell::Money(l.amount.as_decimal()),
                ]
            })
            .collect(),
        5,
        lines.iter().map(|l| l.amount).sum(),
    )
}

/// Why a batch's deduction file was not handed out.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("no such batch")]
    NotFound,
    #[error("writing the deduction file: {0}")]
    Render(#[from] csv::Error),
    #[error("writing the deduction workbook: {0}")]
    Workbook(#[from] WorkbookError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The bank's deduction file of a batch (see [`render_file`]) as `actor_pid` downloads it: full
/// numbers, so every download is audited.
pub async fn download_file(
    db: &DatabaseConnection,
    vault: &PiiVault,
    scope: &Scope,
    batch_pid: &str,
    actor_pid: &str,
    xlsx: bool,
    request_id: Option<String>,
) -> Result<(DeductionBatch, Vec<u8>), FileError> {
    let batch = get_within(db, scope, batch_pid)
        .await?
        .ok_or(FileError::NotFound)?;
    let lines = file_lines(db, vault, &batch).await?;
    let bytes = if xlsx {
        render_file_xlsx(&lines)?
    } else {
        render_file(&lines)?
    };
    audit::record(
        db,
        &account(actor_pid),
        "deduction.file_downloaded",
        ("deduction_batch", Some(&batch.pid)),
        json!({ "lines": lines.len(), "format": if xlsx { "xlsx" } else { "csv" } }),
        request_id,
    )
    .await?;
    Ok((batch, bytes))
}

/// The columns of the bank's deduction result: `流水号,结果,失败原因`.
const RESULT_COLUMNS: &[ResultColumn] = &[
    ResultColumn::Serial,
    ResultColumn::Result,
    ResultColumn::Reason,
];

/// What importing a result did.
#[derive(Clone, Debug, Default)]
pub struct ImportSummary {
    pub succeeded: usize,
    pub failed: usize,
    /// Deducted, but the member already held a membership for the period (nothing new was
    /// created; a refund record is due for each).
    pub already_enrolled: Vec<String>,
    /// Public ids of the refund records created.
    pub refunds: Vec<String>,
}

/// Why a result was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no such batch")]
    NotFound,
    #[error("this batch's result was already imported")]
    AlreadyImported,
    #[error("the result file does not match the batch")]
    Invalid(Vec<LineProblem>),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Checks every result line against the batch: each serial belongs to it, appears once, and
/// every item has its result.
fn match_results(
    batch: &DeductionBatch,
    items: &[deduction_item::Model],
    lines: Vec<ResultLine>,
) -> Result<Vec<(deduction_item::Model, String, Outcome)>, Vec<LineProblem>> {
    let by_serial: HashMap<String, &deduction_item::Model> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (serial(batch, i + 1), item))
        .collect();
    let mut problems = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut matched = Vec::new();
    for l in lines {
        match by_serial.get(&l.serial) {
            None => problems.push(problem(
                Some(l.line),
                Some(&l.serial),
                "unknown_serial",
                "流水号不属于本批次 / this serial number is not in the batch",
            )),
            Some(item) => {
                if let Some(earlier) = seen.insert(l.serial.clone(), l.line) {
                    problems.push(problem(
                        Some(l.line),
                        Some(&l.serial),
                        "duplicate_serial",
                        format!("流水号与第 {earlier} 行重复 / repeats line {earlier}"),
                    ));
                } else {
                    matched.push(((*item).clone(), l.serial, l.outcome));
                }
            }
        }
    }
    let mut missing: Vec<&String> = by_serial
        .keys()
        .filter(|s| !seen.contains_key(*s))
        .collect();
    missing.sort();
    for s in missing {
        problems.push(problem(
            None,
            Some(s),
            "serial_without_result",
            "本批次的这一笔没有结果 / this deduction of the batch has no result",
        ));
    }
    if problems.is_empty() {
        Ok(matched)
    } else {
        Err(problems)
    }
}

/// Imports the bank's result for a batch, all or nothing. Run inside a transaction. Each
/// success enrols the member (membership `individual`, the member's unit union, the batch's
/// coverage period — whatever day the result is imported, as long as the period has not ended
/// on `today`) and queues `enrolment_confirmed`, or, when the member already holds a membership
/// for that period, records a refund due (`already_enrolled`, or `charged_twice` when that
/// membership came from a deduction); when the period ended before `today` nobody is enrolled
/// and every success is a refund due (`period_ended`); each failure keeps the bank's reason and
/// queues `deduction_failed`. `today` is the service's calendar day, `now` only stamps rows.
pub async fn import_result<C: ConnectionTrait>(
    db: &C,
    batch_pid: &str,
    file: &[u8],
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<(DeductionBatch, ImportSummary), ImportError> {
    let batch = get(db, batch_pid).await?.ok_or(ImportError::NotFound)?;
    if batch.status != BatchStatus::Exported {
        return Err(ImportError::AlreadyImported);
    }
    let lines = bank_file::parse_result_file(file, RESULT_COLUMNS).map_err(ImportError::Invalid)?;
    let items = items_of(db, batch.id).await?;
    let matched = match_results(&batch, &items, lines).map_err(ImportError::Invalid)?;

    // The conditional update is the claim: of two imports at once, one finds no row to change.
    let claimed = deduction_batch::Entity::update_many()
        .col_expr(
            deduction_batch::Column::Status,
            Expr::value(BatchStatus::ResultImported.as_str()),
        )
        .col_expr(deduction_batch::Column::ResultImportedAt, Expr::value(now))
        .filter(deduction_batch::Column::Id.eq(batch.id))
        .filter(deduction_batch::Column::Status.eq(BatchStatus::Exported.as_str()))
        .exec(db)
        .await?;
    if claimed.rows_affected != 1 {
        return Err(ImportError::AlreadyImported);
    }

    let scheme = scheme::latest(db, &batch.scheme_code)
        .await?
        .ok_or_else(|| {
            DbErr::Custom(format!(
                "scheme {} of batch {} vanished",
                batch.scheme_code, batch.pid
            ))
        })?;
    let (start, end) = batch
        .period
        .or_else(|| period_of(&scheme.definition))
        .ok_or_else(|| {
            DbErr::Custom(format!("scheme {}: no coverage period", batch.scheme_code))
        })?;
    let members = crate::service::member::rows_by_id(db, items.iter().map(|i| i.member_id)).await?;
    let period_over = today > end;

    let mut summary = ImportSummary::default();
    for (item, serial, outcome) in matched {
        let amount = Money::from_fen(item.amount_fen);
        match outcome {
            Outcome::Succeeded => {
                let m = members.get(&item.member_id).ok_or_else(|| {
                    DbErr::Custom(format!("deduction item {}: member missing", item.id))
                })?;
                let existing = membership::Entity::find()
                    .filter(membership::Column::MemberId.eq(m.id))
                    .filter(membership::Column::SchemeCode.eq(batch.scheme_code.as_str()))
                    .filter(membership::Column::CoverageStart.lte(end))
                    .filter(membership::Column::CoverageEnd.gte(start))
                    .one(db)
                    .await?;
                let refund_reason = match &existing {
                    Some(found) if found.source == "individual" => Some(REFUND_CHARGED_TWICE),
                    Some(_) => Some(REFUND_ALREADY_ENROLLED),
                    None if period_over => Some(REFUND_PERIOD_ENDED),
                    None => None,
                };
                if let Some(reason) = refund_reason {
                    if existing.is_some() {
                        summary.already_enrolled.push(serial.clone());
                    }
                    let refund = deduction_refund::ActiveModel {
                        pid: Set(new_pid()),
                        member_id: Set(m.id),
                        item_id: Set(item.id),
                        batch_id: Set(batch.id),
                        scheme_code: Set(batch.scheme_code.clone()),
                        amount_fen: Set(item.amount_fen),
                        reason: Set(reason.to_owned()),
                        status: Set(REFUND_DUE.to_owned()),
                        created_at: Set(now),
                        refunded_at: Set(None),
                        refunded_by: Set(None),
                        ..Default::default()
                    }
                    .insert(db)
                    .await?;
                    summary.refunds.push(refund.pid);
                }
                let membership_id = match existing {
                    Some(found) => Some(found.id),
                    None if period_over => None,
                    None => {
                        let created = enrol(db, &batch, &item, m, (start, end), now).await?;
                        outbox::enqueue(
                            db,
                            Occasion::EnrolmentConfirmed,
                            m.id,
                            &format!("deduction:{}:enrolment_confirmed", item.id),
                            json!({
                                "scheme_code": batch.scheme_code,
                                "membership_id": created.pid,
                                "coverage_start": start,
                                "coverage_end": end,
                                "fee": amount,
                            }),
                            now,
                        )
                        .await?;
                        Some(created.id)
                    }
                };
                mark_item(db, item.id, ITEM_SUCCEEDED, None, membership_id).await?;
                summary.succeeded += 1;
            }
            Outcome::Failed { reason } => {
                mark_item(db, item.id, ITEM_FAILED, Some(reason.clone()), None).await?;
                outbox::enqueue(
                    db,
                    Occasion::DeductionFailed,
                    item.member_id,
                    &format!("deduction:{}:deduction_failed", item.id),
                    json!({
                        "scheme_code": batch.scheme_code,
                        "month": batch.month,
                        "amount": amount,
                        "reason": reason,
                    }),
                    now,
                )
                .await?;
                summary.failed += 1;
            }
        }
    }
    let batch = DeductionBatch {
        status: BatchStatus::ResultImported,
        result_imported_at: Some(now),
        ..batch
    };
    Ok((batch, summary))
}

/// `actor_pid` imports the bank's result file of a batch inside `scope` (see
/// [`import_result`]), with its audit entry, in one transaction.
#[allow(clippy::too_many_arguments)]
pub async fn record_result(
    db: &DatabaseConnection,
    scope: &Scope,
    batch_pid: &str,
    file: &[u8],
    actor_pid: &str,
    now: DateTime<Utc>,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<(DeductionBatch, ImportSummary), ImportError> {
    let txn = crate::db::begin_write(db).await?;
    if get_within(&txn, scope, batch_pid).await?.is_none() {
        return Err(ImportError::NotFound);
    }
    let (batch, summary) = import_result(&txn, batch_pid, file, now, today).await?;
    audit::record(
        &txn,
        &account(actor_pid),
        "deduction.result_imported",
        ("deduction_batch", Some(&batch.pid)),
        json!({
            "succeeded": summary.succeeded,
            "failed": summary.failed,
            "already_enrolled": summary.already_enrolled,
            "refunds": summary.refunds,
            "today": today,
        }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok((batch, summary))
}

async fn enrol<C: ConnectionTrait>(
    db: &C,
    batch: &DeductionBatch,
    item: &deduction_item::Model,
    m: &member::Model,
    (start, end): (NaiveDate, NaiveDate),
    now: DateTime<Utc>,
) -> Result<membership::Model, DbErr> {
    membership::ActiveModel {
        pid: Set(new_pid()),
        member_id: Set(m.id),
        organisation_id: Set(m.organisation_id),
        scheme_code: Set(batch.scheme_code.clone()),
        coverage_start: Set(start),
        coverage_end: Set(end),
        status: Set("active".into()),
        consecutive_periods: Set(1),
        continuous_renewal: Set(false),
        created_at: Set(now),
        enrolment_batch_id: Set(None),
        fee_fen: Set(item.amount_fen),
        allowance_paid: Set(false),
        extension_id: Set(None),
        source: Set("individual".into()),
        ..Default::default()
    }
    .insert(db)
    .await
}

async fn mark_item<C: ConnectionTrait>(
    db: &C,
    item_id: i64,
    status: &str,
    reason: Option<String>,
    membership_id: Option<i64>,
) -> Result<(), DbErr> {
    deduction_item::ActiveModel {
        id: Set(item_id),
        status: Set(status.to_owned()),
        failure_reason: Set(reason),
        membership_id: Set(membership_id),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

/// Why a late window was not opened.
#[derive(Debug, thiserror::Error)]
pub enum LateWindowError {
    #[error("no such scheme")]
    SchemeNotFound,
    #[error("members of this scheme do not enrol by bank deduction")]
    NotIndividual,
    #[error("a written reason is required")]
    ReasonMissing,
    /// The late window must close after the scheme's window, not in the past, and before the
    /// coverage period ends.
    #[error("the late window must close between {earliest} and {latest}")]
    ClosesOutOfRange {
        earliest: NaiveDate,
        latest: NaiveDate,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The association opens a late window for a scheme's deductions (for late payers): batches may
/// be created until `closes`, for the same coverage period. Recorded with who, when and why, and
/// audited, in one transaction.
#[allow(clippy::too_many_arguments)]
pub async fn open_late_window(
    db: &DatabaseConnection,
    scheme_code: &str,
    closes: NaiveDate,
    reason: &str,
    actor_pid: &str,
    now: DateTime<Utc>,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<(NaiveDate, NaiveDate), LateWindowError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(LateWindowError::ReasonMissing);
    }
    let txn = crate::db::begin_write(db).await?;
    let scheme = scheme::latest(&txn, scheme_code)
        .await?
        .ok_or(LateWindowError::SchemeNotFound)?;
    let definition = &scheme.definition;
    if definition.enrolment.mode != EnrolmentMode::Individual {
        return Err(LateWindowError::NotIndividual);
    }
    let (period_start, period_end) = period_of(definition)
        .ok_or_else(|| DbErr::Custom(format!("scheme {scheme_code}: no coverage period")))?;
    let earliest = definition
        .enrolment
        .closes
        .succ_opt()
        .unwrap_or(definition.enrolment.closes)
        .max(today);
    if closes < earliest || closes > period_end {
        return Err(LateWindowError::ClosesOutOfRange {
            earliest,
            latest: period_end,
        });
    }
    deduction_window::ActiveModel {
        scheme_code: Set(scheme_code.to_owned()),
        closes: Set(closes),
        reason: Set(reason.to_owned()),
        opened_by: Set(actor_pid.to_owned()),
        opened_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        &account(actor_pid),
        "deduction.late_window_opened",
        ("scheme", Some(scheme_code)),
        json!({
            "closes": closes,
            "reason": reason,
            "coverage_period": [period_start, period_end],
        }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok((period_start, period_end))
}

/// What the officer filters batches by.
#[derive(Clone, Debug, Default)]
pub struct BatchFilter {
    pub scheme_code: Option<String>,
    pub status: Option<BatchStatus>,
    /// Months from (inclusive).
    pub month_from: Option<YearMonth>,
    /// Months to (inclusive).
    pub month_to: Option<YearMonth>,
}

/// Batches a caller with `scope` may see: those with no deduction of a member outside it (a
/// batch spans unions, so one outside member hides it from a union-level scope).
fn batch_visible_in(scope: &Scope) -> Condition {
    let outside = Query::select()
        .column(deduction_item::Column::BatchId)
        .from(deduction_item::Entity)
        .and_where(deduction_item::Column::MemberId.not_in_subquery(scope.member_ids()))
        .to_owned();
    Condition::all().add(deduction_batch::Column::Id.not_in_subquery(outside))
}

/// A batch by public id, inside `scope`.
pub async fn get_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    pid: &str,
) -> Result<Option<DeductionBatch>, DbErr> {
    deduction_batch::Entity::find()
        .filter(deduction_batch::Column::Pid.eq(pid))
        .filter(batch_visible_in(scope))
        .one(db)
        .await?
        .map(to_batch)
        .transpose()
}

/// The totals of every batch matching a filter (not only the page shown).
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchTotals {
    pub batches: i64,
    pub items: i64,
    pub amount: Money,
    pub outcomes: Outcomes,
}

/// One page of batches and the totals of all that match.
#[derive(Debug)]
pub struct BatchList {
    pub page: Page<(DeductionBatch, Outcomes)>,
    pub totals: BatchTotals,
}

/// How the deductions of some batches ended, counted in the database.
async fn outcomes_of<C: ConnectionTrait>(
    db: &C,
    batch_ids: &[i64],
) -> Result<HashMap<i64, Outcomes>, DbErr> {
    let mut out: HashMap<i64, Outcomes> = HashMap::new();
    for chunk in batch_ids.chunks(400) {
        let rows: Vec<(i64, String, i64, i64)> = deduction_item::Entity::find()
            .select_only()
            .column(deduction_item::Column::BatchId)
            .column(deduction_item::Column::Status)
            .column_as(deduction_item::Column::Id.count(), "n")
            // PostgreSQL's SUM(bigint) is numeric: cast back so both backends give an integer.
            .column_as(
                Expr::cust("CAST(SUM(deduction_item.amount_fen) AS BIGINT)"),
                "fen",
            )
            .filter(deduction_item::Column::BatchId.is_in(chunk.iter().copied()))
            .group_by(deduction_item::Column::BatchId)
            .group_by(deduction_item::Column::Status)
            .into_tuple()
            .all(db)
            .await?;
        for (batch_id, status, n, fen) in rows {
            out.entry(batch_id).or_default().add_many(&status, n, fen);
        }
    }
    Ok(out)
}

/// The batches inside `scope` matching a filter, newest first, one page of them (cursor on the
/// batch id) with each batch's outcome, and the totals of all that match.
pub async fn list_batches<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    filter: &BatchFilter,
    after_id: Option<i64>,
    limit: u64,
) -> Result<BatchList, DbErr> {
    let mut q = deduction_batch::Entity::find().filter(batch_visible_in(scope));
    if let Some(code) = &filter.scheme_code {
        q = q.filter(deduction_batch::Column::SchemeCode.eq(code.as_str()));
    }
    if let Some(status) = filter.status {
        q = q.filter(deduction_batch::Column::Status.eq(status.as_str()));
    }
    if let Some(from) = filter.month_from {
        q = q.filter(deduction_batch::Column::Month.gte(from.to_string()));
    }
    if let Some(to) = filter.month_to {
        q = q.filter(deduction_batch::Column::Month.lte(to.to_string()));
    }
    // Totals over everything matching: a scheme has at most one batch a month, so the ids and
    // sums are few; the items are counted in the database.
    let all: Vec<(i64, i32, i64)> = q
        .clone()
        .select_only()
        .column(deduction_batch::Column::Id)
        .column(deduction_batch::Column::ItemCount)
        .column(deduction_batch::Column::TotalFen)
        .into_tuple()
        .all(db)
        .await?;
    let ids: Vec<i64> = all.iter().map(|(id, _, _)| *id).collect();
    let mut outcomes = outcomes_of(db, &ids).await?;
    let mut totals = BatchTotals::default();
    for (id, count, fen) in &all {
        totals.batches += 1;
        totals.items += i64::from(*count);
        totals.amount = totals.amount + Money::from_fen(*fen);
        if let Some(o) = outcomes.get(id) {
            totals.outcomes.merge(o);
        }
    }
    if let Some(after) = after_id {
        q = q.filter(deduction_batch::Column::Id.lt(after));
    }
    let rows = q
        .order_by_desc(deduction_batch::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let page = page_from(rows, limit, |b| b.id);
    let items = page
        .items
        .into_iter()
        .map(|b| {
            let o = outcomes.remove(&b.id).unwrap_or_default();
            Ok((to_batch(b)?, o))
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(BatchList {
        page: Page {
            items,
            next_cursor: page.next_cursor,
        },
        totals,
    })
}

/// How a batch's deductions ended, in counts and money.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcomes {
    pub pending: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub succeeded_amount: Money,
    pub failed_amount: Money,
}

impl Outcomes {
    fn add_many(&mut self, status: &str, n: i64, fen: i64) {
        let amount = Money::from_fen(fen);
        match status {
            ITEM_SUCCEEDED => {
                self.succeeded += n;
                self.succeeded_amount = self.succeeded_amount + amount;
            }
            ITEM_FAILED => {
                self.failed += n;
                self.failed_amount = self.failed_amount + amount;
            }
            _ => self.pending += n,
        }
    }

    fn merge(&mut self, other: &Outcomes) {
        self.pending += other.pending;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.succeeded_amount = self.succeeded_amount + other.succeeded_amount;
        self.failed_amount = self.failed_amount + other.failed_amount;
    }
}

/// One deduction as the officer or the member sees it (personal numbers left out).
#[derive(Clone, Debug)]
pub struct DeductionLine {
    pub seq: usize,
    pub serial: String,
    pub batch_pid: String,
    pub scheme_code: String,
    pub month: YearMonth,
    pub member_pid: String,
    pub member_name: String,
    pub union_name: String,
    pub amount: Money,
    /// `pending`, `succeeded`, `failed`.
    pub status: String,
    pub failure_reason: Option<String>,
    pub period: Option<(NaiveDate, NaiveDate)>,
}

/// Deduction batches by id.
async fn batches_by_id<C: ConnectionTrait>(
    db: &C,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, DeductionBatch>, DbErr> {
    deduction_batch::Entity::find()
        .filter(deduction_batch::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|b| to_batch(b).map(|b| (b.id, b)))
        .collect()
}

async fn lines_of<C: ConnectionTrait>(
    db: &C,
    items: Vec<deduction_item::Model>,
) -> Result<Vec<DeductionLine>, DbErr> {
    let batches = batches_by_id(db, items.iter().map(|i| i.batch_id)).await?;
    let members = crate::service::member::rows_by_id(db, items.iter().map(|i| i.member_id)).await?;
    let unions = crate::service::member::union_names(db, &members).await?;
    // The sequence in the file is the item's place among its batch's items, in id order.
    let mut seq_of: HashMap<i64, usize> = HashMap::new();
    for batch_id in batches.keys() {
        let ids: Vec<i64> = deduction_item::Entity::find()
            .select_only()
            .column(deduction_item::Column::Id)
            .filter(deduction_item::Column::BatchId.eq(*batch_id))
            .order_by_asc(deduction_item::Column::Id)
            .into_tuple()
            .all(db)
            .await?;
        for (i, id) in ids.into_iter().enumerate() {
            seq_of.insert(id, i + 1);
        }
    }
    items
        .into_iter()
        .map(|item| {
            let corrupt =
                |what: &str| DbErr::Custom(format!("deduction item {}: {what} missing", item.id));
            let batch = batches
                .get(&item.batch_id)
                .ok_or_else(|| corrupt("batch"))?;
            let m = members
                .get(&item.member_id)
                .ok_or_else(|| corrupt("member"))?;
            let seq = seq_of.get(&item.id).copied().unwrap_or_default();
            Ok(DeductionLine {
                seq,
                serial: serial(batch, seq),
                batch_pid: batch.pid.clone(),
                scheme_code: batch.scheme_code.clone(),
                month: batch.month,
                member_pid: m.pid.clone(),
                member_name: m.name.clone(),
                union_name: unions.get(&m.organisation_id).cloned().unwrap_or_default(),
                amount: Money::from_fen(item.amount_fen),
                status: item.status,
                failure_reason: item.failure_reason,
                period: batch.period,
            })
        })
        .collect()
}

/// A batch's deductions and their results in the file's order, one page (cursor on the
/// deduction; `None`: no such batch inside `scope`).
pub async fn batch_lines<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    batch_pid: &str,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Option<Page<DeductionLine>>, DbErr> {
    let Some(batch) = get_within(db, scope, batch_pid).await? else {
        return Ok(None);
    };
    let mut q = deduction_item::Entity::find().filter(deduction_item::Column::BatchId.eq(batch.id));
    if let Some(after) = after_id {
        q = q.filter(deduction_item::Column::Id.gt(after));
    }
    let rows = q
        .order_by_asc(deduction_item::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let page = page_from(rows, limit, |i| i.id);
    Ok(Some(Page {
        items: lines_of(db, page.items).await?,
        next_cursor: page.next_cursor,
    }))
}

/// Which failed deductions the officer looks at.
#[derive(Clone, Debug, Default)]
pub struct FailedFilter {
    pub scheme_code: Option<String>,
    pub month: Option<YearMonth>,
    /// Public id of one unit union.
    pub union_pid: Option<String>,
}

/// The failed deductions of one unit union, counted.
#[derive(Clone, Debug)]
pub struct UnionFailures {
    pub union_pid: String,
    pub union_name: String,
    pub count: i64,
    pub amount: Money,
}

/// Failed deductions: every union's count and amount, and one page of the lines.
#[derive(Debug)]
pub struct FailedDeductions {
    pub unions: Vec<UnionFailures>,
    pub page: Page<DeductionLine>,
}

/// Failed deductions inside `scope` (every batch, or one scheme, month or union), for each
/// union's follow-up: per union (by name) the count and amount of all of them, and one page of
/// the lines, newest first (cursor on the deduction).
pub async fn failed_lines<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    filter: &FailedFilter,
    after_id: Option<i64>,
    limit: u64,
) -> Result<FailedDeductions, DbErr> {
    let mut batches = Query::select()
        .column(deduction_batch::Column::Id)
        .from(deduction_batch::Entity)
        .to_owned();
    if let Some(code) = &filter.scheme_code {
        batches.and_where(deduction_batch::Column::SchemeCode.eq(code.as_str()));
    }
    if let Some(month) = filter.month {
        batches.and_where(deduction_batch::Column::Month.eq(month.to_string()));
    }
    let mut members = scope.member_ids();
    if let Some(union_pid) = &filter.union_pid {
        members.and_where(
            member::Column::OrganisationId.in_subquery(
                Query::select()
                    .column(organisation::Column::Id)
                    .from(organisation::Entity)
                    .and_where(organisation::Column::Pid.eq(union_pid.as_str()))
                    .to_owned(),
            ),
        );
    }
    let q = deduction_item::Entity::find()
        .filter(deduction_item::Column::Status.eq(ITEM_FAILED))
        .filter(deduction_item::Column::BatchId.in_subquery(batches))
        .filter(deduction_item::Column::MemberId.in_subquery(members));

    // Per member in the database, then per union here (a member belongs to one union).
    let per_member: Vec<(i64, i64, i64)> = q
        .clone()
        .select_only()
        .column(deduction_item::Column::MemberId)
        .column_as(deduction_item::Column::Id.count(), "n")
        .column_as(
            Expr::cust("CAST(SUM(deduction_item.amount_fen) AS BIGINT)"),
            "fen",
        )
        .group_by(deduction_item::Column::MemberId)
        .into_tuple()
        .all(db)
        .await?;
    let mut union_of: HashMap<i64, i64> = HashMap::new();
    for chunk in per_member.chunks(400) {
        let rows: Vec<(i64, i64)> = member::Entity::find()
            .select_only()
            .column(member::Column::Id)
            .column(member::Column::OrganisationId)
            .filter(member::Column::Id.is_in(chunk.iter().map(|(id, _, _)| *id)))
            .into_tuple()
            .all(db)
            .await?;
        union_of.extend(rows);
    }
    let mut per_union: HashMap<i64, (i64, i64)> = HashMap::new();
    for (member_id, n, fen) in per_member {
        if let Some(union) = union_of.get(&member_id) {
            let e = per_union.entry(*union).or_default();
            e.0 += n;
            e.1 += fen;
        }
    }
    let mut unions: Vec<UnionFailures> = organisation::Entity::find()
        .filter(organisation::Column::Id.is_in(per_union.keys().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|o| {
            let (count, fen) = per_union.get(&o.id).copied().unwrap_or_default();
            UnionFailures {
                union_pid: o.pid,
                union_name: o.name,
                count,
                amount: Money::from_fen(fen),
            }
        })
        .collect();
    unions.sort_by(|a, b| a.union_name.cmp(&b.union_name));

    let mut q = q;
    if let Some(after) = after_id {
        q = q.filter(deduction_item::Column::Id.lt(after));
    }
    let rows = q
        .order_by_desc(deduction_item::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let page = page_from(rows, limit, |i| i.id);
    Ok(FailedDeductions {
        unions,
        page: Page {
            items: lines_of(db, page.items).await?,
            next_cursor: page.next_cursor,
        },
    })
}

/// A fee to give back.
#[derive(Clone, Debug)]
pub struct Refund {
    pub pid: String,
    pub member_pid: String,
    pub member_name: String,
    pub scheme_code: String,
    pub batch_pid: String,
    pub month: YearMonth,
    pub amount: Money,
    /// `already_enrolled` or `charged_twice`.
    pub reason: String,
    /// `due` or `refunded`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub refunded_at: Option<DateTime<Utc>>,
}

async fn refunds_of<C: ConnectionTrait>(
    db: &C,
    rows: Vec<deduction_refund::Model>,
) -> Result<Vec<Refund>, DbErr> {
    let batches = batches_by_id(db, rows.iter().map(|r| r.batch_id)).await?;
    let members = crate::service::member::rows_by_id(db, rows.iter().map(|r| r.member_id)).await?;
    rows.into_iter()
        .map(|r| {
            let corrupt = |what: &str| DbErr::Custom(format!("refund {}: {what} missing", r.pid));
            let batch = batches.get(&r.batch_id).ok_or_else(|| corrupt("batch"))?;
            let m = members.get(&r.member_id).ok_or_else(|| corrupt("member"))?;
            Ok(Refund {
                pid: r.pid,
                member_pid: m.pid.clone(),
                member_name: m.name.clone(),
                scheme_code: r.scheme_code,
                batch_pid: batch.pid.clone(),
                month: batch.month,
                amount: Money::from_fen(r.amount_fen),
                reason: r.reason,
                status: r.status,
                created_at: r.created_at,
                refunded_at: r.refunded_at,
            })
        })
        .collect()
}

/// Refund records of members inside `scope`, newest first, optionally of one status, one page
/// (cursor on the refund).
pub async fn list_refunds<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    status: Option<&str>,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Page<Refund>, DbErr> {
    let mut q = deduction_refund::Entity::find()
        .filter(deduction_refund::Column::MemberId.in_subquery(scope.member_ids()));
    if let Some(status) = status {
        q = q.filter(deduction_refund::Column::Status.eq(status));
    }
    if let Some(after) = after_id {
        q = q.filter(deduction_refund::Column::Id.lt(after));
    }
    let rows = q
        .order_by_desc(deduction_refund::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let page = page_from(rows, limit, |r| r.id);
    Ok(Page {
        items: refunds_of(db, page.items).await?,
        next_cursor: page.next_cursor,
    })
}

/// Why a refund was not marked.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no such refund")]
    NotFound,
    #[error("already refunded")]
    AlreadyRefunded,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// `actor_pid` records that a refund was paid back (audited, once).
pub async fn mark_refunded(
    db: &DatabaseConnection,
    scope: &Scope,
    refund_pid: &str,
    actor_pid: &str,
    now: DateTime<Utc>,
    request_id: Option<String>,
) -> Result<Refund, RefundError> {
    let txn = crate::db::begin_write(db).await?;
    let row = deduction_refund::Entity::find()
        .filter(deduction_refund::Column::Pid.eq(refund_pid))
        .filter(deduction_refund::Column::MemberId.in_subquery(scope.member_ids()))
        .one(&txn)
        .await?
        .ok_or(RefundError::NotFound)?;
    // The conditional update is the claim: only one marking turns `due` into `refunded`.
    let updated = deduction_refund::Entity::update_many()
        .col_expr(deduction_refund::Column::Status, Expr::value(REFUND_DONE))
        .col_expr(deduction_refund::Column::RefundedAt, Expr::value(now))
        .col_expr(deduction_refund::Column::RefundedBy, Expr::value(actor_pid))
        .filter(deduction_refund::Column::Id.eq(row.id))
        .filter(deduction_refund::Column::Status.eq(REFUND_DUE))
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(RefundError::AlreadyRefunded);
    }
    audit::record(
        &txn,
        &account(actor_pid),
        "deduction.refunded",
        ("deduction_refund", Some(refund_pid)),
        json!({ "amount": Money::from_fen(row.amount_fen), "reason": row.reason }),
        request_id,
    )
    .await?;
    let refund = refunds_of(
        &txn,
        vec![deduction_refund::Model {
            status: REFUND_DONE.to_owned(),
            refunded_at: Some(now),
            refunded_by: Some(actor_pid.to_owned()),
            ..row
        }],
    )
    .await?
    .into_iter()
    .next()
    .ok_or_else(|| DbErr::Custom("refund vanished".into()))?;
    txn.commit().await?;
    Ok(refund)
}

/// The columns of the refund file.
const REFUND_HEADERS: [&str; 7] = [
    "序号",
    "退款编号",
    "姓名",
    "身份证号",
    "银行卡号",
    "金额",
    "原因",
];

/// The refunds due of members inside `scope` as the bank's file: columns
/// 序号,退款编号,姓名,身份证号,银行卡号,金额,原因 (the card the fee was deducted from) and the control
/// line, as CSV (UTF-8 with a byte-order mark) or as an `.xlsx` workbook (sheet 退款明细, numbers
/// as text, a totals row). Full numbers: audited.
pub async fn refund_file(
    db: &DatabaseConnection,
    vault: &PiiVault,
    scope: &Scope,
    actor_pid: &str,
    xlsx: bool,
    request_id: Option<String>,
) -> Result<Vec<u8>, FileError> {
    let rows = deduction_refund::Entity::find()
        .filter(deduction_refund::Column::Status.eq(REFUND_DUE))
        .filter(deduction_refund::Column::MemberId.in_subquery(scope.member_ids()))
        .order_by_asc(deduction_refund::Column::Id)
        .all(db)
        .await?;
    let items: HashMap<i64, deduction_item::Model> = deduction_item::Entity::find()
        .filter(deduction_item::Column::Id.is_in(rows.iter().map(|r| r.item_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|i| (i.id, i))
        .collect();
    let members = crate::service::member::rows_by_id(db, rows.iter().map(|r| r.member_id)).await?;
    let auth_rows = payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::Id.is_in(items.values().map(|i| i.authorisation_id)))
        .all(db)
        .await?;
    let cards: HashMap<i64, String> = open_all(db, vault, auth_rows)
        .await?
        .into_iter()
        .map(|a| (a.id, a.bank_card.as_str().to_owned()))
        .collect();
    let mut lines = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let corrupt = |what: &str| DbErr::Custom(format!("refund {}: {what} missing", r.pid));
        let m = members.get(&r.member_id).ok_or_else(|| corrupt("member"))?;
        let item = items.get(&r.item_id).ok_or_else(|| corrupt("deduction"))?;
        let id_number = vault
            .open(PiiKind::IdNumber, &m.id_number_cipher)
            .map_err(|_| corrupt("ID number"))?;
        let card = cards
            .get(&item.authorisation_id)
            .ok_or_else(|| corrupt("card"))?;
        lines.push(RefundFileLine {
            seq: i + 1,
            refund_pid: r.pid.clone(),
            name: m.name.clone(),
            id_number,
            bank_card: card.clone(),
            amount: Money::from_fen(r.amount_fen),
            reason: r.reason.clone(),
        });
    }
    let count = lines.len();
    let bytes = if xlsx {
        render_refund_xlsx(&lines)?
    } else {
        render_refund_csv(&lines)?
    };
    audit::record(
        db,
        &account(actor_pid),
        "deduction.refund_file_downloaded",
        ("deduction_refund", None),
        json!({ "lines": count, "format": if xlsx { "xlsx" } else { "csv" } }),
        request_id,
    )
    .await?;
    Ok(bytes)
}

/// One line of the refund file, numbers in full.
struct RefundFileLine {
    seq: usize,
    refund_pid: String,
    name: String,
    id_number: String,
    bank_card: String,
    amount: Money,
    reason: String,
}

fn render_refund_csv(lines: &[RefundFileLine]) -> Result<Vec<u8>, csv::Error> {
    bank_file::render_csv(
        &REFUND_HEADERS,
        lines.iter().map(|l| {
            vec![
                l.seq.to_string(),
                l.refund_pid.clone(),
                l.name.clone(),
                l.id_number.clone(),
                l.bank_card.clone(),
                l.amount.to_string(),
                l.reason.clone(),
            ]
        }),
        lines.len(),
        lines.iter().map(|l| l.amount).sum(),
    )
}

/// The refund file as a workbook: the same columns, ID and card numbers as text (never as
/// numbers Excel would round), amounts as numbers, a totals row.
fn render_refund_xlsx(lines: &[RefundFileLine]) -> Result<Vec<u8>, WorkbookError> {
    bank_file::render_xlsx(
        "退款明细",
        &REFUND_HEADERS,
        lines
            .iter()
            .map(|l| {
                vec![
                    Cell::Int(i64::try_from(l.seq).unwrap_or(i64::MAX)),
                    Cell::Code(l.refund_pid.clone()),
                    Cell::Text(l.name.clone()),
                    Cell::Code(l.id_number.clone()),
                    Cell::Code(l.bank_card.clone()),
                    Cell::Money(l.amount.as_decimal()),
                    Cell::Text(l.reason.clone()),
                ]
            })
            .collect(),
        5,
        lines.iter().map(|l| l.amount).sum(),
    )
}

/// A member's own deductions (newest first) and refunds.
pub async fn for_member<C: ConnectionTrait>(
    db: &C,
    member_pid: &str,
) -> Result<(Vec<DeductionLine>, Vec<Refund>), DbErr> {
    let Some(m) = member::Entity::find()
        .filter(member::Column::Pid.eq(member_pid))
        .one(db)
        .await?
    else {
        return Ok((Vec::new(), Vec::new()));
    };
    let items = deduction_item::Entity::find()
        .filter(deduction_item::Column::MemberId.eq(m.id))
        .order_by_desc(deduction_item::Column::Id)
        .all(db)
        .await?;
    let lines = lines_of(db, items).await?;
    let refunds = deduction_refund::Entity::find()
        .filter(deduction_refund::Column::MemberId.eq(m.id))
        .order_by_desc(deduction_refund::Column::Id)
        .all(db)
        .await?;
    Ok((lines, refunds_of(db, refunds).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(problems: &[LineProblem]) -> Vec<&'static str> {
        problems.iter().map(|p| p.code).collect()
    }

    fn batch() -> DeductionBatch {
        DeductionBatch {
            id: 1,
            pid: "01939a3e-7b1c-7d2e-8f00-abcdef123456".into(),
            scheme_code: "wj-2022".into(),
            month: YearMonth::parse("2021-11").unwrap(),
            status: BatchStatus::Exported,
            item_count: 2,
            total: Money::from_fen(6000),
            exported_at: Utc::now(),
            exported_by: "x".into(),
            result_imported_at: None,
            period: None,
        }
    }

    #[test]
    fn serials_carry_the_month_the_batch_and_the_sequence() {
        assert_eq!(serial(&batch(), 7), "202111123456000007");
    }

    #[test]
    fn results_must_cover_the_batch_exactly_once() {
        let b = batch();
        let item = |id| deduction_item::Model {
            id,
            batch_id: 1,
            authorisation_id: id,
            member_id: id,
            amount_fen: 3000,
            status: ITEM_PENDING.into(),
            failure_reason: None,
            membership_id: None,
        };
        let items = [item(10), item(11)];
        let line = |n, s: &str| ResultLine {
            line: n,
            serial: s.into(),
            name: None,
            amount: None,
            outcome: Outcome::Succeeded,
        };
        let ok = match_results(
            &b,
            &items,
            vec![line(1, &serial(&b, 2)), line(2, &serial(&b, 1))],
        )
        .unwrap();
        assert_eq!(
            ok.iter().map(|(i, _, _)| i.id).collect::<Vec<_>>(),
            [11, 10]
        );
        let problems = match_results(
            &b,
            &items,
            vec![
                line(1, &serial(&b, 1)),
                line(2, &serial(&b, 1)),
                line(3, "202111FFFFFF000001"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            codes(&problems),
            [
                "duplicate_serial",
                "unknown_serial",
                "serial_without_result"
            ]
        );
    }

    #[test]
    fn the_deduction_file_has_a_bom_and_a_control_total() {
        let line = |seq| FileLine {
            seq,
            serial: format!("S{seq}"),
            name: PersonName::parse("张三").unwrap(),
            id_number: IdNumber::parse("11010519491231002X").unwrap(),
            bank_card: crate::domain::BankCardNumber::parse("6222021234567890128").unwrap(),
            amount: Money::from_fen(3000),
        };
        let bytes = render_file(&[line(1), line(2)]).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with('\u{feff}'));
        let rows: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(rows[0], "序号,流水号,姓名,身份证号,银行卡号,金额");
        assert_eq!(
            rows[1],
            "1,S1,张三,11010519491231002X,6222021234567890128,30.00"
        );
        assert_eq!(rows[3], "合计,2,60.00");
    }
}
