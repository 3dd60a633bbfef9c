//! Filing a claim: the draft, its facts, submission (materials, window, stages) and withdrawal.
//!
//! Every change is one transaction whose first statement is the version-checked update of the
//! claim row: on PostgreSQL it row-locks the claim, on SQLite it takes the write lock before any
//! read (a deferred SQLite transaction that reads first cannot upgrade under concurrency).

use chrono::{DateTime, Days, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Set,
};
use serde_json::{Value, json};

use entity::{claim, claim_material, member, membership, organisation};

use super::timeline::{self, Step};
use super::{Caller, Claim, ClaimError, ClaimStatus, FiledBy, Level, ReturnRecord, to_claim};
use crate::auth::crypto::{PiiKind, PiiVault};
use crate::domain::Role;
use crate::domain::{BankCardNumber, IdNumber, PersonName};
use crate::engine::contract::parse_event_at;
use crate::engine::scheme::{Material, SchemeDefinition};
use crate::engine::{Event, EventKind};
use crate::service::audit::{self, Actor};
use crate::service::scope::Scoped;
use crate::service::{is_unique_violation, new_pid, scheme};

/// The beneficiary of a deceased member, filing through the unit union.
#[derive(Clone, Debug)]
pub struct NewBeneficiary {
    pub name: PersonName,
    pub id_number: IdNumber,
    /// e.g. 配偶, 子女, 父母.
    pub relationship: String,
    pub bank_card: BankCardNumber,
}

/// A new draft.
#[derive(Clone, Debug)]
pub struct NewClaim {
    /// The coverage period claimed against.
    pub membership_pid: String,
    /// The event, as the simulation contract's JSON (with `kind`).
    pub event: Value,
    /// Pay to this card instead of the member's card on file.
    pub bank_card: Option<BankCardNumber>,
    pub beneficiary: Option<NewBeneficiary>,
    /// `Idempotency-Key`: the same key from the same filer yields the same claim.
    pub idempotency_key: Option<String>,
}

/// Changes to a draft (or a returned claim).
#[derive(Clone, Debug, Default)]
pub struct ClaimEdit {
    pub event: Option<Value>,
    pub bank_card: Option<BankCardNumber>,
}

/// The level a caller acts at, as the member's timeline shows it.
pub fn level_of(role: Role) -> Level {
    match role {
        Role::Member => Level::Member,
        Role::UnionReviewer => Level::Union,
        Role::ServicePointReviewer => Level::ServicePoint,
        Role::AssociationReviewer | Role::Admin => Level::Association,
    }
}

/// The scheme version claims are judged against now (the newest published).
pub async fn current_scheme<C: ConnectionTrait>(
    db: &C,
    code: &str,
) -> Result<(i32, SchemeDefinition), ClaimError> {
    let published = scheme::latest(db, code)
        .await?
        .ok_or_else(|| anyhow::anyhow!("membership names unknown scheme {code}"))?;
    Ok((published.version, published.definition))
}

/// Parses a claim's facts against the scheme (field paths start with `event`).
pub fn parse_facts(value: &Value, def: &SchemeDefinition) -> Result<Event, ClaimError> {
    let event = parse_event_at(value, "event".into(), def).map_err(ClaimError::Facts)?;
    if !def.accepts(event.kind()) {
        return Err(ClaimError::invalid(
            "wrong_event_kind",
            "event.kind",
            format!(
                "该方案不受理此类申领 / scheme {} does not pay {} claims",
                def.code,
                event.kind().as_str()
            ),
        ));
    }
    Ok(event)
}

/// The last day a claim for `event` in a period ending `coverage_end` may be filed.
pub fn filing_deadline(
    def: &SchemeDefinition,
    coverage_end: NaiveDate,
    event: &Event,
) -> Option<NaiveDate> {
    let mut deadline: Option<NaiveDate> = None;
    let mut take = |d: Option<NaiveDate>| {
        if let Some(d) = d {
            deadline = Some(deadline.map_or(d, |cur| std::cmp::Ord::min(cur, d)));
        }
    };
    take(
        def.claims
            .days_after_period_end
            .and_then(|n| coverage_end.checked_add_days(Days::new(n.into()))),
    );
    if let (Some(n), Event::Inpatient(stay)) = (def.claims.days_after_discharge, event) {
        take(stay.discharged_on.checked_add_days(Days::new(n.into())));
    }
    take(def.claims.final_date);
    deadline
}

