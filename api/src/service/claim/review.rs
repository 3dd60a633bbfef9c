//! Review: the queues (filters, cursor pages, counts per status) and the reviewers' actions
//! return and reject, and approval at the stages before the association's.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    FromQueryResult, IdenStatic, QueryFilter, QueryResult, QuerySelect, QueryTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use entity::{claim, organisation};

use super::filing::get;
use super::store::{reload, return_record_json};
use super::transition::{self, Move, Notice, Transition};
use super::{Caller, Claim, ClaimError, ClaimStatus, ReturnRecord, ReturnRequest};
use crate::domain::Role;
use crate::engine::scheme::Material;
use crate::service::outbox::Occasion;
use crate::service::rows::has_columns;
use crate::service::scope::{Scope, Scoped};

/// Why a claim is rejected. The exclusions of the schemes each have their own code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// 工伤.
    ExcludedWorkInjury,
    /// 生育（含节育）.
    ExcludedMaternity,
    /// 职业病.
    ExcludedOccupationalDisease,
    /// 精神和行为障碍.
    ExcludedMentalDisorder,
    /// 医疗事故.
    ExcludedMedicalAccident,
    /// 交通事故.
    ExcludedTrafficAccident,
    /// 突发公共卫生事件或不可抗力.
    ExcludedPublicHealthEmergency,
    /// 打架斗殴、吸毒、自杀、酗酒、犯罪、醉驾无证驾驶等.
    ExcludedIllegalAct,
    /// 整容、美容、预防性手术.
    ExcludedCosmetic,
    /// 体检、疗养.
    ExcludedCheckup,
    /// 挂床住院.
    ExcludedBedWithoutStay,
    /// 欺诈、伪造材料.
    Fraud,
    /// 拖欠基本医疗保险费.
    UnpaidInsurance,
    /// 保障期外.
    OutsideCoverage,
    /// 参互前已患.
    PreExisting,
    /// 不在保障病种范围.
    NotCoveredDisease,
    /// 非认可医疗机构.
    UnrecognisedInstitution,
    /// 误诊.
    Misdiagnosis,
    /// 本期补助已终止（已达上限或已给付）.
    BenefitTerminated,
    /// 重复申领.
    DuplicateClaim,
    /// 逾期申领.
    LateClaim,
    /// 其他（须写明原因）.
    Other,
}

impl RejectReason {
    /// Stable name, as stored.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// The role that acts at a review stage.
pub fn role_for(stage: ClaimStatus) -> Option<Role> {
    match stage {
        ClaimStatus::UnionReview => Some(Role::UnionReviewer),
        ClaimStatus::ServicePointReview => Some(Role::ServicePointReviewer),
        ClaimStatus::Appraisal | ClaimStatus::AssociationReview => Some(Role::AssociationReviewer),
        _ => None,
    }
}

/// The stages a role reviews.
pub fn stages_of(role: Role) -> &'static [ClaimStatus] {
    match role {
        Role::UnionReviewer => &[ClaimStatus::UnionReview],
        Role::ServicePointReviewer => &[ClaimStatus::ServicePointReview],
        Role::AssociationReviewer => &[ClaimStatus::Appraisal, ClaimStatus::AssociationReview],
        Role::Member | Role::Admin => &[],
    }
}

/// Loads a claim at a review stage the caller's role acts on, at the expected version.
pub(crate) async fn reviewable<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    pid: &str,
    version: i32,
) -> Result<Claim, ClaimError> {
    let c = get(db, caller, pid).await?;
    if c.version != version {
        return Err(ClaimError::VersionConflict { current: c.version });
    }
    if !c.status.is_review() {
        return Err(ClaimError::WrongStatus { status: c.status });
    }
    if role_for(c.status) != Some(caller.role) {
        return Err(ClaimError::Forbidden(format!(
            "此申领正在 {} 阶段，不由您的角色审核 / the claim is at {}, not reviewed by your role",
            c.status.as_str(),
            c.status.as_str()
        )));
    }
    Ok(c)
}

/// The timeline steps that bar their actor from approving the claim.
/// A clerk who confirmed an offer on a member's behalf chose where its money goes: a payee
/// change like any other.
const BARRING_STEPS: [&str; 3] = ["approved", "payee_changed", "confirmed_on_behalf"];

