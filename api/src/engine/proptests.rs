//! Properties for each seed scheme: never negative, never above a cap, bands monotone in the
//! amount, rounding exact to the fen, the same input always the same output; and the request
//! parser never panics on any input.

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::contract::simulate;
use super::judge::round_money;
use super::judge_event;
use super::model::*;
use super::period::{grant, judge_in_filing_order};
use super::primitives::banded;
use super::scheme::SchemeDefinition;
use super::seeds::seed_schemes;
use super::tests::parse_amount;

fn seeds() -> &'static [SchemeDefinition] {
    static SEEDS: std::sync::OnceLock<Vec<SchemeDefinition>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| seed_schemes().expect("seeds load"))
}

fn scheme(code: &str) -> &'static SchemeDefinition {
    seeds()
        .iter()
        .find(|s| s.code == code)
        .expect("seed exists")
}

fn lookup(code: &str) -> Option<(&'static SchemeDefinition, i32)> {
    seeds().iter().find(|s| s.code == code).map(|s| (s, 1))
}

fn money() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (0i64..=2_000_000).prop_map(|c| Decimal::new(c, 2)),
        (0i64..=100_000_000_000).prop_map(|c| Decimal::new(c, 2)),
        Just(Decimal::ZERO),
    ]
}

fn cause() -> impl Strategy<Value = Cause> {
    prop_oneof![
        6 => Just(Cause::Illness),
        1 => Just(Cause::WorkInjury),
        1 => Just(Cause::Maternity),
        1 => Just(Cause::TrafficAccident),
        1 => Just(Cause::Fraud),
        1 => Just(Cause::MentalDisorder),
    ]
}

const START: &str = "2022-05-11";

fn start() -> NaiveDate {
    START.parse().expect("date")
}

fn day(offset: i64) -> NaiveDate {
    let s = start();
    if offset >= 0 {
        s + Days::new(offset as u64)
    } else {
        s - Days::new(offset.unsigned_abs())
    }
}

fn member() -> impl Strategy<Value = MemberPeriod> {
    (1u32..6, any::<bool>()).prop_map(|(consecutive_periods, continuous_renewal)| MemberPeriod {
        coverage_start: start(),
        coverage_end: day(364),
        consecutive_periods,
        continuous_renewal,
    })
}

fn stay() -> impl Strategy<Value = Event> {
    (
        (
            -40i64..400,
            0i64..60,
            proptest::option::of(0u32..80),
            cause(),
        ),
        (money(), money(), money(), proptest::option::of(money())),
        (any::<bool>(), money(), money()),
    )
        .prop_map(
            |((adm, len, billed, cause), (s, p, c, ded), (settled, unsettled, own))| {
                Event::Inpatient(Stay {
                    admitted_on: day(adm),
                    discharged_on: day(adm + len),
                    billed_days: billed,
                    cause,
                    eligible_self_pay: Some(s),
                    personal_burden: Some(p),
                    out_of_pocket: Some(c),
                    deductible: ded,
                    settled_by_insurance: settled,
                    unsettled_cost: Some(unsettled),
                    own_liability_cost: Some(own),
                })
            },
        )
}

fn outpatient() -> impl Strategy<Value = Event> {
    (0u32..16, money()).prop_map(|(m, s)| {
        let month = YearMonth::new(2022 + i32::from(m >= 8), (m + 4) % 12 + 1).expect("month");
        Event::OutpatientSpecial(OutpatientMonth {
            month,
            eligible_self_pay: s,
        })
    })
}

fn diagnosis() -> impl Strategy<Value = Event> {
    let diseases = prop_oneof![
        Just("breast_cancer"),
        Just("vulvar_cancer"),
        Just("invasive_mole"),
        Just("critical_illness")
    ];
    (
        -30i64..400,
        diseases,
        any::<bool>(),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.9),
    )
        .prop_map(
            |(on, disease, in_situ, pre_existing, recognised_institution)| {
                Event::Diagnosis(Diagnosis {
                    diagnosed_on: day(on),
                    disease: disease.to_owned(),
                    in_situ,
                    pre_existing,
                    recognised_institution,
                })
            },
        )
}

