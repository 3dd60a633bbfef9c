//! Making the offers of one settlement import, a thousand settlements per transaction: the
//! batch's coverage periods are locked ([`lock_periods`], as an approval locks its period and a
//! filing re-checks under it), its settlements, periods, members and their standing claims are
//! read in a handful of statements, each settlement is decided in memory in the import's order
//! ([`super::offer`]'s rules), and the offers, their timeline steps, messages and audit events
//! and the settlements' outcomes are written in multi-row statements. 200,000 settlements cost
//! a few thousand statements, not a dozen per settlement.
//!
//! A batch commits whole or not at all; a job stopped between batches resumes with the
//! settlements still `matched` and makes each offer once.

use std::collections::{BTreeMap, HashMap};
use std::ops::AddAssign;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::json;

use entity::{claim, member, membership, settlement};

use super::filing::{claim_scheme, current_scheme, parse_facts};
use super::offer::{STANDING, overlaps, settlement_facts};
use super::period::{fen, lock_periods, member_period};
use super::timeline::{self, Step};
use super::{ClaimError, ClaimStatus, FiledBy, Level};
use crate::domain::Money;
use crate::engine::claim_rules::{filing_deadline, window_closed};
use crate::engine::period::judge_each_in_filing_order;
use crate::engine::{Event, EventKind, Judgement, SchemeDefinition, bounds};
use crate::service::audit::{self, Actor, Entry};
use crate::service::bulk::{self, Kind};
use crate::service::new_pid;
use crate::service::outbox::{self, Message, Occasion};

/// Settlements decided per transaction.
pub const OFFER_BATCH: usize = 1_000;

/// Transactions making offers at once (one per core of the machine kind).
const WORKERS: usize = 2;

/// The columns of an offer's claim row, as [`write_batch`] writes them.
const CLAIM_COLUMNS: [(&str, Kind); 24] = [
    ("pid", Kind::Text),
    ("member_id", Kind::Int),
    ("membership_id", Kind::Int),
    ("organisation_id", Kind::Int),
    ("member_pid", Kind::Text),
    ("member_name", Kind::Text),
    ("membership_pid", Kind::Text),
    ("scheme_code", Kind::Text),
    ("kind", Kind::Text),
    ("facts", Kind::Text),
    ("status", Kind::Text),
    ("version", Kind::Int),
    ("filed_by_kind", Kind::Text),
    ("filed_by_pid", Kind::Text),
    ("payee_name", Kind::Text),
    ("payee_bank_card_cipher", Kind::Text),
    ("flagged", Kind::Bool),
    ("first_submitted_at", Kind::Timestamp),
    ("scheme_version", Kind::Int),
    ("judgement", Kind::Text),
    ("payable_fen", Kind::Int),
    ("lapses_on", Kind::Date),
    ("created_at", Kind::Timestamp),
    ("updated_at", Kind::Timestamp),
];

/// What the offers of one import came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfferCounts {
    pub offered: u32,
    pub corroborating: u32,
    pub not_offered: u32,
}

impl AddAssign for OfferCounts {
    fn add_assign(&mut self, other: Self) {
        self.offered += other.offered;
        self.corroborating += other.corroborating;
        self.not_offered += other.not_offered;
    }
}

