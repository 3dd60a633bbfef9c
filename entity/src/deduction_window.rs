//! `deduction_window`: a late window the association opened for a scheme's deductions after its
//! enrolment window closed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deduction_window")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub scheme_code: String,
    pub closes: Date,
    pub reason: String,
    pub opened_by: String,
    pub opened_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
