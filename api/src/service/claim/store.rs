//! The claim store: a stored row read as a [`Claim`] (and refused when a stored name is not
//! one of ours), a new draft written, and the reads the claim actions make besides the claim
//! itself (its materials' categories, its unit's ancestors). Changes to an existing claim go
//! through [`super::transition`].

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use serde_json::Value;
use serde_json::value::RawValue;

use entity::{claim, claim_material, member, membership, organisation};

use super::{Claim, ClaimError, ClaimStatus, FiledBy, ReturnRecord};
use crate::engine::scheme::Material;
use crate::engine::{EventKind, Judgement};

fn corrupt(what: &str, value: &str) -> DbErr {
    DbErr::Custom(format!("stored claim has an invalid {what}: {value}"))
}

/// A stored status.
pub(super) fn status_of(text: &str) -> Result<ClaimStatus, DbErr> {
    ClaimStatus::parse(text).ok_or_else(|| corrupt("status", text))
}

/// A stored stage.
pub(super) fn stage_of(text: Option<&str>) -> Result<Option<ClaimStatus>, DbErr> {
    text.map(|s| ClaimStatus::parse(s).ok_or_else(|| corrupt("stage", s)))
        .transpose()
}

/// A stored event kind.
pub(super) fn kind_of(text: &str) -> Result<EventKind, DbErr> {
    EventKind::parse(text).ok_or_else(|| corrupt("kind", text))
}

/// A stored filer kind.
pub(super) fn filed_by_of(text: &str) -> Result<FiledBy, DbErr> {
    FiledBy::parse(text).ok_or_else(|| corrupt("filer kind", text))
}

/// The stored stage list (none before the first submission).
pub(super) fn stages_of(text: Option<&str>) -> Result<Vec<ClaimStatus>, DbErr> {
    text.map_or(Ok(Vec::new()), |text| {
        serde_json::from_str(text).map_err(|_| corrupt("stage list", text))
    })
}

/// A stored judgement.
pub(super) fn judgement_of(text: Option<&str>) -> Result<Option<Judgement>, DbErr> {
    text.map(|j| serde_json::from_str(j).map_err(|_| corrupt("judgement", j)))
        .transpose()
}

/// A stored return.
pub(super) fn returned_of(text: Option<&str>) -> Result<Option<ReturnRecord>, DbErr> {
    text.map(|r| serde_json::from_str(r).map_err(|_| corrupt("return", r)))
        .transpose()
}

/// Stored facts, in place (checked to be JSON).
pub(super) fn facts_of(text: &str) -> Result<&RawValue, DbErr> {
    serde_json::from_str(text).map_err(|_| corrupt("facts", "(not JSON)"))
}

/// Reads a stored row.
pub fn to_claim(m: claim::Model) -> Result<Claim, DbErr> {
    Ok(Claim {
        kind: kind_of(&m.kind)?,
        event: match RawValue::from_string(m.facts) {
            Ok(event) => event,
            Err(_) => return Err(corrupt("facts", "(not JSON)")),
        },
        status: status_of(&m.status)?,
        filed_by: filed_by_of(&m.filed_by_kind)?,
        stages: stages_of(m.stages.as_deref())?,
        stage: stage_of(m.stage.as_deref())?,
        judgement: judgement_of(m.judgement.as_deref())?,
        returned: returned_of(m.return_requests.as_deref())?,
        id: m.id,
        pid: m.pid,
        member_id: m.member_id,
        membership_id: m.membership_id,
        organisation_id: m.organisation_id,
        member_pid: m.member_pid,
        member_name: m.member_name,
        membership_pid: m.membership_pid,
        scheme_code: m.scheme_code,
        version: m.version,
        filed_by_pid: m.filed_by_pid,
        idempotency_fingerprint: m.idempotency_fingerprint,
        submit_key: m.submit_key,
        submit_fingerprint: m.submit_fingerprint,
        beneficiary_name: m.beneficiary_name,
        beneficiary_relationship: m.beneficiary_relationship,
        payee_name: m.payee_name,
        payee_bank_card_cipher: m.payee_bank_card_cipher,
        flagged: m.flagged,
        scheme_version: m.scheme_version,
        payable_fen: m.payable_fen,
        approved_fen: m.approved_fen,
        adjustment_reason: m.adjustment_reason,
        reject_reason: m.reject_reason,
        reject_note: m.reject_note,
        created_at: m.created_at,
        submitted_at: m.submitted_at,
        first_submitted_at: m.first_submitted_at,
        approved_at: m.approved_at,
        pay_due_on: m.pay_due_on,
        pay_due_max_on: m.pay_due_max_on,
        paid_at: m.paid_at,
        payout_failure: m.payout_failure,
        lapses_on: m.lapses_on,
    })
}

/// The return currently awaiting answers, as stored.
pub fn return_record_json(record: &ReturnRecord) -> Result<String, ClaimError> {
    Ok(serde_json::to_string(record).map_err(|e| anyhow::anyhow!(e))?)
}

/// The beneficiary of a deceased member as stored: the id number sealed.
pub(crate) struct SealedBeneficiary {
    pub name: String,
    pub id_number_cipher: String,
    pub relationship: String,
}

