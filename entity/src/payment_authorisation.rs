//! `payment_authorisation`: a signed payment authorisation; never edited, only revoked.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_authorisation")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub member_id: i64,
    pub text_id: i64,
    pub text_sha256: String,
    pub bank_card_cipher: String,
    pub bank_card_lookup: String,
    pub id_front_key: String,
    pub id_back_key: String,
    pub signature_key: String,
    pub signature_sha256: String,
    pub consent: bool,
    pub signed_at: DateTimeUtc,
    pub openid: String,
    pub ip_address: String,
    pub user_agent: String,
    pub revoked_at: Option<DateTimeUtc>,
    pub effective_until: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
