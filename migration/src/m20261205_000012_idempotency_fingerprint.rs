//! An `Idempotency-Key` names one request: the claim keeps a fingerprint (SHA-256 of the parsed
//! request as canonical JSON) of the filing and of the submission made under each key, so a key
//! reused with another body is refused instead of answered with the first request's claim.
//! Claims filed before this migration have no fingerprint and are answered as before.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Claim {
    Table,
    IdempotencyFingerprint,
    SubmitFingerprint,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in [Claim::IdempotencyFingerprint, Claim::SubmitFingerprint] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Claim::Table)
                        .add_column(ColumnDef::new(column).string_len(64).null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Claim::SubmitFingerprint, Claim::IdempotencyFingerprint] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Claim::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