/// Four eyes on money: whoever filed the claim, changed its payee card or approved an earlier
/// stage of it may not approve it; another reviewer of the stage must.
pub(crate) async fn check_four_eyes<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    c: &Claim,
) -> Result<(), ClaimError> {
    let why = if c.filed_by_pid == caller.pid {
        Some("您代为提交了此申领")
    } else {
        let step = entity::claim_event::Entity::find()
            .filter(entity::claim_event::Column::ClaimId.eq(c.id))
            .filter(entity::claim_event::Column::ActorPid.eq(caller.pid.as_str()))
            .filter(entity::claim_event::Column::Action.is_in(BARRING_STEPS))
            .one(db)
            .await?;
        step.map(|s| {
            if s.action == "payee_changed" || s.action == "confirmed_on_behalf" {
                "您变更过此申领的收款卡"
            } else {
                "您已审批过此申领的另一环节"
            }
        })
    };
    if why.is_some() {
        // A step taken since the claim was read (this caller's own approval, sent twice) makes
        // the request stale, not a second pair of eyes missing.
        let now = reload(db, c.id).await?;
        if now.version != c.version {
            return Err(ClaimError::VersionConflict {
                current: now.version,
            });
        }
    }
    match why {
        Some(why) => Err(ClaimError::SameReviewer(format!(
            "{why}，须由其他审核员审批 / you filed this claim, changed its payee or approved another of its stages: another reviewer must approve it"
        ))),
        None => Ok(()),
    }
}

/// Whether an active reviewer of the claim's stage other than the barred ones (whoever filed
/// it, changed its payee or approved another of its stages) covers the claim's unit.
async fn another_reviewer<C: ConnectionTrait>(db: &C, c: &Claim) -> Result<bool, ClaimError> {
    let Some(role) = role_for(c.status) else {
        return Ok(false);
    };
    let unit = entity::organisation::Entity::find_by_id(c.organisation_id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("claim {} names no unit", c.pid))?;
    // The unit and its ancestors: a reviewer's scope is the subtree of their organisation.
    let covering: Vec<i64> = unit
        .path
        .split('/')
        .filter_map(|id| id.parse().ok())
        .collect();
    let mut barred: Vec<String> = entity::claim_event::Entity::find()
        .filter(entity::claim_event::Column::ClaimId.eq(c.id))
        .filter(entity::claim_event::Column::Action.is_in(BARRING_STEPS))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|e| e.actor_pid)
        .collect();
    barred.push(c.filed_by_pid.clone());
    let other = entity::staff::Entity::find()
        .filter(entity::staff::Column::Role.eq(role.as_str()))
        .filter(entity::staff::Column::Active.eq(true))
        .filter(entity::staff::Column::OrganisationId.is_in(covering))
        .filter(entity::staff::Column::Pid.is_not_in(barred))
        .one(db)
        .await?;
    Ok(other.is_some())
}

