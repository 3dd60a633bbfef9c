//! A claim as its reader sees it (the member, or a reviewer): the response types, the one place
//! that assembles them ([`assemble`]), the claim actions answered with the claim as it now
//! stands, and the signed photo links the detail hands out and [`photo`] redeems.
//!
//! A page of the list is one statement: the claims joined to the names and public ids their
//! responses show ([`review::list_rows`]), written out from its rows in place ([`list`]). A
//! detail is the claim row with its materials,
//! timeline, judgements, scheme, coverage period and the names it refers to. They are read in
//! one transaction so the parts agree with each other: on
//! PostgreSQL at repeatable read (one snapshot for every statement), on SQLite as a deferred
//! read transaction (WAL keeps the snapshot of its first read). After a change the detail is
//! read that way straight after the change commits. [`assemble`] takes any connection, so it
//! can also run on the change's own transaction.

use chrono::{DateTime, NaiveDate, Utc};
use opendal::Operator;
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, QueryResult, TransactionTrait,
};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::approval::{self, Adjustment};
use super::filing::{self, ClaimEdit, NewClaim};
use super::materials::{self, StoredMaterial, UploadError, Variant};
use super::period;
use super::review::{self, ClaimFilter, RejectReason};
use super::store;
use super::timeline::{self, RecordedStep};
use super::{Caller, Claim, ClaimError, ClaimStatus, FiledBy, Level, ReturnRecord, ReturnRequest};
use crate::auth::crypto::{LookupHasher, PiiVault};
use crate::domain::Money;
use crate::domain::Role;
use crate::domain::workdays::WorkdayCalendar;
use crate::engine::claim_rules;
use crate::engine::scheme::Material;
use crate::engine::{Component, Event, EventKind, Judgement};
use crate::formats::photos::PhotoLimits;
use crate::service::membership;
use crate::service::organisation::OrganisationRef;
use crate::service::page::cursor_after;
use crate::service::rows::{Cells, Checked};

/// Who reads a claim, and what else the answer depends on.
pub struct Viewer<'a> {
    /// Who acts and reads: the scope decides what is found, the role what is shown (members
    /// never see duplicate flags, nor which claim holds the same bill).
    pub caller: Caller,
    /// Decides whether payment is overdue.
    pub today: NaiveDate,
    /// Signs the photo links handed out with the materials.
    pub links: &'a LookupHasher,
}

impl Viewer<'_> {
    fn is_staff(&self) -> bool {
        self.caller.role != Role::Member
    }
}

/// One payout component.
#[derive(Debug, Serialize, ToSchema)]
pub struct JudgementResponse {
    /// The engine's refusal code, when refused.
    pub refused: Option<String>,
    /// Components of the payout (`banded`, `daily_allowance`, `minimum_top_up`, …).
    pub items: Vec<Component>,
}

/// A material asked for again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnResponse {
    pub message: String,
    pub materials: Vec<ReturnRequest>,
    #[serde(serialize_with = "crate::service::rfc3339::instant")]
    pub returned_at: DateTime<Utc>,
}

/// A beneficiary (deceased member's claim).
#[derive(Debug, Serialize, ToSchema)]
pub struct BeneficiaryResponse {
    pub name: String,
    pub relationship: String,
}

/// A member or unit a claim names: written as [`OrganisationRef`] is.
#[derive(Debug, Serialize)]
pub struct NamedRef {
    /// Public id.
    pub id: String,
    pub name: String,
}

