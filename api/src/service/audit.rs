//! The append-only audit trail: who, when, what, on what, why — hash-chained, so that an edited,
//! removed or inserted event shows.
//!
//! Every event carries `seq` (1, 2, …), `prev_hash` (the hash of event `seq - 1`, 64 zeros for
//! the first) and `hash` = hex SHA-256 of its canonical bytes (a JSON array of its fields). The
//! one-row `audit_chain_head` holds the last seq and hash: appending locks it first, which
//! serialises appends, and checking it against the last event shows a deleted tail.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionSession, TransactionTrait, Value as DbValue, sea_query::Expr,
};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use entity::{audit_chain_head, audit_event};

use super::bulk::{self, Kind};
use super::raw_statement;

/// The `prev_hash` of the first event: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The id of the single `audit_chain_head` row.
const HEAD_ID: i32 = 1;
/// Events read per query when sealing or verifying (the trail may hold millions).
const PAGE: u64 = 1000;
/// Problems listed in a report at most; the rest are only counted.
const MAX_LISTED_PROBLEMS: usize = 1000;

/// Who acted.
#[derive(Clone, Debug)]
pub enum Actor {
    /// A signed-in member or staff account, by public id.
    Account { pid: String },
    /// The command line (an administrator on the server).
    Cli,
    /// The service itself (demo seeding, schedulers).
    System,
}

impl Actor {
    fn kind_and_pid(&self) -> (&'static str, Option<String>) {
        match self {
            Actor::Account { pid } => ("account", Some(pid.clone())),
            Actor::Cli => ("cli", None),
            Actor::System => ("system", None),
        }
    }
}

/// What an event's hash covers: every column but `id` and `hash` itself.
struct ChainedEvent<'a> {
    seq: i64,
    prev_hash: &'a str,
    occurred_at: DateTime<Utc>,
    actor_kind: &'a str,
    actor_pid: Option<&'a str>,
    action: &'a str,
    subject_kind: &'a str,
    subject_pid: Option<&'a str>,
    details: &'a str,
    request_id: Option<&'a str>,
}

impl<'a> ChainedEvent<'a> {
    /// The chained fields of a stored event (`None` when it has no seq yet).
    fn of(row: &'a audit_event::Model) -> Option<ChainedEvent<'a>> {
        Some(ChainedEvent {
            seq: row.seq?,
            prev_hash: row.prev_hash.as_deref().unwrap_or(""),
            ..ChainedEvent::unsealed(row)
        })
    }

    /// A stored event's fields, to be given its place in the chain.
    fn unsealed(row: &'a audit_event::Model) -> ChainedEvent<'a> {
        ChainedEvent {
            seq: 0,
            prev_hash: "",
            occurred_at: row.occurred_at,
            actor_kind: &row.actor_kind,
            actor_pid: row.actor_pid.as_deref(),
            action: &row.action,
            subject_kind: &row.subject_kind,
            subject_pid: row.subject_pid.as_deref(),
            details: &row.details,
            request_id: row.request_id.as_deref(),
        }
    }

    /// The bytes hashed: a JSON array of the fields in a fixed order (JSON string escaping keeps
    /// field boundaries unambiguous), the instant as RFC 3339 UTC with exactly six fractional
    /// digits — PostgreSQL keeps microseconds, so that is what survives a round trip.
    fn canonical_bytes(&self) -> Vec<u8> {
        let fields = (
            self.seq,
            self.prev_hash,
            self.occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
            self.actor_kind,
            self.actor_pid,
            self.action,
            self.subject_kind,
            self.subject_pid,
            self.details,
            self.request_id,
        );
        // A tuple of strings, integers and options cannot fail to serialise.
        serde_json::to_vec(&fields).unwrap_or_default()
    }

    /// Hex SHA-256 of the canonical bytes.
    fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }
}

/// Takes the chain head's lock by writing to it (`seq + step`), then reads it back. A write
/// first matters: on SQLite a deferred transaction that reads before it writes fails with
/// SQLITE_BUSY_SNAPSHOT when another writer got in between; on PostgreSQL the UPDATE row-locks
/// the head until commit, so appends queue here one after another.
async fn lock_head<C: ConnectionTrait>(db: &C, step: i64) -> Result<(i64, String), DbErr> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(raw_statement(
            backend,
            "UPDATE audit_chain_head SET seq = seq + ? WHERE id = ? RETURNING seq, hash",
            vec![step.into(), HEAD_ID.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("audit_chain_head (id 1) is missing".into()))?;
    Ok((row.try_get("", "seq")?, row.try_get("", "hash")?))
}

async fn set_head<C: ConnectionTrait>(db: &C, seq: i64, hash: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.execute_raw(raw_statement(
        backend,
        "UPDATE audit_chain_head SET seq = ?, hash = ? WHERE id = ?",
        vec![seq.into(), hash.into(), HEAD_ID.into()],
    ))
    .await?;
    Ok(())
}

/// Appends one event to the chain. Inside a caller's transaction the append joins it (as a
/// savepoint) and holds the chain head until that transaction ends; on a bare connection it
/// runs in a transaction of its own — either way two appends never share a seq.
pub async fn record<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    actor: &Actor,
    action: &str,
    subject: (&str, Option<&str>),
    details: Value,
    request_id: Option<String>,
) -> Result<(), DbErr> {
    record_all(
        db,
        actor,
        vec![Entry {
            action,
            subject_kind: subject.0,
            subject_pid: subject.1.map(str::to_owned),
            details,
            request_id,
        }],
    )
    .await
}

/// One event of [`record_all`].
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub action: &'a str,
    pub subject_kind: &'a str,
    pub subject_pid: Option<String>,
    pub details: Value,
    pub request_id: Option<String>,
}

