//! The dispatcher as the operator runs it — processes. Several `huzhu reminders run-once` and a
//! `huzhu serve` (its in-process dispatcher every second) over one database (a shared SQLite
//! file, or a fresh PostgreSQL database with Redis) send through a local fake Tencent or Aliyun
//! gateway that fails a fifth of its calls and times out on about one in ten after taking the
//! messages (and on a few before). The processes are killed with SIGKILL at random moments and
//! started again, for `HUZHU_TEST_PROCESS_CHAOS_SECONDS` (default 20); then the gateway recovers
//! and they run on until the outbox is drained (a killed holder's messages wait out their
//! 30 s lease and are looked up). Then: every message reached the gateway at most once (the
//! fakes record only what they took; a refusal is the gateway saying for certain it did not),
//! every message ended sent or failed, and our record agrees with the gateway's — sent exactly
//! when the gateway holds it, failed only when it does not; and `run-once`, its output not a
//! terminal, printed plain progress lines and a summary. New messages are queued all through
//! the killing, so that kills find the processes at work.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use huzhu::service::reminders::dispatch::message_id;
use huzhu_tests::fake_sms::{FakeAliyun, FakeGateway, FakeTencent, Pattern};
use huzhu_tests::harness::{Backend, TestApp, huzhu_binary};
use sea_orm::EntityTrait;
use secrecy::ExposeSecret;
use serde_json::json;

use super::{app_with, configure_templates, members, phone_of, queue_payout, statuses};

