//! The audit trail becomes a hash chain: every event carries its place in the chain (`seq`), the
//! hash of the event before it and its own hash; `audit_chain_head` holds the last seq and hash,
//! so a deleted tail shows too. Events written before this migration keep a NULL seq until the
//! application seals them at start-up (in id order).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Seq,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditChainHead {
    Table,
    Id,
    Seq,
    Hash,
}

/// The hash before the first event: 64 zeros.
const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const SEQ_INDEX: &str = "idx_audit_event_seq";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds a single column at a time.
        for col in [
            ColumnDef::new(AuditEvent::Seq)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(AuditEvent::PrevHash)
                .string_len(64)
                .null()
                .to_owned(),
            ColumnDef::new(AuditEvent::Hash)
                .string_len(64)
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvent::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(SEQ_INDEX)
                    .table(AuditEvent::Table)
                    .col(AuditEvent::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditChainHead::Table)
                    .col(integer(AuditChainHead::Id).primary_key())
                    .col(big_integer(AuditChainHead::Seq).default(0))
                    .col(string_len(AuditChainHead::Hash, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AuditChainHead::Table)
                    .columns([
                        AuditChainHead::Id,
                        AuditChainHead::Seq,
                        AuditChainHead::Hash,
                    ])
                    .values_panic([1.into(), 0i64.into(), GENESIS_HASH.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditChainHead::Table).to_owned())
            .await?;
        // SQLite refuses to drop a column that an index still names.
        manager
            .drop_index(
                Index::drop()
                    .name(SEQ_INDEX)
                    .table(AuditEvent::Table)
                    .to_owned(),
            )
            .await?;
        for col in [
            AuditEvent::Hash.into_iden(),
            AuditEvent::PrevHash.into_iden(),
            AuditEvent::Seq.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvent::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
