//! 免申即享, step two: each settlement the import matched becomes an offer — a claim in status
//! `offered`, filed by `insurance_file`, its facts taken from the settlement and judged by the
//! engine as a simulation of the period would judge it — unless the member already filed a claim
//! for the stay (the settlement is then linked to it as corroboration) or the offer would pay
//! nothing (recorded with the reason, not sent).
//!
//! An offer takes its place in the period's filing order when it is made: its first submission
//! is the moment of the offer, and the offers of one import are made in the order import, then
//! settlement date, then row, a microsecond apart ([`super::offering`] makes them, a thousand
//! per transaction under the periods' lock). The amount offered is what the approval would
//! grant it now: the period's standing claims, in filing order, judged with it
//! ([`crate::engine::period`]); the approval judges it again under the period lock, as any claim.
//!
//! The member confirms where to pay ([`confirm`]) and the offer enters the first review stage
//! its scheme's `offers` data does not skip (review by exception: the settlement record
//! replaces the photographed slip), once the materials that data still asks for are uploaded.
//! A claim filed later for a stay already offered is refused with the offer's id
//! ([`offer_for_stay`]). An offer carries the day it lapses (`lapses_on`: the scheme's claim
//! deadline for the stay, as a filed claim would have it); unconfirmed by then, the scan
//! lapses it ([`super::lapse`]).
//!
//! Where the member died in hospital (the settlement's 离院方式 is 死亡, code 5) and the
//! scheme pays beneficiaries at all (not `paid_to_member_only`, as Xinkang is), the offer is
//! confirmed by the member's unit union for the beneficiary — name, ID number, relationship and
//! the beneficiary's card, recorded on the claim as for a beneficiary's application — and
//! refused `beneficiary_missing` without one. No scheme asks a beneficiary of a living member.

use chrono::{NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};

use entity::{claim, membership, settlement};

use super::filing::{
    NewBeneficiary, claim_scheme, get, parse_facts, payee_change, seal_beneficiary, seal_card,
    unmet_materials,
};
use super::store::{ancestor_kinds, material_categories, reload};
use super::transition::{self, Move, Transition};
use super::{Caller, Claim, ClaimError, ClaimStatus, FiledBy};
use crate::auth::crypto::PiiVault;
use crate::domain::{BankCardNumber, Money, Role};
use crate::engine::claim_rules::offer_stages;
use crate::engine::{Event, EventKind, SchemeDefinition};
use serde_json::json;

/// Statuses of a claim that still stands for its stay (an offer or an application).
pub(super) const STANDING: [ClaimStatus; 12] = [
    ClaimStatus::Draft,
    ClaimStatus::Offered,
    ClaimStatus::UnionReview,
    ClaimStatus::ServicePointReview,
    ClaimStatus::Appraisal,
    ClaimStatus::AssociationReview,
    ClaimStatus::Returned,
    ClaimStatus::Approved,
    ClaimStatus::Paying,
    ClaimStatus::Paid,
    ClaimStatus::PayoutFailed,
    ClaimStatus::Closed,
];

/// The stay a settlement describes, as the simulation contract's JSON: the amounts the
/// schemes read from a settlement slip (政策范围内个人自付 as nm's 自付, 起付标准 as the stay's
/// deductible, what insurance left to the member as yc's 个人负担).
fn stay_facts(s: &settlement::Model) -> serde_json::Value {
    let yuan = |fen: i64| Money::from_fen(fen).as_decimal().to_string();
    let mut facts = json!({
        "kind": "inpatient",
        "admitted_on": s.admitted_on,
        "discharged_on": s.discharged_on,
    });
    if let Some(days) = s.billed_days {
        facts["billed_days"] = json!(days);
    }
    if let Some(fen) = s.eligible_self_pay_fen {
        facts["eligible_self_pay"] = json!(yuan(fen));
    }
    if let Some(fen) = s.deductible_fen {
        facts["deductible"] = json!(yuan(fen));
    }
    let insured = s.fund_fen.unwrap_or(0) + s.critical_illness_fen.unwrap_or(0);
    facts["personal_burden"] = json!(yuan((s.total_fen - insured).max(0)));
    facts
}

