//! A token generation on each staff and member account: every token carries the generation it
//! was issued under, and bumping it (account disabled, role or organisation changed, "sign out
//! everywhere") refuses every token issued before. Two statements, because SQLite adds one
//! column per `ALTER TABLE`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Staff {
    Table,
    TokenGeneration,
}

#[derive(DeriveIden)]
enum Member {
    Table,
    TokenGeneration,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Staff::Table)
                    .add_column(
                        ColumnDef::new(Staff::TokenGeneration)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Member::Table)
                    .add_column(
                        ColumnDef::new(Member::TokenGeneration)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Member::Table)
                    .drop_column(Member::TokenGeneration)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Staff::Table)
                    .drop_column(Staff::TokenGeneration)
                    .to_owned(),
            )
            .await
    }
}
