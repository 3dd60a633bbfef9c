//! Monthly bank deductions for individual schemes (Wujin): the aid centre creates a month's
//! batch from the authorisations in force, exports it as the bank's deduction file, and imports
//! the bank's result file. Each successful deduction enrols the member (a membership for the
//! scheme's coverage period) and each failure is kept with the bank's reason; both tell the
//! member through the outbox, in the same transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use entity::{deduction_batch, deduction_item, member, membership, payment_authorisation};

use super::audit::{self, Actor};
use super::authorisation::{last_day, local_date, open_all, start_of_local_day, texts_of};
use super::outbox::{self, Occasion};
use super::{is_unique_violation, new_pid, scheme};
use crate::auth::crypto::{PiiKind, PiiVault};
use crate::domain::{IdNumber, Money, PersonName};
use crate::engine::scheme::EnrolmentMode;
use crate::engine::{YearMonth, coverage_period};
use crate::formats::bank_file::{self, LineProblem, Outcome, ResultColumn, ResultLine, problem};

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
    })
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

/// Creates `month`'s batch for a scheme: every authorisation signed before the month ended
/// and still in force on its first day (not revoked, or revoked no earlier than that month),
/// one per member (the newest), leaving out members already enrolled for the scheme's coverage
/// period and members whose deduction in another batch still awaits the bank's result. Each
/// item is the scheme's in-service fee. Run inside a transaction; `now` is the clock (a month
/// that has not begun in Beijing time is refused, since revocations may still come).
pub async fn create_batch<C: ConnectionTrait>(
    db: &C,
    scheme_code: &str,
    month: YearMonth,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<DeductionBatch, BatchError> {
    let scheme = scheme::latest(db, scheme_code)
        .await?
        .ok_or(BatchError::SchemeNotFound)?;
    let definition = &scheme.definition;
    if definition.enrolment.mode != EnrolmentMode::Individual {
        return Err(BatchError::NotIndividual);
    }
    let first = month.first_day();
    if first > local_date(now) {
        return Err(BatchError::MonthNotStarted);
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
    let (period_start, period_end) = coverage_period(&definition.coverage, first)
        .ok_or_else(|| DbErr::Custom(format!("scheme {scheme_code}: no coverage period")))?;
    let fee_fen = Money::from_decimal(definition.fees.in_service)
        .to_fen()
        .map_err(|e| DbErr::Custom(format!("scheme {scheme_code}: fee {e}")))?;
    let month_end = last_day(month);
    let signed_before = start_of_local_day(
        month_end
            .checked_add_days(Days::new(1))
            .unwrap_or(month_end),
    );

    let candidates = payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::TextId.in_subquery(texts_of(scheme_code)))
        .filter(payment_authorisation::Column::SignedAt.lt(signed_before))
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
    let mut seen = HashSet::new();
    let mut chosen: Vec<&payment_authorisation::Model> = candidates
        .iter()
        .filter(|a| !enrolled.contains(&a.member_id) && !awaiting.contains(&a.member_id))
        // Newest first, so a member who re-signed is deducted once, on the newest card.
        .filter(|a| seen.insert(a.member_id))
        .collect();
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
    request_id: Option<String>,
) -> Result<DeductionBatch, BatchError> {
    let txn = crate::db::begin_write(db).await?;
    let batch = create_batch(&txn, scheme_code, month, actor_pid, now).await?;
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
    let members: HashMap<i64, member::Model> = member::Entity::find()
        .filter(member::Column::Id.is_in(member_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
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
        &["序号", "流水号", "姓名", "身份证号", "银行卡号", "金额"],
        rows,
        lines.len(),
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
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The bank's deduction file of a batch (see [`render_file`]) as `actor_pid` downloads it: full
/// numbers, so every download is audited.
pub async fn download_file(
    db: &DatabaseConnection,
    vault: &PiiVault,
    batch_pid: &str,
    actor_pid: &str,
    request_id: Option<String>,
) -> Result<(DeductionBatch, Vec<u8>), FileError> {
    let batch = get(db, batch_pid).await?.ok_or(FileError::NotFound)?;
    let lines = file_lines(db, vault, &batch).await?;
    let bytes = render_file(&lines)?;
    audit::record(
        db,
        &account(actor_pid),
        "deduction.file_downloaded",
        ("deduction_batch", Some(&batch.pid)),
        json!({ "lines": lines.len() }),
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
    /// created; the aid centre should refund).
    pub already_enrolled: Vec<String>,
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
/// success enrols the member (membership `individual`, the member's unit union, the scheme's
/// coverage period for a deduction completed on `now`'s day) and queues `enrolment_confirmed`;
/// each failure keeps the bank's reason and queues `deduction_failed`.
pub async fn import_result<C: ConnectionTrait>(
    db: &C,
    batch_pid: &str,
    file: &[u8],
    now: DateTime<Utc>,
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
    let (start, end) =
        coverage_period(&scheme.definition.coverage, local_date(now)).ok_or_else(|| {
            DbErr::Custom(format!("scheme {}: no coverage period", batch.scheme_code))
        })?;
    let members: HashMap<i64, member::Model> = member::Entity::find()
        .filter(member::Column::Id.is_in(items.iter().map(|i| i.member_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();

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
                let membership_id = match existing {
                    Some(found) => {
                        summary.already_enrolled.push(serial.clone());
                        found.id
                    }
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
                        created.id
                    }
                };
                mark_item(db, item.id, ITEM_SUCCEEDED, None, Some(membership_id)).await?;
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

/// `actor_pid` imports the bank's result file of a batch (see [`import_result`]), with its
/// audit entry, in one transaction.
pub async fn record_result(
    db: &DatabaseConnection,
    batch_pid: &str,
    file: &[u8],
    actor_pid: &str,
    now: DateTime<Utc>,
    request_id: Option<String>,
) -> Result<(DeductionBatch, ImportSummary), ImportError> {
    let txn = crate::db::begin_write(db).await?;
    let (batch, summary) = import_result(&txn, batch_pid, file, now).await?;
    audit::record(
        &txn,
        &account(actor_pid),
        "deduction.result_imported",
        ("deduction_batch", Some(&batch.pid)),
        json!({
            "succeeded": summary.succeeded,
            "failed": summary.failed,
            "already_enrolled": summary.already_enrolled,
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
