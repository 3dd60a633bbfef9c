//! `member`: an employee known to the scheme. ID, phone and bank card numbers are stored
//! encrypted (`*_cipher`) with keyed hashes (`*_lookup`) for equality look-ups.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub organisation_id: i64,
    pub name: String,
    pub id_number_cipher: String,
    #[sea_orm(unique)]
    pub id_number_lookup: String,
    pub birth_date: Date,
    pub sex: String,
    pub phone_cipher: Option<String>,
    pub phone_lookup: Option<String>,
    pub bank_card_cipher: Option<String>,
    pub bank_card_lookup: Option<String>,
    #[sea_orm(unique)]
    pub wechat_openid: Option<String>,
    pub retired: bool,
    /// Bumped to refuse every token issued before (disabled, role or organisation changed,
    /// signed out everywhere); each token carries the generation it was issued under.
    pub token_generation: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
    #[sea_orm(has_many = "super::membership::Entity")]
    Membership,
}

impl Related<super::organisation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organisation.def()
    }
}

impl Related<super::membership::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Membership.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
