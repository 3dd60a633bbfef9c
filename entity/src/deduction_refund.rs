//! `deduction_refund`: a fee deducted that must go back to the member (already enrolled for the
//! period, or charged twice).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deduction_refund")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub member_id: i64,
    #[sea_orm(unique)]
    pub item_id: i64,
    pub batch_id: i64,
    pub scheme_code: String,
    pub amount_fen: i64,
    pub reason: String,
    pub status: String,
    pub created_at: DateTimeUtc,
    pub refunded_at: Option<DateTimeUtc>,
    pub refunded_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
