//! The dispatcher: sends due outbox messages through the configured SMS provider, exactly once.
//!
//! One run:
//! 1. outside 08:00–21:00 Asia/Shanghai nothing is sent (messages wait, due);
//! 2. messages whose outcome is unknown — a timeout or broken connection after the request
//!    left (`uncertain`), or a dispatcher that stopped while holding them (`sending` with an
//!    expired lease) — are looked up at the provider by our message id before anything else:
//!    sent → `accepted` (or `delivered` / `undelivered` when the provider's record holds the
//!    operator's report, and any receipt kept for it applied: see `super::receipts`); not
//!    sent → due again; the provider cannot tell → asked again later, backing off (at about
//!    t, 2t, 4t … after the attempt), and after a day marked `failed` (`outcome_unknown`) for
//!    an officer to resend by hand;
//! 3. due `pending` messages are leased (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas
//!    share the work; SQLite has one writer) and marked `sending` with a lease and a fresh
//!    lease token, the attempt recorded *before* the provider is called;
//! 4. with the WeChat channel on, each leased message whose occasion has a subscribe message
//!    and whose member signed in with the mini-program is offered to WeChat first — once: the
//!    offer is recorded (`wechat_tried_at`) before the call, and a message already offered
//!    goes by SMS whatever became of the offer. WeChat's refusal (43101: no subscription
//!    left; any other errcode) or silence sends it by SMS in the same round. WeChat has no
//!    look-up, so an offer whose answer was lost may reach the member in WeChat *and* by SMS
//!    — on two channels, never twice on one;
//! 5. per-number limits (slots for the whole batch taken at once) defer what would exceed
//!    them; a template without the provider's template id holds its messages
//!    (`waiting_template`) until it is set; messages sharing template and parameters go in one
//!    call, up to the provider's maximum;
//! 6. the outcomes of a call are written, all of them in one statement (each row still a
//!    compare-and-set on its lease token): accepted (never sent again), rejected for good
//!    (`failed`), a limit or provider error (due again after exponential backoff with
//!    jitter), unknown or missing from the provider's answer (`uncertain`, see 2).
//!
//! Any number of dispatchers may overlap — replicas, `huzhu reminders run-once`, a restarted
//! process — because every change of a message after it is leased is a compare-and-set: on
//! the lease token for the holder (its outcome, a deferral, a failure), and on the status and
//! token it was read with, its lease still run out, for a dispatcher reconciling it. A message
//! leased afresh since it was read is therefore never put back nor overwritten. The holder
//! confirms its lease (renewing it, same token) before its first call to the provider and
//! again whenever a third of the lease has passed since, and sends only what it still holds:
//! a holder that stalled past its lease sends nothing another dispatcher has taken over. The
//! lease must outlast one call (`reminders.lease_seconds` is refused below three times
//! `sms.timeout_ms`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter,
};
use serde_json::Value;

use entity::{member, membership, outbox};

use super::limits::{NumberLimiter, Permit, in_sending_hours, sending_window_start};
use super::receipts;
use super::templates::{self, Template};
use crate::auth::crypto::{PiiKind, PiiVault};
use crate::integrations::sms::{Lookup, Outcome, Sms, SmsBatch, SmsProvider};
use crate::integrations::wechat::{SubscribeMessage, WeChatClient, WeChatError};
use crate::service::raw_statement;
use crate::settings::MiniprogramState;

/// How the dispatcher behaves.
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// Messages leased per round.
    pub batch: u64,
    /// How long a leased message is held before another dispatcher may look it up.
    pub lease: Duration,
    /// How long after an unknown outcome the provider is asked (its records lag a little).
    pub lookup_after: Duration,
    /// After this long without a clear answer, an unknown outcome is marked failed.
    pub give_up_unknown_after: Duration,
    /// Provider errors are retried this many attempts in all.
    pub max_attempts: i32,
    /// The approved signature.
    pub sign_name: String,
    /// Template variables limited to 6 characters (newer Tencent accounts).
    pub short_params: bool,
    /// Hold messages to 08:00–21:00 Asia/Shanghai.
    pub quiet_hours: bool,
    /// The first retry's delay; each further attempt doubles it (at most an hour), ±50 %.
    pub backoff_base: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            batch: 500,
            lease: Duration::seconds(120),
            lookup_after: Duration::seconds(60),
            give_up_unknown_after: Duration::hours(24),
            max_attempts: 8,
            sign_name: "职工互助".into(),
            short_params: false,
            quiet_hours: true,
            backoff_base: Duration::seconds(30),
        }
    }
}

