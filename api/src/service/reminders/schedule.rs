//! The renewal scan (续互临期): members are told 30 days and 7 days before their coverage period
//! ends, and once inside the scheme's grace window after it ended, unless they have already
//! renewed (a membership of the same scheme family starting after this one's end) or have no
//! phone. The scan only queues: it writes outbox rows, which the dispatcher sends. The same
//! scan ends the offers (免申即享) nobody confirmed by their deadline and reminds those lapsing
//! within 7 days ([`crate::service::claim::lapse`]), set-based and idempotent alike.
//!
//! # How
//! One set-based `INSERT INTO outbox … SELECT … ON CONFLICT (dedupe_key) DO NOTHING` per
//! occasion — a million reminders are three statements, not a million round trips. The ranges
//! of period ends due today are computed here, in Rust, per scheme (the grace window depends on
//! the scheme's `coverage.grace_days`) and joined in as a small table of parameters, so the
//! SQL uses no date function and runs alike on SQLite and PostgreSQL.
//!
//! A reminder is due on a *range* of days (30-day: `end-30 … end-8`, 7-day: `end-7 … end`,
//! grace: `end+1 … end+grace`), so a day without a scan (a deploy, an outage) is caught up the
//! next day; the dedupe key `renewal_due_30:<membership pid>` makes each happen once. A free
//! extension changes the period's end, so the key of an extended membership carries the
//! extension (`renewal_due_30:<pid>:ext<extension id>`): the member is reminded again before
//! the new end.
//!
//! The payload is built in SQL (`||` on both backends) and holds what the SMS needs and no
//! more: `{"membership":"<pid>","scheme":"<code>","coverage_end":"YYYY-MM-DD"}` (the
//! templates' `{coverage_end}`). Dates print as `YYYY-MM-DD` on both backends: SQLite keeps
//! them as that text, and sqlx opens every PostgreSQL session with `DateStyle = ISO`.
//!
//! # One scan at a time
//! [`run_once_as_leader`] takes a lock before scanning. On PostgreSQL — what every replica
//! shares — it is `pg_try_advisory_xact_lock` inside the scan's own transaction: a replica that
//! does not get it skips this round, and the lock ends with the transaction, so a crashed or
//! paused leader can never keep it (no lease to tune, and Redis is not needed). SQLite is one
//! process: scans queue on an in-process mutex (and SQLite's write lock). Correctness never
//! rests on the lock — the unique dedupe key does — the lock only saves duplicate work.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait, Value,
};
use serde::Serialize;

use crate::service::claim::lapse;
use crate::service::enrolment::scheme_family;
use crate::service::outbox::Occasion;
use crate::service::{raw_statement, scheme};
use crate::settings::Settings;

/// The occasions the scan queues, in the order it queues them.
pub const RENEWAL_OCCASIONS: [Occasion; 3] = [
    Occasion::RenewalDue30,
    Occasion::RenewalDue7,
    Occasion::RenewalGrace,
];

/// The PostgreSQL advisory lock key of the scan (`huzhu` + `rnw1`).
pub const LEADER_LOCK_KEY: i64 = 0x6875_7a68_726e_7731;

/// What one scan queued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// The day scanned (Asia/Shanghai).
    pub today: NaiveDate,
    /// When the queued messages may go: 08:00 Asia/Shanghai that day.
    pub due_at: DateTime<Utc>,
    /// New 30-day reminders (those already queued are not counted).
    pub renewal_due_30: u64,
    /// New 7-day reminders.
    pub renewal_due_7: u64,
    /// New grace-window reminders.
    pub renewal_grace: u64,
    /// New reminders of offers lapsing within 7 days (`offer_lapsing`).
    pub offer_lapsing: u64,
    /// Offers that lapsed in this scan (not a message: a status change).
    pub offers_lapsed: u64,
}

impl ScanReport {
    /// Messages queued for `occasion`.
    pub fn queued(&self, occasion: Occasion) -> u64 {
        match occasion {
            Occasion::RenewalDue30 => self.renewal_due_30,
            Occasion::RenewalDue7 => self.renewal_due_7,
            Occasion::RenewalGrace => self.renewal_grace,
            Occasion::OfferLapsing => self.offer_lapsing,
            _ => 0,
        }
    }

    /// Renewal reminders queued in all.
    pub fn total(&self) -> u64 {
        self.renewal_due_30 + self.renewal_due_7 + self.renewal_grace
    }

    fn set(&mut self, occasion: Occasion, n: u64) {
        match occasion {
            Occasion::RenewalDue30 => self.renewal_due_30 = n,
            Occasion::RenewalDue7 => self.renewal_due_7 = n,
            Occasion::RenewalGrace => self.renewal_grace = n,
            _ => {}
        }
    }
}