/// Seconds of killing and restarting (`HUZHU_TEST_PROCESS_CHAOS_SECONDS`).
fn chaos() -> StdDuration {
    let seconds = std::env::var("HUZHU_TEST_PROCESS_CHAOS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    StdDuration::from_secs(seconds)
}

/// The longest the drain may take once the killing stops: a lease (30 s), a look-up delay
/// (10 s) and a few backoffs, with room for a slow machine.
const DRAIN: StdDuration = StdDuration::from_secs(150);
/// Dispatching processes at once: `run-once`s, and one `serve`.
const RUN_ONCE: usize = 3;
/// Messages queued before the processes start, and every quarter of a second after.
const MESSAGES: usize = 24;
const QUEUED_EACH: usize = 3;

/// A dispatching process and what is known of it.
struct Slot {
    serve: bool,
    child: Option<Child>,
    /// When a `run-once` that has finished may start again.
    restart_at: Instant,
}

/// The dispatching processes: started, killed, started again.
struct Processes {
    bin: PathBuf,
    env: Vec<(String, String)>,
    logs: PathBuf,
    slots: Vec<Slot>,
    started: usize,
    killed: usize,
    /// `run-once`s that ended with an error of their own (not killed).
    failed_runs: usize,
}

impl Processes {
    fn new(app: &TestApp, gateway: &FakeGateway) -> Processes {
        let logs = app.data_dir.0.join("process-logs");
        std::fs::create_dir_all(&logs).expect("log directory");
        let sms = gateway.settings();
        let mut env: Vec<(String, String)> = vec![
            ("HUZHU_MODE", "demo".to_owned()),
            ("HUZHU_DATA_DIR", app.data_dir.0.display().to_string()),
            ("HUZHU_LISTEN", "127.0.0.1:0".to_owned()),
            // The test's own server migrated the database and seeded it.
            ("HUZHU_MIGRATE_ON_START", "false".to_owned()),
            ("HUZHU_DATABASE__MAX_CONNECTIONS", "4".to_owned()),
            ("HUZHU_LOG__FILTER", "warn".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
            ("HUZHU_SMS__PROVIDER", provider_name(gateway).to_owned()),
            ("HUZHU_SMS__SECRET_ID", gateway.secret_id.clone()),
            ("HUZHU_SMS__SECRET_KEY", gateway.secret_key.clone()),
            ("HUZHU_SMS__SIGN_NAME", gateway.sign_name.clone()),
            ("HUZHU_SMS__TENCENT_BASE_URL", sms.tencent_base_url.clone()),
            ("HUZHU_SMS__ALIYUN_BASE_URL", sms.aliyun_base_url.clone()),
            ("HUZHU_SMS__TIMEOUT_MS", sms.timeout_ms.to_string()),
            (
                "HUZHU_SMS__CONNECT_TIMEOUT_MS",
                sms.connect_timeout_ms.to_string(),
            ),
            ("HUZHU_SMS__LOOKUP_GRACE_SECONDS", "0".to_owned()),
            // It is night in Shanghai for part of every day a CI runs on.
            ("HUZHU_REMINDERS__QUIET_HOURS", "false".to_owned()),
            ("HUZHU_REMINDERS__SCHEDULE_ENABLED", "false".to_owned()),
            ("HUZHU_REMINDERS__DISPATCH_ENABLED", "true".to_owned()),
            ("HUZHU_REMINDERS__DISPATCH_INTERVAL_SECONDS", "1".to_owned()),
            // The shortest the settings allow, so that a killed holder's messages come back
            // within the test.
            ("HUZHU_REMINDERS__LEASE_SECONDS", "30".to_owned()),
            ("HUZHU_REMINDERS__LOOKUP_AFTER_SECONDS", "10".to_owned()),
            ("HUZHU_REMINDERS__BACKOFF_BASE_SECONDS", "1".to_owned()),
            // Small batches: a run holds several rounds, so kills land between them too.
            ("HUZHU_REMINDERS__BATCH_SIZE", "4".to_owned()),
            ("HUZHU_REMINDERS__PER_NUMBER_PER_MINUTE", "1000".to_owned()),
            ("HUZHU_REMINDERS__PER_NUMBER_PER_DAY", "1000".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(app_id) = &sms.sdk_app_id {
            env.push(("HUZHU_SMS__SDK_APP_ID".into(), app_id.clone()));
        }
        if let Some(today) = app.state.settings.clock.today {
            env.push(("HUZHU_CLOCK__TODAY".into(), today.to_string()));
        }
        if let Some(pg) = &app.pg {
            env.push(("HUZHU_DATABASE__URL".into(), pg.url.clone()));
        }
        if let Some(redis) = &app.state.settings.redis.url {
            env.push(("HUZHU_REDIS__URL".into(), redis.expose_secret().to_owned()));
            env.push((
                "HUZHU_REDIS__KEY_PREFIX".into(),
                app.state.settings.redis.key_prefix.clone(),
            ));
        }
        let now = Instant::now();
        let slots = (0..=RUN_ONCE)
            .map(|i| Slot {
                serve: i == RUN_ONCE,
                child: None,
                restart_at: now,
            })
            .collect();
        Processes {
            bin: huzhu_binary(),
            env,
            logs,
            slots,
            started: 0,
            killed: 0,
            failed_runs: 0,
        }
    }

    /// Starts what is not running and may start; notes the `run-once`s that have finished.
    fn tend(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            if let Some(child) = &mut self.slots[i].child {
                match child.try_wait() {
                    Ok(None) => continue,
                    Ok(Some(status)) => {
                        if !status.success() {
                            self.failed_runs += 1;
                        }
                        // Nothing was due, or the round ended: a cron-like pause.
                        self.slots[i].restart_at =
                            now + StdDuration::from_millis(rand::random_range(100..600));
                        self.slots[i].child = None;
                    }
                    Err(e) => panic!("waiting for a dispatcher: {e}"),
                }
            }
            if self.slots[i].child.is_none() && now >= self.slots[i].restart_at {
                let child = self.start(self.slots[i].serve);
                self.slots[i].child = Some(child);
            }
        }
    }

    fn start(&mut self, serve: bool) -> Child {
        self.started += 1;
        let log = std::fs::File::create(self.logs.join(format!("{:04}.log", self.started)))
            .expect("log file");
        let mut command = Command::new(&self.bin);
        if serve {
            command.arg("serve");
        } else {
            command.args(["reminders", "run-once"]);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("HUZHU_") {
                command.env_remove(key);
            }
        }
        // Both outputs to one file: `run-once`'s lines are what cron would mail.
        let out = log.try_clone().expect("log file");
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()))
    }

    /// SIGKILLs one running process, chosen at random; whether there was one.
    fn kill_one(&mut self) -> bool {
        let running: Vec<usize> = (0..self.slots.len())
            .filter(|i| self.slots[*i].child.is_some())
            .collect();
        if running.is_empty() {
            return false;
        }
        let i = running[rand::random_range(0..running.len())];
        if let Some(mut child) = self.slots[i].child.take() {
            // `Child::kill` is SIGKILL on Unix: no destructor, no graceful stop.
            let _ = child.kill();
            let _ = child.wait();
            self.killed += 1;
        }
        self.slots[i].restart_at = Instant::now();
        true
    }

    fn stop_all(&mut self) {
        for slot in &mut self.slots {
            if let Some(mut child) = slot.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Whether some `run-once`, its output not a terminal, printed its plain progress: the
    /// count of messages due at its start and a closing summary.
    fn printed_plain_progress(&self) -> bool {
        (1..=self.started).any(|n| {
            let text =
                std::fs::read_to_string(self.logs.join(format!("{n:04}.log"))).unwrap_or_default();
            text.lines().any(|l| l.starts_with("dispatching: "))
                && text
                    .lines()
                    .any(|l| l.starts_with("done in ") && l.contains(" sent"))
        })
    }

    /// The end of the most recent logs, for a failure message.
    fn recent_logs(&self) -> String {
        let mut out = String::new();
        for n in self.started.saturating_sub(3) + 1..=self.started {
            let path = self.logs.join(format!("{n:04}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            out.push_str(&format!("\n{}:\n", path.display()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn provider_name(gateway: &FakeGateway) -> &'static str {
    if gateway.sdk_app_id.is_empty() {
        "aliyun"
    } else {
        "tencent"
    }
}

/// Statuses in which a message is still on its way.
fn open(status: &str) -> bool {
    matches!(
        status,
        "pending" | "sending" | "uncertain" | "waiting_template"
    )
}

async fn killed_processes_send_each_message_at_most_once(
    backend: Backend,
    gateway: &FakeGateway,
    refused_code: &str,
) {
    let Some(app) = app_with(backend, gateway.settings()).await else {
        return;
    };
    configure_templates(&app).await;
    // Whatever the renewal scan would queue today is queued now, and dispatched with the rest
    // (`run-once` scans first; it then finds nothing new).
    huzhu::service::reminders::schedule::run_once_as_leader(
        &app.state.db,
        app.state.settings.today(),
        Utc::now(),
    )
    .await
    .expect("renewal scan");
    let people = members(&app, 24).await;
    // One member's number the gateway refuses for good: those messages end failed, unsent.
    let refused = phone_of(&app, people[0]).await;
    gateway.reject_number(&refused, refused_code);
    let mut queued = 0;
    let mut queue = async |n: usize| {
        for _ in 0..n {
            let i = queued;
            queued += 1;
            // Two amounts: Tencent sends each kind to several numbers in one call.
            let amount = format!("{}.00", 100 * (1 + i % 2));
            let payload = json!({ "claim": format!("k{i}"), "amount": amount });
            let key = format!("payout_sent:killed-{i}");
            queue_payout(&app, people[i % people.len()], &key, payload, Utc::now()).await;
        }
    };
    queue(MESSAGES).await;
    gateway.fail_every(5);
    gateway.time_out_after_accepting(Pattern::Percent(10));
    gateway.time_out_before_accepting(Pattern::Percent(3));

    let mut processes = Processes::new(&app, gateway);
    let chaos = chaos();
    let started = Instant::now();
    let mut next_kill = Instant::now() + StdDuration::from_millis(rand::random_range(300..1500));
    let mut stranded = 0usize;
    let mut next_queue = Instant::now();
    while started.elapsed() < chaos {
        // New messages keep coming, so that kills find the processes at work.
        if Instant::now() >= next_queue {
            queue(QUEUED_EACH).await;
            next_queue = Instant::now() + StdDuration::from_millis(250);
        }
        processes.tend();
        if Instant::now() >= next_kill {
            if processes.kill_one() {
                // What the killed process held stays `sending` until its lease runs out (this
                // counts what the others hold too).
                stranded = stranded.max(
                    statuses(&app)
                        .await
                        .iter()
                        .filter(|(_, s)| s == "sending")
                        .count(),
                );
            }
            next_kill = Instant::now() + StdDuration::from_millis(rand::random_range(200..1500));
        }
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
    // The gateway recovers; the processes run on, unkilled, until nothing is left to send.
    gateway.recover();
    let draining = Instant::now();
    loop {
        processes.tend();
        let left: Vec<(String, String)> = statuses(&app)
            .await
            .into_iter()
            .filter(|(_, s)| open(s))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            draining.elapsed() < DRAIN,
            "not drained {DRAIN:?} after the killing stopped: {left:?}{}",
            processes.recent_logs()
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    processes.stop_all();

    let rows = entity::outbox::Entity::find()
        .all(&app.state.db)
        .await
        .expect("outbox");
    let mut sent = 0;
    for row in &rows {
        let id = message_id(row.id);
        let times = gateway.delivered(&id);
        let status = row.status.as_str();
        assert!(
            times <= 1,
            "{id} reached the gateway {times} times ({status})"
        );
        match status {
            "accepted" | "delivered" | "undelivered" => {
                assert_eq!(times, 1, "{id} is {status} but the gateway never took it");
                sent += 1;
            }
            "failed" => assert_eq!(
                times, 0,
                "{id} is failed ({:?}) but the gateway took it",
                row.last_error_code
            ),
            other => panic!("{id} ended {other}"),
        }
    }
    let refused_failed = rows
        .iter()
        .filter(|r| r.member_id == people[0])
        .all(|r| r.status == "failed");
    assert!(refused_failed, "the refused number's messages failed");
    println!(
        "{backend:?} / {}: {} messages ({sent} sent), {} processes started, {} killed (at most \
         {stranded} messages left sending by one kill), {} run-once failures, {} send requests, \
         {} look-ups",
        provider_name(gateway),
        rows.len(),
        processes.started,
        processes.killed,
        processes.failed_runs,
        gateway.send_requests(),
        gateway.lookups(),
    );
    assert!(rows.len() >= MESSAGES);
    assert!(processes.killed >= 5, "{} kills", processes.killed);
    assert!(stranded > 0, "no kill caught a process holding messages");
    assert!(gateway.lookups() > 0, "no message was looked up");
    assert!(
        processes.printed_plain_progress(),
        "run-once printed its progress lines{}",
        processes.recent_logs()
    );
}

async fn killed_processes_send_each_message_at_most_once_through_tencent(backend: Backend) {
    let gateway = FakeTencent::start().await;
    killed_processes_send_each_message_at_most_once(
        backend,
        &gateway,
        "InvalidParameterValue.IncorrectPhoneNumber",
    )
    .await;
}

async fn killed_processes_send_each_message_at_most_once_through_aliyun(backend: Backend) {
    let gateway = FakeAliyun::start().await;
    killed_processes_send_each_message_at_most_once(backend, &gateway, "isv.MOBILE_NUMBER_ILLEGAL")
        .await;
}

both!(
    killed_processes_send_each_message_at_most_once_through_tencent,
    killed_processes_send_each_message_at_most_once_through_aliyun,
);