/// Moves a claim to the next stage (any stage but the association's, whose approval judges the
/// money: see [`super::approval`]). An appraisal needs the appraisal certificate.
///
/// Four eyes: a reviewer barred from this claim ([`check_four_eyes`]) is refused while another
/// reviewer of the stage covers it; when none does (a union with one clerk who filed for the
/// member), the claim moves up to the next stage unapproved — an `escalated` step — and the
/// level above reviews it. The association's stage never moves up: it waits for a colleague.
pub async fn approve_stage(
    db: &DatabaseConnection,
    caller: &Caller,
    c: &Claim,
    note: Option<String>,
    request_id: Option<String>,
) -> Result<Claim, ClaimError> {
    let position = c.stages.iter().position(|s| *s == c.status);
    let next = position
        .and_then(|i| c.stages.get(i + 1))
        .copied()
        .ok_or_else(|| anyhow::anyhow!("claim {} has no stage after {:?}", c.pid, c.status))?;
    let escalate = match check_four_eyes(db, caller, c).await {
        Ok(()) => false,
        Err(ClaimError::SameReviewer(why))
            if role_for(next) != role_for(c.status) && !another_reviewer(db, c).await? =>
        {
            tracing::debug!(claim = %c.pid, %why, "no other reviewer at the level: moved up");
            true
        }
        Err(e) => return Err(e),
    };
    if escalate {
        let txn = crate::db::begin_write(db).await?;
        transition::apply(
            &txn,
            caller,
            Transition {
                claim: c,
                version: c.version,
                from: &[c.status],
                to: Some(Move {
                    to: next,
                    action: "escalated",
                    note: Some(
                        "本级无其他审核员可审批（经办人须回避），移交上一级审核 / no other reviewer at this level may approve it: moved up to the next level".into(),
                    ),
                }),
                set: vec![(claim::Column::Stage, Expr::value(next.as_str()))],
                notice: None,
                audit: (
                    "claim.escalate",
                    json!({ "from": c.status.as_str(), "to": next.as_str(), "reason": "four_eyes" }),
                ),
            },
            Utc::now(),
            request_id,
        )
        .await?;
        txn.commit().await?;
        return reload(db, c.id).await;
    }
    if c.status == ClaimStatus::Appraisal {
        let has_certificate = entity::claim_material::Entity::find()
            .filter(entity::claim_material::Column::ClaimId.eq(c.id))
            .filter(entity::claim_material::Column::Category.eq("appraisal_certificate"))
            .one(db)
            .await?
            .is_some();
        if !has_certificate {
            return Err(ClaimError::MaterialsMissing(vec![
                Material::AppraisalCertificate,
            ]));
        }
    }
    let txn = crate::db::begin_write(db).await?;
    transition::apply(
        &txn,
        caller,
        Transition {
            claim: c,
            version: c.version,
            from: &[c.status],
            to: Some(Move {
                to: next,
                action: "approved",
                note: None,
            }),
            set: vec![(claim::Column::Stage, Expr::value(next.as_str()))],
            notice: None,
            audit: (
                "claim.approve_stage",
                json!({ "from": c.status.as_str(), "to": next.as_str(), "note": note }),
            ),
        },
        Utc::now(),
        request_id,
    )
    .await?;
    txn.commit().await?;
    reload(db, c.id).await
}

/// Returns a claim for more material: the member is told (outbox) and resubmits into the same
/// stage's queue.
pub async fn return_claim(
    db: &DatabaseConnection,
    caller: &Caller,
    pid: &str,
    version: i32,
    message: String,
    requests: Vec<ReturnRequest>,
    request_id: Option<String>,
) -> Result<Claim, ClaimError> {
    let c = reviewable(db, caller, pid, version).await?;
    let now = Utc::now();
    let record = ReturnRecord {
        message: message.clone(),
        requests: requests.clone(),
        returned_at: now,
    };
    let set = vec![
        (claim::Column::Stage, Expr::value(c.status.as_str())),
        (
            claim::Column::ReturnRequests,
            Expr::value(return_record_json(&record)?),
        ),
    ];
    let txn = crate::db::begin_write(db).await?;
    transition::apply(
        &txn,
        caller,
        Transition {
            claim: &c,
            version,
            from: &[c.status],
            to: Some(Move {
                to: ClaimStatus::Returned,
                action: "returned",
                note: Some(message.clone()),
            }),
            set,
            // Keyed by the version the return makes: a later return is told again.
            notice: Some(Notice {
                occasion: Occasion::ClaimReturned,
                member_id: c.member_id,
                key: format!("claim_returned:{}:{}", c.pid, version + 1),
                payload: json!({ "claim": c.pid, "message": message, "materials": requests }),
            }),
            audit: (
                "claim.return",
                json!({ "stage": c.status.as_str(), "message": message, "materials": requests }),
            ),
        },
        now,
        request_id,
    )
    .await?;
    txn.commit().await?;
    reload(db, c.id).await
}

/// Rejects a claim with a reason code (and a note; required for `other`).
pub async fn reject(
    db: &DatabaseConnection,
    caller: &Caller,
    pid: &str,
    version: i32,
    reason: RejectReason,
    note: Option<String>,
    request_id: Option<String>,
) -> Result<Claim, ClaimError> {
    if reason == RejectReason::Other && note.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(ClaimError::Invalid {
            code: "note_required",
            field: "note".into(),
            message: "选择“其他”时须写明原因 / explain the reason".into(),
        });
    }
    let c = reviewable(db, caller, pid, version).await?;
    let now = Utc::now();
    let set = vec![
        (claim::Column::RejectReason, Expr::value(reason.as_str())),
        (claim::Column::RejectNote, Expr::value(note.clone())),
        (claim::Column::ClosedAt, Expr::value(now)),
    ];
    let txn = crate::db::begin_write(db).await?;
    transition::apply(
        &txn,
        caller,
        Transition {
            claim: &c,
            version,
            from: &[c.status],
            to: Some(Move {
                to: ClaimStatus::Rejected,
                action: "rejected",
                note: Some(match &note {
                    Some(n) => format!("{}: {n}", reason.as_str()),
                    None => reason.as_str(),
                }),
            }),
            set,
            notice: None,
            audit: (
                "claim.reject",
                json!({ "stage": c.status.as_str(), "reason": reason.as_str(), "note": note }),
            ),
        },
        now,
        request_id,
    )
    .await?;
    txn.commit().await?;
    reload(db, c.id).await
}

