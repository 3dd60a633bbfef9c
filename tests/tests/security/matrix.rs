//! The authorization matrix (issue 18): every operation of the OpenAPI document the server
//! serves × every kind of caller × own object / foreign object / unknown id, each answer's
//! status class checked against [`POLICY`], a table declared here.
//!
//! - An operation of the document without a row in [`POLICY`] fails the test, naming it (and
//!   a row without an operation fails too): a new operation must be given its policy.
//! - A 5xx anywhere fails.
//! - A foreign object and an unknown id must answer identically (status and error code): the
//!   API does not tell "exists but not yours" from "does not exist".
//!
//! The demo's tree gives the zones: *own* objects sit in 内蒙古电力 (unit union of the
//! 新城区 service point) and belong to the member who calls; *foreign* ones in 赛罕区教育局
//! (another unit union under another service point) and belong to another member. The
//! association's reviewers and administrators see the whole tree: for them a foreign object is
//! theirs too. A member's payment authorisation and a deduction refund are each a member's: one
//! in each zone. Objects the association alone works with, spanning the tree (staff, payout and
//! deduction batches, settlement imports, templates, schemes), are checked existing and
//! unknown, with no foreign variant.
//!
//! "Allowed" means the request passed authentication and authorization: any answer but 401,
//! 403, 404 and 5xx (a 409 or 422 from the business rules is a request that was let in). The
//! bodies are minimal valid requests (the document's examples where they have one), so a
//! refusal by role is never hidden behind a body the extractor refuses first.

use std::collections::{BTreeMap, BTreeSet};

use huzhu_tests::claim_flow::{self, BANK_CARD, Period};
use huzhu_tests::harness::{TestApp, spawn_app_with};
use huzhu_tests::{on_both_backends_with, pictures, roster};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Anonymous,
    /// A member of the own unit union (`Role::Member`).
    Member,
    /// The own unit union's clerk (`Role::UnionReviewer`).
    UnionClerk,
    /// The reviewer of the own union's service point (`Role::ServicePointReviewer`).
    ServicePoint,
    /// `Role::AssociationReviewer`.
    AssociationReviewer,
    /// `Role::Admin` (association administrator).
    Admin,
}

use Caller::*;

const CALLERS: [Caller; 6] = [
    Anonymous,
    Member,
    UnionClerk,
    ServicePoint,
    AssociationReviewer,
    Admin,
];

impl Caller {
    /// Whether the caller's subtree is the whole tree.
    fn sees_whole_tree(self) -> bool {
        matches!(self, AssociationReviewer | Admin)
    }
}

/// Which object a request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The operation names no object (or the caller's own, as `/me`).
    Nothing,
    /// An object in the caller's subtree (the member's own).
    Own,
    /// An object of another union, service point and member.
    Foreign,
    /// A well-formed id of nothing.
    Unknown,
}

/// What an operation's `{id}` (or the id in its body) names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Object {
    None,
    // In a subtree: own, foreign and unknown.
    /// A submitted claim (in review).
    Claim,
    /// A member's draft claim.
    Draft,
    /// `{id}` a draft, `{material_id}` one of its photos (a fresh one for each request).
    Material,
    Member,
    /// A unit union (in the path, or named by `organisation_id` / `parent_id` in the body).
    Organisation,
    /// A coverage period, named by `membership_id` in the body.
    Membership,
    Enrolment,
    ImportJob,
    /// A member's payment authorisation for the Wujin scheme (the own union is given a target
    /// for it, so that its member signs one too).
    Authorisation,
    /// A refund due to a member (a deduction whose result came after the period ended).
    DeductionRefund,
    // The association's own: existing and unknown.
    Staff,
    PayoutBatch,
    /// A month's deduction batch (its lines span both zones).
    DeductionBatch,
    /// A settlement-file import of the association.
    SettlementImport,
    Message,
    Scheme,
    SmsTemplate,
}

impl Object {
    fn in_subtree(self) -> bool {
        matches!(
            self,
            Object::Claim
                | Object::Draft
                | Object::Material
                | Object::Member
                | Object::Organisation
                | Object::Membership
                | Object::Enrolment
                | Object::ImportJob
                | Object::Authorisation
                | Object::DeductionRefund
        )
    }
}

/// The status class of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Let in: anything but 401, 403, 404 and 5xx.
    Allowed,
    /// 401.
    Unauthenticated,
    /// 403.
    Forbidden,
    /// 404: as if the object did not exist.
    Hidden,
}

impl Outcome {
    fn of(status: u16) -> Outcome {
        match status {
            401 => Outcome::Unauthenticated,
            403 => Outcome::Forbidden,
            404 => Outcome::Hidden,
            _ => Outcome::Allowed,
        }
    }
}

