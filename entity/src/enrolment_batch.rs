//! `enrolment_batch`: a unit union's roster for one scheme and period, from submission to confirmation.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "enrolment_batch")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub organisation_id: i64,
    pub scheme_code: String,
    pub scheme_version: i32,
    pub status: String,
    pub head_count: i32,
    pub member_count: i32,
    pub fee_total_fen: i64,
    pub regional_share_fen: i64,
    pub transfer_reference: Option<String>,
    pub transfer_recorded_at: Option<DateTimeUtc>,
    pub confirmed_at: Option<DateTimeUtc>,
    pub confirmed_by: Option<String>,
    pub coverage_start: Option<Date>,
    pub coverage_end: Option<Date>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub lock_version: i32,
    /// Why the batch was refused (association) or withdrawn (union).
    #[sea_orm(column_type = "Text", nullable)]
    pub closed_reason: Option<String>,
    pub closed_at: Option<DateTimeUtc>,
    pub closed_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::OrganisationId",
        to = "super::organisation::Column::Id",
        on_delete = "Restrict"
    )]
    Organisation,
    #[sea_orm(has_many = "super::enrolment_entry::Entity")]
    Entry,
}

impl Related<super::organisation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organisation.def()
    }
}

impl Related<super::enrolment_entry::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Entry.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