/// What a scan on a day would queue, for one occasion and scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviewRow {
    pub occasion: Occasion,
    pub scheme_code: String,
    /// Messages the scan would queue (not counting those already queued).
    pub messages: u64,
}

/// The range of period ends (inclusive) for which `occasion` is due on `today`; `None` when
/// nothing is (a scheme without a grace window).
pub fn end_range(
    occasion: Occasion,
    today: NaiveDate,
    grace_days: u32,
) -> Option<(NaiveDate, NaiveDate)> {
    let day = |n: i64| today.checked_add_signed(chrono::Duration::days(n));
    match occasion {
        // today in [end-30, end-8]
        Occasion::RenewalDue30 => Some((day(8)?, day(30)?)),
        // today in [end-7, end]
        Occasion::RenewalDue7 => Some((day(0)?, day(7)?)),
        // today in [end+1, end+grace]
        Occasion::RenewalGrace if grace_days > 0 => Some((day(-i64::from(grace_days))?, day(-1)?)),
        _ => None,
    }
}

/// 08:00 Asia/Shanghai on `day`: nothing is sent before (quiet hours).
pub fn due_at(day: NaiveDate) -> DateTime<Utc> {
    let eight = NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN);
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&day.and_time(eight))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        // Shanghai has kept UTC+8 without daylight saving since 1991.
        .unwrap_or_else(|| day.and_time(NaiveTime::MIN).and_utc())
}

/// A scheme as the scan needs it.
struct SchemeWindow {
    code: String,
    family: String,
    /// The code as a JSON string (quoted and escaped), spliced into the payload.
    code_json: String,
    grace_days: u32,
}

async fn schemes<C: ConnectionTrait>(db: &C) -> Result<Vec<SchemeWindow>, DbErr> {
    Ok(scheme::all_latest(db)
        .await?
        .into_iter()
        .map(|s| {
            let code = s.definition.code;
            SchemeWindow {
                family: scheme_family(&code).to_owned(),
                code_json: serde_json::Value::String(code.clone()).to_string(),
                grace_days: s.definition.coverage.grace_days,
                code,
            }
        })
        .collect())
}

/// The parameters of one occasion's statement: the window table (one row per scheme with a
/// range due today) and the code → family table the renewal check joins.
struct Plan {
    windows: Vec<Value>,
    window_rows: usize,
    families: Vec<Value>,
    family_rows: usize,
}

impl Plan {
    fn for_day(schemes: &[SchemeWindow], occasion: Occasion, today: NaiveDate) -> Option<Plan> {
        let mut plan = Plan {
            windows: Vec::new(),
            window_rows: 0,
            families: Vec::new(),
            family_rows: 0,
        };
        for s in schemes {
            plan.families.push(s.code.clone().into());
            plan.families.push(s.family.clone().into());
            plan.family_rows += 1;
            if let Some((from, to)) = end_range(occasion, today, s.grace_days) {
                plan.windows.push(s.code.clone().into());
                plan.windows.push(s.family.clone().into());
                plan.windows.push(s.code_json.clone().into());
                plan.windows.push(from.into());
                plan.windows.push(to.into());
                plan.window_rows += 1;
            }
        }
        (plan.window_rows > 0).then_some(plan)
    }

    /// `FROM … WHERE …`: the memberships due `occasion`. Shared by the scan and the preview,
    /// so what is previewed is what is queued.
    fn due_memberships(&self) -> String {
        let windows = parameter_table(
            &["scheme_code", "family", "code_json", "end_from", "end_to"],
            self.window_rows,
        );
        let families = parameter_table(&["code", "family"], self.family_rows);
        format!(
            "FROM ({windows}) w \
             JOIN membership m ON m.scheme_code = w.scheme_code \
             AND m.coverage_end >= w.end_from AND m.coverage_end <= w.end_to \
             JOIN member p ON p.id = m.member_id \
             WHERE m.status = 'active' \
             AND p.phone_cipher IS NOT NULL AND p.phone_lookup IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM membership r JOIN ({families}) f ON f.code = r.scheme_code \
             WHERE r.member_id = m.member_id AND f.family = w.family \
             AND r.status = 'active' AND r.coverage_start > m.coverage_end)"
        )
    }

    /// The window and family parameters, in the order [`Plan::due_memberships`] uses them.
    fn values(&self) -> Vec<Value> {
        let mut v = self.windows.clone();
        v.extend(self.families.iter().cloned());
        v
    }
}