/// Appends `entries`, all by `actor`, to the chain in the order given: the head is locked once
/// and advanced by their number, and they are inserted a few hundred per statement (an import
/// of settlements makes thousands of offers at once). Transactions as for [`record`].
pub async fn record_all<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    actor: &Actor,
    entries: Vec<Entry<'_>>,
) -> Result<(), DbErr> {
    if entries.is_empty() {
        return Ok(());
    }
    let (actor_kind, actor_pid) = actor.kind_and_pid();
    // Truncated before hashing and storing: PostgreSQL keeps microseconds only.
    let occurred_at = Utc::now().trunc_subsecs(6);
    let step = i64::try_from(entries.len()).map_err(|e| DbErr::Custom(e.to_string()))?;

    let txn = db.begin().await?;
    let (last_seq, mut prev_hash) = lock_head(&txn, step).await?;
    let mut rows = Vec::with_capacity(entries.len());
    for (seq, entry) in (last_seq - step + 1..).zip(entries) {
        let details = entry.details.to_string();
        let hash = ChainedEvent {
            seq,
            prev_hash: &prev_hash,
            occurred_at,
            actor_kind,
            actor_pid: actor_pid.as_deref(),
            action: entry.action,
            subject_kind: entry.subject_kind,
            subject_pid: entry.subject_pid.as_deref(),
            details: &details,
            request_id: entry.request_id.as_deref(),
        }
        .hash();
        rows.push(serde_json::json!({
            "occurred_at": bulk::timestamp(occurred_at),
            "actor_kind": actor_kind,
            "actor_pid": actor_pid,
            "action": entry.action,
            "subject_kind": entry.subject_kind,
            "subject_pid": entry.subject_pid,
            "details": details,
            "request_id": entry.request_id,
            "seq": seq,
            "prev_hash": std::mem::replace(&mut prev_hash, hash.clone()),
            "hash": hash,
        }));
    }
    bulk::insert(
        &txn,
        "audit_event",
        &[
            ("occurred_at", Kind::Timestamp),
            ("actor_kind", Kind::Text),
            ("actor_pid", Kind::Text),
            ("action", Kind::Text),
            ("subject_kind", Kind::Text),
            ("subject_pid", Kind::Text),
            ("details", Kind::Text),
            ("request_id", Kind::Text),
            ("seq", Kind::Int),
            ("prev_hash", Kind::Text),
            ("hash", Kind::Text),
        ],
        &rows,
        "",
    )
    .await?;
    set_head(&txn, last_seq, &prev_hash).await?;
    txn.commit().await
}

