//! A settlement may be offered twice over, once per kind of benefit it is evidence of: the stay
//! (a scheme with inpatient benefits) and, when its main diagnosis is on a women's scheme's
//! disease list, the diagnosis (馨康). Each is its own row, matched to its own coverage period;
//! the settlement ID stays unique per organisation and kind, so importing a file again still
//! adds nothing.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

// `SettlementId` is the bureau's own name of the column (结算ID), not a second `Id`.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Settlement {
    Table,
    OrganisationId,
    SettlementId,
    EventKind,
}

const OLD_UNIQUE: &str = "ux_settlement_organisation_settlement_id";
const NEW_UNIQUE: &str = "ux_settlement_organisation_settlement_id_kind";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `inpatient` or `diagnosis`: the event the row is offered as.
        manager
            .alter_table(
                Table::alter()
                    .table(Settlement::Table)
                    .add_column(string_len(Settlement::EventKind, 16).default("inpatient"))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(OLD_UNIQUE)
                    .table(Settlement::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(NEW_UNIQUE)
                    .table(Settlement::Table)
                    .col(Settlement::OrganisationId)
                    .col(Settlement::SettlementId)
                    .col(Settlement::EventKind)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(NEW_UNIQUE)
                    .table(Settlement::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OLD_UNIQUE)
                    .table(Settlement::Table)
                    .col(Settlement::OrganisationId)
                    .col(Settlement::SettlementId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Settlement::Table)
                    .drop_column(Settlement::EventKind)
                    .to_owned(),
            )
            .await
    }
}
