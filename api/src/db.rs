//! Connecting to the database and migrating it.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::settings::Settings;

/// Opens the pool. SQLite: WAL journal, foreign keys on, a busy timeout so writers queue
/// instead of failing; the data directory is created when needed.
pub async fn connect(settings: &Settings) -> Result<DatabaseConnection, DbErr> {
    if settings.database.url.is_none() {
        std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
            DbErr::Custom(format!(
                "cannot create {}: {e}",
                settings.data_dir.display()
            ))
        })?;
    }
    Database::connect(options(settings, settings.database.max_connections)).await
}

/// The HTTP workers' own pools, one per worker, on PostgreSQL (none on SQLite, where every
/// worker shares the one pool of [`connect`]): `max_connections` shared out between them,
/// each opened lazily. A worker is a thread with its own event loop; a connection belongs
/// to the loop that opened it, which is woken when PostgreSQL answers and must then wake the
/// worker that asked. With a shared pool that was most queries: a second thread woken, and
/// a cross-thread wake-up, per request (issue 20, BENCHMARKS.md). A worker's own pool opens
/// its connections the first time it needs them, from its own loop.
pub async fn worker_pools(
    settings: &Settings,
    workers: usize,
) -> Result<Vec<DatabaseConnection>, DbErr> {
    if settings.is_sqlite() || workers < 2 {
        return Ok(Vec::new());
    }
    let each = settings
        .database
        .max_connections
        .div_ceil(u32::try_from(workers).unwrap_or(u32::MAX))
        .max(1);
    let mut pools = Vec::with_capacity(workers);
    for _ in 0..workers {
        let mut options = options(settings, each);
        options.connect_lazy(true);
        pools.push(Database::connect(options).await?);
    }
    Ok(pools)
}

fn options(settings: &Settings, max_connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(settings.database_url());
    options
        .max_connections(max_connections)
        .connect_timeout(Duration::from_secs(
            settings.database.connect_timeout_seconds,
        ))
        .acquire_timeout(Duration::from_millis(
            settings.database.acquire_timeout_ms.max(1),
        ))
        // A pooled connection is pinged before use only after it sat idle for 30 s (a server
        // restart, a proxy or firewall that dropped it), not on every acquire: that ping was a
        // second round trip per request, on both processes' CPU (BENCHMARKS.md).
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .create_if_missing(true)
        });
    options
}

/// Applies every pending migration.
pub async fn migrate_up(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Begins a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes waits for other writers
/// (busy timeout) instead of failing with "database is locked" when it tries to upgrade. On
/// PostgreSQL it is a plain `BEGIN`.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn sizes(pools: &[DatabaseConnection]) -> Vec<u32> {
        pools
            .iter()
            .map(|p| {
                p.get_postgres_connection_pool()
                    .options()
                    .get_max_connections()
            })
            .collect()
    }

    // The pools are lazy: nothing listens at this address, and nothing needs to.
    #[tokio::test]
    async fn on_postgresql_each_worker_gets_its_share_of_the_connections() {
        let mut settings = Settings::default();
        settings.database.url = Some(SecretString::from(
            "postgres://postgres@127.0.0.1:9/nowhere".to_owned(),
        ));
        settings.database.max_connections = 16;
        assert_eq!(sizes(&worker_pools(&settings, 2).await.unwrap()), [8, 8]);
        assert_eq!(sizes(&worker_pools(&settings, 3).await.unwrap()), [6, 6, 6]);
        settings.database.max_connections = 2;
        assert_eq!(
            sizes(&worker_pools(&settings, 4).await.unwrap()),
            [1, 1, 1, 1]
        );
        assert!(
            worker_pools(&settings, 1).await.unwrap().is_empty(),
            "one worker keeps the one pool"
        );
    }

    #[tokio::test]
    async fn on_sqlite_every_worker_shares_the_one_pool() {
        let dir = std::env::temp_dir().join(format!("huzhu-pools-{}", uuid::Uuid::new_v4()));
        let settings = Settings {
            data_dir: dir,
            ..Settings::default()
        };
        assert!(worker_pools(&settings, 4).await.unwrap().is_empty());
    }
}
