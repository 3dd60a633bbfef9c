//! A period's approved claims as the money rule sees them: in filing order (first submission; a
//! claim returned and resubmitted keeps its place), with what each was granted, and the history
//! of their judgements — the one each was approved on, and every re-statement when an
//! earlier-filed claim of the period was approved after it ([`crate::engine::period`]).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use entity::{claim, claim_judgement};

use super::timeline::{self, Step};
use super::transition::level_of;
use super::{Caller, ClaimError, ClaimStatus};
use crate::domain::Money;
use crate::engine::{Event, Judgement, MemberPeriod};

/// A coverage period as the engine reads it (a first period counts as 1).
pub fn member_period(ms: &entity::membership::Model) -> MemberPeriod {
    MemberPeriod {
        coverage_start: ms.coverage_start,
        coverage_end: ms.coverage_end,
        consecutive_periods: u32::try_from(std::cmp::Ord::max(ms.consecutive_periods, 1))
            .unwrap_or(1),
        continuous_renewal: ms.continuous_renewal,
    }
}

/// Locks the coverage periods `ids` for the rest of the transaction `db`, as an approval's
/// ledger write locks its one period: offers made in bulk and claims filed meanwhile are judged
/// one after another. On PostgreSQL the rows are locked in id order (two importers never wait
/// on each other crosswise) with the lock an `UPDATE` takes; a SQLite write transaction
/// ([`crate::db::begin_write`]) holds the whole database already.
pub async fn lock_periods<C: ConnectionTrait>(db: &C, ids: &[i64]) -> Result<(), sea_orm::DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres || ids.is_empty() {
        return Ok(());
    }
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let sql = format!(
        "SELECT id FROM membership WHERE {} ORDER BY id FOR NO KEY UPDATE",
        crate::service::bulk::in_list(
            sea_orm::DbBackend::Postgres,
            "id",
            crate::service::bulk::Kind::Int
        )
    );
    db.query_all_raw(crate::service::raw_statement(
        sea_orm::DbBackend::Postgres,
        &sql,
        vec![crate::service::bulk::list(&sorted)],
    ))
    .await?;
    Ok(())
}

/// Statuses of claims whose judgement counts in the period's history.
pub const JUDGED: [ClaimStatus; 5] = [
    ClaimStatus::Approved,
    ClaimStatus::Paying,
    ClaimStatus::Paid,
    ClaimStatus::PayoutFailed,
    ClaimStatus::Closed,
];

/// An approved claim of the period.
#[derive(Clone, Debug)]
pub struct PeriodClaim {
    pub id: i64,
    pub pid: String,
    pub status: ClaimStatus,
    /// Its place in the period: first submission, then id.
    pub filed: (DateTime<Utc>, i64),
    pub event: Event,
    /// The judgement it shows now (its approval's, or the latest re-statement).
    pub judgement: Judgement,
    /// What the period rule granted it at its approval (before any adjustment).
    pub granted_fen: i64,
    /// The scheme version that judges it (in force at its first submission).
    pub scheme_version: i32,
}

/// The period's approved claims other than `except`, in filing order.
pub async fn approved_claims<C: ConnectionTrait>(
    db: &C,
    membership_id: i64,
    except: i64,
) -> Result<Vec<PeriodClaim>, ClaimError> {
    let rows = claim::Entity::find()
        .filter(claim::Column::MembershipId.eq(membership_id))
        .filter(claim::Column::Id.ne(except))
        .filter(claim::Column::Status.is_in(JUDGED.iter().map(|s| s.as_str())))
        .filter(claim::Column::PeriodSeq.is_not_null())
        .all(db)
        .await?;
    let mut out = rows
        .into_iter()
        .map(|row| {
            let pid = row.pid.clone();
            let broken = |what: &str| anyhow::anyhow!("approved claim {pid}: {what}");
            let status = ClaimStatus::parse(&row.status).ok_or_else(|| broken("status"))?;
            let event: Event = serde_json::from_str(&row.facts).map_err(|_| broken("facts"))?;
            let judgement: Judgement = row
                .judgement
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .ok_or_else(|| broken("judgement"))?;
            let filed = row
                .first_submitted_at
                .ok_or_else(|| broken("never submitted"))?;
            Ok(PeriodClaim {
                id: row.id,
                pid: row.pid,
                status,
                filed: (filed, row.id),
                event,
                judgement,
                granted_fen: row.payable_fen.ok_or_else(|| broken("no grant"))?,
                scheme_version: row
                    .scheme_version
                    .ok_or_else(|| broken("no scheme version"))?,
            })
        })
        .collect::<Result<Vec<_>, ClaimError>>()?;
    out.sort_by_key(|c| c.filed);
    Ok(out)
}

/// Why a judgement was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The judgement the claim was approved on.
    Approved,
    /// The period was judged again because an earlier-filed claim was approved after it.
    Restated,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Approved => "approved",
            Cause::Restated => "restated",
        }
    }
}