/// Chains the events that have no seq yet — those written before the chain existed — in id
/// order, in one transaction. Run at start-up so the chain always covers every event; returns
/// how many were sealed.
pub async fn seal_legacy<C: ConnectionTrait + TransactionTrait>(db: &C) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    // Lock the head (a write that changes nothing) before reading anything.
    let (mut seq, mut prev_hash) = lock_head(&txn, 0).await?;
    let mut sealed = 0;
    let mut after_id = 0;
    loop {
        let page = audit_event::Entity::find()
            .filter(audit_event::Column::Seq.is_null())
            .filter(audit_event::Column::Id.gt(after_id))
            .order_by_asc(audit_event::Column::Id)
            .limit(PAGE)
            .all(&txn)
            .await?;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        for row in &page {
            seq += 1;
            let hash = ChainedEvent {
                seq,
                prev_hash: &prev_hash,
                ..ChainedEvent::unsealed(row)
            }
            .hash();
            audit_event::Entity::update_many()
                .col_expr(audit_event::Column::Seq, Expr::value(seq))
                .col_expr(audit_event::Column::PrevHash, Expr::value(prev_hash))
                .col_expr(audit_event::Column::Hash, Expr::value(hash.clone()))
                .filter(audit_event::Column::Id.eq(row.id))
                .exec(&txn)
                .await?;
            prev_hash = hash;
            sealed += 1;
        }
    }
    if sealed > 0 {
        set_head(&txn, seq, &prev_hash).await?;
        tracing::info!(
            sealed,
            head_seq = seq,
            "sealed audit events written before the chain"
        );
    }
    txn.commit().await?;
    Ok(sealed)
}

/// What is wrong at one place in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The event's stored hash is not the hash of its contents: it was edited.
    HashMismatch,
    /// The event's `prev_hash` is not the hash of the event before it.
    BrokenLink,
    /// Seqs are missing before this event: events were removed.
    MissingRows,
    /// An event has no seq: written outside the chain, or not yet sealed.
    UnsealedRow,
    /// The chain head disagrees with the last event (a removed tail), or events lie beyond it.
    HeadMismatch,
}

impl ProblemKind {
    /// The kind as written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::HashMismatch => "hash_mismatch",
            ProblemKind::BrokenLink => "broken_link",
            ProblemKind::MissingRows => "missing_rows",
            ProblemKind::UnsealedRow => "unsealed_row",
            ProblemKind::HeadMismatch => "head_mismatch",
        }
    }
}

/// One problem found by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainProblem {
    pub kind: ProblemKind,
    /// The event's row id, when the problem sits at one event.
    pub id: Option<i64>,
    /// The event's seq, when it has one.
    pub seq: Option<i64>,
    /// What was expected and found.
    pub detail: String,
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind.as_str())?;
        if let Some(id) = self.id {
            write!(f, " id={id}")?;
        }
        if let Some(seq) = self.seq {
            write!(f, " seq={seq}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Events walked along the chain.
    pub checked: u64,
    /// The chain head as read when the walk began (`None` when the head row is missing).
    pub head_seq: Option<i64>,
    pub head_hash: Option<String>,
    /// The problems found, at most a thousand.
    pub problems: Vec<ChainProblem>,
    /// Problems found beyond those listed.
    pub problems_omitted: u64,
}

impl VerifyReport {
    /// Whether the chain is whole: no problem at all.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty() && self.problems_omitted == 0
    }

    fn push(&mut self, kind: ProblemKind, id: Option<i64>, seq: Option<i64>, detail: String) {
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(ChainProblem {
                kind,
                id,
                seq,
                detail,
            });
        } else {
            self.problems_omitted += 1;
        }
    }
}