fn work_injury() -> impl Strategy<Value = Event> {
    (-30i64..400, 0u8..=10).prop_map(|(on, g)| {
        Event::WorkInjury(WorkInjury {
            appraised_on: day(on),
            grade: if g == 0 {
                InjuryGrade::Death
            } else {
                InjuryGrade::Grade(g)
            },
        })
    })
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(
        prop_oneof![4 => stay(), 2 => outpatient(), 2 => diagnosis(), 1 => work_injury()],
        1..8,
    )
}

fn judge_all(s: &SchemeDefinition, m: &MemberPeriod, events: &[Event]) -> Vec<Judgement> {
    judge_in_filing_order(s, m, events)
}

fn total(js: &[Judgement], code: ItemCode) -> Decimal {
    js.iter().map(|j| j.item(code)).sum()
}

/// The properties every scheme must hold for any period.
fn check_common(js: &[Judgement]) -> Result<(), TestCaseError> {
    for j in js {
        prop_assert!(j.payable() >= Decimal::ZERO);
        for item in &j.items {
            prop_assert!(item.amount > Decimal::ZERO, "items of 0 are left out");
            prop_assert_eq!(round_money(item.amount), item.amount, "rounded to the fen");
            prop_assert!(item.amount.scale() <= 2);
        }
        if j.refused.is_some() {
            prop_assert!(j.items.is_empty());
        }
    }
    Ok(())
}