/// A claim.
// A list writes its items as this is written, straight from the database's rows
// ([`write_listed`]); a detail serialises this.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimResponse {
    /// Public id.
    pub id: String,
    pub status: ClaimStatus,
    /// Send it back with every action: a stale one gets 409 `version_conflict`.
    pub version: i32,
    /// The review stage it is at, or the one that returned it.
    pub stage: Option<ClaimStatus>,
    /// The review stages fixed at first submission.
    pub stages: Vec<ClaimStatus>,
    pub kind: EventKind,
    #[schema(example = "nm-inpatient-2025")]
    pub scheme_code: String,
    /// The facts, as in the simulation contract (`kind` included).
    #[schema(value_type = Object)]
    pub event: Box<RawValue>,
    #[schema(value_type = OrganisationRef)]
    pub member: NamedRef,
    /// Public id of the coverage period.
    pub membership_id: String,
    #[schema(value_type = OrganisationRef)]
    pub unit: NamedRef,
    pub filed_by: FiledBy,
    pub beneficiary: Option<BeneficiaryResponse>,
    /// Who is paid.
    pub payee_name: Option<String>,
    /// The return awaiting new material.
    pub returned: Option<ReturnResponse>,
    /// A bill in it looks like one in another claim (staff only; false for members).
    pub flagged: bool,
    /// The scheme version the approval used.
    pub scheme_version: Option<i32>,
    /// The engine's breakdown at approval.
    pub judgement: Option<JudgementResponse>,
    /// What the rules give.
    pub payable: Option<Money>,
    /// What is paid (differs from `payable` only with an adjustment).
    pub approved: Option<Money>,
    pub adjustment_reason: Option<String>,
    pub reject_reason: Option<String>,
    pub reject_note: Option<String>,
    #[serde(serialize_with = "crate::service::rfc3339::instant")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::service::rfc3339::maybe")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::service::rfc3339::maybe")]
    pub first_submitted_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::service::rfc3339::maybe")]
    pub approved_at: Option<DateTime<Utc>>,
    /// Pay by this day (5 working days after approval).
    pub pay_due_on: Option<NaiveDate>,
    /// Pay by this day at the latest (15 working days).
    pub pay_due_max_on: Option<NaiveDate>,
    /// Payment is late.
    pub overdue: bool,
    /// Payment is later than the longest allowance.
    pub overdue_beyond_maximum: bool,
    #[serde(serialize_with = "crate::service::rfc3339::maybe")]
    pub paid_at: Option<DateTime<Utc>>,
    /// The bank's reason, when payment failed.
    pub payout_failure: Option<String>,
    /// An offer (免申即享) not confirmed by this day lapses: the scheme's claim deadline for
    /// its stay. `null` for applications and where the scheme sets no deadline.
    pub lapses_on: Option<NaiveDate>,
}

/// A photographed material.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaterialResponse {
    /// Public id.
    pub id: String,
    pub category: Material,
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub byte_size: i64,
    /// SHA-256 of the upload as received.
    pub sha256: String,
    #[serde(serialize_with = "crate::service::rfc3339::instant")]
    pub uploaded_at: DateTime<Utc>,
    /// The claim that holds the same bill (staff only).
    pub duplicate_of_claim: Option<String>,
    /// Signed link to the image, valid for 10 minutes.
    pub url: String,
    /// Signed link to the thumbnail, valid for 10 minutes.
    pub thumbnail_url: String,
}

/// One step of the timeline (levels, never names).
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineStep {
    #[schema(example = "submitted")]
    pub action: String,
    pub status: ClaimStatus,
    pub level: Level,
    pub note: Option<String>,
    #[serde(serialize_with = "crate::service::rfc3339::instant")]
    pub at: DateTime<Utc>,
}

/// One judgement of the claim: the one it was approved on, or a re-statement after an
/// earlier-filed claim of its period was approved later (its grant does not change: the
/// difference is carried by the claim approved).
#[derive(Debug, Serialize, ToSchema)]
pub struct JudgementRecord {
    /// `approved` or `restated`.
    #[schema(example = "restated")]
    pub cause: String,
    /// The earlier-filed claim whose approval re-stated this one.
    pub caused_by: Option<String>,
    /// The scheme version that judged it (in force at the claim's first submission).
    pub scheme_version: i32,
    /// What the period rule gives this claim in filing order.
    pub payable: Money,
    pub items: Vec<Component>,
    #[serde(serialize_with = "crate::service::rfc3339::instant")]
    pub at: DateTime<Utc>,
}

/// The money of the claim's coverage period (reviewers only).
#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodMoneyResponse {
    /// What the period's approved claims were granted, together.
    pub granted: Money,
    /// Granted beyond what the period's approved claims are due in filing order (an
    /// earlier-filed claim approved after a later one took an allowance or a bracket); the
    /// period's next claims absorb it. Never forgiven, never clawed back.
    pub open_offset: Money,
}

