//! The outbox: every change that should reach a person writes its message here, in the same
//! transaction as the change, so neither can be lost without the other. The reminders
//! dispatcher sends from it; the dedupe key makes each (person, occasion) happen once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
use serde_json::Value;

use entity::outbox;

/// Why a person is told something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Occasion {
    /// 入会: the enrolment is confirmed and coverage fixed.
    EnrolmentConfirmed,
    /// 免费延期: coverage was extended for free.
    CoverageExtended,
    /// The bank could not deduct the fee.
    DeductionFailed,
}

impl Occasion {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Occasion::EnrolmentConfirmed => "enrolment_confirmed",
            Occasion::CoverageExtended => "coverage_extended",
            Occasion::DeductionFailed => "deduction_failed",
        }
    }
}

/// Queues a message unless one with the same dedupe key exists (then it is a no-op, so a
/// retried change never queues twice). Returns whether a row was written.
pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    occasion: Occasion,
    member_id: i64,
    dedupe_key: &str,
    payload: Value,
    due_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = outbox::ActiveModel {
        occasion: Set(occasion.as_str().to_owned()),
        member_id: Set(member_id),
        dedupe_key: Set(dedupe_key.to_owned()),
        payload: Set(payload.to_string()),
        created_at: Set(Utc::now()),
        due_at: Set(due_at),
        dispatched_at: Set(None),
        attempts: Set(0),
        ..Default::default()
    };
    let result = outbox::Entity::insert(row)
        .on_conflict(
            OnConflict::column(outbox::Column::DedupeKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(result == 1)
}
