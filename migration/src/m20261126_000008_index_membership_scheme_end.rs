//! The renewal scan looks memberships up by scheme and range of period ends (every scan, for
//! every scheme): index them so a scan reads the few weeks it needs, not every period ever.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Membership {
    Table,
    SchemeCode,
    CoverageEnd,
}

const INDEX: &str = "idx_membership_scheme_end";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Membership::Table)
                    .col(Membership::SchemeCode)
                    .col(Membership::CoverageEnd)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(Membership::Table)
                    .to_owned(),
            )
            .await
    }
}