impl DispatchConfig {
    /// The configured lease, look-up delay, backoff, batch size and quiet hours
    /// (`reminders.*`, checked at start-up); the rest as [`DispatchConfig::default`].
    pub fn from_settings(reminders: &crate::settings::RemindersSettings) -> Self {
        let seconds = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
        DispatchConfig {
            batch: reminders.batch_size,
            lease: seconds(reminders.lease_seconds),
            lookup_after: seconds(reminders.lookup_after_seconds),
            backoff_base: seconds(reminders.backoff_base_seconds),
            quiet_hours: reminders.quiet_hours,
            ..DispatchConfig::default()
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Outside sending hours: nothing was sent.
    pub quiet: bool,
    pub leased: u64,
    pub accepted: u64,
    pub failed: u64,
    /// Due again later (limits, provider errors).
    pub deferred: u64,
    pub uncertain: u64,
    /// Unknown outcomes the provider confirmed as sent.
    pub confirmed_sent: u64,
    /// Unknown outcomes the provider had no record of (due again).
    pub confirmed_unsent: u64,
    /// Held until their template's provider id is set (`waiting_template`).
    pub waiting_template: u64,
    /// Of `accepted`, those WeChat took as subscribe messages.
    pub wechat: u64,
    /// Offered to WeChat, refused or unanswered, and so sent by SMS.
    pub wechat_fallbacks: u64,
}

impl RunReport {
    /// Adds another round's counts to these.
    pub fn add(&mut self, r: &RunReport) {
        self.quiet |= r.quiet;
        self.leased += r.leased;
        self.accepted += r.accepted;
        self.failed += r.failed;
        self.deferred += r.deferred;
        self.uncertain += r.uncertain;
        self.confirmed_sent += r.confirmed_sent;
        self.confirmed_unsent += r.confirmed_unsent;
        self.waiting_template += r.waiting_template;
        self.wechat += r.wechat;
        self.wechat_fallbacks += r.wechat_fallbacks;
    }
}

/// A point of a round between leasing (or reading) a message and writing its outcome, where
/// [`Dispatcher::faults`] may stop the dispatcher as a crash would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// A message with an unknown outcome was read; the provider not yet asked.
    Reconciling,
    /// The provider answered a look-up; the answer not yet written.
    LookedUp,
    /// Due messages leased (committed); nothing else done.
    Leased,
    /// WeChat offers recorded; WeChat not yet called.
    Offering,
    /// WeChat answered the offers; the answers not yet written.
    Offered,
    /// A per-number slot taken for one message.
    SlotTaken,
    /// A call to the provider is about to be made.
    Sending,
    /// The provider answered a call; its outcomes not yet written.
    Sent,
    /// A call's outcomes written (one statement); receipts kept for them not yet applied.
    Recorded,
}

/// What a fault hook makes of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Continue,
    /// Stop here, as if the process were killed: the round ends with an error and nothing
    /// more is written.
    Crash,
}

/// Called at every [`Step`] (tests inject crashes and orderings with it; `None` in service).
pub type FaultHook = Arc<dyn Fn(Step) -> Pin<Box<dyn Future<Output = Fault> + Send>> + Send + Sync>;

/// What a renewal reminder calls the protection of a member with one scheme.
pub const GENERIC_SCHEME_NAME: &str = "职工医疗互助保障";

/// A message's payload, with `scheme_name` added when it is known.
fn with_scheme_name(payload: &str, name: Option<&String>) -> Value {
    let mut payload: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    if let (Some(name), Some(object)) = (name, payload.as_object_mut()) {
        object
            .entry("scheme_name")
            .or_insert_with(|| Value::String(name.clone()));
    }
    payload
}

/// The status of a message held because its template has no id at the provider yet.
pub const WAITING_TEMPLATE: &str = "waiting_template";

/// Our id of an outbox message towards the providers.
pub fn message_id(outbox_id: i64) -> String {
    format!("hz{outbox_id}")
}

fn outbox_id(message_id: &str) -> Option<i64> {
    message_id.strip_prefix("hz")?.parse().ok()
}

/// Sends due messages.
pub struct Dispatcher {
    pub db: DatabaseConnection,
    pub pii: Arc<PiiVault>,
    pub provider: Arc<dyn SmsProvider>,
    pub limiter: Arc<NumberLimiter>,
    pub config: DispatchConfig,
    /// The WeChat subscribe-message channel, tried before SMS when set.
    pub wechat: Option<WeChatChannel>,
    /// Fault injection for tests; `None` in service.
    pub faults: Option<FaultHook>,
}

/// The WeChat subscribe-message channel.
#[derive(Clone, Debug)]
pub struct WeChatChannel {
    pub client: WeChatClient,
    pub miniprogram_state: MiniprogramState,
    /// Subscribe messages in flight at once (WeChat takes one per call).
    pub concurrency: usize,
}

#[derive(Debug, FromQueryResult)]
struct Leased {
    id: i64,
    occasion: String,
    member_id: i64,
    payload: String,
    attempts: i32,
    wechat_tried_at: Option<DateTime<Utc>>,
}

/// How a member can be reached.
#[derive(Clone, Debug, Default)]
struct Contact {
    /// The phone number and its look-up hash.
    phone: Option<(String, String)>,
    openid: Option<String>,
}

/// Template and parameters: messages sharing them go in one call.
type BatchKey = (String, Vec<(String, String)>);

/// A message ready for the provider.
struct Ready {
    id: i64,
    phone: String,
    template: String,
    params: Vec<(String, String)>,
}

/// One message's outcome of a call: the columns it writes (see [`Dispatcher::write_held`]).
struct RowWrite {
    id: i64,
    values: Vec<(&'static str, sea_orm::Value)>,
}

/// The state of a message a write expects to find: every write after the lease is a
/// compare-and-set on it.
#[derive(Clone, Copy, Debug)]
enum Expect<'a> {
    /// Leased in this round under this token, still `sending`.
    Held(&'a str),
    /// As reconciling read it: this status and token, and a `sending` message only while its
    /// lease is still run out at `expired_at` (a renewed lease means its holder is back).
    Found {
        status: &'a str,
        token: Option<&'a str>,
        expired_at: Option<DateTime<Utc>>,
    },
}

impl Expect<'_> {
    fn condition(self) -> Condition {
        match self {
            Expect::Held(token) => Condition::all()
                .add(outbox::Column::Status.eq("sending"))
                .add(outbox::Column::LeaseToken.eq(token)),
            Expect::Found {
                status,
                token,
                expired_at,
            } => {
                let mut c =
                    Condition::all()
                        .add(outbox::Column::Status.eq(status))
                        .add(match token {
                            Some(t) => outbox::Column::LeaseToken.eq(t),
                            None => outbox::Column::LeaseToken.is_null(),
                        });
                if let Some(at) = expired_at {
                    c = c.add(outbox::Column::LeaseUntil.lt(at));
                }
                c
            }
        }
    }
}

