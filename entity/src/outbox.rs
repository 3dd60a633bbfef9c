//! `outbox`: a message to a person, written in the same transaction as the change that causes it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub occasion: String,
    pub member_id: i64,
    #[sea_orm(unique)]
    pub dedupe_key: String,
    pub payload: String,
    pub created_at: DateTimeUtc,
    pub due_at: DateTimeUtc,
    pub dispatched_at: Option<DateTimeUtc>,
    pub attempts: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