/// Walks the chain in seq order, a page at a time, and checks every event: its hash, its link
/// to the one before, no seq skipped, no event without a seq, and the head equal to the last
/// event. Safe while the service runs: the walk stops at the head as read first, and events
/// appended meanwhile lie beyond it.
pub async fn verify<C: ConnectionTrait>(db: &C) -> Result<VerifyReport, DbErr> {
    let mut report = VerifyReport::default();
    let head = audit_chain_head::Entity::find_by_id(HEAD_ID)
        .one(db)
        .await?;
    if head.is_none() {
        report.push(
            ProblemKind::HeadMismatch,
            None,
            None,
            "the chain head (audit_chain_head id 1) is missing".into(),
        );
    }
    report.head_seq = head.as_ref().map(|h| h.seq);
    report.head_hash = head.as_ref().map(|h| h.hash.clone());
    let walk_to = head.as_ref().map_or(i64::MAX, |h| h.seq);

    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut last_seq = 0;
    loop {
        let page = audit_event::Entity::find()
            .filter(audit_event::Column::Seq.gt(last_seq))
            .filter(audit_event::Column::Seq.lte(walk_to))
            .order_by_asc(audit_event::Column::Seq)
            .limit(PAGE)
            .all(db)
            .await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            let Some(event) = ChainedEvent::of(row) else {
                continue; // cannot happen: filtered on seq
            };
            report.checked += 1;
            let (id, seq) = (Some(row.id), Some(event.seq));
            if event.seq != expected_seq {
                let detail = if event.seq == expected_seq + 1 {
                    format!("seq {expected_seq} is missing")
                } else {
                    format!("seqs {expected_seq} to {} are missing", event.seq - 1)
                };
                report.push(ProblemKind::MissingRows, id, seq, detail);
            } else if event.prev_hash != prev_hash {
                report.push(
                    ProblemKind::BrokenLink,
                    id,
                    seq,
                    format!(
                        "prev_hash {} but the event before hashes to {prev_hash}",
                        or_none(row.prev_hash.as_deref())
                    ),
                );
            }
            let recomputed = event.hash();
            if row.hash.as_deref() != Some(recomputed.as_str()) {
                report.push(
                    ProblemKind::HashMismatch,
                    id,
                    seq,
                    format!(
                        "stored hash {} but the contents hash to {recomputed}",
                        or_none(row.hash.as_deref())
                    ),
                );
            }
            prev_hash = row.hash.clone().unwrap_or_default();
            expected_seq = event.seq + 1;
            last_seq = event.seq;
        }
    }

    if let Some(head) = &head {
        if head.seq != last_seq {
            report.push(
                ProblemKind::HeadMismatch,
                None,
                Some(head.seq),
                format!(
                    "the head is at seq {} but the last event is seq {last_seq}",
                    head.seq
                ),
            );
        } else if head.seq > 0 && head.hash != prev_hash {
            report.push(
                ProblemKind::HeadMismatch,
                None,
                Some(head.seq),
                format!(
                    "the head holds hash {} but the last event's is {prev_hash}",
                    head.hash
                ),
            );
        } else if head.seq == 0 && head.hash != GENESIS_HASH {
            report.push(
                ProblemKind::HeadMismatch,
                None,
                Some(0),
                format!("an empty chain's head holds hash {}", head.hash),
            );
        }
        // One statement, so one snapshot: events appended meanwhile move the head with them.
        let backend = db.get_database_backend();
        let beyond: i64 = db
            .query_one_raw(raw_statement(
                backend,
                "SELECT COUNT(*) AS n FROM audit_event \
                 WHERE seq > (SELECT seq FROM audit_chain_head WHERE id = ?)",
                vec![DbValue::from(HEAD_ID)],
            ))
            .await?
            .map_or(Ok(0), |row| row.try_get("", "n"))?;
        if beyond > 0 {
            report.push(
                ProblemKind::HeadMismatch,
                None,
                None,
                format!("{beyond} event(s) lie beyond the chain head"),
            );
        }
    }

    let unsealed = audit_event::Entity::find().filter(audit_event::Column::Seq.is_null());
    let unsealed_count = unsealed.clone().count(db).await?;
    if unsealed_count > 0 {
        let listed = unsealed
            .order_by_asc(audit_event::Column::Id)
            .limit(MAX_LISTED_PROBLEMS as u64)
            .all(db)
            .await?;
        for row in &listed {
            report.push(
                ProblemKind::UnsealedRow,
                Some(row.id),
                None,
                "the event has no seq: it is outside the chain".into(),
            );
        }
        report.problems_omitted += unsealed_count.saturating_sub(listed.len() as u64);
    }
    Ok(report)
}

