//! Delivery receipts that arrived before their message's send outcome: a receipt matched to no
//! message yet (Tencent reports by its `SerialNo` only, which we learn from the send answer or a
//! look-up; a receipt may also overtake the answer of the call that sent the message) is kept
//! here and applied when the outcome lands, instead of being acknowledged and thrown away.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SmsReceipt {
    Table,
    Id,
    Provider,
    ProviderId,
    OutboxId,
    Delivered,
    Code,
    At,
    Detail,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SmsReceipt::Table)
                    .col(big_pk_auto(SmsReceipt::Id))
                    .col(string_len(SmsReceipt::Provider, 16))
                    // Tencent `sid` / Aliyun `biz_id`.
                    .col(string_len_null(SmsReceipt::ProviderId, 64))
                    // Our message, when the receipt names it (Aliyun `out_id`).
                    .col(big_integer_null(SmsReceipt::OutboxId))
                    .col(boolean(SmsReceipt::Delivered))
                    .col(string_len_null(SmsReceipt::Code, 64))
                    .col(timestamp_with_time_zone(SmsReceipt::At))
                    // As `outbox.receipt_detail`: the number's last four digits, code, text.
                    .col(text(SmsReceipt::Detail))
                    .col(timestamp_with_time_zone(SmsReceipt::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_sms_receipt_provider_id", SmsReceipt::ProviderId),
            ("idx_sms_receipt_outbox_id", SmsReceipt::OutboxId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(SmsReceipt::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SmsReceipt::Table).to_owned())
            .await
    }
}