/// Makes the offers of import job `job_id`'s matched settlements (see the module doc), in the
/// order import, then settlement date (the discharge when the file has none), then row. `actor`
/// is the account that imported the file: the audit trail names it; the member's timeline shows
/// the association.
pub async fn make_offers(
    db: &DatabaseConnection,
    job_id: i64,
    actor_pid: &str,
    today: NaiveDate,
) -> Result<OfferCounts, ClaimError> {
    let mut order: Vec<(i64, i64, Option<NaiveDate>, NaiveDate, i32)> = settlement::Entity::find()
        .select_only()
        .column(settlement::Column::Id)
        .column(settlement::Column::MemberId)
        .column(settlement::Column::SettledOn)
        .column(settlement::Column::DischargedOn)
        .column(settlement::Column::Row)
        .filter(settlement::Column::ImportJobId.eq(job_id))
        .filter(settlement::Column::Outcome.eq("matched"))
        .into_tuple()
        .all(db)
        .await?;
    // A row's stay before its diagnosis: stored in that order.
    order.sort_by_key(|(id, _, settled, discharged, row)| {
        (settled.unwrap_or(*discharged), *row, *id)
    });
    // Members split between workers, each member's settlements all in one (so each period's
    // offers are made in the import's order): one worker's statements run while the other
    // decides, and the two cores both work. SQLite's write lock takes them one at a time.
    let mut lanes: Vec<Vec<i64>> = vec![Vec::new(); WORKERS];
    for (id, member_id, ..) in &order {
        lanes[usize::try_from(member_id.rem_euclid(WORKERS as i64)).unwrap_or(0)].push(*id);
    }
    let done = futures_util::future::try_join_all(lanes.iter().map(|lane| async move {
        let mut schemes = Schemes::default();
        let mut counts = OfferCounts::default();
        let mut spent = Spent::default();
        for ids in lane.chunks(OFFER_BATCH) {
            counts += offer_batch(db, &mut schemes, ids, actor_pid, today, &mut spent).await?;
        }
        Ok::<_, ClaimError>((counts, spent))
    }))
    .await?;
    let mut counts = OfferCounts::default();
    let mut spent = Spent::default();
    for (c, s) in done {
        counts += c;
        spent += s;
    }
    tracing::info!(
        job_id,
        offered = counts.offered,
        read_s = spent.read,
        decide_s = spent.decide,
        claims_s = spent.claims,
        steps_s = spent.steps,
        messages_s = spent.messages,
        outcomes_s = spent.outcomes,
        audit_s = spent.audit,
        commit_s = spent.commit,
        "offers made (seconds summed over the workers)"
    );
    Ok(counts)
}

/// Where the time of making offers went, in seconds (logged once per import).
#[derive(Default)]
struct Spent {
    read: f64,
    decide: f64,
    claims: f64,
    steps: f64,
    messages: f64,
    outcomes: f64,
    audit: f64,
    commit: f64,
}

impl AddAssign for Spent {
    fn add_assign(&mut self, o: Self) {
        self.read += o.read;
        self.decide += o.decide;
        self.claims += o.claims;
        self.steps += o.steps;
        self.messages += o.messages;
        self.outcomes += o.outcomes;
        self.audit += o.audit;
        self.commit += o.commit;
    }
}

/// Adds the time since `*mark` to `slot` and moves the mark.
fn lap(mark: &mut std::time::Instant, slot: &mut f64) {
    let now = std::time::Instant::now();
    *slot += (now - *mark).as_secs_f64();
    *mark = now;
}

/// Scheme definitions read once per import: the version in force, and older ones by number.
#[derive(Default)]
struct Schemes {
    current: HashMap<String, (i32, Arc<SchemeDefinition>)>,
    versions: HashMap<(String, i32), Arc<SchemeDefinition>>,
}

impl Schemes {
    async fn current<C: ConnectionTrait>(
        &mut self,
        db: &C,
        code: &str,
    ) -> Result<(i32, Arc<SchemeDefinition>), ClaimError> {
        if let Some((v, def)) = self.current.get(code) {
            return Ok((*v, def.clone()));
        }
        let (v, def) = current_scheme(db, code).await?;
        let def = Arc::new(def);
        self.current.insert(code.to_owned(), (v, def.clone()));
        self.versions.insert((code.to_owned(), v), def.clone());
        Ok((v, def))
    }

    async fn version<C: ConnectionTrait>(
        &mut self,
        db: &C,
        code: &str,
        version: i32,
    ) -> Result<Arc<SchemeDefinition>, ClaimError> {
        let key = (code.to_owned(), version);
        if let Some(def) = self.versions.get(&key) {
            return Ok(def.clone());
        }
        let (_, def) = claim_scheme(db, code, Some(version)).await?;
        let def = Arc::new(def);
        self.versions.insert(key, def.clone());
        Ok(def)
    }
}

/// Which claim a standing claim is: stored, or made earlier in this batch (its id comes with
/// the insert).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClaimRef {
    Stored(i64),
    New(usize),
}

/// A member's claim that still stands for its event, as deciding reads it.
struct Standing {
    claim: ClaimRef,
    membership_id: i64,
    status: ClaimStatus,
    event: Option<Event>,
    /// Its place in the period's filing order, once submitted (drafts have none).
    filed: Option<(DateTime<Utc>, i64)>,
    scheme_version: Option<i32>,
}