/// This round's lease on the messages it took.
struct Lease {
    /// Fresh for each lease; written on the messages and checked by every later write.
    token: String,
    /// When the lease was last known to be ours (taken or renewed).
    confirmed: Instant,
    /// The round's `now`, and when the round started.
    now: DateTime<Utc>,
    started: Instant,
}

impl Lease {
    fn new(now: DateTime<Utc>) -> Self {
        Lease {
            token: uuid::Uuid::new_v4().simple().to_string(),
            confirmed: Instant::now(),
            now,
            started: Instant::now(),
        }
    }

    /// The round's `now` moved on by the real time passed: a lease runs from when it is taken
    /// or renewed, however long the round has taken so far.
    fn at(&self) -> DateTime<Utc> {
        self.now + since(self.started)
    }
}

/// Real time passed since `started`, to move a round's `now` on by.
fn since(started: Instant) -> Duration {
    Duration::from_std(started.elapsed()).unwrap_or(Duration::zero())
}

/// Back to `pending`: no longer held by anyone.
fn released() -> [(outbox::Column, SimpleExpr); 2] {
    [
        (
            outbox::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        ),
        (
            outbox::Column::LeaseToken,
            Expr::value(Option::<String>::None),
        ),
    ]
}

/// How long until an uncertain message is looked up again, `age` after its attempt: as long
/// as it has been (so the gaps double), at least `lookup_after`, at most an hour, ±25 %.
fn lookup_backoff(lookup_after: Duration, age: Duration) -> Duration {
    let gap = std::cmp::Ord::min(age, Duration::hours(1));
    let gap = std::cmp::Ord::max(gap, lookup_after);
    let jitter = rand::rng().random_range(0.75..1.25);
    Duration::milliseconds((gap.num_milliseconds() as f64 * jitter) as i64)
}

fn backoff(base: Duration, attempts: i32) -> Duration {
    let grown = base
        .num_milliseconds()
        .saturating_mul(1i64 << attempts.clamp(0, 7));
    let capped = std::cmp::Ord::min(grown, 3_600_000);
    let jitter = rand::rng().random_range(0.5..1.5);
    Duration::milliseconds((capped as f64 * jitter) as i64)
}

impl Dispatcher {
    /// Passes `step`, unless the fault hook stops the dispatcher there.
    async fn step(&self, step: Step) -> Result<(), DbErr> {
        match &self.faults {
            Some(hook) if hook(step).await == Fault::Crash => {
                Err(DbErr::Custom(format!("injected crash at {step:?}")))
            }
            _ => Ok(()),
        }
    }

    fn template_id(&self, t: &Template) -> Option<String> {
        match self.provider.name() {
            "tencent" => t.tencent_template_id.clone(),
            "aliyun" => t.aliyun_template_code.clone(),
            _ => Some(t.occasion.clone()),
        }
        .filter(|s| !s.trim().is_empty())
    }

