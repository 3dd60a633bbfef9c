//! The offer's lifecycle for the member (免申即享): the day an unconfirmed offer lapses (the
//! scheme's claim deadline for its stay, fixed when the offer is made, so the daily scan is one
//! indexed comparison), and the settlement's 离院方式 (discharge way), whose 死亡 tells that
//! the offer must be confirmed by the union for a beneficiary.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Claim {
    Table,
    Status,
    LapsesOn,
}

#[derive(DeriveIden)]
enum Settlement {
    Table,
    DischargeWay,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Claim::Table)
                    .add_column(date_null(Claim::LapsesOn))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Settlement::Table)
                    .add_column(string_null(Settlement::DischargeWay))
                    .to_owned(),
            )
            .await?;
        // The scan's lapse and reminder: offered claims by the day they lapse.
        manager
            .create_index(
                Index::create()
                    .name("idx_claim_status_lapses_on")
                    .table(Claim::Table)
                    .col(Claim::Status)
                    .col(Claim::LapsesOn)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_claim_status_lapses_on")
                    .table(Claim::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Settlement::Table)
                    .drop_column(Settlement::DischargeWay)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Claim::Table)
                    .drop_column(Claim::LapsesOn)
                    .to_owned(),
            )
            .await
    }
}