/// A claim with its materials, what it still needs, and its timeline.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "claim": {
        "id": "01a20a3f-c9ed-7093-a417-b0f339b55c81",
        "status": "union_review",
        "version": 2,
        "stage": "union_review",
        "stages": ["union_review", "service_point_review", "association_review"],
        "kind": "inpatient",
        "scheme_code": "nm-inpatient-2025",
        "event": {
            "admitted_on": "2025-03-01",
            "billed_days": 10,
            "cause": "illness",
            "deductible": "800.00",
            "discharged_on": "2025-03-11",
            "eligible_self_pay": "12000.00",
            "kind": "inpatient",
            "settled_by_insurance": true
        },
        "member": {"id": "01a20a3f-c83a-7490-8427-03dbeb5b04c3", "name": "李文博"},
        "membership_id": "01a20a3f-c83b-7733-8bc8-55158766e562",
        "unit": {"id": "01a20a3f-c837-71ba-ac19-f43e6b4f0bb6", "name": "内蒙古电力（集团）有限责任公司工会"},
        "filed_by": "member",
        "beneficiary": null,
        "payee_name": "李文博",
        "returned": null,
        "flagged": false,
        "scheme_version": null,
        "judgement": null,
        "payable": null,
        "approved": null,
        "adjustment_reason": null,
        "reject_reason": null,
        "reject_note": null,
        "created_at": "2025-09-15T02:12:00Z",
        "submitted_at": "2025-09-15T02:13:00Z",
        "first_submitted_at": "2025-09-15T02:13:00Z",
        "approved_at": null,
        "pay_due_on": null,
        "pay_due_max_on": null,
        "overdue": false,
        "overdue_beyond_maximum": false,
        "paid_at": null,
        "payout_failure": null,
        "lapses_on": null
    },
    "materials": [
        {
            "id": "01a20a3f-ca91-703b-96f7-a5a06c4cc9c8",
            "category": "id_card_front",
            "content_type": "image/png",
            "width": 240,
            "height": 320,
            "byte_size": 1851,
            "sha256": "888b443ee02580abaa95c41144f36577da3a0559297281b532cb4baf740c14e0",
            "uploaded_at": "2025-09-15T02:12:00Z",
            "duplicate_of_claim": null,
            "url": "/api/v1/claim-photos/01a20a3f-ca91-703b-96f7-a5a06c4cc9c8?variant=full&expires=1757902800&signature=ef6f2f8af30939c1085661862cb3a9c1e1902e8e0768f3d144a08fe01d315620",
            "thumbnail_url": "/api/v1/claim-photos/01a20a3f-ca91-703b-96f7-a5a06c4cc9c8?variant=thumbnail&expires=1757902800&signature=3f1fb3e15df53dcafd7a11443156bedce52621fc2a0c30929e936e863030da97"
        }
    ],
    "required_materials": [
        "id_card_front",
        "id_card_back",
        "insurance_card",
        "bank_card",
        "settlement_slip",
        "invoice",
        "medication_list",
        "discharge_certificate"
    ],
    "filing_deadline": "2026-03-31",
    "timeline": [
        {
            "action": "filed",
            "status": "draft",
            "level": "member",
            "note": null,
            "at": "2025-09-15T02:12:00Z"
        },
        {
            "action": "submitted",
            "status": "union_review",
            "level": "member",
            "note": null,
            "at": "2025-09-15T02:13:00Z"
        }
    ],
    "judgements": [],
    "period": {"granted": "0.00", "open_offset": "0.00"}
}))]
pub struct ClaimDetail {
    pub claim: ClaimResponse,
    pub materials: Vec<MaterialResponse>,
    /// Materials the scheme requires for this claim.
    pub required_materials: Vec<Material>,
    /// The last day it may be filed.
    pub filing_deadline: Option<NaiveDate>,
    pub timeline: Vec<TimelineStep>,
    /// Its judgements, oldest first (empty before approval).
    pub judgements: Vec<JudgementRecord>,
    /// Its period's money, for reviewers (null for the member).
    pub period: Option<PeriodMoneyResponse>,
}

/// Opens the one consistent read a detail or a page is assembled in (see the module doc).
pub(crate) async fn begin_read(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
        }
        // SQLite takes no isolation level (sea-orm warns on one); its read transaction is
        // already a snapshot.
        _ => db.begin().await,
    }
}

/// The claim `pid` as the viewer sees it, read in one transaction.
pub async fn get(
    db: &DatabaseConnection,
    viewer: &Viewer<'_>,
    pid: &str,
) -> Result<ClaimDetail, ClaimError> {
    let txn = begin_read(db).await?;
    let c = filing::get(&txn, &viewer.caller, pid).await?;
    let detail = assemble(&txn, viewer, c).await?;
    txn.commit().await?;
    Ok(detail)
}

