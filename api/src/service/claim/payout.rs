//! Payouts (拨付): the association puts every approved claim (and every claim whose payout
//! failed) into a batch, hands the bank the batch's file, and imports the bank's result: each
//! claim becomes `paid` (and the member is told, through the outbox) or `payout_failed` with
//! the bank's reason, ready for a later batch.
//!
//! A claim joins a batch only through a version-checked move to `paying`, so a claim changed
//! meanwhile — by a reviewer, or by another batch created at the same moment — is left out and
//! no claim is ever in two batches. Result files may be partial (banks often answer in
//! several files): the batch stays `exported` until every item is decided, and importing the
//! same result again changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use entity::{claim, payout_batch, payout_item};

use super::transition::{self, Bulk, Change, Moving, Notice};
use super::{ClaimStatus, Level};
use crate::domain::Money;
use crate::formats::bank_file::{self, LineProblem, Outcome, ResultColumn, ResultLine, problem};
use crate::service::audit::{self, Actor};
use crate::service::authorisation::local_date;
use crate::service::new_pid;
use crate::service::outbox::Occasion;
use crate::service::page::{Page, page_from};
use crate::service::scope::{Scope, Scoped};

/// Where a payout batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutBatchStatus {
    /// The file can be downloaded; some items still await the bank's result.
    Exported,
    /// Every item has the bank's result.
    ResultImported,
}

impl PayoutBatchStatus {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exported => "exported",
            Self::ResultImported => "result_imported",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Exported, Self::ResultImported]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// What the bank did with one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemOutcome {
    /// Awaiting the bank's result.
    Pending,
    /// Paid to the card.
    Paid,
    /// Not paid; the reason is the bank's.
    Failed,
}

impl ItemOutcome {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Paid, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// How many items of a batch stand where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub pending: usize,
    pub paid: usize,
    pub failed: usize,
}

/// A payout batch.
#[derive(Clone, Debug)]
pub struct PayoutBatch {
    pub id: i64,
    pub pid: String,
    pub status: PayoutBatchStatus,
    pub item_count: i32,
    pub total: Money,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// When the last item got its result.
    pub result_imported_at: Option<DateTime<Utc>>,
    pub tally: Tally,
}

fn to_batch(m: payout_batch::Model, tally: Tally) -> Result<PayoutBatch, DbErr> {
    Ok(PayoutBatch {
        status: PayoutBatchStatus::parse(&m.status)
            .ok_or_else(|| DbErr::Custom(format!("payout batch {}: bad status", m.pid)))?,
        total: Money::from_fen(m.total_fen),
        id: m.id,
        pid: m.pid,
        item_count: m.item_count,
        created_by: m.created_by,
        created_at: m.created_at,
        result_imported_at: m.result_imported_at,
        tally,
    })
}

/// The batches a caller may see: those whose every claim lies in the caller's scope, so staff
/// of a smaller subtree never read other units' card numbers.
fn visible_in(scope: &Scope) -> Condition {
    let outside = Query::select()
        .column(payout_item::Column::BatchId)
        .from(payout_item::Entity)
        .and_where(
            payout_item::Column::ClaimId.not_in_subquery(
                Query::select()
                    .column(claim::Column::Id)
                    .from(claim::Entity)
                    .cond_where(scope.condition::<claim::Entity>())
                    .to_owned(),
            ),
        )
        .to_owned();
    Condition::all().add(payout_batch::Column::Id.not_in_subquery(outside))
}

async fn tallies<C: ConnectionTrait>(
    db: &C,
    batch_ids: &[i64],
) -> Result<HashMap<i64, Tally>, DbErr> {
    let rows: Vec<(i64, String, i64)> = payout_item::Entity::find()
        .select_only()
        .column(payout_item::Column::BatchId)
        .column(payout_item::Column::Outcome)
        .column_as(payout_item::Column::Id.count(), "n")
        .filter(payout_item::Column::BatchId.is_in(batch_ids.iter().copied()))
        .group_by(payout_item::Column::BatchId)
        .group_by(payout_item::Column::Outcome)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: HashMap<i64, Tally> = HashMap::new();
    for (batch_id, outcome, n) in rows {
        let tally = out.entry(batch_id).or_default();
        let n = usize::try_from(n).unwrap_or(0);
        match ItemOutcome::parse(&outcome) {
            Some(ItemOutcome::Pending) => tally.pending = n,
            Some(ItemOutcome::Paid) => tally.paid = n,
            Some(ItemOutcome::Failed) => tally.failed = n,
            None => return Err(DbErr::Custom(format!("payout item outcome {outcome}"))),
        }
    }
    Ok(out)
}

