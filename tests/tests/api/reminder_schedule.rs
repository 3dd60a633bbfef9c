//! The renewal scan end to end, on both databases: each reminder (30 days, 7 days, grace) is
//! queued on its day and not the day before, once, at 08:00 Shanghai; renewed members and
//! members without a phone are left out; the grace window is the scheme's; two replicas
//! scanning at once queue each message once; the preview counts what the scan then queues;
//! the server scans at start.
//!
//! The demo's periods end in 2025 and before, so periods ending in 2030 are inserted here with
//! chosen dates on the demo's members (all of whom have a phone).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{member, membership, outbox};
use huzhu::service::outbox::Occasion;
use huzhu::service::reminders::schedule::{self, PreviewRow, ScanReport};
use huzhu::settings::Settings;
use huzhu_tests::harness::{Backend, TestApp};
use huzhu_tests::{on_both_backends, on_both_backends_with};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    Statement, TransactionTrait,
};
use serde_json::{Value, json};

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

/// The end of the periods the tests remind about.
fn end() -> NaiveDate {
    d("2030-06-30")
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// The demo's members, oldest first.
async fn members(app: &TestApp) -> Vec<member::Model> {
    let all = member::Entity::find()
        .order_by_asc(member::Column::Id)
        .all(&app.state.db)
        .await
        .expect("members");
    assert!(all.len() >= 20, "the demo has {} members", all.len());
    all
}

/// A period of `scheme` for `member`, `start ..= end`.
async fn period(
    app: &TestApp,
    member: &member::Model,
    scheme: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> membership::Model {
    membership::ActiveModel {
        pid: Set(uuid::Uuid::new_v4().to_string()),
        member_id: Set(member.id),
        organisation_id: Set(member.organisation_id),
        scheme_code: Set(scheme.to_owned()),
        coverage_start: Set(start),
        coverage_end: Set(end),
        status: Set("active".into()),
        consecutive_periods: Set(1),
        continuous_renewal: Set(false),
        created_at: Set(Utc::now()),
        enrolment_batch_id: Set(None),
        fee_fen: Set(9000),
        allowance_paid: Set(false),
        extension_id: Set(None),
        source: Set("group".into()),
        ledger_seq: Set(0),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .expect("insert membership")
}

/// A year's period of `scheme` ending on `end`.
async fn period_ending(
    app: &TestApp,
    member: &member::Model,
    scheme: &str,
    end: NaiveDate,
) -> membership::Model {
    period(app, member, scheme, end - days(364), end).await
}

/// The next period (renewal) of `scheme` after `previous`.
async fn renew(
    app: &TestApp,
    member: &member::Model,
    scheme: &str,
    previous: &membership::Model,
) -> membership::Model {
    let start = previous.coverage_end + days(1);
    period(app, member, scheme, start, start + days(364)).await
}

/// Scans `day` as the leader (there is no other).
async fn scan(app: &TestApp, day: NaiveDate) -> ScanReport {
    schedule::run_once_as_leader(&app.state.db, day, Utc::now())
        .await
        .expect("scan")
        .expect("no other replica scans")
}

/// The renewal messages queued for a membership, oldest first.
async fn queued_for(app: &TestApp, ms: &membership::Model) -> Vec<outbox::Model> {
    outbox::Entity::find()
        .filter(outbox::Column::Occasion.starts_with("renewal_"))
        .filter(outbox::Column::DedupeKey.ends_with(format!(":{}", ms.pid)))
        .order_by_asc(outbox::Column::Id)
        .all(&app.state.db)
        .await
        .expect("outbox")
}

/// The occasions queued for a membership.
async fn occasions_for(app: &TestApp, ms: &membership::Model) -> Vec<String> {
    queued_for(app, ms)
        .await
        .into_iter()
        .map(|o| o.occasion)
        .collect()
}

async fn renewal_rows(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) AS n FROM outbox WHERE occasion LIKE 'renewal%'")
        .await
}

fn shanghai_eight(day: NaiveDate) -> DateTime<Utc> {
    // 08:00 at UTC+8 is midnight UTC.
    day.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

async fn each_reminder_falls_due_on_its_day_and_not_the_day_before_at_eight_in_shanghai(
    app: TestApp,
) {
    let who = &members(&app).await[0];
    let ms = period_ending(&app, who, "nm-inpatient-2025", end()).await;
    let e = end();

    assert_eq!(scan(&app, e - days(31)).await.total(), 0);
    assert!(occasions_for(&app, &ms).await.is_empty());

    let report = scan(&app, e - days(30)).await;
    assert_eq!(report.renewal_due_30, 1);
    assert_eq!(report.due_at, shanghai_eight(e - days(30)));
    let rows = queued_for(&app, &ms).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.occasion, "renewal_due_30");
    assert_eq!(row.dedupe_key, format!("renewal_due_30:{}", ms.pid));
    assert_eq!(row.member_id, who.id);
    assert_eq!(row.status, "pending");
    assert_eq!(row.attempts, 0);
    assert_eq!(row.due_at, shanghai_eight(d("2030-05-31")));
    let payload: Value = serde_json::from_str(&row.payload).expect("payload is JSON");
    assert_eq!(
        payload,
        json!({"membership": ms.pid, "scheme": "nm-inpatient-2025", "coverage_end": "2030-06-30"})
    );

    // The 7-day reminder: not on end-8, on end-7.
    assert_eq!(scan(&app, e - days(8)).await.total(), 0);
    assert_eq!(occasions_for(&app, &ms).await, ["renewal_due_30"]);
    let report = scan(&app, e - days(7)).await;
    assert_eq!((report.renewal_due_7, report.total()), (1, 1));
    let seven = queued_for(&app, &ms).await.pop().expect("7-day");
    assert_eq!(seven.dedupe_key, format!("renewal_due_7:{}", ms.pid));
    assert_eq!(seven.due_at, shanghai_eight(d("2030-06-23")));

    // The grace reminder: not on the last day of the period, on the day after.
    assert_eq!(scan(&app, e).await.total(), 0);
    let report = scan(&app, e + days(1)).await;
    assert_eq!((report.renewal_grace, report.total()), (1, 1));
    let grace = queued_for(&app, &ms).await.pop().expect("grace");
    assert_eq!(grace.dedupe_key, format!("renewal_grace:{}", ms.pid));
    assert_eq!(grace.due_at, shanghai_eight(d("2030-07-01")));
    let payload: Value = serde_json::from_str(&grace.payload).expect("payload is JSON");
    assert_eq!(payload["coverage_end"], "2030-06-30");

    assert_eq!(
        occasions_for(&app, &ms).await,
        ["renewal_due_30", "renewal_due_7", "renewal_grace"]
    );
    assert_eq!(renewal_rows(&app).await, 3);
}

async fn a_missed_day_is_caught_up_and_each_reminder_still_goes_once(app: TestApp) {
    let who = &members(&app).await[1];
    let ms = period_ending(&app, who, "nm-inpatient-2025", end()).await;
    let e = end();
    // The scheduler was down until 20 days before the end: the 30-day reminder still goes.
    assert_eq!(scan(&app, e - days(20)).await.renewal_due_30, 1);
    assert_eq!(scan(&app, e - days(20)).await.total(), 0);
    assert_eq!(scan(&app, e - days(10)).await.total(), 0);
    // … and down again until 2 days before the end.
    assert_eq!(scan(&app, e - days(2)).await.renewal_due_7, 1);
    // … and until the 15th (last) day of the grace window.
    assert_eq!(scan(&app, e + days(15)).await.renewal_grace, 1);
    assert_eq!(scan(&app, e + days(15)).await.total(), 0);
    // A day later the grace window has closed: nothing more, ever.
    assert_eq!(scan(&app, e + days(16)).await.total(), 0);
    assert_eq!(queued_for(&app, &ms).await.len(), 3);

    // A second period ending after the grace window of another member was never scanned
    // inside its window: nothing is sent late.
    let other = &members(&app).await[2];
    let missed = period_ending(&app, other, "nm-inpatient-2025", e - days(40)).await;
    assert_eq!(scan(&app, e + days(16)).await.total(), 0);
    assert!(queued_for(&app, &missed).await.is_empty());
}

async fn a_member_who_renewed_gets_no_reminder_and_one_without_a_phone_none(app: TestApp) {
    let people = members(&app).await;
    let e = end();
    // Renewed into the next period of the same scheme.
    let renewed = period_ending(&app, &people[0], "nm-inpatient-2025", e).await;
    renew(&app, &people[0], "nm-inpatient-2025", &renewed).await;
    // Renewed into another scheme of the same family (nm-inpatient-2022 → nm-inpatient).
    let same_family = period_ending(&app, &people[1], "nm-inpatient-2025", e).await;
    renew(&app, &people[1], "nm-inpatient-2022", &same_family).await;
    // Joined another family (馨康): that is no renewal of the inpatient scheme.
    let other_family = period_ending(&app, &people[2], "nm-inpatient-2025", e).await;
    renew(&app, &people[2], "nm-xinkang-2025", &other_family).await;
    // An earlier period of the same scheme is no renewal either.
    let earlier_only = period_ending(&app, &people[3], "nm-inpatient-2025", e).await;
    period_ending(&app, &people[3], "nm-inpatient-2025", e - days(365)).await;
    // Renews after the 30-day reminder.
    let renews_late = period_ending(&app, &people[4], "nm-inpatient-2025", e).await;
    // No phone.
    let phoneless = period_ending(&app, &people[5], "nm-inpatient-2025", e).await;
    member::ActiveModel {
        id: Set(people[5].id),
        phone_cipher: Set(None),
        phone_lookup: Set(None),
        ..Default::default()
    }
    .update(&app.state.db)
    .await
    .expect("remove the phone");

    let preview = schedule::preview(&app.state.db, e - days(30))
        .await
        .expect("preview");
    assert_eq!(
        preview,
        [PreviewRow {
            occasion: Occasion::RenewalDue30,
            scheme_code: "nm-inpatient-2025".into(),
            messages: 3,
        }]
    );
    assert_eq!(scan(&app, e - days(30)).await.renewal_due_30, 3);
    for told in [&other_family, &earlier_only, &renews_late] {
        assert_eq!(occasions_for(&app, told).await, ["renewal_due_30"]);
    }
    renew(&app, &people[4], "nm-inpatient-2025", &renews_late).await;
    assert_eq!(scan(&app, e - days(7)).await.renewal_due_7, 2);
    assert_eq!(scan(&app, e + days(1)).await.renewal_grace, 2);
    assert_eq!(occasions_for(&app, &renews_late).await, ["renewal_due_30"]);
    for never in [&renewed, &same_family, &phoneless] {
        assert!(occasions_for(&app, never).await.is_empty());
    }
    let phoneless_rows = app
        .count(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE member_id = {}",
            people[5].id
        ))
        .await;
    assert_eq!(phoneless_rows, 0);
}

/// Publishes a new version of `code` with `grace_days`.
async fn publish_grace_days(app: &TestApp, code: &str, grace_days: u32) {
    let admin = app.login("admin").await;
    let (status, current) = app.get(&format!("/api/v1/schemes/{code}"), None).await;
    assert_eq!(status, 200, "{current}");
    let mut def = current["definition"].clone();
    def["coverage"]["grace_days"] = json!(grace_days);
    let (status, body) = app
        .post(
            &format!("/api/v1/schemes/{code}/versions"),
            Some(&admin),
            &def,
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn the_grace_window_follows_the_schemes_grace_days(app: TestApp) {
    publish_grace_days(&app, "nm-xinkang-2025", 5).await;
    let people = members(&app).await;
    let e = end();
    let inpatient = period_ending(&app, &people[0], "nm-inpatient-2025", e).await;
    let xinkang_closed = period_ending(&app, &people[1], "nm-xinkang-2025", e).await;
    let xinkang_last_day = period_ending(&app, &people[2], "nm-xinkang-2025", e + days(1)).await;

    // Six days after the end: inside 15 days, outside 5 — but the last of 5 for a period that
    // ended a day later.
    let report = scan(&app, e + days(6)).await;
    assert_eq!(report.renewal_grace, 2);
    assert_eq!(occasions_for(&app, &inpatient).await, ["renewal_grace"]);
    assert!(occasions_for(&app, &xinkang_closed).await.is_empty());
    assert_eq!(
        occasions_for(&app, &xinkang_last_day).await,
        ["renewal_grace"]
    );
    // A day later nothing is left for 馨康; 15 days of grace still hold for the inpatient scheme.
    let late = period_ending(&app, &people[3], "nm-inpatient-2025", e - days(8)).await;
    let report = scan(&app, e + days(7)).await;
    assert_eq!((report.renewal_grace, report.total()), (1, 1));
    assert_eq!(occasions_for(&app, &late).await, ["renewal_grace"]);
}

async fn two_replicas_scanning_at_once_queue_each_message_once(app: TestApp) {
    let people = members(&app).await;
    let e = end();
    for who in &people {
        period_ending(&app, who, "nm-inpatient-2025", e).await;
    }
    let expected = people.len() as u64;
    // Two replicas: two connection pools on the same database.
    let other = huzhu::db::connect(&app.state.settings)
        .await
        .expect("second pool");
    let day = e - days(7);
    let (a, b) = tokio::join!(
        schedule::run_once_as_leader(&app.state.db, day, Utc::now()),
        schedule::run_once_as_leader(&other, day, Utc::now()),
    );
    let reports: Vec<ScanReport> = [a.expect("scan a"), b.expect("scan b")]
        .into_iter()
        .flatten()
        .collect();
    assert!(!reports.is_empty(), "one replica scanned");
    assert_eq!(
        reports.iter().map(|r| r.renewal_due_7).sum::<u64>(),
        expected,
        "{reports:?}"
    );
    assert_eq!(renewal_rows(&app).await, expected as i64);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM (SELECT dedupe_key FROM outbox GROUP BY dedupe_key HAVING COUNT(*) > 1) d"
        )
        .await,
        0
    );
    // Scanning again changes nothing.
    assert_eq!(scan(&app, day).await.total(), 0);
    assert_eq!(renewal_rows(&app).await, expected as i64);

    if app.backend == Backend::Postgres {
        // While another replica holds the lock, this one skips the round.
        let txn = other.begin().await.expect("begin");
        txn.execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [schedule::LEADER_LOCK_KEY.into()],
        ))
        .await
        .expect("take the lock");
        let skipped = schedule::run_once_as_leader(&app.state.db, e + days(1), Utc::now())
            .await
            .expect("scan");
        assert_eq!(skipped, None);
        assert_eq!(renewal_rows(&app).await, expected as i64);
        txn.rollback().await.expect("release");
        let report = scan(&app, e + days(1)).await;
        assert_eq!(report.renewal_grace, expected);
    }
    other.close().await.ok();
}

