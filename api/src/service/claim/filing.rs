//! Filing a claim: the draft, its facts, submission (materials, window, stages) and withdrawal.
//! The scheme's rules for these are the engine's ([`crate::engine::claim_rules`]); every change
//! goes through [`super::transition`] in its own transaction.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use entity::{claim, member, membership};

use super::store::{
    self, Draft, SealedBeneficiary, ancestor_kinds, by_idempotency_key, canonical_json,
    material_categories, reload, to_claim,
};
use super::transition::{self, Move, Notice, PayeeChange, Transition};
use super::{Caller, Claim, ClaimError, ClaimStatus, FiledBy};
use crate::auth::crypto::{PiiKind, PiiVault};
use crate::domain::Role;
use crate::domain::{BankCardNumber, IdNumber, PersonName};
use crate::engine::bounds;
use crate::engine::claim_rules::{
    self, claimed_amount, needs_appraisal, stages_for, window_closed,
};
use crate::engine::contract::parse_event_at;
use crate::engine::scheme::{Material, SchemeDefinition};
use crate::engine::{Event, EventKind};
use crate::service::outbox::Occasion;
use crate::service::scope::Scoped;
use crate::service::{is_unique_violation, new_pid, scheme};

// The claim detail reads these rules by their old paths.

/// The beneficiary of a deceased member, filing through the unit union.
#[derive(Clone, Debug)]
pub struct NewBeneficiary {
    pub name: PersonName,
    pub id_number: IdNumber,
    /// e.g. 配偶, 子女, 父母.
    pub relationship: String,
    pub bank_card: BankCardNumber,
}

/// A beneficiary as stored: the id number sealed.
pub(crate) fn seal_beneficiary(
    pii: &PiiVault,
    b: &NewBeneficiary,
) -> Result<SealedBeneficiary, ClaimError> {
    Ok(SealedBeneficiary {
        name: b.name.as_str().to_owned(),
        id_number_cipher: pii
            .seal(PiiKind::IdNumber, b.id_number.as_str())
            .map_err(|e| anyhow::anyhow!("sealing an id number: {e}"))?
            .0,
        relationship: b.relationship.clone(),
    })
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
    /// `Idempotency-Key`: the same key from the same filer with the same request yields the
    /// same claim; with another request it is refused.
    pub idempotency_key: Option<String>,
}

impl NewClaim {
    /// The request's fingerprint, kept with its idempotency key: a keyed HMAC-SHA-256 (the
    /// lookup hasher's) of the request as canonical JSON. Keyed because the request holds a
    /// bank card and perhaps an id number, which a plain hash would let anyone guess back.
    fn fingerprint(&self, pii: &PiiVault) -> String {
        let request = json!({
            "membership_id": self.membership_pid,
            "event": self.event,
            "bank_card": self.bank_card.as_ref().map(BankCardNumber::as_str),
            "beneficiary": self.beneficiary.as_ref().map(|b| json!({
                "name": b.name.as_str(),
                "id_number": b.id_number.as_str(),
                "relationship": b.relationship,
                "bank_card": b.bank_card.as_str(),
            })),
        });
        pii.hasher
            .hash("claim.idempotency", &canonical_json(&request))
    }
}

/// What a retry under an idempotency key is answered: the first request's claim when the
/// request is the same (or was filed before fingerprints were kept), else `idempotency_key_reused`.
fn replay(existing: Claim, fingerprint: &str) -> Result<(Claim, bool), ClaimError> {
    match &existing.idempotency_fingerprint {
        Some(kept) if kept != fingerprint => Err(ClaimError::IdempotencyKeyReused),
        _ => Ok((existing, false)),
    }
}

/// Changes to a draft (or a returned claim).
#[derive(Clone, Debug, Default)]
pub struct ClaimEdit {
    pub event: Option<Value>,
    pub bank_card: Option<BankCardNumber>,
}

/// The scheme version a claim filed now is judged against (the newest published).
pub async fn current_scheme<C: ConnectionTrait>(
    db: &C,
    code: &str,
) -> Result<(i32, SchemeDefinition), ClaimError> {
    let published = scheme::latest(db, code)
        .await?
        .ok_or_else(|| anyhow::anyhow!("membership names unknown scheme {code}"))?;
    Ok((published.version, published.definition))
}

