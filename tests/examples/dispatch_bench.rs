//! Dispatch throughput: messages per second from the outbox through the real Tencent client
//! to the local fake gateway (which verifies every request's signature), on SQLite and — when
//! `HUZHU_TEST_POSTGRES_URL` and `HUZHU_TEST_REDIS_URL` are set — on PostgreSQL + Redis.
//!
//! `cargo run --release -p huzhu-tests --example dispatch_bench [-- PER_MEMBER [sqlite|postgres]]`
//! (figures in BENCHMARKS.md).

use std::time::Instant;

use chrono::{TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use huzhu::service::raw_statement;
use huzhu::service::reminders::dispatch::{DispatchConfig, Dispatcher};
use huzhu::service::reminders::limits::NumberLimits;
use huzhu_tests::fake_sms::FakeTencent;
use huzhu_tests::harness::{Backend, spawn_app_with};
use sea_orm::ConnectionTrait;

async fn run(backend: Backend, per_member: u64) {
    let gateway = FakeTencent::start().await;
    let sms = gateway.settings();
    let Some(app) = spawn_app_with(backend, move |s| s.sms = sms).await else {
        println!("{backend:?}: skipped (no PostgreSQL/Redis configured)");
        return;
    };
    for t in huzhu::service::reminders::templates::all(&app.state.db)
        .await
        .expect("templates")
    {
        let mut t = t;
        t.tencent_template_id = Some("100001".into());
        huzhu::service::reminders::templates::update(&app.state.db, &t, "bench", Utc::now())
            .await
            .expect("template");
    }
    // Every demo member with a phone gets `per_member` payout messages (same wording: the
    // dispatcher batches them up to Tencent's 200 numbers a call).
    let now = Shanghai
        .with_ymd_and_hms(2025, 6, 2, 10, 0, 0)
        .single()
        .expect("time")
        .with_timezone(&Utc);
    let db = &app.state.db;
    let stmt = raw_statement(
        db.get_database_backend(),
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
         INSERT INTO outbox (occasion, member_id, dedupe_key, payload, created_at, due_at, attempts, status) \
         SELECT 'payout_sent', m.id, 'bench:' || CAST(m.id AS TEXT) || ':' || CAST(n.i AS TEXT), \
                '{\"amount\":\"100.00\"}', ?, ?, 0, 'pending' \
         FROM member m CROSS JOIN n WHERE m.phone_cipher IS NOT NULL",
        vec![(per_member as i64).into(), now.into(), now.into()],
    );
    let queued = db.execute_raw(stmt).await.expect("queue").rows_affected();
    let mut settings = (*app.state.settings).clone();
    settings.sms = gateway.settings();
    let dispatcher = Dispatcher::from_state(
        &app.state,
        huzhu::integrations::sms::provider(&settings).expect("provider"),
        DispatchConfig {
            batch: 1000,
            ..DispatchConfig::default()
        },
        NumberLimits {
            per_minute: u32::MAX,
            per_day: u32::MAX,
        },
    );
    let started = Instant::now();
    let report = dispatcher.run(now).await.expect("dispatch");
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{backend:?}: {queued} messages, {} accepted in {:.2} s: {:.0} messages/s ({} calls to the gateway)",
        report.accepted,
        elapsed,
        report.accepted as f64 / elapsed,
        gateway.send_requests()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    huzhu::integrations::tls::install_crypto_provider();
    let per_member: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500);
    // An optional second argument picks one backend (`sqlite` or `postgres`).
    let only = std::env::args().nth(2);
    if only.as_deref() != Some("postgres") {
        run(Backend::Sqlite, per_member).await;
    }
    if only.as_deref() != Some("sqlite") {
        run(Backend::Postgres, per_member).await;
    }
}