/// A claim's detail from its row and everything it refers to, read on `db` (a transaction, for
/// the parts to agree).
pub async fn assemble<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer<'_>,
    c: Claim,
) -> Result<ClaimDetail, ClaimError> {
    let stored = materials::of_claim(db, c.id).await?;
    let steps = timeline::of_claim(db, c.id).await?;
    let judgements = period::history(db, c.id)
        .await?
        .into_iter()
        .map(|k| JudgementRecord {
            cause: k.cause,
            caused_by: k.caused_by,
            scheme_version: k.scheme_version,
            payable: Money::from_fen(k.payable_fen),
            items: k.judgement.items,
            at: k.at,
        })
        .collect();
    let period = if viewer.is_staff() {
        let m = period::money(db, c.membership_id).await?;
        Some(PeriodMoneyResponse {
            granted: Money::from_fen(m.granted_fen),
            open_offset: Money::from_fen(m.open_offset_fen),
        })
    } else {
        None
    };
    let (_, def) = filing::claim_scheme(db, &c.scheme_code, c.scheme_version).await?;
    let coverage_end = membership::coverage_end(db, c.membership_id).await?;
    let (id, name) = review::unit_of(db, &c).await?;
    // Facts the current scheme no longer reads still show; they just fix no deadline.
    let event = serde_json::from_str::<Event>(c.event.get()).ok();
    let appraisal = event
        .as_ref()
        .is_some_and(|e| claim_rules::needs_appraisal(&def, e));
    let required_materials = filing::required_materials(&def, c.kind, c.filed_by, appraisal);
    let filing_deadline = match (event, coverage_end) {
        (Some(event), Some(end)) => claim_rules::filing_deadline(&def, end, &event),
        _ => None,
    };
    let now = Utc::now();
    Ok(ClaimDetail {
        claim: claim_response(c, NamedRef { id, name }, viewer),
        materials: stored
            .into_iter()
            .map(|m| material_response(m, viewer, now))
            .collect(),
        required_materials,
        filing_deadline,
        timeline: steps.into_iter().map(timeline_step).collect(),
        judgements,
        period,
    })
}

fn judgement_response(j: Judgement) -> JudgementResponse {
    JudgementResponse {
        refused: j.refused.and_then(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        }),
        items: j.items,
    }
}

fn return_response(r: ReturnRecord) -> ReturnResponse {
    ReturnResponse {
        message: r.message,
        materials: r.requests,
        returned_at: r.returned_at,
    }
}

fn claim_response(c: Claim, unit: NamedRef, viewer: &Viewer<'_>) -> ClaimResponse {
    let today = viewer.today;
    ClaimResponse {
        overdue: c.overdue(today),
        overdue_beyond_maximum: c.overdue_beyond_maximum(today),
        member: NamedRef {
            id: c.member_pid,
            name: c.member_name,
        },
        unit,
        membership_id: c.membership_pid,
        beneficiary: c.beneficiary_name.map(|name| BeneficiaryResponse {
            name,
            relationship: c.beneficiary_relationship.unwrap_or_default(),
        }),
        returned: c.returned.map(return_response),
        judgement: c.judgement.map(judgement_response),
        flagged: viewer.is_staff() && c.flagged,
        payable: c.payable_fen.map(Money::from_fen),
        approved: c.approved_fen.map(Money::from_fen),
        id: c.pid,
        status: c.status,
        version: c.version,
        stage: c.stage,
        stages: c.stages,
        kind: c.kind,
        scheme_code: c.scheme_code,
        event: c.event,
        filed_by: c.filed_by,
        payee_name: c.payee_name,
        scheme_version: c.scheme_version,
        adjustment_reason: c.adjustment_reason,
        reject_reason: c.reject_reason,
        reject_note: c.reject_note,
        created_at: c.created_at,
        submitted_at: c.submitted_at,
        first_submitted_at: c.first_submitted_at,
        approved_at: c.approved_at,
        pay_due_on: c.pay_due_on,
        pay_due_max_on: c.pay_due_max_on,
        paid_at: c.paid_at,
        payout_failure: c.payout_failure,
        lapses_on: c.lapses_on,
    }
}