    /// Runs until no due message is left (or a round leases nothing new), starting at `now`;
    /// each later round at `now` plus the time that has passed, so a lease taken late in a long
    /// run lasts from when it is taken.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<RunReport, DbErr> {
        let started = Instant::now();
        let mut total = RunReport::default();
        let mut round_at = now;
        loop {
            let r = self.run_once(round_at).await?;
            round_at = now + since(started);
            total.add(&r);
            if r.quiet || r.leased == 0 {
                return Ok(total);
            }
        }
    }

    /// One round: reconcile unknown outcomes, then lease and send one batch of due messages.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<RunReport, DbErr> {
        let mut report = RunReport::default();
        if self.config.quiet_hours && !in_sending_hours(now) {
            report.quiet = true;
            return Ok(report);
        }
        let mut lease = Lease::new(now);
        self.reconcile(now, &mut report).await?;
        let leased = self.lease(now, lease.at(), &lease.token).await?;
        lease.confirmed = Instant::now();
        report.leased = leased.len() as u64;
        if leased.is_empty() {
            return Ok(report);
        }
        self.step(Step::Leased).await?;
        let contacts = self.contacts(leased.iter().map(|c| c.member_id)).await?;
        let templates: HashMap<String, Template> = templates::all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.occasion.clone(), t))
            .collect();
        let token = lease.token.clone();
        let held = Expect::Held(&token);
        let schemes = self.scheme_names(&leased).await?;
        let done = self
            .offer_to_wechat(
                &leased,
                &contacts,
                &templates,
                &schemes,
                &mut lease,
                &mut report,
            )
            .await?;
        let mut candidates = Vec::new();
        let mut keys: HashMap<i64, String> = HashMap::new();
        for c in leased.iter().filter(|c| !done.contains(&c.id)) {
            let Some((phone, lookup)) = contacts.get(&c.member_id).and_then(|m| m.phone.as_ref())
            else {
                self.fail(
                    c.id,
                    held,
                    "no_phone",
                    "参互职工没有手机号码 / the member has no phone number",
                    now,
                )
                .await?;
                report.failed += 1;
                continue;
            };
            let Some(template) = templates.get(&c.occasion) else {
                self.fail(
                    c.id,
                    held,
                    "template_missing",
                    "没有此类短信模板 / no template for this occasion",
                    now,
                )
                .await?;
                report.failed += 1;
                continue;
            };
            let Some(template_id) = self.template_id(template) else {
                // Held, not failed: the messages go once an administrator enters the id.
                self.hold_for_template(c.id, held, now).await?;
                report.waiting_template += 1;
                continue;
            };
            let payload = with_scheme_name(&c.payload, schemes.get(&c.id));
            let params = match templates::fill(template, &payload, self.config.short_params) {
                Ok(p) => p,
                Err(missing) => {
                    self.fail(
                        c.id,
                        held,
                        "param_missing",
                        &format!("缺少参数 {missing}"),
                        now,
                    )
                    .await?;
                    report.failed += 1;
                    continue;
                }
            };
            keys.insert(c.id, lookup.clone());
            candidates.push(Ready {
                id: c.id,
                phone: phone.clone(),
                template: template_id,
                params,
            });
        }
        // Per-number slots for the whole batch in one go (one Redis script call).
        let numbers: Vec<&str> = candidates
            .iter()
            .map(|r| keys.get(&r.id).map_or("", String::as_str))
            .collect();
        let permits: Vec<Option<Permit>> = match self.limiter.take_many(&numbers, now).await {
            Ok(permits) => permits.into_iter().map(Some).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "per-number limits unavailable; messages deferred");
                vec![None; candidates.len()]
            }
        };
        let mut ready = Vec::new();
        for (r, permit) in candidates.into_iter().zip(permits) {
            match permit {
                Some(Permit::Granted) => {
                    self.step(Step::SlotTaken).await?;
                    ready.push(r);
                }
                Some(Permit::NotBefore(at)) => {
                    self.defer(r.id, held, at, now).await?;
                    report.deferred += 1;
                }
                None => {
                    self.defer(r.id, held, now + Duration::minutes(1), now)
                        .await?;
                    report.deferred += 1;
                }
            }
        }
        let attempts: HashMap<i64, i32> = leased.iter().map(|c| (c.id, c.attempts)).collect();
        // Messages sharing template and parameters go together.
        let mut groups: BTreeMap<BatchKey, Vec<Ready>> = BTreeMap::new();
        for r in ready {
            groups
                .entry((r.template.clone(), r.params.clone()))
                .or_default()
                .push(r);
        }
        let max = self.provider.max_batch().max(1);
        let calls: Vec<(&BatchKey, &[Ready])> = groups
            .iter()
            .flat_map(|(key, members)| members.chunks(max).map(move |chunk| (key, chunk)))
            .collect();
        // A third of the lease: confirming this often leaves two thirds for the call itself.
        let reconfirm = (self.config.lease / 3).to_std().unwrap_or_default();
        let mut lost: HashSet<i64> = HashSet::new();
        for (i, ((template, params), chunk)) in calls.iter().enumerate() {
            if i == 0 || lease.confirmed.elapsed() > reconfirm {
                let unsent: Vec<i64> = calls[i..]
                    .iter()
                    .flat_map(|(_, c)| c.iter().map(|r| r.id))
                    .filter(|id| !lost.contains(id))
                    .collect();
                let ours = self.confirm(&unsent, &token, lease.at()).await?;
                lease.confirmed = Instant::now();
                for id in unsent.into_iter().filter(|id| !ours.contains(id)) {
                    tracing::warn!(
                        message = %message_id(id),
                        "lease lost before the call (another dispatcher took the message over): not sent"
                    );
                    if let Some(key) = keys.get(&id)
                        && let Err(e) = self.limiter.give_back(key, now).await
                    {
                        tracing::warn!(error = %e, "could not give back a per-number slot");
                    }
                    lost.insert(id);
                }
            }
            let chunk: Vec<&Ready> = chunk.iter().filter(|r| !lost.contains(&r.id)).collect();
            if chunk.is_empty() {
                continue;
            }
            let batch = SmsBatch {
                template: template.clone(),
                params: params.clone(),
                sign_name: self.config.sign_name.clone(),
                messages: chunk
                    .iter()
                    .map(|r| Sms {
                        message_id: message_id(r.id),
                        phone: r.phone.clone(),
                    })
                    .collect(),
            };
            self.step(Step::Sending).await?;
            let outcomes = self.provider.send(&batch).await;
            self.step(Step::Sent).await?;
            // Every outcome of the call — taken, refused, unknown, or missing from the answer
            // (unknown too) — in one statement.
            let mut answered: Vec<i64> = Vec::new();
            let mut accepted: Vec<String> = Vec::new();
            let mut writes: Vec<RowWrite> = Vec::with_capacity(chunk.len());
            for (mid, outcome) in outcomes {
                let Some(id) = outbox_id(&mid) else { continue };
                answered.push(id);
                match &outcome {
                    Outcome::Accepted { provider_id } => accepted.push(provider_id.clone()),
                    Outcome::Rejected { .. } => {
                        // It never reached the provider: its per-number slot is given back.
                        if let Some(key) = keys.get(&id)
                            && let Err(e) = self.limiter.give_back(key, now).await
                        {
                            tracing::warn!(error = %e, "could not give back a per-number slot");
                        }
                    }
                    Outcome::Unknown { .. } => {}
                }
                let tried = attempts.get(&id).copied().unwrap_or(1);
                writes.push(self.outcome_write(id, outcome, tried, now, &mut report));
            }
            for r in chunk.iter().filter(|r| !answered.contains(&r.id)) {
                let outcome = Outcome::Unknown {
                    reason: "not in the provider's answer".into(),
                };
                let tried = attempts.get(&r.id).copied().unwrap_or(1);
                writes.push(self.outcome_write(r.id, outcome, tried, now, &mut report));
            }
            self.write_held(&writes, &token, now).await?;
            self.step(Step::Recorded).await?;
            // Receipts that overtook this call's answer.
            receipts::apply_kept(&self.db, self.provider.name(), &answered, &accepted, now).await?;
        }
        Ok(report)
    }

    /// What `outcome` of a call writes on message `id` (attempted `attempts` times so far),
    /// counted in `report`: accepted (never sent again); refused for good, or for the last
    /// allowed time, `failed`; refused for now, due again after a backoff; unknown,
    /// `uncertain` and looked up from `lookup_after` on (the token stays: reconciling
    /// compares against it).
    fn outcome_write(
        &self,
        id: i64,
        outcome: Outcome,
        attempts: i32,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> RowWrite {
        let no_lease = ("lease_until", Option::<DateTime<Utc>>::None.into());
        let values: Vec<(&'static str, sea_orm::Value)> = match outcome {
            Outcome::Accepted { provider_id } => {
                report.accepted += 1;
                vec![
                    ("status", "accepted".into()),
                    ("provider_id", provider_id.into()),
                    ("dispatched_at", now.into()),
                    no_lease,
                ]
            }
            Outcome::Rejected {
                code,
                message,
                permanent,
            } if permanent || attempts >= self.config.max_attempts => {
                report.failed += 1;
                let message = if permanent {
                    message
                } else {
                    format!("gave up after {attempts} attempts: {message}")
                };
                vec![
                    ("status", "failed".into()),
                    ("last_error_code", code.into()),
                    ("last_error", message.into()),
                    no_lease,
                ]
            }
            Outcome::Rejected { code, message, .. } => {
                report.deferred += 1;
                let at = now + backoff(self.config.backoff_base, attempts);
                let at = if self.config.quiet_hours {
                    sending_window_start(at)
                } else {
                    at
                };
                vec![
                    ("status", "pending".into()),
                    ("due_at", at.into()),
                    ("last_error_code", code.into()),
                    ("last_error", message.into()),
                    no_lease,
                    ("lease_token", Option::<String>::None.into()),
                ]
            }
            Outcome::Unknown { reason } => {
                report.uncertain += 1;
                vec![
                    ("status", "uncertain".into()),
                    ("due_at", (now + self.config.lookup_after).into()),
                    ("last_error_code", "outcome_unknown".into()),
                    ("last_error", reason.into()),
                    no_lease,
                ]
            }
        };
        RowWrite { id, values }
    }

    /// Writes each of `rows` in one statement, each only if still held under `token` (a
    /// compare-and-set per row); how many were. A column every row sets alike is set plainly,
    /// one that differs is a `CASE` on the id keeping what a row does not set.
    async fn write_held(
        &self,
        rows: &[RowWrite],
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, DbErr> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut columns: Vec<&'static str> = Vec::new();
        for (column, _) in rows.iter().flat_map(|r| &r.values) {
            if !columns.contains(column) {
                columns.push(column);
            }
        }
        let mut sql = String::from("UPDATE outbox SET ");
        let mut values: Vec<sea_orm::Value> = Vec::new();
        for column in &columns {
            let each: Vec<Option<&sea_orm::Value>> = rows
                .iter()
                .map(|r| r.values.iter().find(|(c, _)| c == column).map(|(_, v)| v))
                .collect();
            match each[0] {
                Some(first) if each.iter().all(|v| *v == Some(first)) => {
                    sql.push_str(&format!("{column} = ?, "));
                    values.push(first.clone());
                }
                _ => {
                    sql.push_str(&format!("{column} = CASE id"));
                    for (row, value) in rows.iter().zip(&each) {
                        if let Some(value) = value {
                            sql.push_str(" WHEN ? THEN ?");
                            values.push(row.id.into());
                            values.push((*value).clone());
                        }
                    }
                    sql.push_str(&format!(" ELSE {column} END, "));
                }
            }
        }
        sql.push_str("updated_at = ? WHERE status = 'sending' AND lease_token = ? AND id IN (");
        values.push(now.into());
        values.push(token.into());
        for (i, row) in rows.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            values.push(row.id.into());
        }
        sql.push(')');
        let backend = self.db.get_database_backend();
        let written = self
            .db
            .execute_raw(raw_statement(backend, &sql, values))
            .await?
            .rows_affected();
        if written < rows.len() as u64 {
            // Only a holder stalled past its lease gets here; what it has to say is dropped.
            tracing::warn!(
                outcomes = rows.len(),
                written,
                "lease lost on some messages: their outcome is left to the dispatcher holding them now"
            );
        }
        Ok(written)
    }

    /// Writes `values` if the message is as `expect` says; whether it was.
    async fn set(
        &self,
        id: i64,
        expect: Expect<'_>,
        mut values: Vec<(outbox::Column, SimpleExpr)>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        if !values
            .iter()
            .any(|(c, _)| matches!(c, outbox::Column::UpdatedAt))
        {
            values.push((outbox::Column::UpdatedAt, Expr::value(now)));
        }
        let mut update = outbox::Entity::update_many();
        for (c, v) in values {
            update = update.col_expr(c, v);
        }
        let r = update
            .filter(outbox::Column::Id.eq(id))
            .filter(expect.condition())
            .exec(&self.db)
            .await?;
        if r.rows_affected == 0 && matches!(expect, Expect::Held(_)) {
            // Only a holder stalled past its lease gets here; what it has to say is dropped.
            tracing::warn!(
                message = %message_id(id),
                "lease lost: the outcome is left to the dispatcher holding the message now"
            );
        }
        Ok(r.rows_affected == 1)
    }

    /// The provider (or WeChat) took the message: `accepted`, never to be sent again.
    async fn accept(
        &self,
        id: i64,
        expect: Expect<'_>,
        provider_id: Option<String>,
        dispatched_at: DateTime<Utc>,
        mut values: Vec<(outbox::Column, SimpleExpr)>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        values.extend([
            (outbox::Column::Status, Expr::value("accepted")),
            (outbox::Column::ProviderId, Expr::value(provider_id)),
            (outbox::Column::DispatchedAt, Expr::value(dispatched_at)),
            (
                outbox::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            ),
        ]);
        self.set(id, expect, values, now).await
    }

    async fn fail(
        &self,
        id: i64,
        expect: Expect<'_>,
        code: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        self.set(
            id,
            expect,
            vec![
                (outbox::Column::Status, Expr::value("failed")),
                (outbox::Column::LastErrorCode, Expr::value(code)),
                (outbox::Column::LastError, Expr::value(message)),
                (
                    outbox::Column::LeaseUntil,
                    Expr::value(Option::<DateTime<Utc>>::None),
                ),
            ],
            now,
        )
        .await
    }

    /// `waiting_template`: the occasion's template has no id at this provider yet. The attempt
    /// is not counted; setting the id puts the message back (`templates::update`).
    async fn hold_for_template(
        &self,
        id: i64,
        held: Expect<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let mut values = vec![
            (outbox::Column::Status, Expr::value(WAITING_TEMPLATE)),
            (
                outbox::Column::LastErrorCode,
                Expr::value("template_not_configured"),
            ),
            (
                outbox::Column::LastError,
                Expr::value(format!(
                    "短信模板未填写{}模板编号，填写后自动发送 / waiting for the template's {} id",
                    self.provider.name(),
                    self.provider.name()
                )),
            ),
            (
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).sub(1),
            ),
        ];
        values.extend(released());
        self.set(id, held, values, now).await
    }

    /// Back to `pending`, due at `at`, before the provider was called (a per-number limit):
    /// the attempt is not counted.
    async fn defer(
        &self,
        id: i64,
        held: Expect<'_>,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let at = if self.config.quiet_hours {
            sending_window_start(at)
        } else {
            at
        };
        let mut values = vec![
            (outbox::Column::Status, Expr::value("pending")),
            (outbox::Column::DueAt, Expr::value(at)),
            (
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).sub(1),
            ),
        ];
        values.extend(released());
        self.set(id, held, values, now).await?;
        Ok(())
    }

    /// Leases messages due at `now`: marks them `sending` under `token` with a lease from
    /// `leased_at` and counts the attempt, in one statement.
    async fn lease(
        &self,
        now: DateTime<Utc>,
        leased_at: DateTime<Utc>,
        token: &str,
    ) -> Result<Vec<Leased>, DbErr> {
        let backend = self.db.get_database_backend();
        let skip_locked = if backend == DbBackend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE outbox SET status = 'sending', lease_until = ?, lease_token = ?, \
             attempts = attempts + 1, updated_at = ?, provider = ?, channel = 'sms' \
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND due_at <= ? \
             ORDER BY due_at, id LIMIT ?{skip_locked}) \
             RETURNING id, occasion, member_id, payload, attempts, wechat_tried_at"
        );
        let stmt = raw_statement(
            backend,
            &sql,
            vec![
                (leased_at + self.config.lease).into(),
                token.into(),
                leased_at.into(),
                self.provider.name().into(),
                now.into(),
                (self.config.batch as i64).into(),
            ],
        );
        let txn = crate::db::begin_write(&self.db).await?;
        let rows = Leased::find_by_statement(stmt).all(&txn).await?;
        txn.commit().await?;
        Ok(rows)
    }

    /// Renews the lease on those of `ids` still held under `token` (at `at`, which also
    /// becomes the attempt's time) and returns them: only these may go to the provider.
    async fn confirm(
        &self,
        ids: &[i64],
        token: &str,
        at: DateTime<Utc>,
    ) -> Result<HashSet<i64>, DbErr> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        Ok(outbox::Entity::update_many()
            .col_expr(
                outbox::Column::LeaseUntil,
                Expr::value(at + self.config.lease),
            )
            .col_expr(outbox::Column::UpdatedAt, Expr::value(at))
            .filter(outbox::Column::Id.is_in(ids.iter().copied()))
            .filter(Expect::Held(token).condition())
            .exec_with_returning(&self.db)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect())
    }

    /// `scheme_name` of each leased message whose payload names a scheme (renewal reminders):
    /// the scheme's display name where the member holds active memberships of several schemes
    /// (families: yearly versions count as one), so that their reminders tell which is meant;
    /// [`GENERIC_SCHEME_NAME`] otherwise.
    async fn scheme_names(&self, leased: &[Leased]) -> Result<HashMap<i64, String>, DbErr> {
        let named: Vec<(i64, i64, String)> = leased
            .iter()
            .filter_map(|c| {
                let payload: Value = serde_json::from_str(&c.payload).ok()?;
                let code = payload.get("scheme")?.as_str()?.to_owned();
                Some((c.id, c.member_id, code))
            })
            .collect();
        if named.is_empty() {
            return Ok(HashMap::new());
        }
        let mut schemes_of: HashMap<i64, HashSet<String>> = HashMap::new();
        for m in membership::Entity::find()
            .filter(membership::Column::MemberId.is_in(named.iter().map(|(_, m, _)| *m)))
            .filter(membership::Column::Status.eq("active"))
            .all(&self.db)
            .await?
        {
            // Yearly versions of one product are one scheme to the member.
            schemes_of
                .entry(m.member_id)
                .or_default()
                .insert(crate::service::enrolment::scheme_family(&m.scheme_code).to_owned());
        }
        let display: HashMap<String, String> = crate::service::scheme::all_latest(&self.db)
            .await?
            .into_iter()
            .map(|s| (s.definition.code, s.definition.display.display_name_zh))
            .collect();
        Ok(named
            .into_iter()
            .map(|(id, member, code)| {
                let several = schemes_of.get(&member).is_some_and(|s| s.len() > 1);
                let name = match display.get(&code) {
                    Some(name) if several => name.clone(),
                    None if several => code,
                    _ => GENERIC_SCHEME_NAME.to_owned(),
                };
                (id, name)
            })
            .collect())
    }

    /// Each member's phone (with its look-up hash) and WeChat openid.
    async fn contacts(
        &self,
        member_ids: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, Contact>, DbErr> {
        let ids: Vec<i64> = member_ids.collect();
        let mut out = HashMap::new();
        for m in member::Entity::find()
            .filter(member::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
        {
            let phone = match (m.phone_cipher, m.phone_lookup) {
                (Some(cipher), Some(lookup)) => self
                    .pii
                    .open(PiiKind::Phone, &cipher)
                    .ok()
                    .map(|phone| (phone, lookup)),
                _ => None,
            };
            let openid = m.wechat_openid.filter(|o| !o.is_empty());
            out.insert(m.id, Contact { phone, openid });
        }
        Ok(out)
    }

    /// Offers to WeChat the leased messages that can go as subscribe messages and were never
    /// offered before; returns the ids that need nothing more this round (WeChat took them, or
    /// they are no longer ours). The rest go on by SMS.
    async fn offer_to_wechat(
        &self,
        leased: &[Leased],
        contacts: &HashMap<i64, Contact>,
        templates: &HashMap<String, Template>,
        schemes: &HashMap<i64, String>,
        lease: &mut Lease,
        report: &mut RunReport,
    ) -> Result<HashSet<i64>, DbErr> {
        let now = lease.now;
        let mut done = HashSet::new();
        let Some(channel) = &self.wechat else {
            return Ok(done);
        };
        // (id, the message, or the placeholder its payload lacks)
        let mut offers: Vec<(i64, Result<SubscribeMessage, String>)> = Vec::new();
        for c in leased.iter().filter(|c| c.wechat_tried_at.is_none()) {
            let (Some(openid), Some(template)) = (
                contacts.get(&c.member_id).and_then(|m| m.openid.as_ref()),
                templates.get(&c.occasion).and_then(|t| t.wechat.as_ref()),
            ) else {
                continue;
            };
            let payload = with_scheme_name(&c.payload, schemes.get(&c.id));
            let message =
                templates::fill_wechat(template, &payload).map(|content| SubscribeMessage {
                    touser: openid.clone(),
                    template_id: template.template_id.clone(),
                    page: content.page,
                    data: content.data,
                    miniprogram_state: channel.miniprogram_state.as_str().to_owned(),
                    lang: "zh_CN".to_owned(),
                });
            offers.push((c.id, message));
        }
        if offers.is_empty() {
            return Ok(done);
        }
        // The offer is recorded before WeChat is called: a message is never offered twice. The
        // lease is renewed with it, for the offers take a while.
        let ids: Vec<i64> = offers.iter().map(|(id, _)| *id).collect();
        let at = lease.at();
        let ours: HashSet<i64> = outbox::Entity::update_many()
            .col_expr(outbox::Column::WechatTriedAt, Expr::value(now))
            .col_expr(outbox::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                outbox::Column::LeaseUntil,
                Expr::value(at + self.config.lease),
            )
            .filter(outbox::Column::Id.is_in(ids.clone()))
            .filter(Expect::Held(&lease.token).condition())
            .exec_with_returning(&self.db)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        lease.confirmed = Instant::now();
        done.extend(ids.into_iter().filter(|id| !ours.contains(id)));
        self.step(Step::Offering).await?;
        let calls = offers.into_iter().filter(|(id, _)| ours.contains(id)).map(
            |(id, message)| async move {
                let outcome = match message {
                    Ok(m) => channel.client.send_subscribe_message(&m).await,
                    Err(missing) => Err(WeChatError::UnexpectedResponse(format!(
                        "not sent: the payload lacks {missing}"
                    ))),
                };
                (id, outcome)
            },
        );
        let outcomes: Vec<(i64, Result<Option<String>, WeChatError>)> =
            futures_util::stream::iter(calls)
                .buffer_unordered(channel.concurrency.max(1))
                .collect()
                .await;
        self.step(Step::Offered).await?;
        for (id, outcome) in outcomes {
            match outcome {
                Ok(msgid) => {
                    self.accept(
                        id,
                        Expect::Held(&lease.token),
                        msgid,
                        now,
                        vec![
                            (outbox::Column::Channel, Expr::value("wechat")),
                            (outbox::Column::Provider, Expr::value("wechat")),
                        ],
                        now,
                    )
                    .await?;
                    report.accepted += 1;
                    report.wechat += 1;
                    done.insert(id);
                }
                Err(err) => {
                    // Kept on the row (the send log says why it went by SMS); SMS follows.
                    let code = match err.errcode() {
                        Some(errcode) => format!("wechat_{errcode}"),
                        None => "wechat_unavailable".to_owned(),
                    };
                    self.set(
                        id,
                        Expect::Held(&lease.token),
                        vec![
                            (outbox::Column::LastErrorCode, Expr::value(code)),
                            (outbox::Column::LastError, Expr::value(err.to_string())),
                        ],
                        now,
                    )
                    .await?;
                    report.wechat_fallbacks += 1;
                }
            }
        }
        Ok(done)
    }

    /// Looks up messages whose outcome is unknown.
    async fn reconcile(&self, now: DateTime<Utc>, report: &mut RunReport) -> Result<(), DbErr> {
        let rows = outbox::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        // `due_at` of an uncertain message: when to ask (next).
                        Condition::all()
                            .add(outbox::Column::Status.eq("uncertain"))
                            .add(outbox::Column::DueAt.lte(now)),
                    )
                    .add(
                        Condition::all()
                            .add(outbox::Column::Status.eq("sending"))
                            .add(outbox::Column::LeaseUntil.lt(now)),
                    ),
            )
            .all(&self.db)
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let contacts = self.contacts(rows.iter().map(|r| r.member_id)).await?;
        for row in rows {
            // As read: a dispatcher that has since put it back, leased it afresh or renewed
            // its lease makes every write below a no-op.
            let from = Expect::Found {
                status: &row.status,
                token: row.lease_token.as_deref(),
                expired_at: (row.status == "sending").then_some(now),
            };
            let Some((phone, number_key)) =
                contacts.get(&row.member_id).and_then(|m| m.phone.as_ref())
            else {
                continue;
            };
            let attempted_at = row.updated_at.unwrap_or(row.created_at);
            self.step(Step::Reconciling).await?;
            let found = self
                .provider
                .lookup(
                    phone,
                    attempted_at,
                    &message_id(row.id),
                    row.provider_id.as_deref(),
                )
                .await;
            self.step(Step::LookedUp).await?;
            match found {
                Lookup::Sent {
                    provider_id,
                    report: delivery,
                } => {
                    let provider_id = provider_id.or(row.provider_id.clone());
                    if self
                        .accept(row.id, from, provider_id.clone(), attempted_at, vec![], now)
                        .await?
                    {
                        report.confirmed_sent += 1;
                        // What the provider's record says of delivery, then any receipt that
                        // came before we knew the message was sent (Tencent's name it by the
                        // SerialNo the look-up has just told us).
                        if let Some(delivery) = &delivery {
                            receipts::apply_report(
                                &self.db,
                                self.provider.name(),
                                row.id,
                                phone,
                                delivery,
                                now,
                            )
                            .await?;
                        }
                        receipts::apply_kept(
                            &self.db,
                            self.provider.name(),
                            &[row.id],
                            &provider_id.into_iter().collect::<Vec<_>>(),
                            now,
                        )
                        .await?;
                    }
                }
                Lookup::NotSent => {
                    let mut values = vec![
                        (outbox::Column::Status, Expr::value("pending")),
                        (outbox::Column::DueAt, Expr::value(now)),
                    ];
                    values.extend(released());
                    if self.set(row.id, from, values, now).await? {
                        // It never reached the provider: its per-number slot is given back
                        // (once: only by the dispatcher that put it back).
                        if let Err(e) = self.limiter.give_back(number_key, attempted_at).await {
                            tracing::warn!(error = %e, "could not give back a per-number slot");
                        }
                        report.confirmed_unsent += 1;
                    }
                }
                Lookup::Unknown { reason } => {
                    if now - attempted_at > self.config.give_up_unknown_after {
                        let values = vec![
                            (outbox::Column::Status, Expr::value("failed")),
                            (
                                outbox::Column::LastErrorCode,
                                Expr::value("outcome_unknown"),
                            ),
                            (outbox::Column::LastError, Expr::value(reason)),
                        ];
                        if self.set(row.id, from, values, now).await? {
                            report.failed += 1;
                        }
                    } else {
                        // Asked again later, backing off: the gap grows with the time since
                        // the attempt (so look-ups go at about t, 2t, 4t … after it, at least
                        // `lookup_after` and at most an hour apart). A stopped dispatcher's
                        // message becomes `uncertain`, without the lease (the token stays: the
                        // next look-up compares against it). The attempt's time
                        // (`updated_at`) is kept: the look-up's window starts there.
                        let next =
                            now + lookup_backoff(self.config.lookup_after, now - attempted_at);
                        self.set(
                            row.id,
                            from,
                            vec![
                                (outbox::Column::Status, Expr::value("uncertain")),
                                (outbox::Column::DueAt, Expr::value(next)),
                                (
                                    outbox::Column::LeaseUntil,
                                    Expr::value(Option::<DateTime<Utc>>::None),
                                ),
                                (
                                    outbox::Column::UpdatedAt,
                                    Expr::col(outbox::Column::UpdatedAt),
                                ),
                            ],
                            now,
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Dispatcher {
    /// A dispatcher over the application's database, sealing keys and Redis (per-number limits
    /// shared across replicas; in process without Redis), signing with `sms.sign_name`.
    pub fn from_state(
        state: &crate::state::AppState,
        provider: Arc<dyn SmsProvider>,
        config: DispatchConfig,
        limits: super::limits::NumberLimits,
    ) -> Self {
        let limiter = match &state.redis {
            Some(redis) => NumberLimiter::redis(
                redis.clone(),
                state.settings.redis.key_prefix.clone(),
                limits,
            ),
            None => NumberLimiter::in_memory(limits),
        };
        let mut config = config;
        // The signature and the variable limit are the provider account's, from settings.
        config.sign_name.clone_from(&state.settings.sms.sign_name);
        config.short_params = state.settings.sms.short_params;
        let reminders = &state.settings.reminders;
        let wechat = reminders.wechat_subscribe.then(|| {
            if state.settings.wechat.secret.is_none() {
                tracing::warn!(
                    "reminders.wechat_subscribe is on without wechat.secret: WeChat will \
                     refuse every subscribe message and they will go by SMS"
                );
            }
            WeChatChannel {
                client: state.wechat.clone(),
                miniprogram_state: reminders.wechat_miniprogram_state,
                concurrency: 16,
            }
        });
        Dispatcher {
            db: state.db.clone(),
            pii: state.pii.clone(),
            provider,
            limiter: Arc::new(limiter),
            config,
            wechat,
            faults: None,
        }
    }

    /// Dispatches every `interval` until `stop` is set (the server's background worker).
    pub async fn run_every(
        self,
        interval: std::time::Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut stop = stop;
        loop {
            match self.run(Utc::now()).await {
                Ok(r) if r.leased + r.confirmed_sent + r.confirmed_unsent > 0 => tracing::info!(
                    leased = r.leased,
                    accepted = r.accepted,
                    failed = r.failed,
                    deferred = r.deferred,
                    uncertain = r.uncertain,
                    waiting_template = r.waiting_template,
                    "reminders dispatched"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reminder dispatch failed; next round retries")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_settings_give_the_default_dispatcher() {
        let from = DispatchConfig::from_settings(&crate::settings::RemindersSettings::default());
        let default = DispatchConfig::default();
        assert_eq!(
            (
                from.batch,
                from.lease,
                from.lookup_after,
                from.backoff_base,
                from.quiet_hours
            ),
            (
                default.batch,
                default.lease,
                default.lookup_after,
                default.backoff_base,
                default.quiet_hours
            )
        );
    }
}
