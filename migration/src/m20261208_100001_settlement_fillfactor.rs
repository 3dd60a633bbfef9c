//! A stored settlement is written once by the import's matching and updated once when its
//! offer is decided (outcome, claim, reason — no indexed column). With full pages that update
//! cannot stay on its page, so each of the table's five indexes gets a new entry for every
//! settlement; with room left on each page it is a heap-only (HOT) update. PostgreSQL only:
//! SQLite has no such setting.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE settlement SET (fillfactor = 70)")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE settlement RESET (fillfactor)")
                .await?;
        }
        Ok(())
    }
}
