use huzhu_tests::harness::{PgDatabase, TempDir, postgres_services};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

/// (table, column, nullable) of every application table.
async fn columns(db: &DatabaseConnection) -> Vec<(String, String, bool)> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT table_name AS t, column_name AS c, (is_nullable = 'YES') AS n \
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'seaql_migrations'"
            .to_owned(),
        _ => "SELECT m.name AS t, p.name AS c, (p.\"notnull\" = 0 AND p.pk = 0) AS n \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'seaql_migrations'"
            .to_owned(),
    };
    let mut out: Vec<(String, String, bool)> = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .expect("columns")
        .into_iter()
        .map(|row| {
            (
                row.try_get::<String>("", "t").unwrap(),
                row.try_get::<String>("", "c").unwrap(),
                row.try_get::<bool>("", "n").unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_same_migrations_build_the_same_schema_on_sqlite_and_postgresql() {
    let Some((pg_url, _)) = postgres_services() else {
        return;
    };
    let dir = TempDir::new();
    let sqlite = Database::connect(format!(
        "sqlite://{}?mode=rwc",
        dir.0.join("s.db").display()
    ))
    .await
    .unwrap();
    let pg_db = PgDatabase::create(&pg_url).await;
    let pg = Database::connect(&pg_db.url).await.unwrap();
    Migrator::up(&sqlite, None).await.unwrap();
    Migrator::up(&pg, None).await.unwrap();
    let on_sqlite = columns(&sqlite).await;
    assert!(on_sqlite.len() > 40, "{on_sqlite:?}");
    assert_eq!(on_sqlite, columns(&pg).await);

    // Down to nothing and up again, on both.
    for db in [&sqlite, &pg] {
        Migrator::down(db, None).await.unwrap();
        assert!(columns(db).await.is_empty());
        Migrator::up(db, None).await.unwrap();
    }
    assert_eq!(columns(&sqlite).await, on_sqlite);
    pg.close().await.ok();
}
