//! Reminders: the outbox becomes the send log — each row one message to one person, with its
//! status, attempts, provider id and delivery receipt — and SMS templates per occasion.
//!
//! `outbox.due_at` is the earliest moment a message may go (moved forward by quiet hours,
//! per-number limits and retry backoff). Our message id towards the providers is derived from
//! the row id, so set-based inserts need no generated ids.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Status,
    DueAt,
    LeaseUntil,
    Channel,
    Provider,
    Template,
    Params,
    PhoneLookup,
    ProviderId,
    LastErrorCode,
    LastError,
    ReceiptStatus,
    ReceiptCode,
    ReceiptAt,
    ReceiptDetail,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SmsTemplate {
    Table,
    Occasion,
    TencentTemplateId,
    AliyunTemplateCode,
    BodyZh,
    Params,
    UpdatedBy,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            // pending → sending → accepted → delivered | undelivered; uncertain (asked of the
            // provider before any resend); failed (permanent); cancelled.
            ColumnDef::new(Outbox::Status)
                .string_len(16)
                .not_null()
                .default("pending")
                .to_owned(),
            ColumnDef::new(Outbox::LeaseUntil)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::Channel)
                .string_len(16)
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::Provider)
                .string_len(16)
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::Template)
                .string_len(64)
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::Params).text().null().to_owned(),
            ColumnDef::new(Outbox::PhoneLookup)
                .string_len(64)
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::ProviderId)
                .string_len(64)
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::LastErrorCode)
                .string_len(100)
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::LastError).text().null().to_owned(),
            ColumnDef::new(Outbox::ReceiptStatus)
                .string_len(16)
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::ReceiptCode)
                .string_len(64)
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::ReceiptAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::ReceiptDetail)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(Outbox::UpdatedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ];
        for col in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outbox::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_status_due")
                    .table(Outbox::Table)
                    .col(Outbox::Status)
                    .col(Outbox::DueAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_provider_id")
                    .table(Outbox::Table)
                    .col(Outbox::ProviderId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SmsTemplate::Table)
                    .col(string_len(SmsTemplate::Occasion, 32).primary_key())
                    .col(string_len_null(SmsTemplate::TencentTemplateId, 64))
                    .col(string_len_null(SmsTemplate::AliyunTemplateCode, 64))
                    // The approved wording, with {name} placeholders, for previews and the log.
                    .col(text(SmsTemplate::BodyZh))
                    // JSON array of the placeholder names, in template order.
                    .col(text(SmsTemplate::Params))
                    .col(string_len(SmsTemplate::UpdatedBy, 36))
                    .col(timestamp_with_time_zone(SmsTemplate::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SmsTemplate::Table).to_owned())
            .await?;
        for name in ["idx_outbox_provider_id", "idx_outbox_status_due"] {
            manager
                .drop_index(Index::drop().name(name).table(Outbox::Table).to_owned())
                .await?;
        }
        for col in [
            Outbox::UpdatedAt,
            Outbox::ReceiptDetail,
            Outbox::ReceiptAt,
            Outbox::ReceiptCode,
            Outbox::ReceiptStatus,
            Outbox::LastError,
            Outbox::LastErrorCode,
            Outbox::ProviderId,
            Outbox::PhoneLookup,
            Outbox::Params,
            Outbox::Template,
            Outbox::Provider,
            Outbox::Channel,
            Outbox::LeaseUntil,
            Outbox::Status,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outbox::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
