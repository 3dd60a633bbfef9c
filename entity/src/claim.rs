//! `claim`: a request for benefit for one event (stay, outpatient month, diagnosis, work
//! injury) in one of a member's coverage periods, with its review stages and money.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "claim")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub member_id: i64,
    pub membership_id: i64,
    pub organisation_id: i64,
    /// The member's public id, name and coverage period's public id, copied when the claim is
    /// filed (none of them ever changes): what a list item shows, read without joining the
    /// member and the period (migration `m20261211_100001_claim_listed_names`).
    pub member_pid: String,
    pub member_name: String,
    pub membership_pid: String,
    pub scheme_code: String,
    pub kind: String,
    pub facts: String,
    pub status: String,
    pub stages: Option<String>,
    pub stage: Option<String>,
    pub version: i32,
    pub filed_by_kind: String,
    pub filed_by_pid: String,
    pub idempotency_key: Option<String>,
    /// SHA-256 (hex) of the filing request made under `idempotency_key`.
    pub idempotency_fingerprint: Option<String>,
    pub submit_key: Option<String>,
    /// SHA-256 (hex) of the submission made under `submit_key`.
    pub submit_fingerprint: Option<String>,
    pub beneficiary_name: Option<String>,
    pub beneficiary_id_number_cipher: Option<String>,
    pub beneficiary_relationship: Option<String>,
    pub payee_name: Option<String>,
    pub payee_bank_card_cipher: Option<String>,
    pub return_requests: Option<String>,
    pub flagged: bool,
    pub scheme_version: Option<i32>,
    pub judgement: Option<String>,
    pub payable_fen: Option<i64>,
    pub approved_fen: Option<i64>,
    pub adjustment_reason: Option<String>,
    pub period_seq: Option<i32>,
    pub reject_reason: Option<String>,
    pub reject_note: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub submitted_at: Option<DateTimeUtc>,
    pub first_submitted_at: Option<DateTimeUtc>,
    pub approved_at: Option<DateTimeUtc>,
    pub pay_due_on: Option<Date>,
    pub pay_due_max_on: Option<Date>,
    pub paid_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
    pub payout_failure: Option<String>,
    /// The day an unconfirmed offer lapses: the scheme's claim deadline for its stay.
    pub lapses_on: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::member::Entity",
        from = "Column::MemberId",
        to = "super::member::Column::Id",
        on_delete = "Restrict"
    )]
    Member,
    #[sea_orm(
        belongs_to = "super::membership::Entity",
        from = "Column::MembershipId",
        to = "super::membership::Column::Id",
        on_delete = "Restrict"
    )]
    Membership,
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::OrganisationId",
        to = "super::organisation::Column::Id",
        on_delete = "Restrict"
    )]
    Organisation,
}

impl ActiveModelBehavior for ActiveModel {}
