//! The one way a claim changes: a version-checked update of the claim row, the step it adds
//! to the member's timeline, the member's message (outbox) and the audit entry, all written in
//! the caller's transaction, so an action happens whole or not at all.
//!
//! - [`apply`]: one claim, one actor (submit, resubmit, withdraw, edit, return, reject,
//!   approval at each stage, the association's approval and adjustment);
//! - [`filed`]: what a new draft leaves behind (its row is the store's insert, not an update);
//! - [`apply_all`]: many claims at once (into a payout batch, the bank's payment or failure),
//!   a few hundred per statement; the audit entry is the batch's, recorded by its caller.
//!
//! The update (or another write before it, like the approval's period lock) is the first
//! statement of the caller's transaction: on PostgreSQL it row-locks the claim, on SQLite it
//! takes the write lock before any read (a deferred SQLite transaction that reads first cannot
//! upgrade under concurrency). A claim that is no longer at the version read, or
//! in a status the action starts from, is not changed: for one claim that is the 409 the
//! caller answers ([`ClaimError::VersionConflict`] or [`ClaimError::WrongStatus`]); among many,
//! that claim is left out.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, TransactionTrait};
use serde_json::Value;

use entity::claim;

use super::timeline::{self, Step};
use super::{Caller, Claim, ClaimError, ClaimStatus, Level};
use crate::domain::Role;
use crate::service::audit::{self, Actor};
use crate::service::outbox::{self, Occasion};

/// The level a caller acts at, as the member's timeline shows it.
pub fn level_of(role: Role) -> Level {
    match role {
        Role::Member => Level::Member,
        Role::UnionReviewer => Level::Union,
        Role::ServicePointReviewer => Level::ServicePoint,
        Role::AssociationReviewer | Role::Admin => Level::Association,
    }
}

/// A column of the claim row and its new value.
pub(crate) type Change = (claim::Column, SimpleExpr);

/// Where an action takes a claim, and what the member's timeline calls it.
#[derive(Clone, Debug)]
pub(crate) struct Move {
    pub to: ClaimStatus,
    /// `submitted`, `resubmitted`, `approved`, `returned`, `rejected`, `withdrawn`, `batched`,
    /// `paid`, `payout_failed`, `payee_changed` (the status stays).
    pub action: &'static str,
    /// What the member reads beside the step (a return message, a rejection reason).
    pub note: Option<String>,
}

/// A message to the member, queued in the outbox with the change.
#[derive(Clone, Debug)]
pub(crate) struct Notice {
    pub occasion: Occasion,
    pub member_id: i64,
    /// The outbox's de-duplication key: the same key is queued once.
    pub key: String,
    pub payload: Value,
}

/// One action on one claim, for [`apply`].
pub(crate) struct Transition<'a> {
    /// The claim as the caller read it (its status is the timeline step's `from`).
    pub claim: &'a Claim,
    /// The version the caller acts on.
    pub version: i32,
    /// The statuses the action starts from.
    pub from: &'a [ClaimStatus],
    /// The new status and its timeline step; `None` keeps the status and adds no step (an edit).
    pub to: Option<Move>,
    /// Columns changed besides status, version and update time.
    pub set: Vec<Change>,
    pub notice: Option<Notice>,
    /// The audit entry: its action (`claim.submit`, …) and details.
    pub audit: (&'static str, Value),
}

/// Applies one action of `caller` in the caller's transaction `db`: the version-checked
/// update, then the timeline step, the member's message and the audit entry. Refused with the
/// reason (version moved, wrong status) when the claim has changed since it was read; the
/// caller drops its transaction then, which rolls it back.
pub(crate) async fn apply<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    t: Transition<'_>,
    now: DateTime<Utc>,
    request_id: Option<String>,
) -> Result<(), ClaimError> {
    let c = t.claim;
    let moved = update(
        db,
        &[(c.id, t.version)],
        t.from,
        t.to.as_ref().map(|m| m.to),
        &t.set,
        now,
    )
    .await?;
    if moved.is_empty() {
        return Err(refusal(db, c.id, t.version).await);
    }
    if let Some(m) = t.to {
        timeline::record(
            db,
            c.id,
            Step {
                action: m.action,
                from: Some(c.status),
                to: m.to,
                level: level_of(caller.role),
                note: m.note,
                actor_pid: Some(caller.pid.clone()),
                at: now,
            },
        )
        .await?;
    }
    if let Some(n) = t.notice {
        notify(db, n, now).await?;
    }
    record_audit(db, caller, &c.pid, t.audit, request_id).await?;
    Ok(())
}

/// A payee card set by someone other than the member: its own step (the cards masked in the
/// note) and the member's message.
#[derive(Clone, Debug)]
pub(crate) struct PayeeChange {
    pub note: String,
    pub notice: Notice,
}

/// What filing a new draft leaves behind: the `filed` step and the `claim.create` entry, and
/// the `payee_changed` step and message when the filer set the card. The draft's row is
/// written by [`super::store::insert_draft`] in the same transaction.
pub(crate) async fn filed<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    draft: &Claim,
    details: Value,
    payee: Option<PayeeChange>,
    now: DateTime<Utc>,
    request_id: Option<String>,
) -> Result<(), ClaimError> {
    timeline::record(
        db,
        draft.id,
        Step {
            action: "filed",
            from: None,
            to: ClaimStatus::Draft,
            level: level_of(caller.role),
            note: None,
            actor_pid: Some(caller.pid.clone()),
            at: now,
        },
    )
    .await?;
    if let Some(p) = payee {
        timeline::record(
            db,
            draft.id,
            Step {
                action: "payee_changed",
                from: Some(ClaimStatus::Draft),
                to: ClaimStatus::Draft,
                level: level_of(caller.role),
                note: Some(p.note),
                actor_pid: Some(caller.pid.clone()),
                at: now,
            },
        )
        .await?;
        notify(db, p.notice, now).await?;
    }
    record_audit(
        db,
        caller,
        &draft.pid,
        ("claim.create", details),
        request_id,
    )
    .await?;
    Ok(())
}