/// `SELECT ? AS a, ? AS b UNION ALL SELECT ?, ? …`: a table of parameters that both backends
/// accept in `FROM` (SQLite cannot name the columns of a `VALUES` list).
fn parameter_table(columns: &[&str], rows: usize) -> String {
    let first = columns
        .iter()
        .map(|c| format!("? AS {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rest = vec!["?"; columns.len()].join(", ");
    let mut out = format!("SELECT {first}");
    for _ in 1..rows {
        out.push_str(" UNION ALL SELECT ");
        out.push_str(&rest);
    }
    out
}

/// The dedupe key of membership `m`, after a `?` bound to [`key_prefix`].
const DEDUPE_KEY: &str = "? || m.pid || COALESCE(':ext' || CAST(m.extension_id AS TEXT), '')";

/// The payload of membership `m` in window `w`.
const PAYLOAD: &str = "'{\"membership\":\"' || m.pid || '\",\"scheme\":' || w.code_json \
     || ',\"coverage_end\":\"' || CAST(m.coverage_end AS TEXT) || '\"}'";

/// `renewal_due_30:` …
fn key_prefix(occasion: Occasion) -> String {
    format!("{}:", occasion.as_str())
}

/// Queues the renewal reminders due on `today` (Asia/Shanghai) that are not queued yet, each
/// due at 08:00 that day. Runs in whatever transaction `db` is; see [`run_once_as_leader`].
#[tracing::instrument(skip(db))]
pub async fn scan<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<ScanReport, DbErr> {
    let backend = db.get_database_backend();
    let schemes = schemes(db).await?;
    let due_at = due_at(today);
    let mut report = ScanReport {
        today,
        due_at,
        renewal_due_30: 0,
        renewal_due_7: 0,
        renewal_grace: 0,
        offer_lapsing: 0,
        offers_lapsed: 0,
    };
    // Lapse first: an offer past its deadline is not reminded.
    report.offers_lapsed = lapse::lapse_offers(db, today, now).await?;
    report.offer_lapsing = lapse::remind_lapsing(db, today, now, due_at).await?;
    for occasion in RENEWAL_OCCASIONS {
        let Some(plan) = Plan::for_day(&schemes, occasion, today) else {
            continue;
        };
        let sql = format!(
            "INSERT INTO outbox (occasion, member_id, dedupe_key, payload, created_at, due_at, attempts, status) \
             SELECT ?, m.member_id, {DEDUPE_KEY}, {PAYLOAD}, ?, ?, 0, 'pending' {} \
             ON CONFLICT (dedupe_key) DO NOTHING",
            plan.due_memberships()
        );
        let mut values: Vec<Value> = vec![
            occasion.as_str().into(),
            key_prefix(occasion).into(),
            now.into(),
            due_at.into(),
        ];
        values.extend(plan.values());
        let queued = db
            .execute_raw(raw_statement(backend, &sql, values))
            .await?
            .rows_affected();
        report.set(occasion, queued);
    }
    Ok(report)
}

/// What [`scan`] would queue on `day`, per occasion and scheme (schemes with nothing to queue
/// are left out). Reads only.
#[tracing::instrument(skip(db))]
pub async fn preview<C: ConnectionTrait>(db: &C, day: NaiveDate) -> Result<Vec<PreviewRow>, DbErr> {
    let backend = db.get_database_backend();
    let schemes = schemes(db).await?;
    let mut out = Vec::new();
    for occasion in RENEWAL_OCCASIONS {
        let Some(plan) = Plan::for_day(&schemes, occasion, day) else {
            continue;
        };
        let sql = format!(
            "SELECT w.scheme_code AS scheme_code, COUNT(*) AS n {} \
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dedupe_key = {DEDUPE_KEY}) \
             GROUP BY w.scheme_code ORDER BY w.scheme_code",
            plan.due_memberships()
        );
        let mut values = plan.values();
        values.push(key_prefix(occasion).into());
        for row in db
            .query_all_raw(raw_statement(backend, &sql, values))
            .await?
        {
            let n: i64 = row.try_get("", "n")?;
            out.push(PreviewRow {
                occasion,
                scheme_code: row.try_get("", "scheme_code")?,
                messages: u64::try_from(n).unwrap_or(0),
            });
        }
    }
    Ok(out)
}

/// Serialises scans inside one process (SQLite has no advisory locks and only one process).
static IN_PROCESS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Scans `today` in one transaction if this process gets the scan lock; `None` when another
/// replica is scanning right now (PostgreSQL). On SQLite a second caller waits for the first
/// and then finds nothing left to queue.
pub async fn run_once_as_leader(
    db: &DatabaseConnection,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Option<ScanReport>, DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        let txn = db.begin().await?;
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1) AS leader",
                [LEADER_LOCK_KEY.into()],
            ))
            .await?;
        let leader = match row {
            Some(row) => row.try_get::<bool>("", "leader")?,
            None => false,
        };
        if !leader {
            txn.rollback().await?;
            return Ok(None);
        }
        let report = scan(&txn, today, now).await?;
        txn.commit().await?;
        return Ok(Some(report));
    }
    let _turn = IN_PROCESS.lock().await;
    let txn = crate::db::begin_write(db).await?;
    let report = scan(&txn, today, now).await?;
    txn.commit().await?;
    Ok(Some(report))
}

