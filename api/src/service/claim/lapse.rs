//! The end of an unconfirmed offer (免申即享): an offer nobody confirmed by the scheme's claim
//! deadline for its stay — the deadline a claim filed for the same stay would have
//! ([`crate::engine::claim_rules::filing_deadline`], fixed in `claim.lapses_on` when the offer
//! is made) — lapses, and the member is reminded [`REMINDER_DAYS`] days before.
//!
//! Both run in the reminder scan ([`crate::service::reminders::schedule::scan`]), each one
//! set-based statement whatever the number of offers: the lapse an `UPDATE … RETURNING` (whose
//! rows get their timeline step `lapsed`), the reminder an `INSERT INTO outbox … SELECT … ON
//! CONFLICT (dedupe_key) DO NOTHING` keyed `offer_lapsing:<claim pid>`, so it is queued once
//! per offer however many scans see it. The lapse runs first: an offer past its deadline is
//! never reminded. Days are compared, not computed, in SQL (the same on both backends).
//!
//! A lapsed offer no longer stands for its stay. The member cannot apply for it instead: the
//! offer lapsed because the claim window closed, and a claim filed after it is refused
//! `claim_window_closed` like any late claim — the offer simply ends. Confirming it answers
//! 409 `offer_lapsed` (also on the deadline's next day before the scan has run).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbErr, TransactionTrait, Value};
use serde_json::json;

use super::timeline::{self, Step};
use super::{ClaimStatus, Level};
use crate::service::audit::{self, Actor};
use crate::service::outbox::Occasion;
use crate::service::raw_statement;

/// The member is reminded this many days before an offer lapses (the deadline day counts).
pub const REMINDER_DAYS: i64 = 7;

/// Lapses every offer whose deadline is before `today`: status `lapsed`, a version higher, a
/// timeline step (the association's level: the member sees when it ended and why), one audit
/// entry for the scan. Returns how many lapsed.
pub async fn lapse_offers<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    // RETURNING names exactly the offers this statement lapsed: one confirmed meanwhile (a
    // version higher, no longer `offered`) is not among them.
    let rows = db
        .query_all_raw(raw_statement(
            backend,
            "UPDATE claim SET status = ?, version = version + 1, updated_at = ? \
             WHERE status = ? AND lapses_on < ? RETURNING id, lapses_on",
            vec![
                ClaimStatus::Lapsed.as_str().into(),
                now.into(),
                ClaimStatus::Offered.as_str().into(),
                today.into(),
            ],
        ))
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    super::tallies::changed();
    let mut steps = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get("", "id")?;
        let deadline: NaiveDate = row.try_get("", "lapses_on")?;
        steps.push((
            id,
            Step {
                action: "lapsed",
                from: Some(ClaimStatus::Offered),
                to: ClaimStatus::Lapsed,
                level: Level::Association,
                note: Some(format!(
                    "未在{}前确认收款卡，补助已失效",
                    deadline.format("%Y年%m月%d日")
                )),
                actor_pid: None,
                at: now,
            },
        ));
    }
    let lapsed = steps.len() as u64;
    timeline::record_all(db, steps).await?;
    audit::record(
        db,
        &Actor::System,
        "claim.lapse",
        ("claim", None),
        json!({ "lapsed": lapsed, "deadline_before": today }),
        None,
    )
    .await?;
    Ok(lapsed)
}

/// Queues `offer_lapsing` for every offer lapsing within [`REMINDER_DAYS`] of `today` (its
/// deadline in `today ..= today + 7`) that has not had it, due at `due_at`. The payload holds
/// the claim, the amount offered and the deadline:
/// `{"claim":"<pid>","amount":"1234.50","deadline":"2026年03月31日"}`. Returns how many were
/// queued.
pub async fn remind_lapsing<C: ConnectionTrait>(
    db: &C,
    today: NaiveDate,
    now: DateTime<Utc>,
    due_at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let last = today + Duration::days(REMINDER_DAYS);
    // Fen as yuan with two decimals, and the day as 2026年03月31日, in SQL both backends share
    // (integer division and remainder, SUBSTR from the left, `||`).
    let sql = "INSERT INTO outbox (occasion, member_id, dedupe_key, payload, created_at, due_at, attempts, status) \
         SELECT ?, c.member_id, ? || c.pid, \
         '{\"claim\":\"' || c.pid || '\",\"amount\":\"' || CAST(c.payable_fen / 100 AS TEXT) || '.' \
         || CASE WHEN c.payable_fen % 100 < 10 THEN '0' ELSE '' END || CAST(c.payable_fen % 100 AS TEXT) \
         || '\",\"deadline\":\"' || SUBSTR(CAST(c.lapses_on AS TEXT), 1, 4) || '年' \
         || SUBSTR(CAST(c.lapses_on AS TEXT), 6, 2) || '月' || SUBSTR(CAST(c.lapses_on AS TEXT), 9, 2) \
         || '日\"}', ?, ?, 0, 'pending' \
         FROM claim c WHERE c.status = ? AND c.lapses_on >= ? AND c.lapses_on <= ? \
         AND c.payable_fen IS NOT NULL \
         ON CONFLICT (dedupe_key) DO NOTHING";
    let values: Vec<Value> = vec![
        Occasion::OfferLapsing.as_str().into(),
        format!("{}:", Occasion::OfferLapsing.as_str()).into(),
        now.into(),
        due_at.into(),
        ClaimStatus::Offered.as_str().into(),
        today.into(),
        last.into(),
    ];
    Ok(db
        .execute_raw(raw_statement(backend, sql, values))
        .await?
        .rows_affected())
}
