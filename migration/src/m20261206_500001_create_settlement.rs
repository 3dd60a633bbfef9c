//! Settlements from the medical-insurance bureau's file (免申即享): one row per settlement that
//! matched a member's coverage period. Rows that did not match are never stored (data
//! minimisation: only the import report names them, by row number and reason). A settlement ID
//! is unique per organisation, so importing the same file again adds nothing.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

// `SettlementId` is the bureau's own name of the column (结算ID), not a second `Id`.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Settlement {
    Table,
    Id,
    Pid,
    OrganisationId,
    ImportJobId,
    Row,
    SettlementId,
    MemberId,
    MembershipId,
    Hospital,
    AdmittedOn,
    DischargedOn,
    BilledDays,
    TotalFen,
    FundFen,
    CriticalIllnessFen,
    DeductibleFen,
    EligibleSelfPayFen,
    SelfFundedFen,
    SettledOn,
    InsuranceType,
    MedicalCategory,
    DiagnosisCode,
    DiagnosisName,
    ClaimId,
    Outcome,
    Reason,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Settlement::Table)
                    .col(big_pk_auto(Settlement::Id))
                    .col(string_len_uniq(Settlement::Pid, 36))
                    // The association (or other organisation) that imported it.
                    .col(big_integer(Settlement::OrganisationId))
                    .col(big_integer(Settlement::ImportJobId))
                    .col(integer(Settlement::Row))
                    .col(string_len(Settlement::SettlementId, 64))
                    .col(big_integer(Settlement::MemberId))
                    .col(big_integer(Settlement::MembershipId))
                    .col(string_len_null(Settlement::Hospital, 200))
                    .col(date(Settlement::AdmittedOn))
                    .col(date(Settlement::DischargedOn))
                    .col(integer_null(Settlement::BilledDays))
                    .col(big_integer(Settlement::TotalFen))
                    .col(big_integer_null(Settlement::FundFen))
                    .col(big_integer_null(Settlement::CriticalIllnessFen))
                    .col(big_integer_null(Settlement::DeductibleFen))
                    .col(big_integer_null(Settlement::EligibleSelfPayFen))
                    .col(big_integer_null(Settlement::SelfFundedFen))
                    .col(date_null(Settlement::SettledOn))
                    .col(string_len_null(Settlement::InsuranceType, 200))
                    .col(string_len_null(Settlement::MedicalCategory, 200))
                    .col(string_len_null(Settlement::DiagnosisCode, 200))
                    .col(string_len_null(Settlement::DiagnosisName, 200))
                    // The offer made of it, or the claim it corroborates.
                    .col(big_integer_null(Settlement::ClaimId))
                    // What became of it: `matched` until the offer is made, then `offered`,
                    // `corroborates` (a claim the member filed) or `not_offered` (with why).
                    .col(string_len(Settlement::Outcome, 32))
                    .col(string_len_null(Settlement::Reason, 64))
                    .col(timestamp_with_time_zone(Settlement::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_settlement_organisation_settlement_id")
                    .table(Settlement::Table)
                    .col(Settlement::OrganisationId)
                    .col(Settlement::SettlementId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_settlement_member")
                    .table(Settlement::Table)
                    .col(Settlement::MemberId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_settlement_import_job")
                    .table(Settlement::Table)
                    .col(Settlement::ImportJobId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Settlement::Table).to_owned())
            .await
    }
}
