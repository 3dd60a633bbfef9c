//! Claims (申领): the claim with its facts, review stages and money; its photographed materials;
//! its timeline; payout batches to the bank and their items. Memberships gain a period-ledger
//! counter that approvals lock and advance, so concurrent approvals of one member's claims in
//! one period are serialised.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organisation {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Member {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Membership {
    Table,
    Id,
    LedgerSeq,
}

#[derive(DeriveIden)]
enum Claim {
    Table,
    Id,
    Pid,
    MemberId,
    MembershipId,
    OrganisationId,
    SchemeCode,
    Kind,
    Facts,
    Status,
    Stages,
    Stage,
    Version,
    FiledByKind,
    FiledByPid,
    IdempotencyKey,
    SubmitKey,
    BeneficiaryName,
    BeneficiaryIdNumberCipher,
    BeneficiaryRelationship,
    PayeeName,
    PayeeBankCardCipher,
    ReturnRequests,
    Flagged,
    SchemeVersion,
    Judgement,
    PayableFen,
    ApprovedFen,
    AdjustmentReason,
    PeriodSeq,
    RejectReason,
    RejectNote,
    CreatedAt,
    UpdatedAt,
    SubmittedAt,
    FirstSubmittedAt,
    ApprovedAt,
    PayDueOn,
    PayDueMaxOn,
    PaidAt,
    ClosedAt,
    PayoutFailure,
}