async fn with_tallies<C: ConnectionTrait>(
    db: &C,
    rows: Vec<payout_batch::Model>,
) -> Result<Vec<PayoutBatch>, DbErr> {
    let ids: Vec<i64> = rows.iter().map(|b| b.id).collect();
    let mut tallies = tallies(db, &ids).await?;
    rows.into_iter()
        .map(|b| {
            let tally = tallies.remove(&b.id).unwrap_or_default();
            to_batch(b, tally)
        })
        .collect()
}

/// A batch by public id, inside `scope`.
pub async fn get<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    pid: &str,
) -> Result<Option<PayoutBatch>, DbErr> {
    let Some(row) = payout_batch::Entity::find()
        .filter(payout_batch::Column::Pid.eq(pid))
        .filter(visible_in(scope))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(with_tallies(db, vec![row]).await?.pop())
}

/// Batches inside `scope`, newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Page<PayoutBatch>, DbErr> {
    let mut q = payout_batch::Entity::find()
        .filter(visible_in(scope))
        .order_by_desc(payout_batch::Column::Id);
    if let Some(after) = after_id {
        q = q.filter(payout_batch::Column::Id.lt(after));
    }
    let rows = q.limit(limit + 1).all(db).await?;
    let page = page_from(rows, limit, |b| b.id);
    Ok(Page {
        items: with_tallies(db, page.items).await?,
        next_cursor: page.next_cursor,
    })
}

/// Which claims a new batch takes.
#[derive(Clone, Debug, Default)]
pub struct BatchFilter {
    /// Only claims of this scheme.
    pub scheme_code: Option<String>,
}