fn check_window(
    def: &SchemeDefinition,
    coverage_end: NaiveDate,
    event: &Event,
    today: NaiveDate,
) -> Result<(), ClaimError> {
    match filing_deadline(def, coverage_end, event) {
        Some(closed_on) if today > closed_on => Err(ClaimError::WindowClosed { closed_on }),
        _ => Ok(()),
    }
}

/// The materials a claim needs before it can be submitted. Conditional materials are required
/// only for a beneficiary's claim (death and kinship papers); the other cases (an emergency
/// admission…) are shown to the filer and judged by the reviewer.
pub fn required_materials(
    def: &SchemeDefinition,
    kind: EventKind,
    filed_by: FiledBy,
    appraisal: bool,
) -> Vec<Material> {
    let mut out = Vec::new();
    for m in def.materials.iter().filter(|m| m.claim_kind == kind) {
        out.extend(m.required.iter().copied());
        if filed_by == FiledBy::Beneficiary {
            for c in &m.conditional {
                if c.materials.contains(&Material::DeathCertificate)
                    || c.materials.contains(&Material::KinshipProof)
                {
                    out.extend(c.materials.iter().copied());
                }
            }
        }
    }
    // A claim that goes through the third-party appraisal needs its certificate.
    if appraisal {
        out.push(Material::AppraisalCertificate);
    }
    let mut seen = Vec::new();
    out.retain(|m| {
        let fresh = !seen.contains(m);
        seen.push(*m);
        fresh
    });
    out
}

/// The review stages of a claim of `amount` in a unit whose ancestors have `ancestor_kinds`:
/// union, then service point (when the tree has one — an office reviews in its place),
/// then the appraisal (when the scheme asks for one at this amount), then the association.
pub fn stages_for(
    def: &SchemeDefinition,
    ancestor_kinds: &[String],
    amount: Option<rust_decimal::Decimal>,
) -> Vec<ClaimStatus> {
    let mut stages = vec![ClaimStatus::UnionReview];
    if ancestor_kinds
        .iter()
        .any(|k| k == "service_point" || k == "office")
    {
        stages.push(ClaimStatus::ServicePointReview);
    }
    if let (Some(from), Some(amount)) = (def.claims.appraisal_from, amount)
        && amount >= from
    {
        stages.push(ClaimStatus::Appraisal);
    }
    stages.push(ClaimStatus::AssociationReview);
    stages
}

/// Whether the scheme sends a claim of this amount to a third-party appraisal.
pub fn needs_appraisal(def: &SchemeDefinition, event: &Event) -> bool {
    match (def.claims.appraisal_from, claimed_amount(def, event)) {
        (Some(from), Some(amount)) => amount >= from,
        _ => false,
    }
}

/// The amount a claim asks about (for the appraisal threshold): a stay's amount field.
pub fn claimed_amount(def: &SchemeDefinition, event: &Event) -> Option<rust_decimal::Decimal> {
    match event {
        Event::Inpatient(stay) => {
            let rules = def.inpatient.as_ref()?;
            [
                match rules.amount_field {
                    crate::engine::scheme::AmountField::EligibleSelfPay => stay.eligible_self_pay,
                    crate::engine::scheme::AmountField::PersonalBurden => stay.personal_burden,
                    crate::engine::scheme::AmountField::OutOfPocket => stay.out_of_pocket,
                },
                stay.unsettled_cost,
                stay.own_liability_cost,
            ]
            .into_iter()
            .flatten()
            .max()
        }
        Event::OutpatientSpecial(m) => Some(m.eligible_self_pay),
        Event::Diagnosis(_) | Event::WorkInjury(_) => None,
    }
}

async fn ancestor_kinds<C: ConnectionTrait>(
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

/// Loads a claim the caller may see.
pub async fn get<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    pid: &str,
) -> Result<Claim, ClaimError> {
    let row = claim::Entity::find_pid_within(db, &caller.scope, pid)
        .await?
        .ok_or(ClaimError::NotFound)?;
    let c = to_claim(row)?;
    // Drafts are the filer's (and the member's) until submitted.
    if c.status == ClaimStatus::Draft && caller.role != Role::Member && c.filed_by_pid != caller.pid
    {
        return Err(ClaimError::NotFound);
    }
    Ok(c)
}