/// Filters of a claim list.
#[derive(Clone, Debug, Default)]
pub struct ClaimFilter {
    pub statuses: Vec<ClaimStatus>,
    pub scheme_code: Option<String>,
    /// Public id of a unit (or any organisation: its subtree).
    pub organisation_pid: Option<String>,
    /// First submitted on or after (Asia/Shanghai).
    pub submitted_from: Option<NaiveDate>,
    /// First submitted on or before (Asia/Shanghai).
    pub submitted_to: Option<NaiveDate>,
    /// Only claims whose payment is overdue (or only those that are not).
    pub overdue: Option<bool>,
    pub flagged: Option<bool>,
}

impl ClaimFilter {
    /// No filter at all.
    pub fn is_empty(&self) -> bool {
        // Every field named, so that a new filter cannot be forgotten here.
        let ClaimFilter {
            statuses,
            scheme_code,
            organisation_pid,
            submitted_from,
            submitted_to,
            overdue,
            flagged,
        } = self;
        statuses.is_empty()
            && scheme_code.is_none()
            && organisation_pid.is_none()
            && submitted_from.is_none()
            && submitted_to.is_none()
            && overdue.is_none()
            && flagged.is_none()
    }
}

fn shanghai_midnight(date: NaiveDate) -> chrono::DateTime<Utc> {
    Shanghai
        .from_local_datetime(&date.and_time(NaiveTime::MIN))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)))
}

/// `claim.status`, to compare with [`literal`]s.
fn status_column() -> Expr {
    Expr::col((claim::Entity, claim::Column::Status))
}

/// A status written into the statement rather than bound, as the scope and page size are (see
/// `Scope::condition_inlined`): a queue's statement then has a generic plan PostgreSQL keeps,
/// instead of being planned for every request (1–5 ms of planning for a 0.1 ms execution; with
/// `flagged` bound, the partial index of flagged claims could not be planned for at all). A
/// status is one of our own identifiers (`[a-z_]`), never the caller's text.
fn literal(status: ClaimStatus) -> Expr {
    let name = status.as_str();
    debug_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    Expr::cust(format!("'{name}'"))
}

/// The claims the caller may see, filtered. The scope is the claim's own: a member's claims
/// are found by looking the member up once (`member_id IN (SELECT id FROM member WHERE pid =
/// $1)`; a list does not join the member, [`LISTED`]), a staff scope tests the claim's unit
/// against the subtree's ids (on the joined unit the subtree's test grew a larger plan,
/// BENCHMARKS.md).
async fn filter_condition<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    filter: &ClaimFilter,
    today: NaiveDate,
) -> Result<Condition, ClaimError> {
    let mut cond = caller.scope.condition_inlined::<claim::Entity>();
    if caller.role != Role::Member {
        // Staff see drafts only when they filed them.
        cond = cond.add(
            Condition::any()
                .add(status_column().ne(literal(ClaimStatus::Draft)))
                .add(claim::Column::FiledByPid.eq(caller.pid.as_str())),
        );
    }
    if !filter.statuses.is_empty() {
        cond = cond.add(status_column().is_in(filter.statuses.iter().copied().map(literal)));
    }
    if let Some(code) = &filter.scheme_code {
        cond = cond.add(claim::Column::SchemeCode.eq(code.as_str()));
    }
    if let Some(org_pid) = &filter.organisation_pid {
        let org = organisation::Entity::find_pid_within(db, &caller.scope, org_pid)
            .await?
            .ok_or_else(|| ClaimError::Invalid {
                code: "unknown_organisation",
                field: "unit".into(),
                message: "没有这个单位 / no such organisation in your scope".into(),
            })?;
        let subtree = Query::select()
            .column(organisation::Column::Id)
            .from(organisation::Entity)
            .and_where(organisation::Column::Path.starts_with(org.path.as_str()))
            .to_owned();
        cond = cond.add(claim::Column::OrganisationId.in_subquery(subtree));
    }
    if let Some(from) = filter.submitted_from {
        cond = cond.add(claim::Column::FirstSubmittedAt.gte(shanghai_midnight(from)));
    }
    if let Some(to) = filter.submitted_to.and_then(|d| d.succ_opt()) {
        cond = cond.add(claim::Column::FirstSubmittedAt.lt(shanghai_midnight(to)));
    }
    if let Some(flagged) = filter.flagged {
        cond = cond.add(
            Expr::col((claim::Entity, claim::Column::Flagged)).eq(Expr::cust(if flagged {
                "TRUE"
            } else {
                "FALSE"
            })),
        );
    }
    if let Some(overdue) = filter.overdue {
        let late = Condition::all()
            .add(claim::Column::Status.is_in([
                ClaimStatus::Approved.as_str(),
                ClaimStatus::Paying.as_str(),
                ClaimStatus::PayoutFailed.as_str(),
            ]))
            .add(claim::Column::PayDueOn.lt(today));
        cond = cond.add(if overdue { late } else { late.not() });
    }
    Ok(cond)
}

