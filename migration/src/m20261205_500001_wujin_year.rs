//! The Wujin year as data: each deduction batch records the coverage period it pays for; the
//! association's late windows (after the scheme's enrolment window closed) are recorded; and a
//! deduction taken from someone already enrolled for the period becomes a refund record.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeductionBatch {
    Table,
    CoverageStart,
    CoverageEnd,
}

#[derive(DeriveIden)]
enum DeductionWindow {
    Table,
    Id,
    SchemeCode,
    Closes,
    Reason,
    OpenedBy,
    OpenedAt,
}

#[derive(DeriveIden)]
enum DeductionRefund {
    Table,
    Id,
    Pid,
    MemberId,
    ItemId,
    BatchId,
    SchemeCode,
    AmountFen,
    Reason,
    Status,
    CreatedAt,
    RefundedAt,
    RefundedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [DeductionBatch::CoverageStart, DeductionBatch::CoverageEnd] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DeductionBatch::Table)
                        .add_column(date_null(column))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(DeductionWindow::Table)
                    .col(big_pk_auto(DeductionWindow::Id))
                    .col(string_len(DeductionWindow::SchemeCode, 64))
                    // Last day (inclusive) batches may still be created for the period.
                    .col(date(DeductionWindow::Closes))
                    .col(text(DeductionWindow::Reason))
                    .col(string_len(DeductionWindow::OpenedBy, 36))
                    .col(timestamp_with_time_zone(DeductionWindow::OpenedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_deduction_window_scheme")
                    .table(DeductionWindow::Table)
                    .col(DeductionWindow::SchemeCode)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeductionRefund::Table)
                    .col(big_pk_auto(DeductionRefund::Id))
                    .col(string_len_uniq(DeductionRefund::Pid, 36))
                    .col(big_integer(DeductionRefund::MemberId))
                    // One refund per deduction.
                    .col(big_integer_uniq(DeductionRefund::ItemId))
                    .col(big_integer(DeductionRefund::BatchId))
                    .col(string_len(DeductionRefund::SchemeCode, 64))
                    .col(big_integer(DeductionRefund::AmountFen))
                    // already_enrolled, charged_twice
                    .col(string_len(DeductionRefund::Reason, 32))
                    // due, refunded
                    .col(string_len(DeductionRefund::Status, 16))
                    .col(timestamp_with_time_zone(DeductionRefund::CreatedAt))
                    .col(timestamp_with_time_zone_null(DeductionRefund::RefundedAt))
                    .col(string_len_null(DeductionRefund::RefundedBy, 36))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_deduction_refund_member", DeductionRefund::MemberId),
            ("ix_deduction_refund_status", DeductionRefund::Status),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(DeductionRefund::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeductionRefund::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DeductionWindow::Table).to_owned())
            .await?;
        for column in [DeductionBatch::CoverageEnd, DeductionBatch::CoverageStart] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DeductionBatch::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
