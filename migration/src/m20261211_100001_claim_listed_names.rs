//! Who a claim is for, kept on the claim: the member's public id and name and the coverage
//! period's public id. A list item shows them, and a reviewer's queue joined every claim of
//! its page to `member` and `membership` to read them: two index look-ups per row, 126 of the
//! 150 buffers a page of 21 read, half of PostgreSQL's work on the association's queues
//! (`pgbench` on the statement with and without the two joins: about 7,300 against 14,000
//! statements a second, BENCHMARKS.md, issue 20). None of the three ever changes once the
//! claim is filed: public ids are fixed, and a member's name is the roster's, never rewritten
//! (a re-imported roster changes a member's unit or retirement, not the name; a new name is
//! a new roster row). Should a member's name ever become editable, the edit must rewrite these
//! copies in its transaction. The unit's name can be renamed, so the unit is still joined.
//!
//! The columns are added with an empty default so that existing rows can be filled in place
//! on both backends, then filled from the member and the coverage period. On PostgreSQL the
//! default is then dropped, so a writer that forgets them fails rather than storing ''.
//! SQLite cannot drop a column's default; its writers are the same code, tested on both.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns, each with the statement that fills it for an existing claim.
const COLUMNS: [(&str, &str); 3] = [
    (
        "member_pid",
        "SELECT m.pid FROM member m WHERE m.id = claim.member_id",
    ),
    (
        "member_name",
        "SELECT m.name FROM member m WHERE m.id = claim.member_id",
    ),
    (
        "membership_pid",
        "SELECT p.pid FROM membership p WHERE p.id = claim.membership_id",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        for (column, _) in COLUMNS {
            db.execute_unprepared(&format!(
                "ALTER TABLE claim ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"
            ))
            .await?;
        }
        // One pass over the claims fills all three.
        let sets: Vec<String> = COLUMNS
            .iter()
            .map(|(column, value)| format!("{column} = ({value})"))
            .collect();
        db.execute_unprepared(&format!("UPDATE claim SET {}", sets.join(", ")))
            .await?;
        if postgres {
            for (column, _) in COLUMNS {
                db.execute_unprepared(&format!(
                    "ALTER TABLE claim ALTER COLUMN {column} DROP DEFAULT"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (column, _) in COLUMNS.iter().rev() {
            db.execute_unprepared(&format!("ALTER TABLE claim DROP COLUMN {column}"))
                .await?;
        }
        Ok(())
    }
}