/// A new draft, every value already checked (and sealed where it is personal).
pub(crate) struct Draft<'a> {
    pub pid: &'a str,
    /// The coverage period claimed against: member, unit and scheme come from it.
    pub membership: &'a membership::Model,
    /// Its member, whose public id and name the claim keeps.
    pub member: &'a member::Model,
    pub kind: EventKind,
    /// The event's facts, as the simulation contract's JSON.
    pub facts: String,
    pub filed_by: FiledBy,
    pub filed_by_pid: &'a str,
    pub idempotency_key: Option<String>,
    /// The filing request's fingerprint, kept with the key.
    pub idempotency_fingerprint: Option<String>,
    pub beneficiary: Option<SealedBeneficiary>,
    pub payee_name: String,
    pub payee_bank_card_cipher: Option<String>,
    pub at: DateTime<Utc>,
}

/// Writes a new draft at version 1. A unique violation (the filer's idempotency key) comes
/// back as the database's error for the caller to recognise.
pub(crate) async fn insert_draft<C: ConnectionTrait>(
    db: &C,
    draft: Draft<'_>,
) -> Result<Claim, DbErr> {
    // Counts and figures kept by this replica are not served past this change.
    super::tallies::changed();
    let ms = draft.membership;
    let (beneficiary_name, beneficiary_id_number_cipher, beneficiary_relationship) =
        match draft.beneficiary {
            Some(b) => (Some(b.name), Some(b.id_number_cipher), Some(b.relationship)),
            None => (None, None, None),
        };
    let row = claim::ActiveModel {
        pid: Set(draft.pid.to_owned()),
        member_id: Set(ms.member_id),
        membership_id: Set(ms.id),
        organisation_id: Set(ms.organisation_id),
        member_pid: Set(draft.member.pid.clone()),
        member_name: Set(draft.member.name.clone()),
        membership_pid: Set(ms.pid.clone()),
        scheme_code: Set(ms.scheme_code.clone()),
        kind: Set(draft.kind.as_str().to_owned()),
        facts: Set(draft.facts),
        status: Set(ClaimStatus::Draft.as_str().to_owned()),
        version: Set(1),
        filed_by_kind: Set(draft.filed_by.as_str().to_owned()),
        filed_by_pid: Set(draft.filed_by_pid.to_owned()),
        idempotency_key: Set(draft.idempotency_key),
        idempotency_fingerprint: Set(draft.idempotency_fingerprint),
        beneficiary_name: Set(beneficiary_name),
        beneficiary_id_number_cipher: Set(beneficiary_id_number_cipher),
        beneficiary_relationship: Set(beneficiary_relationship),
        payee_name: Set(Some(draft.payee_name)),
        payee_bank_card_cipher: Set(draft.payee_bank_card_cipher),
        flagged: Set(false),
        created_at: Set(draft.at),
        updated_at: Set(draft.at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    to_claim(row)
}

/// A request as canonical JSON: object keys sorted at every depth and no spaces, so the same
/// request gives the same bytes however the client ordered its fields.
pub(crate) fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The claim a filer made with an idempotency key.
pub(crate) async fn by_idempotency_key<C: ConnectionTrait>(
    db: &C,
    filer: &str,
    key: &str,
) -> Result<Option<Claim>, ClaimError> {
    Ok(claim::Entity::find()
        .filter(claim::Column::FiledByPid.eq(filer))
        .filter(claim::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?
        .map(to_claim)
        .transpose()?)
}

/// Re-reads a claim after a change.
pub(crate) async fn reload<C: ConnectionTrait>(db: &C, claim_id: i64) -> Result<Claim, ClaimError> {
    let row = claim::Entity::find_by_id(claim_id)
        .one(db)
        .await?
        .ok_or(ClaimError::NotFound)?;
    Ok(to_claim(row)?)
}

/// The categories of a claim's materials, each with when it was uploaded.
pub(crate) async fn material_categories<C: ConnectionTrait>(
    db: &C,
    claim_id: i64,
) -> Result<Vec<(Material, DateTime<Utc>)>, ClaimError> {
    let rows = claim_material::Entity::find()
        .filter(claim_material::Column::ClaimId.eq(claim_id))
        .all(db)
        .await?;
    rows.into_iter()
        .map(|r| {
            let m: Material = serde_json::from_value(Value::String(r.category.clone()))
                .map_err(|_| anyhow::anyhow!("stored material has category {}", r.category))?;
            Ok((m, r.created_at))
        })
        .collect()
}

/// The kinds of the organisations above a unit (its review stages depend on them).
pub(crate) async fn ancestor_kinds<C: ConnectionTrait>(
    db: &C,
    organisation_id: i64,
) -> Result<Vec<String>, DbErr> {
    let Some(unit) = organisation::Entity::find_by_id(organisation_id)
        .one(db)
        .await?
    else {
        return Ok(Vec::new());
    };
    let ids: Vec<i64> = unit
        .path
        .split('/')
        .filter_map(|s| s.parse::<i64>().ok())
        .filter(|id| *id != organisation_id)
        .collect();
    Ok(organisation::Entity::find()
        .filter(organisation::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.kind)
        .collect())
}