/// Who may call an operation.
#[derive(Clone, Copy, Debug)]
enum Access {
    /// Anyone, signed in or not; an unknown id is 404.
    Public,
    /// The request carries its own credential (a signed photo link, the SMS receipt secret in
    /// the URL, a WeChat sign-in code): without a valid one it answers the same to every
    /// caller, whatever the object and the bearer token.
    Credential(Outcome),
    /// Signed-in callers of these roles, within their subtree; anonymous is 401; callers of
    /// other roles get the second outcome (403, or 404 where the API hides the route).
    Roles(&'static [Caller], Outcome),
    /// As `Roles(callers, Forbidden)`, but the id names what the request creates: an unknown
    /// one is let in (publishing the first version of a scheme creates the scheme).
    Creates(&'static [Caller]),
}

const MEMBER: &[Caller] = &[Member];
const ALL: &[Caller] = &[Member, UnionClerk, ServicePoint, AssociationReviewer, Admin];
const STAFF: &[Caller] = &[UnionClerk, ServicePoint, AssociationReviewer, Admin];
const ASSOCIATION: &[Caller] = &[AssociationReviewer, Admin];
const ADMIN: &[Caller] = &[Admin];
const ASSOCIATION_REVIEWER: &[Caller] = &[AssociationReviewer];
const FILERS: &[Caller] = &[Member, UnionClerk];
const UNION_OR_ADMIN: &[Caller] = &[UnionClerk, Admin];

const fn roles(callers: &'static [Caller]) -> Access {
    Access::Roles(callers, Outcome::Forbidden)
}

/// The member who filed a draft; anyone else gets 404.
const DRAFT_OWNER: Access = Access::Roles(MEMBER, Outcome::Hidden);

/// The declared policy: operation (`METHOD /path` as in the document), the object it names,
/// and who may call it.
#[rustfmt::skip]
const POLICY: &[(&str, Object, Access)] = &[
    // Signing in and public reference data.
    ("POST /api/v1/auth/dev-login", Object::None, Access::Public),
    // A WeChat account bound to nobody (the code is the fake WeChat's, for an unknown openid).
    ("POST /api/v1/auth/wechat", Object::None, Access::Credential(Outcome::Unauthenticated)),
    ("GET /api/v1/authorisation-texts/{scheme_code}", Object::Scheme, Access::Public),
    ("GET /api/v1/roster-template.xlsx", Object::None, Access::Public),
    ("GET /api/v1/schemes", Object::None, Access::Public),
    ("GET /api/v1/schemes/{code}", Object::Scheme, Access::Public),
    ("POST /api/v1/simulations", Object::None, Access::Public),
    ("GET /healthz", Object::None, Access::Public),
    ("GET /readyz", Object::None, Access::Public),
    // Credentials in the URL.
    ("GET /api/v1/claim-photos/{material_id}", Object::Material, Access::Credential(Outcome::Forbidden)),
    ("POST /api/v1/sms/receipts/{provider}/{secret}", Object::None, Access::Credential(Outcome::Hidden)),
    // The signed-in account itself.
    ("GET /api/v1/me", Object::None, roles(ALL)),
    ("POST /api/v1/me/sessions/revoke", Object::None, roles(ALL)),
    ("POST /api/v1/me/phone", Object::None, roles(MEMBER)),
    ("GET /api/v1/me/authorisations", Object::None, roles(MEMBER)),
    ("POST /api/v1/me/authorisations", Object::None, roles(MEMBER)),
    ("POST /api/v1/me/authorisations/{id}/revoke", Object::Authorisation, roles(MEMBER)),
    ("GET /api/v1/me/deductions", Object::None, roles(MEMBER)),
    // The exact text a worker signed: their own authorisation only (another member's is 404).
    ("GET /api/v1/me/authorisations/{id}/text", Object::Authorisation, roles(MEMBER)),
    ("GET /api/v1/me/memberships", Object::None, roles(MEMBER)),
    // Claims: members file and follow their own, unions file for theirs, every reviewer
    // works within their subtree.
    ("GET /api/v1/claims", Object::None, roles(ALL)),
    ("POST /api/v1/claims", Object::Membership, roles(FILERS)),
    ("GET /api/v1/claims/counts", Object::None, roles(ALL)),
    ("GET /api/v1/claims/{id}", Object::Claim, roles(ALL)),
    // A member's draft is theirs alone: to everyone else it does not exist.
    ("PATCH /api/v1/claims/{id}", Object::Draft, DRAFT_OWNER),
    ("POST /api/v1/claims/{id}/submit", Object::Draft, DRAFT_OWNER),
    ("POST /api/v1/claims/{id}/withdraw", Object::Draft, DRAFT_OWNER),
    ("POST /api/v1/claims/{id}/materials", Object::Draft, DRAFT_OWNER),
    ("DELETE /api/v1/claims/{id}/materials/{material_id}", Object::Material, DRAFT_OWNER),
    ("POST /api/v1/claims/{id}/approve", Object::Claim, roles(STAFF)),
    ("POST /api/v1/claims/{id}/return", Object::Claim, roles(STAFF)),
    ("POST /api/v1/claims/{id}/reject", Object::Claim, roles(STAFF)),
    // An offer from the insurance file: the member confirms it, or their union on their behalf
    // (the fixtures' claims are not offers: let in means refused for the status, 409).
    ("POST /api/v1/claims/{id}/confirm-offer", Object::Claim, roles(FILERS)),
    // Offers approved in bulk: the association's reviewers alone (the ids it names are judged
    // claim by claim in the answer: an unknown one is skipped `not_found`).
    ("POST /api/v1/claims/approve-offers", Object::None, roles(ASSOCIATION_REVIEWER)),
    ("GET /api/v1/claim-figures", Object::None, roles(STAFF)),
    ("GET /api/v1/exports/claim-figures.xlsx", Object::None, roles(STAFF)),
    // Members and their periods.
    ("GET /api/v1/members", Object::None, roles(STAFF)),
    ("POST /api/v1/members", Object::Organisation, roles(UNION_OR_ADMIN)),
    ("POST /api/v1/members/search", Object::None, roles(STAFF)),
    // A member reads their own record.
    ("GET /api/v1/members/{id}", Object::Member, roles(ALL)),
    ("GET /api/v1/memberships", Object::None, roles(STAFF)),
    ("POST /api/v1/extensions", Object::Organisation, roles(ASSOCIATION)),
    // Group enrolment.
    ("GET /api/v1/enrolments", Object::None, roles(STAFF)),
    ("POST /api/v1/enrolments", Object::Organisation, roles(UNION_OR_ADMIN)),
    ("GET /api/v1/enrolments/{id}", Object::Enrolment, roles(STAFF)),
    ("GET /api/v1/enrolments/{id}/comparison", Object::Enrolment, roles(STAFF)),
    ("POST /api/v1/enrolments/{id}/transfer", Object::Enrolment, roles(UNION_OR_ADMIN)),
    ("POST /api/v1/enrolments/{id}/confirm", Object::Enrolment, roles(ASSOCIATION)),
    ("POST /api/v1/enrolments/{id}/withdraw", Object::Enrolment, roles(UNION_OR_ADMIN)),
    ("POST /api/v1/enrolments/{id}/refuse", Object::Enrolment, roles(ASSOCIATION)),
    ("GET /api/v1/import-jobs/{id}", Object::ImportJob, roles(STAFF)),
    ("GET /api/v1/import-jobs/{id}/problems.xlsx", Object::ImportJob, roles(STAFF)),
    // The tree and its reports.
    ("GET /api/v1/organisations", Object::None, roles(STAFF)),
    ("POST /api/v1/organisations", Object::Organisation, roles(ADMIN)),
    ("GET /api/v1/organisations/{id}", Object::Organisation, roles(STAFF)),
    ("PATCH /api/v1/organisations/{id}", Object::Organisation, roles(ADMIN)),
    ("GET /api/v1/organisations/{id}/ledger.xlsx", Object::Organisation, roles(STAFF)),
    ("GET /api/v1/organisations/{id}/renewal-roster.xlsx", Object::Organisation, roles(STAFF)),
    ("GET /api/v1/organisations/{id}/summary.xlsx", Object::Organisation, roles(STAFF)),
    ("PUT /api/v1/targets", Object::Organisation, roles(ASSOCIATION)),
    ("GET /api/v1/targets/progress", Object::None, roles(STAFF)),
    ("GET /api/v1/targets/progress.xlsx", Object::None, roles(STAFF)),
    // Staff accounts (administrators).
    ("GET /api/v1/staff", Object::None, roles(ADMIN)),
    ("POST /api/v1/staff", Object::Organisation, roles(ADMIN)),
    ("GET /api/v1/staff/{id}", Object::Staff, roles(ADMIN)),
    ("PATCH /api/v1/staff/{id}", Object::Staff, roles(ADMIN)),
    ("POST /api/v1/staff/{id}/invitations", Object::Staff, roles(ADMIN)),
    // Schemes.
    ("GET /api/v1/schemes/{code}/versions", Object::Scheme, roles(ASSOCIATION)),
    ("POST /api/v1/schemes/{code}/versions", Object::Scheme, Access::Creates(ADMIN)),
    // Money: payouts, deductions, payment authorisations (the association).
    ("GET /api/v1/payout-batches", Object::None, roles(ASSOCIATION)),
    ("POST /api/v1/payout-batches", Object::None, roles(ASSOCIATION)),
    ("GET /api/v1/payout-batches/{id}", Object::PayoutBatch, roles(ASSOCIATION)),
    ("GET /api/v1/payout-batches/{id}/file.csv", Object::PayoutBatch, roles(ASSOCIATION)),
    ("GET /api/v1/payout-batches/{id}/file.xlsx", Object::PayoutBatch, roles(ASSOCIATION)),
    ("POST /api/v1/payout-batches/{id}/result", Object::PayoutBatch, roles(ASSOCIATION)),
    ("GET /api/v1/deductions", Object::None, roles(ASSOCIATION)),
    ("POST /api/v1/deductions", Object::None, roles(ASSOCIATION)),
    ("GET /api/v1/deductions/failed", Object::None, roles(ASSOCIATION)),
    ("GET /api/v1/deductions/{id}", Object::DeductionBatch, roles(ASSOCIATION)),
    ("GET /api/v1/deductions/{id}/file", Object::DeductionBatch, roles(ASSOCIATION)),
    ("GET /api/v1/deductions/{id}/file.xlsx", Object::DeductionBatch, roles(ASSOCIATION)),
    ("GET /api/v1/deductions/{id}/lines", Object::DeductionBatch, roles(ASSOCIATION)),
    ("POST /api/v1/deductions/{id}/result", Object::DeductionBatch, roles(ASSOCIATION)),
    ("POST /api/v1/deduction-windows", Object::None, roles(ASSOCIATION)),
    ("GET /api/v1/deduction-refunds", Object::None, roles(ASSOCIATION)),
    // The medical-insurance bureau's settlement files (免申即享).
    ("POST /api/v1/settlement-imports", Object::None, roles(ASSOCIATION)),
    ("GET /api/v1/settlement-imports/{id}", Object::SettlementImport, roles(ASSOCIATION)),
    ("GET /api/v1/settlement-imports/{id}/report.xlsx", Object::SettlementImport, roles(ASSOCIATION)),
    ("GET /api/v1/deduction-refunds/file", Object::None, roles(ASSOCIATION)),
    ("GET /api/v1/deduction-refunds/file.xlsx", Object::None, roles(ASSOCIATION)),
    ("POST /api/v1/deduction-refunds/{id}/refunded", Object::DeductionRefund, roles(ASSOCIATION)),
    ("GET /api/v1/authorisations", Object::None, roles(ASSOCIATION)),
    ("GET /api/v1/authorisations/{id}/evidence/{kind}", Object::Authorisation, roles(ASSOCIATION)),
    ("POST /api/v1/authorisations/{id}/revoke", Object::Authorisation, roles(ASSOCIATION)),
    // Messages to members.
    ("GET /api/v1/messages", Object::None, roles(ASSOCIATION)),
    ("GET /api/v1/messages/{id}", Object::Message, roles(ASSOCIATION)),
    ("POST /api/v1/messages/{id}/resend", Object::Message, roles(ASSOCIATION)),
    ("GET /api/v1/reminders/preview", Object::None, roles(ASSOCIATION)),
    ("GET /api/v1/sms-templates", Object::None, roles(ASSOCIATION)),
    ("PUT /api/v1/sms-templates/{occasion}", Object::SmsTemplate, roles(ADMIN)),
];

/// What the policy says `caller` gets for `target`.
fn expected(access: Access, caller: Caller, target: Target) -> Outcome {
    match access {
        Access::Public => match target {
            Target::Unknown => Outcome::Hidden,
            _ => Outcome::Allowed,
        },
        Access::Credential(outcome) => outcome,
        Access::Creates(allowed) => match expected(roles(allowed), caller, target) {
            Outcome::Hidden if target == Target::Unknown => Outcome::Allowed,
            outcome => outcome,
        },
        Access::Roles(allowed, denied) => {
            if caller == Anonymous {
                Outcome::Unauthenticated
            } else if !allowed.contains(&caller) {
                denied
            } else {
                match target {
                    Target::Nothing | Target::Own => Outcome::Allowed,
                    Target::Foreign if caller.sees_whole_tree() => Outcome::Allowed,
                    Target::Foreign | Target::Unknown => Outcome::Hidden,
                }
            }
        }
    }
}

/// The ids an object resolves to for one target.
#[derive(Clone, Debug)]
struct Named {
    id: String,
    /// For a material: its claim.
    claim: Option<String>,
}

/// One side of the tree: its union, member, period and objects.
#[derive(Clone, Debug)]
struct Zone {
    union_login: &'static str,
    unit: String,
    period: Period,
    draft: String,
    claim: String,
    enrolment: String,
    import_job: String,
    /// The Wujin payment authorisation of the zone's member.
    authorisation: String,
    /// A refund due to a member of the zone.
    refund: String,
}

/// Everything the requests name.
struct Fixtures {
    own: Zone,
    foreign: Zone,
    /// Objects of the association: one that exists, where the demo has one.
    shared: BTreeMap<&'static str, String>,
    staff: String,
    scheme_definition: Value,
}

const OWN_UNION: &str = "内蒙古电力（集团）有限责任公司工会";
const FOREIGN_UNION: &str = "赛罕区教育局工会";

fn own_event() -> Value {
    json!({"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-11",
           "billed_days": 10, "deductible": "800.00", "eligible_self_pay": "12000.00"})
}

async fn roster_job(app: &TestApp, token: &str, unit: &str, scheme: &str, seed: u32) -> String {
    let res = app
        .client
        .post(app.url("/api/v1/enrolments"))
        .bearer_auth(token)
        .multipart(roster_form(unit, scheme, seed))
        .send()
        .await
        .expect("roster upload");
    let status = res.status().as_u16();
    let job: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 202, "{job}");
    job["id"].as_str().expect("job id").to_owned()
}

fn roster_form(unit: &str, scheme: &str, seed: u32) -> Form {
    Form::new()
        .text("organisation_id", unit.to_owned())
        .text("scheme_code", scheme.to_owned())
        .text("head_count", "40")
        .part(
            "file",
            Part::bytes(roster::xlsx(&roster::people(3, seed))).file_name("名单.xlsx"),
        )
}

/// An enrolment batch of `unit`, waiting for the union's transfer (put in the database: a
/// real one needs an open window and a roster's job; the routes read it the same way).
async fn enrolment_of(app: &TestApp, unit: &str, scheme: &str) -> String {
    let pid = uuid::Uuid::now_v7().to_string();
    entity::enrolment_batch::ActiveModel {
        pid: Set(pid.clone()),
        organisation_id: Set(internal_id_of_unit(app, unit).await),
        scheme_code: Set(scheme.to_owned()),
        scheme_version: Set(1),
        status: Set("submitted".into()),
        head_count: Set(12),
        member_count: Set(0),
        fee_total_fen: Set(0),
        regional_share_fen: Set(0),
        transfer_reference: Set(None),
        transfer_recorded_at: Set(None),
        confirmed_at: Set(None),
        confirmed_by: Set(None),
        coverage_start: Set(None),
        coverage_end: Set(None),
        created_by: Set("matrix".into()),
        created_at: Set(chrono::Utc::now()),
        lock_version: Set(1),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .expect("insert the enrolment batch");
    pid
}

async fn internal_id_of_unit(app: &TestApp, unit: &str) -> i64 {
    entity::organisation::Entity::find()
        .filter(entity::organisation::Column::Pid.eq(unit))
        .one(&app.state.db)
        .await
        .expect("organisation")
        .expect("the unit exists")
        .id
}

/// A period of 2025's inpatient scheme for the foreign union's first member (the demo gives
/// that union only a 2022 scheme, whose claim window has closed): put in the database as the
/// demo puts its own.
async fn foreign_period(app: &TestApp, unit: &str) -> Period {
    let member_pid = claim_flow::period(app, "union-education", "wj-2022", 0)
        .await
        .member_pid;
    let member = entity::member::Entity::find()
        .filter(entity::member::Column::Pid.eq(&member_pid))
        .one(&app.state.db)
        .await
        .expect("member")
        .expect("the member exists");
    let pid = uuid::Uuid::now_v7().to_string();
    let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    entity::membership::ActiveModel {
        pid: Set(pid.clone()),
        member_id: Set(member.id),
        organisation_id: Set(internal_id_of_unit(app, unit).await),
        scheme_code: Set("nm-inpatient-2025".into()),
        coverage_start: Set(date("2025-01-01")),
        coverage_end: Set(date("2025-12-31")),
        status: Set("active".into()),
        consecutive_periods: Set(1),
        continuous_renewal: Set(false),
        created_at: Set(chrono::Utc::now()),
        enrolment_batch_id: Set(None),
        fee_fen: Set(0),
        allowance_paid: Set(false),
        extension_id: Set(None),
        source: Set("group".into()),
        ledger_seq: Set(0),
        offset_fen: Set(0),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .expect("insert the period");
    Period {
        member_pid,
        membership_pid: pid,
        coverage_start: "2025-01-01".into(),
        coverage_end: "2025-12-31".into(),
        consecutive_periods: 1,
        continuous_renewal: false,
    }
}

/// A claim the member filed with every required photo and submitted: in review.
async fn submitted_claim(
    app: &TestApp,
    member: &str,
    period: &Period,
    admitted: &str,
    discharged: &str,
    seed: u32,
) -> String {
    let mut event = own_event();
    event["admitted_on"] = json!(admitted);
    event["discharged_on"] = json!(discharged);
    let filed = claim_flow::file(app, member, period, event).await;
    claim_flow::upload_required_small(app, member, &filed, u64::from(seed)).await;
    let claim = filed["claim"]["id"].as_str().expect("claim id").to_owned();
    let (status, body) = claim_flow::act(app, member, &claim, "submit", json!({})).await;
    assert_eq!(status, 200, "{body}");
    claim
}

/// A claim of the own zone approved at every stage and paid through a payout batch (which
/// also tells the member: a message).
async fn paid_claim(app: &TestApp, zone: &Zone) {
    let member = app.login(&zone.period.member_pid).await;
    let claim = submitted_claim(app, &member, &zone.period, "2025-05-01", "2025-05-11", 77).await;
    let reviewers = [
        ("union_review", app.login(zone.union_login).await),
        ("service_point_review", app.login("sp-xincheng").await),
        ("appraisal", app.login("association").await),
        ("association_review", app.login("association").await),
    ];
    let approved = claim_flow::approve_through(app, &claim, &reviewers).await;
    assert_eq!(approved["claim"]["status"], "approved", "{approved}");
    let paid = claim_flow::pay(app, &claim).await;
    assert_eq!(paid["claim"]["status"], "paid", "{paid}");
}

async fn zone(
    app: &TestApp,
    union_login: &'static str,
    unit: String,
    period: Period,
    seed: u32,
    wujin: Wujin,
) -> Zone {
    let member = app.login(&period.member_pid).await;
    let draft = claim_flow::file(app, &member, &period, own_event()).await["claim"]["id"]
        .as_str()
        .expect("draft id")
        .to_owned();
    let claim = submitted_claim(app, &member, &period, "2025-04-01", "2025-04-11", seed).await;
    let clerk = app.login(union_login).await;
    let import_job = roster_job(app, &clerk, &unit, "nm-inpatient-2025", seed).await;
    let enrolment = enrolment_of(app, &unit, "nm-inpatient-2025").await;
    Zone {
        union_login,
        unit,
        period,
        draft,
        claim,
        enrolment,
        import_job,
        authorisation: wujin.authorisation,
        refund: wujin.refund,
    }
}

/// A replica of `app` (same database, storage, Redis prefix and keys) whose clock is in the
/// Wujin scheme's enrolment window (December 2021), the only time it takes signatures and
/// deduction batches.
async fn replica_in_the_wujin_window(app: &TestApp) -> TestApp {
    let url = app.pg.as_ref().map(|pg| pg.url.clone());
    let prefix = app.state.settings.redis.key_prefix.clone();
    let data_dir = app.data_dir.0.clone();
    spawn_app_with(app.backend, move |s| {
        if let Some(url) = url {
            s.database.url = Some(secrecy::SecretString::from(url));
        }
        s.redis.key_prefix = prefix;
        s.data_dir = data_dir;
        s.clock.today = chrono::NaiveDate::from_ymd_opt(2021, 12, 1);
    })
    .await
    .expect("a replica in the signing window")
}

/// The payment authorisation `member_pid` signs for the Wujin scheme (their union takes part),
/// on a replica in the window ([`replica_in_the_wujin_window`]).
async fn signed_authorisation(replica: &TestApp, member_pid: &str, seed: u64) -> String {
    let app = replica;
    let (status, text) = app.get("/api/v1/authorisation-texts/wj-2022", None).await;
    assert_eq!(status, 200, "{text}");
    let image = |bytes: Vec<u8>, file: &'static str, mime: &str| {
        Part::bytes(bytes)
            .file_name(file)
            .mime_str(mime)
            .expect("mime")
    };
    let form = Form::new()
        .text("scheme_code", "wj-2022")
        .text("text_version", text["version"].to_string())
        .text(
            "text_sha256",
            text["sha256"].as_str().expect("sha256").to_owned(),
        )
        .text("consent", "true")
        .text("bank_card", BANK_CARD)
        .part(
            "id_card_front",
            image(
                pictures::small_document_jpeg(seed),
                "front.jpg",
                "image/jpeg",
            ),
        )
        .part(
            "id_card_back",
            image(
                pictures::small_document_jpeg(seed + 1),
                "back.jpg",
                "image/jpeg",
            ),
        )
        .part(
            "signature",
            image(
                pictures::document_png(seed + 2),
                "signature.png",
                "image/png",
            ),
        );
    let token = app.login(member_pid).await;
    let (status, body) = app
        .post_form("/api/v1/me/authorisations", &token, form)
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("authorisation id").to_owned()
}

/// A zone's objects of the Wujin scheme (individual enrolment by bank deduction).
struct Wujin {
    /// The zone's member's payment authorisation.
    authorisation: String,
    /// A refund due to a member of the zone.
    refund: String,
}

/// Each zone's [`Wujin`] objects, and one deduction batch spanning both zones: the own union is
/// given a target for the scheme (so that it takes part), the own member and a new member of the
/// foreign union sign (the foreign zone's member, enrolled already, signs too but is not
/// deducted), December 2021's batch deducts the two, and its result, imported after the period
/// ended, makes each deduction a refund due.
async fn wujin(
    app: &TestApp,
    own: (&str, &Period),
    foreign: (&str, &Period),
) -> (Wujin, Wujin, String) {
    let association = app.login("association").await;
    let (status, body) = app
        .send_json(
            Method::PUT,
            "/api/v1/targets",
            Some(&association),
            &json!({
                "organisation_id": own.0, "year": 2022, "scheme_code": "wj-2022",
                "target_people": 10,
            }),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let clerk = app.login("union-education").await;
    let birth = chrono::NaiveDate::from_ymd_opt(1986, 4, 12).expect("date");
    let (status, newcomer) = app
        .post(
            "/api/v1/members",
            Some(&clerk),
            &json!({
                "organisation_id": foreign.0, "name": "褚志强",
                "id_number": roster::id_number("150105", birth, 321, true),
            }),
        )
        .await;
    assert_eq!(status, 201, "{newcomer}");
    let newcomer = newcomer["id"].as_str().expect("member id").to_owned();

    let replica = replica_in_the_wujin_window(app).await;
    let own_authorisation = signed_authorisation(&replica, &own.1.member_pid, 91).await;
    let foreign_authorisation = signed_authorisation(&replica, &foreign.1.member_pid, 94).await;
    signed_authorisation(&replica, &newcomer, 97).await;
    let (status, batch) = replica
        .post(
            "/api/v1/deductions",
            Some(&replica.login("association").await),
            &json!({ "scheme_code": "wj-2022", "month": "2021-12" }),
        )
        .await;
    assert_eq!(status, 201, "{batch}");
    assert_eq!(batch["item_count"], 2, "{batch}");
    let batch = batch["id"].as_str().expect("batch id").to_owned();

    // Every deduction succeeded (the bank's result file names each line by its serial).
    let (status, _, file) = app
        .download(&format!("/api/v1/deductions/{batch}/file"), &association)
        .await;
    assert_eq!(status, 200);
    let file = String::from_utf8(file).expect("UTF-8");
    let serials: Vec<&str> = file
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("合计"))
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    let mut result = String::from("流水号,结果,失败原因\n");
    for serial in &serials {
        result.push_str(&format!("{serial},成功,\n"));
    }
    result.push_str(&format!("合计,{}\n", serials.len()));
    let res = app
        .client
        .post(app.url(&format!("/api/v1/deductions/{batch}/result")))
        .bearer_auth(&association)
        .header("content-type", "text/csv")
        .body(result)
        .send()
        .await
        .expect("result upload");
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.text().await);

    let (status, refunds) = app
        .get("/api/v1/deduction-refunds?limit=100", Some(&association))
        .await;
    assert_eq!(status, 200, "{refunds}");
    let refund_of = |member: &str| {
        refunds["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|r| r["member_id"] == member)
            .and_then(|r| r["id"].as_str())
            .unwrap_or_else(|| panic!("no refund for {member}: {refunds}"))
            .to_owned()
    };
    (
        Wujin {
            authorisation: own_authorisation,
            refund: refund_of(&own.1.member_pid),
        },
        Wujin {
            authorisation: foreign_authorisation,
            refund: refund_of(&newcomer),
        },
        batch,
    )
}

/// The bureau's settlement file with no rows (what is checked is who may import it).
fn settlement_form() -> Form {
    Form::new().part(
        "file",
        Part::bytes(
            "证件号码,姓名,结算ID,入院日期,出院日期\n"
                .as_bytes()
                .to_vec(),
        )
        .file_name("settlements.csv"),
    )
}

/// An import of the bureau's settlement file (with no rows: the job is what is named).
async fn settlement_import(app: &TestApp, token: &str) -> String {
    let form = settlement_form();
    let (status, job) = app
        .post_form("/api/v1/settlement-imports", token, form)
        .await;
    assert_eq!(status, 202, "{job}");
    job["id"].as_str().expect("import id").to_owned()
}

/// The first item's id of a list the administrator sees, if any.
async fn first_of(app: &TestApp, admin: &str, path: &str, field: &str) -> Option<String> {
    let (status, page) = app.get(path, Some(admin)).await;
    assert_eq!(status, 200, "{path}: {page}");
    let items = page.get("items").cloned().unwrap_or_else(|| page.clone());
    items.as_array()?.first()?[field]
        .as_str()
        .map(str::to_owned)
}

async fn fixtures(app: &TestApp) -> Fixtures {
    let admin = app.login("admin").await;
    let own_unit = app.unit_id(&admin, OWN_UNION).await;
    let own_period = claim_flow::period(app, "union-power", "nm-inpatient-2025", 0).await;
    let foreign_unit = app.unit_id(&admin, FOREIGN_UNION).await;
    let foreign_period = foreign_period(app, &foreign_unit).await;
    let (own_wujin, foreign_wujin, deduction_batch) = wujin(
        app,
        (&own_unit, &own_period),
        (&foreign_unit, &foreign_period),
    )
    .await;
    let own = zone(app, "union-power", own_unit, own_period, 11, own_wujin).await;
    let foreign = zone(
        app,
        "union-education",
        foreign_unit,
        foreign_period,
        12,
        foreign_wujin,
    )
    .await;
    paid_claim(app, &own).await;
    let mut shared = BTreeMap::from([
        ("deduction", deduction_batch),
        ("settlement", settlement_import(app, &admin).await),
    ]);
    for (name, path, field) in [
        ("payout", "/api/v1/payout-batches", "id"),
        ("message", "/api/v1/messages", "id"),
        ("occasion", "/api/v1/sms-templates", "occasion"),
    ] {
        if let Some(id) = first_of(app, &admin, path, field).await {
            shared.insert(name, id);
        }
    }
    let (status, staff) = app.get("/api/v1/staff?limit=100", Some(&admin)).await;
    assert_eq!(status, 200, "{staff}");
    let staff = staff["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["login"] == "union-hospital")
        .expect("union-hospital")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, scheme) = app.get("/api/v1/schemes/nm-inpatient-2025", None).await;
    assert_eq!(status, 200, "{scheme}");
    Fixtures {
        own,
        foreign,
        shared,
        staff,
        scheme_definition: scheme["definition"].clone(),
    }
}

fn unknown_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A fresh photo on the zone's claim, uploaded by its member: each request that may delete one
/// gets its own.
async fn fresh_material(app: &TestApp, zone: &Zone, seed: u64) -> Named {
    // Signed in afresh: "sign out everywhere" in the matrix revokes earlier tokens.
    let token = app.login(&zone.period.member_pid).await;
    let (status, body) = claim_flow::upload(
        app,
        &token,
        &zone.draft,
        "invoice",
        pictures::small_document_jpeg(seed),
        "发票.jpg",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    Named {
        id: body["id"].as_str().expect("material id").to_owned(),
        claim: Some(zone.draft.clone()),
    }
}

impl Fixtures {
    fn zone(&self, target: Target) -> Option<&Zone> {
        match target {
            Target::Own => Some(&self.own),
            Target::Foreign => Some(&self.foreign),
            _ => None,
        }
    }

    /// What `object` names for `target`; `None`: no such variant (skipped).
    async fn name(
        &self,
        app: &TestApp,
        object: Object,
        target: Target,
        seed: u64,
    ) -> Option<Named> {
        let plain = |id: &str| {
            Some(Named {
                id: id.to_owned(),
                claim: None,
            })
        };
        if target == Target::Foreign && !object.in_subtree() {
            return None;
        }
        if target == Target::Unknown {
            return match object {
                Object::Material => Some(Named {
                    id: unknown_id(),
                    claim: Some(self.own.draft.clone()),
                }),
                Object::Scheme => plain("no-such-scheme"),
                Object::SmsTemplate => plain("no_such_occasion"),
                _ => plain(&unknown_id()),
            };
        }
        let zone = self.zone(target);
        match object {
            Object::None => None,
            Object::Claim => plain(&zone?.claim),
            Object::Draft => plain(&zone?.draft),
            Object::Material => Some(fresh_material(app, zone?, seed).await),
            Object::Member => plain(&zone?.period.member_pid),
            Object::Organisation => plain(&zone?.unit),
            Object::Membership => plain(&zone?.period.membership_pid),
            Object::Enrolment => plain(&zone?.enrolment),
            Object::ImportJob => plain(&zone?.import_job),
            Object::Staff => plain(&self.staff),
            Object::Scheme => plain("wj-2022"),
            Object::PayoutBatch => self.shared.get("payout").and_then(|id| plain(id)),
            Object::DeductionBatch => self.shared.get("deduction").and_then(|id| plain(id)),
            Object::DeductionRefund => plain(&zone?.refund),
            Object::SettlementImport => self.shared.get("settlement").and_then(|id| plain(id)),
            Object::Message => self.shared.get("message").and_then(|id| plain(id)),
            Object::Authorisation => plain(&zone?.authorisation),
            Object::SmsTemplate => self.shared.get("occasion").and_then(|id| plain(id)),
        }
    }
}

/// A request's body.
enum Payload {
    Empty,
    Json(Value),
    Multipart(Form),
    Csv(&'static str),
}

/// The minimal valid body of `op` naming `id` (the target object where the body names it).
fn payload(op: &str, f: &Fixtures, app: &TestApp, id: &str, seq: u64) -> Payload {
    let json = Payload::Json;
    match op {
        "POST /api/v1/auth/dev-login" => json(json!({ "account": "admin" })),
        "POST /api/v1/auth/wechat" => {
            json(json!({ "code": app.wechat.login_code("matrix-openid") }))
        }
        "POST /api/v1/simulations" => json(json!({
            "scheme": "nm-inpatient-2025",
            "member": f.own.period.member_json(),
            "events": [own_event()],
        })),
        "POST /api/v1/sms/receipts/{provider}/{secret}" => json(json!([])),
        "POST /api/v1/me/phone" => json(json!({ "code": app.wechat.phone_code("13904710001") })),
        "POST /api/v1/me/authorisations" => Payload::Multipart(
            Form::new()
                .text("scheme_code", "wj-2022")
                .text("text_version", "1")
                .text("text_sha256", "0".repeat(64))
                .text("consent", "true")
                .text("bank_card", BANK_CARD),
        ),
        "POST /api/v1/claims" => json(json!({
            "membership_id": id, "event": own_event(), "bank_card": BANK_CARD,
        })),
        "PATCH /api/v1/claims/{id}" => json(json!({ "version": 1, "event": own_event() })),
        "POST /api/v1/claims/{id}/submit" | "POST /api/v1/claims/{id}/withdraw" => {
            json(json!({ "version": 1 }))
        }
        "POST /api/v1/claims/{id}/approve" => json(json!({ "version": 1, "amount": "10.00" })),
        "POST /api/v1/claims/{id}/return" => json(json!({ "version": 1, "message": "请重拍发票" })),
        "POST /api/v1/claims/{id}/reject" => json(json!({
            "version": 1, "reason": "excluded_traffic_accident", "note": "矩阵测试",
        })),
        "POST /api/v1/claims/{id}/materials" => Payload::Multipart(Form::new().part(
            "file",
            Part::bytes(pictures::small_document_jpeg(1000 + seq)).file_name("发票.jpg"),
        )),
        "POST /api/v1/members" => json(json!({
            "organisation_id": id, "name": "赵六", "id_number": "11010519491231002X",
        })),
        "POST /api/v1/members/search" => json(json!({ "id_number": "11010519491231002X" })),
        "POST /api/v1/extensions" => json(json!({
            "organisation_id": id, "scheme_code": "nm-inpatient-2025",
            "new_end": "2026-03-31", "reason": "矩阵测试",
        })),
        "POST /api/v1/enrolments" => Payload::Multipart(roster_form(id, "nm-inpatient-2025", 20)),
        "POST /api/v1/enrolments/{id}/transfer" => {
            json(json!({ "reference": "202503150001234", "version": 1 }))
        }
        "POST /api/v1/enrolments/{id}/confirm" => json(json!({ "version": 2 })),
        "POST /api/v1/organisations" => json(json!({
            "parent_id": id, "kind": "unit_union", "name": format!("矩阵测试工会{seq}"),
        })),
        "PATCH /api/v1/organisations/{id}" => json(json!({ "head_count": 12 })),
        "PUT /api/v1/targets" => json(json!({
            "organisation_id": id, "year": 2025, "target_people": 100,
        })),
        "POST /api/v1/staff" => json(json!({
            "organisation_id": id, "role": "union_reviewer", "name": "矩阵",
            "login": format!("matrix-{seq}"),
        })),
        // Activating an active account: let in, changes nothing.
        "PATCH /api/v1/staff/{id}" => json(json!({ "active": true })),
        "POST /api/v1/schemes/{code}/versions" => {
            let mut definition = f.scheme_definition.clone();
            definition["code"] = json!(id);
            json(definition)
        }
        "POST /api/v1/payout-batches" => json(json!({})),
        "POST /api/v1/payout-batches/{id}/result" => Payload::Multipart(
            Form::new().part(
                "file",
                Part::bytes(
                    "流水号,户名,金额,结果,失败原因\n合计,0\n"
                        .as_bytes()
                        .to_vec(),
                )
                .file_name("result.csv"),
            ),
        ),
        "POST /api/v1/deductions" => json(json!({ "scheme_code": "wj-2022", "month": "2021-11" })),
        "POST /api/v1/deductions/{id}/result" => Payload::Csv("x\n"),
        "POST /api/v1/claims/{id}/confirm-offer" => json(json!({ "version": 1 })),
        "POST /api/v1/claims/approve-offers" => json(json!({
            "claims": [{ "id": "0193a4c2-7d1e-7c11-9a0e-3f6a1b2c4d5e", "version": 1 }],
        })),
        "POST /api/v1/enrolments/{id}/refuse" | "POST /api/v1/enrolments/{id}/withdraw" => {
            json(json!({ "version": 1, "reason": "矩阵测试" }))
        }
        "POST /api/v1/settlement-imports" => Payload::Multipart(settlement_form()),
        "POST /api/v1/deduction-windows" => json(json!({
            "scheme_code": "wj-2022", "closes": "2021-12-01", "reason": "矩阵测试",
        })),
        "POST /api/v1/authorisations/{id}/revoke" => json(json!({ "reason": "矩阵测试" })),
        "PUT /api/v1/sms-templates/{occasion}" => json(json!({
            "body_zh": "您的互助补助{amount}元已到账，请查收。", "params": ["amount"],
        })),
        _ => Payload::Empty,
    }
}

/// The query an operation needs to reach its handler.
fn query(op: &str) -> &'static str {
    match op {
        "GET /api/v1/claim-photos/{material_id}" => {
            "?variant=full&expires=4102444800&signature=bm90LW91cnM"
        }
        "POST /api/v1/claims/{id}/materials" => "?category=invoice",
        "GET /api/v1/targets/progress"
        | "GET /api/v1/targets/progress.xlsx"
        | "GET /api/v1/organisations/{id}/summary.xlsx"
        | "GET /api/v1/organisations/{id}/ledger.xlsx" => "?year=2025",
        _ => "",
    }
}

fn fill(path: &str, named: Option<&Named>) -> String {
    let id = named.map_or("", |n| n.id.as_str());
    let mut out = path
        .replace("{scheme_code}", id)
        .replace("{code}", id)
        .replace("{occasion}", id)
        .replace("{kind}", "signature")
        .replace("{provider}", "tencent")
        .replace("{secret}", "not-the-receipt-secret");
    if let Some(claim) = named.and_then(|n| n.claim.as_deref()) {
        out = out.replace("{material_id}", id).replace("{id}", claim);
    } else {
        out = out.replace("{material_id}", id).replace("{id}", id);
    }
    out
}

/// The signed-in callers' tokens (signed in again after "sign out everywhere").
async fn sign_in_all(app: &TestApp, f: &Fixtures) -> BTreeMap<Caller, String> {
    let mut tokens = BTreeMap::new();
    tokens.insert(Member, app.login(&f.own.period.member_pid).await);
    tokens.insert(UnionClerk, app.login(f.own.union_login).await);
    tokens.insert(ServicePoint, app.login("sp-xincheng").await);
    tokens.insert(AssociationReviewer, app.login("association").await);
    tokens.insert(Admin, app.login("admin").await);
    tokens
}

/// Operations of the document as `METHOD /path`.
fn operations() -> BTreeSet<String> {
    let doc = serde_json::to_value(huzhu::openapi::document()).expect("document");
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if matches!(
                method.as_str(),
                "get" | "post" | "put" | "patch" | "delete" | "head" | "options" | "trace"
            ) {
                ops.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    ops
}

#[test]
fn every_operation_of_the_document_has_a_policy_row() {
    let ops = operations();
    let rows: BTreeSet<String> = POLICY.iter().map(|(op, _, _)| (*op).to_owned()).collect();
    let missing: Vec<&String> = ops.difference(&rows).collect();
    let stale: Vec<&String> = rows.difference(&ops).collect();
    assert!(
        missing.is_empty(),
        "operations without a row in matrix::POLICY (declare who may call them): {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows of matrix::POLICY for operations the document no longer has: {stale:?}"
    );
    assert_eq!(rows.len(), POLICY.len(), "a row is declared twice");
}

/// One answer.
struct Answer {
    status: u16,
    code: Option<String>,
}

async fn send(
    app: &TestApp,
    method: &Method,
    url: &str,
    token: Option<&str>,
    payload: Payload,
) -> Answer {
    let mut req = app.client.request(method.clone(), app.url(url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req = match payload {
        Payload::Empty => req,
        Payload::Json(v) => req.json(&v),
        Payload::Multipart(form) => req.multipart(form),
        Payload::Csv(text) => req.header("content-type", "text/csv").body(text),
    };
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        code: body["error"]["code"].as_str().map(str::to_owned),
    }
}

async fn every_operation_answers_every_caller_as_the_policy_declares(app: TestApp) {
    let ops = operations();
    let rows: BTreeMap<&str, (Object, Access)> = POLICY
        .iter()
        .map(|(op, object, access)| (*op, (*object, *access)))
        .collect();
    let missing: Vec<&String> = ops
        .iter()
        .filter(|op| !rows.contains_key(op.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a policy row: {missing:?}"
    );

    let f = fixtures(&app).await;
    let mut tokens = sign_in_all(&app, &f).await;
    let mut failures = Vec::new();
    let mut requests = 0u64;
    let mut skipped = BTreeSet::new();
    for op in &ops {
        let (object, access) = rows[op.as_str()];
        let (method, path) = op.split_once(' ').expect("METHOD /path");
        let method: Method = method.parse().expect("method");
        let targets: &[Target] = if object == Object::None {
            &[Target::Nothing]
        } else {
            &[Target::Own, Target::Foreign, Target::Unknown]
        };
        for &caller in &CALLERS {
            let mut answers = BTreeMap::new();
            for &target in targets {
                requests += 1;
                let named = match target {
                    Target::Nothing => None,
                    _ => match f.name(&app, object, target, requests).await {
                        Some(named) => Some(named),
                        None => {
                            if target == Target::Own {
                                skipped.insert(format!("{op}: no own {object:?}"));
                            }
                            continue;
                        }
                    },
                };
                let url = format!("{}{}", fill(path, named.as_ref()), query(op));
                let body_id = named.as_ref().map_or("", |n| n.id.as_str());
                let answer = send(
                    &app,
                    &method,
                    &url,
                    tokens.get(&caller).map(String::as_str),
                    payload(op, &f, &app, body_id, requests),
                )
                .await;
                let want = expected(access, caller, target);
                let got = Outcome::of(answer.status);
                if answer.status >= 500 {
                    failures.push(format!(
                        "{op} as {caller:?} on {target:?}: {} {:?} (5xx)",
                        answer.status, answer.code
                    ));
                } else if got != want {
                    failures.push(format!(
                        "{op} as {caller:?} on {target:?}: {} {:?}, policy says {want:?}",
                        answer.status, answer.code
                    ));
                } else if got != Outcome::Allowed && answer.code.is_none() {
                    failures.push(format!(
                        "{op} as {caller:?} on {target:?}: {} without the error shape",
                        answer.status
                    ));
                }
                answers.insert(format!("{target:?}"), (answer.status, answer.code));
            }
            // No existence leak: what is not yours answers as what does not exist.
            if expected(access, caller, Target::Foreign) != Outcome::Allowed
                && let (Some(foreign), Some(unknown)) =
                    (answers.get("Foreign"), answers.get("Unknown"))
                && foreign != unknown
            {
                failures.push(format!(
                    "{op} as {caller:?}: a foreign object answers {foreign:?}, an unknown id {unknown:?}"
                ));
            }
        }
        if op == "POST /api/v1/me/sessions/revoke" {
            tokens = sign_in_all(&app, &f).await;
        }
    }
    eprintln!(
        "authorization matrix: {} operations, {requests} requests; checked without an own object: {skipped:?}",
        ops.len()
    );
    // Every object a subtree or the association holds has a fixture: an operation checked with
    // unknown ids only proves nothing about the objects that exist.
    assert!(
        skipped.is_empty(),
        "objects without an own fixture (add one to `fixtures`): {skipped:?}"
    );
    assert!(
        failures.is_empty(),
        "{} answers differ from matrix::POLICY:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Inside the claim window of the demo's 2025 schemes.
fn in_2025(s: &mut huzhu::settings::Settings) {
    s.clock.today = chrono::NaiveDate::from_ymd_opt(2025, 9, 15);
}

on_both_backends_with!(in_2025_claims_open, in_2025 => every_operation_answers_every_caller_as_the_policy_declares);