async fn the_preview_counts_what_the_scan_then_queues(app: TestApp) {
    let people = members(&app).await;
    let day = d("2030-06-01");
    // 30-day: three inpatient periods ending on day+30 (due from `day` on), two ending on
    // day+20 and two 馨康 ending on day+25 (already due the day before, and queued then).
    for who in &people[0..3] {
        period_ending(&app, who, "nm-inpatient-2025", day + days(30)).await;
    }
    for who in &people[3..5] {
        period_ending(&app, who, "nm-inpatient-2025", day + days(20)).await;
    }
    for who in &people[5..7] {
        period_ending(&app, who, "nm-xinkang-2025", day + days(25)).await;
    }
    let before = scan(&app, day - days(1)).await;
    assert_eq!(
        (before.renewal_due_30, before.total()),
        (4, 4),
        "{before:?}"
    );
    // 7-day: four inpatient.
    for who in &people[7..11] {
        period_ending(&app, who, "nm-inpatient-2025", day + days(3)).await;
    }
    // Grace: two 武进 and one 银川 (on the last day of its window).
    for who in &people[11..13] {
        period_ending(&app, who, "wj-2022", day - days(4)).await;
    }
    period_ending(&app, &people[13], "yc-2022", day - days(15)).await;
    // Not due: one a day before its 30-day window opens, one a day after its grace window.
    period_ending(&app, &people[14], "nm-inpatient-2025", day + days(31)).await;
    period_ending(&app, &people[15], "yc-2022", day - days(16)).await;

    let preview = schedule::preview(&app.state.db, day)
        .await
        .expect("preview");
    let row = |occasion, scheme: &str, messages| PreviewRow {
        occasion,
        scheme_code: scheme.into(),
        messages,
    };
    assert_eq!(
        preview,
        [
            row(Occasion::RenewalDue30, "nm-inpatient-2025", 3),
            row(Occasion::RenewalDue7, "nm-inpatient-2025", 4),
            row(Occasion::RenewalGrace, "wj-2022", 2),
            row(Occasion::RenewalGrace, "yc-2022", 1),
        ]
    );
    let rows_before = renewal_rows(&app).await;
    let report = scan(&app, day).await;
    for occasion in schedule::RENEWAL_OCCASIONS {
        let previewed: u64 = preview
            .iter()
            .filter(|r| r.occasion == occasion)
            .map(|r| r.messages)
            .sum();
        assert_eq!(report.queued(occasion), previewed, "{occasion:?}");
    }
    assert_eq!(
        renewal_rows(&app).await - rows_before,
        report.total() as i64
    );
    assert_eq!(report.total(), 10);
    assert!(
        schedule::preview(&app.state.db, day)
            .await
            .expect("preview")
            .is_empty()
    );
}