#[derive(FromQueryResult)]
struct StatusCount {
    status: String,
    n: i64,
}

/// How many claims the caller may see are in each status (for badges), with the same filters
/// as the list (statuses aside).
pub async fn counts<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    filter: &ClaimFilter,
    today: NaiveDate,
) -> Result<BTreeMap<String, i64>, ClaimError> {
    let mut filter = filter.clone();
    filter.statuses.clear();
    let cond = filter_condition(db, caller, &filter, today).await?;
    let rows = claim::Entity::find()
        .select_only()
        .column(claim::Column::Status)
        .column_as(claim::Column::Id.count(), "n")
        .filter(cond)
        .group_by(claim::Column::Status)
        .into_model::<StatusCount>()
        .all(db)
        .await?;
    let mut out: BTreeMap<String, i64> = ClaimStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    for r in rows {
        out.insert(r.status, r.n);
    }
    Ok(out)
}

/// [`counts`] through the replica's kept answers (see [`super::tallies::kept`]): recomputed
/// after [`super::tallies::COUNTS_FRESH_FOR`], never older than a change this replica made.
pub async fn counts_kept(
    tallies: &super::tallies::Tallies,
    db: &sea_orm::DatabaseConnection,
    caller: &Caller,
    filter: &ClaimFilter,
    today: NaiveDate,
) -> Result<BTreeMap<String, i64>, ClaimError> {
    let key = format!(
        "{}|{:?}|{}|{:?}|{:?}|{today}",
        super::tallies::epoch(),
        caller.role,
        caller.pid,
        caller.scope,
        filter
    );
    let (db, caller, filter) = (db.clone(), caller.clone(), filter.clone());
    super::tallies::kept(&tallies.counts, key, move || {
        let (db, caller, filter) = (db.clone(), caller.clone(), filter.clone());
        async move { counts(&db, &caller, &filter, today).await }
    })
    .await
}

/// The claim columns a list item shows, in the order they are selected and read
/// ([`super::view::ClaimResponse`]'s list constructor): the id (for the cursor), then what the
/// answer holds, ending with the member's public id and name and the coverage period's public
/// id, which the claim keeps so that a page is not joined to `member` and `membership` (two
/// look-ups per row, half of PostgreSQL's work on a reviewer's queue: migration
/// `m20261211_100001_claim_listed_names`). Ciphers, keys, fingerprints and internal ids are
/// never read for a list.
pub(super) const LISTED: [claim::Column; 34] = {
    use claim::Column::*;
    [
        Id,
        Pid,
        Status,
        Version,
        Stage,
        Stages,
        Kind,
        SchemeCode,
        Facts,
        FiledByKind,
        BeneficiaryName,
        BeneficiaryRelationship,
        PayeeName,
        ReturnRequests,
        Flagged,
        SchemeVersion,
        Judgement,
        PayableFen,
        ApprovedFen,
        AdjustmentReason,
        RejectReason,
        RejectNote,
        CreatedAt,
        SubmittedAt,
        FirstSubmittedAt,
        ApprovedAt,
        PayDueOn,
        PayDueMaxOn,
        PaidAt,
        PayoutFailure,
        LapsesOn,
        MemberPid,
        MemberName,
        MembershipPid,
    ]
};

/// The unit's public id and name, which a list item shows, selected after [`LISTED`] from the
/// joined unit (a unit can be renamed, so its name is not kept on the claim).
const LISTED_REFS: [&str; 2] = ["listed_unit_pid", "listed_unit_name"];