/// A list item written straight from a row of [`review::list_rows`] into `out`, as
/// `serde_json` writes the [`ClaimResponse`] a detail shows (the tests compare every list's
/// items with their details), and its claim's id (for the cursor). Its columns are
/// [`review::LISTED`] then the unit's public id and name, read in that order; text is written
/// from the row, not copied into a response first. The keys are written as the literals they
/// are: `serde_json` escaped all 45 of them, one by one, for every item (issue 20).
fn write_listed(
    out: &mut Vec<u8>,
    row: &QueryResult,
    checked: Checked,
    viewer: &Viewer<'_>,
) -> Result<i64, DbErr> {
    let mut cells = Cells::of(row, checked);
    // `LISTED`'s order.
    let id: i64 = cells.next()?;
    let pid: &str = cells.next()?;
    let status = store::status_of(cells.next()?)?;
    let version: i32 = cells.next()?;
    let stage = store::stage_of(cells.next()?)?;
    let stages = store::stages_of(cells.next()?)?;
    let kind = store::kind_of(cells.next()?)?;
    let scheme_code: &str = cells.next()?;
    let event = store::facts_of(cells.next()?)?;
    let filed_by = store::filed_by_of(cells.next()?)?;
    let beneficiary_name: Option<&str> = cells.next()?;
    let beneficiary_relationship: Option<&str> = cells.next()?;
    let payee_name: Option<&str> = cells.next()?;
    let returned = store::returned_of(cells.next()?)?;
    let flagged: bool = cells.next()?;
    let scheme_version: Option<i32> = cells.next()?;
    let judgement = store::judgement_of(cells.next()?)?;
    let payable_fen: Option<i64> = cells.next()?;
    let approved_fen: Option<i64> = cells.next()?;
    let adjustment_reason: Option<&str> = cells.next()?;
    let reject_reason: Option<&str> = cells.next()?;
    let reject_note: Option<&str> = cells.next()?;
    let created_at: DateTime<Utc> = cells.next()?;
    let submitted_at: Option<DateTime<Utc>> = cells.next()?;
    let first_submitted_at: Option<DateTime<Utc>> = cells.next()?;
    let approved_at: Option<DateTime<Utc>> = cells.next()?;
    let pay_due_on: Option<NaiveDate> = cells.next()?;
    let pay_due_max_on: Option<NaiveDate> = cells.next()?;
    let paid_at: Option<DateTime<Utc>> = cells.next()?;
    let payout_failure: Option<&str> = cells.next()?;
    let lapses_on: Option<NaiveDate> = cells.next()?;
    let member_id: &str = cells.next()?;
    let member_name: &str = cells.next()?;
    let membership_id: &str = cells.next()?;
    // Then the unit's public id and name.
    let unit_id: &str = cells.next()?;
    let unit_name: &str = cells.next()?;
    let overdue = super::unpaid_past(status, pay_due_on, viewer.today);

    // The fields in `ClaimResponse`'s order.
    let mut w = JsonOut(out);
    w.raw("{\"id\":");
    w.string(pid);
    w.raw(",\"status\":");
    w.string(status.as_str());
    w.raw(",\"version\":");
    w.value(&version)?;
    w.raw(",\"stage\":");
    w.maybe(stage.map(ClaimStatus::as_str), JsonOut::string);
    w.raw(",\"stages\":");
    w.raw("[");
    for (i, stage) in stages.iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        w.string(stage.as_str());
    }
    w.raw("]");
    w.raw(",\"kind\":");
    w.string(kind.as_str());
    w.raw(",\"scheme_code\":");
    w.string(scheme_code);
    w.raw(",\"event\":");
    w.raw(event.get());
    w.raw(",\"member\":{\"id\":");
    w.string(member_id);
    w.raw(",\"name\":");
    w.string(member_name);
    w.raw("},\"membership_id\":");
    w.string(membership_id);
    w.raw(",\"unit\":{\"id\":");
    w.string(unit_id);
    w.raw(",\"name\":");
    w.string(unit_name);
    w.raw("},\"filed_by\":");
    w.string(filed_by.as_str());
    w.raw(",\"beneficiary\":");
    match beneficiary_name {
        Some(name) => {
            w.raw("{\"name\":");
            w.string(name);
            w.raw(",\"relationship\":");
            w.string(beneficiary_relationship.unwrap_or_default());
            w.raw("}");
        }
        None => w.raw("null"),
    }
    w.raw(",\"payee_name\":");
    w.maybe(payee_name, JsonOut::string);
    w.raw(",\"returned\":");
    w.value(&returned.map(return_response))?;
    w.raw(",\"flagged\":");
    w.bool(viewer.is_staff() && flagged);
    w.raw(",\"scheme_version\":");
    w.value(&scheme_version)?;
    w.raw(",\"judgement\":");
    w.value(&judgement.map(judgement_response))?;
    w.raw(",\"payable\":");
    w.value(&payable_fen.map(Money::from_fen))?;
    w.raw(",\"approved\":");
    w.value(&approved_fen.map(Money::from_fen))?;
    w.raw(",\"adjustment_reason\":");
    w.maybe(adjustment_reason, JsonOut::string);
    w.raw(",\"reject_reason\":");
    w.maybe(reject_reason, JsonOut::string);
    w.raw(",\"reject_note\":");
    w.maybe(reject_note, JsonOut::string);
    w.raw(",\"created_at\":");
    w.instant(created_at);
    w.raw(",\"submitted_at\":");
    w.maybe(submitted_at, JsonOut::instant);
    w.raw(",\"first_submitted_at\":");
    w.maybe(first_submitted_at, JsonOut::instant);
    w.raw(",\"approved_at\":");
    w.maybe(approved_at, JsonOut::instant);
    w.raw(",\"pay_due_on\":");
    w.value(&pay_due_on)?;
    w.raw(",\"pay_due_max_on\":");
    w.value(&pay_due_max_on)?;
    w.raw(",\"overdue\":");
    w.bool(overdue);
    w.raw(",\"overdue_beyond_maximum\":");
    w.bool(overdue && super::unpaid_past(status, pay_due_max_on, viewer.today));
    w.raw(",\"paid_at\":");
    w.maybe(paid_at, JsonOut::instant);
    w.raw(",\"payout_failure\":");
    w.maybe(payout_failure, JsonOut::string);
    w.raw(",\"lapses_on\":");
    w.value(&lapses_on)?;
    w.raw("}");
    Ok(id)
}