/// Whether the caller may edit, submit or withdraw: the member it is for, or its filer, or a
/// clerk of the member's unit union.
fn may_file(caller: &Caller, c: &Claim) -> Result<(), ClaimError> {
    match caller.role {
        Role::Member => Ok(()),
        Role::UnionReviewer => Ok(()),
        _ if c.filed_by_pid == caller.pid => Ok(()),
        _ => Err(ClaimError::Forbidden(
            "只有参互职工本人或所在单位工会可以办理 / only the member or their unit union may do this"
                .into(),
        )),
    }
}

fn seal_card(pii: &PiiVault, card: &BankCardNumber) -> Result<String, ClaimError> {
    Ok(pii
        .seal(PiiKind::BankCard, card.as_str())
        .map_err(|e| anyhow::anyhow!("sealing a bank card: {e}"))?
        .0)
}

/// Creates a draft. With an idempotency key, a retry returns the claim the first request made
/// (`false` in the pair: nothing new was created).
pub async fn create(
    db: &DatabaseConnection,
    pii: &PiiVault,
    caller: &Caller,
    new: NewClaim,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<(Claim, bool), ClaimError> {
    if let Some(key) = &new.idempotency_key
        && let Some(existing) = by_idempotency_key(db, &caller.pid, key).await?
    {
        return Ok((existing, false));
    }
    let filed_by = match (caller.role, new.beneficiary.is_some()) {
        (Role::Member, false) => FiledBy::Member,
        (Role::Member, true) => {
            return Err(ClaimError::Forbidden(
                "受益人申领请由单位工会代办 / a beneficiary's claim is filed by the unit union"
                    .into(),
            ));
        }
        (Role::UnionReviewer, false) => FiledBy::Clerk,
        (Role::UnionReviewer, true) => FiledBy::Beneficiary,
        _ => {
            return Err(ClaimError::Forbidden(
                "申领由参互职工本人或单位工会提交 / claims are filed by the member or their unit union"
                    .into(),
            ));
        }
    };
    let ms = membership::Entity::find_pid_within(db, &caller.scope, &new.membership_pid)
        .await?
        .ok_or(ClaimError::NotFound)?;
    let (_, def) = current_scheme(db, &ms.scheme_code).await?;
    if !def.missing_parameters().is_empty() {
        return Err(ClaimError::SchemeIncomplete {
            missing: def.missing_parameters().to_vec(),
        });
    }
    let event = parse_facts(&new.event, &def)?;
    check_window(&def, ms.coverage_end, &event, today)?;
    let person = member::Entity::find_by_id(ms.member_id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("membership {} has no member", ms.id))?;

    let (payee_name, payee_card) = match &new.beneficiary {
        Some(b) => (
            b.name.as_str().to_owned(),
            Some(seal_card(pii, &b.bank_card)?),
        ),
        None => (
            person.name.clone(),
            match &new.bank_card {
                Some(card) => Some(seal_card(pii, card)?),
                None => person.bank_card_cipher.clone(),
            },
        ),
    };
    let beneficiary_id = match &new.beneficiary {
        Some(b) => Some(
            pii.seal(PiiKind::IdNumber, b.id_number.as_str())
                .map_err(|e| anyhow::anyhow!("sealing an id number: {e}"))?
                .0,
        ),
        None => None,
    };
    let now = Utc::now();
    let pid = new_pid();
    let facts = serde_json::to_string(&event).map_err(|e| anyhow::anyhow!(e))?;
    let txn = crate::db::begin_write(db).await?;
    let inserted = claim::ActiveModel {
        pid: Set(pid.clone()),
        member_id: Set(ms.member_id),
        membership_id: Set(ms.id),
        organisation_id: Set(ms.organisation_id),
        scheme_code: Set(ms.scheme_code.clone()),
        kind: Set(event.kind().as_str().to_owned()),
        facts: Set(facts),
        status: Set(ClaimStatus::Draft.as_str().to_owned()),
        version: Set(1),
        filed_by_kind: Set(filed_by.as_str().to_owned()),
        filed_by_pid: Set(caller.pid.clone()),
        idempotency_key: Set(new.idempotency_key.clone()),
        beneficiary_name: Set(new.beneficiary.as_ref().map(|b| b.name.as_str().to_owned())),
        beneficiary_id_number_cipher: Set(beneficiary_id),
        beneficiary_relationship: Set(new.beneficiary.as_ref().map(|b| b.relationship.clone())),
        payee_name: Set(Some(payee_name)),
        payee_bank_card_cipher: Set(payee_card),
        flagged: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(e) if is_unique_violation(&e) => {
            // A concurrent retry with the same key won the race.
            txn.rollback().await?;
            if let Some(key) = &new.idempotency_key
                && let Some(existing) = by_idempotency_key(db, &caller.pid, key).await?
            {
                return Ok((existing, false));
            }
            return Err(ClaimError::Db(e));
        }
        Err(e) => return Err(ClaimError::Db(e)),
    };
    timeline::record(
        &txn,
        row.id,
        Step {
            action: "filed",
            from: None,
            to: ClaimStatus::Draft,
            level: level_of(caller.role),
            note: None,
            actor_pid: Some(caller.pid.clone()),
            at: now,
        },
    )
    .await?;
    audit::record(
        &txn,
        &Actor::Account {
            pid: caller.pid.clone(),
        },
        "claim.create",
        ("claim", Some(&pid)),
        json!({ "filed_by": filed_by.as_str(), "membership": ms.pid, "kind": event.kind().as_str() }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok((to_claim(row)?, true))
}

async fn by_idempotency_key<C: ConnectionTrait>(
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

/// The version-checked update every change starts with: bumps the version when the claim is
/// still at `version` and in one of `from`. Returns false when it was not.
pub(crate) async fn bump<C: ConnectionTrait>(
    db: &C,
    claim_id: i64,
    version: i32,
    from: &[ClaimStatus],
    set: Vec<(claim::Column, sea_orm::sea_query::SimpleExpr)>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut update = claim::Entity::update_many()
        .col_expr(
            claim::Column::Version,
            Expr::col(claim::Column::Version).add(1),
        )
        .col_expr(claim::Column::UpdatedAt, Expr::value(now));
    for (col, value) in set {
        update = update.col_expr(col, value);
    }
    let result = update
        .filter(claim::Column::Id.eq(claim_id))
        .filter(claim::Column::Version.eq(version))
        .filter(claim::Column::Status.is_in(from.iter().map(|s| s.as_str())))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// [`bump`], or the reason it changed nothing (the version moved, or the status is wrong) as the
/// error; the caller's transaction is then dropped, which rolls it back.
pub(crate) async fn change<C: ConnectionTrait>(
    db: &C,
    claim_id: i64,
    version: i32,
    from: &[ClaimStatus],
    set: Vec<(claim::Column, sea_orm::sea_query::SimpleExpr)>,
    now: DateTime<Utc>,
) -> Result<(), ClaimError> {
    if bump(db, claim_id, version, from, set, now).await? {
        Ok(())
    } else {
        Err(refusal(db, claim_id, version).await)
    }
}

/// Why a version-checked update found nothing: the version moved, or the status is wrong.
pub(crate) async fn refusal<C: ConnectionTrait>(db: &C, claim_id: i64, version: i32) -> ClaimError {
    match claim::Entity::find_by_id(claim_id).one(db).await {
        Ok(Some(row)) if row.version != version => ClaimError::VersionConflict {
            current: row.version,
        },
        Ok(Some(row)) => match ClaimStatus::parse(&row.status) {
            Some(status) => ClaimError::WrongStatus { status },
            None => ClaimError::NotFound,
        },
        Ok(None) => ClaimError::NotFound,
        Err(e) => ClaimError::Db(e),
    }
}

/// Re-reads a claim after a change.
pub(crate) async fn reload<C: ConnectionTrait>(db: &C, claim_id: i64) -> Result<Claim, ClaimError> {
    let row = claim::Entity::find_by_id(claim_id)
        .one(db)
        .await?
        .ok_or(ClaimError::NotFound)?;
    Ok(to_claim(row)?)
}

const EDITABLE: &[ClaimStatus] = &[ClaimStatus::Draft, ClaimStatus::Returned];

/// Changes the facts or the bank card of a draft or returned claim.
pub async fn edit(
    db: &DatabaseConnection,
    pii: &PiiVault,
    caller: &Caller,
    pid: &str,
    version: i32,
    edit: ClaimEdit,
    request_id: Option<String>,
) -> Result<Claim, ClaimError> {
    let c = get(db, caller, pid).await?;
    may_file(caller, &c)?;
    let mut set = Vec::new();
    if let Some(value) = &edit.event {
        let (_, def) = current_scheme(db, &c.scheme_code).await?;
        let event = parse_facts(value, &def)?;
        if event.kind() != c.kind {
            return Err(ClaimError::invalid(
                "kind_changed",
                "event.kind",
                "申领类别不能修改，请另行申领 / the kind of a claim cannot change; file a new claim",
            ));
        }
        let facts = serde_json::to_string(&event).map_err(|e| anyhow::anyhow!(e))?;
        set.push((claim::Column::Facts, Expr::value(facts)));
    }
    if let Some(card) = &edit.bank_card {
        if c.filed_by == FiledBy::Beneficiary {
            return Err(ClaimError::invalid(
                "payee_fixed",
                "bank_card",
                "受益人的银行卡请由工会重新申领 / a beneficiary's card is fixed at filing",
            ));
        }
        set.push((
            claim::Column::PayeeBankCardCipher,
            Expr::value(seal_card(pii, card)?),
        ));
    }
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    change(&txn, c.id, version, EDITABLE, set, now).await?;
    audit::record(
        &txn,
        &Actor::Account {
            pid: caller.pid.clone(),
        },
        "claim.edit",
        ("claim", Some(pid)),
        json!({ "facts": edit.event.is_some(), "bank_card": edit.bank_card.is_some() }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    reload(db, c.id).await
}

async fn material_categories<C: ConnectionTrait>(
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

/// The outcome of a submission.
pub struct Submitted {
    pub claim: Claim,
    /// A retry of a submission already made with the same key: nothing changed.
    pub replayed: bool,
}

/// Submits a draft into the first review stage, or a returned claim back into the stage that
/// returned it. Refused while a required material is missing (naming each), after the
/// scheme's window (first submission only), or without a bank card to pay to.
pub async fn submit(
    db: &DatabaseConnection,
    caller: &Caller,
    pid: &str,
    version: i32,
    key: Option<String>,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<Submitted, ClaimError> {
    let c = get(db, caller, pid).await?;
    may_file(caller, &c)?;
    if let (Some(key), Some(done)) = (&key, &c.submit_key)
        && key == done
        && !EDITABLE.contains(&c.status)
    {
        return Ok(Submitted {
            claim: c,
            replayed: true,
        });
    }
    if !EDITABLE.contains(&c.status) {
        return Err(ClaimError::WrongStatus { status: c.status });
    }
    if c.version != version {
        return Err(ClaimError::VersionConflict { current: c.version });
    }
    let (_, def) = current_scheme(db, &c.scheme_code).await?;
    let event = parse_facts(&c.event, &def)?;
    let present = material_categories(db, c.id).await?;
    let appraisal = needs_appraisal(&def, &event);
    let mut missing: Vec<Material> = required_materials(&def, c.kind, c.filed_by, appraisal)
        .into_iter()
        .filter(|m| !present.iter().any(|(p, _)| p == m))
        .collect();
    if let Some(returned) = &c.returned {
        for r in &returned.requests {
            let answered = present
                .iter()
                .any(|(p, at)| *p == r.category && *at > returned.returned_at);
            if !answered && !missing.contains(&r.category) {
                missing.push(r.category);
            }
        }
    }
    if !missing.is_empty() {
        return Err(ClaimError::MaterialsMissing(missing));
    }
    if c.payee_bank_card_cipher.is_none() {
        return Err(ClaimError::invalid(
            "bank_card_missing",
            "bank_card",
            "请填写收款银行卡号 / a bank card to pay to is needed",
        ));
    }
    let ms = membership::Entity::find_by_id(c.membership_id)
        .one(db)
        .await?
        .ok_or(ClaimError::NotFound)?;
    let first = c.status == ClaimStatus::Draft;
    let (stages, target) = if first {
        check_window(&def, ms.coverage_end, &event, today)?;
        let kinds = ancestor_kinds(db, c.organisation_id).await?;
        let stages = stages_for(&def, &kinds, claimed_amount(&def, &event));
        let target = stages[0];
        (stages, target)
    } else {
        let target = c.stage.unwrap_or(ClaimStatus::UnionReview);
        (c.stages.clone(), target)
    };
    let now = Utc::now();
    let stages_json = serde_json::to_string(&stages).map_err(|e| anyhow::anyhow!(e))?;
    let mut set = vec![
        (claim::Column::Status, Expr::value(target.as_str())),
        (claim::Column::Stage, Expr::value(target.as_str())),
        (claim::Column::Stages, Expr::value(stages_json)),
        (claim::Column::SubmitKey, Expr::value(key.clone())),
        (claim::Column::SubmittedAt, Expr::value(now)),
        (
            claim::Column::ReturnRequests,
            Expr::value(Option::<String>::None),
        ),
    ];
    if first {
        set.push((claim::Column::FirstSubmittedAt, Expr::value(now)));
    }
    let txn = crate::db::begin_write(db).await?;
    change(&txn, c.id, version, EDITABLE, set, now).await?;
    timeline::record(
        &txn,
        c.id,
        Step {
            action: if first { "submitted" } else { "resubmitted" },
            from: Some(c.status),
            to: target,
            level: level_of(caller.role),
            note: None,
            actor_pid: Some(caller.pid.clone()),
            at: now,
        },
    )
    .await?;
    audit::record(
        &txn,
        &Actor::Account {
            pid: caller.pid.clone(),
        },
        if first {
            "claim.submit"
        } else {
            "claim.resubmit"
        },
        ("claim", Some(pid)),
        json!({ "from": c.status.as_str(), "to": target.as_str(), "stages": stages }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok(Submitted {
        claim: reload(db, c.id).await?,
        replayed: false,
    })
}

/// Withdraws a claim before approval (the member, or whoever filed it).
pub async fn withdraw(
    db: &DatabaseConnection,
    caller: &Caller,
    pid: &str,
    version: i32,
    note: Option<String>,
    request_id: Option<String>,
) -> Result<Claim, ClaimError> {
    let c = get(db, caller, pid).await?;
    if caller.role != Role::Member && c.filed_by_pid != caller.pid {
        return Err(ClaimError::Forbidden(
            "只有参互职工本人或代办人可以撤回 / only the member or whoever filed it may withdraw"
                .into(),
        ));
    }
    let from = [
        ClaimStatus::Draft,
        ClaimStatus::Returned,
        ClaimStatus::UnionReview,
        ClaimStatus::ServicePointReview,
        ClaimStatus::Appraisal,
        ClaimStatus::AssociationReview,
    ];
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    let set = vec![
        (
            claim::Column::Status,
            Expr::value(ClaimStatus::Withdrawn.as_str()),
        ),
        (claim::Column::ClosedAt, Expr::value(now)),
    ];
    change(&txn, c.id, version, &from, set, now).await?;
    timeline::record(
        &txn,
        c.id,
        Step {
            action: "withdrawn",
            from: Some(c.status),
            to: ClaimStatus::Withdrawn,
            level: level_of(caller.role),
            note: note.clone(),
            actor_pid: Some(caller.pid.clone()),
            at: now,
        },
    )
    .await?;
    audit::record(
        &txn,
        &Actor::Account {
            pid: caller.pid.clone(),
        },
        "claim.withdraw",
        ("claim", Some(pid)),
        json!({ "from": c.status.as_str(), "note": note }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    reload(db, c.id).await
}

/// The return currently awaiting answers, as stored.
pub fn return_record_json(record: &ReturnRecord) -> Result<String, ClaimError> {
    Ok(serde_json::to_string(record).map_err(|e| anyhow::anyhow!(e))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::seed_schemes;

    fn scheme(code: &str) -> SchemeDefinition {
        seed_schemes()
            .expect("seeds")
            .into_iter()
            .find(|d| d.code == code)
            .expect("seed scheme")
    }

    fn stay(json: serde_json::Value, def: &SchemeDefinition) -> Event {
        parse_facts(&json, def).expect("valid facts")
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn the_window_closes_90_days_after_the_period_or_60_after_discharge_or_on_the_final_date() {
        let nm = scheme("nm-inpatient-2025");
        let e = stay(
            serde_json::json!({"kind": "inpatient", "admitted_on": "2025-03-01",
                               "discharged_on": "2025-03-05", "eligible_self_pay": "1.00"}),
            &nm,
        );
        assert_eq!(
            filing_deadline(&nm, day("2025-12-31"), &e),
            Some(day("2026-03-31"))
        );
        let hy = scheme("hy-2021");
        let early = stay(
            serde_json::json!({"kind": "inpatient", "admitted_on": "2021-03-01",
                               "discharged_on": "2021-03-05", "eligible_self_pay": "1.00"}),
            &hy,
        );
        assert_eq!(
            filing_deadline(&hy, day("2021-12-31"), &early),
            Some(day("2021-05-04"))
        );
        let late = stay(
            serde_json::json!({"kind": "inpatient", "admitted_on": "2022-03-20",
                               "discharged_on": "2022-03-25", "eligible_self_pay": "1.00"}),
            &hy,
        );
        // 60 days after discharge would be 2022-05-24; nothing is accepted after 2022-04-30.
        assert_eq!(
            filing_deadline(&hy, day("2021-12-31"), &late),
            Some(day("2022-04-30"))
        );
        assert!(matches!(
            check_window(&hy, day("2021-12-31"), &late, day("2022-05-01")),
            Err(ClaimError::WindowClosed { closed_on }) if closed_on == day("2022-04-30")
        ));
        assert!(check_window(&hy, day("2021-12-31"), &late, day("2022-04-30")).is_ok());
        let wj = scheme("wj-2022");
        let any = stay(
            serde_json::json!({"kind": "inpatient", "admitted_on": "2022-03-01",
                               "discharged_on": "2022-03-05", "out_of_pocket": "1.00"}),
            &wj,
        );
        assert_eq!(filing_deadline(&wj, day("2022-12-31"), &any), None);
    }

    #[test]
    fn stages_follow_the_tree_and_the_appraisal_threshold() {
        let hy = scheme("hy-2021");
        let kinds = |k: &[&str]| k.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let at = |amount: &str| Some(amount.parse::<rust_decimal::Decimal>().expect("amount"));
        assert_eq!(
            stages_for(
                &hy,
                &kinds(&["association", "office", "service_point"]),
                at("7000")
            ),
            vec![
                ClaimStatus::UnionReview,
                ClaimStatus::ServicePointReview,
                ClaimStatus::Appraisal,
                ClaimStatus::AssociationReview
            ]
        );
        assert_eq!(
            stages_for(&hy, &kinds(&["association"]), at("6999.99")),
            vec![ClaimStatus::UnionReview, ClaimStatus::AssociationReview]
        );
        // An office reviews in place of a missing service point.
        assert_eq!(
            stages_for(
                &scheme("yc-2022"),
                &kinds(&["association", "office"]),
                at("100000")
            ),
            vec![
                ClaimStatus::UnionReview,
                ClaimStatus::ServicePointReview,
                ClaimStatus::AssociationReview
            ]
        );
    }

    #[test]
    fn a_beneficiary_needs_death_and_kinship_papers_and_an_appraisal_its_certificate() {
        let nm = scheme("nm-inpatient-2025");
        let member = required_materials(&nm, EventKind::Inpatient, FiledBy::Member, false);
        assert!(member.contains(&Material::SettlementSlip));
        assert!(!member.contains(&Material::DeathCertificate));
        assert!(
            !member.contains(&Material::EmergencyRecord),
            "judged by the reviewer"
        );
        let heir = required_materials(&nm, EventKind::Inpatient, FiledBy::Beneficiary, false);
        assert!(
            heir.contains(&Material::DeathCertificate) && heir.contains(&Material::KinshipProof)
        );
        let appraised = required_materials(
            &scheme("hy-2021"),
            EventKind::Inpatient,
            FiledBy::Member,
            true,
        );
        assert_eq!(appraised.last(), Some(&Material::AppraisalCertificate));
        let mut unique = appraised.clone();
        unique.dedup();
        assert_eq!(unique.len(), appraised.len());
    }
}
