//! Reminders dispatched through local fake Tencent and Aliyun gateways that fail half of the
//! calls and time out on some: every due message is delivered exactly once, a dispatcher
//! stopped mid-batch and restarted sends no duplicate, nor do dispatchers that overlap and
//! crash at any step, quiet hours defer, per-number limits hold over any 60 s, receipts are
//! recorded. Each test runs on SQLite and on PostgreSQL + Redis.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use huzhu::service::outbox::{self, Occasion};
use huzhu::service::reminders::dispatch::{
    DispatchConfig, Dispatcher, Fault, FaultHook, Step, message_id,
};
use huzhu::service::reminders::limits::NumberLimits;
use huzhu::settings::SmsSettings;
use huzhu_tests::fake_sms::{FakeAliyun, FakeGateway, FakeTencent, Pattern};
use huzhu_tests::harness::{Backend, TestApp, spawn_app_with};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;

const RECEIPT_SECRET: &str = "receipts-3c1f9a7e5b2d4c6a8e0f";

fn shanghai(s: &str) -> DateTime<Utc> {
    Shanghai
        .from_local_datetime(&NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time"))
        .earliest()
        .expect("local time")
        .with_timezone(&Utc)
}

/// A moment in Asia/Shanghai to the second.
fn shanghai_at(s: &str) -> DateTime<Utc> {
    Shanghai
        .from_local_datetime(&NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("time"))
        .earliest()
        .expect("local time")
        .with_timezone(&Utc)
}

/// A fault hook from an async function of the step.
fn hook<F, Fut>(f: F) -> FaultHook
where
    F: Fn(Step) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Fault> + Send + 'static,
{
    Arc::new(move |step| Box::pin(f(step)))
}

/// Something that has happened, for another dispatcher to wait on.
#[derive(Clone)]
struct Latch(Arc<tokio::sync::watch::Sender<bool>>);

impl Latch {
    fn new() -> Self {
        Latch(Arc::new(tokio::sync::watch::channel(false).0))
    }

    fn set(&self) {
        self.0.send_replace(true);
    }

    /// Waits until set, at most 10 s: a test whose order did not happen fails on its
    /// assertions rather than hanging.
    async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), rx.wait_for(|v| *v)).await;
    }
}

/// The status of one message.
async fn status_of(app: &TestApp, id: &str) -> String {
    statuses(app)
        .await
        .into_iter()
        .find(|(m, _)| m == id)
        .map(|(_, s)| s)
        .unwrap_or_default()
}

async fn app_with(backend: Backend, sms: SmsSettings) -> Option<TestApp> {
    spawn_app_with(backend, move |s| {
        s.sms = sms;
        s.sms.receipt_secret = Some(secrecy::SecretString::from(RECEIPT_SECRET.to_owned()));
    })
    .await
}

