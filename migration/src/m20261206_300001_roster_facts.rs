//! What the roster said, kept (issue 19): each enrolment entry holds the workplace (工作单位),
//! department (部门), employee number (工号), remarks (备注), the insured flag as written and
//! every other column of the clerk's file (header → text, a JSON object in file order). A batch
//! can now end without confirmation — refused by the association or withdrawn by the union —
//! with who did it, when and why.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean_null, string_len_null, text_null, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EnrolmentEntry {
    Table,
    Workplace,
    Department,
    EmployeeNumber,
    Remarks,
    Insured,
    ExtraColumns,
}

#[derive(DeriveIden)]
enum EnrolmentBatch {
    Table,
    ClosedReason,
    ClosedAt,
    ClosedBy,
}

/// One column per statement: SQLite alters one column at a time.
async fn add(
    manager: &SchemaManager<'_>,
    table: impl Iden + 'static,
    column: ColumnDef,
) -> Result<(), DbErr> {
    let mut column = column;
    manager
        .alter_table(
            Table::alter()
                .table(table)
                .add_column(&mut column)
                .to_owned(),
        )
        .await
}

async fn drop(
    manager: &SchemaManager<'_>,
    table: impl Iden + 'static,
    column: impl Iden + 'static,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(column).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add(
            manager,
            EnrolmentEntry::Table,
            string_len_null(EnrolmentEntry::Workplace, 200),
        )
        .await?;
        add(
            manager,
            EnrolmentEntry::Table,
            string_len_null(EnrolmentEntry::Department, 200),
        )
        .await?;
        add(
            manager,
            EnrolmentEntry::Table,
            string_len_null(EnrolmentEntry::EmployeeNumber, 200),
        )
        .await?;
        add(
            manager,
            EnrolmentEntry::Table,
            text_null(EnrolmentEntry::Remarks),
        )
        .await?;
        add(
            manager,
            EnrolmentEntry::Table,
            boolean_null(EnrolmentEntry::Insured),
        )
        .await?;
        add(
            manager,
            EnrolmentEntry::Table,
            text_null(EnrolmentEntry::ExtraColumns),
        )
        .await?;
        add(
            manager,
            EnrolmentBatch::Table,
            text_null(EnrolmentBatch::ClosedReason),
        )
        .await?;
        add(
            manager,
            EnrolmentBatch::Table,
            timestamp_with_time_zone_null(EnrolmentBatch::ClosedAt),
        )
        .await?;
        add(
            manager,
            EnrolmentBatch::Table,
            string_len_null(EnrolmentBatch::ClosedBy, 36),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, EnrolmentBatch::Table, EnrolmentBatch::ClosedBy).await?;
        drop(manager, EnrolmentBatch::Table, EnrolmentBatch::ClosedAt).await?;
        drop(manager, EnrolmentBatch::Table, EnrolmentBatch::ClosedReason).await?;
        drop(manager, EnrolmentEntry::Table, EnrolmentEntry::ExtraColumns).await?;
        drop(manager, EnrolmentEntry::Table, EnrolmentEntry::Insured).await?;
        drop(manager, EnrolmentEntry::Table, EnrolmentEntry::Remarks).await?;
        drop(
            manager,
            EnrolmentEntry::Table,
            EnrolmentEntry::EmployeeNumber,
        )
        .await?;
        drop(manager, EnrolmentEntry::Table, EnrolmentEntry::Department).await?;
        drop(manager, EnrolmentEntry::Table, EnrolmentEntry::Workplace).await
    }
}