/// The claims joined to their units, as [`list_select`] writes it.
fn listed() -> sea_orm::Select<claim::Entity> {
    use sea_orm::{JoinType, RelationTrait};
    let [unit_pid, unit_name] = LISTED_REFS;
    claim::Entity::find()
        .select_only()
        .columns(LISTED)
        .join(JoinType::InnerJoin, claim::Relation::Organisation.def())
        .column_as(organisation::Column::Pid, unit_pid)
        .column_as(organisation::Column::Name, unit_name)
}

/// What every claim list selects: [`LISTED`] then [`LISTED_REFS`], from the claim joined to
/// its unit. The same text for every list, so it is written once per backend (sea-query spent
/// 5 % of a list request's CPU writing its columns, issue 20).
fn list_select(backend: sea_orm::DbBackend) -> &'static str {
    use std::sync::LazyLock;
    fn written(backend: sea_orm::DbBackend) -> String {
        listed().build(backend).sql
    }
    static POSTGRES: LazyLock<String> = LazyLock::new(|| written(sea_orm::DbBackend::Postgres));
    static SQLITE: LazyLock<String> = LazyLock::new(|| written(sea_orm::DbBackend::Sqlite));
    match backend {
        sea_orm::DbBackend::Sqlite => &SQLITE,
        _ => &POSTGRES,
    }
}

/// The list's statement: [`list_select`], then `cond` (written by sea-query, with its
/// parameters), oldest first, `limit + 1` rows.
fn list_statement(backend: sea_orm::DbBackend, cond: Condition, limit: u64) -> sea_orm::Statement {
    let mut statement = where_statement(backend, cond);
    ordered_and_limited(&mut statement.sql, limit);
    statement
}

/// [`list_select`] and the `WHERE` of `cond`, with its parameters.
fn where_statement(backend: sea_orm::DbBackend, cond: Condition) -> sea_orm::Statement {
    // Only the condition is written per request: as the `WHERE` of a statement that selects
    // nothing else, whose text up to it is known.
    let mut statement = backend.build(
        Query::select()
            .expr(Expr::cust("1"))
            .from(claim::Entity)
            .cond_where(cond),
    );
    let select = list_select(backend);
    let mut text = String::with_capacity(select.len() + statement.sql.len() + 48);
    text.push_str(select);
    if let Some(at) = statement.sql.find(" WHERE ") {
        text.push_str(&statement.sql[at..]);
    }
    statement.sql = text;
    statement
}

/// Oldest first, `limit + 1` rows.
fn ordered_and_limited(sql: &mut String, limit: u64) {
    use std::fmt::Write;
    // The page size as a literal, not a parameter: with `LIMIT $n` PostgreSQL's generic plan
    // assumes a tenth of the rows are fetched, is never chosen, and the statement is planned
    // on every execution (see `Scope::condition_inlined`). `limit` is a number we bound.
    let _ = write!(sql, " ORDER BY \"claim\".\"id\" ASC LIMIT {}", limit + 1);
}

/// `cond`, and after the claim `after_id` when there is one (the page's cursor).
fn after_cursor(cond: Condition, after_id: Option<i64>) -> Condition {
    match after_id {
        Some(after) => cond.add(claim::Column::Id.gt(after)),
        None => cond,
    }
}

/// The list's statement for any caller and filter, its condition written by sea-query per
/// request.
async fn general_statement<C: ConnectionTrait>(
    db: &C,
    backend: sea_orm::DbBackend,
    caller: &Caller,
    filter: &ClaimFilter,
    today: NaiveDate,
    after_id: Option<i64>,
    limit: u64,
) -> Result<sea_orm::Statement, ClaimError> {
    let cond = filter_condition(db, caller, filter, today).await?;
    Ok(list_statement(backend, after_cursor(cond, after_id), limit))
}

/// The condition of a member's own claims, after `after_id` when there is one: what
/// [`general_statement`] makes of a member's list without filters.
fn members_own(member_pid: &str, after_id: Option<i64>) -> Condition {
    let scope = Scope::Member {
        member_pid: member_pid.to_owned(),
    };
    after_cursor(scope.condition_inlined::<claim::Entity>(), after_id)
}

