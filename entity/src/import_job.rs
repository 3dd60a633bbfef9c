//! `import_job`: a roster import running in the background, with progress the phone can poll.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_job")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub organisation_id: i64,
    pub kind: String,
    pub status: String,
    pub total_rows: i32,
    pub processed_rows: i32,
    pub report: Option<String>,
    pub result_pid: Option<String>,
    pub object_key: String,
    pub parameters: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