/// The event a settlement is offered as, in the simulation contract's JSON: its stay, or — a
/// row matched to a women's scheme — its main diagnosis, the disease the scheme's ICD-10 list
/// gives the code (`None` when the scheme's current version does not list it), diagnosed on
/// the discharge date. A designated hospital's settlement is a recognised institution's; a
/// disease had before enrolling is a reviewer's finding, not the file's.
pub(super) fn settlement_facts(
    s: &settlement::Model,
    def: &SchemeDefinition,
) -> Option<serde_json::Value> {
    if s.event_kind != EventKind::Diagnosis.as_str() {
        return Some(stay_facts(s));
    }
    let entry = def
        .diagnosis
        .as_ref()?
        .icd10_entry(s.diagnosis_code.as_deref()?)?;
    Some(json!({
        "kind": "diagnosis",
        "diagnosed_on": s.discharged_on,
        "disease": entry.disease,
        "in_situ": entry.in_situ,
    }))
}

/// Whether a claim's event is a stay overlapping `[admitted, discharged]`.
pub(super) fn overlaps(event: &Event, admitted: NaiveDate, discharged: NaiveDate) -> bool {
    match event {
        Event::Inpatient(stay) => stay.admitted_on <= discharged && admitted <= stay.discharged_on,
        _ => false,
    }
}

/// The standing inpatient claims of a member whose stay overlaps `[admitted, discharged]`.
async fn overlapping<C: ConnectionTrait>(
    db: &C,
    member_id: i64,
    admitted: NaiveDate,
    discharged: NaiveDate,
) -> Result<Vec<claim::Model>, ClaimError> {
    Ok(claim::Entity::find()
        .filter(claim::Column::MemberId.eq(member_id))
        .filter(claim::Column::Kind.eq("inpatient"))
        .filter(claim::Column::Status.is_in(STANDING.iter().map(|s| s.as_str())))
        .all(db)
        .await?
        .into_iter()
        .filter(|c| {
            serde_json::from_str::<Event>(&c.facts)
                .is_ok_and(|e| overlaps(&e, admitted, discharged))
        })
        .collect())
}

/// The offer standing for a stay (or a diagnosis) of `member_id`, if there is one: a claim
/// filed for it would pay it twice.
pub async fn offer_for_stay<C: ConnectionTrait>(
    db: &C,
    member_id: i64,
    event: &Event,
) -> Result<Option<String>, ClaimError> {
    let stay = match event {
        Event::Inpatient(stay) => stay,
        Event::Diagnosis(diagnosis) => return diagnosis_offered(db, member_id, diagnosis).await,
        _ => return Ok(None),
    };
    Ok(
        overlapping(db, member_id, stay.admitted_on, stay.discharged_on)
            .await?
            .into_iter()
            .find(|c| c.filed_by_kind == FiledBy::InsuranceFile.as_str())
            .map(|c| c.pid),
    )
}

/// The offer standing for the same disease in the period holding `diagnosis`, if there is one.
async fn diagnosis_offered<C: ConnectionTrait>(
    db: &C,
    member_id: i64,
    diagnosis: &crate::engine::Diagnosis,
) -> Result<Option<String>, ClaimError> {
    let offers = claim::Entity::find()
        .filter(claim::Column::MemberId.eq(member_id))
        .filter(claim::Column::Kind.eq(EventKind::Diagnosis.as_str()))
        .filter(claim::Column::FiledByKind.eq(FiledBy::InsuranceFile.as_str()))
        .filter(claim::Column::Status.is_in(STANDING.iter().map(|s| s.as_str())))
        .all(db)
        .await?;
    for offer in offers {
        let same_disease = matches!(serde_json::from_str::<Event>(&offer.facts),
            Ok(Event::Diagnosis(d)) if d.disease == diagnosis.disease);
        if !same_disease {
            continue;
        }
        let period = membership::Entity::find_by_id(offer.membership_id)
            .one(db)
            .await?;
        if period.is_some_and(|p| {
            p.coverage_start <= diagnosis.diagnosed_on && diagnosis.diagnosed_on <= p.coverage_end
        }) {
            return Ok(Some(offer.pid));
        }
    }
    Ok(None)
}

/// Where an offer is to be paid, as confirmed.
#[derive(Debug, Default)]
pub struct OfferConfirmation {
    /// Pay to this card; without it, the card on file.
    pub bank_card: Option<BankCardNumber>,
    /// The beneficiary of a member who died (the union confirms; paid to their card).
    pub beneficiary: Option<NewBeneficiary>,
}

/// 离院方式 as the bureau writes it: `死亡`, or the code 5 of the settlement list (医保结算清单).
fn died_in_hospital(discharge_way: &str) -> bool {
    let way = discharge_way.trim();
    way == "5" || way.contains("死亡")
}

