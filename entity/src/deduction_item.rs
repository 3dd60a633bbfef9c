//! `deduction_item`: one authorised member in a deduction file, and the bank's result.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deduction_item")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub batch_id: i64,
    pub authorisation_id: i64,
    pub member_id: i64,
    pub amount_fen: i64,
    pub status: String,
    pub failure_reason: Option<String>,
    pub membership_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