/// A member an offer is made to: what the claim keeps of them, and the card it pays to.
struct Person {
    pid: String,
    name: String,
    card: Option<String>,
}

/// What became of one settlement.
enum Decision {
    Corroborates(ClaimRef),
    NotOffered(String),
    Offer(NewOffer),
}

struct NewOffer {
    event: Event,
    judgement: Judgement,
    fen: i64,
    scheme_version: i32,
    lapses_on: Option<NaiveDate>,
}

async fn offer_batch(
    db: &DatabaseConnection,
    schemes: &mut Schemes,
    ids: &[i64],
    actor_pid: &str,
    today: NaiveDate,
    spent: &mut Spent,
) -> Result<OfferCounts, ClaimError> {
    let mut mark = std::time::Instant::now();
    let txn = crate::db::begin_write(db).await?;
    let backend = txn.get_database_backend();
    let rows = settlement::Entity::find()
        .filter(bulk::is_in(backend, "settlement.id", Kind::Int, ids))
        // Decided by an earlier run of the job: not again.
        .filter(settlement::Column::Outcome.eq("matched"))
        .all(&txn)
        .await?;
    let mut by_id: HashMap<i64, settlement::Model> = rows.into_iter().map(|s| (s.id, s)).collect();
    let rows: Vec<settlement::Model> = ids.iter().filter_map(|id| by_id.remove(id)).collect();
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(OfferCounts::default());
    }
    let period_ids: Vec<i64> = sorted_unique(rows.iter().map(|s| s.membership_id));
    lock_periods(&txn, &period_ids).await?;
    // Read again under the lock: a second runner of the same job (a replica resuming it) may
    // have decided some of them while this one waited.
    let undecided: std::collections::HashSet<i64> = settlement::Entity::find()
        .select_only()
        .column(settlement::Column::Id)
        .filter(bulk::is_in(
            backend,
            "settlement.id",
            Kind::Int,
            &rows.iter().map(|s| s.id).collect::<Vec<_>>(),
        ))
        .filter(settlement::Column::Outcome.eq("matched"))
        .into_tuple::<i64>()
        .all(&txn)
        .await?
        .into_iter()
        .collect();
    let rows: Vec<settlement::Model> = rows
        .into_iter()
        .filter(|s| undecided.contains(&s.id))
        .collect();
    let periods: HashMap<i64, membership::Model> = membership::Entity::find()
        .filter(bulk::is_in(
            backend,
            "membership.id",
            Kind::Int,
            &period_ids,
        ))
        .all(&txn)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let member_ids = sorted_unique(rows.iter().map(|s| s.member_id));
    let people: HashMap<i64, Person> = member::Entity::find()
        .select_only()
        .column(member::Column::Id)
        .column(member::Column::Pid)
        .column(member::Column::Name)
        .column(member::Column::BankCardCipher)
        .filter(bulk::is_in(backend, "member.id", Kind::Int, &member_ids))
        .into_tuple::<(i64, String, String, Option<String>)>()
        .all(&txn)
        .await?
        .into_iter()
        .map(|(id, pid, name, card)| (id, Person { pid, name, card }))
        .collect();
    let mut standing: HashMap<i64, Vec<Standing>> = HashMap::new();
    for c in claim::Entity::find()
        .filter(bulk::is_in(
            backend,
            "claim.member_id",
            Kind::Int,
            &member_ids,
        ))
        .filter(claim::Column::Status.is_in(STANDING.iter().map(|s| s.as_str())))
        .all(&txn)
        .await?
    {
        let Some(status) = ClaimStatus::parse(&c.status) else {
            continue;
        };
        standing.entry(c.member_id).or_default().push(Standing {
            claim: ClaimRef::Stored(c.id),
            membership_id: c.membership_id,
            status,
            event: serde_json::from_str(&c.facts).ok(),
            filed: c.first_submitted_at.map(|at| (at, c.id)),
            scheme_version: c.scheme_version,
        });
    }

    lap(&mut mark, &mut spent.read);
    // Decided in order; an offer made here is standing for the settlements after it.
    let now = Utc::now().trunc_subsecs(6);
    let mut decisions: Vec<Decision> = Vec::with_capacity(rows.len());
    let mut made = 0usize;
    for s in &rows {
        let ms = periods
            .get(&s.membership_id)
            .ok_or_else(|| anyhow::anyhow!("settlement {} names no membership", s.pid))?;
        let claims = standing.entry(s.member_id).or_default();
        let decision = decide(&txn, schemes, s, ms, claims, today).await?;
        if let Decision::Offer(offer) = &decision {
            // Its place in the filing order: the moment of the batch, a microsecond apart.
            let at = now + Duration::microseconds(i64::try_from(made).unwrap_or(0));
            claims.push(Standing {
                claim: ClaimRef::New(made),
                membership_id: ms.id,
                status: ClaimStatus::Offered,
                event: Some(offer.event.clone()),
                filed: Some((at, i64::MAX)),
                scheme_version: Some(offer.scheme_version),
            });
            made += 1;
        }
        decisions.push(decision);
    }
    lap(&mut mark, &mut spent.decide);
    let counts = write_batch(
        &txn, &rows, &periods, &people, decisions, actor_pid, now, spent, &mut mark,
    )
    .await?;
    txn.commit().await?;
    lap(&mut mark, &mut spent.commit);
    Ok(counts)
}

