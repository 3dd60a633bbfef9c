//! The outbox: every change that should reach a person writes its message here, in the same
//! transaction as the change, so neither can be lost without the other. The reminders
//! dispatcher sends from it; the dedupe key makes each (person, occasion) happen once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
use serde_json::Value;

use entity::outbox;

/// Why a person is told something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Occasion {
    /// 入会: the enrolment is confirmed and coverage fixed.
    EnrolmentConfirmed,
    /// 免费延期: coverage was extended for free.
    CoverageExtended,
    /// The bank could not deduct the fee.
    DeductionFailed,
    /// The association revoked the member's payment authorisation on their behalf.
    AuthorisationRevoked,
    /// A reviewer returned a claim for more material.
    ClaimReturned,
    /// Someone other than the member set or changed the card a claim pays to.
    PayeeChanged,
    /// 补助到账: the bank paid a claim.
    PayoutSent,
    /// 免申即享: a benefit was offered from the medical-insurance settlement file.
    BenefitOffered,
    /// 免申即享: an offer not confirmed yet lapses in 7 days or fewer.
    OfferLapsing,
    /// 续互临期: the coverage period ends in 30 days (or fewer, when a scan was missed).
    RenewalDue30,
    /// 续互临期: the coverage period ends in 7 days or fewer.
    RenewalDue7,
    /// The period has ended and the member is inside the scheme's grace window, where renewing
    /// still keeps them continuous.
    RenewalGrace,
}

impl Occasion {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Occasion::EnrolmentConfirmed => "enrolment_confirmed",
            Occasion::CoverageExtended => "coverage_extended",
            Occasion::DeductionFailed => "deduction_failed",
            Occasion::AuthorisationRevoked => "authorisation_revoked",
            Occasion::ClaimReturned => "claim_returned",
            Occasion::PayeeChanged => "payee_changed",
            Occasion::PayoutSent => "payout_sent",
            Occasion::BenefitOffered => "benefit_offered",
            Occasion::OfferLapsing => "offer_lapsing",
            Occasion::RenewalDue30 => "renewal_due_30",
            Occasion::RenewalDue7 => "renewal_due_7",
            Occasion::RenewalGrace => "renewal_grace",
        }
    }
}

/// Queues a message unless one with the same dedupe key exists (then it is a no-op, so a
/// retried change never queues twice). Returns whether a row was written.
pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    occasion: Occasion,
    member_id: i64,
    dedupe_key: &str,
    payload: Value,
    due_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = outbox::ActiveModel {
        occasion: Set(occasion.as_str().to_owned()),
        member_id: Set(member_id),
        dedupe_key: Set(dedupe_key.to_owned()),
        payload: Set(payload.to_string()),
        created_at: Set(Utc::now()),
        due_at: Set(due_at),
        dispatched_at: Set(None),
        attempts: Set(0),
        ..Default::default()
    };
    let result = outbox::Entity::insert(row)
        .on_conflict(
            OnConflict::column(outbox::Column::DedupeKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(result == 1)
}

/// One message of [`enqueue_all`].
#[derive(Clone, Debug)]
pub struct Message {
    pub occasion: Occasion,
    pub member_id: i64,
    pub dedupe_key: String,
    pub payload: Value,
    pub due_at: DateTime<Utc>,
}

/// Queues many messages, a few hundred rows per statement, each skipped when its dedupe key is
/// queued already (as [`enqueue`]). Returns how many rows were written.
pub async fn enqueue_all<C: ConnectionTrait>(db: &C, messages: Vec<Message>) -> Result<u64, DbErr> {
    use super::bulk::{self, Kind};
    let now = bulk::timestamp(Utc::now());
    let rows: Vec<Value> = messages
        .into_iter()
        .map(|m| {
            serde_json::json!({
                "occasion": m.occasion.as_str(),
                "member_id": m.member_id,
                "dedupe_key": m.dedupe_key,
                "payload": m.payload.to_string(),
                "created_at": now,
                "due_at": bulk::timestamp(m.due_at),
                "attempts": 0,
            })
        })
        .collect();
    bulk::insert(
        db,
        "outbox",
        &[
            ("occasion", Kind::Text),
            ("member_id", Kind::Int),
            ("dedupe_key", Kind::Text),
            ("payload", Kind::Text),
            ("created_at", Kind::Timestamp),
            ("due_at", Kind::Timestamp),
            ("attempts", Kind::Int),
        ],
        &rows,
        "ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .await
}

/// Which memberships a set-based enqueue covers.
#[derive(Clone, Copy, Debug)]
pub enum MembershipSet {
    /// Those created by an enrolment batch.
    Batch(i64),
    /// Those a free extension changed.
    Extension(i64),
}

/// Queues one message per membership of `set` in a single `INSERT … SELECT` (a million rows
/// cost one statement, not a million), each keyed `{key_prefix}{membership id}` and skipped
/// when already queued.
pub async fn enqueue_for_memberships<C: ConnectionTrait>(
    db: &C,
    occasion: Occasion,
    set: MembershipSet,
    key_prefix: &str,
    payload: &Value,
    due_at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let column = match set {
        MembershipSet::Batch(_) => "enrolment_batch_id",
        MembershipSet::Extension(_) => "extension_id",
    };
    let id = match set {
        MembershipSet::Batch(id) | MembershipSet::Extension(id) => id,
    };
    let sql = format!(
        "INSERT INTO outbox (occasion, member_id, dedupe_key, payload, created_at, due_at, attempts) \
         SELECT ?, member_id, ? || CAST(id AS TEXT), ?, ?, ?, 0 FROM membership WHERE {column} = ? \
         ON CONFLICT (dedupe_key) DO NOTHING"
    );
    let result = db
        .execute_raw(super::raw_statement(
            backend,
            &sql,
            vec![
                occasion.as_str().into(),
                key_prefix.into(),
                payload.to_string().into(),
                Utc::now().into(),
                due_at.into(),
                id.into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected())
}
