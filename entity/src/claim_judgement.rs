//! `claim_judgement`: every judgement a claim received — at its approval, and each re-statement
//! when an earlier-filed claim of the same period was approved after it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "claim_judgement")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub claim_id: i64,
    pub membership_id: i64,
    /// `approved` or `restated`.
    pub cause: String,
    /// The claim whose approval re-stated this one.
    pub caused_by_claim_id: Option<i64>,
    pub scheme_version: i32,
    /// The engine's judgement (JSON).
    pub judgement: String,
    pub payable_fen: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
