use huzhu_tests::claim_flow;
use huzhu_tests::harness::{PgDatabase, TempDir, TestApp, postgres_services};
use huzhu_tests::on_both_backends_with;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::json;

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

fn in_2025(s: &mut huzhu::settings::Settings) {
    s.clock.today = chrono::NaiveDate::from_ymd_opt(2025, 9, 15);
}

/// Who each claim is for, in id order: claim public id → (member's public id, member's name,
/// period's public id), as `sql` selects them (as `c`, `m`, `n` and `p`).
type WhoFor = Vec<(String, (String, String, String))>;

async fn who_for(db: &DatabaseConnection, sql: &str) -> WhoFor {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("claims");
    rows.into_iter()
        .map(|r| {
            let get = |c: &str| r.try_get::<String>("", c).unwrap();
            (get("c"), (get("m"), get("n"), get("p")))
        })
        .collect()
}

/// Who each claim is for, as the member and the coverage period say.
async fn who_the_claims_are_for(
    db: &DatabaseConnection,
) -> Vec<(String, (String, String, String))> {
    who_for(
        db,
        "SELECT c.pid AS c, m.pid AS m, m.name AS n, p.pid AS p FROM claim c \
         JOIN member m ON m.id = c.member_id JOIN membership p ON p.id = c.membership_id \
         ORDER BY c.id",
    )
    .await
}

/// Who each claim is for, as the claim itself keeps it.
async fn who_the_claims_keep(db: &DatabaseConnection) -> Vec<(String, (String, String, String))> {
    who_for(
        db,
        "SELECT pid AS c, member_pid AS m, member_name AS n, membership_pid AS p FROM claim \
         ORDER BY id",
    )
    .await
}

/// The member and coverage period every list item and detail of `token`'s shows.
async fn who_they_show(app: &TestApp, token: &str) -> Vec<(String, (String, String, String))> {
    let (status, page) = app.get("/api/v1/claims?limit=100", Some(token)).await;
    assert_eq!(status, 200, "{page}");
    let mut shown = Vec::new();
    for item in page["items"].as_array().expect("items") {
        let id = item["id"].as_str().expect("id");
        let detail = &claim_flow::detail(app, token, id).await["claim"];
        assert_eq!(detail, item, "claim {id}");
        let text = |v: &serde_json::Value| v.as_str().expect("text").to_owned();
        shown.push((
            text(&item["id"]),
            (
                text(&item["member"]["id"]),
                text(&item["member"]["name"]),
                text(&item["membership_id"]),
            ),
        ));
    }
    shown
}

/// A claim keeps its member's public id and name and its coverage period's public id
/// (migration `m20261211_100001_claim_listed_names`, issue 20): those filed through the API,
/// those written straight into the table, and those there before the migration, which it
/// fills from the member and the period. Lists and details show what the member and the
/// period say.
async fn a_claim_keeps_who_it_is_for_and_the_migration_fills_the_claims_before_it(app: TestApp) {
    // Two members' claims, filed and submitted from their phones.
    let mut members = Vec::new();
    for (i, admitted) in [(0, "2025-03-01"), (1, "2025-04-01")] {
        let p = claim_flow::period(&app, "union-power", "nm-inpatient-2025", i).await;
        let member = app.login(&p.member_pid).await;
        let draft = claim_flow::file(
            &app,
            &member,
            &p,
            serde_json::json!({"kind": "inpatient", "admitted_on": admitted,
                "discharged_on": admitted.replace("-01", "-08"), "billed_days": 7,
                "eligible_self_pay": "12000.00", "deductible": "800.00"}),
        )
        .await;
        claim_flow::upload_required_small(&app, &member, &draft, 7 + i as u64).await;
        let claim = draft["claim"]["id"].as_str().expect("id");
        let (status, body) = claim_flow::act(&app, &member, claim, "submit", json!({})).await;
        assert_eq!(status, 200, "{body}");
        members.push((p, member));
    }
    let db = &app.state.db;
    let truth = who_the_claims_are_for(db).await;
    assert_eq!(truth.len(), 2);
    assert_eq!(who_the_claims_keep(db).await, truth);
    let clerk = app.login("union-power").await;
    assert_eq!(who_they_show(&app, &clerk).await, truth);
    for (p, member) in &members {
        let shown = who_they_show(&app, member).await;
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].1.0, p.member_pid);
        assert_eq!(shown[0].1.2, p.membership_pid);
    }

    // Before the migration the claims had no such columns; it fills them in place.
    Migrator::down(db, Some(1)).await.unwrap();
    let kept = |c: &(String, String, bool)| {
        c.0 == "claim" && ["member_pid", "member_name", "membership_pid"].contains(&c.1.as_str())
    };
    assert!(!columns(db).await.iter().any(kept));
    Migrator::up(db, None).await.unwrap();
    let now = columns(db).await;
    assert_eq!(now.iter().filter(|c| kept(c)).count(), 3);
    assert!(
        now.iter().filter(|c| kept(c)).all(|c| !c.2),
        "not null: {now:?}"
    );
    assert_eq!(who_the_claims_are_for(db).await, truth);
    assert_eq!(who_the_claims_keep(db).await, truth);
    if db.get_database_backend() == DbBackend::Postgres {
        // No default on PostgreSQL: a writer that forgot the columns would fail, not store ''.
        let defaults = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'claim' \
                 AND column_name IN ('member_pid', 'member_name', 'membership_pid') \
                 AND column_default IS NOT NULL",
            ))
            .await
            .unwrap();
        assert!(defaults.is_empty());
    }
}

on_both_backends_with!(filled, in_2025 =>
    a_claim_keeps_who_it_is_for_and_the_migration_fills_the_claims_before_it,
);