/// JSON written into a buffer: literal text, strings escaped as `serde_json` escapes them, and
/// any other value by `serde_json` itself.
struct JsonOut<'b>(&'b mut Vec<u8>);

impl JsonOut<'_> {
    /// Text that is JSON already (a key with its quotes, punctuation, stored facts).
    fn raw(&mut self, json: &str) {
        self.0.extend_from_slice(json.as_bytes());
    }

    fn bool(&mut self, value: bool) {
        self.raw(if value { "true" } else { "false" });
    }

    /// A string. Most need no escape (`serde_json` escapes `"`, `\\` and the control
    /// characters, nothing else), and are copied whole.
    fn string(&mut self, text: &str) {
        // Every byte looked at, without stopping at the first: the compiler checks 16 or 32
        // at a time.
        let escaped = text.bytes().fold(false, |escaped, b| {
            escaped | (b < 0x20) | (b == b'"') | (b == b'\\')
        });
        if escaped {
            // Cannot fail: a `str` into a `Vec`.
            let _ = serde_json::to_writer(&mut *self.0, text);
        } else {
            self.0.reserve(text.len() + 2);
            self.0.push(b'"');
            self.0.extend_from_slice(text.as_bytes());
            self.0.push(b'"');
        }
    }

    /// An instant, as [`crate::service::rfc3339::instant`] writes it.
    fn instant(&mut self, at: DateTime<Utc>) {
        let mut buf = [0u8; 30];
        match crate::service::rfc3339::written(&at, &mut buf) {
            // Digits, `-`, `:`, `.`, `T` and `Z`: nothing to escape.
            Some(text) => {
                self.0.push(b'"');
                self.0.extend_from_slice(text.as_bytes());
                self.0.push(b'"');
            }
            // Cannot fail: a string into a `Vec`.
            None => {
                let _ = crate::service::rfc3339::instant(
                    &at,
                    &mut serde_json::Serializer::new(&mut *self.0),
                );
            }
        }
    }

    /// `null`, or what `some` writes.
    fn maybe<T>(&mut self, value: Option<T>, some: impl FnOnce(&mut Self, T)) {
        match value {
            Some(v) => some(self, v),
            None => self.raw("null"),
        }
    }

    /// Any other value, by `serde_json`.
    fn value<T: Serialize>(&mut self, value: &T) -> Result<(), DbErr> {
        serde_json::to_writer(&mut *self.0, value)
            .map_err(|e| DbErr::Custom(format!("a list item could not be written: {e}")))
    }
}

fn material_response(
    m: StoredMaterial,
    viewer: &Viewer<'_>,
    now: DateTime<Utc>,
) -> MaterialResponse {
    let link = |variant: Variant| {
        let (expires, signature) = materials::sign_link(viewer.links, &m.pid, variant, now);
        format!(
            "/api/v1/claim-photos/{}?variant={}&expires={expires}&signature={signature}",
            m.pid,
            variant.as_str()
        )
    };
    MaterialResponse {
        url: link(Variant::Full),
        thumbnail_url: link(Variant::Thumbnail),
        duplicate_of_claim: if viewer.is_staff() {
            m.duplicate_of_claim
        } else {
            None
        },
        id: m.pid,
        category: m.category,
        content_type: m.content_type,
        width: m.width,
        height: m.height,
        byte_size: m.byte_size,
        sha256: m.sha256,
        uploaded_at: m.created_at,
    }
}

fn timeline_step(s: RecordedStep) -> TimelineStep {
    TimelineStep {
        action: s.action,
        status: s.status,
        level: s.level,
        note: s.note,
        at: s.at,
    }
}

