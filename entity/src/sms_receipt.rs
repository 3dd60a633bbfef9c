//! `sms_receipt`: a delivery receipt that arrived before its message's send outcome, kept until
//! the outcome lands and it can be applied.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sms_receipt")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `tencent` or `aliyun`.
    pub provider: String,
    /// Tencent `sid` / Aliyun `biz_id`.
    pub provider_id: Option<String>,
    /// Our message, when the receipt names it (Aliyun `out_id`).
    pub outbox_id: Option<i64>,
    pub delivered: bool,
    pub code: Option<String>,
    pub at: DateTimeUtc,
    pub detail: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