/// Why a batch was not created.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("no approved claim awaits payment")]
    NothingToPay,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A batch just created and the claims it took (public ids, in the file's order).
#[derive(Clone, Debug)]
pub struct CreatedBatch {
    pub batch: PayoutBatch,
    pub claim_pids: Vec<String>,
}

/// Rows per statement when reading or writing many at once.
const CHUNK: usize = 400;

/// The serial prefix of a batch created on `now`'s day (Beijing time): `ZF` (支付) and the date.
fn serial_prefix(now: DateTime<Utc>) -> String {
    format!("ZF{}", local_date(now).format("%Y%m%d"))
}

/// Creates a batch of every claim inside `scope` that is `approved` (or `payout_failed`) with
/// an amount to pay and a payee, optionally of one scheme: one item per claim (amount, payee
/// and card copied from the claim), each claim moved to `paying` with a version check and a
/// timeline step, and the batch's audit entry; one transaction.
pub async fn create_batch(
    db: &DatabaseConnection,
    scope: &Scope,
    actor_pid: &str,
    filter: &BatchFilter,
    request_id: Option<String>,
) -> Result<CreatedBatch, BatchError> {
    let txn = crate::db::begin_write(db).await?;
    let created = fill_batch(&txn, scope, actor_pid, Utc::now(), filter).await?;
    let batch = &created.batch;
    audit::record(
        &txn,
        &Actor::Account {
            pid: actor_pid.to_owned(),
        },
        "payout.batch_created",
        ("payout_batch", Some(&batch.pid)),
        json!({
            "scheme_code": filter.scheme_code,
            "item_count": batch.item_count,
            "total": batch.total,
            "claims": created.claim_pids,
        }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// [`create_batch`] inside the caller's transaction.
async fn fill_batch<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    actor_pid: &str,
    now: DateTime<Utc>,
    filter: &BatchFilter,
) -> Result<CreatedBatch, BatchError> {
    // Written first, before anything is read: on SQLite this takes the write lock, so a second
    // batch created at the same moment waits and then finds the claims already taken.
    let batch = payout_batch::ActiveModel {
        pid: Set(new_pid()),
        status: Set(PayoutBatchStatus::Exported.as_str().to_owned()),
        item_count: Set(0),
        total_fen: Set(0),
        created_by: Set(actor_pid.to_owned()),
        created_at: Set(now),
        result_imported_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;

    let mut q = claim::Entity::find_within(scope)
        .filter(claim::Column::Status.is_in([
            ClaimStatus::Approved.as_str(),
            ClaimStatus::PayoutFailed.as_str(),
        ]))
        .filter(claim::Column::ApprovedFen.gt(0))
        .filter(claim::Column::PayeeName.is_not_null())
        .filter(claim::Column::PayeeBankCardCipher.is_not_null());
    if let Some(code) = &filter.scheme_code {
        q = q.filter(claim::Column::SchemeCode.eq(code.as_str()));
    }
    type Candidate = (
        i64,
        String,
        i32,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let candidates: Vec<Candidate> = q
        .select_only()
        .columns([
            claim::Column::Id,
            claim::Column::Pid,
            claim::Column::Version,
            claim::Column::Status,
            claim::Column::ApprovedFen,
            claim::Column::PayeeName,
            claim::Column::PayeeBankCardCipher,
        ])
        .order_by_asc(claim::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    if candidates.is_empty() {
        return Err(BatchError::NothingToPay);
    }
    let moving = candidates
        .iter()
        .map(|c| Moving {
            id: c.0,
            version: c.2,
            status: ClaimStatus::parse(&c.3),
            note: None,
            notice: None,
        })
        .collect();
    let moved = transition::apply_all(
        db,
        Bulk {
            from: &[ClaimStatus::Approved, ClaimStatus::PayoutFailed],
            to: ClaimStatus::Paying,
            action: "batched",
            level: Level::Association,
            actor_pid,
            set: vec![(claim::Column::PayoutFailure, Expr::value(None::<String>))],
        },
        moving,
        now,
    )
    .await?;
    if moved.is_empty() {
        return Err(BatchError::NothingToPay);
    }

    let prefix = serial_prefix(now);
    let mut items = Vec::with_capacity(moved.len());
    let mut claim_pids = Vec::with_capacity(moved.len());
    let mut total_fen: i64 = 0;
    for (id, pid, _, _, fen, name, cipher) in candidates {
        let (Some(fen), Some(name), Some(cipher)) = (fen, name, cipher) else {
            continue;
        };
        if !moved.contains(&id) {
            continue;
        }
        total_fen = total_fen
            .checked_add(fen)
            .ok_or_else(|| DbErr::Custom("payout total overflows".into()))?;
        items.push(payout_item::ActiveModel {
            batch_id: Set(batch.id),
            claim_id: Set(id),
            serial: Set(bank_file::serial(&prefix, &batch.pid, items.len() + 1)),
            amount_fen: Set(fen),
            payee_name: Set(name),
            bank_card_cipher: Set(cipher),
            outcome: Set(ItemOutcome::Pending.as_str().to_owned()),
            failure_reason: Set(None),
            ..Default::default()
        });
        claim_pids.push(pid);
    }
    // Inserted in the file's order: items' id order is the order of their serials.
    for chunk in items.chunks(CHUNK) {
        payout_item::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    let count = i32::try_from(claim_pids.len())
        .map_err(|_| DbErr::Custom("too many claims in one batch".into()))?;
    let batch = payout_batch::ActiveModel {
        id: Set(batch.id),
        item_count: Set(count),
        total_fen: Set(total_fen),
        ..Default::default()
    }
    .update(db)
    .await?;
    let tally = Tally {
        pending: claim_pids.len(),
        ..Tally::default()
    };
    Ok(CreatedBatch {
        batch: to_batch(batch, tally)?,
        claim_pids,
    })
}

pub(super) async fn items_of<C: ConnectionTrait>(
    db: &C,
    batch_id: i64,
) -> Result<Vec<payout_item::Model>, DbErr> {
    payout_item::Entity::find()
        .filter(payout_item::Column::BatchId.eq(batch_id))
        .order_by_asc(payout_item::Column::Id)
        .all(db)
        .await
}

pub(super) async fn claim_pids<C: ConnectionTrait>(
    db: &C,
    items: &[payout_item::Model],
) -> Result<HashMap<i64, String>, DbErr> {
    let mut out = HashMap::with_capacity(items.len());
    for chunk in items.chunks(CHUNK) {
        let rows: Vec<(i64, String)> = claim::Entity::find()
            .select_only()
            .columns([claim::Column::Id, claim::Column::Pid])
            .filter(claim::Column::Id.is_in(chunk.iter().map(|i| i.claim_id)))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// One item of a batch, as the association reviews it.
#[derive(Clone, Debug)]
pub struct PayoutLine {
    pub serial: String,
    pub claim_pid: String,
    pub payee_name: String,
    pub amount: Money,
    pub outcome: ItemOutcome,
    pub failure_reason: Option<String>,
}

/// The items of a batch, in the file's order.
pub async fn items<C: ConnectionTrait>(
    db: &C,
    batch: &PayoutBatch,
) -> Result<Vec<PayoutLine>, DbErr> {
    let items = items_of(db, batch.id).await?;
    let pids = claim_pids(db, &items).await?;
    items
        .into_iter()
        .map(|i| {
            Ok(PayoutLine {
                claim_pid: pids
                    .get(&i.claim_id)
                    .cloned()
                    .ok_or_else(|| DbErr::Custom(format!("payout item {}: claim missing", i.id)))?,
                outcome: ItemOutcome::parse(&i.outcome)
                    .ok_or_else(|| DbErr::Custom(format!("payout item {}: bad outcome", i.id)))?,
                serial: i.serial,
                payee_name: i.payee_name,
                amount: Money::from_fen(i.amount_fen),
                failure_reason: i.failure_reason,
            })
        })
        .collect()
}

/// The columns of the bank's payout result: `流水号,户名,金额,结果,失败原因`.
pub const RESULT_COLUMNS: &[ResultColumn] = &[
    ResultColumn::Serial,
    ResultColumn::Name,
    ResultColumn::Amount,
    ResultColumn::Result,
    ResultColumn::Reason,
];

/// Reads the bank's payout result file (UTF-8 or GBK CSV): an optional header
/// `流水号,户名,金额,结果,失败原因`, one line per item, and `合计,<count>`.
pub fn parse_result_file(bytes: &[u8]) -> Result<Vec<ResultLine>, Vec<LineProblem>> {
    bank_file::parse_result_file(bytes, RESULT_COLUMNS)
}

/// A result line that decides a pending item.
#[derive(Clone, Debug)]
struct Decision {
    line: u64,
    item: payout_item::Model,
    outcome: Outcome,
}

/// A name as written by two systems: the same once white space (full-width too) is removed.
fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .filter(|c| !c.is_whitespace())
        .eq(b.chars().filter(|c| !c.is_whitespace()))
}

/// Checks every result line against the batch's items: each serial belongs to the batch and
/// appears once, with the item's amount and payee name; a line for an item already decided
/// the same way is passed over (counted as unchanged), one contradicting it is a problem.
fn match_results(
    items: &[payout_item::Model],
    lines: Vec<ResultLine>,
) -> Result<(Vec<Decision>, usize), Vec<LineProblem>> {
    let by_serial: HashMap<&str, &payout_item::Model> =
        items.iter().map(|i| (i.serial.as_str(), i)).collect();
    let mut problems = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut decisions = Vec::new();
    let mut unchanged = 0;
    for l in lines {
        let at = |code, message: String| problem(Some(l.line), Some(&l.serial), code, message);
        let Some(item) = by_serial.get(l.serial.as_str()) else {
            problems.push(at(
                "unknown_serial",
                "流水号不属于本批次 / this serial number is not in the batch".into(),
            ));
            continue;
        };
        if let Some(earlier) = seen.insert(l.serial.clone(), l.line) {
            problems.push(at(
                "duplicate_serial",
                format!("流水号与第 {earlier} 行重复 / repeats line {earlier}"),
            ));
            continue;
        }
        let expected = Money::from_fen(item.amount_fen);
        if l.amount != Some(expected) {
            let got = l.amount.map(|a| a.to_string()).unwrap_or_default();
            problems.push(at(
                "amount_mismatch",
                format!(
                    "金额 {got} 与批次中的 {expected} 不符 / the amount is {expected} in the batch"
                ),
            ));
            continue;
        }
        if !l
            .name
            .as_deref()
            .is_some_and(|n| same_name(n, &item.payee_name))
        {
            problems.push(at(
                "name_mismatch",
                "户名与批次中的收款人不符 / the account name is not the batch's payee".into(),
            ));
            continue;
        }
        match (ItemOutcome::parse(&item.outcome), &l.outcome) {
            (Some(ItemOutcome::Pending), _) => decisions.push(Decision {
                line: l.line,
                item: (*item).clone(),
                outcome: l.outcome,
            }),
            (Some(ItemOutcome::Paid), Outcome::Succeeded)
            | (Some(ItemOutcome::Failed), Outcome::Failed { .. }) => unchanged += 1,
            (Some(ItemOutcome::Paid), Outcome::Failed { .. }) => problems.push(at(
                "outcome_contradicts",
                "这一笔已记为支付成功，结果文件却为失败 / already recorded as paid".into(),
            )),
            (Some(ItemOutcome::Failed), Outcome::Succeeded) => problems.push(at(
                "outcome_contradicts",
                "这一笔已记为支付失败，结果文件却为成功 / already recorded as failed".into(),
            )),
            (None, _) => {
                return Err(vec![problem(
                    Some(l.line),
                    Some(&l.serial),
                    "item_unreadable",
                    "这一笔的状态无法读取 / this item's state cannot be read",
                )]);
            }
        }
    }
    if problems.is_empty() {
        Ok((decisions, unchanged))
    } else {
        Err(problems)
    }
}

/// Why a result was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no such batch")]
    NotFound,
    #[error("the result file does not match the batch")]
    Invalid(Vec<LineProblem>),
    #[error("a claim of the batch changed during the import")]
    Concurrent,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// What importing a result did.
#[derive(Clone, Debug)]
pub struct ImportSummary {
    /// The batch afterwards.
    pub batch: PayoutBatch,
    /// Claims paid by this import (public ids).
    pub paid: Vec<String>,
    /// Claims whose payout failed in this import (public ids).
    pub failed: Vec<String>,
    /// Lines for items already decided the same way (a repeated import).
    pub unchanged: usize,
}

/// Imports the bank's result file for a batch inside `scope`, all or nothing, in one
/// transaction with its audit entry. Each line must name an item of the batch with its amount
/// and payee; lines for items already decided the same way are passed over. Each success
/// marks the claim `paid` and queues the member's `payout_sent` message; each failure marks it
/// `payout_failed` with the bank's reason (a later batch takes it again). When no item is left
/// pending, the batch becomes `result_imported`.
pub async fn import_result(
    db: &DatabaseConnection,
    scope: &Scope,
    batch_pid: &str,
    file: &[u8],
    actor_pid: &str,
    request_id: Option<String>,
) -> Result<ImportSummary, ImportError> {
    let lines = parse_result_file(file).map_err(ImportError::Invalid)?;
    let txn = crate::db::begin_write(db).await?;
    let summary = apply_result(&txn, scope, batch_pid, lines, actor_pid, Utc::now()).await?;
    audit::record(
        &txn,
        &Actor::Account {
            pid: actor_pid.to_owned(),
        },
        "payout.result_imported",
        ("payout_batch", Some(&summary.batch.pid)),
        json!({
            "paid": summary.paid,
            "failed": summary.failed,
            "unchanged": summary.unchanged,
            "pending": summary.batch.tally.pending,
        }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok(summary)
}

/// [`import_result`] of the file's lines inside the caller's transaction.
async fn apply_result<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    batch_pid: &str,
    lines: Vec<ResultLine>,
    actor_pid: &str,
    now: DateTime<Utc>,
) -> Result<ImportSummary, ImportError> {
    // A write first, the lock: two imports of one batch run one after the other, and the
    // second sees what the first decided (on SQLite it also takes the write lock early).
    let locked = payout_batch::Entity::update_many()
        .col_expr(
            payout_batch::Column::Status,
            Expr::col(payout_batch::Column::Status),
        )
        .filter(payout_batch::Column::Pid.eq(batch_pid))
        .filter(visible_in(scope))
        .exec(db)
        .await?;
    if locked.rows_affected != 1 {
        return Err(ImportError::NotFound);
    }
    let batch = payout_batch::Entity::find()
        .filter(payout_batch::Column::Pid.eq(batch_pid))
        .one(db)
        .await?
        .ok_or(ImportError::NotFound)?;
    let items = items_of(db, batch.id).await?;
    let (decisions, unchanged) = match_results(&items, lines).map_err(ImportError::Invalid)?;

    type ClaimRow = (i64, String, i32, String, i64);
    let mut claims: HashMap<i64, ClaimRow> = HashMap::with_capacity(decisions.len());
    for chunk in decisions.chunks(CHUNK) {
        let rows: Vec<ClaimRow> = claim::Entity::find()
            .select_only()
            .columns([
                claim::Column::Id,
                claim::Column::Pid,
                claim::Column::Version,
                claim::Column::Status,
                claim::Column::MemberId,
            ])
            .filter(claim::Column::Id.is_in(chunk.iter().map(|d| d.item.claim_id)))
            .into_tuple()
            .all(db)
            .await?;
        claims.extend(rows.into_iter().map(|r| (r.0, r)));
    }
    let problems: Vec<LineProblem> = decisions
        .iter()
        .filter(|d| {
            claims.get(&d.item.claim_id).map(|c| c.3.as_str()) != Some(ClaimStatus::Paying.as_str())
        })
        .map(|d| {
            problem(
                Some(d.line),
                Some(&d.item.serial),
                "claim_not_paying",
                "这一笔的申领已不在支付中 / this item's claim is no longer being paid",
            )
        })
        .collect();
    if !problems.is_empty() {
        return Err(ImportError::Invalid(problems));
    }

    let mut summary_paid = Vec::new();
    let mut summary_failed = Vec::new();
    let mut paid_items = Vec::new();
    let mut paid_claims = Vec::new();
    for d in &decisions {
        let (claim_id, claim_pid, version, _, member_id) = &claims[&d.item.claim_id];
        match &d.outcome {
            Outcome::Succeeded => {
                paid_items.push(d.item.id);
                summary_paid.push(claim_pid.clone());
                paid_claims.push(Moving {
                    id: *claim_id,
                    version: *version,
                    status: Some(ClaimStatus::Paying),
                    note: None,
                    notice: Some(Notice {
                        occasion: Occasion::PayoutSent,
                        member_id: *member_id,
                        key: format!("payout_sent:{claim_pid}"),
                        payload: json!({
                            "claim": claim_pid,
                            "amount": Money::from_fen(d.item.amount_fen),
                        }),
                    }),
                });
            }
            Outcome::Failed { reason } => {
                decide_item(db, &[d.item.id], ItemOutcome::Failed, Some(reason)).await?;
                // One statement per failure: each claim keeps its own reason.
                let moved = transition::apply_all(
                    db,
                    by_the_bank(
                        ClaimStatus::PayoutFailed,
                        "payout_failed",
                        actor_pid,
                        vec![(claim::Column::PayoutFailure, Expr::value(reason.clone()))],
                    ),
                    vec![Moving {
                        id: *claim_id,
                        version: *version,
                        status: Some(ClaimStatus::Paying),
                        note: Some(reason.clone()),
                        notice: None,
                    }],
                    now,
                )
                .await?;
                if moved.len() != 1 {
                    return Err(ImportError::Concurrent);
                }
                summary_failed.push(claim_pid.clone());
            }
        }
    }
    for chunk in paid_items.chunks(CHUNK) {
        decide_item(db, chunk, ItemOutcome::Paid, None).await?;
    }
    let paying = paid_claims.len();
    let moved = transition::apply_all(
        db,
        by_the_bank(
            ClaimStatus::Paid,
            "paid",
            actor_pid,
            vec![
                (claim::Column::PaidAt, Expr::value(now)),
                (claim::Column::PayoutFailure, Expr::value(None::<String>)),
            ],
        ),
        paid_claims,
        now,
    )
    .await?;
    if moved.len() != paying {
        return Err(ImportError::Concurrent);
    }

    let tally = tallies(db, &[batch.id])
        .await?
        .remove(&batch.id)
        .unwrap_or_default();
    let batch = if tally.pending == 0 && batch.status == PayoutBatchStatus::Exported.as_str() {
        payout_batch::ActiveModel {
            id: Set(batch.id),
            status: Set(PayoutBatchStatus::ResultImported.as_str().to_owned()),
            result_imported_at: Set(Some(now)),
            ..Default::default()
        }
        .update(db)
        .await?
    } else {
        batch
    };
    Ok(ImportSummary {
        batch: to_batch(batch, tally)?,
        paid: summary_paid,
        failed: summary_failed,
        unchanged,
    })
}

/// The bank's move of claims out of `paying` (recorded by whoever imported its result).
fn by_the_bank<'a>(
    to: ClaimStatus,
    action: &'static str,
    actor_pid: &'a str,
    set: Vec<Change>,
) -> Bulk<'a> {
    Bulk {
        from: &[ClaimStatus::Paying],
        to,
        action,
        level: Level::Bank,
        actor_pid,
        set,
    }
}

/// Records the bank's outcome on pending items; every one of them must still be pending.
async fn decide_item<C: ConnectionTrait>(
    db: &C,
    item_ids: &[i64],
    outcome: ItemOutcome,
    reason: Option<&str>,
) -> Result<(), ImportError> {
    let done = payout_item::Entity::update_many()
        .col_expr(payout_item::Column::Outcome, Expr::value(outcome.as_str()))
        .col_expr(
            payout_item::Column::FailureReason,
            Expr::value(reason.map(str::to_owned)),
        )
        .filter(payout_item::Column::Id.is_in(item_ids.iter().copied()))
        .filter(payout_item::Column::Outcome.eq(ItemOutcome::Pending.as_str()))
        .exec(db)
        .await?;
    if done.rows_affected != item_ids.len() as u64 {
        return Err(ImportError::Concurrent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(
        id: i64,
        serial: &str,
        fen: i64,
        name: &str,
        outcome: ItemOutcome,
    ) -> payout_item::Model {
        payout_item::Model {
            id,
            batch_id: 1,
            claim_id: id,
            serial: serial.into(),
            amount_fen: fen,
            payee_name: name.into(),
            bank_card_cipher: "sealed".into(),
            outcome: outcome.as_str().into(),
            failure_reason: None,
        }
    }

    fn line(n: u64, serial: &str, name: &str, fen: i64, outcome: Outcome) -> ResultLine {
        ResultLine {
            line: n,
            serial: serial.into(),
            name: Some(name.into()),
            amount: Some(Money::from_fen(fen)),
            outcome,
        }
    }

    fn failed(reason: &str) -> Outcome {
        Outcome::Failed {
            reason: reason.into(),
        }
    }

    fn codes(problems: &[LineProblem]) -> Vec<&'static str> {
        problems.iter().map(|p| p.code).collect()
    }

    #[test]
    fn pending_items_are_decided_and_decided_ones_are_passed_over() {
        let items = [
            item(1, "S1", 10_000, "张 三", ItemOutcome::Pending),
            item(2, "S2", 20_000, "李四", ItemOutcome::Paid),
            item(3, "S3", 30_000, "王五", ItemOutcome::Failed),
        ];
        let (decisions, unchanged) = match_results(
            &items,
            vec![
                line(1, "S1", "张三", 10_000, failed("余额不足")),
                line(2, "S2", "李四", 20_000, Outcome::Succeeded),
                line(3, "S3", "王　五", 30_000, failed("另一个原因")),
            ],
        )
        .unwrap();
        assert_eq!(unchanged, 2);
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].item.id, 1);
        assert_eq!(decisions[0].outcome, failed("余额不足"));
    }

    #[test]
    fn every_mismatch_is_reported_with_its_line() {
        let items = [
            item(1, "S1", 10_000, "张三", ItemOutcome::Pending),
            item(2, "S2", 20_000, "李四", ItemOutcome::Paid),
        ];
        let problems = match_results(
            &items,
            vec![
                line(1, "S1", "张三", 10_001, Outcome::Succeeded),
                line(2, "S1", "张三", 10_000, Outcome::Succeeded),
                line(3, "S9", "张三", 10_000, Outcome::Succeeded),
                line(4, "S2", "李斯", 20_000, Outcome::Succeeded),
            ],
        )
        .unwrap_err();
        assert_eq!(
            codes(&problems),
            [
                "amount_mismatch",
                "duplicate_serial",
                "unknown_serial",
                "name_mismatch"
            ]
        );
        assert_eq!(problems[3].line, Some(4));
        let problems =
            match_results(&items, vec![line(1, "S2", "李四", 20_000, failed("退票"))]).unwrap_err();
        assert_eq!(codes(&problems), ["outcome_contradicts"]);
    }

    #[test]
    fn serials_carry_the_beijing_date() {
        let late_evening_utc = "2026-11-24T17:00:00Z".parse().unwrap();
        assert_eq!(serial_prefix(late_evening_utc), "ZF20261125");
    }
}