fn or_none(hash: Option<&str>) -> &str {
    hash.unwrap_or("(none)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> audit_event::Model {
        audit_event::Model {
            id: 7,
            occurred_at: DateTime::parse_from_rfc3339("2026-11-24T08:30:15.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            actor_kind: "account".into(),
            actor_pid: Some("0193a0b4-0000-7000-8000-000000000001".into()),
            action: "staff.created".into(),
            subject_kind: "staff".into(),
            subject_pid: Some("0193a0b4-0000-7000-8000-000000000002".into()),
            details: r#"{"login":"union-education-2","role":"union_reviewer"}"#.into(),
            request_id: Some("req-1".into()),
            seq: Some(3),
            prev_hash: Some("ab".repeat(32)),
            hash: None,
        }
    }

    fn hash_of(row: &audit_event::Model) -> String {
        ChainedEvent::of(row).expect("sealed").hash()
    }

    #[test]
    fn the_canonical_bytes_are_a_json_array_in_a_fixed_order() {
        let row = sample();
        let bytes = ChainedEvent::of(&row).unwrap().canonical_bytes();
        let expected = format!(
            r#"[3,"{}","2026-11-24T08:30:15.123456Z","account","0193a0b4-0000-7000-8000-000000000001","staff.created","staff","0193a0b4-0000-7000-8000-000000000002","{{\"login\":\"union-education-2\",\"role\":\"union_reviewer\"}}","req-1"]"#,
            "ab".repeat(32)
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn the_hash_is_stable_hex_sha256() {
        let row = sample();
        let hash = hash_of(&row);
        assert_eq!(hash.len(), 64);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(hash, hash_of(&row.clone()));
        let bytes = ChainedEvent::of(&row).unwrap().canonical_bytes();
        assert_eq!(hash, hex::encode(Sha256::digest(&bytes)));
        // The row id and the stored hash are not part of it.
        let mut other = row.clone();
        other.id = 99;
        other.hash = Some("f".repeat(64));
        assert_eq!(hash_of(&other), hash);
    }

    type Edit = Box<dyn Fn(&mut audit_event::Model)>;

    #[test]
    fn changing_any_chained_field_changes_the_hash() {
        let base = sample();
        let original = hash_of(&base);
        let edits: Vec<(&str, Edit)> = vec![
            ("seq", Box::new(|r| r.seq = Some(4))),
            (
                "prev_hash",
                Box::new(|r| r.prev_hash = Some("cd".repeat(32))),
            ),
            (
                "occurred_at",
                Box::new(|r| r.occurred_at += chrono::Duration::microseconds(1)),
            ),
            ("actor_kind", Box::new(|r| r.actor_kind = "system".into())),
            ("actor_pid", Box::new(|r| r.actor_pid = None)),
            ("action", Box::new(|r| r.action = "staff.updated".into())),
            (
                "subject_kind",
                Box::new(|r| r.subject_kind = "member".into()),
            ),
            ("subject_pid", Box::new(|r| r.subject_pid = None)),
            (
                "details",
                Box::new(|r| r.details = r#"{"login":"x"}"#.into()),
            ),
            ("request_id", Box::new(|r| r.request_id = None)),
        ];
        for (field, edit) in edits {
            let mut row = base.clone();
            edit(&mut row);
            assert_ne!(hash_of(&row), original, "{field}");
        }
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        // Moving text from one field to the next must not give the same bytes.
        let mut a = sample();
        a.action = "staff.".into();
        a.subject_kind = "createdstaff".into();
        let mut b = sample();
        b.action = "staff.created".into();
        b.subject_kind = "staff".into();
        assert_ne!(hash_of(&a), hash_of(&b));
        // Absent and empty differ.
        let mut none = sample();
        none.request_id = None;
        let mut empty = sample();
        empty.request_id = Some(String::new());
        assert_ne!(hash_of(&none), hash_of(&empty));
    }

    #[test]
    fn the_instant_is_hashed_at_microsecond_precision() {
        let mut row = sample();
        let micros = hash_of(&row);
        // Nanoseconds below the microsecond (which PostgreSQL would drop) do not count.
        row.occurred_at += chrono::Duration::nanoseconds(999);
        assert_eq!(hash_of(&row), micros);
        // The same instant in another offset, parsed back, hashes the same.
        let shanghai = DateTime::parse_from_rfc3339("2026-11-24T16:30:15.123456+08:00").unwrap();
        row.occurred_at = shanghai.with_timezone(&Utc);
        assert_eq!(hash_of(&row), micros);
    }

    #[test]
    fn problems_are_written_in_snake_case() {
        assert_eq!(
            serde_json::to_value(ProblemKind::HashMismatch).unwrap(),
            "hash_mismatch"
        );
        let problem = ChainProblem {
            kind: ProblemKind::MissingRows,
            id: Some(5),
            seq: Some(6),
            detail: "seq 5 is missing".into(),
        };
        assert_eq!(
            problem.to_string(),
            "missing_rows id=5 seq=6: seq 5 is missing"
        );
    }
}