/// Whether the settlement offer `c` was made from says the member died in hospital.
async fn member_died<C: ConnectionTrait>(db: &C, c: &Claim) -> Result<bool, ClaimError> {
    Ok(settlement::Entity::find()
        // The member's settlements (indexed), then the one this offer came from.
        .filter(settlement::Column::MemberId.eq(c.member_id))
        .filter(settlement::Column::ClaimId.eq(c.id))
        .filter(settlement::Column::Outcome.eq("offered"))
        .one(db)
        .await?
        .and_then(|s| s.discharge_way)
        .is_some_and(|way| died_in_hospital(&way)))
}

/// The member confirms an offer: where to pay (`bank_card`, or the card on file), and the offer
/// enters its first review stage. It keeps its place in the period's filing order and the
/// scheme version it was judged under when offered. A clerk of the member's unit union may
/// confirm for a retiree without a phone: the step is recorded as on behalf
/// (`confirmed_on_behalf`), the member is told when the clerk set another card, and that clerk
/// may not approve the claim (four eyes, as for any payee change). For a member who died in
/// hospital the clerk confirms for the beneficiary (see the module doc). Past its deadline
/// (`today` after `lapses_on`) an offer is refused `offer_lapsed`, lapsed by the scan or not.
#[allow(clippy::too_many_arguments)]
pub async fn confirm(
    db: &DatabaseConnection,
    pii: &PiiVault,
    caller: &Caller,
    pid: &str,
    version: i32,
    confirmation: OfferConfirmation,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<Claim, ClaimError> {
    let on_behalf = match caller.role {
        Role::Member => false,
        Role::UnionReviewer => true,
        _ => {
            return Err(ClaimError::Forbidden(
                "补助由参互职工本人或所在单位工会代为确认 / the member (or their unit union) confirms an offer"
                    .into(),
            ));
        }
    };
    let c = get(db, caller, pid).await?;
    let lapsed_on = c.lapses_on.filter(|deadline| today > *deadline);
    match (c.status, lapsed_on) {
        (ClaimStatus::Lapsed, _) | (ClaimStatus::Offered, Some(_)) => {
            return Err(ClaimError::OfferLapsed {
                deadline: c.lapses_on.unwrap_or(today),
            });
        }
        (ClaimStatus::Offered, None) => {}
        (status, _) => return Err(ClaimError::WrongStatus { status }),
    }
    if c.version != version {
        return Err(ClaimError::VersionConflict { current: c.version });
    }
    let (_, def) = claim_scheme(db, &c.scheme_code, c.scheme_version).await?;
    let OfferConfirmation {
        bank_card,
        beneficiary,
    } = confirmation;
    match &beneficiary {
        Some(_) if def.claims.paid_to_member_only => {
            return Err(ClaimError::Invalid {
                code: "beneficiary_not_allowed",
                field: "beneficiary".into(),
                message: "本项目补助只支付给参互职工本人 / this scheme pays the member only".into(),
            });
        }
        Some(_) if !on_behalf => {
            return Err(ClaimError::Forbidden(
                "受益人领取请由单位工会代为确认 / a beneficiary's confirmation is made by the unit union"
                    .into(),
            ));
        }
        Some(_) if bank_card.is_some() => {
            return Err(ClaimError::Invalid {
                code: "invalid_request",
                field: "bank_card".into(),
                message: "受益人领取时只填写受益人的银行卡 / give only the beneficiary's card"
                    .into(),
            });
        }
        None if !def.claims.paid_to_member_only && member_died(db, &c).await? => {
            return Err(ClaimError::Invalid {
                code: "beneficiary_missing",
                field: "beneficiary".into(),
                message: "结算记录显示参互职工已身故：请由单位工会代为确认并填写受益人 / the member died in hospital: the unit union confirms for the beneficiary"
                    .into(),
            });
        }
        _ => {}
    }
    let card_cipher = match (&beneficiary, &bank_card) {
        (Some(b), _) => Some(seal_card(pii, &b.bank_card)?),
        (None, Some(card)) => Some(seal_card(pii, card)?),
        (None, None) => c.payee_bank_card_cipher.clone(),
    };
    if card_cipher.is_none() {
        return Err(ClaimError::Invalid {
            code: "bank_card_missing",
            field: "bank_card".into(),
            message: "请填写收款银行卡号 / a bank card to pay to is needed".into(),
        });
    }
    let event = parse_facts(&c.facts(), &def)?;
    // Review by exception: the offer's materials, not an application's (none, for most schemes).
    let present = material_categories(db, c.id).await?;
    let missing = unmet_materials(&def, &c, &event, &present);
    if !missing.is_empty() {
        return Err(ClaimError::MaterialsMissing(missing));
    }
    // The first stage the scheme's data does not skip for an offer.
    let kinds = ancestor_kinds(db, c.organisation_id).await?;
    let stages: Vec<ClaimStatus> = offer_stages(&def, &event, &kinds)
        .into_iter()
        .map(ClaimStatus::from)
        .collect();
    let target = stages[0];
    let now = Utc::now();
    let stages_json = serde_json::to_string(&stages).map_err(|e| anyhow::anyhow!(e))?;
    let mut set = vec![
        (claim::Column::Stage, Expr::value(target.as_str())),
        (claim::Column::Stages, Expr::value(stages_json)),
        (claim::Column::SubmittedAt, Expr::value(now)),
        (claim::Column::PayeeBankCardCipher, Expr::value(card_cipher)),
    ];
    if let Some(b) = &beneficiary {
        // Paid to the beneficiary, as a beneficiary's application is.
        let sealed = seal_beneficiary(pii, b)?;
        set.push((claim::Column::PayeeName, Expr::value(sealed.name.clone())));
        set.push((claim::Column::BeneficiaryName, Expr::value(sealed.name)));
        set.push((
            claim::Column::BeneficiaryIdNumberCipher,
            Expr::value(sealed.id_number_cipher),
        ));
        set.push((
            claim::Column::BeneficiaryRelationship,
            Expr::value(sealed.relationship),
        ));
    }
    // A beneficiary's card is theirs, set with the papers of the death; the member is not told.
    let payee = match (&bank_card, &beneficiary) {
        (Some(card), None) => payee_change(
            pii,
            caller,
            c.member_id,
            &c.pid,
            c.payee_bank_card_cipher.as_deref(),
            card,
            format!("payee_changed:{}:confirmed", c.pid),
        ),
        _ => None,
    };
    let (action, note) = if on_behalf {
        let mut note = "由单位工会代为确认".to_owned();
        if let Some(b) = &beneficiary {
            note.push_str(&format!("；受益人（{}）领取", b.relationship));
        }
        if let Some(p) = &payee {
            note.push('；');
            note.push_str(&p.note);
        }
        ("confirmed_on_behalf", Some(note))
    } else {
        ("confirmed", None)
    };
    let txn = crate::db::begin_write(db).await?;
    transition::apply(
        &txn,
        caller,
        Transition {
            claim: &c,
            version,
            from: &[ClaimStatus::Offered],
            to: Some(Move {
                to: target,
                action,
                note,
            }),
            set,
            notice: payee.map(|p| p.notice),
            audit: (
                "claim.confirm_offer",
                json!({ "to": target.as_str(), "stages": stages, "bank_card": bank_card.is_some(),
                        "beneficiary": beneficiary.is_some(), "on_behalf": on_behalf }),
            ),
        },
        now,
        request_id,
    )
    .await?;
    txn.commit().await?;
    reload(db, c.id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settlement_becomes_the_stay_the_simulation_reads() {
        let s = settlement::Model {
            id: 1,
            pid: "s".into(),
            organisation_id: 1,
            import_job_id: 1,
            row: 2,
            settlement_id: "JS1".into(),
            member_id: 1,
            membership_id: 1,
            hospital: None,
            admitted_on: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            discharged_on: NaiveDate::from_ymd_opt(2025, 3, 11).unwrap(),
            billed_days: Some(10),
            total_fen: 1_200_050,
            fund_fen: Some(800_000),
            critical_illness_fen: Some(50),
            deductible_fen: Some(80_000),
            eligible_self_pay_fen: Some(300_025),
            self_funded_fen: Some(20_000),
            settled_on: None,
            insurance_type: None,
            medical_category: None,
            diagnosis_code: None,
            diagnosis_name: None,
            discharge_way: None,
            event_kind: "inpatient".into(),
            claim_id: None,
            outcome: "matched".into(),
            reason: None,
            created_at: Utc::now(),
        };
        let facts = stay_facts(&s);
        assert_eq!(facts["eligible_self_pay"], "3000.25");
        assert_eq!(facts["deductible"], "800.00");
        assert_eq!(facts["personal_burden"], "4000.00");
        assert_eq!(facts["billed_days"], 10);
    }

    #[test]
    fn death_is_read_from_the_discharge_way_by_name_or_code() {
        assert!(died_in_hospital("死亡"));
        assert!(died_in_hospital(" 5 "));
        assert!(!died_in_hospital("医嘱离院"));
        assert!(!died_in_hospital("1"));
        assert!(!died_in_hospital("15"));
    }
}