/// A page of the claims the viewer may see, with the names they refer to, as the JSON of a
/// `Page<ClaimResponse>`: one statement, whose rows are written out in place ([`write_listed`]),
/// not copied into claims or responses first (issue 20).
pub async fn list(
    db: &DatabaseConnection,
    viewer: &Viewer<'_>,
    filter: &ClaimFilter,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Vec<u8>, ClaimError> {
    let rows = review::list_rows(db, &viewer.caller, filter, viewer.today, after_id, limit).await?;
    let shown = rows.len().min(usize::try_from(limit).unwrap_or(usize::MAX));
    // A claim takes about 1,250 bytes (more with a judgement).
    let mut json = Vec::with_capacity(64 + 1536 * shown);
    json.extend_from_slice(b"{\"items\":[");
    let mut last = None;
    for (i, row) in rows.iter().take(shown).enumerate() {
        // Every row of a result has the first row's column types: checked there, then read
        // without the check.
        let checked = if i == 0 {
            Checked::Yes
        } else {
            json.push(b',');
            Checked::Already
        };
        last = Some(write_listed(&mut json, row, checked, viewer)?);
    }
    json.extend_from_slice(b"],\"next_cursor\":");
    match last.filter(|_| rows.len() > shown) {
        Some(id) => JsonOut(&mut json).string(&cursor_after(id)),
        None => json.extend_from_slice(b"null"),
    }
    json.push(b'}');
    Ok(json)
}

/// Files a draft (see [`filing::create`]); `false` with a retry that made nothing new.
pub async fn create(
    db: &DatabaseConnection,
    pii: &PiiVault,
    viewer: &Viewer<'_>,
    new: NewClaim,
    request_id: Option<String>,
) -> Result<(ClaimDetail, bool), ClaimError> {
    let (c, created) =
        filing::create(db, pii, &viewer.caller, new, viewer.today, request_id).await?;
    Ok((get(db, viewer, &c.pid).await?, created))
}

/// Corrects a draft or returned claim (see [`filing::edit`]).
pub async fn edit(
    db: &DatabaseConnection,
    pii: &PiiVault,
    viewer: &Viewer<'_>,
    pid: &str,
    version: i32,
    change: ClaimEdit,
    request_id: Option<String>,
) -> Result<ClaimDetail, ClaimError> {
    filing::edit(
        db,
        pii,
        &viewer.caller,
        pid,
        version,
        change,
        viewer.today,
        request_id,
    )
    .await?;
    get(db, viewer, pid).await
}

/// Submits or resubmits (see [`filing::submit`]); a retry with the same key answers the same.
pub async fn submit(
    db: &DatabaseConnection,
    viewer: &Viewer<'_>,
    pid: &str,
    version: i32,
    key: Option<String>,
    request_id: Option<String>,
) -> Result<ClaimDetail, ClaimError> {
    filing::submit(
        db,
        &viewer.caller,
        pid,
        version,
        key,
        viewer.today,
        request_id,
    )
    .await?;
    get(db, viewer, pid).await
}

/// The member confirms an offer from the settlement file (see [`super::offer::confirm`]).
pub async fn confirm_offer(
    db: &DatabaseConnection,
    pii: &crate::auth::crypto::PiiVault,
    viewer: &Viewer<'_>,
    pid: &str,
    version: i32,
    confirmation: super::offer::OfferConfirmation,
    request_id: Option<String>,
) -> Result<ClaimDetail, ClaimError> {
    super::offer::confirm(
        db,
        pii,
        &viewer.caller,
        pid,
        version,
        confirmation,
        viewer.today,
        request_id,
    )
    .await?;
    get(db, viewer, pid).await
}

/// Withdraws before approval (see [`filing::withdraw`]).
pub async fn withdraw(
    db: &DatabaseConnection,
    viewer: &Viewer<'_>,
    pid: &str,
    version: i32,
    note: Option<String>,
    request_id: Option<String>,
) -> Result<ClaimDetail, ClaimError> {
    filing::withdraw(db, &viewer.caller, pid, version, note, request_id).await?;
    get(db, viewer, pid).await
}

/// Approves at the viewer's stage (see [`approval::approve`]).
pub async fn approve(
    db: &DatabaseConnection,
    calendar: Option<&WorkdayCalendar>,
    viewer: &Viewer<'_>,
    pid: &str,
    version: i32,
    adjustment: Option<Adjustment>,
    request_id: Option<String>,
) -> Result<ClaimDetail, ClaimError> {
    approval::approve(
        db,
        calendar,
        &viewer.caller,
        pid,
        version,
        adjustment,
        viewer.today,
        request_id,
    )
    .await?;
    get(db, viewer, pid).await
}

/// Returns the claim for more material (see [`review::return_claim`]).
pub async fn return_claim(
    db: &DatabaseConnection,
    viewer: &Viewer<'_>,
    pid: &str,
    version: i32,
    message: String,
    requests: Vec<ReturnRequest>,
    request_id: Option<String>,
) -> Result<ClaimDetail, ClaimError> {
    review::return_claim(
        db,
        &viewer.caller,
        pid,
        version,
        message,
        requests,
        request_id,
    )
    .await?;
    get(db, viewer, pid).await
}

/// Rejects with a reason code (see [`review::reject`]).
pub async fn reject(
    db: &DatabaseConnection,
    viewer: &Viewer<'_>,
    pid: &str,
    version: i32,
    reason: RejectReason,
    note: Option<String>,
    request_id: Option<String>,
) -> Result<ClaimDetail, ClaimError> {
    review::reject(db, &viewer.caller, pid, version, reason, note, request_id).await?;
    get(db, viewer, pid).await
}

/// Stores one photo (see [`materials::upload`]), answered with its signed links.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    db: &DatabaseConnection,
    storage: &Operator,
    viewer: &Viewer<'_>,
    pid: &str,
    category: Material,
    bytes: Vec<u8>,
    limits: PhotoLimits,
    ticket: &crate::service::photo_work::Ticket,
    request_id: Option<String>,
) -> Result<MaterialResponse, UploadError> {
    let stored = materials::upload(
        db,
        storage,
        &viewer.caller,
        pid,
        category,
        bytes,
        limits,
        ticket,
        request_id,
    )
    .await?;
    Ok(material_response(stored, viewer, Utc::now()))
}

