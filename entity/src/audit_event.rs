//! `audit_event`: the append-only trail of who did what, when, and why, hash-chained.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub occurred_at: DateTimeUtc,
    pub actor_kind: String,
    pub actor_pid: Option<String>,
    pub action: String,
    pub subject_kind: String,
    pub subject_pid: Option<String>,
    pub details: String,
    pub request_id: Option<String>,
    /// The event's place in the chain (1, 2, …); NULL only for an event not yet sealed.
    #[sea_orm(unique)]
    pub seq: Option<i64>,
    /// The hash of the event at `seq - 1` (64 zeros for the first).
    pub prev_hash: Option<String>,
    /// Hex SHA-256 of the event's canonical bytes, `prev_hash` included.
    pub hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
