//! Published scheme versions: immutable, numbered per scheme code, each holding the whole
//! definition (rules and display data) as JSON.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SchemeVersion {
    Table,
    Id,
    Code,
    Version,
    Definition,
    Complete,
    PublishedAt,
    PublishedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SchemeVersion::Table)
                    .col(big_pk_auto(SchemeVersion::Id))
                    .col(string_len(SchemeVersion::Code, 64))
                    .col(integer(SchemeVersion::Version))
                    .col(text(SchemeVersion::Definition))
                    .col(boolean(SchemeVersion::Complete))
                    .col(timestamp_with_time_zone(SchemeVersion::PublishedAt))
                    // `seed`, `cli`, or the public id of the administrator.
                    .col(string_len(SchemeVersion::PublishedBy, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_scheme_version_code_version")
                    .table(SchemeVersion::Table)
                    .col(SchemeVersion::Code)
                    .col(SchemeVersion::Version)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SchemeVersion::Table).to_owned())
            .await
    }
}