/// A signed photo link as it comes back: the material, the image asked for, and the signature.
pub struct PhotoLink<'a> {
    pub material_pid: &'a str,
    pub variant: Variant,
    pub expires: i64,
    pub signature: &'a str,
}

/// The image bytes and content type behind a photo link from a detail. A link that expired or
/// that we did not sign is refused before anything is read: it is the only credential (the
/// mini-program's `<image>` sends no token).
pub async fn photo(
    db: &DatabaseConnection,
    storage: &Operator,
    links: &LookupHasher,
    link: PhotoLink<'_>,
) -> Result<(Vec<u8>, String), ClaimError> {
    if !materials::link_is_valid(
        links,
        link.material_pid,
        link.variant,
        link.expires,
        link.signature,
        Utc::now(),
    ) {
        return Err(ClaimError::Forbidden(
            "链接已过期或无效，请刷新 / the link expired or is invalid; reload the claim".into(),
        ));
    }
    materials::image(db, storage, link.material_pid, link.variant).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_writes_strings_and_instants_as_serde_json_does() {
        let mut texts: Vec<String> = (0u8..128).map(|b| format!("a{}b", b as char)).collect();
        texts.extend(
            [
                "",
                "李文博",
                "内蒙古电力（集团）\"工会\"",
                "tab\there",
                "\u{7f}\u{2028}",
                "\\",
            ]
            .map(str::to_owned),
        );
        for text in &texts {
            let mut ours = Vec::new();
            JsonOut(&mut ours).string(text);
            assert_eq!(ours, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
        for at in [
            "2026-12-06T22:20:54.331728Z",
            "2026-12-06T22:20:54Z",
            "2025-01-01T00:00:00.123Z",
            "2025-01-01T00:00:00.123456789Z",
        ] {
            let at: DateTime<Utc> = at.parse().unwrap();
            let mut ours = Vec::new();
            JsonOut(&mut ours).instant(at);
            assert_eq!(ours, serde_json::to_vec(&at).unwrap(), "{at}");
        }
    }

    #[test]
    fn a_photo_link_works_until_it_expires_and_only_for_its_photo() {
        let hasher = LookupHasher::new(&[7u8; 32]);
        let now = Utc::now();
        let (expires, sig) = materials::sign_link(&hasher, "m1", Variant::Full, now);
        assert!(materials::link_is_valid(
            &hasher,
            "m1",
            Variant::Full,
            expires,
            &sig,
            now
        ));
        assert!(!materials::link_is_valid(
            &hasher,
            "m2",
            Variant::Full,
            expires,
            &sig,
            now
        ));
        assert!(!materials::link_is_valid(
            &hasher,
            "m1",
            Variant::Thumbnail,
            expires,
            &sig,
            now
        ));
        assert!(!materials::link_is_valid(
            &hasher,
            "m1",
            Variant::Full,
            expires + 1,
            &sig,
            now
        ));
        let later = now + chrono::Duration::seconds(materials::LINK_SECONDS + 1);
        assert!(!materials::link_is_valid(
            &hasher,
            "m1",
            Variant::Full,
            expires,
            &sig,
            later
        ));
    }
}
