//! A claim's timeline: one row per step, written in the same transaction as the step.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

use entity::claim_event;

use super::{ClaimStatus, Level};

/// One step to record.
#[derive(Clone, Debug)]
pub struct Step<'a> {
    /// What happened: `filed`, `submitted`, `resubmitted`, `approved`, `returned`, `rejected`,
    /// `withdrawn`, `adjusted`, `batched`, `paid`, `payout_failed`.
    pub action: &'a str,
    pub from: Option<ClaimStatus>,
    pub to: ClaimStatus,
    pub level: Level,
    /// A note the member may read (a return message, a rejection reason).
    pub note: Option<String>,
    /// Who acted (kept for the association; never shown to the member).
    pub actor_pid: Option<String>,
    pub at: DateTime<Utc>,
}

fn row(claim_id: i64, step: Step<'_>) -> claim_event::ActiveModel {
    claim_event::ActiveModel {
        claim_id: Set(claim_id),
        occurred_at: Set(step.at),
        action: Set(step.action.to_owned()),
        from_status: Set(step.from.map(|s| s.as_str().to_owned())),
        to_status: Set(step.to.as_str().to_owned()),
        level: Set(step.level.as_str().to_owned()),
        note: Set(step.note),
        actor_pid: Set(step.actor_pid),
        ..Default::default()
    }
}

/// Appends a step to a claim's timeline.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    claim_id: i64,
    step: Step<'_>,
) -> Result<(), DbErr> {
    row(claim_id, step).insert(db).await?;
    Ok(())
}

/// Appends one step to each of many claims' timelines in a few statements (a payout batch
/// moves thousands of claims at once, an import makes thousands of offers).
pub async fn record_all<'a, C: ConnectionTrait>(
    db: &C,
    steps: impl IntoIterator<Item = (i64, Step<'a>)>,
) -> Result<(), DbErr> {
    use crate::service::bulk::{self, Kind};
    let rows: Vec<serde_json::Value> = steps
        .into_iter()
        .map(|(claim_id, step)| {
            serde_json::json!({
                "claim_id": claim_id,
                "occurred_at": bulk::timestamp(step.at),
                "action": step.action,
                "from_status": step.from.map(|s| s.as_str()),
                "to_status": step.to.as_str(),
                "level": step.level.as_str(),
                "note": step.note,
                "actor_pid": step.actor_pid,
            })
        })
        .collect();
    bulk::insert(
        db,
        "claim_event",
        &[
            ("claim_id", Kind::Int),
            ("occurred_at", Kind::Timestamp),
            ("action", Kind::Text),
            ("from_status", Kind::Text),
            ("to_status", Kind::Text),
            ("level", Kind::Text),
            ("note", Kind::Text),
            ("actor_pid", Kind::Text),
        ],
        &rows,
        "",
    )
    .await?;
    Ok(())
}

/// A recorded step, as the member sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedStep {
    pub action: String,
    pub status: ClaimStatus,
    pub level: Level,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// The whole timeline of a claim, oldest first.
pub async fn of_claim<C: ConnectionTrait>(
    db: &C,
    claim_id: i64,
) -> Result<Vec<RecordedStep>, DbErr> {
    let rows = claim_event::Entity::find()
        .filter(claim_event::Column::ClaimId.eq(claim_id))
        .order_by_asc(claim_event::Column::Id)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(RecordedStep {
                status: ClaimStatus::parse(&r.to_status).ok_or_else(|| {
                    DbErr::Custom(format!("unknown claim status {}", r.to_status))
                })?,
                level: Level::parse(&r.level)
                    .ok_or_else(|| DbErr::Custom(format!("unknown level {}", r.level)))?,
                action: r.action,
                note: r.note,
                at: r.occurred_at,
            })
        })
        .collect()
}
