//! Claims (申领): filing with photographed materials, staged review, exact approval against the
//! member's period, payout through the bank, figures, and the member's timeline.
//!
//! - [`timeline`]: the steps a member sees (status, time, reviewing level — never names);
//! - [`payout`]: payout batches to the bank, their files and the bank's results;
//!
//! Status vocabulary (stored as text): `draft` → (first review stage) → … → `approved` →
//! `paying` (in a payout batch) → `paid` | `payout_failed` (→ a new batch → `paying`);
//! `returned` (for more material, back into the stage that returned it on resubmission),
//! `rejected`, `withdrawn`, and `closed` (approved with nothing to pay).

pub mod payout;
pub mod timeline;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a claim stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// Being prepared by whoever files it; reviewers do not see it.
    Draft,
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
}

impl ClaimStatus {
    /// Every status.
    pub const ALL: [ClaimStatus; 13] = [
        Self::Draft,
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
    ];

    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
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