fn check_scheme(
    code: &str,
    m: &MemberPeriod,
    events: &[Event],
) -> Result<Vec<Judgement>, TestCaseError> {
    let s = scheme(code);
    let js = judge_all(s, m, events);
    check_common(&js)?;
    prop_assert_eq!(
        &js,
        &judge_all(s, m, events),
        "the same input always gives the same output"
    );
    Ok(js)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn nm_inpatient_2022_never_negative_never_above_its_caps(m in member(), events in events()) {
        let js = check_scheme("nm-inpatient-2022", &m, &events)?;
        prop_assert!(total(&js, ItemCode::Banded) <= Decimal::from(500_000));
        prop_assert!(js.iter().filter(|j| j.item(ItemCode::DailyAllowance) > Decimal::ZERO).count() <= 1);
        prop_assert!(total(&js, ItemCode::DailyAllowance) <= Decimal::from(900));
        for (j, e) in js.iter().zip(&events) {
            if matches!(e, Event::Inpatient(_)) && j.refused.is_none() && j.payable() > Decimal::ZERO {
                prop_assert!(j.payable() >= Decimal::from(200), "a paid stay gets at least 200");
            }
        }
    }

    #[test]
    fn nm_inpatient_2025_never_negative_never_above_its_caps(m in member(), events in events()) {
        let m = MemberPeriod { coverage_start: "2025-01-01".parse().expect("d"), coverage_end: "2025-12-31".parse().expect("d"), ..m };
        let js = check_scheme("nm-inpatient-2025", &m, &events)?;
        prop_assert!(total(&js, ItemCode::Banded) <= Decimal::from(500_000));
    }

    #[test]
    fn nm_xinkang_2022_never_negative_and_at_most_one_payout(m in member(), events in events()) {
        let js = check_scheme("nm-xinkang-2022", &m, &events)?;
        prop_assert!(js.iter().filter(|j| j.payable() > Decimal::ZERO).count() <= 1);
        prop_assert!(js.iter().map(Judgement::payable).sum::<Decimal>() <= Decimal::from(32_000));
    }

    #[test]
    fn nm_xinkang_2025_never_negative_and_at_most_one_payout(m in member(), events in events()) {
        let js = check_scheme("nm-xinkang-2025", &m, &events)?;
        prop_assert!(js.iter().map(Judgement::payable).sum::<Decimal>() <= Decimal::from(32_000));
    }

    #[test]
    fn yc_2022_never_negative_never_above_its_caps(m in member(), events in events()) {
        let js = check_scheme("yc-2022", &m, &events)?;
        prop_assert!(total(&js, ItemCode::Banded) <= Decimal::from(50_000));
        prop_assert!(total(&js, ItemCode::AnxinAllowance) <= Decimal::from(200));
        prop_assert!(js.iter().filter(|j| j.item(ItemCode::ExtraGrant) > Decimal::ZERO).count() <= 1);
    }

    #[test]
    fn wj_2022_never_negative_never_above_its_caps(m in member(), events in events()) {
        let js = check_scheme("wj-2022", &m, &events)?;
        prop_assert!(total(&js, ItemCode::Bracket) <= Decimal::from(20_000));
        prop_assert!(total(&js, ItemCode::FixedBenefit) <= Decimal::from(5_000));
        for j in &js {
            prop_assert!(j.item(ItemCode::WorkInjury) <= Decimal::from(5_000));
        }
    }

    #[test]
    fn bands_are_monotone_in_the_amount(a in money(), b in money()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        for s in seeds() {
            if let Some(bands) = s.inpatient.as_ref().and_then(|r| r.bands.as_ref()) {
                prop_assert!(banded(bands, lo) <= banded(bands, hi), "{}", s.code);
                prop_assert!(banded(bands, hi) <= hi);
            }
        }
    }

    #[test]
    fn a_single_stays_payout_is_monotone_in_its_amount(a in money(), b in money(), days in 0i64..40) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let m = MemberPeriod { coverage_start: start(), coverage_end: day(364), consecutive_periods: 1, continuous_renewal: false };
        for code in ["nm-inpatient-2022", "nm-inpatient-2025", "yc-2022", "wj-2022"] {
            let s = scheme(code);
            let mk = |x: Decimal| Event::Inpatient(Stay {
                admitted_on: day(10), discharged_on: day(10 + days), billed_days: None, cause: Cause::Illness,
                eligible_self_pay: Some(x), personal_burden: Some(x), out_of_pocket: Some(x), deductible: None,
                settled_by_insurance: true, unsettled_cost: None, own_liability_cost: None,
            });
            let pay = |x| judge_event(s, &m, &[], &mk(x)).item(ItemCode::Banded) + judge_event(s, &m, &[], &mk(x)).item(ItemCode::Bracket);
            prop_assert!(pay(lo) <= pay(hi), "{}", code);
        }
    }

    #[test]
    fn money_strings_parse_without_panicking(text in "\\PC{0,24}") {
        let _ = parse_amount(&text);
    }

    #[test]
    fn valid_money_strings_parse_exactly(cents in 0i64..=100_000_000_000_000) {
        let d = Decimal::new(cents, 2);
        prop_assert_eq!(parse_amount(&d.to_string()), Ok(d));
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z_0-9.\\-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("2022-06-01"),
            Just("2022-13-40"),
            Just("12000.00"),
            Just("-1"),
            Just("1.005"),
            Just("inpatient"),
            Just("diagnosis"),
            Just("work_injury"),
            Just("outpatient_special"),
            Just("breast_cancer"),
            Just("death"),
            Just("2022-07")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("kind"),
                    Just("admitted_on"),
                    Just("discharged_on"),
                    Just("billed_days"),
                    Just("eligible_self_pay"),
                    Just("personal_burden"),
                    Just("out_of_pocket"),
                    Just("deductible"),
                    Just("month"),
                    Just("disease"),
                    Just("diagnosed_on"),
                    Just("grade"),
                    Just("appraised_on"),
                    Just("cause"),
                    Just("settled_by_insurance"),
                    Just("unsettled_cost"),
                    Just("own_liability_cost"),
                    Just("x"),
                ]
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn scheme_code() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("nm-inpatient-2022"),
        Just("nm-inpatient-2025"),
        Just("nm-xinkang-2022"),
        Just("nm-xinkang-2025"),
        Just("yc-2022"),
        Just("wj-2022"),
        Just("hy-2021"),
        Just("zz"),
    ]
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

    #[test]
    fn the_request_parser_never_panics_on_arbitrary_json(body in arbitrary_json()) {
        let _ = simulate(&body, lookup);
    }

    #[test]
    fn the_request_parser_never_panics_on_arbitrary_events(code in scheme_code(), events in proptest::collection::vec(arbitrary_json(), 0..5), cp in any::<i64>()) {
        let body = json!({"scheme": code, "member": {"coverage_start": "2022-01-01", "coverage_end": "2025-12-31", "consecutive_periods": cp}, "events": events});
        if let Ok(response) = simulate(&body, lookup) {
            let total: Decimal = response.results.iter().map(|r| r.payable).sum();
            prop_assert_eq!(total, response.period_total);
            prop_assert!(serde_json::to_string(&response).is_ok());
        }
    }

    #[test]
    fn simulation_of_a_valid_request_is_deterministic(m in member(), events in events(), code in scheme_code()) {
        let body = json!({"scheme": code, "member": m, "events": events});
        let a = simulate(&body, lookup).map(|r| serde_json::to_string(&r).ok());
        let b = simulate(&body, lookup).map(|r| serde_json::to_string(&r).ok());
        prop_assert_eq!(a, b);
    }
}

