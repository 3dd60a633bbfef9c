//! `claim_event`: one step of a claim's timeline, as the member sees it (status, time, level).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "claim_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub claim_id: i64,
    pub occurred_at: DateTimeUtc,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub level: String,
    pub note: Option<String>,
    pub actor_pid: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
