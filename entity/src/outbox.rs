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
    /// pending, waiting_template (held until the template has the provider's id), sending,
    /// uncertain, accepted, delivered, undelivered, failed, cancelled.
    pub status: String,
    pub lease_until: Option<DateTimeUtc>,
    /// Written fresh by each lease; every later change of the message checks it, so a
    /// dispatcher never overwrites a message another has leased since.
    pub lease_token: Option<String>,
    pub channel: Option<String>,
    pub provider: Option<String>,
    pub template: Option<String>,
    pub params: Option<String>,
    pub phone_lookup: Option<String>,
    pub provider_id: Option<String>,
    pub last_error_code: Option<String>,
    pub last_error: Option<String>,
    pub receipt_status: Option<String>,
    pub receipt_code: Option<String>,
    pub receipt_at: Option<DateTimeUtc>,
    pub receipt_detail: Option<String>,
    pub updated_at: Option<DateTimeUtc>,
    /// When the message was offered to WeChat (subscribe message); never offered twice.
    pub wechat_tried_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
