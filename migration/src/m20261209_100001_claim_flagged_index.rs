//! The reviewers' "flagged" queue (`GET /claims?flagged=true`, oldest first) walked the claims
//! in id order and threw away the 98 % that are not flagged: 1,200 rows read for a page of 20
//! at 100,000 claims. A partial index holds only the flagged claims' ids (BENCHMARKS.md,
//! issue 20). Both backends read `WHERE flagged` the same way.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_claim_flagged ON claim (id) WHERE flagged",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_claim_flagged")
            .await?;
        Ok(())
    }
}
