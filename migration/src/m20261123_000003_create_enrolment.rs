//! Enrolment: group enrolment batches (a unit union's roster for one scheme and period), the
//! roster import jobs behind them, coverage extensions, enrolment targets, the Wujin payment
//! authorisations and monthly bank deductions, and the outbox of messages to people.

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
    EnrolmentBatchId,
    FeeFen,
    AllowancePaid,
    ExtensionId,
    Source,
}

#[derive(DeriveIden)]
enum EnrolmentBatch {
    Table,
    Id,
    Pid,
    OrganisationId,
    SchemeCode,
    SchemeVersion,
    Status,
    HeadCount,
    MemberCount,
    FeeTotalFen,
    RegionalShareFen,
    TransferReference,
    TransferRecordedAt,
    ConfirmedAt,
    ConfirmedBy,
    CoverageStart,
    CoverageEnd,
    CreatedBy,
    CreatedAt,
    LockVersion,
}

#[derive(DeriveIden)]
enum EnrolmentEntry {
    Table,
    Id,
    BatchId,
    MemberId,
    RowNumber,
    Retired,
    FeeFen,
}

#[derive(DeriveIden)]
enum ImportJob {
    Table,
    Id,
    Pid,
    OrganisationId,
    Kind,
    Status,
    TotalRows,
    ProcessedRows,
    Report,
    ResultPid,
    ObjectKey,
    Parameters,
    CreatedBy,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum CoverageExtension {
    Table,
    Id,
    Pid,
    NewEnd,
    Reason,
    MembershipCount,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EnrolmentTarget {
    Table,
    Id,
    OrganisationId,
    Year,
    SchemeCode,
    TargetPeople,
    SetBy,
    SetAt,
}

#[derive(DeriveIden)]
enum AuthorisationText {
    Table,
    Id,
    SchemeCode,
    Version,
    Body,
    Sha256,
    PublishedAt,
}

#[derive(DeriveIden)]
enum PaymentAuthorisation {
    Table,
    Id,
    Pid,
    MemberId,
    TextId,
    TextSha256,
    BankCardCipher,
    BankCardLookup,
    IdFrontKey,
    IdBackKey,
    SignatureKey,
    SignatureSha256,
    Consent,
    SignedAt,
    Openid,
    IpAddress,
    UserAgent,
    RevokedAt,
    EffectiveUntil,
}

#[derive(DeriveIden)]
enum DeductionBatch {
    Table,
    Id,
    Pid,
    SchemeCode,
    Month,
    Status,
    ItemCount,
    TotalFen,
    ExportedAt,
    ExportedBy,
    ResultImportedAt,
}

#[derive(DeriveIden)]
enum DeductionItem {
    Table,
    Id,
    BatchId,
    AuthorisationId,
    MemberId,
    AmountFen,
    Status,
    FailureReason,
    MembershipId,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Occasion,
    MemberId,
    DedupeKey,
    Payload,
    CreatedAt,
    DueAt,
    DispatchedAt,
    Attempts,
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
        manager
            .create_table(
                Table::create()
                    .table(EnrolmentBatch::Table)
                    .col(big_pk_auto(EnrolmentBatch::Id))
                    .col(string_len_uniq(EnrolmentBatch::Pid, 36))
                    .col(big_integer(EnrolmentBatch::OrganisationId))
                    .col(string_len(EnrolmentBatch::SchemeCode, 64))
                    .col(integer(EnrolmentBatch::SchemeVersion))
                    // submitted → payment_recorded → confirmed (or cancelled)
                    .col(string_len(EnrolmentBatch::Status, 32))
                    .col(integer(EnrolmentBatch::HeadCount))
                    .col(integer(EnrolmentBatch::MemberCount))
                    .col(big_integer(EnrolmentBatch::FeeTotalFen))
                    .col(big_integer(EnrolmentBatch::RegionalShareFen))
                    .col(string_len_null(EnrolmentBatch::TransferReference, 100))
                    .col(timestamp_with_time_zone_null(
                        EnrolmentBatch::TransferRecordedAt,
                    ))
                    .col(timestamp_with_time_zone_null(EnrolmentBatch::ConfirmedAt))
                    .col(string_len_null(EnrolmentBatch::ConfirmedBy, 36))
                    .col(date_null(EnrolmentBatch::CoverageStart))
                    .col(date_null(EnrolmentBatch::CoverageEnd))
                    .col(string_len(EnrolmentBatch::CreatedBy, 36))
                    .col(timestamp_with_time_zone(EnrolmentBatch::CreatedAt))
                    .col(integer(EnrolmentBatch::LockVersion))
                    .foreign_key(&mut fk(
                        EnrolmentBatch::Table,
                        EnrolmentBatch::OrganisationId,
                        Organisation::Table,
                        Organisation::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_enrolment_batch_organisation",
            EnrolmentBatch::Table,
            vec![EnrolmentBatch::OrganisationId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(EnrolmentEntry::Table)
                    .col(big_pk_auto(EnrolmentEntry::Id))
                    .col(big_integer(EnrolmentEntry::BatchId))
                    .col(big_integer(EnrolmentEntry::MemberId))
                    .col(integer(EnrolmentEntry::RowNumber))
                    .col(boolean(EnrolmentEntry::Retired))
                    .col(big_integer(EnrolmentEntry::FeeFen))
                    .foreign_key(&mut fk(
                        EnrolmentEntry::Table,
                        EnrolmentEntry::BatchId,
                        EnrolmentBatch::Table,
                        EnrolmentBatch::Id,
                    ))
                    .foreign_key(&mut fk(
                        EnrolmentEntry::Table,
                        EnrolmentEntry::MemberId,
                        Member::Table,
                        Member::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_enrolment_entry_batch_member",
            EnrolmentEntry::Table,
            vec![
                EnrolmentEntry::BatchId.into_iden(),
                EnrolmentEntry::MemberId.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CoverageExtension::Table)
                    .col(big_pk_auto(CoverageExtension::Id))
                    .col(string_len_uniq(CoverageExtension::Pid, 36))
                    .col(date(CoverageExtension::NewEnd))
                    .col(text(CoverageExtension::Reason))
                    .col(integer(CoverageExtension::MembershipCount))
                    .col(string_len(CoverageExtension::CreatedBy, 36))
                    .col(timestamp_with_time_zone(CoverageExtension::CreatedAt))
                    .to_owned(),
            )
            .await?;

        // Memberships learn where they came from and what they cost.
        for col in [
            ColumnDef::new(Membership::EnrolmentBatchId)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Membership::FeeFen)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Membership::AllowancePaid)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            ColumnDef::new(Membership::ExtensionId)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Membership::Source)
                .string_len(16)
                .not_null()
                .default("group")
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Membership::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(ImportJob::Table)
                    .col(big_pk_auto(ImportJob::Id))
                    .col(string_len_uniq(ImportJob::Pid, 36))
                    .col(big_integer(ImportJob::OrganisationId))
                    .col(string_len(ImportJob::Kind, 32))
                    // queued → running → succeeded | failed
                    .col(string_len(ImportJob::Status, 16))
                    .col(integer(ImportJob::TotalRows))
                    .col(integer(ImportJob::ProcessedRows))
                    .col(text_null(ImportJob::Report))
                    .col(string_len_null(ImportJob::ResultPid, 36))
                    .col(string_len(ImportJob::ObjectKey, 200))
                    .col(text(ImportJob::Parameters))
                    .col(string_len(ImportJob::CreatedBy, 36))
                    .col(timestamp_with_time_zone(ImportJob::CreatedAt))
                    .col(timestamp_with_time_zone_null(ImportJob::FinishedAt))
                    .foreign_key(&mut fk(
                        ImportJob::Table,
                        ImportJob::OrganisationId,
                        Organisation::Table,
                        Organisation::Id,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EnrolmentTarget::Table)
                    .col(big_pk_auto(EnrolmentTarget::Id))
                    .col(big_integer(EnrolmentTarget::OrganisationId))
                    .col(integer(EnrolmentTarget::Year))
                    // '' for a target over all schemes.
                    .col(string_len(EnrolmentTarget::SchemeCode, 64))
                    .col(integer(EnrolmentTarget::TargetPeople))
                    .col(string_len(EnrolmentTarget::SetBy, 36))
                    .col(timestamp_with_time_zone(EnrolmentTarget::SetAt))
                    .foreign_key(&mut fk(
                        EnrolmentTarget::Table,
                        EnrolmentTarget::OrganisationId,
                        Organisation::Table,
                        Organisation::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_enrolment_target",
            EnrolmentTarget::Table,
            vec![
                EnrolmentTarget::OrganisationId.into_iden(),
                EnrolmentTarget::Year.into_iden(),
                EnrolmentTarget::SchemeCode.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuthorisationText::Table)
                    .col(big_pk_auto(AuthorisationText::Id))
                    .col(string_len(AuthorisationText::SchemeCode, 64))
                    .col(integer(AuthorisationText::Version))
                    .col(text(AuthorisationText::Body))
                    .col(string_len(AuthorisationText::Sha256, 64))
                    .col(timestamp_with_time_zone(AuthorisationText::PublishedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_authorisation_text_version",
            AuthorisationText::Table,
            vec![
                AuthorisationText::SchemeCode.into_iden(),
                AuthorisationText::Version.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PaymentAuthorisation::Table)
                    .col(big_pk_auto(PaymentAuthorisation::Id))
                    .col(string_len_uniq(PaymentAuthorisation::Pid, 36))
                    .col(big_integer(PaymentAuthorisation::MemberId))
                    .col(big_integer(PaymentAuthorisation::TextId))
                    .col(string_len(PaymentAuthorisation::TextSha256, 64))
                    .col(text(PaymentAuthorisation::BankCardCipher))
                    .col(string_len(PaymentAuthorisation::BankCardLookup, 64))
                    .col(string_len(PaymentAuthorisation::IdFrontKey, 200))
                    .col(string_len(PaymentAuthorisation::IdBackKey, 200))
                    .col(string_len(PaymentAuthorisation::SignatureKey, 200))
                    .col(string_len(PaymentAuthorisation::SignatureSha256, 64))
                    .col(boolean(PaymentAuthorisation::Consent))
                    .col(timestamp_with_time_zone(PaymentAuthorisation::SignedAt))
                    .col(string_len(PaymentAuthorisation::Openid, 128))
                    .col(string_len(PaymentAuthorisation::IpAddress, 64))
                    .col(string_len(PaymentAuthorisation::UserAgent, 512))
                    .col(timestamp_with_time_zone_null(
                        PaymentAuthorisation::RevokedAt,
                    ))
                    // Last day deductions may use it (end of the revocation month).
                    .col(date_null(PaymentAuthorisation::EffectiveUntil))
                    .foreign_key(&mut fk(
                        PaymentAuthorisation::Table,
                        PaymentAuthorisation::MemberId,
                        Member::Table,
                        Member::Id,
                    ))
                    .foreign_key(&mut fk(
                        PaymentAuthorisation::Table,
                        PaymentAuthorisation::TextId,
                        AuthorisationText::Table,
                        AuthorisationText::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_payment_authorisation_member",
            PaymentAuthorisation::Table,
            vec![PaymentAuthorisation::MemberId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeductionBatch::Table)
                    .col(big_pk_auto(DeductionBatch::Id))
                    .col(string_len_uniq(DeductionBatch::Pid, 36))
                    .col(string_len(DeductionBatch::SchemeCode, 64))
                    // YYYY-MM
                    .col(string_len(DeductionBatch::Month, 7))
                    // exported → result_imported
                    .col(string_len(DeductionBatch::Status, 32))
                    .col(integer(DeductionBatch::ItemCount))
                    .col(big_integer(DeductionBatch::TotalFen))
                    .col(timestamp_with_time_zone(DeductionBatch::ExportedAt))
                    .col(string_len(DeductionBatch::ExportedBy, 36))
                    .col(timestamp_with_time_zone_null(
                        DeductionBatch::ResultImportedAt,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_deduction_batch_month",
            DeductionBatch::Table,
            vec![
                DeductionBatch::SchemeCode.into_iden(),
                DeductionBatch::Month.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeductionItem::Table)
                    .col(big_pk_auto(DeductionItem::Id))
                    .col(big_integer(DeductionItem::BatchId))
                    .col(big_integer(DeductionItem::AuthorisationId))
                    .col(big_integer(DeductionItem::MemberId))
                    .col(big_integer(DeductionItem::AmountFen))
                    // pending → succeeded | failed
                    .col(string_len(DeductionItem::Status, 16))
                    .col(text_null(DeductionItem::FailureReason))
                    .col(big_integer_null(DeductionItem::MembershipId))
                    .foreign_key(&mut fk(
                        DeductionItem::Table,
                        DeductionItem::BatchId,
                        DeductionBatch::Table,
                        DeductionBatch::Id,
                    ))
                    .foreign_key(&mut fk(
                        DeductionItem::Table,
                        DeductionItem::AuthorisationId,
                        PaymentAuthorisation::Table,
                        PaymentAuthorisation::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_deduction_item_batch_authorisation",
            DeductionItem::Table,
            vec![
                DeductionItem::BatchId.into_iden(),
                DeductionItem::AuthorisationId.into_iden(),
            ],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(big_pk_auto(Outbox::Id))
                    // enrolment_confirmed, coverage_extended, deduction_failed, …
                    .col(string_len(Outbox::Occasion, 64))
                    .col(big_integer(Outbox::MemberId))
                    // One message per person and occasion, whatever retries happen.
                    .col(string_len_uniq(Outbox::DedupeKey, 200))
                    .col(text(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone(Outbox::DueAt))
                    .col(timestamp_with_time_zone_null(Outbox::DispatchedAt))
                    .col(integer(Outbox::Attempts))
                    .foreign_key(&mut fk(
                        Outbox::Table,
                        Outbox::MemberId,
                        Member::Table,
                        Member::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_outbox_due",
            Outbox::Table,
            vec![Outbox::DispatchedAt.into_iden(), Outbox::DueAt.into_iden()],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Outbox::Table.into_iden(),
            DeductionItem::Table.into_iden(),
            DeductionBatch::Table.into_iden(),
            PaymentAuthorisation::Table.into_iden(),
            AuthorisationText::Table.into_iden(),
            EnrolmentTarget::Table.into_iden(),
            ImportJob::Table.into_iden(),
            EnrolmentEntry::Table.into_iden(),
            EnrolmentBatch::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for col in [
            Membership::EnrolmentBatchId.into_iden(),
            Membership::FeeFen.into_iden(),
            Membership::AllowancePaid.into_iden(),
            Membership::ExtensionId.into_iden(),
            Membership::Source.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Membership::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(CoverageExtension::Table).to_owned())
            .await
    }
}
