//! Claims (申领): filing with photographed materials, staged review, exact approval against the
//! member's period, payout through the bank, figures, and the member's timeline.
//!
//! - [`timeline`]: the steps a member sees (status, time, reviewing level — never names);
//! - [`figures`]: filed, refused, paid, people helped, amounts and days per scheme, unit and
//!   year, for a subtree;
//! - [`payout`]: payout batches to the bank and the bank's results;
//! - [`payout_file`]: a batch's payout file for the bank (`.xlsx` or CSV);
//! - [`transition`]: the one way a claim changes (version check, status, timeline step,
//!   member's message, audit entry), used by every action of filing, review, approval and
//!   payout;
//! - [`store`]: claim rows read and written; the scheme's claim rules are the engine's
//!   ([`crate::engine::claim_rules`]);
//!
//! Status vocabulary (stored as text): `draft` → (first review stage) → … → `approved` →
//! `paying` (in a payout batch) → `paid` | `payout_failed` (→ a new batch → `paying`);
//! `returned` (for more material, back into the stage that returned it on resubmission),
//! `rejected`, `withdrawn`, and `closed` (approved with nothing to pay). An offer made from the
//! medical-insurance settlement file ([`offer`]) starts `offered` and enters the first review
//! stage when the member confirms where to pay, or becomes `lapsed` when nobody confirmed it by
//! the scheme's claim deadline ([`lapse`]).

pub mod figures;
pub mod payout;
pub mod payout_file;
pub mod timeline;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a claim stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// Being prepared by whoever files it; reviewers do not see it.
    Draft,
    /// Offered from the medical-insurance settlement file (免申即享): judged, awaiting the
    /// member's confirmation of where to pay.
    Offered,
    /// First review, by the unit union.
    UnionReview,
    /// Second review, by the service point (or office) above the union.
    ServicePointReview,
    /// Third-party appraisal recorded by the association (Hengyang, 7000 and over).
    Appraisal,
    /// Final review and amount, by the association.
    AssociationReview,
    /// Sent back for more material; resubmission returns it to the same stage.
    Returned,
    /// Approved with an amount to pay; awaiting a payout batch.
    Approved,
    /// In a payout batch sent to the bank.
    Paying,
    /// The bank paid it.
    Paid,
    /// The bank could not pay it; it can go into a new batch.
    PayoutFailed,
    /// Approved with nothing to pay (e.g. a stay that reached no new bracket).
    Closed,
    /// Refused with a reason code.
    Rejected,
    /// Withdrawn by whoever filed it, before approval.
    Withdrawn,
    /// An offer the member did not confirm by the scheme's claim deadline (set by the
    /// scheduler's daily scan); it can no longer be confirmed.
    Lapsed,
}

impl ClaimStatus {
    /// Every status.
    pub const ALL: [ClaimStatus; 15] = [
        Self::Draft,
        Self::Offered,
        Self::UnionReview,
        Self::ServicePointReview,
        Self::Appraisal,
        Self::AssociationReview,
        Self::Returned,
        Self::Approved,
        Self::Paying,
        Self::Paid,
        Self::PayoutFailed,
        Self::Closed,
        Self::Rejected,
        Self::Withdrawn,
        Self::Lapsed,
    ];

    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Offered => "offered",
            Self::UnionReview => "union_review",
            Self::ServicePointReview => "service_point_review",
            Self::Appraisal => "appraisal",
            Self::AssociationReview => "association_review",
            Self::Returned => "returned",
            Self::Approved => "approved",
            Self::Paying => "paying",
            Self::Paid => "paid",
            Self::PayoutFailed => "payout_failed",
            Self::Closed => "closed",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
            Self::Lapsed => "lapsed",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// A review stage (a reviewer's queue).
    pub fn is_review(self) -> bool {
        matches!(
            self,
            Self::UnionReview
                | Self::ServicePointReview
                | Self::Appraisal
                | Self::AssociationReview
        )
    }
}

impl From<ReviewStage> for ClaimStatus {
    fn from(stage: ReviewStage) -> Self {
        match stage {
            ReviewStage::Union => Self::UnionReview,
            ReviewStage::ServicePoint => Self::ServicePointReview,
            ReviewStage::Appraisal => Self::Appraisal,
            ReviewStage::Association => Self::AssociationReview,
        }
    }
}