fn sorted_unique(ids: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut v: Vec<i64> = ids.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// One settlement's decision, against the member's standing claims (see [`super::offer`]).
async fn decide<C: ConnectionTrait>(
    db: &C,
    schemes: &mut Schemes,
    s: &settlement::Model,
    ms: &membership::Model,
    claims: &[Standing],
    today: NaiveDate,
) -> Result<Decision, ClaimError> {
    let not_offered = |reason: &str| Ok(Decision::NotOffered(reason.to_owned()));
    let (scheme_version, def) = schemes.current(db, &ms.scheme_code).await?;
    // A claim the member (or a clerk) already filed for the stay, or an earlier offer of the
    // same diagnosis in the period: the settlement corroborates it; nothing is offered.
    if let Some(filed) = already_claimed(s, &def, claims) {
        return Ok(Decision::Corroborates(filed));
    }
    if !def.missing_parameters().is_empty() {
        return not_offered("scheme_incomplete");
    }
    let Some(facts) = settlement_facts(s, &def) else {
        return not_offered("diagnosis_not_listed");
    };
    let Ok(event) = parse_facts(&facts, &def) else {
        return not_offered("facts_incomplete");
    };
    if let Err(out) = bounds::check_event(&event, ms.coverage_start, ms.coverage_end, today) {
        return not_offered(out.code());
    }
    if window_closed(&def, ms.coverage_end, &event, today).is_some() {
        return not_offered("claim_window_closed");
    }
    // What it is worth offered now: judged after every standing claim of the period already in
    // the filing order (approved, in review, returned, or offered before it), each under its
    // own scheme version — as a simulation of the period judges it.
    let mut earlier: Vec<&Standing> = claims
        .iter()
        .filter(|c| c.membership_id == ms.id && c.status != ClaimStatus::Draft)
        .filter(|c| c.filed.is_some() && c.event.is_some())
        .collect();
    earlier.sort_by_key(|c| c.filed);
    let mut defs: BTreeMap<i32, Arc<SchemeDefinition>> = BTreeMap::new();
    for c in &earlier {
        if let Some(v) = c.scheme_version
            && v != scheme_version
            && !defs.contains_key(&v)
        {
            defs.insert(v, schemes.version(db, &ms.scheme_code, v).await?);
        }
    }
    let def_of = |v: Option<i32>| -> &SchemeDefinition {
        v.and_then(|v| defs.get(&v)).map_or(&def, |d| d.as_ref())
    };
    let mut events: Vec<(&SchemeDefinition, &Event)> = earlier
        .iter()
        .filter_map(|c| Some((def_of(c.scheme_version), c.event.as_ref()?)))
        .collect();
    events.push((&def, &event));
    let judgement = judge_each_in_filing_order(&member_period(ms), &events)
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no judgement"))?;
    let granted = fen(&judgement)?;
    if let Some(refused) = judgement.refused {
        let code = serde_json::to_value(refused)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "refused".to_owned());
        return Ok(Decision::NotOffered(code));
    }
    if granted == 0 {
        return not_offered("nothing_to_pay");
    }
    Ok(Decision::Offer(NewOffer {
        lapses_on: filing_deadline(&def, ms.coverage_end, &event),
        event,
        judgement,
        fen: granted,
        scheme_version,
    }))
}