/// The scan loop `serve` runs: a scan at start, then one every `reminders.scan_interval_seconds`.
pub struct Scheduler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Scheduler {
    /// Starts the loop when `reminders.schedule_enabled`; `None` when it is off.
    pub fn start(db: DatabaseConnection, settings: std::sync::Arc<Settings>) -> Option<Scheduler> {
        if !settings.reminders.schedule_enabled {
            tracing::info!("renewal reminder scan disabled (reminders.schedule_enabled = false)");
            return None;
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run_loop(db, settings, stopped));
        Some(Scheduler { stop, task })
    }

    /// Stops the loop: a scan in progress is let finish (its transaction commits or fails
    /// whole), the wait between scans is cut short.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the renewal scan loop ended abnormally");
        }
    }
}

async fn run_loop(
    db: DatabaseConnection,
    settings: std::sync::Arc<Settings>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let every = Duration::from_secs(settings.reminders.scan_interval_seconds.max(1));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        interval_seconds = every.as_secs(),
        "renewal reminder scan scheduled"
    );
    loop {
        tokio::select! {
            biased;
            // A send or a dropped sender both mean stop.
            _ = stopped.changed() => break,
            _ = ticker.tick() => {}
        }
        let today = settings.today();
        let started = Instant::now();
        match run_once_as_leader(&db, today, Utc::now()).await {
            Ok(Some(r)) => tracing::info!(
                %today,
                renewal_due_30 = r.renewal_due_30,
                renewal_due_7 = r.renewal_due_7,
                renewal_grace = r.renewal_grace,
                offer_lapsing = r.offer_lapsing,
                offers_lapsed = r.offers_lapsed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "renewal reminders queued"
            ),
            Ok(None) => {
                tracing::info!(%today, "another replica is scanning; skipped this round")
            }
            Err(e) => tracing::warn!(
                %today,
                error = %e,
                "renewal scan failed; retrying at the next tick"
            ),
        }
    }
    tracing::info!("renewal reminder scan stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn each_window_is_the_range_of_period_ends_due_today() {
        let today = d("2025-12-01");
        assert_eq!(
            end_range(Occasion::RenewalDue30, today, 15),
            Some((d("2025-12-09"), d("2025-12-31")))
        );
        assert_eq!(
            end_range(Occasion::RenewalDue7, today, 15),
            Some((d("2025-12-01"), d("2025-12-08")))
        );
        assert_eq!(
            end_range(Occasion::RenewalGrace, today, 15),
            Some((d("2025-11-16"), d("2025-11-30")))
        );
        assert_eq!(end_range(Occasion::RenewalGrace, today, 0), None);
        assert_eq!(end_range(Occasion::PayoutSent, today, 15), None);
    }

    #[test]
    fn the_windows_of_one_period_follow_each_other_without_gap_or_overlap() {
        let end = d("2026-03-31");
        let mut due = Vec::new();
        let mut day = end - chrono::Duration::days(40);
        while day <= end + chrono::Duration::days(20) {
            let hits: Vec<Occasion> = RENEWAL_OCCASIONS
                .into_iter()
                .filter(|o| end_range(*o, day, 15).is_some_and(|(a, b)| a <= end && end <= b))
                .collect();
            assert!(hits.len() <= 1, "{day}: {hits:?}");
            due.push((day, hits.first().copied()));
            day += chrono::Duration::days(1);
        }
        let first = |o: Occasion| due.iter().find(|(_, h)| *h == Some(o)).map(|(d, _)| *d);
        let last = |o: Occasion| {
            due.iter()
                .rev()
                .find(|(_, h)| *h == Some(o))
                .map(|(d, _)| *d)
        };
        assert_eq!(first(Occasion::RenewalDue30), Some(d("2026-03-01")));
        assert_eq!(last(Occasion::RenewalDue30), Some(d("2026-03-23")));
        assert_eq!(first(Occasion::RenewalDue7), Some(d("2026-03-24")));
        assert_eq!(last(Occasion::RenewalDue7), Some(d("2026-03-31")));
        assert_eq!(first(Occasion::RenewalGrace), Some(d("2026-04-01")));
        assert_eq!(last(Occasion::RenewalGrace), Some(d("2026-04-15")));
    }

    #[test]
    fn messages_are_due_at_eight_in_shanghai() {
        assert_eq!(
            due_at(d("2025-12-24")).to_rfc3339(),
            "2025-12-24T00:00:00+00:00"
        );
    }

    #[test]
    fn the_parameter_table_names_its_columns_once() {
        assert_eq!(
            parameter_table(&["a", "b"], 3),
            "SELECT ? AS a, ? AS b UNION ALL SELECT ?, ? UNION ALL SELECT ?, ?"
        );
    }
}