/// Who acts at a point of a claim's life, as the member sees it (levels, never names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The member, or whoever files for them.
    Member,
    /// The unit union.
    Union,
    /// The service point or office.
    ServicePoint,
    /// The third-party appraisal step.
    Appraisal,
    /// The association.
    Association,
    /// The bank.
    Bank,
}

impl Level {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Union => "union",
            Self::ServicePoint => "service_point",
            Self::Appraisal => "appraisal",
            Self::Association => "association",
            Self::Bank => "bank",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Member,
            Self::Union,
            Self::ServicePoint,
            Self::Appraisal,
            Self::Association,
            Self::Bank,
        ]
        .into_iter()
        .find(|l| l.as_str() == name)
    }
}

pub mod approval;
pub mod filing;
pub mod lapse;
pub mod materials;
pub mod offer;
pub mod offering;
pub mod period;
pub mod review;
pub mod store;
pub mod tallies;
pub mod transition;
pub mod view;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::DbErr;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::domain::Role;
use crate::engine::claim_rules::ReviewStage;
use crate::engine::scheme::Material;
use crate::engine::{EventKind, Judgement, SimulationError};
use crate::service::scope::Scope;

/// Who is acting on a claim.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Public id of the member or staff account.
    pub pid: String,
    pub role: Role,
    pub scope: Scope,
}

/// Who filed a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FiledBy {
    /// The member, on their phone.
    Member,
    /// A unit-union clerk, for a member without a smartphone.
    Clerk,
    /// A unit-union clerk, for the beneficiary of a deceased member (paid to the beneficiary).
    Beneficiary,
    /// Offered from the medical-insurance bureau's settlement file, without an application.
    InsuranceFile,
}

impl FiledBy {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Clerk => "clerk",
            Self::Beneficiary => "beneficiary",
            Self::InsuranceFile => "insurance_file",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Member,
            Self::Clerk,
            Self::Beneficiary,
            Self::InsuranceFile,
        ]
        .into_iter()
        .find(|f| f.as_str() == name)
    }
}

/// A material a reviewer asked to be photographed again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReturnRequest {
    pub category: Material,
    /// What is wrong with it, for the member.
    #[schema(example = "发票照片模糊，请重新拍摄")]
    pub note: String,
}

/// What was stored with a return: the requests and when they were made (materials uploaded
/// after that instant answer them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRecord {
    pub message: String,
    pub requests: Vec<ReturnRequest>,
    pub returned_at: DateTime<Utc>,
}

/// A claim as the service hands it out (never the entity).
#[derive(Clone, Debug)]
pub struct Claim {
    pub id: i64,
    pub pid: String,
    pub member_id: i64,
    pub membership_id: i64,
    pub organisation_id: i64,
    /// Who the claim is for, as filed (never changes): the member's public id and name, and the
    /// coverage period's public id.
    pub member_pid: String,
    pub member_name: String,
    pub membership_pid: String,
    pub scheme_code: String,
    pub kind: EventKind,
    /// The event's facts, as the simulation contract's JSON: the stored text itself, checked
    /// to be JSON, so a list hands it on without building and re-writing a tree per claim.
    pub event: Box<RawValue>,
    pub status: ClaimStatus,
    pub stages: Vec<ClaimStatus>,
    pub stage: Option<ClaimStatus>,
    pub version: i32,
    pub filed_by: FiledBy,
    pub filed_by_pid: String,
    /// Fingerprint of the filing request made under its `Idempotency-Key`.
    pub idempotency_fingerprint: Option<String>,
    pub submit_key: Option<String>,
    /// Fingerprint of the submission made under `submit_key`.
    pub submit_fingerprint: Option<String>,
    pub beneficiary_name: Option<String>,
    pub beneficiary_relationship: Option<String>,
    pub payee_name: Option<String>,
    pub payee_bank_card_cipher: Option<String>,
    pub returned: Option<ReturnRecord>,
    pub flagged: bool,
    pub scheme_version: Option<i32>,
    pub judgement: Option<Judgement>,
    pub payable_fen: Option<i64>,
    pub approved_fen: Option<i64>,
    pub adjustment_reason: Option<String>,
    pub reject_reason: Option<String>,
    pub reject_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub first_submitted_at: Option<DateTime<Utc>>,
    pub approved_at: Option<DateTime<Utc>>,
    pub pay_due_on: Option<NaiveDate>,
    pub pay_due_max_on: Option<NaiveDate>,
    pub paid_at: Option<DateTime<Utc>>,
    pub payout_failure: Option<String>,
    /// An offer not confirmed by this day lapses.
    pub lapses_on: Option<NaiveDate>,
}