/// The standing claim a settlement corroborates instead of being offered: for a stay, the
/// member's claim (or earlier offer) of an overlapping stay; for a diagnosis, a claim (or
/// earlier offer) of the same period for the same disease — a second settlement of one
/// diagnosis is one diagnosis. A different disease later in the period is judged: the scheme
/// decides whether it still pays (馨康 pays once a period). Of several, the oldest.
fn already_claimed(
    s: &settlement::Model,
    def: &SchemeDefinition,
    claims: &[Standing],
) -> Option<ClaimRef> {
    let oldest = |c: &&Standing| match c.claim {
        ClaimRef::Stored(id) => (0, id),
        ClaimRef::New(i) => (1, i64::try_from(i).unwrap_or(i64::MAX)),
    };
    if s.event_kind != EventKind::Diagnosis.as_str() {
        return claims
            .iter()
            .filter(|c| {
                c.event
                    .as_ref()
                    .is_some_and(|e| overlaps(e, s.admitted_on, s.discharged_on))
            })
            .min_by_key(oldest)
            .map(|c| c.claim);
    }
    let Some(Ok(Event::Diagnosis(offered))) =
        settlement_facts(s, def).map(serde_json::from_value::<Event>)
    else {
        return None;
    };
    claims
        .iter()
        .filter(|c| c.membership_id == s.membership_id)
        .filter(|c| matches!(&c.event, Some(Event::Diagnosis(d)) if d.disease == offered.disease))
        .min_by_key(oldest)
        .map(|c| c.claim)
}

