//! The period is the unit of money. Every judgement a claim receives is kept as history — the one
//! given at its approval and each re-statement when an earlier-filed claim of the same period is
//! approved after it — and each membership carries the open offset: what its claims were granted
//! beyond the period's total, absorbed by its next claims, never forgiven or clawed back silently.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ClaimJudgement {
    Table,
    Id,
    ClaimId,
    MembershipId,
    Cause,
    CausedByClaimId,
    SchemeVersion,
    Judgement,
    PayableFen,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Claim {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Membership {
    Table,
    Id,
    OffsetFen,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClaimJudgement::Table)
                    .col(
                        ColumnDef::new(ClaimJudgement::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ClaimJudgement::ClaimId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClaimJudgement::MembershipId)
                            .big_integer()
                            .not_null(),
                    )
                    // `approved` (the judgement the claim was approved on) or `restated` (an
                    // earlier-filed claim was approved later and the period was judged again).
                    .col(
                        ColumnDef::new(ClaimJudgement::Cause)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClaimJudgement::CausedByClaimId)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ClaimJudgement::SchemeVersion)
                            .integer()
                            .not_null(),
                    )
                    // The engine's judgement of the claim (items, refusal) as JSON.
                    .col(ColumnDef::new(ClaimJudgement::Judgement).text().not_null())
                    .col(
                        ColumnDef::new(ClaimJudgement::PayableFen)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClaimJudgement::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_claim_judgement_claim")
                            .from(ClaimJudgement::Table, ClaimJudgement::ClaimId)
                            .to(Claim::Table, Claim::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_claim_judgement_caused_by")
                            .from(ClaimJudgement::Table, ClaimJudgement::CausedByClaimId)
                            .to(Claim::Table, Claim::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_claim_judgement_membership")
                            .from(ClaimJudgement::Table, ClaimJudgement::MembershipId)
                            .to(Membership::Table, Membership::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_claim_judgement_claim")
                    .table(ClaimJudgement::Table)
                    .col(ClaimJudgement::ClaimId)
                    .col(ClaimJudgement::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Membership::Table)
                    .add_column(
                        ColumnDef::new(Membership::OffsetFen)
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
                    .table(Membership::Table)
                    .drop_column(Membership::OffsetFen)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(ClaimJudgement::Table).to_owned())
            .await
    }
}