impl Claim {
    /// The facts as a JSON value, for the engine to read.
    pub fn facts(&self) -> Value {
        // Read from text that was checked to be JSON: only a nesting deeper than serde_json
        // reads could fail, and `Null` is then refused by whoever reads the facts.
        serde_json::from_str(self.event.get()).unwrap_or(Value::Null)
    }

    /// Payment is late: approved (or in the bank's hands) past its due day.
    pub fn overdue(&self, today: NaiveDate) -> bool {
        unpaid_past(self.status, self.pay_due_on, today)
    }

    /// Payment is later than the scheme's longest allowance (15 working days).
    pub fn overdue_beyond_maximum(&self, today: NaiveDate) -> bool {
        self.overdue(today) && unpaid_past(self.status, self.pay_due_max_on, today)
    }
}

/// A claim in `status` is approved (or in the bank's hands) and still unpaid after `due`.
pub(super) fn unpaid_past(status: ClaimStatus, due: Option<NaiveDate>, today: NaiveDate) -> bool {
    matches!(
        status,
        ClaimStatus::Approved | ClaimStatus::Paying | ClaimStatus::PayoutFailed
    ) && due.is_some_and(|due| today > due)
}

/// Why a claim action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// 404: no such claim (or membership, or material) in the caller's scope.
    #[error("not found")]
    NotFound,
    /// 403: the caller's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 403 `same_reviewer`: the caller filed the claim, changed its payee card or approved
    /// another stage of it; another reviewer must approve (four eyes on money).
    #[error("{0}")]
    SameReviewer(String),
    /// 409 `version_conflict`: the claim changed since the caller read it.
    #[error("the claim changed: version is now {current}")]
    VersionConflict { current: i32 },
    /// 409 `invalid_transition`: not possible from the claim's status.
    #[error("not possible while the claim is {status:?}")]
    WrongStatus { status: ClaimStatus },
    /// 422 with a code and the field concerned.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: String,
        message: String,
    },
    /// 422 `materials_missing`.
    #[error("materials missing")]
    MaterialsMissing(Vec<Material>),
    /// 422 `claim_window_closed`: filed after the scheme's window closed on this day.
    #[error("the claim window closed on {closed_on}")]
    WindowClosed { closed_on: NaiveDate },
    /// 422 `scheme_incomplete`.
    #[error("scheme incomplete")]
    SchemeIncomplete { missing: Vec<String> },
    /// 422 `claim_not_payable`: the engine refuses the claim; reject it with this reason.
    #[error("the engine refuses the claim: {refused}")]
    NotPayable { refused: String },
    /// 422 `idempotency_key_reused`: the `Idempotency-Key` already names another request (a
    /// different body); answering with the first request's claim would hide the client's bug.
    #[error("the Idempotency-Key was used for another request")]
    IdempotencyKeyReused,
    /// 409 `stay_already_offered`: the stay was offered from the settlement file; confirm that
    /// offer (`offer` names it) instead of filing again.
    #[error("the stay was already offered as claim {offer}")]
    AlreadyOffered { offer: String },
    /// 409 `offer_lapsed`: the offer was not confirmed by the scheme's claim deadline
    /// (`lapsed_on` the day after it) and can no longer be confirmed.
    #[error("the offer lapsed after {deadline}")]
    OfferLapsed { deadline: NaiveDate },
    /// 422 from the engine's validation of the facts.
    #[error("{0:?}")]
    Facts(SimulationError),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ClaimError {
    fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        ClaimError::Invalid {
            code,
            field: field.to_owned(),
            message: message.into(),
        }
    }
}
