//! The audit trail is a hash chain: what the service appends verifies, and an edited, removed
//! or unchained event is found where it is.

use huzhu::service::audit::{self, Actor, ProblemKind, VerifyReport};
use huzhu_tests::harness::{Backend, TestApp};
use huzhu_tests::on_both_backends;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;

async fn events(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) AS n FROM audit_event").await
}

async fn verify(app: &TestApp) -> VerifyReport {
    audit::verify(&app.state.db).await.expect("verify runs")
}

/// (kind, seq) of every problem, in report order.
fn problems(report: &VerifyReport) -> Vec<(ProblemKind, Option<i64>)> {
    report.problems.iter().map(|p| (p.kind, p.seq)).collect()
}

async fn sql(app: &TestApp, statement: &str) {
    app.state
        .db
        .execute_unprepared(statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Creates staff accounts `{prefix}-0` … as the admin (each audited), one request after another.
async fn create_staff(app: &TestApp, prefix: &str, n: usize) {
    let admin = app.login("admin").await;
    let unit = app.unit_id(&admin, "赛罕区教育局工会").await;
    for i in 0..n {
        let (status, body) = app
            .post("/api/v1/staff", Some(&admin), &json!({ "organisation_id": unit, "role": "union_reviewer", "name": "审计", "login": format!("{prefix}-{i}") }))
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

async fn actions_over_http_extend_a_chain_that_verifies(app: TestApp) {
    let before = events(&app).await;
    assert!(before >= 1, "the demo seeding is audited");
    create_staff(&app, "chain", 3).await;
    let total = events(&app).await;
    assert_eq!(total, before + 3);

    let report = verify(&app).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, total as u64);
    assert_eq!(report.head_seq, Some(total));
    // The newest event is the last link, and the head holds its hash.
    let last = app
        .count(&format!(
            "SELECT COUNT(*) AS n FROM audit_event WHERE seq = {total} AND action = 'staff.created' \
             AND hash = (SELECT hash FROM audit_chain_head WHERE id = 1)"
        ))
        .await;
    assert_eq!(last, 1);
}

async fn an_edited_event_is_caught_where_it_was_edited(app: TestApp) {
    create_staff(&app, "edited", 3).await;
    let total = events(&app).await;
    let target = total - 1;
    sql(
        &app,
        &format!("UPDATE audit_event SET details = '{{\"role\":\"admin\"}}' WHERE seq = {target}"),
    )
    .await;

    let report = verify(&app).await;
    assert_eq!(
        problems(&report),
        [(ProblemKind::HashMismatch, Some(target))],
        "{report:?}"
    );
    assert_eq!(report.checked, total as u64, "the walk goes on past it");
}

async fn an_event_removed_from_the_middle_is_caught(app: TestApp) {
    create_staff(&app, "middle", 3).await;
    let total = events(&app).await;
    let removed = total - 1;
    sql(
        &app,
        &format!("DELETE FROM audit_event WHERE seq = {removed}"),
    )
    .await;

    let report = verify(&app).await;
    assert_eq!(
        problems(&report),
        [(ProblemKind::MissingRows, Some(total))],
        "{report:?}"
    );
    assert_eq!(
        report.problems[0].detail,
        format!("seq {removed} is missing")
    );
}

async fn the_last_event_removed_is_caught_by_the_head(app: TestApp) {
    create_staff(&app, "tail", 2).await;
    let total = events(&app).await;
    sql(
        &app,
        &format!("DELETE FROM audit_event WHERE seq = {total}"),
    )
    .await;

    let report = verify(&app).await;
    assert_eq!(
        problems(&report),
        [(ProblemKind::HeadMismatch, Some(total))],
        "{report:?}"
    );
    assert_eq!(report.checked, (total - 1) as u64);
}

async fn an_event_written_outside_the_chain_is_reported_until_sealed(app: TestApp) {
    // As an event written before the chain existed: no seq, no hashes.
    sql(
        &app,
        "INSERT INTO audit_event (occurred_at, actor_kind, action, subject_kind, details) \
         VALUES ('2026-11-01T09:00:00.123456+00:00', 'system', 'legacy.event', 'organisation', '{}')",
    )
    .await;
    let report = verify(&app).await;
    assert_eq!(
        problems(&report),
        [(ProblemKind::UnsealedRow, None)],
        "{report:?}"
    );

    assert_eq!(audit::seal_legacy(&app.state.db).await.unwrap(), 1);
    let report = verify(&app).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, events(&app).await as u64);

    // New events chain on after the sealed one.
    create_staff(&app, "after-seal", 1).await;
    let report = verify(&app).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(audit::seal_legacy(&app.state.db).await.unwrap(), 0);
}

async fn concurrent_appends_keep_one_continuous_chain(app: TestApp) {
    let before = events(&app).await;
    // Twenty appends at once, half inside a caller's transaction (as the routes do), half on
    // the bare pool (as the deduction-file download does): they race for the chain head.
    let mut appends = tokio::task::JoinSet::new();
    for i in 0..20 {
        let db = app.state.db.clone();
        appends.spawn(async move {
            let subject = format!("parallel-{i}");
            let subject = ("staff", Some(subject.as_str()));
            let details = json!({ "i": i });
            if i % 2 == 0 {
                let txn = db.begin().await?;
                audit::record(
                    &txn,
                    &Actor::System,
                    "test.parallel",
                    subject,
                    details,
                    None,
                )
                .await?;
                txn.commit().await
            } else {
                audit::record(&db, &Actor::System, "test.parallel", subject, details, None).await
            }
        });
    }
    while let Some(done) = appends.join_next().await {
        done.expect("append task").expect("append");
    }
    assert_chain_grew_by(&app, before, 20).await;
}

async fn concurrent_audited_requests_keep_one_continuous_chain(app: TestApp) {
    let admin = app.login("admin").await;
    let unit = app.unit_id(&admin, "赛罕区教育局工会").await;
    let before = events(&app).await;
    // Twenty staff creations at once, each on its own task.
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..20 {
        let request = app
            .client
            .post(app.url("/api/v1/staff"))
            .bearer_auth(&admin)
            .json(&json!({ "organisation_id": unit, "role": "union_reviewer", "name": "并发", "login": format!("parallel-{i}") }));
        requests.spawn(async move {
            let res = request.send().await.expect("request");
            (res.status().as_u16(), res.text().await.unwrap_or_default())
        });
    }
    let mut created = 0;
    while let Some(done) = requests.join_next().await {
        let (status, body) = done.expect("request task");
        // On SQLite the staff route reads (the organisation) before it writes in a deferred
        // transaction, so a request that loses the race for the write lock fails with "database
        // is locked" before it reaches the audit trail. That predates the chain; what matters
        // here is that whatever was committed forms one chain.
        let lost_sqlite_race = app.backend == Backend::Sqlite && status == 500;
        assert!(status == 201 || lost_sqlite_race, "{status} {body}");
        created += i64::from(status == 201);
    }
    assert!(created > 0);
    assert_chain_grew_by(&app, before, created).await;
}

/// The trail holds `grown` more events than `before`, with one seq each, and verifies.
async fn assert_chain_grew_by(app: &TestApp, before: i64, grown: i64) {
    let total = events(app).await;
    assert_eq!(total, before + grown);
    let report = verify(app).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checked, total as u64);
    assert_eq!(report.head_seq, Some(total));
    assert_eq!(
        app.count("SELECT COUNT(DISTINCT seq) AS n FROM audit_event")
            .await,
        total
    );
}

on_both_backends!(
    actions_over_http_extend_a_chain_that_verifies,
    an_edited_event_is_caught_where_it_was_edited,
    an_event_removed_from_the_middle_is_caught,
    the_last_event_removed_is_caught_by_the_head,
    an_event_written_outside_the_chain_is_reported_until_sealed,
    concurrent_appends_keep_one_continuous_chain,
    concurrent_audited_requests_keep_one_continuous_chain,
);
