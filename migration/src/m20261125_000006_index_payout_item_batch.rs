//! Payout items are read by batch (the bank file, the result import, the batch's tallies):
//! index them so those reads do not scan every item ever paid.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PayoutItem {
    Table,
    BatchId,
    Id,
}

const INDEX: &str = "idx_payout_item_batch";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(PayoutItem::Table)
                    .col(PayoutItem::BatchId)
                    .col(PayoutItem::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(PayoutItem::Table)
                    .to_owned(),
            )
            .await
    }
}
