//! Approved claims put straight into the database, for testing what follows approval (payout)
//! before the filing and review endpoints exist. Remove once claims can be approved over HTTP.

use chrono::Utc;
use huzhu::auth::crypto::PiiKind;
use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, QuerySelect, Set};

use crate::harness::TestApp;

/// A claim inserted as approved.
#[derive(Clone, Debug)]
pub struct ApprovedClaim {
    pub id: i64,
    pub pid: String,
    pub member_id: i64,
    pub payee_name: String,
    /// The payee's card, in full.
    pub card: String,
    pub approved_fen: i64,
}

/// Inserts a claim approved for `approved_fen` (fen), to be paid to `payee_name` on `card`, on
/// the `nth` membership of the demo data (in id order), with status `status` (normally
/// `approved`). The card is sealed with the app's vault, as approval would.
pub async fn insert_claim(
    app: &TestApp,
    nth: u64,
    status: &str,
    approved_fen: i64,
    payee_name: &str,
    card: &str,
) -> ApprovedClaim {
    let db = &app.state.db;
    let membership = entity::membership::Entity::find()
        .order_by_asc(entity::membership::Column::Id)
        .offset(nth)
        .limit(1)
        .one(db)
        .await
        .expect("memberships")
        .expect("the demo has enough memberships");
    let member = entity::member::Entity::find_by_id(membership.member_id)
        .one(db)
        .await
        .expect("member")
        .expect("the membership's member");
    let (cipher, _) = app
        .state
        .pii
        .seal(PiiKind::BankCard, card)
        .expect("seal the card");
    let now = Utc::now();
    let pid = uuid::Uuid::now_v7().to_string();
    let row = entity::claim::ActiveModel {
        pid: Set(pid.clone()),
        member_id: Set(member.id),
        membership_id: Set(membership.id),
        organisation_id: Set(membership.organisation_id),
        member_pid: Set(member.pid.clone()),
        member_name: Set(member.name.clone()),
        membership_pid: Set(membership.pid.clone()),
        scheme_code: Set(membership.scheme_code.clone()),
        kind: Set("inpatient".into()),
        facts: Set("{}".into()),
        status: Set(status.into()),
        stages: Set(Some(r#"["union_review","association_review"]"#.into())),
        stage: Set(None),
        version: Set(3),
        filed_by_kind: Set("member".into()),
        filed_by_pid: Set(member.pid.clone()),
        idempotency_key: Set(None),
        idempotency_fingerprint: Set(None),
        submit_key: Set(None),
        submit_fingerprint: Set(None),
        beneficiary_name: Set(None),
        beneficiary_id_number_cipher: Set(None),
        beneficiary_relationship: Set(None),
        payee_name: Set(Some(payee_name.into())),
        payee_bank_card_cipher: Set(Some(cipher)),
        return_requests: Set(None),
        flagged: Set(false),
        scheme_version: Set(Some(1)),
        judgement: Set(Some("{}".into())),
        payable_fen: Set(Some(approved_fen)),
        approved_fen: Set(Some(approved_fen)),
        adjustment_reason: Set(None),
        period_seq: Set(Some(1)),
        reject_reason: Set(None),
        reject_note: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        submitted_at: Set(Some(now)),
        first_submitted_at: Set(Some(now)),
        approved_at: Set(Some(now)),
        pay_due_on: Set(None),
        pay_due_max_on: Set(None),
        paid_at: Set(None),
        closed_at: Set(None),
        payout_failure: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("insert the claim");
    ApprovedClaim {
        id: row.id,
        pid,
        member_id: member.id,
        payee_name: payee_name.into(),
        card: card.into(),
        approved_fen,
    }
}

/// [`insert_claim`] with status `approved`.
pub async fn approved_claim(
    app: &TestApp,
    nth: u64,
    approved_fen: i64,
    payee_name: &str,
    card: &str,
) -> ApprovedClaim {
    insert_claim(app, nth, "approved", approved_fen, payee_name, card).await
}

/// The claim's row as stored now.
pub async fn claim_row(app: &TestApp, id: i64) -> entity::claim::Model {
    entity::claim::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .expect("claim")
        .expect("the claim exists")
}
