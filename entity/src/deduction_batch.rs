//! `deduction_batch`: a month's bank deduction file for one scheme.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deduction_batch")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub scheme_code: String,
    pub month: String,
    pub status: String,
    pub item_count: i32,
    pub total_fen: i64,
    pub exported_at: DateTimeUtc,
    pub exported_by: String,
    pub result_imported_at: Option<DateTimeUtc>,
    pub coverage_start: Option<Date>,
    pub coverage_end: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
