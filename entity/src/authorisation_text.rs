//! `authorisation_text`: a version of the payment authorisation text members sign.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorisation_text")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub scheme_code: String,
    pub version: i32,
    pub body: String,
    pub sha256: String,
    pub published_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