/// The statement of a member's own claims without filters — the mini-program's most frequent
/// call — as [`list_statement`] writes it from [`members_own`]: the text, which depends only
/// on the backend and on whether there is a cursor, is written once by sea-query; per request
/// only the parameters and the page size are added (writing the condition was 3 % of the
/// request's CPU, issue 20).
fn members_own_statement(
    backend: sea_orm::DbBackend,
    member_pid: &str,
    after_id: Option<i64>,
    limit: u64,
) -> sea_orm::Statement {
    use std::sync::OnceLock;
    // [backend is SQLite][there is a cursor]
    static TEXTS: [[OnceLock<String>; 2]; 2] = [
        [OnceLock::new(), OnceLock::new()],
        [OnceLock::new(), OnceLock::new()],
    ];
    let text = TEXTS[usize::from(backend == sea_orm::DbBackend::Sqlite)]
        [usize::from(after_id.is_some())]
    .get_or_init(|| where_statement(backend, members_own("", after_id)).sql);
    let mut sql = String::with_capacity(text.len() + 48);
    sql.push_str(text);
    ordered_and_limited(&mut sql, limit);
    let mut values = vec![sea_orm::Value::from(member_pid)];
    if let Some(after) = after_id {
        values.push(after.into());
    }
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// The member's public id when `caller` is a member listing their own claims without
/// filters ([`members_own_statement`]).
fn members_own_unfiltered<'c>(caller: &'c Caller, filter: &ClaimFilter) -> Option<&'c str> {
    match &caller.scope {
        Scope::Member { member_pid } if caller.role == Role::Member && filter.is_empty() => {
            Some(member_pid)
        }
        _ => None,
    }
}

/// The rows of a page of the claims the caller may see, oldest first (queues are worked in
/// order), up to `limit + 1` (one more tells there is a next page): [`LISTED`], then
/// [`LISTED_REFS`], in one statement, so the parts agree without a transaction and a page
/// costs one round trip. Their column names are checked; the caller reads them in place
/// ([`crate::service::rows::Cells`]) and writes its answer before they are dropped.
pub async fn list_rows(
    db: &sea_orm::DatabaseConnection,
    caller: &Caller,
    filter: &ClaimFilter,
    today: NaiveDate,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Vec<QueryResult>, ClaimError> {
    let backend = db.get_database_backend();
    let statement = match members_own_unfiltered(caller, filter) {
        Some(member_pid) => members_own_statement(backend, member_pid, after_id, limit),
        None => general_statement(db, backend, caller, filter, today, after_id, limit).await?,
    };
    let rows = all_rows(db, statement).await?;
    let names = LISTED.iter().map(IdenStatic::as_str).chain(LISTED_REFS);
    match rows.first() {
        Some(first) if !has_columns(first, names) => Err(DbErr::Custom(
            "the claim list's columns are not the ones it asked for, in order".into(),
        )
        .into()),
        _ => Ok(rows),
    }
}

/// The rows of `statement`. On PostgreSQL they are fetched straight through sqlx's pool, with
/// sea-orm's own binder of the statement's values (`sea-query-sqlx`): sea-orm's
/// `query_all_raw` future holds the states of every backend's query and was copied whole, about
/// 15 KB twice, on every list request — 6 % of its instructions (issue 20, BENCHMARKS.md). The
/// statement, its prepared form on the connection and the rows are the same either way.
async fn all_rows(
    db: &sea_orm::DatabaseConnection,
    statement: sea_orm::Statement,
) -> Result<Vec<QueryResult>, DbErr> {
    use sea_orm::sqlx;
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return db.query_all_raw(statement).await;
    }
    let values = sea_query_sqlx::SqlxValues(
        statement
            .values
            .unwrap_or_else(|| sea_orm::sea_query::Values(Vec::new())),
    );
    sqlx::query_with(sqlx::AssertSqlSafe(statement.sql), values)
        .fetch_all(db.get_postgres_connection_pool())
        .await
        .map(|rows| rows.into_iter().map(QueryResult::from).collect())
        .map_err(|e| DbErr::Query(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(e))))
}

