//! `enrolment_entry`: one member on a batch's roster.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "enrolment_entry")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub batch_id: i64,
    pub member_id: i64,
    pub row_number: i32,
    pub retired: bool,
    pub fee_fen: i64,
    /// 工作单位 as the roster wrote it.
    pub workplace: Option<String>,
    /// 部门.
    pub department: Option<String>,
    /// 工号.
    pub employee_number: Option<String>,
    /// 备注.
    #[sea_orm(column_type = "Text", nullable)]
    pub remarks: Option<String>,
    /// 是否参加医保 as written (`None`: left empty).
    pub insured: Option<bool>,
    /// The roster's other columns: a JSON object, header → text, in the file's order.
    #[sea_orm(column_type = "Text", nullable)]
    pub extra_columns: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::enrolment_batch::Entity",
        from = "Column::BatchId",
        to = "super::enrolment_batch::Column::Id",
        on_delete = "Restrict"
    )]
    Batch,
    #[sea_orm(
        belongs_to = "super::member::Entity",
        from = "Column::MemberId",
        to = "super::member::Column::Id",
        on_delete = "Restrict"
    )]
    Member,
}

impl Related<super::enrolment_batch::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Batch.def()
    }
}

impl Related<super::member::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Member.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
