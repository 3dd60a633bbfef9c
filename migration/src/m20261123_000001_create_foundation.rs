//! The foundation: the organisation tree, staff and their invitations, members (personal data
//! encrypted, with keyed look-up hashes), memberships and the append-only audit trail.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organisation {
    Table,
    Id,
    Pid,
    ParentId,
    Kind,
    Name,
    Path,
    HeadCount,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Staff {
    Table,
    Id,
    Pid,
    OrganisationId,
    Role,
    Name,
    Login,
    WechatOpenid,
    Active,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Invitation {
    Table,
    Id,
    StaffId,
    CodeHash,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Member {
    Table,
    Id,
    Pid,
    OrganisationId,
    Name,
    IdNumberCipher,
    IdNumberLookup,
    BirthDate,
    Sex,
    PhoneCipher,
    PhoneLookup,
    BankCardCipher,
    BankCardLookup,
    WechatOpenid,
    Retired,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Membership {
    Table,
    Id,
    Pid,
    MemberId,
    OrganisationId,
    SchemeCode,
    CoverageStart,
    CoverageEnd,
    Status,
    ConsecutivePeriods,
    ContinuousRenewal,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Id,
    OccurredAt,
    ActorKind,
    ActorPid,
    Action,
    SubjectKind,
    SubjectPid,
    Details,
    RequestId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organisation::Table)
                    .col(big_pk_auto(Organisation::Id))
                    .col(string_len_uniq(Organisation::Pid, 36))
                    .col(big_integer_null(Organisation::ParentId))
                    .col(string_len(Organisation::Kind, 32))
                    .col(string_len(Organisation::Name, 200))
                    // Materialised path of ids, "/1/4/9/": a subtree is one prefix match.
                    .col(string_len(Organisation::Path, 400))
                    .col(integer_null(Organisation::HeadCount))
                    .col(timestamp_with_time_zone(Organisation::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Organisation::Table, Organisation::ParentId)
                            .to(Organisation::Table, Organisation::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_organisation_path")
                    .table(Organisation::Table)
                    .col(Organisation::Path)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_organisation_parent")
                    .table(Organisation::Table)
                    .col(Organisation::ParentId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Staff::Table)
                    .col(big_pk_auto(Staff::Id))
                    .col(string_len_uniq(Staff::Pid, 36))
                    .col(big_integer(Staff::OrganisationId))
                    .col(string_len(Staff::Role, 32))
                    .col(string_len(Staff::Name, 100))
                    .col(string_len_uniq(Staff::Login, 64))
                    .col(string_len_null(Staff::WechatOpenid, 128).unique_key())
                    .col(boolean(Staff::Active))
                    .col(timestamp_with_time_zone(Staff::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Staff::Table, Staff::OrganisationId)
                            .to(Organisation::Table, Organisation::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_staff_organisation")
                    .table(Staff::Table)
                    .col(Staff::OrganisationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invitation::Table)
                    .col(big_pk_auto(Invitation::Id))
                    .col(big_integer(Invitation::StaffId))
                    // SHA-256 of the code: the code itself is shown once and never stored.
                    .col(string_len_uniq(Invitation::CodeHash, 64))
                    .col(timestamp_with_time_zone(Invitation::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Invitation::UsedAt))
                    .col(timestamp_with_time_zone(Invitation::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitation::Table, Invitation::StaffId)
                            .to(Staff::Table, Staff::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Member::Table)
                    .col(big_pk_auto(Member::Id))
                    .col(string_len_uniq(Member::Pid, 36))
                    .col(big_integer(Member::OrganisationId))
                    .col(string_len(Member::Name, 100))
                    .col(text(Member::IdNumberCipher))
                    .col(string_len_uniq(Member::IdNumberLookup, 64))
                    .col(date(Member::BirthDate))
                    .col(string_len(Member::Sex, 8))
                    .col(text_null(Member::PhoneCipher))
                    .col(string_len_null(Member::PhoneLookup, 64))
                    .col(text_null(Member::BankCardCipher))
                    .col(string_len_null(Member::BankCardLookup, 64))
                    .col(string_len_null(Member::WechatOpenid, 128).unique_key())
                    .col(boolean(Member::Retired))
                    .col(timestamp_with_time_zone(Member::CreatedAt))
                    .col(timestamp_with_time_zone(Member::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Member::Table, Member::OrganisationId)
                            .to(Organisation::Table, Organisation::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_member_organisation", Member::OrganisationId),
            ("idx_member_phone_lookup", Member::PhoneLookup),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Member::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Membership::Table)
                    .col(big_pk_auto(Membership::Id))
                    .col(string_len_uniq(Membership::Pid, 36))
                    .col(big_integer(Membership::MemberId))
                    .col(big_integer(Membership::OrganisationId))
                    .col(string_len(Membership::SchemeCode, 64))
                    .col(date(Membership::CoverageStart))
                    .col(date(Membership::CoverageEnd))
                    .col(string_len(Membership::Status, 32))
                    .col(integer(Membership::ConsecutivePeriods))
                    .col(boolean(Membership::ContinuousRenewal))
                    .col(timestamp_with_time_zone(Membership::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Membership::Table, Membership::MemberId)
                            .to(Member::Table, Member::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Membership::Table, Membership::OrganisationId)
                            .to(Organisation::Table, Organisation::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_membership_member_scheme_start")
                    .table(Membership::Table)
                    .col(Membership::MemberId)
                    .col(Membership::SchemeCode)
                    .col(Membership::CoverageStart)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_membership_organisation")
                    .table(Membership::Table)
                    .col(Membership::OrganisationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvent::Table)
                    .col(big_pk_auto(AuditEvent::Id))
                    .col(timestamp_with_time_zone(AuditEvent::OccurredAt))
                    .col(string_len(AuditEvent::ActorKind, 16))
                    .col(string_len_null(AuditEvent::ActorPid, 36))
                    .col(string_len(AuditEvent::Action, 64))
                    .col(string_len(AuditEvent::SubjectKind, 32))
                    .col(string_len_null(AuditEvent::SubjectPid, 36))
                    .col(text(AuditEvent::Details))
                    .col(string_len_null(AuditEvent::RequestId, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_event_subject")
                    .table(AuditEvent::Table)
                    .col(AuditEvent::SubjectKind)
                    .col(AuditEvent::SubjectPid)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvent::Table.into_iden(),
            Membership::Table.into_iden(),
            Member::Table.into_iden(),
            Invitation::Table.into_iden(),
            Staff::Table.into_iden(),
            Organisation::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