/// The public id and name of `claim`'s unit, which its detail shows (a list reads them joined
/// to its rows instead, [`list_rows`]; the member's and the period's are on the claim).
pub async fn unit_of<C: ConnectionTrait>(
    db: &C,
    claim: &Claim,
) -> Result<(String, String), ClaimError> {
    Ok(organisation::Entity::find_by_id(claim.organisation_id)
        .select_only()
        .column(organisation::Column::Pid)
        .column(organisation::Column::Name)
        .into_tuple::<(String, String)>()
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("claim {} has no unit", claim.id))?)
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, Condition, DbBackend, QueryFilter, QueryOrder};

    use super::*;

    /// What the list sent before its `SELECT` was written once: sea-query writing the whole
    /// statement on every request.
    fn as_sea_query_writes_it(
        backend: DbBackend,
        cond: Condition,
        limit: u64,
    ) -> sea_orm::Statement {
        let mut statement = listed()
            .filter(cond)
            .order_by_asc(claim::Column::Id)
            .build(backend);
        statement.sql.push_str(&format!(" LIMIT {}", limit + 1));
        statement
    }

    #[tokio::test]
    async fn a_members_own_list_is_the_statement_the_general_path_writes() {
        // The general path reads the database only for a unit filter; a real (empty) one.
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let member = Caller {
            pid: "01a249db-185e".into(),
            role: Role::Member,
            scope: Scope::Member {
                member_pid: "01a249db-185e".into(),
            },
        };
        let today = NaiveDate::from_ymd_opt(2025, 9, 15).unwrap();
        let unfiltered = ClaimFilter::default();
        assert_eq!(
            members_own_unfiltered(&member, &unfiltered),
            Some("01a249db-185e")
        );
        // Twice over: the second time from the kept text, with another cursor (a value
        // written into the kept text would show).
        for round in 0..2 {
            for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
                for after in [None, Some(41 + round)] {
                    for limit in [1, 20, 100] {
                        let general = general_statement(
                            &db,
                            backend,
                            &member,
                            &unfiltered,
                            today,
                            after,
                            limit,
                        )
                        .await
                        .unwrap();
                        assert_eq!(
                            members_own_statement(backend, &member.pid, after, limit),
                            general,
                            "{backend:?}, after {after:?}, limit {limit}"
                        );
                        // The member is looked up once, for the statement; no row is joined
                        // to its member or period (their public ids and name are the
                        // claim's own columns), only to its unit.
                        assert!(
                            general.sql.matches(r#""member""#).count() == 2
                                && general
                                    .sql
                                    .contains(r#"FROM "member" WHERE "member"."pid" = "#)
                                && !general.sql.contains(r#"JOIN "member""#)
                                && !general.sql.contains(r#"JOIN "membership""#)
                                && general.sql.contains(r#"JOIN "organisation""#),
                            "{}",
                            general.sql
                        );
                    }
                }
            }
        }
        // Any filter, or a caller who is not the member, takes the general path.
        let by_status = ClaimFilter {
            statuses: vec![ClaimStatus::Paid],
            ..ClaimFilter::default()
        };
        assert_eq!(members_own_unfiltered(&member, &by_status), None);
        let flagged = ClaimFilter {
            flagged: Some(false),
            ..ClaimFilter::default()
        };
        assert_eq!(members_own_unfiltered(&member, &flagged), None);
        let clerk = Caller {
            pid: "01a249db-0001".into(),
            role: Role::UnionReviewer,
            scope: Scope::Subtree { path: "/1/".into() },
        };
        assert_eq!(members_own_unfiltered(&clerk, &unfiltered), None);
    }

    #[test]
    fn the_list_statement_is_the_one_sea_query_writes_whole_on_both_backends() {
        let member_scope = || {
            Condition::all()
                .add(
                    claim::Column::MemberId.in_subquery(
                        Query::select()
                            .column(entity::member::Column::Id)
                            .from(entity::member::Entity)
                            .and_where(entity::member::Column::Pid.eq("01a249db-185e"))
                            .to_owned(),
                    ),
                )
                .add(claim::Column::Id.gt(41))
        };
        let subtree = || {
            Condition::all()
                .add(Expr::cust("\"organisation\".\"path\" LIKE '/1/%'"))
                .add(Expr::cust("\"claim\".\"status\" = 'union_review'"))
                .add(claim::Column::SchemeCode.eq("nm-inpatient-2025"))
        };
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            for (cond, limit) in [(member_scope(), 20), (subtree(), 50), (Condition::all(), 1)] {
                let ours = list_statement(backend, cond.clone(), limit);
                let whole = as_sea_query_writes_it(backend, cond, limit);
                assert_eq!(ours.sql, whole.sql, "{backend:?}");
                assert_eq!(ours.values, whole.values, "{backend:?}");
            }
        }
    }
}
