//! `claim_material`: one photographed document of a claim. The image itself is in object
//! storage under `object_key` (EXIF removed) with a thumbnail; hashes flag re-used bills.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "claim_material")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub claim_id: i64,
    pub category: String,
    pub object_key: String,
    pub thumbnail_key: String,
    pub content_type: String,
    pub byte_size: i64,
    pub width: i32,
    pub height: i32,
    pub sha256: String,
    pub phash: String,
    pub duplicate_of_material_id: Option<i64>,
    pub duplicate_of_claim_pid: Option<String>,
    pub uploaded_by: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::claim::Entity",
        from = "Column::ClaimId",
        to = "super::claim::Column::Id",
        on_delete = "Restrict"
    )]
    Claim,
}

impl ActiveModelBehavior for ActiveModel {}
