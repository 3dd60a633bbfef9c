//! `payout_item`: one claim's payment line in a payout batch, and the bank's outcome.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payout_item")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub batch_id: i64,
    pub claim_id: i64,
    #[sea_orm(unique)]
    pub serial: String,
    pub amount_fen: i64,
    pub payee_name: String,
    pub bank_card_cipher: String,
    pub outcome: String,
    pub failure_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