/// The scheme version that judges a claim: the one in force when it was first submitted,
/// recorded on the claim then (a draft, or a claim from before the rule, takes the newest).
/// Publishing a later version never changes it.
pub async fn claim_scheme<C: ConnectionTrait>(
    db: &C,
    code: &str,
    recorded: Option<i32>,
) -> Result<(i32, SchemeDefinition), ClaimError> {
    match recorded {
        Some(v) => {
            let published = scheme::version(db, code, v)
                .await?
                .ok_or_else(|| anyhow::anyhow!("claim names unknown scheme version {code} v{v}"))?;
            Ok((published.version, published.definition))
        }
        None => current_scheme(db, code).await,
    }
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

/// `claim_window_closed` once `today` is past the scheme's deadline for this event.
fn check_window(
    def: &SchemeDefinition,
    coverage_end: NaiveDate,
    event: &Event,
    today: NaiveDate,
) -> Result<(), ClaimError> {
    match window_closed(def, coverage_end, event, today) {
        Some(closed_on) => Err(ClaimError::WindowClosed { closed_on }),
        None => Ok(()),
    }
}

/// Dates and amounts in their sane ranges ([`bounds::check_event`]): nothing in the future,
/// something inside the period, no absurd amount — each refusal with its own code.
fn check_bounds(event: &Event, ms: &membership::Model, today: NaiveDate) -> Result<(), ClaimError> {
    bounds::check_event(event, ms.coverage_start, ms.coverage_end, today)
        .map_err(|out| ClaimError::invalid(out.code(), out.field(), out.message()))
}

/// The materials a claim needs before it can be submitted (see
/// [`claim_rules::required_materials`]; a beneficiary's claim needs death and kinship papers)
/// — or, offered from a settlement, confirmed ([`claim_rules::offer_materials`]).
pub fn required_materials(
    def: &SchemeDefinition,
    kind: EventKind,
    filed_by: FiledBy,
    appraisal: bool,
) -> Vec<Material> {
    match filed_by {
        FiledBy::InsuranceFile => claim_rules::offer_materials(def, kind, appraisal),
        _ => {
            claim_rules::required_materials(def, kind, filed_by == FiledBy::Beneficiary, appraisal)
        }
    }
}

/// The materials `c` needs ([`required_materials`]) that are not among `present`.
pub(crate) fn unmet_materials(
    def: &SchemeDefinition,
    c: &Claim,
    event: &Event,
    present: &[(Material, DateTime<Utc>)],
) -> Vec<Material> {
    required_materials(def, c.kind, c.filed_by, needs_appraisal(def, event))
        .into_iter()
        .filter(|m| !present.iter().any(|(p, _)| p == m))
        .collect()
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

/// A bank card sealed for storage.
pub(super) fn seal_card(pii: &PiiVault, card: &BankCardNumber) -> Result<String, ClaimError> {
    Ok(pii
        .seal(PiiKind::BankCard, card.as_str())
        .map_err(|e| anyhow::anyhow!("sealing a bank card: {e}"))?
        .0)
}

/// A sealed card as a person may see it (`6217***********0004`), or `无` when there is none.
fn masked_card(pii: &PiiVault, cipher: Option<&str>) -> String {
    cipher
        .and_then(|c| pii.open(PiiKind::BankCard, c).ok())
        .and_then(|plain| BankCardNumber::parse(&plain).ok())
        .map_or_else(|| "无".to_owned(), |card| card.masked())
}

/// The payee change a staff member makes when setting `new` where `old` (sealed) was, or
/// `None` when the member acts or the card stays the same. `key` tells this change apart in
/// the outbox.
pub(super) fn payee_change(
    pii: &PiiVault,
    caller: &Caller,
    member_id: i64,
    claim_pid: &str,
    old: Option<&str>,
    new: &BankCardNumber,
    key: String,
) -> Option<PayeeChange> {
    if caller.role == Role::Member {
        return None;
    }
    let before = old.and_then(|c| pii.open(PiiKind::BankCard, c).ok());
    if before.as_deref() == Some(new.as_str()) {
        return None;
    }
    Some(PayeeChange {
        note: format!("收款卡由 {} 改为 {}", masked_card(pii, old), new.masked()),
        notice: Notice {
            occasion: Occasion::PayeeChanged,
            member_id,
            key,
            payload: json!({ "claim": claim_pid, "card_last4": new.last_four() }),
        },
    })
}

/// Creates a draft. With an idempotency key, a retry returns the claim the first request made
/// (`false` in the pair: nothing new was created); the same key with another request is
/// refused (`idempotency_key_reused`).
pub async fn create(
    db: &DatabaseConnection,
    pii: &PiiVault,
    caller: &Caller,
    new: NewClaim,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<(Claim, bool), ClaimError> {
    let fingerprint = new.idempotency_key.as_ref().map(|_| new.fingerprint(pii));
    if let (Some(key), Some(fingerprint)) = (&new.idempotency_key, &fingerprint)
        && let Some(existing) = by_idempotency_key(db, &caller.pid, key).await?
    {
        return replay(existing, fingerprint);
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
    check_bounds(&event, &ms, today)?;
    check_window(&def, ms.coverage_end, &event, today)?;
    // A stay offered from the settlement file is confirmed there, never applied for again.
    if let Some(offer) = super::offer::offer_for_stay(db, ms.member_id, &event).await? {
        return Err(ClaimError::AlreadyOffered { offer });
    }
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
    let beneficiary = new
        .beneficiary
        .as_ref()
        .map(|b| seal_beneficiary(pii, b))
        .transpose()?;
    let now = Utc::now();
    let pid = new_pid();
    let facts = serde_json::to_string(&event).map_err(|e| anyhow::anyhow!(e))?;
    let txn = crate::db::begin_write(db).await?;
    // Again under the period's lock: an import may have offered the stay since the check above
    // (offers are made under the same lock).
    super::period::lock_periods(&txn, &[ms.id]).await?;
    if let Some(offer) = super::offer::offer_for_stay(&txn, ms.member_id, &event).await? {
        txn.rollback().await?;
        return Err(ClaimError::AlreadyOffered { offer });
    }
    let inserted = store::insert_draft(
        &txn,
        Draft {
            pid: &pid,
            membership: &ms,
            member: &person,
            kind: event.kind(),
            facts,
            filed_by,
            filed_by_pid: &caller.pid,
            idempotency_key: new.idempotency_key.clone(),
            idempotency_fingerprint: fingerprint.clone(),
            beneficiary,
            payee_name,
            payee_bank_card_cipher: payee_card,
            at: now,
        },
    )
    .await;
    let draft = match inserted {
        Ok(draft) => draft,
        Err(e) if is_unique_violation(&e) => {
            // A concurrent retry with the same key won the race.
            txn.rollback().await?;
            if let (Some(key), Some(fingerprint)) = (&new.idempotency_key, &fingerprint)
                && let Some(existing) = by_idempotency_key(db, &caller.pid, key).await?
            {
                return replay(existing, fingerprint);
            }
            return Err(ClaimError::Db(e));
        }
        Err(e) => return Err(ClaimError::Db(e)),
    };
    // A beneficiary's card is theirs, set with the papers of the death; the member is not told.
    let payee = match (&new.bank_card, filed_by) {
        (Some(card), FiledBy::Clerk) => payee_change(
            pii,
            caller,
            ms.member_id,
            &pid,
            person.bank_card_cipher.as_deref(),
            card,
            format!("payee_changed:{pid}:filed"),
        ),
        _ => None,
    };
    transition::filed(
        &txn,
        caller,
        &draft,
        json!({ "filed_by": filed_by.as_str(), "membership": ms.pid, "kind": event.kind().as_str() }),
        payee,
        now,
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok((draft, true))
}

const EDITABLE: &[ClaimStatus] = &[ClaimStatus::Draft, ClaimStatus::Returned];

/// Changes the facts or the bank card of a draft or returned claim (new facts within their
/// sane ranges as of `today`).
#[allow(clippy::too_many_arguments)]
pub async fn edit(
    db: &DatabaseConnection,
    pii: &PiiVault,
    caller: &Caller,
    pid: &str,
    version: i32,
    edit: ClaimEdit,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<Claim, ClaimError> {
    let c = get(db, caller, pid).await?;
    may_file(caller, &c)?;
    let mut set = Vec::new();
    let mut payee = None;
    if let Some(value) = &edit.event {
        let (_, def) = claim_scheme(db, &c.scheme_code, c.scheme_version).await?;
        let event = parse_facts(value, &def)?;
        if event.kind() != c.kind {
            return Err(ClaimError::invalid(
                "kind_changed",
                "event.kind",
                "申领类别不能修改，请另行申领 / the kind of a claim cannot change; file a new claim",
            ));
        }
        let ms = membership::Entity::find_by_id(c.membership_id)
            .one(db)
            .await?
            .ok_or(ClaimError::NotFound)?;
        check_bounds(&event, &ms, today)?;
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
        payee = payee_change(
            pii,
            caller,
            c.member_id,
            &c.pid,
            c.payee_bank_card_cipher.as_deref(),
            card,
            format!("payee_changed:{}:{}", c.pid, version + 1),
        );
    }
    let txn = crate::db::begin_write(db).await?;
    transition::apply(
        &txn,
        caller,
        Transition {
            claim: &c,
            version,
            from: EDITABLE,
            // The status stays; a staff member's card change is a step of its own.
            to: payee.as_ref().map(|p| Move {
                to: c.status,
                action: "payee_changed",
                note: Some(p.note.clone()),
            }),
            set,
            notice: payee.map(|p| p.notice),
            audit: (
                "claim.edit",
                json!({ "facts": edit.event.is_some(), "bank_card": edit.bank_card.is_some() }),
            ),
        },
        Utc::now(),
        request_id,
    )
    .await?;
    txn.commit().await?;
    reload(db, c.id).await
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
    // The submission's whole request is the claim (in the path) and the version it was read at.
    let fingerprint = key.as_ref().map(|_| {
        hex::encode(Sha256::digest(canonical_json(
            &json!({ "claim": pid, "version": version }),
        )))
    });
    if let (Some(key), Some(done)) = (&key, &c.submit_key)
        && key == done
        && !EDITABLE.contains(&c.status)
    {
        if let (Some(kept), Some(fingerprint)) = (&c.submit_fingerprint, &fingerprint)
            && kept != fingerprint
        {
            return Err(ClaimError::IdempotencyKeyReused);
        }
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
    let first = c.status == ClaimStatus::Draft;
    // The version in force at the first submission judges the claim; a resubmission keeps it.
    let (scheme_version, def) = if first {
        current_scheme(db, &c.scheme_code).await?
    } else {
        claim_scheme(db, &c.scheme_code, c.scheme_version).await?
    };
    if !def.missing_parameters().is_empty() {
        return Err(ClaimError::SchemeIncomplete {
            missing: def.missing_parameters().to_vec(),
        });
    }
    let event = parse_facts(&c.facts(), &def)?;
    let present = material_categories(db, c.id).await?;
    let mut missing = unmet_materials(&def, &c, &event, &present);
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
    let (stages, target) = if first {
        check_window(&def, ms.coverage_end, &event, today)?;
        let kinds = ancestor_kinds(db, c.organisation_id).await?;
        let stages: Vec<ClaimStatus> = stages_for(&def, &kinds, claimed_amount(&def, &event))
            .into_iter()
            .map(ClaimStatus::from)
            .collect();
        let target = stages[0];
        (stages, target)
    } else {
        let target = c.stage.unwrap_or(ClaimStatus::UnionReview);
        (c.stages.clone(), target)
    };
    let now = Utc::now();
    let stages_json = serde_json::to_string(&stages).map_err(|e| anyhow::anyhow!(e))?;
    let mut set = vec![
        (claim::Column::Stage, Expr::value(target.as_str())),
        (claim::Column::Stages, Expr::value(stages_json)),
        (claim::Column::SubmitKey, Expr::value(key.clone())),
        (claim::Column::SubmitFingerprint, Expr::value(fingerprint)),
        (claim::Column::SubmittedAt, Expr::value(now)),
        (
            claim::Column::ReturnRequests,
            Expr::value(Option::<String>::None),
        ),
    ];
    if first {
        set.push((claim::Column::FirstSubmittedAt, Expr::value(now)));
        set.push((claim::Column::SchemeVersion, Expr::value(scheme_version)));
    }
    let (action, audit) = if first {
        ("submitted", "claim.submit")
    } else {
        ("resubmitted", "claim.resubmit")
    };
    let txn = crate::db::begin_write(db).await?;
    transition::apply(
        &txn,
        caller,
        Transition {
            claim: &c,
            version,
            from: EDITABLE,
            to: Some(Move {
                to: target,
                action,
                note: None,
            }),
            set,
            notice: None,
            audit: (
                audit,
                json!({ "from": c.status.as_str(), "to": target.as_str(), "stages": stages }),
            ),
        },
        now,
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
    transition::apply(
        &txn,
        caller,
        Transition {
            claim: &c,
            version,
            from: &from,
            to: Some(Move {
                to: ClaimStatus::Withdrawn,
                action: "withdrawn",
                note: note.clone(),
            }),
            set: vec![(claim::Column::ClosedAt, Expr::value(now))],
            notice: None,
            audit: (
                "claim.withdraw",
                json!({ "from": c.status.as_str(), "note": note }),
            ),
        },
        now,
        request_id,
    )
    .await?;
    txn.commit().await?;
    reload(db, c.id).await
}
