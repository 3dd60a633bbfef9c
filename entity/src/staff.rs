//! `staff`: reviewers and administrators, each attached to one organisation.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "staff")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub organisation_id: i64,
    pub role: String,
    pub name: String,
    #[sea_orm(unique)]
    pub login: String,
    #[sea_orm(unique)]
    pub wechat_openid: Option<String>,
    pub active: bool,
    /// Bumped to refuse every token issued before (disabled, role or organisation changed,
    /// signed out everywhere); each token carries the generation it was issued under.
    pub token_generation: i64,
    pub created_at: DateTimeUtc,
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
}

impl Related<super::organisation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organisation.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