/// Configures every template with an id at the gateway, through the administrators' API.
async fn configure_templates(app: &TestApp) {
    let admin = app.login("admin").await;
    let (status, templates) = app.get("/api/v1/sms-templates", Some(&admin)).await;
    assert_eq!(status, 200, "{templates}");
    for (i, t) in templates.as_array().expect("templates").iter().enumerate() {
        let occasion = t["occasion"].as_str().expect("occasion");
        let (status, body) = app
            .send_json(
                reqwest::Method::PUT,
                &format!("/api/v1/sms-templates/{occasion}"),
                Some(&admin),
                &json!({
                    "tencent_template_id": format!("{}", 100_000 + i),
                    "aliyun_template_code": format!("SMS_{}", 100_000 + i),
                    "body_zh": t["body_zh"],
                    "params": t["params"],
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// Demo members with a phone, by id.
async fn members(app: &TestApp, n: usize) -> Vec<i64> {
    let rows = entity::member::Entity::find()
        .filter(entity::member::Column::PhoneCipher.is_not_null())
        .order_by_asc(entity::member::Column::Id)
        .all(&app.state.db)
        .await
        .expect("members");
    assert!(rows.len() >= n, "only {} members with phones", rows.len());
    rows.into_iter().take(n).map(|m| m.id).collect()
}

/// Queues one payout message per member (amounts in three groups: three kinds of calls).
async fn queue_payouts(app: &TestApp, people: &[i64], due: DateTime<Utc>) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, member) in people.iter().enumerate() {
        let payload =
            json!({ "claim": format!("c{i}"), "amount": format!("{}.00", 100 * (1 + i % 3)) });
        ids.push(queue_payout(app, *member, &format!("payout_sent:test-{i}"), payload, due).await);
    }
    ids
}

/// Queues one payout message under `key`; its message id.
async fn queue_payout(
    app: &TestApp,
    member: i64,
    key: &str,
    payload: serde_json::Value,
    due: DateTime<Utc>,
) -> String {
    let queued = outbox::enqueue(
        &app.state.db,
        Occasion::PayoutSent,
        member,
        key,
        payload,
        due,
    )
    .await
    .expect("enqueue");
    assert!(queued);
    let row = entity::outbox::Entity::find()
        .filter(entity::outbox::Column::DedupeKey.eq(key))
        .one(&app.state.db)
        .await
        .expect("row")
        .expect("queued row");
    message_id(row.id)
}

/// A dispatcher against the gateway. Providers are asked about unknown outcomes around the
/// real time, so tests that exercise look-ups run on the real clock with quiet hours off and
/// no retry delay; `pretend_time` keeps quiet hours for tests that move the clock.
fn dispatcher(app: &TestApp, gateway_settings: &SmsSettings) -> Dispatcher {
    // Per-number limits have their own test; here a retried message may go in the same minute.
    let limits = NumberLimits {
        per_minute: 100,
        per_day: 100,
    };
    dispatcher_with(app, gateway_settings, false, limits)
}

fn pretend_time_dispatcher(app: &TestApp, gateway_settings: &SmsSettings) -> Dispatcher {
    dispatcher_with(app, gateway_settings, true, NumberLimits::default())
}

fn dispatcher_with(
    app: &TestApp,
    gateway_settings: &SmsSettings,
    quiet_hours: bool,
    limits: NumberLimits,
) -> Dispatcher {
    let mut settings = (*app.state.settings).clone();
    settings.sms = gateway_settings.clone();
    let provider = huzhu::integrations::sms::provider(&settings).expect("provider");
    Dispatcher::from_state(
        &app.state,
        provider,
        DispatchConfig {
            lookup_after: Duration::zero(),
            batch: 50,
            quiet_hours,
            backoff_base: Duration::zero(),
            lease: Duration::seconds(1),
            ..DispatchConfig::default()
        },
        limits,
    )
}

async fn statuses(app: &TestApp) -> Vec<(String, String)> {
    entity::outbox::Entity::find()
        .order_by_asc(entity::outbox::Column::Id)
        .all(&app.state.db)
        .await
        .expect("outbox")
        .into_iter()
        .map(|r| {
            let status = match r.last_error_code {
                Some(code) if r.status == "failed" => format!("failed ({code})"),
                _ => r.status,
            };
            (message_id(r.id), status)
        })
        .collect()
}

/// The status and due time of these messages only.
async fn statuses_of(app: &TestApp, ids: &[String]) -> Vec<(String, String, DateTime<Utc>)> {
    let ids: Vec<i64> = ids
        .iter()
        .map(|id| id[2..].parse().expect("outbox id"))
        .collect();
    entity::outbox::Entity::find()
        .filter(entity::outbox::Column::Id.is_in(ids))
        .all(&app.state.db)
        .await
        .expect("outbox")
        .into_iter()
        .map(|r| (message_id(r.id), r.status, r.due_at))
        .collect()
}

/// Runs the dispatcher until nothing is left to do.
async fn dispatch_until_settled(d: &Dispatcher, app: &TestApp) {
    for _ in 0..40 {
        d.run(Utc::now()).await.expect("dispatch");
        let open = statuses(app)
            .await
            .into_iter()
            .filter(|(_, s)| matches!(s.as_str(), "pending" | "sending" | "uncertain"))
            .count();
        if open == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("messages still open: {:?}", statuses(app).await);
}

async fn exactly_once_through(app: TestApp, gateway: &FakeGateway) {
    configure_templates(&app).await;
    let people = members(&app, 24).await;
    let ids = queue_payouts(&app, &people, Utc::now()).await;
    // Half of the calls fail, some time out after the gateway took the messages, some before.
    gateway.fail_every(2);
    gateway.time_out_after_accepting(Pattern::Next(2));
    gateway.time_out_before_accepting(Pattern::Next(1));
    let d = dispatcher(&app, &gateway.settings());
    dispatch_until_settled(&d, &app).await;
    let settled = statuses(&app).await;
    for id in &ids {
        assert_eq!(gateway.delivered(id), 1, "{id} delivered once: {settled:?}");
    }
    assert!(
        // Looked-up messages carry the delivery report the gateway's record holds.
        statuses(&app)
            .await
            .iter()
            .all(|(_, s)| s == "accepted" || s == "delivered"),
        "{:?}",
        statuses(&app).await
    );
    assert!(gateway.send_requests() > 3, "the failures were exercised");
}

async fn every_due_message_is_delivered_exactly_once_through_tencent(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    exactly_once_through(app, &gateway).await;
}

async fn every_due_message_is_delivered_exactly_once_through_aliyun(backend: Backend) {
    let gateway = FakeAliyun::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    exactly_once_through(app, &gateway).await;
}

async fn a_dispatcher_stopped_mid_batch_and_restarted_sends_no_duplicate(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let people = members(&app, 9).await;
    let start = Utc::now();
    let ids = queue_payouts(&app, &people, start).await;
    // The first call is taken by the gateway and then hangs; the dispatcher is stopped while
    // waiting for the answer, its other calls never made.
    gateway.time_out_after_accepting(Pattern::Next(1));
    let d = Arc::new(dispatcher(&app, &gateway.settings()));
    let running = {
        let d = d.clone();
        tokio::spawn(async move { d.run_once(start).await })
    };
    for _ in 0..100 {
        if gateway.send_requests() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    running.abort();
    let _ = running.await;
    let sending = statuses(&app)
        .await
        .into_iter()
        .filter(|(_, s)| s == "sending")
        .count();
    assert!(sending > 0, "stopped while holding messages");
    // A new dispatcher, after the lease: asks before sending anything again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let restarted = dispatcher(&app, &gateway.settings());
    dispatch_until_settled(&restarted, &app).await;
    for id in &ids {
        assert_eq!(gateway.delivered(id), 1, "{id} delivered once");
    }
    assert!(gateway.lookups() > 0, "the provider was asked");
}

async fn two_dispatchers_reconciling_one_expired_lease_send_it_once(backend: Backend) {
    let gateway = FakeAliyun::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let people = members(&app, 1).await;
    let killed_at = Utc::now() - Duration::seconds(10);
    let ids = queue_payouts(&app, &people, killed_at).await;
    // A server killed right after leasing: the message stays `sending` under its lease.
    let mut killed = dispatcher(&app, &gateway.settings());
    killed.faults = Some(hook(|step| async move {
        if step == Step::Leased {
            Fault::Crash
        } else {
            Fault::Continue
        }
    }));
    assert!(killed.run_once(killed_at).await.is_err(), "killed");
    assert_eq!(status_of(&app, &ids[0]).await, "sending");
    // After the lease, the restarted server (A) and `reminders run-once` (B) both reconcile.
    // Both find the message expired; B's look-up answers only once A has put it back and
    // leased it afresh, and A's call waits until B is done.
    let (b_read, a_leased, b_done) = (Latch::new(), Latch::new(), Latch::new());
    let mut a = dispatcher(&app, &gateway.settings());
    a.faults = Some(hook({
        let (b_read, a_leased, b_done) = (b_read.clone(), a_leased.clone(), b_done.clone());
        move |step| {
            let (b_read, a_leased, b_done) = (b_read.clone(), a_leased.clone(), b_done.clone());
            async move {
                match step {
                    Step::Reconciling => b_read.wait().await,
                    Step::Leased => a_leased.set(),
                    Step::Sending => b_done.wait().await,
                    _ => {}
                }
                Fault::Continue
            }
        }
    }));
    let mut b = dispatcher(&app, &gateway.settings());
    b.faults = Some(hook({
        let (b_read, a_leased) = (b_read.clone(), a_leased.clone());
        move |step| {
            let (b_read, a_leased) = (b_read.clone(), a_leased.clone());
            async move {
                match step {
                    Step::Reconciling => b_read.set(),
                    Step::LookedUp => a_leased.wait().await,
                    _ => {}
                }
                Fault::Continue
            }
        }
    }));
    let now = Utc::now();
    let a_run = tokio::spawn(async move { a.run_once(now).await });
    let b_report = b.run_once(now).await.expect("B's round");
    b_done.set();
    let a_report = a_run.await.expect("A's task").expect("A's round");
    assert_eq!(
        gateway.delivered(&ids[0]),
        1,
        "sent once while both ran: A {a_report:?}, B {b_report:?}, {:?}",
        statuses(&app).await
    );
    assert_eq!(
        status_of(&app, &ids[0]).await,
        "accepted",
        "A's outcome kept"
    );
    dispatch_until_settled(&dispatcher(&app, &gateway.settings()), &app).await;
    assert_eq!(gateway.delivered(&ids[0]), 1, "and never again");
}

async fn a_dispatcher_paused_past_its_lease_sends_nothing_another_took_over(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let people = members(&app, 2).await;
    let ids = queue_payouts(&app, &people, Utc::now()).await;
    // The holder stops after leasing (a long pause, a stalled connection) for longer than
    // its lease of 1 s.
    let resume = Latch::new();
    let mut holder = dispatcher(&app, &gateway.settings());
    holder.faults = Some(hook({
        let resume = resume.clone();
        move |step| {
            let resume = resume.clone();
            async move {
                if step == Step::Leased {
                    resume.wait().await;
                }
                Fault::Continue
            }
        }
    }));
    let held = tokio::spawn(async move { holder.run_once(Utc::now()).await });
    for _ in 0..200 {
        if status_of(&app, &ids[0]).await == "sending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status_of(&app, &ids[0]).await, "sending", "leased");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    // Another dispatcher finds the lease run out, learns the messages never went, sends them.
    let other = dispatcher(&app, &gateway.settings());
    let report = other.run_once(Utc::now()).await.expect("the other's round");
    assert_eq!(report.accepted, 2, "{report:?}");
    resume.set();
    let report = held.await.expect("holder's task").expect("holder's round");
    for id in &ids {
        assert_eq!(
            gateway.delivered(id),
            1,
            "{id} once: the holder sent nothing it no longer held ({report:?})"
        );
        assert_eq!(status_of(&app, id).await, "accepted");
    }
}

async fn one_message_per_number_in_any_sixty_seconds(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let person = members(&app, 1).await[0];
    let first = shanghai_at("2025-06-02 08:00:38");
    let ids = queue_payouts(&app, &[person, person, person], first).await;
    let d = pretend_time_dispatcher(&app, &gateway.settings());
    let report = d.run(first).await.expect("dispatch");
    assert_eq!(report.accepted, 1, "{report:?}");
    // 22 s later, in the next calendar minute: still inside the 60 s after the first.
    let report = d
        .run(shanghai_at("2025-06-02 08:01:00"))
        .await
        .expect("dispatch");
    assert_eq!(
        report.accepted, 0,
        "08:01:00 is 22 s after 08:00:38: {report:?}"
    );
    let waiting = entity::outbox::Entity::find()
        .filter(entity::outbox::Column::Status.eq("pending"))
        .all(&app.state.db)
        .await
        .expect("pending");
    assert_eq!(waiting.len(), 2);
    for w in &waiting {
        assert_eq!(
            w.due_at,
            shanghai_at("2025-06-02 08:01:38"),
            "60 s after the first"
        );
    }
    let report = d
        .run(shanghai_at("2025-06-02 08:01:38"))
        .await
        .expect("dispatch");
    assert_eq!(report.accepted, 1, "{report:?}");
    let report = d
        .run(shanghai_at("2025-06-02 08:02:37"))
        .await
        .expect("dispatch");
    assert_eq!(report.accepted, 0, "{report:?}");
    let report = d
        .run(shanghai_at("2025-06-02 08:02:38"))
        .await
        .expect("dispatch");
    assert_eq!(report.accepted, 1, "{report:?}");
    let sent: Vec<_> = gateway.sent();
    assert_eq!(sent.len(), 3);
    for id in &ids {
        assert_eq!(gateway.delivered(id), 1);
    }
}

/// Scenarios of [`overlapping_dispatchers_that_crash_anywhere_send_each_message_once`] unless
/// `HUZHU_TEST_CRASH_ITERATIONS` says otherwise: sized for CI.
const CRASH_ITERATIONS: usize = 150;

/// Crashes, at random steps, dispatchers leasing the same messages at the same time.
struct Crashes {
    /// Chance of a crash at each step.
    chance: f64,
    count: Arc<std::sync::atomic::AtomicUsize>,
    /// Per step, how often one was injected there.
    at: Arc<std::sync::Mutex<std::collections::HashMap<Step, usize>>>,
}

impl Crashes {
    fn hook(&self) -> FaultHook {
        let (chance, count, at) = (self.chance, self.count.clone(), self.at.clone());
        Arc::new(move |step| {
            let crash = rand::random::<f64>() < chance;
            if crash {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *at.lock().expect("steps").entry(step).or_default() += 1;
            }
            // Widen the interleavings: sometimes let the other dispatchers run first.
            let pause = rand::random::<f64>() < 0.3;
            let wait = std::time::Duration::from_micros(rand::random::<u64>() % 1500);
            Box::pin(async move {
                if crash {
                    return Fault::Crash;
                }
                if pause {
                    tokio::time::sleep(wait).await;
                }
                Fault::Continue
            })
        })
    }
}

/// Any number of dispatchers over one database — replicas, `run-once`, restarted processes —
/// crashing at any step between lease and outcome (and around look-ups), with a gateway that
/// fails a third of its calls and sometimes times out before or after taking the messages:
/// every message reaches its gateway exactly once. Rounds run the dispatchers together; time
/// moves on between rounds (by a lease, so a crashed holder's messages are reconciled) on a
/// clock set minutes behind the real one, where the gateways keep their records.
/// `HUZHU_TEST_CRASH_ITERATIONS` scenarios (default [`CRASH_ITERATIONS`], a few seconds).
async fn overlapping_dispatchers_that_crash_anywhere_send_each_message_once(backend: Backend) {
    const DISPATCHERS: usize = 3;
    const MESSAGES: usize = 8;
    let iterations_wanted: usize = std::env::var("HUZHU_TEST_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CRASH_ITERATIONS);
    let tencent = FakeTencent::start().await;
    let aliyun = FakeAliyun::start().await;
    let Some(app) = app_with(backend, tencent.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let people = members(&app, 24).await;
    let lease = Duration::seconds(10);
    let config = DispatchConfig {
        lookup_after: Duration::zero(),
        batch: 4,
        quiet_hours: false,
        backoff_base: Duration::zero(),
        lease,
        max_attempts: 1000,
        ..DispatchConfig::default()
    };
    let limits = NumberLimits {
        per_minute: 1000,
        per_day: 1000,
    };
    let crashes = Crashes {
        chance: 0.05,
        count: Arc::default(),
        at: Arc::default(),
    };
    // Each dispatcher's provider client, built once per gateway (building one takes a while);
    // time-outs cost their length, so short ones keep the iterations quick.
    let clients = |gateway: &FakeGateway| {
        let mut settings = (*app.state.settings).clone();
        settings.sms = gateway.settings();
        settings.sms.timeout_ms = 150;
        settings.sms.connect_timeout_ms = 150;
        (0..DISPATCHERS)
            .map(|_| huzhu::integrations::sms::provider(&settings).expect("provider"))
            .collect::<Vec<_>>()
    };
    let (tencent_clients, aliyun_clients) = (clients(&tencent), clients(&aliyun));
    let started = std::time::Instant::now();
    let (mut iterations, mut rounds, mut messages, mut runs_done) =
        (0usize, 0usize, 0usize, 0usize);
    while iterations < iterations_wanted {
        iterations += 1;
        let (gateway, other, providers): (&FakeGateway, &FakeGateway, _) = if iterations % 2 == 0 {
            (&tencent, &aliyun, &tencent_clients)
        } else {
            (&aliyun, &tencent, &aliyun_clients)
        };
        gateway.fail_every(if iterations % 3 == 0 { 0 } else { 3 });
        match iterations % 4 {
            1 => gateway.time_out_after_accepting(Pattern::Next(1)),
            3 => gateway.time_out_before_accepting(Pattern::Next(1)),
            _ => {}
        }
        // This iteration's clock: four minutes behind, moved on by whole leases.
        let origin = Utc::now() - Duration::minutes(4);
        let ticking = std::time::Instant::now();
        let mut jumped = Duration::zero();
        let clock = |jumped: Duration| {
            origin + jumped + Duration::from_std(ticking.elapsed()).expect("elapsed")
        };
        let mut ids = Vec::new();
        for i in 0..MESSAGES {
            let member = people[(iterations * MESSAGES + i) % people.len()];
            let key = format!("payout_sent:overlap-{iterations}-{i}");
            let payload = json!({
                "claim": format!("o{iterations}-{i}"),
                "amount": format!("{}.00", 10 * (1 + i % 3)),
            });
            ids.push(queue_payout(&app, member, &key, payload, clock(jumped)).await);
        }
        messages += MESSAGES;
        for round in 0.. {
            rounds += 1;
            // Crashes stop after a while, so that every iteration settles.
            let chance = if round < 10 { crashes.chance } else { 0.0 };
            let runs: Vec<_> = providers
                .iter()
                .map(|provider| {
                    let mut d = Dispatcher::from_state(
                        &app.state,
                        provider.clone(),
                        config.clone(),
                        limits,
                    );
                    d.faults = Some(
                        Crashes {
                            chance,
                            count: crashes.count.clone(),
                            at: crashes.at.clone(),
                        }
                        .hook(),
                    );
                    let now = clock(jumped);
                    tokio::spawn(async move { d.run_once(now).await })
                })
                .collect();
            for run in runs {
                runs_done += 1;
                match run.await.expect("dispatcher task") {
                    Ok(_) => {}
                    Err(e) if e.to_string().contains("injected crash") => {}
                    Err(e) => panic!("dispatcher failed: {e}"),
                }
            }
            let open: Vec<(String, String, DateTime<Utc>)> = statuses_of(&app, &ids)
                .await
                .into_iter()
                // A look-up finds the gateway's delivery report: `delivered`.
                .filter(|(_, s, _)| s != "accepted" && s != "delivered")
                .collect();
            if open.is_empty() {
                break;
            }
            assert!(
                round < 40,
                "iteration {iterations} does not settle: {open:?}"
            );
            // A crashed holder's messages wait for its lease to run out.
            if open.iter().any(|(_, s, _)| s == "sending") {
                jumped += lease + Duration::seconds(1);
                assert!(
                    clock(jumped) < Utc::now(),
                    "the clock stays behind the gateways' (iteration {iterations})"
                );
            }
            // An uncertain message the gateway could not tell about (a look-up that timed out
            // on a busy machine) is asked again later, backing off as long as it has waited:
            // it is made due now rather than the clock moved on (which would soon overtake
            // the gateways'). Between rounds no dispatcher runs.
            let later: Vec<i64> = open
                .iter()
                .filter(|(_, s, due)| s != "sending" && *due > clock(jumped))
                .map(|(id, _, _)| id[2..].parse().expect("outbox id"))
                .collect();
            if !later.is_empty() {
                entity::outbox::Entity::update_many()
                    .col_expr(
                        entity::outbox::Column::DueAt,
                        sea_orm::sea_query::Expr::value(clock(jumped)),
                    )
                    .filter(entity::outbox::Column::Id.is_in(later))
                    .exec(&app.state.db)
                    .await
                    .expect("due now");
            }
        }
        for id in &ids {
            assert_eq!(
                (gateway.delivered(id), other.delivered(id)),
                (1, 0),
                "{id} exactly once (iteration {iterations}; crashes at {:?})",
                crashes.at.lock().expect("steps")
            );
        }
        // Settled and checked: the next scenario starts with gateways that hold only its own
        // messages (each number gets one every few scenarios; a status query lists 100).
        tencent.forget_sent();
        aliyun.forget_sent();
    }
    let crashed = crashes.count.load(std::sync::atomic::Ordering::Relaxed);
    let at = crashes.at.lock().expect("steps").clone();
    println!(
        "{backend:?}: {iterations} iterations in {:.1?}, {rounds} rounds, {runs_done} dispatcher \
         runs, {messages} messages, {crashed} crashes at {at:?}, {} + {} look-ups",
        started.elapsed(),
        tencent.lookups(),
        aliyun.lookups()
    );
    for step in [
        Step::Reconciling,
        Step::LookedUp,
        Step::Leased,
        Step::SlotTaken,
        Step::Sending,
        Step::Sent,
        Step::Recorded,
    ] {
        assert!(at.contains_key(&step), "no crash at {step:?}: {at:?}");
    }
    assert!(tencent.lookups() > 0 && aliyun.lookups() > 0);
}

/// One Tencent call whose numbers meet every fate — taken, refused for good, refused for now,
/// not known to the gateway itself — stores each message's own outcome. The outcomes are one
/// statement, still a compare-and-set on each row's lease token: a message another dispatcher
/// took over while the call was out keeps the new holder's state.
async fn a_mixed_call_stores_each_messages_own_outcome(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let people = members(&app, 6).await;
    let mut ids = Vec::new();
    for (i, member) in people.iter().enumerate() {
        // One amount: one template and parameters, so one call.
        let payload = json!({ "claim": format!("m{i}"), "amount": "100.00" });
        let key = format!("payout_sent:mixed-{i}");
        ids.push(queue_payout(&app, *member, &key, payload, Utc::now()).await);
    }
    let refusals = [
        (1, "InvalidParameterValue.IncorrectPhoneNumber"),
        (2, "LimitExceeded.PhoneNumberDailyLimit"),
        (3, "InternalError.Timeout"),
    ];
    for (i, code) in refusals {
        gateway.reject_number(&phone_of(&app, people[i]).await, code);
    }
    // Message 4 changes hands while the call is out (its lease token is no longer ours).
    let taken_over: i64 = ids[4][2..].parse().expect("outbox id");
    let mut d = dispatcher(&app, &gateway.settings());
    let db = app.state.db.clone();
    d.faults = Some(hook(move |step| {
        let db = db.clone();
        async move {
            if step == Step::Sent {
                entity::outbox::Entity::update_many()
                    .col_expr(
                        entity::outbox::Column::LeaseToken,
                        sea_orm::sea_query::Expr::value("another-dispatcher"),
                    )
                    .filter(entity::outbox::Column::Id.eq(taken_over))
                    .exec(&db)
                    .await
                    .expect("take over");
            }
            Fault::Continue
        }
    }));
    let report = d.run_once(Utc::now()).await.expect("dispatch");
    assert_eq!(gateway.send_requests(), 1, "one call: {report:?}");
    assert_eq!(
        (report.failed, report.deferred, report.uncertain),
        (1, 1, 1),
        "{report:?}"
    );
    let rows: std::collections::HashMap<String, entity::outbox::Model> =
        entity::outbox::Entity::find()
            .all(&app.state.db)
            .await
            .expect("outbox")
            .into_iter()
            .map(|r| (message_id(r.id), r))
            .collect();
    let sent = gateway.sent();
    let serial = |id: &str| {
        sent.iter()
            .find(|s| s.message_id == id)
            .map(|s| s.provider_id.clone())
    };
    for i in [0, 5] {
        let row = &rows[&ids[i]];
        assert_eq!(row.status, "accepted", "{row:?}");
        assert_eq!(
            row.provider_id,
            serial(&ids[i]),
            "its own SerialNo: {row:?}"
        );
        assert!(row.dispatched_at.is_some() && row.lease_until.is_none());
    }
    assert_ne!(rows[&ids[0]].provider_id, rows[&ids[5]].provider_id);
    let failed = &rows[&ids[1]];
    assert_eq!(failed.status, "failed", "{failed:?}");
    assert_eq!(
        failed.last_error_code.as_deref(),
        Some("InvalidParameterValue.IncorrectPhoneNumber")
    );
    assert!(failed.provider_id.is_none() && failed.lease_until.is_none());
    let deferred = &rows[&ids[2]];
    assert_eq!(deferred.status, "pending", "{deferred:?}");
    assert_eq!(
        deferred.last_error_code.as_deref(),
        Some("LimitExceeded.PhoneNumberDailyLimit")
    );
    assert!(deferred.lease_token.is_none() && deferred.lease_until.is_none());
    assert_eq!(deferred.attempts, 1, "the refused attempt counts");
    let uncertain = &rows[&ids[3]];
    assert_eq!(uncertain.status, "uncertain", "{uncertain:?}");
    assert_eq!(
        uncertain.last_error_code.as_deref(),
        Some("outcome_unknown")
    );
    assert!(
        uncertain
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("InternalError.Timeout")),
        "{uncertain:?}"
    );
    assert!(
        uncertain.lease_token.is_some(),
        "kept for the look-up's compare-and-set"
    );
    let other = &rows[&ids[4]];
    assert_eq!(other.status, "sending", "left to its new holder: {other:?}");
    assert_eq!(other.lease_token.as_deref(), Some("another-dispatcher"));
    assert!(other.provider_id.is_none());
    for i in [0, 4, 5] {
        assert_eq!(gateway.delivered(&ids[i]), 1);
    }
    for i in [1, 2, 3] {
        assert_eq!(gateway.delivered(&ids[i]), 0);
    }
}

async fn quiet_hours_defer_until_eight(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let people = members(&app, 3).await;
    let night = shanghai("2025-06-02 22:30");
    let ids = queue_payouts(&app, &people, night).await;
    let d = pretend_time_dispatcher(&app, &gateway.settings());
    let report = d.run(night).await.expect("dispatch");
    assert!(report.quiet);
    assert_eq!(gateway.send_requests(), 0);
    let report = d.run(shanghai("2025-06-03 07:59")).await.expect("dispatch");
    assert!(report.quiet);
    let report = d.run(shanghai("2025-06-03 08:00")).await.expect("dispatch");
    assert_eq!(report.accepted, 3);
    for id in &ids {
        assert_eq!(gateway.delivered(id), 1);
    }
}

async fn per_number_limits_hold(backend: Backend) {
    let gateway = FakeAliyun::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let person = members(&app, 1).await[0];
    let start = shanghai("2025-06-02 09:00");
    // Twelve messages for one number.
    let same: Vec<i64> = std::iter::repeat_n(person, 12).collect();
    let ids = queue_payouts(&app, &same, start).await;
    let d = pretend_time_dispatcher(&app, &gateway.settings());
    let first = d.run(start).await.expect("dispatch");
    assert_eq!(first.accepted, 1, "one a minute: {first:?}");
    assert_eq!(first.deferred, 11);
    // Minute by minute, one more each time, up to ten in the day.
    for minute in 1..15 {
        d.run(start + Duration::minutes(minute))
            .await
            .expect("dispatch");
    }
    let sent: usize = ids.iter().map(|id| gateway.delivered(id)).sum();
    assert_eq!(sent, 10, "ten a day");
    let waiting = entity::outbox::Entity::find()
        .filter(entity::outbox::Column::Status.eq("pending"))
        .all(&app.state.db)
        .await
        .expect("pending");
    assert_eq!(waiting.len(), 2);
    for w in &waiting {
        assert_eq!(w.due_at, shanghai("2025-06-03 08:00"), "tomorrow at eight");
    }
}

async fn receipts_are_recorded_and_a_failed_message_can_be_resent(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let people = members(&app, 2).await;
    let ids = queue_payouts(&app, &people, Utc::now()).await;
    let d = dispatcher(&app, &gateway.settings());
    // The second number is not a valid one at the gateway: failed for good, not retried.
    let phones: Vec<String> = {
        let mut out = Vec::new();
        for id in &people {
            let m = entity::member::Entity::find_by_id(*id)
                .one(&app.state.db)
                .await
                .expect("member")
                .expect("member row");
            out.push(
                app.state
                    .pii
                    .open(
                        huzhu::auth::crypto::PiiKind::Phone,
                        &m.phone_cipher.expect("phone"),
                    )
                    .expect("open"),
            );
        }
        out
    };
    gateway.reject_number(&phones[1], "InvalidParameterValue.IncorrectPhoneNumber");
    dispatch_until_settled(&d, &app).await;
    let officer = app.login("association").await;
    let (status, log) = app.get("/api/v1/messages", Some(&officer)).await;
    assert_eq!(status, 200, "{log}");
    let by_id = |id: &str| {
        log["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {log}"))
    };
    let good = by_id(&ids[0]);
    assert_eq!(good["status"], "accepted");
    let failed = by_id(&ids[1]);
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["last_error_code"],
        "InvalidParameterValue.IncorrectPhoneNumber"
    );
    assert_eq!(gateway.delivered(&ids[1]), 0);

    // The delivery receipt arrives; a wrong secret is not found.
    let serial = good["provider_id"].as_str().expect("serial").to_owned();
    let receipt = json!([{
        "user_receive_time": "2025-06-02 10:00:05", "nationcode": "86",
        "mobile": phones[0], "report_status": "SUCCESS", "errmsg": "DELIVRD",
        "description": "用户短信送达成功", "sid": serial
    }]);
    let (status, _) = app
        .post(
            "/api/v1/sms/receipts/tencent/not-the-secret",
            None,
            &receipt,
        )
        .await;
    assert_eq!(status, 404);
    let (status, answer) = app
        .post(
            &format!("/api/v1/sms/receipts/tencent/{RECEIPT_SECRET}"),
            None,
            &receipt,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"result": 0, "errmsg": "OK"}));
    let (_, delivered) = app
        .get(&format!("/api/v1/messages/{}", ids[0]), Some(&officer))
        .await;
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(delivered["receipt_status"], "delivered");
    assert!(delivered["receipt_at"].is_string());

    // Resending: only a failed message, and it then goes like any other.
    let (status, body) = app
        .post(
            &format!("/api/v1/messages/{}/resend", ids[0]),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_failed");
    let (status, body) = app
        .post(
            &format!("/api/v1/messages/{}/resend", ids[1]),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "pending");
    let union = app.login("union-power").await;
    let (status, _) = app.get("/api/v1/messages", Some(&union)).await;
    assert_eq!(status, 403, "unions do not read the send log");
    // Tomorrow's renewal reminders, as the association previews them (the demo's periods
    // end on 2025-12-31: thirty days before, the 30-day reminders are due).
    let (status, preview) = app
        .get("/api/v1/reminders/preview?day=2025-12-01", Some(&officer))
        .await;
    assert_eq!(status, 200, "{preview}");
    let due_30: u64 = preview
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["occasion"] == "renewal_due_30")
        .map(|l| l["messages"].as_u64().expect("count"))
        .sum();
    assert!(due_30 > 0, "{preview}");
}

/// A member's phone number, opened.
async fn phone_of(app: &TestApp, member: i64) -> String {
    let m = entity::member::Entity::find_by_id(member)
        .one(&app.state.db)
        .await
        .expect("member")
        .expect("member row");
    app.state
        .pii
        .open(
            huzhu::auth::crypto::PiiKind::Phone,
            &m.phone_cipher.expect("phone"),
        )
        .expect("open")
}

/// Receipts kept until their message's outcome is known.
async fn kept_receipts(app: &TestApp) -> u64 {
    use sea_orm::PaginatorTrait;
    entity::sms_receipt::Entity::find()
        .count(&app.state.db)
        .await
        .expect("kept receipts")
}

/// A message whose send timed out after the gateway took it, reported undelivered by the
/// operator: with `receipt_first`, the receipt is posted before anyone asked the gateway.
async fn failed_delivery_after_a_timeout(app: TestApp, gateway: &FakeGateway, receipt_first: bool) {
    configure_templates(&app).await;
    let people = members(&app, 1).await;
    let ids = queue_payouts(&app, &people, Utc::now()).await;
    let phone = phone_of(&app, people[0]).await;
    gateway.fail_delivery(&phone, "MK:0001");
    gateway.time_out_after_accepting(Pattern::Next(1));
    let d = dispatcher(&app, &gateway.settings());
    d.run_once(Utc::now()).await.expect("dispatch");
    assert_eq!(status_of(&app, &ids[0]).await, "uncertain");
    if receipt_first {
        let provider = match gateway.settings().provider {
            huzhu::settings::SmsProvider::Aliyun => "aliyun",
            _ => "tencent",
        };
        let (status, _) = app
            .post(
                &format!("/api/v1/sms/receipts/{provider}/{RECEIPT_SECRET}"),
                None,
                &gateway.receipt(&ids[0]),
            )
            .await;
        assert_eq!(status, 200);
        // Tencent's receipt names the message by a SerialNo we do not know yet: kept, not
        // dropped. Aliyun's names it by our id: applied at once.
        let now = status_of(&app, &ids[0]).await;
        let kept = kept_receipts(&app).await;
        assert!(
            (now == "uncertain" && kept == 1) || (now == "undelivered" && kept == 0),
            "{now}, {kept} kept"
        );
    }
    dispatch_until_settled(&d, &app).await;
    assert_eq!(gateway.delivered(&ids[0]), 1);
    let officer = app.login("association").await;
    let (_, message) = app
        .get(&format!("/api/v1/messages/{}", ids[0]), Some(&officer))
        .await;
    assert_eq!(message["status"], "undelivered", "{message}");
    assert_eq!(message["receipt_status"], "undelivered", "{message}");
    assert_eq!(message["receipt_code"], "MK:0001", "{message}");
    assert_eq!(kept_receipts(&app).await, 0, "every receipt applied");
    let (status, body) = app
        .post(
            &format!("/api/v1/messages/{}/resend", ids[0]),
            Some(&officer),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "pending");
}

async fn a_receipt_before_the_send_outcome_is_kept_and_applied_through_tencent(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    failed_delivery_after_a_timeout(app, &gateway, true).await;
}

async fn a_receipt_before_the_send_outcome_is_kept_and_applied_through_aliyun(backend: Backend) {
    let gateway = FakeAliyun::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    failed_delivery_after_a_timeout(app, &gateway, true).await;
}

async fn a_look_up_stores_the_failed_delivery_it_finds_through_tencent(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    failed_delivery_after_a_timeout(app, &gateway, false).await;
}

async fn a_look_up_stores_the_failed_delivery_it_finds_through_aliyun(backend: Backend) {
    let gateway = FakeAliyun::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    failed_delivery_after_a_timeout(app, &gateway, false).await;
}

async fn a_template_without_its_provider_id_holds_messages_until_it_is_set(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    // The shipped templates carry no provider ids.
    let people = members(&app, 2).await;
    let ids = queue_payouts(&app, &people, Utc::now()).await;
    let d = dispatcher(&app, &gateway.settings());
    let report = d.run(Utc::now()).await.expect("dispatch");
    assert_eq!(report.waiting_template, 2, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    for id in &ids {
        assert_eq!(status_of(&app, id).await, "waiting_template");
        assert_eq!(gateway.delivered(id), 0);
    }
    let officer = app.login("association").await;
    let (status, log) = app
        .get("/api/v1/messages?status=waiting_template", Some(&officer))
        .await;
    assert_eq!(status, 200, "{log}");
    let held = log["items"].as_array().expect("items");
    assert_eq!(held.len(), 2, "{log}");
    assert_eq!(held[0]["last_error_code"], "template_not_configured");
    assert_eq!(held[0]["attempts"], 0, "holding is not an attempt");
    // Another round leaves them held (nothing due).
    let report = d.run(Utc::now()).await.expect("dispatch");
    assert_eq!(report.leased, 0, "{report:?}");
    configure_templates(&app).await;
    for id in &ids {
        assert_eq!(status_of(&app, id).await, "pending");
    }
    dispatch_until_settled(&d, &app).await;
    for id in &ids {
        assert_eq!(status_of(&app, id).await, "accepted");
        assert_eq!(gateway.delivered(id), 1);
    }
}

/// Output written to memory, readable after the writer is given away.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("captured").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().expect("captured"))
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

async fn run_once_prints_progress_lines_and_a_summary_when_not_on_a_terminal(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let people = members(&app, 5).await;
    queue_payouts(&app, &people, Utc::now()).await;
    let mut d = dispatcher(&app, &gateway.settings());
    d.config.batch = 2;
    let captured = Captured::default();
    let report = huzhu::cli::dispatch_reporting(
        &d,
        huzhu::cli::DispatchOutput::Lines {
            out: Box::new(captured.clone()),
            every: 2,
        },
    )
    .await
    .expect("dispatch");
    assert_eq!(report.accepted, 5, "{report:?}");
    let lines = captured.lines();
    assert_eq!(lines[0], "dispatching: 5 messages due", "{lines:?}");
    let progress: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(
        progress.len() >= 2 && progress[0].starts_with("progress: 2 of 5 handled"),
        "{lines:?}"
    );
    let last = lines.last().expect("summary");
    assert!(
        last.starts_with("done in ") && last.ends_with("5 handled; 5 sent"),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\r')),
        "no progress bar: {lines:?}"
    );
}

async fn the_send_log_shows_when_a_message_held_by_quiet_hours_will_go(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    let people = members(&app, 1).await;
    // Queued at night (as the renewal scan may): due at 02:00, sent at 08:00.
    let night = queue_payout(
        &app,
        people[0],
        "payout_sent:night",
        json!({ "claim": "c1", "amount": "100.00" }),
        shanghai("2030-06-02 02:00"),
    )
    .await;
    let officer = app.login("association").await;
    let (status, message) = app
        .get(&format!("/api/v1/messages/{night}"), Some(&officer))
        .await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["due_at"], "2030-06-01T18:00:00Z", "{message}");
    assert_eq!(message["sends_at"], "2030-06-02T00:00:00Z", "{message}");
    // In the day, it goes when due.
    let day = queue_payout(
        &app,
        people[0],
        "payout_sent:day",
        json!({ "claim": "c2", "amount": "100.00" }),
        shanghai("2030-06-02 10:30"),
    )
    .await;
    let (_, message) = app
        .get(&format!("/api/v1/messages/{day}"), Some(&officer))
        .await;
    assert_eq!(message["sends_at"], "2030-06-02T02:30:00Z", "{message}");
}

async fn uncertain_look_ups_back_off(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let people = members(&app, 1).await;
    let ids = queue_payouts(&app, &people, Utc::now()).await;
    // The gateway's records cannot be told apart: every look-up is inconclusive.
    gateway.hide_session_context();
    gateway.time_out_after_accepting(Pattern::Next(1));
    let d = dispatcher(&app, &gateway.settings());
    let t0 = Utc::now();
    d.run_once(t0).await.expect("dispatch");
    assert_eq!(status_of(&app, &ids[0]).await, "uncertain");
    let mut asked = Vec::new();
    for seconds in [10, 15, 23, 35] {
        d.run_once(t0 + Duration::seconds(seconds))
            .await
            .expect("dispatch");
        asked.push(gateway.lookups());
    }
    // Asked at +10 s (then not before +17.5 s), at +23 s (then not before +40 s).
    assert_eq!(asked, [1, 1, 2, 2], "look-ups per round");
    assert_eq!(status_of(&app, &ids[0]).await, "uncertain");
    assert_eq!(gateway.delivered(&ids[0]), 1);
}

async fn renewal_reminders_name_the_scheme_for_a_member_in_two(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    let active = entity::membership::Entity::find()
        .filter(entity::membership::Column::Status.eq("active"))
        .order_by_asc(entity::membership::Column::Id)
        .all(&app.state.db)
        .await
        .expect("memberships");
    let with_phone: std::collections::HashSet<i64> = entity::member::Entity::find()
        .filter(entity::member::Column::PhoneCipher.is_not_null())
        .all(&app.state.db)
        .await
        .expect("members")
        .into_iter()
        .map(|m| m.id)
        .collect();
    let mut schemes: std::collections::BTreeMap<i64, Vec<&entity::membership::Model>> =
        std::collections::BTreeMap::new();
    for m in active.iter().filter(|m| with_phone.contains(&m.member_id)) {
        schemes.entry(m.member_id).or_default().push(m);
    }
    let (two, one) = {
        let two = schemes
            .values()
            .find(|ms| {
                ms.iter()
                    .map(|m| &m.scheme_code)
                    .collect::<std::collections::HashSet<_>>()
                    .len()
                    == 2
            })
            .expect("a demo member in two schemes");
        let one = schemes
            .values()
            .find(|ms| ms.len() == 1)
            .expect("a demo member in one scheme");
        (two.clone(), one[0])
    };
    let mut ids = Vec::new();
    for m in two.iter().chain([&one]) {
        let key = format!("renewal_due_30:{}", m.pid);
        outbox::enqueue(
            &app.state.db,
            Occasion::RenewalDue30,
            m.member_id,
            &key,
            json!({ "membership": m.pid, "scheme": m.scheme_code, "coverage_end": m.coverage_end.to_string() }),
            Utc::now(),
        )
        .await
        .expect("enqueue");
        let row = entity::outbox::Entity::find()
            .filter(entity::outbox::Column::DedupeKey.eq(key))
            .one(&app.state.db)
            .await
            .expect("row")
            .expect("queued");
        ids.push(message_id(row.id));
    }
    dispatch_until_settled(&dispatcher(&app, &gateway.settings()), &app).await;
    let sent = gateway.sent();
    let name_in = |id: &str| {
        sent.iter()
            .find(|s| s.message_id == id)
            .unwrap_or_else(|| panic!("{id} sent: {sent:?}"))
            .params[0]
            .1
            .clone()
    };
    let (a, b, single) = (name_in(&ids[0]), name_in(&ids[1]), name_in(&ids[2]));
    assert_ne!(a, b, "two schemes, two texts");
    for (id, scheme) in [(&a, &two[0].scheme_code), (&b, &two[1].scheme_code)] {
        let (_, current) = app.get(&format!("/api/v1/schemes/{scheme}"), None).await;
        let display = current["definition"]["display"]["display_name_zh"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("display name in {current}"));
        assert_eq!(id, &display);
    }
    assert_eq!(single, "职工医疗互助保障", "one scheme: the generic name");
}

// --- The WeChat subscribe-message channel -------------------------------------------------

/// The subscribe message configured for payouts (keywords as the fake declares them).
const PAYOUT_TEMPLATE: &str = "tpl-payout-7Hc2";

async fn wechat_app(backend: Backend, sms: SmsSettings) -> Option<TestApp> {
    spawn_app_with(backend, move |s| {
        s.sms = sms;
        s.reminders.wechat_subscribe = true;
        // A lost answer is given up on quickly (then the message goes by SMS).
        s.wechat.timeout_ms = 500;
    })
    .await
}

/// Every template for the gateway, and a subscribe message for payouts.
async fn configure_wechat_templates(app: &TestApp) {
    configure_templates(app).await;
    app.wechat
        .subscribe_template(PAYOUT_TEMPLATE, &["amount1", "thing2"]);
    let admin = app.login("admin").await;
    let (status, body) = app
        .send_json(
            reqwest::Method::PUT,
            "/api/v1/sms-templates/payout_sent",
            Some(&admin),
            &json!({
                "tencent_template_id": "100900",
                "aliyun_template_code": "SMS_100900",
                "body_zh": "您的职工医疗互助金{amount}元已拨付至预留银行卡，请注意查收。",
                "params": ["amount"],
                "wechat": {
                    "template_id": PAYOUT_TEMPLATE,
                    "page": "pages/claims/detail?id={claim}",
                    "data": { "amount1": "{amount}元", "thing2": "已拨付至您预留的银行卡，请注意查收" },
                },
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wechat"]["template_id"], PAYOUT_TEMPLATE);
}

/// Gives the members a WeChat openid (as signing in with the mini-program does).
async fn bind_openids(app: &TestApp, people: &[i64]) -> Vec<String> {
    let mut openids = Vec::new();
    for id in people {
        let openid = format!("o-test-{id}");
        entity::member::Entity::update_many()
            .col_expr(
                entity::member::Column::WechatOpenid,
                sea_orm::sea_query::Expr::value(openid.clone()),
            )
            .filter(entity::member::Column::Id.eq(*id))
            .exec(&app.state.db)
            .await
            .expect("bind openid");
        openids.push(openid);
    }
    openids
}

async fn members_who_subscribed_are_told_in_wechat_and_the_others_by_sms(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = wechat_app(backend, gateway.settings()).await else {
        return;
    };
    configure_wechat_templates(&app).await;
    let people = members(&app, 6).await;
    // Four signed in with the mini-program; two of them subscribed, one never did, and one
    // is no longer a user WeChat knows (40003). Two never used the mini-program.
    let openids = bind_openids(&app, &people[..4]).await;
    app.wechat.subscribe(&openids[0], PAYOUT_TEMPLATE);
    app.wechat.subscribe(&openids[1], PAYOUT_TEMPLATE);
    app.wechat.user(&openids[2]);
    let ids = queue_payouts(&app, &people, Utc::now()).await;
    let d = dispatcher(&app, &gateway.settings());
    let report = d.run(Utc::now()).await.expect("dispatch");
    assert_eq!(report.wechat, 2, "{report:?}");
    assert_eq!(report.wechat_fallbacks, 2, "{report:?}");
    assert_eq!(report.accepted, 6, "{report:?}");
    for (i, id) in ids.iter().enumerate() {
        let (wechat, sms) = if i < 2 { (1, 0) } else { (0, 1) };
        if i < 4 {
            assert_eq!(
                app.wechat.subscribe_sent_to(&openids[i]),
                wechat,
                "{id} in WeChat"
            );
        }
        assert_eq!(gateway.delivered(id), sms, "{id} by SMS");
    }
    let sent = app.wechat.subscribe_sent();
    let first = sent
        .iter()
        .find(|m| m.touser == openids[0])
        .expect("the first member's notice");
    assert_eq!(first.data["amount1"], "100.00元");
    assert_eq!(first.page.as_deref(), Some("pages/claims/detail?id=c0"));
    assert_eq!(first.miniprogram_state.as_deref(), Some("formal"));

    // The send log says which channel carried each message, and why the others went by SMS.
    let officer = app.login("association").await;
    let message = |id: String| {
        let app = &app;
        let officer = officer.clone();
        async move {
            let (status, body) = app
                .get(&format!("/api/v1/messages/{id}"), Some(&officer))
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let by_wechat = message(ids[0].clone()).await;
    assert_eq!(by_wechat["channel"], "wechat");
    assert_eq!(by_wechat["provider"], "wechat");
    assert_eq!(by_wechat["status"], "accepted");
    assert_eq!(by_wechat["provider_id"], first.msgid.to_string());
    let refused = message(ids[2].clone()).await;
    assert_eq!(refused["channel"], "sms");
    assert_eq!(refused["provider"], "tencent");
    assert_eq!(refused["status"], "accepted");
    assert_eq!(refused["last_error_code"], "wechat_43101");
    assert_eq!(
        message(ids[3].clone()).await["last_error_code"],
        "wechat_40003"
    );
    let never = message(ids[4].clone()).await;
    assert_eq!(never["channel"], "sms");
    assert!(never["last_error_code"].is_null(), "{never}");

    // Nothing is offered or sent again.
    let requests = app.wechat.subscribe_requests();
    let report = d.run(Utc::now()).await.expect("dispatch");
    assert_eq!(report.leased, 0);
    assert_eq!(app.wechat.subscribe_requests(), requests);
}

async fn a_wechat_offer_is_made_once_even_when_its_answer_is_lost(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = wechat_app(backend, gateway.settings()).await else {
        return;
    };
    configure_wechat_templates(&app).await;
    let people = members(&app, 3).await;
    let openids = bind_openids(&app, &people).await;
    // Each could take a second message: any second offer would show.
    for openid in &openids {
        app.wechat.subscribe(openid, PAYOUT_TEMPLATE);
        app.wechat.subscribe(openid, PAYOUT_TEMPLATE);
    }
    // WeChat takes the first notice and never answers: that member is told by SMS as well
    // (two channels), never twice in WeChat.
    app.wechat.take_then_stall_subscribe(1);
    let ids = queue_payouts(&app, &people, Utc::now()).await;
    let d = dispatcher(&app, &gateway.settings());
    dispatch_until_settled(&d, &app).await;
    assert_eq!(app.wechat.subscribe_requests(), 3);
    for openid in &openids {
        assert_eq!(
            app.wechat.subscribe_sent_to(openid),
            1,
            "{openid} once in WeChat"
        );
    }
    let by_sms: Vec<usize> = ids.iter().map(|id| gateway.delivered(id)).collect();
    assert_eq!(
        by_sms.iter().sum::<usize>(),
        1,
        "only the unanswered one: {by_sms:?}"
    );
    let statuses = statuses(&app).await;
    assert!(
        statuses.iter().all(|(_, s)| s == "accepted"),
        "{statuses:?}"
    );

    // A dispatcher stopped while waiting for WeChat: the one started after it never offers
    // those messages to WeChat again; they go by SMS, once.
    let more: Vec<i64> = people[..2].to_vec();
    let mut later = Vec::new();
    for (i, member) in more.iter().enumerate() {
        let key = format!("payout_sent:later-{i}");
        assert!(
            outbox::enqueue(
                &app.state.db,
                Occasion::PayoutSent,
                *member,
                &key,
                json!({ "claim": format!("later{i}"), "amount": "50.00" }),
                Utc::now(),
            )
            .await
            .expect("enqueue")
        );
        let row = entity::outbox::Entity::find()
            .filter(entity::outbox::Column::DedupeKey.eq(key.as_str()))
            .one(&app.state.db)
            .await
            .expect("row")
            .expect("queued row");
        later.push(message_id(row.id));
    }
    app.wechat.stop_answering();
    let asked = app.wechat.subscribe_requests();
    let stopped = Arc::new(dispatcher(&app, &gateway.settings()));
    let running = {
        let d = stopped.clone();
        tokio::spawn(async move { d.run_once(Utc::now()).await })
    };
    for _ in 0..200 {
        if app.wechat.subscribe_requests() > asked {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    running.abort();
    let _ = running.await;
    assert!(
        app.wechat.subscribe_requests() > asked,
        "stopped during an offer"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let restarted = dispatcher(&app, &gateway.settings());
    let offered = app.wechat.subscribe_requests();
    dispatch_until_settled(&restarted, &app).await;
    assert_eq!(
        app.wechat.subscribe_requests(),
        offered,
        "not offered again"
    );
    for id in &later {
        assert_eq!(gateway.delivered(id), 1, "{id} by SMS once");
    }
}

async fn a_subscribe_message_that_wechat_cannot_take_is_refused_when_configured(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let Some(app) = wechat_app(backend, gateway.settings()).await else {
        return;
    };
    configure_wechat_templates(&app).await;
    let admin = app.login("admin").await;
    let body = |data: serde_json::Value| {
        json!({
            "body_zh": "您的职工医疗互助金{amount}元已拨付至预留银行卡，请注意查收。",
            "params": ["amount"],
            "wechat": { "template_id": "tpl-x", "data": data },
        })
    };
    for (data, code) in [
        (json!({ "Amount1": "{amount}" }), "wechat_keyword_invalid"),
        (json!({ "thing": "{amount}" }), "wechat_keyword_invalid"),
        (json!({}), "invalid_request"),
        (json!({ "thing1": "" }), "invalid_request"),
    ] {
        let (status, answer) = app
            .send_json(
                reqwest::Method::PUT,
                "/api/v1/sms-templates/payout_sent",
                Some(&admin),
                &body(data),
            )
            .await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    // Nothing changed; and a template without `wechat` turns the channel off for it.
    let (_, templates) = app.get("/api/v1/sms-templates", Some(&admin)).await;
    let payout = templates
        .as_array()
        .expect("templates")
        .iter()
        .find(|t| t["occasion"] == "payout_sent")
        .expect("payout")
        .clone();
    assert_eq!(payout["wechat"]["template_id"], PAYOUT_TEMPLATE);
    let (status, cleared) = app
        .send_json(
            reqwest::Method::PUT,
            "/api/v1/sms-templates/payout_sent",
            Some(&admin),
            &json!({ "body_zh": payout["body_zh"], "params": payout["params"], "tencent_template_id": "100900" }),
        )
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert!(cleared["wechat"].is_null(), "{cleared}");
    let people = members(&app, 1).await;
    let openids = bind_openids(&app, &people).await;
    app.wechat.subscribe(&openids[0], PAYOUT_TEMPLATE);
    let ids = queue_payouts(&app, &people, Utc::now()).await;
    dispatch_until_settled(&dispatcher(&app, &gateway.settings()), &app).await;
    assert_eq!(app.wechat.subscribe_requests(), 0);
    assert_eq!(gateway.delivered(&ids[0]), 1);
}

macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(huzhu_tests::harness::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(huzhu_tests::harness::Backend::Postgres).await;
                }
            )+
        }
    };
}

both!(
    every_due_message_is_delivered_exactly_once_through_tencent,
    every_due_message_is_delivered_exactly_once_through_aliyun,
    a_dispatcher_stopped_mid_batch_and_restarted_sends_no_duplicate,
    two_dispatchers_reconciling_one_expired_lease_send_it_once,
    a_dispatcher_paused_past_its_lease_sends_nothing_another_took_over,
    one_message_per_number_in_any_sixty_seconds,
    overlapping_dispatchers_that_crash_anywhere_send_each_message_once,
    a_mixed_call_stores_each_messages_own_outcome,
    quiet_hours_defer_until_eight,
    per_number_limits_hold,
    receipts_are_recorded_and_a_failed_message_can_be_resent,
    members_who_subscribed_are_told_in_wechat_and_the_others_by_sms,
    a_wechat_offer_is_made_once_even_when_its_answer_is_lost,
    a_subscribe_message_that_wechat_cannot_take_is_refused_when_configured,
    a_receipt_before_the_send_outcome_is_kept_and_applied_through_tencent,
    a_receipt_before_the_send_outcome_is_kept_and_applied_through_aliyun,
    a_look_up_stores_the_failed_delivery_it_finds_through_tencent,
    a_look_up_stores_the_failed_delivery_it_finds_through_aliyun,
    a_template_without_its_provider_id_holds_messages_until_it_is_set,
    run_once_prints_progress_lines_and_a_summary_when_not_on_a_terminal,
    the_send_log_shows_when_a_message_held_by_quiet_hours_will_go,
    uncertain_look_ups_back_off,
    renewal_reminders_name_the_scheme_for_a_member_in_two,
);

mod processes;