async fn a_renewal_reminder_goes_again_before_the_end_of_a_free_extension(app: TestApp) {
    let who = &members(&app).await[0];
    let e = end();
    let ms = period_ending(&app, who, "nm-inpatient-2025", e).await;
    assert_eq!(scan(&app, e - days(30)).await.renewal_due_30, 1);
    // The association extends the period by six months (as it did for 2023→2024).
    let association = app.login("association").await;
    let new_end = d("2030-12-31");
    let (status, done) = app
        .post(
            "/api/v1/extensions",
            Some(&association),
            &json!({ "membership_ids": [ms.pid], "new_end": new_end, "reason": "保障期免费延长至年底" }),
        )
        .await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["membership_count"], 1);
    let extended = membership::Entity::find_by_id(ms.id)
        .one(&app.state.db)
        .await
        .expect("read")
        .expect("membership");
    assert_eq!(extended.coverage_end, new_end);
    let ext = extended.extension_id.expect("extension recorded");
    // The old 7-day day passes without a reminder: the period no longer ends then.
    assert_eq!(scan(&app, e - days(7)).await.total(), 0);
    let report = scan(&app, new_end - days(30)).await;
    assert_eq!(report.renewal_due_30, 1);
    let rows = queued_for(&app, &ms).await;
    assert_eq!(rows.len(), 1, "old key ends with the pid only");
    let again = outbox::Entity::find()
        .filter(outbox::Column::DedupeKey.eq(format!("renewal_due_30:{}:ext{ext}", ms.pid)))
        .one(&app.state.db)
        .await
        .expect("outbox")
        .expect("a second 30-day reminder");
    let payload: Value = serde_json::from_str(&again.payload).expect("payload");
    assert_eq!(payload["coverage_end"], "2030-12-31");
}