/// Keeps a judgement of a claim in its history.
#[allow(clippy::too_many_arguments)]
pub async fn keep<C: ConnectionTrait>(
    db: &C,
    claim_id: i64,
    membership_id: i64,
    cause: Cause,
    caused_by: Option<i64>,
    scheme_version: i32,
    judgement: &Judgement,
    at: DateTime<Utc>,
) -> Result<(), ClaimError> {
    claim_judgement::ActiveModel {
        claim_id: Set(claim_id),
        membership_id: Set(membership_id),
        cause: Set(cause.as_str().to_owned()),
        caused_by_claim_id: Set(caused_by),
        scheme_version: Set(scheme_version),
        judgement: Set(serde_json::to_string(judgement).map_err(anyhow::Error::new)?),
        payable_fen: Set(fen(judgement)?),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Re-states an approved claim's judgement after `cause` (an earlier-filed claim) was approved:
/// the claim shows the new judgement, the old one stays in its history, and its timeline says
/// why. What it was granted does not change: the difference is the approved claim's grant.
#[allow(clippy::too_many_arguments)]
pub async fn restate<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    claim: &PeriodClaim,
    judgement: &Judgement,
    cause: (i64, &str),
    membership_id: i64,
    scheme_version: i32,
    at: DateTime<Utc>,
) -> Result<(), ClaimError> {
    claim::Entity::update_many()
        .col_expr(
            claim::Column::Judgement,
            Expr::value(serde_json::to_string(judgement).map_err(anyhow::Error::new)?),
        )
        .filter(claim::Column::Id.eq(claim.id))
        .exec(db)
        .await?;
    keep(
        db,
        claim.id,
        membership_id,
        Cause::Restated,
        Some(cause.0),
        scheme_version,
        judgement,
        at,
    )
    .await?;
    let before = Money::from_fen(fen(&claim.judgement)?);
    let after = Money::from_fen(fen(judgement)?);
    timeline::record(
        db,
        claim.id,
        Step {
            action: "restated",
            from: Some(claim.status),
            to: claim.status,
            level: level_of(caller.role),
            note: Some(format!(
                "本期较早提交的申领 {} 获批，按提交顺序重新核算：本申领 {before} 元 → {after} 元，已核定金额不变 / the period was judged again in filing order",
                cause.1
            )),
            actor_pid: Some(caller.pid.clone()),
            at,
        },
    )
    .await?;
    Ok(())
}

/// A judgement's payable amount in fen (its items are rounded to 0.01 already).
pub fn fen(judgement: &Judgement) -> Result<i64, ClaimError> {
    let amount = Money::from_decimal(judgement.payable()).round_half_up();
    amount
        .to_fen()
        .map_err(|e| ClaimError::Internal(anyhow::anyhow!("amount {amount}: {e:?}")))
}

/// One judgement of a claim's history, as the detail shows it.
#[derive(Clone, Debug)]
pub struct KeptJudgement {
    /// `approved` or `restated`.
    pub cause: String,
    /// The earlier-filed claim whose approval re-stated this one (its public id).
    pub caused_by: Option<String>,
    pub scheme_version: i32,
    pub judgement: Judgement,
    pub payable_fen: i64,
    pub at: DateTime<Utc>,
}

/// A claim's judgements, oldest first.
pub async fn history<C: ConnectionTrait>(
    db: &C,
    claim_id: i64,
) -> Result<Vec<KeptJudgement>, ClaimError> {
    use sea_orm::QueryOrder;
    let rows = claim_judgement::Entity::find()
        .filter(claim_judgement::Column::ClaimId.eq(claim_id))
        .order_by_asc(claim_judgement::Column::Id)
        .all(db)
        .await?;
    let causes: Vec<i64> = rows.iter().filter_map(|r| r.caused_by_claim_id).collect();
    let pids: std::collections::HashMap<i64, String> = if causes.is_empty() {
        Default::default()
    } else {
        claim::Entity::find()
            .filter(claim::Column::Id.is_in(causes))
            .all(db)
            .await?
            .into_iter()
            .map(|c| (c.id, c.pid))
            .collect()
    };
    rows.into_iter()
        .map(|r| {
            let judgement: Judgement = serde_json::from_str(&r.judgement)
                .map_err(|e| anyhow::anyhow!("judgement {} of claim {claim_id}: {e}", r.id))?;
            Ok(KeptJudgement {
                cause: r.cause,
                caused_by: r.caused_by_claim_id.and_then(|id| pids.get(&id).cloned()),
                scheme_version: r.scheme_version,
                judgement,
                payable_fen: r.payable_fen,
                at: r.created_at,
            })
        })
        .collect()
}

/// The money of a claim's period: what its approved claims were granted and what it still owes
/// back (the open offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeriodMoney {
    pub granted_fen: i64,
    pub open_offset_fen: i64,
}

/// The period money of membership `membership_id`.
pub async fn money<C: ConnectionTrait>(
    db: &C,
    membership_id: i64,
) -> Result<PeriodMoney, ClaimError> {
    use sea_orm::QuerySelect;
    // What the period's judged claims were granted, summed in the database (the claims'
    // facts and judgements are not needed for it).
    let granted: Option<i64> = claim::Entity::find()
        .select_only()
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(payable_fen), 0) AS BIGINT)"),
            "granted",
        )
        .filter(claim::Column::MembershipId.eq(membership_id))
        .filter(claim::Column::Status.is_in(JUDGED.iter().map(|s| s.as_str())))
        .filter(claim::Column::PeriodSeq.is_not_null())
        .into_tuple()
        .one(db)
        .await?;
    let offset = entity::membership::Entity::find_by_id(membership_id)
        .one(db)
        .await?
        .map(|m| m.offset_fen)
        .unwrap_or(0);
    Ok(PeriodMoney {
        granted_fen: granted.unwrap_or(0),
        open_offset_fen: offset,
    })
}