async fn record_audit<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    caller: &Caller,
    claim_pid: &str,
    (action, details): (&'static str, Value),
    request_id: Option<String>,
) -> Result<(), DbErr> {
    audit::record(
        db,
        &Actor::Account {
            pid: caller.pid.clone(),
        },
        action,
        ("claim", Some(claim_pid)),
        details,
        request_id,
    )
    .await
}

async fn notify<C: ConnectionTrait>(db: &C, n: Notice, now: DateTime<Utc>) -> Result<(), DbErr> {
    outbox::enqueue(db, n.occasion, n.member_id, &n.key, n.payload, now).await?;
    Ok(())
}

/// One claim of [`apply_all`].
#[derive(Clone, Debug)]
pub(crate) struct Moving {
    pub id: i64,
    /// The version read.
    pub version: i32,
    /// The status read (the timeline step's `from`).
    pub status: Option<ClaimStatus>,
    pub note: Option<String>,
    pub notice: Option<Notice>,
}

/// One action on many claims by one actor, for [`apply_all`].
pub(crate) struct Bulk<'a> {
    pub from: &'a [ClaimStatus],
    pub to: ClaimStatus,
    /// What the member's timeline calls it.
    pub action: &'static str,
    /// Who the timeline says acted: the association batching, the bank paying.
    pub level: Level,
    /// The account that acted (kept for the association; never shown to the member).
    pub actor_pid: &'a str,
    /// Columns changed besides status, version and update time, the same for every claim.
    pub set: Vec<Change>,
}

/// Applies one action to many claims in the caller's transaction: each claim still at its
/// version and in a `from` status is moved, gets its timeline step and its message; the others
/// keep their new state and are left out. Returns the ids moved.
pub(crate) async fn apply_all<C: ConnectionTrait>(
    db: &C,
    bulk: Bulk<'_>,
    claims: Vec<Moving>,
    now: DateTime<Utc>,
) -> Result<HashSet<i64>, DbErr> {
    let versions: Vec<(i64, i32)> = claims.iter().map(|c| (c.id, c.version)).collect();
    let moved: HashSet<i64> = update(db, &versions, bulk.from, Some(bulk.to), &bulk.set, now)
        .await?
        .into_iter()
        .collect();
    let mut steps = Vec::with_capacity(moved.len());
    let mut notices = Vec::new();
    for c in claims.into_iter().filter(|c| moved.contains(&c.id)) {
        steps.push((
            c.id,
            Step {
                action: bulk.action,
                from: c.status,
                to: bulk.to,
                level: bulk.level,
                note: c.note,
                actor_pid: Some(bulk.actor_pid.to_owned()),
                at: now,
            },
        ));
        notices.extend(c.notice);
    }
    timeline::record_all(db, steps).await?;
    for n in notices {
        notify(db, n, now).await?;
    }
    Ok(moved)
}

/// Claims per statement when updating many at once (two parameters each).
const CHUNK: usize = 400;

/// The version-checked update: each claim still at the version read and in one of the `from`
/// statuses gets `to` (when given), `set`, a version one higher and `now` as its update time.
/// Returns the ids it changed.
async fn update<C: ConnectionTrait>(
    db: &C,
    claims: &[(i64, i32)],
    from: &[ClaimStatus],
    to: Option<ClaimStatus>,
    set: &[Change],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, DbErr> {
    // Counts and figures kept by this replica are not served past this change.
    super::tallies::changed();
    let mut moved = Vec::with_capacity(claims.len());
    for chunk in claims.chunks(CHUNK) {
        let mut unchanged = Condition::any();
        for (id, version) in chunk {
            unchanged = unchanged.add(
                Condition::all()
                    .add(claim::Column::Id.eq(*id))
                    .add(claim::Column::Version.eq(*version)),
            );
        }
        let mut stmt = Query::update();
        stmt.table(claim::Entity)
            .value(
                claim::Column::Version,
                Expr::col(claim::Column::Version).add(1),
            )
            .value(claim::Column::UpdatedAt, now)
            .cond_where(
                Condition::all()
                    .add(unchanged)
                    .add(claim::Column::Status.is_in(from.iter().map(|s| s.as_str()))),
            )
            .returning_col(claim::Column::Id);
        if let Some(to) = to {
            stmt.value(claim::Column::Status, to.as_str());
        }
        for (column, value) in set {
            stmt.value(*column, value.clone());
        }
        // RETURNING names exactly the rows this statement changed (SQLite ≥ 3.35, PostgreSQL).
        for row in db.query_all(&stmt).await? {
            moved.push(row.try_get::<i64>("", "id")?);
        }
    }
    Ok(moved)
}

/// Why a version-checked update found nothing: the version moved, or the status is wrong.
pub(crate) async fn refusal<C: ConnectionTrait>(db: &C, claim_id: i64, version: i32) -> ClaimError {
    match claim::Entity::find_by_id(claim_id).one(db).await {
        Ok(Some(row)) if row.version != version => ClaimError::VersionConflict {
            current: row.version,
        },
        Ok(Some(row)) => match ClaimStatus::parse(&row.status) {
            Some(status) => ClaimError::WrongStatus { status },
            None => ClaimError::NotFound,
        },
        Ok(None) => ClaimError::NotFound,
        Err(e) => ClaimError::Db(e),
    }
}
