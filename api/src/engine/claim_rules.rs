//! The scheme's rules for filing and reviewing a claim (申领): when its window closes, which
//! materials it needs, and which review stages it passes (the third-party appraisal from a
//! scheme's threshold up). Pure like the rest of the engine: the day is passed in, and the
//! organisation tree arrives as the kinds of a unit's ancestors.
//!
//! A claim offered from the bureau's settlement record (免申即享) is reviewed by exception: the
//! scheme's `offers` data says which stages it skips and which materials it still needs
//! ([`offer_stages`], [`offer_materials`]).

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;

use super::model::{Event, EventKind};
use super::scheme::{AmountField, Material, SchemeDefinition, SkippableStage};

/// The last day a claim for `event` in a period ending `coverage_end` may be filed: the
/// earliest of the scheme's limits (days after the period, days after discharge, a final
/// date); `None` when the scheme sets none.
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

/// The day the window closed, when `today` is past it (the deadline day itself still counts).
pub fn window_closed(
    def: &SchemeDefinition,
    coverage_end: NaiveDate,
    event: &Event,
    today: NaiveDate,
) -> Option<NaiveDate> {
    filing_deadline(def, coverage_end, event).filter(|closed_on| today > *closed_on)
}

/// The materials a claim needs before it can be submitted. Conditional materials are required
/// only for a beneficiary's claim (death and kinship papers); the other cases (an emergency
/// admission…) are shown to the filer and judged by the reviewer.
pub fn required_materials(
    def: &SchemeDefinition,
    kind: EventKind,
    for_beneficiary: bool,
    appraisal: bool,
) -> Vec<Material> {
    let mut out = Vec::new();
    for m in def.materials.iter().filter(|m| m.claim_kind == kind) {
        out.extend(m.required.iter().copied());
        if for_beneficiary {
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

/// A review stage a claim passes, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewStage {
    /// The unit union.
    Union,
    /// The service point, or an office in its place.
    ServicePoint,
    /// The third-party appraisal, recorded by the association.
    Appraisal,
    /// The association: the amount.
    Association,
}

/// The review stages of a claim of `amount` in a unit whose ancestors have `ancestor_kinds`:
/// union, then service point (when the tree has one — an office reviews in its place),
/// then the appraisal (when the scheme asks for one at this amount), then the association.
pub fn stages_for(
    def: &SchemeDefinition,
    ancestor_kinds: &[String],
    amount: Option<Decimal>,
) -> Vec<ReviewStage> {
    let mut stages = vec![ReviewStage::Union];
    if ancestor_kinds
        .iter()
        .any(|k| k == "service_point" || k == "office")
    {
        stages.push(ReviewStage::ServicePoint);
    }
    if let (Some(from), Some(amount)) = (def.claims.appraisal_from, amount)
        && amount >= from
    {
        stages.push(ReviewStage::Appraisal);
    }
    stages.push(ReviewStage::Association);
    stages
}

impl From<SkippableStage> for ReviewStage {
    fn from(s: SkippableStage) -> Self {
        match s {
            SkippableStage::Union => ReviewStage::Union,
            SkippableStage::ServicePoint => ReviewStage::ServicePoint,
            SkippableStage::Appraisal => ReviewStage::Appraisal,
        }
    }
}

/// Whether an offered claim of `kind` passes `stage` under the scheme's `offers` data (a kind
/// the data does not list passes every stage, as an application).
fn offer_passes(def: &SchemeDefinition, kind: EventKind, stage: ReviewStage) -> bool {
    def.offer_review(kind)
        .is_none_or(|o| !o.skip_stages.iter().any(|s| ReviewStage::from(*s) == stage))
}

/// The review stages of a claim offered from a settlement: those of an application
/// ([`stages_for`]) less the ones the scheme's `offers` data skips for its kind. The
/// association's review always remains.
pub fn offer_stages(
    def: &SchemeDefinition,
    event: &Event,
    ancestor_kinds: &[String],
) -> Vec<ReviewStage> {
    stages_for(def, ancestor_kinds, claimed_amount(def, event))
        .into_iter()
        .filter(|s| offer_passes(def, event.kind(), *s))
        .collect()
}

/// The materials an offered claim needs before the member confirms it: the scheme's `offers`
/// list for its kind, and the appraisal certificate when the claim goes through an appraisal
/// the offer does not skip. A kind the data does not list needs what an application needs.
pub fn offer_materials(def: &SchemeDefinition, kind: EventKind, appraisal: bool) -> Vec<Material> {
    let appraisal = appraisal && offer_passes(def, kind, ReviewStage::Appraisal);
    match def.offer_review(kind) {
        Some(o) => {
            let mut out = o.required.clone();
            if appraisal && !out.contains(&Material::AppraisalCertificate) {
                out.push(Material::AppraisalCertificate);
            }
            out
        }
        None => required_materials(def, kind, false, appraisal),
    }
}

/// Whether the scheme sends a claim of this amount to a third-party appraisal.
pub fn needs_appraisal(def: &SchemeDefinition, event: &Event) -> bool {
    match (def.claims.appraisal_from, claimed_amount(def, event)) {
        (Some(from), Some(amount)) => amount >= from,
        _ => false,
    }
}

/// The amount a claim asks about (for the appraisal threshold): a stay's amount field.
pub fn claimed_amount(def: &SchemeDefinition, event: &Event) -> Option<Decimal> {
    match event {
        Event::Inpatient(stay) => {
            let rules = def.inpatient.as_ref()?;
            [
                match rules.amount_field {
                    AmountField::EligibleSelfPay => stay.eligible_self_pay,
                    AmountField::PersonalBurden => stay.personal_burden,
                    AmountField::OutOfPocket => stay.out_of_pocket,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::contract::parse_event_at;
    use crate::engine::seed_schemes;

    fn scheme(code: &str) -> SchemeDefinition {
        seed_schemes()
            .expect("seeds")
            .into_iter()
            .find(|d| d.code == code)
            .expect("seed scheme")
    }

    fn stay(json: serde_json::Value, def: &SchemeDefinition) -> Event {
        parse_event_at(&json, "event".into(), def).expect("valid facts")
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
        assert_eq!(
            window_closed(&hy, day("2021-12-31"), &late, day("2022-05-01")),
            Some(day("2022-04-30"))
        );
        assert_eq!(
            window_closed(&hy, day("2021-12-31"), &late, day("2022-04-30")),
            None
        );
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
        let at = |amount: &str| Some(amount.parse::<Decimal>().expect("amount"));
        assert_eq!(
            stages_for(
                &hy,
                &kinds(&["association", "office", "service_point"]),
                at("7000")
            ),
            vec![
                ReviewStage::Union,
                ReviewStage::ServicePoint,
                ReviewStage::Appraisal,
                ReviewStage::Association
            ]
        );
        assert_eq!(
            stages_for(&hy, &kinds(&["association"]), at("6999.99")),
            vec![ReviewStage::Union, ReviewStage::Association]
        );
        // An office reviews in place of a missing service point.
        assert_eq!(
            stages_for(
                &scheme("yc-2022"),
                &kinds(&["association", "office"]),
                at("100000")
            ),
            vec![
                ReviewStage::Union,
                ReviewStage::ServicePoint,
                ReviewStage::Association
            ]
        );
    }

    #[test]
    fn an_offer_skips_the_checks_of_photographs_and_keeps_what_the_scheme_says() {
        let kinds: Vec<String> = ["association", "office", "service_point"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let stay_of = |def: &SchemeDefinition, year: i32, amount: &str| {
            stay(
                serde_json::json!({"kind": "inpatient", "admitted_on": format!("{year}-03-01"),
                                   "discharged_on": format!("{year}-03-05"), "eligible_self_pay": amount,
                                   "personal_burden": amount}),
                def,
            )
        };
        // Inner Mongolia: the settlement replaces every paper; the association alone reviews.
        let nm = scheme("nm-inpatient-2025");
        let e = stay_of(&nm, 2025, "250000.00");
        assert_eq!(
            offer_stages(&nm, &e, &kinds),
            vec![ReviewStage::Association]
        );
        assert_eq!(
            stages_for(&nm, &kinds, claimed_amount(&nm, &e)).len(),
            3,
            "an application passes every stage"
        );
        assert!(offer_materials(&nm, EventKind::Inpatient, false).is_empty());
        // Yinchuan likewise.
        let yc = scheme("yc-2022");
        assert_eq!(
            offer_stages(&yc, &stay_of(&yc, 2022, "9000.00"), &kinds),
            vec![ReviewStage::Association]
        );
        assert!(offer_materials(&yc, EventKind::Inpatient, false).is_empty());
        // Hengyang: from 7000 the third-party appraisal stays, with its certificate.
        let hy = scheme("hy-2021");
        let big = stay_of(&hy, 2021, "7000.00");
        assert_eq!(
            offer_stages(&hy, &big, &kinds),
            vec![ReviewStage::Appraisal, ReviewStage::Association]
        );
        assert_eq!(
            offer_materials(&hy, EventKind::Inpatient, needs_appraisal(&hy, &big)),
            vec![Material::AppraisalCertificate]
        );
        let small = stay_of(&hy, 2021, "6999.99");
        assert_eq!(
            offer_stages(&hy, &small, &kinds),
            vec![ReviewStage::Association]
        );
        assert!(
            offer_materials(&hy, EventKind::Inpatient, needs_appraisal(&hy, &small)).is_empty()
        );
        // Xinkang: the coded diagnosis stands for the certificate.
        let xk = scheme("nm-xinkang-2025");
        let diagnosis = stay(
            serde_json::json!({"kind": "diagnosis", "diagnosed_on": "2025-05-01", "disease": "breast_cancer"}),
            &xk,
        );
        assert_eq!(
            offer_stages(&xk, &diagnosis, &kinds),
            vec![ReviewStage::Association]
        );
        assert!(offer_materials(&xk, EventKind::Diagnosis, false).is_empty());
        // A kind the data does not list is reviewed as an application (Wujin's work injury).
        let wj = scheme("wj-2022");
        assert!(wj.offer_review(EventKind::WorkInjury).is_none());
        assert_eq!(
            offer_materials(&wj, EventKind::WorkInjury, false),
            required_materials(&wj, EventKind::WorkInjury, false, false)
        );
    }

    #[test]
    fn an_appraisal_the_offer_skips_needs_no_certificate() {
        let mut hy = scheme("hy-2021");
        hy.offers[0]
            .skip_stages
            .push(crate::engine::scheme::SkippableStage::Appraisal);
        let big = stay(
            serde_json::json!({"kind": "inpatient", "admitted_on": "2021-03-01",
                               "discharged_on": "2021-03-05", "eligible_self_pay": "9000.00"}),
            &hy,
        );
        assert_eq!(
            offer_stages(&hy, &big, &["association".to_owned()]),
            vec![ReviewStage::Association]
        );
        assert!(offer_materials(&hy, EventKind::Inpatient, true).is_empty());
    }

    #[test]
    fn a_beneficiary_needs_death_and_kinship_papers_and_an_appraisal_its_certificate() {
        let nm = scheme("nm-inpatient-2025");
        let member = required_materials(&nm, EventKind::Inpatient, false, false);
        assert!(member.contains(&Material::SettlementSlip));
        assert!(!member.contains(&Material::DeathCertificate));
        assert!(
            !member.contains(&Material::EmergencyRecord),
            "judged by the reviewer"
        );
        let heir = required_materials(&nm, EventKind::Inpatient, true, false);
        assert!(
            heir.contains(&Material::DeathCertificate) && heir.contains(&Material::KinshipProof)
        );
        let appraised = required_materials(&scheme("hy-2021"), EventKind::Inpatient, false, true);
        assert_eq!(appraised.last(), Some(&Material::AppraisalCertificate));
        let mut unique = appraised.clone();
        unique.dedup();
        assert_eq!(unique.len(), appraised.len());
    }
}