/// Events (in filing order) and an order in which reviewers approve them.
fn events_and_approval_order() -> impl Strategy<Value = (Vec<Event>, Vec<usize>)> {
    events().prop_flat_map(|events| {
        let order: Vec<usize> = (0..events.len()).collect();
        (Just(events), Just(order).prop_shuffle())
    })
}

/// Approves `events` in `order` as the association does: each approval judges the approved
/// claims with this one in filing order and grants the difference. Checks after every step that
/// Σ granted − open offset is the period's total, that no grant is negative, and at the end that
/// the period's total is the judgement of the approved claims in filing order.
fn check_period_rule(
    code: &str,
    m: &MemberPeriod,
    events: &[Event],
    order: &[usize],
) -> Result<(), TestCaseError> {
    let s = scheme(code);
    let mut approved: Vec<usize> = Vec::new();
    let mut granted = vec![Decimal::ZERO; events.len()];
    let mut last_total = Decimal::ZERO;
    for &i in order {
        let mut with: Vec<usize> = approved.clone();
        with.push(i);
        with.sort_unstable();
        let evs: Vec<Event> = with.iter().map(|&k| events[k].clone()).collect();
        let js = judge_in_filing_order(s, m, &evs);
        let at = with.iter().position(|&k| k == i).expect("in the set");
        if js[at].refused.is_some() {
            continue; // not approved: the reviewer rejects it
        }
        let total: Decimal = js.iter().map(Judgement::payable).sum();
        let before: Decimal = approved.iter().map(|&k| granted[k]).sum();
        let g = grant(total, before);
        prop_assert!(g.granted >= Decimal::ZERO);
        prop_assert!(g.open_offset >= Decimal::ZERO);
        granted[i] = g.granted;
        approved = with;
        let sum: Decimal = approved.iter().map(|&k| granted[k]).sum();
        prop_assert_eq!(
            sum - g.open_offset,
            total,
            "Σ granted − offset = the period's total"
        );
        // Never more than the period owes: what is paid in all is the larger of what was paid
        // before and the period's total now (so the offset is exactly the overpayment).
        prop_assert_eq!(sum, before.max(total), "paid only what the period owes");
        last_total = total;
    }
    let evs: Vec<Event> = approved.iter().map(|&k| events[k].clone()).collect();
    let in_filing_order: Decimal = judge_all(s, m, &evs).iter().map(Judgement::payable).sum();
    prop_assert_eq!(last_total, in_filing_order);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn any_approval_order_pays_the_filing_order_total_nm_inpatient_2025((events, order) in events_and_approval_order(), m in member()) {
        check_period_rule("nm-inpatient-2025", &m, &events, &order)?;
    }

    #[test]
    fn any_approval_order_pays_the_filing_order_total_nm_inpatient_2022((events, order) in events_and_approval_order(), m in member()) {
        check_period_rule("nm-inpatient-2022", &m, &events, &order)?;
    }

    #[test]
    fn any_approval_order_pays_the_filing_order_total_xinkang((events, order) in events_and_approval_order(), m in member()) {
        check_period_rule("nm-xinkang-2022", &m, &events, &order)?;
        check_period_rule("nm-xinkang-2025", &m, &events, &order)?;
    }

    #[test]
    fn any_approval_order_pays_the_filing_order_total_yinchuan((events, order) in events_and_approval_order(), m in member()) {
        check_period_rule("yc-2022", &m, &events, &order)?;
    }

    #[test]
    fn any_approval_order_pays_the_filing_order_total_wujin((events, order) in events_and_approval_order(), m in member()) {
        check_period_rule("wj-2022", &m, &events, &order)?;
    }
}
