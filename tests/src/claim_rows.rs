//! Claims written straight into a test app's database — with the statuses, timestamps, reasons
//! and amounts a test chooses — for tests of what reads claims (figures, lists) without going
//! through filing and review.

use chrono::{DateTime, Utc};
use entity::{claim, member, membership, organisation};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::harness::TestApp;

/// An instant written in RFC 3339, e.g. `2025-12-31T17:00:00Z`.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .with_timezone(&Utc)
}

/// One claim to write.
#[derive(Clone, Debug)]
pub struct ClaimRow {
    /// The unit union of the member (by name).
    pub unit: String,
    /// Which of the unit's members, by order of creation.
    pub member: usize,
    /// The member's membership of this scheme is claimed on.
    pub scheme_code: String,
    /// The unit union the claim is filed with, when not the member's own (a member who moved).
    pub filed_with: Option<String>,
    pub status: String,
    pub first_submitted_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub reject_reason: Option<String>,
    pub approved_fen: Option<i64>,
    /// Offered from the settlement file (免申即享) instead of applied for.
    pub offered: bool,
    /// An offer the member has confirmed (it entered review: `submitted_at` set).
    pub confirmed: bool,
    /// The stay's discharge date (`YYYY-MM-DD`), written into the claim's facts.
    pub discharged_on: Option<String>,
}

impl ClaimRow {
    /// A draft of the `member`-th member of `unit`, on their membership of `scheme_code`.
    pub fn of(unit: &str, member: usize, scheme_code: &str) -> ClaimRow {
        ClaimRow {
            unit: unit.to_owned(),
            member,
            scheme_code: scheme_code.to_owned(),
            filed_with: None,
            status: "draft".to_owned(),
            first_submitted_at: None,
            paid_at: None,
            reject_reason: None,
            approved_fen: None,
            offered: false,
            confirmed: false,
            discharged_on: None,
        }
    }

    /// Offered from the settlement file; `confirmed` when the member has confirmed it.
    pub fn offer(mut self, confirmed: bool) -> ClaimRow {
        self.offered = true;
        self.confirmed = confirmed;
        self
    }

    /// A stay discharged on `date` (`YYYY-MM-DD`).
    pub fn discharged(mut self, date: &str) -> ClaimRow {
        self.discharged_on = Some(date.to_owned());
        self
    }

    /// First submitted at `submitted`, now standing at `status`.
    pub fn stands(mut self, status: &str, submitted: &str) -> ClaimRow {
        self.status = status.to_owned();
        self.first_submitted_at = Some(at(submitted));
        self
    }

    /// First submitted at `submitted`, paid `fen` at `paid`.
    pub fn paid(mut self, submitted: &str, paid: &str, fen: i64) -> ClaimRow {
        self = self.stands("paid", submitted).amount(fen);
        self.paid_at = Some(at(paid));
        self
    }

    /// First submitted at `submitted`, rejected with `reason` (a code, or none).
    pub fn rejected(mut self, submitted: &str, reason: Option<&str>) -> ClaimRow {
        self = self.stands("rejected", submitted);
        self.reject_reason = reason.map(str::to_owned);
        self
    }

    /// With an approved amount.
    pub fn amount(mut self, fen: i64) -> ClaimRow {
        self.approved_fen = Some(fen);
        self
    }

    /// Filed with another unit union than the member's own.
    pub fn filed_with(mut self, unit: &str) -> ClaimRow {
        self.filed_with = Some(unit.to_owned());
        self
    }
}

async fn unit(app: &TestApp, name: &str) -> organisation::Model {
    organisation::Entity::find()
        .filter(organisation::Column::Name.eq(name))
        .one(&app.state.db)
        .await
        .expect("organisation query")
        .unwrap_or_else(|| panic!("no organisation {name}"))
}

/// Writes the claims; returns their ids.
pub async fn insert_claims(app: &TestApp, rows: &[ClaimRow]) -> Vec<i64> {
    let db = &app.state.db;
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let home = unit(app, &row.unit).await;
        let person = member::Entity::find()
            .filter(member::Column::OrganisationId.eq(home.id))
            .order_by_asc(member::Column::Id)
            .all(db)
            .await
            .expect("members query")
            .into_iter()
            .nth(row.member)
            .unwrap_or_else(|| panic!("{} has no member {}", row.unit, row.member));
        let period = membership::Entity::find()
            .filter(membership::Column::MemberId.eq(person.id))
            .filter(membership::Column::SchemeCode.eq(&row.scheme_code))
            .one(db)
            .await
            .expect("membership query")
            .unwrap_or_else(|| {
                panic!(
                    "member {} of {} has no {}",
                    row.member, row.unit, row.scheme_code
                )
            });
        let organisation_id = match &row.filed_with {
            Some(other) => unit(app, other).await.id,
            None => home.id,
        };
        let created = row.first_submitted_at.unwrap_or_else(Utc::now);
        let done = matches!(row.status.as_str(), "rejected" | "withdrawn" | "closed");
        let saved = claim::ActiveModel {
            pid: Set(uuid::Uuid::now_v7().to_string()),
            member_id: Set(person.id),
            membership_id: Set(period.id),
            organisation_id: Set(organisation_id),
            member_pid: Set(person.pid.clone()),
            member_name: Set(person.name.clone()),
            membership_pid: Set(period.pid.clone()),
            scheme_code: Set(row.scheme_code.clone()),
            kind: Set("inpatient".to_owned()),
            facts: Set(match &row.discharged_on {
                Some(day) => serde_json::json!({"kind": "inpatient", "admitted_on": day,
                    "discharged_on": day, "eligible_self_pay": "1000.00"})
                .to_string(),
                None => "{}".to_owned(),
            }),
            status: Set(row.status.clone()),
            version: Set(1),
            filed_by_kind: Set(if row.offered {
                "insurance_file".to_owned()
            } else {
                "member".to_owned()
            }),
            filed_by_pid: Set(person.pid.clone()),
            flagged: Set(false),
            payable_fen: Set(row.approved_fen),
            approved_fen: Set(row.approved_fen),
            reject_reason: Set(row.reject_reason.clone()),
            created_at: Set(created),
            updated_at: Set(row.paid_at.unwrap_or(created)),
            // An offer enters review (and gets a submission) when the member confirms it.
            submitted_at: Set(if row.offered && !row.confirmed {
                None
            } else {
                row.first_submitted_at
            }),
            first_submitted_at: Set(row.first_submitted_at),
            approved_at: Set(row.approved_fen.and(row.paid_at.or(row.first_submitted_at))),
            paid_at: Set(row.paid_at),
            closed_at: Set(done.then_some(created)),
            ..Default::default()
        }
        .insert(db)
        .await
        .expect("insert claim");
        ids.push(saved.id);
    }
    ids
}
