//! `membership`: one member's enrolment in one scheme for one coverage period.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "membership")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub member_id: i64,
    pub organisation_id: i64,
    pub scheme_code: String,
    pub coverage_start: Date,
    pub coverage_end: Date,
    pub status: String,
    pub consecutive_periods: i32,
    pub continuous_renewal: bool,
    pub created_at: DateTimeUtc,
    pub enrolment_batch_id: Option<i64>,
    pub fee_fen: i64,
    pub allowance_paid: bool,
    pub extension_id: Option<i64>,
    /// `group` or `individual`.
    pub source: String,
    /// Advanced by each approval of a claim in this period (the period's lock and order).
    pub ledger_seq: i32,
    /// What the period's claims were granted beyond the period's total (fen): absorbed by its
    /// next claims.
    pub offset_fen: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::member::Entity",
        from = "Column::MemberId",
        to = "super::member::Column::Id",
        on_delete = "Restrict"
    )]
    Member,
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::OrganisationId",
        to = "super::organisation::Column::Id",
        on_delete = "Restrict"
    )]
    Organisation,
}

impl Related<super::member::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Member.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
