//! The append-only audit trail: who, when, what, on what, why.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use serde_json::Value;

use entity::audit_event;

/// Who acted.
#[derive(Clone, Debug)]
pub enum Actor {
    /// A signed-in member or staff account, by public id.
    Account { pid: String },
    /// The command line (an administrator on the server).
    Cli,
    /// The service itself (demo seeding, schedulers).
    System,
}

impl Actor {
    fn kind_and_pid(&self) -> (&'static str, Option<String>) {
        match self {
            Actor::Account { pid } => ("account", Some(pid.clone())),
            Actor::Cli => ("cli", None),
            Actor::System => ("system", None),
        }
    }
}

/// Appends one event.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    action: &str,
    subject: (&str, Option<&str>),
    details: Value,
    request_id: Option<String>,
) -> Result<(), DbErr> {
    let (actor_kind, actor_pid) = actor.kind_and_pid();
    audit_event::ActiveModel {
        occurred_at: Set(Utc::now()),
        actor_kind: Set(actor_kind.into()),
        actor_pid: Set(actor_pid),
        action: Set(action.into()),
        subject_kind: Set(subject.0.into()),
        subject_pid: Set(subject.1.map(str::to_owned)),
        details: Set(details.to_string()),
        request_id: Set(request_id),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