/// Writes a batch's decisions: the offers (then read back for their ids), their timeline steps,
/// the members' messages, one audit event each, and every settlement's outcome.
#[allow(clippy::too_many_arguments)]
async fn write_batch<C: ConnectionTrait + sea_orm::TransactionTrait>(
    txn: &C,
    rows: &[settlement::Model],
    periods: &HashMap<i64, membership::Model>,
    people: &HashMap<i64, Person>,
    decisions: Vec<Decision>,
    actor_pid: &str,
    now: DateTime<Utc>,
    spent: &mut Spent,
    mark: &mut std::time::Instant,
) -> Result<OfferCounts, ClaimError> {
    let mut counts = OfferCounts::default();
    let mut offers: Vec<(usize, String)> = Vec::new();
    let mut claims: Vec<serde_json::Value> = Vec::new();
    for (i, (s, d)) in rows.iter().zip(&decisions).enumerate() {
        let Decision::Offer(offer) = d else { continue };
        let ms = &periods[&s.membership_id];
        let person = people
            .get(&ms.member_id)
            .ok_or_else(|| anyhow::anyhow!("membership {} has no member", ms.id))?;
        let pid = new_pid();
        let at = now + Duration::microseconds(i64::try_from(offers.len()).unwrap_or(0));
        claims.push(json!({
            "pid": pid,
            "member_id": ms.member_id,
            "membership_id": ms.id,
            "organisation_id": ms.organisation_id,
            "member_pid": person.pid,
            "member_name": person.name,
            "membership_pid": ms.pid,
            "scheme_code": ms.scheme_code,
            "kind": offer.event.kind().as_str(),
            "facts": serde_json::to_string(&offer.event).map_err(|e| anyhow::anyhow!(e))?,
            "status": ClaimStatus::Offered.as_str(),
            "version": 1,
            "filed_by_kind": FiledBy::InsuranceFile.as_str(),
            // The settlement is the application: it names the offer's origin.
            "filed_by_pid": s.pid,
            "payee_name": person.name,
            "payee_bank_card_cipher": person.card,
            "flagged": false,
            // Its place in the period's filing order, and the version that judges it.
            "first_submitted_at": bulk::timestamp(at),
            "scheme_version": offer.scheme_version,
            "judgement": serde_json::to_string(&offer.judgement).map_err(|e| anyhow::anyhow!(e))?,
            "payable_fen": offer.fen,
            // Unconfirmed after the deadline a filed claim would have, the offer lapses.
            "lapses_on": offer.lapses_on.map(bulk::date),
            "created_at": bulk::timestamp(now),
            "updated_at": bulk::timestamp(now),
        }));
        offers.push((i, pid));
    }
    let stored = bulk::insert_returning(
        txn,
        "claim",
        &CLAIM_COLUMNS,
        bulk::batches(&claims),
        "id, pid",
    )
    .await?;
    // The new claims' ids, in the order made.
    let mut ids_by_pid: HashMap<String, i64> = HashMap::with_capacity(stored.len());
    for row in stored {
        ids_by_pid.insert(row.try_get("", "pid")?, row.try_get("", "id")?);
    }
    let new_ids: Vec<i64> = offers
        .iter()
        .map(|(_, pid)| {
            ids_by_pid
                .get(pid)
                .copied()
                .ok_or_else(|| anyhow::anyhow!("offer {pid} was not stored"))
        })
        .collect::<Result<_, _>>()?;
    let claim_id = |r: ClaimRef| match r {
        ClaimRef::Stored(id) => id,
        ClaimRef::New(i) => new_ids[i],
    };

    lap(mark, &mut spent.claims);
    timeline::record_all(
        txn,
        new_ids.iter().map(|id| {
            (
                *id,
                Step {
                    action: "offered",
                    from: None,
                    to: ClaimStatus::Offered,
                    level: Level::Association,
                    note: None,
                    actor_pid: Some(actor_pid.to_owned()),
                    at: now,
                },
            )
        }),
    )
    .await?;
    lap(mark, &mut spent.steps);
    let mut messages = Vec::with_capacity(offers.len());
    let mut entries = Vec::with_capacity(offers.len());
    for (i, pid) in &offers {
        let (s, Decision::Offer(offer)) = (&rows[*i], &decisions[*i]) else {
            continue;
        };
        let ms = &periods[&s.membership_id];
        let amount = Money::from_fen(offer.fen).as_decimal().to_string();
        messages.push(Message {
            occasion: Occasion::BenefitOffered,
            member_id: ms.member_id,
            dedupe_key: format!("benefit_offered:{pid}"),
            payload: json!({
                "claim": pid,
                "amount": amount,
                "discharged_on": s.discharged_on.format("%Y年%m月%d日").to_string(),
            }),
            due_at: now,
        });
        entries.push(Entry {
            action: "claim.offer",
            subject_kind: "claim",
            subject_pid: Some(pid.clone()),
            details: json!({ "settlement": s.pid, "membership": ms.pid,
                             "amount_fen": offer.fen, "scheme_version": offer.scheme_version }),
            request_id: None,
        });
    }
    outbox::enqueue_all(txn, messages).await?;

    lap(mark, &mut spent.messages);
    // The settlements' outcomes, and the claims they point at.
    let mut linked: Vec<(i64, i64, &'static str)> = Vec::new();
    let mut refused: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut new_index = 0usize;
    for (s, d) in rows.iter().zip(&decisions) {
        match d {
            Decision::Offer(_) => {
                linked.push((s.id, new_ids[new_index], "offered"));
                new_index += 1;
                counts.offered += 1;
            }
            Decision::Corroborates(r) => {
                linked.push((s.id, claim_id(*r), "corroborates"));
                counts.corroborating += 1;
            }
            Decision::NotOffered(reason) => {
                refused.entry(reason.as_str()).or_default().push(s.id);
                counts.not_offered += 1;
            }
        }
    }
    let outcomes: Vec<serde_json::Value> = linked
        .iter()
        .map(|(id, claim, outcome)| json!({ "id": id, "outcome": outcome, "claim_id": claim, "reason": null }))
        .chain(refused.iter().flat_map(|(reason, ids)| {
            ids.iter()
                .map(move |id| json!({ "id": id, "outcome": "not_offered", "claim_id": null, "reason": reason }))
        }))
        .collect();
    bulk::update(
        txn,
        "settlement",
        ("id", Kind::Int),
        &[
            ("outcome", Kind::Text),
            ("claim_id", Kind::Int),
            ("reason", Kind::Text),
        ],
        outcomes,
        "settlement.outcome = 'matched'",
    )
    .await?;
    lap(mark, &mut spent.outcomes);
    // Last: the chain's head stays locked until the commit, and the other worker waits for it.
    audit::record_all(
        txn,
        &Actor::Account {
            pid: actor_pid.to_owned(),
        },
        entries,
    )
    .await?;
    lap(mark, &mut spent.audit);
    Ok(counts)
}