/// The server scans at start with the clock a week before the demo's 2025 periods end.
fn scheduled_a_week_before_the_demo_periods_end(s: &mut Settings) {
    s.reminders.schedule_enabled = true;
    s.reminders.scan_interval_seconds = 3600;
    s.clock.today = Some(d("2025-12-24"));
}

async fn the_server_queues_due_reminders_when_it_starts(app: TestApp) {
    let expected = app
        .count("SELECT COUNT(*) AS n FROM membership WHERE coverage_end = '2025-12-31'")
        .await;
    assert!(expected > 0);
    let mut queued = 0;
    for _ in 0..200 {
        queued = app
            .count("SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'renewal_due_7'")
            .await;
        if queued == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(queued, expected);
    let due: Vec<outbox::Model> = outbox::Entity::find()
        .filter(outbox::Column::Occasion.eq("renewal_due_7"))
        .all(&app.state.db)
        .await
        .expect("outbox");
    assert!(
        due.iter()
            .all(|o| o.due_at == shanghai_eight(d("2025-12-24")))
    );
    // Nothing else fell due on that day.
    assert_eq!(renewal_rows(&app).await, expected);
}

on_both_backends!(
    each_reminder_falls_due_on_its_day_and_not_the_day_before_at_eight_in_shanghai,
    a_missed_day_is_caught_up_and_each_reminder_still_goes_once,
    a_member_who_renewed_gets_no_reminder_and_one_without_a_phone_none,
    the_grace_window_follows_the_schemes_grace_days,
    two_replicas_scanning_at_once_queue_each_message_once,
    the_preview_counts_what_the_scan_then_queues,
    a_renewal_reminder_goes_again_before_the_end_of_a_free_extension,
);

on_both_backends_with!(
    scheduled,
    scheduled_a_week_before_the_demo_periods_end => the_server_queues_due_reminders_when_it_starts,
);