#[derive(DeriveIden)]
enum ClaimMaterial {
    Table,
    Id,
    Pid,
    ClaimId,
    Category,
    ObjectKey,
    ThumbnailKey,
    ContentType,
    ByteSize,
    Width,
    Height,
    Sha256,
    Phash,
    DuplicateOfMaterialId,
    DuplicateOfClaimPid,
    UploadedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ClaimEvent {
    Table,
    Id,
    ClaimId,
    OccurredAt,
    Action,
    FromStatus,
    ToStatus,
    Level,
    Note,
    ActorPid,
}

#[derive(DeriveIden)]
enum PayoutBatch {
    Table,
    Id,
    Pid,
    Status,
    ItemCount,
    TotalFen,
    CreatedBy,
    CreatedAt,
    ResultImportedAt,
}

#[derive(DeriveIden)]
enum PayoutItem {
    Table,
    Id,
    BatchId,
    ClaimId,
    Serial,
    AmountFen,
    PayeeName,
    BankCardCipher,
    Outcome,
    FailureReason,
}

fn fk(
    from_table: impl IntoIden,
    from_col: impl IntoIden,
    to_table: impl IntoIden,
    to_col: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from_table, from_col)
        .to(to_table, to_col)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for c in cols {
        stmt.col(c);
    }
    if unique {
        stmt.unique();
    }
    manager.create_index(stmt.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Approvals lock the member's period by advancing this counter first thing in their
        // transaction; the approved claim takes the new value as its place in the period.
        manager
            .alter_table(
                Table::alter()
                    .table(Membership::Table)
                    .add_column(
                        ColumnDef::new(Membership::LedgerSeq)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Claim::Table)
                    .col(big_pk_auto(Claim::Id))
                    .col(string_len_uniq(Claim::Pid, 36))
                    .col(big_integer(Claim::MemberId))
                    .col(big_integer(Claim::MembershipId))
                    .col(big_integer(Claim::OrganisationId))
                    .col(string_len(Claim::SchemeCode, 64))
                    .col(string_len(Claim::Kind, 32))
                    // The event's facts as the simulation contract's JSON.
                    .col(text(Claim::Facts))
                    // draft, union_review, service_point_review, appraisal, association_review,
                    // returned, approved, paid, payout_failed, closed, rejected, withdrawn
                    .col(string_len(Claim::Status, 32))
                    // JSON array of the review stages fixed at first submission.
                    .col(text_null(Claim::Stages))
                    // The stage reviewing it now, or the one that returned it.
                    .col(string_len_null(Claim::Stage, 32))
                    .col(integer(Claim::Version))
                    // member, clerk, beneficiary
                    .col(string_len(Claim::FiledByKind, 16))
                    .col(string_len(Claim::FiledByPid, 36))
                    .col(string_len_null(Claim::IdempotencyKey, 100))
                    .col(string_len_null(Claim::SubmitKey, 100))
                    .col(string_len_null(Claim::BeneficiaryName, 50))
                    .col(text_null(Claim::BeneficiaryIdNumberCipher))
                    .col(string_len_null(Claim::BeneficiaryRelationship, 32))
                    .col(string_len_null(Claim::PayeeName, 50))
                    .col(text_null(Claim::PayeeBankCardCipher))
                    // JSON array of {category, note} a reviewer asked to re-upload.
                    .col(text_null(Claim::ReturnRequests))
                    .col(boolean(Claim::Flagged).default(false))
                    .col(integer_null(Claim::SchemeVersion))
                    // The engine's judgement (items, refusal) as JSON.
                    .col(text_null(Claim::Judgement))
                    .col(big_integer_null(Claim::PayableFen))
                    .col(big_integer_null(Claim::ApprovedFen))
                    .col(text_null(Claim::AdjustmentReason))
                    .col(integer_null(Claim::PeriodSeq))
                    .col(string_len_null(Claim::RejectReason, 48))
                    .col(text_null(Claim::RejectNote))
                    .col(timestamp_with_time_zone(Claim::CreatedAt))
                    .col(timestamp_with_time_zone(Claim::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Claim::SubmittedAt))
                    .col(timestamp_with_time_zone_null(Claim::FirstSubmittedAt))
                    .col(timestamp_with_time_zone_null(Claim::ApprovedAt))
                    .col(date_null(Claim::PayDueOn))
                    .col(date_null(Claim::PayDueMaxOn))
                    .col(timestamp_with_time_zone_null(Claim::PaidAt))
                    .col(timestamp_with_time_zone_null(Claim::ClosedAt))
                    .col(text_null(Claim::PayoutFailure))
                    .foreign_key(&mut fk(
                        Claim::Table,
                        Claim::MemberId,
                        Member::Table,
                        Member::Id,
                    ))
                    .foreign_key(&mut fk(
                        Claim::Table,
                        Claim::MembershipId,
                        Membership::Table,
                        Membership::Id,
                    ))
                    .foreign_key(&mut fk(
                        Claim::Table,
                        Claim::OrganisationId,
                        Organisation::Table,
                        Organisation::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_claim_organisation_status",
            Claim::Table,
            vec![Claim::OrganisationId.into_iden(), Claim::Status.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "idx_claim_membership_status",
            Claim::Table,
            vec![Claim::MembershipId.into_iden(), Claim::Status.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "idx_claim_member",
            Claim::Table,
            vec![Claim::MemberId.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "idx_claim_status",
            Claim::Table,
            vec![Claim::Status.into_iden(), Claim::Id.into_iden()],
            false,
        )
        .await?;
        // A retried "file a claim" from a flaky network finds the claim it already made.
        index(
            manager,
            "uq_claim_filer_idempotency_key",
            Claim::Table,
            vec![
                Claim::FiledByPid.into_iden(),
                Claim::IdempotencyKey.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClaimMaterial::Table)
                    .col(big_pk_auto(ClaimMaterial::Id))
                    .col(string_len_uniq(ClaimMaterial::Pid, 36))
                    .col(big_integer(ClaimMaterial::ClaimId))
                    .col(string_len(ClaimMaterial::Category, 32))
                    .col(string_len(ClaimMaterial::ObjectKey, 200))
                    .col(string_len(ClaimMaterial::ThumbnailKey, 200))
                    .col(string_len(ClaimMaterial::ContentType, 32))
                    .col(big_integer(ClaimMaterial::ByteSize))
                    .col(integer(ClaimMaterial::Width))
                    .col(integer(ClaimMaterial::Height))
                    .col(string_len(ClaimMaterial::Sha256, 64))
                    .col(string_len(ClaimMaterial::Phash, 64))
                    .col(big_integer_null(ClaimMaterial::DuplicateOfMaterialId))
                    .col(string_len_null(ClaimMaterial::DuplicateOfClaimPid, 36))
                    .col(string_len(ClaimMaterial::UploadedBy, 36))
                    .col(timestamp_with_time_zone(ClaimMaterial::CreatedAt))
                    .foreign_key(&mut fk(
                        ClaimMaterial::Table,
                        ClaimMaterial::ClaimId,
                        Claim::Table,
                        Claim::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_claim_material_claim",
            ClaimMaterial::Table,
            vec![ClaimMaterial::ClaimId.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "idx_claim_material_sha256",
            ClaimMaterial::Table,
            vec![ClaimMaterial::Sha256.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClaimEvent::Table)
                    .col(big_pk_auto(ClaimEvent::Id))
                    .col(big_integer(ClaimEvent::ClaimId))
                    .col(timestamp_with_time_zone(ClaimEvent::OccurredAt))
                    .col(string_len(ClaimEvent::Action, 32))
                    .col(string_len_null(ClaimEvent::FromStatus, 32))
                    .col(string_len(ClaimEvent::ToStatus, 32))
                    // member, union, service_point, appraisal, association, bank
                    .col(string_len(ClaimEvent::Level, 32))
                    .col(text_null(ClaimEvent::Note))
                    .col(string_len_null(ClaimEvent::ActorPid, 36))
                    .foreign_key(&mut fk(
                        ClaimEvent::Table,
                        ClaimEvent::ClaimId,
                        Claim::Table,
                        Claim::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_claim_event_claim",
            ClaimEvent::Table,
            vec![ClaimEvent::ClaimId.into_iden(), ClaimEvent::Id.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PayoutBatch::Table)
                    .col(big_pk_auto(PayoutBatch::Id))
                    .col(string_len_uniq(PayoutBatch::Pid, 36))
                    // exported → result_imported
                    .col(string_len(PayoutBatch::Status, 32))
                    .col(integer(PayoutBatch::ItemCount))
                    .col(big_integer(PayoutBatch::TotalFen))
                    .col(string_len(PayoutBatch::CreatedBy, 36))
                    .col(timestamp_with_time_zone(PayoutBatch::CreatedAt))
                    .col(timestamp_with_time_zone_null(PayoutBatch::ResultImportedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PayoutItem::Table)
                    .col(big_pk_auto(PayoutItem::Id))
                    .col(big_integer(PayoutItem::BatchId))
                    .col(big_integer(PayoutItem::ClaimId))
                    .col(string_len(PayoutItem::Serial, 40))
                    .col(big_integer(PayoutItem::AmountFen))
                    .col(string_len(PayoutItem::PayeeName, 50))
                    .col(text(PayoutItem::BankCardCipher))
                    // pending, paid, failed
                    .col(string_len(PayoutItem::Outcome, 16))
                    .col(text_null(PayoutItem::FailureReason))
                    .foreign_key(&mut fk(
                        PayoutItem::Table,
                        PayoutItem::BatchId,
                        PayoutBatch::Table,
                        PayoutBatch::Id,
                    ))
                    .foreign_key(&mut fk(
                        PayoutItem::Table,
                        PayoutItem::ClaimId,
                        Claim::Table,
                        Claim::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_payout_item_serial",
            PayoutItem::Table,
            vec![PayoutItem::Serial.into_iden()],
            true,
        )
        .await?;
        index(
            manager,
            "idx_payout_item_claim",
            PayoutItem::Table,
            vec![PayoutItem::ClaimId.into_iden()],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PayoutItem::Table.into_iden(),
            PayoutBatch::Table.into_iden(),
            ClaimEvent::Table.into_iden(),
            ClaimMaterial::Table.into_iden(),
            Claim::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Membership::Table)
                    .drop_column(Membership::LedgerSeq)
                    .to_owned(),
            )
            .await
    }
}
