//! One test per rule of `schemes.md` and per reading of `simulate.md`; the five worked examples.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{Value, json};

use super::contract::{ErrorCode, SimulationError, simulate};
use super::judge::round_money;
use super::judge_event;
use super::model::*;
use super::primitives::*;
use super::scheme::*;
use super::seeds::seed_schemes;
use crate::domain::{Money, MoneyError};

// ---------------------------------------------------------------- helpers

/// An amount as the contract writes it (what `contract_amount` serialises).
fn format_money(amount: Decimal) -> String {
    Money::from_decimal(amount).round_half_up().to_string()
}

/// An amount as the contract reads it.
pub(super) fn parse_amount(text: &str) -> Result<Decimal, MoneyError> {
    Money::parse_contract(text).map(|m| m.as_decimal())
}

fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn scheme(code: &str) -> SchemeDefinition {
    seed_schemes()
        .expect("seeds load")
        .into_iter()
        .find(|s| s.code == code)
        .expect("seed exists")
}

fn member(start: &str, end: &str) -> MemberPeriod {
    MemberPeriod {
        coverage_start: d(start),
        coverage_end: d(end),
        consecutive_periods: 1,
        continuous_renewal: false,
    }
}

fn nm_member() -> MemberPeriod {
    MemberPeriod {
        consecutive_periods: 3,
        continuous_renewal: true,
        ..member("2022-05-11", "2023-05-10")
    }
}

fn year(y: i32) -> MemberPeriod {
    member(&format!("{y}-01-01"), &format!("{y}-12-31"))
}

fn stay(admitted: &str, discharged: &str) -> Stay {
    Stay {
        admitted_on: d(admitted),
        discharged_on: d(discharged),
        billed_days: None,
        cause: Cause::Illness,
        eligible_self_pay: None,
        personal_burden: None,
        out_of_pocket: None,
        deductible: None,
        settled_by_insurance: true,
        unsettled_cost: None,
        own_liability_cost: None,
    }
}

fn nm_stay(admitted: &str, discharged: &str, billed: u32, s: Decimal) -> Event {
    Event::Inpatient(Stay {
        billed_days: Some(billed),
        eligible_self_pay: Some(s),
        ..stay(admitted, discharged)
    })
}

fn yc_stay(admitted: &str, p: Decimal) -> Event {
    Event::Inpatient(Stay {
        personal_burden: Some(p),
        ..stay(admitted, admitted)
    })
}

fn wj_stay(admitted: &str, c: Decimal) -> Event {
    Event::Inpatient(Stay {
        out_of_pocket: Some(c),
        ..stay(admitted, admitted)
    })
}

fn month(y: i32, m: u32, s: Decimal) -> Event {
    Event::OutpatientSpecial(OutpatientMonth {
        month: YearMonth::new(y, m).expect("month"),
        eligible_self_pay: s,
    })
}

fn diagnosis(on: &str, disease: &str) -> Diagnosis {
    Diagnosis {
        diagnosed_on: d(on),
        disease: disease.to_owned(),
        in_situ: false,
        pre_existing: false,
        recognised_institution: true,
    }
}

fn diag(on: &str, disease: &str) -> Event {
    Event::Diagnosis(diagnosis(on, disease))
}

/// Judges the events in order; returns the judgements.
fn judge_all(s: &SchemeDefinition, m: &MemberPeriod, events: Vec<Event>) -> Vec<Judgement> {
    let mut history = Vec::new();
    for event in events {
        let judgement = judge_event(s, m, &history, &event);
        history.push(JudgedEvent { event, judgement });
    }
    history.into_iter().map(|h| h.judgement).collect()
}

fn one(s: &SchemeDefinition, m: &MemberPeriod, event: Event) -> Judgement {
    judge_all(s, m, vec![event]).remove(0)
}

fn items(j: &Judgement) -> Vec<(ItemCode, Decimal)> {
    j.items.iter().map(|i| (i.code, i.amount)).collect()
}

fn lookup(code: &str) -> Option<(&'static SchemeDefinition, i32)> {
    static SEEDS: std::sync::OnceLock<Vec<SchemeDefinition>> = std::sync::OnceLock::new();
    SEEDS
        .get_or_init(|| seed_schemes().expect("seeds load"))
        .iter()
        .find(|s| s.code == code)
        .map(|s| (s, 1))
}

fn sim(request: Value) -> Result<Value, Value> {
    simulate(&request, lookup)
        .map(|r| serde_json::to_value(r).expect("serialises"))
        .map_err(|e| serde_json::to_value(e).expect("serialises"))
}

fn sim_err(request: Value) -> SimulationError {
    simulate(&request, lookup).expect_err("refused")
}

fn field_of(e: &SimulationError) -> &str {
    e.details["field"].as_str().unwrap_or("<none>")
}

fn nm_request(events: Value) -> Value {
    json!({
        "scheme": "nm-inpatient-2022",
        "member": {"coverage_start": "2022-05-11", "coverage_end": "2023-05-10", "consecutive_periods": 3, "continuous_renewal": true},
        "events": events
    })
}

// ---------------------------------------------------------------- conventions and primitives

#[test]
fn each_item_is_rounded_once_half_up_to_the_fen() {
    assert_eq!(round_money(dec!(0.005)), dec!(0.01));
    assert_eq!(round_money(dec!(2.345)), dec!(2.35));
    assert_eq!(round_money(dec!(2.3449)), dec!(2.34));
    assert_eq!(round_money(dec!(1200.005)), dec!(1200.01));
}

#[test]
fn money_strings_always_carry_exactly_two_decimals() {
    assert_eq!(format_money(dec!(6600)), "6600.00");
    assert_eq!(format_money(dec!(0)), "0.00");
    assert_eq!(format_money(dec!(60.5)), "60.50");
    assert_eq!(format_money(dec!(0.125)), "0.13");
}

#[test]
fn a_progressive_band_pays_each_slice_at_its_own_rate() {
    let s = scheme("nm-inpatient-2022");
    let bands = s
        .inpatient
        .as_ref()
        .and_then(|r| r.bands.as_ref())
        .expect("bands");
    assert_eq!(banded(bands, dec!(12000)), dec!(6600));
    assert_eq!(banded(bands, dec!(150)), dec!(60));
}

#[test]
fn a_band_written_exclusive_inclusive_is_the_half_open_interval() {
    let s = scheme("nm-inpatient-2022");
    let bands = s
        .inpatient
        .as_ref()
        .and_then(|r| r.bands.as_ref())
        .expect("bands");
    // 3000 is the top of (0,3000] at 40%; 3000.01 adds 0.01 at 50%.
    assert_eq!(banded(bands, dec!(3000)), dec!(1200));
    assert_eq!(banded(bands, dec!(3000.01)), dec!(1200.005));
}

#[test]
fn a_bracket_includes_or_excludes_its_edges_as_data() {
    let inclusive = Bracket {
        from: dec!(5000),
        from_inclusive: true,
        to: Some(dec!(10000)),
        to_inclusive: true,
        amount: dec!(500),
    };
    let exclusive = Bracket {
        from: dec!(10000),
        from_inclusive: false,
        to: Some(dec!(20000)),
        to_inclusive: false,
        amount: dec!(1),
    };
    assert!(in_bracket(&inclusive, dec!(5000)) && in_bracket(&inclusive, dec!(10000)));
    assert!(!in_bracket(&exclusive, dec!(10000)) && !in_bracket(&exclusive, dec!(20000)));
    assert!(in_bracket(&exclusive, dec!(10000.01)));
}

#[test]
fn the_admission_day_counts_and_the_discharge_day_does_not() {
    assert_eq!(stay_days(d("2022-06-01"), d("2022-06-11")), 10);
}

#[test]
fn a_stay_that_begins_and_ends_on_one_day_counts_one_day() {
    assert_eq!(stay_days(d("2022-06-01"), d("2022-06-01")), 1);
}

#[test]
fn one_year_coverage_runs_from_the_day_after_completion_for_a_year() {
    let s = scheme("nm-inpatient-2022");
    assert_eq!(
        coverage_period(&s.coverage, d("2022-05-10")),
        Some((d("2022-05-11"), d("2023-05-10")))
    );
}

#[test]
fn calendar_year_coverage_is_the_schemes_year() {
    let s = scheme("nm-inpatient-2025");
    assert_eq!(
        coverage_period(&s.coverage, d("2024-10-01")),
        Some((d("2025-01-01"), d("2025-12-31")))
    );
}

#[test]
fn a_renewal_within_15_days_after_the_period_end_keeps_the_member_continuous() {
    let end = d("2023-05-10");
    assert!(renewal_is_continuous(end, d("2023-05-25"), 15));
    assert!(!renewal_is_continuous(end, d("2023-05-26"), 15));
}

#[test]
fn consecutive_periods_grow_with_continuous_renewal_and_restart_after_an_allowance_or_a_lapse() {
    assert_eq!(next_consecutive_periods(1, true, false), 2);
    assert_eq!(next_consecutive_periods(2, true, false), 3);
    assert_eq!(next_consecutive_periods(3, true, true), 1);
    assert_eq!(next_consecutive_periods(3, false, false), 1);
}

#[test]
fn an_age_limit_written_yixia_includes_the_number_itself() {
    let s = scheme("nm-xinkang-2022");
    assert!(s.eligibility.accepts_age(60));
    assert!(!s.eligibility.accepts_age(61));
    let nm = scheme("nm-inpatient-2022");
    assert!(nm.eligibility.accepts_age(16) && !nm.eligibility.accepts_age(15));
}

#[test]
fn the_observation_period_is_the_first_30_calendar_days() {
    assert_eq!(
        observation_period(30, d("2022-06-01"), false),
        Some((d("2022-06-01"), d("2022-06-30")))
    );
    assert_eq!(observation_period(30, d("2022-06-01"), true), None);
}

// ---------------------------------------------------------------- worked examples

#[test]
fn worked_example_1_nm_2022_third_period_stay_pays_6900() {
    let j = one(
        &scheme("nm-inpatient-2022"),
        &nm_member(),
        nm_stay("2022-06-01", "2022-06-11", 10, dec!(12000)),
    );
    assert_eq!(
        items(&j),
        vec![
            (ItemCode::Banded, dec!(6600)),
            (ItemCode::DailyAllowance, dec!(300))
        ]
    );
    assert_eq!(j.payable(), dec!(6900));
}

#[test]
fn worked_example_2_a_second_small_stay_is_topped_up_to_200_without_allowance() {
    let js = judge_all(
        &scheme("nm-inpatient-2022"),
        &nm_member(),
        vec![
            nm_stay("2022-06-01", "2022-06-11", 10, dec!(12000)),
            nm_stay("2022-08-01", "2022-08-04", 3, dec!(150)),
        ],
    );
    assert_eq!(
        items(&js[1]),
        vec![
            (ItemCode::Banded, dec!(60)),
            (ItemCode::MinimumTopUp, dec!(140))
        ]
    );
    assert_eq!(js[1].payable(), dec!(200));
}

#[test]
fn worked_example_3_xinkang_diagnosis_in_observation_pays_condolence_and_ends_the_benefit() {
    let js = judge_all(
        &scheme("nm-xinkang-2022"),
        &member("2022-06-01", "2023-05-31"),
        vec![
            diag("2022-06-20", "breast_cancer"),
            diag("2022-10-08", "ovarian_cancer_or_oophorectomy"),
        ],
    );
    assert_eq!(items(&js[0]), vec![(ItemCode::Condolence, dec!(500))]);
    assert_eq!(js[1].refused, Some(Refusal::BenefitTerminated));
}

#[test]
fn worked_example_4_wj_pays_the_difference_of_the_accumulated_bracket() {
    let js = judge_all(
        &scheme("wj-2022"),
        &year(2022),
        vec![
            wj_stay("2022-03-02", dec!(3000)),
            wj_stay("2022-07-11", dec!(8000)),
        ],
    );
    assert_eq!(items(&js[0]), vec![(ItemCode::Bracket, dec!(500))]);
    assert_eq!(items(&js[1]), vec![(ItemCode::Bracket, dec!(1000))]);
}

#[test]
fn worked_example_5_yc_stay_pays_bands_extra_grant_and_anxin() {
    let j = one(
        &scheme("yc-2022"),
        &year(2022),
        yc_stay("2022-04-06", dec!(12000)),
    );
    assert_eq!(
        items(&j),
        vec![
            (ItemCode::Banded, dec!(4500)),
            (ItemCode::ExtraGrant, dec!(1000)),
            (ItemCode::AnxinAllowance, dec!(200))
        ]
    );
    assert_eq!(j.payable(), dec!(5700));
}

#[test]
fn the_fixtures_replay_to_their_expected_bodies() {
    let pairs: &[(&str, &str)] = &[
        (
            include_str!("../../tests/fixtures/simulate/example1.request.json"),
            include_str!("../../tests/fixtures/simulate/example1.response.json"),
        ),
        (
            include_str!("../../tests/fixtures/simulate/example2.request.json"),
            include_str!("../../tests/fixtures/simulate/example2.response.json"),
        ),
        (
            include_str!("../../tests/fixtures/simulate/example3.request.json"),
            include_str!("../../tests/fixtures/simulate/example3.response.json"),
        ),
        (
            include_str!("../../tests/fixtures/simulate/example4.request.json"),
            include_str!("../../tests/fixtures/simulate/example4.response.json"),
        ),
        (
            include_str!("../../tests/fixtures/simulate/example5.request.json"),
            include_str!("../../tests/fixtures/simulate/example5.response.json"),
        ),
        (
            include_str!("../../tests/fixtures/simulate/unknown_scheme.request.json"),
            include_str!("../../tests/fixtures/simulate/unknown_scheme.response.json"),
        ),
        (
            include_str!("../../tests/fixtures/simulate/scheme_incomplete.request.json"),
            include_str!("../../tests/fixtures/simulate/scheme_incomplete.response.json"),
        ),
        (
            include_str!(
                "../../tests/fixtures/simulate/invalid_request_negative_amount.request.json"
            ),
            include_str!(
                "../../tests/fixtures/simulate/invalid_request_negative_amount.response.json"
            ),
        ),
        (
            include_str!(
                "../../tests/fixtures/simulate/invalid_request_unknown_field.request.json"
            ),
            include_str!(
                "../../tests/fixtures/simulate/invalid_request_unknown_field.response.json"
            ),
        ),
        (
            include_str!(
                "../../tests/fixtures/simulate/invalid_request_discharge_before_admission.request.json"
            ),
            include_str!(
                "../../tests/fixtures/simulate/invalid_request_discharge_before_admission.response.json"
            ),
        ),
        (
            include_str!(
                "../../tests/fixtures/simulate/invalid_request_missing_amount.request.json"
            ),
            include_str!(
                "../../tests/fixtures/simulate/invalid_request_missing_amount.response.json"
            ),
        ),
    ];
    for (request, expected) in pairs {
        let request: Value = serde_json::from_str(request).expect("fixture request");
        let expected: Value = serde_json::from_str(expected).expect("fixture response");
        let got = match sim(request) {
            Ok(v) | Err(v) => v,
        };
        assert_eq!(got, expected);
    }
}

// ---------------------------------------------------------------- nm-inpatient-2022

#[test]
fn nm_banded_benefits_of_a_period_never_exceed_500000_and_a_later_stay_is_cut() {
    let s = scheme("nm-inpatient-2022");
    // 600000 pays 473200 (nothing above 500000); a second 100000 stay would pay 71200 but only 26800 is left.
    let js = judge_all(
        &s,
        &nm_member(),
        vec![
            nm_stay("2022-06-01", "2022-06-11", 10, dec!(600000)),
            nm_stay("2022-07-01", "2022-07-11", 10, dec!(100000)),
        ],
    );
    assert_eq!(js[0].item(ItemCode::Banded), dec!(473200));
    assert_eq!(js[1].item(ItemCode::Banded), dec!(26800));
    assert_eq!(js[1].refused, None);
}

#[test]
fn nm_nothing_above_500000_of_self_pay_is_paid() {
    let s = scheme("nm-inpatient-2022");
    let a = one(
        &s,
        &nm_member(),
        nm_stay("2022-06-01", "2022-06-02", 0, dec!(500000)),
    );
    let b = one(
        &s,
        &nm_member(),
        nm_stay("2022-06-01", "2022-06-02", 0, dec!(900000)),
    );
    assert_eq!(a.item(ItemCode::Banded), dec!(473200));
    assert_eq!(b.item(ItemCode::Banded), dec!(473200));
}

#[test]
fn nm_a_stay_the_cap_leaves_with_no_banded_benefit_and_no_allowance_is_refused_benefit_terminated()
{
    let s = scheme("nm-inpatient-2022");
    let js = judge_all(
        &s,
        &nm_member(),
        vec![
            nm_stay("2022-06-01", "2022-06-11", 10, dec!(600000)),
            nm_stay("2022-07-01", "2022-07-11", 10, dec!(100000)),
            nm_stay("2022-08-01", "2022-08-11", 10, dec!(5000)),
        ],
    );
    assert_eq!(js[2].refused, Some(Refusal::BenefitTerminated));
    assert!(js[2].items.is_empty());
}

#[test]
fn nm_the_200_floor_applies_to_a_stay_whose_banded_benefit_the_cap_cut() {
    let s = scheme("nm-inpatient-2022");
    // 473200 + 26750 leaves 50 of the 500000 cap for the third stay.
    let js = judge_all(
        &s,
        &nm_member(),
        vec![
            nm_stay("2022-06-01", "2022-06-11", 10, dec!(600000)),
            nm_stay("2022-07-01", "2022-07-11", 10, dec!(40785.71)), // 26749.997 → 26750.00 banded
            nm_stay("2022-08-01", "2022-08-11", 10, dec!(5000)),     // 2200 banded, cut to 50
        ],
    );
    assert_eq!(js[1].item(ItemCode::Banded), dec!(26750));
    assert_eq!(
        items(&js[2]),
        vec![
            (ItemCode::Banded, dec!(50)),
            (ItemCode::MinimumTopUp, dec!(150))
        ]
    );
}

#[test]
fn nm_daily_allowance_is_10_a_day_in_a_first_period() {
    let s = scheme("nm-inpatient-2022");
    let m = MemberPeriod {
        consecutive_periods: 1,
        ..nm_member()
    };
    assert_eq!(
        one(&s, &m, nm_stay("2022-06-01", "2022-06-11", 10, dec!(12000)))
            .item(ItemCode::DailyAllowance),
        dec!(100)
    );
}

#[test]
fn nm_daily_allowance_is_20_a_day_in_a_second_consecutive_period() {
    let s = scheme("nm-inpatient-2022");
    let m = MemberPeriod {
        consecutive_periods: 2,
        ..nm_member()
    };
    assert_eq!(
        one(&s, &m, nm_stay("2022-06-01", "2022-06-11", 10, dec!(12000)))
            .item(ItemCode::DailyAllowance),
        dec!(200)
    );
}

#[test]
fn nm_daily_allowance_is_30_a_day_from_the_third_consecutive_period() {
    let s = scheme("nm-inpatient-2022");
    let m = MemberPeriod {
        consecutive_periods: 7,
        ..nm_member()
    };
    assert_eq!(
        one(&s, &m, nm_stay("2022-06-01", "2022-06-11", 10, dec!(12000)))
            .item(ItemCode::DailyAllowance),
        dec!(300)
    );
}

#[test]
fn nm_allowance_days_are_at_most_30() {
    let s = scheme("nm-inpatient-2022");
    let j = one(
        &s,
        &nm_member(),
        nm_stay("2022-06-01", "2022-08-01", 61, dec!(12000)),
    );
    assert_eq!(j.item(ItemCode::DailyAllowance), dec!(900));
}

#[test]
fn nm_allowance_days_are_the_billed_days_when_fewer_than_the_stay() {
    let s = scheme("nm-inpatient-2022");
    let j = one(
        &s,
        &nm_member(),
        nm_stay("2022-06-01", "2022-06-11", 4, dec!(12000)),
    );
    assert_eq!(j.item(ItemCode::DailyAllowance), dec!(120));
}

#[test]
fn nm_allowance_days_are_only_the_covered_days() {
    let s = scheme("nm-inpatient-2022");
    // Admitted 2022-05-06, coverage from 05-11: 10 days, 5 covered.
    let j = one(
        &s,
        &nm_member(),
        nm_stay("2022-05-06", "2022-05-16", 10, dec!(12000)),
    );
    assert_eq!(j.item(ItemCode::DailyAllowance), dec!(150));
}

#[test]
fn nm_a_missing_billed_days_counts_the_stays_own_days() {
    let s = scheme("nm-inpatient-2022");
    let e = Event::Inpatient(Stay {
        eligible_self_pay: Some(dec!(12000)),
        ..stay("2022-06-01", "2022-06-08")
    });
    assert_eq!(
        one(&s, &nm_member(), e).item(ItemCode::DailyAllowance),
        dec!(210)
    );
}

#[test]
fn nm_only_the_first_paid_stay_of_a_period_gets_the_allowance() {
    let s = scheme("nm-inpatient-2022");
    let js = judge_all(
        &s,
        &nm_member(),
        vec![
            nm_stay("2022-06-01", "2022-06-11", 10, dec!(12000)),
            nm_stay("2022-07-01", "2022-07-11", 10, dec!(12000)),
        ],
    );
    assert_eq!(js[1].item(ItemCode::DailyAllowance), dec!(0));
    assert_eq!(js[1].item(ItemCode::Banded), dec!(6600));
}

#[test]
fn nm_a_refused_stay_does_not_use_up_the_allowance() {
    let s = scheme("nm-inpatient-2022");
    let refused = Event::Inpatient(Stay {
        cause: Cause::TrafficAccident,
        billed_days: Some(5),
        eligible_self_pay: Some(dec!(5000)),
        ..stay("2022-06-01", "2022-06-06")
    });
    let js = judge_all(
        &s,
        &nm_member(),
        vec![
            refused,
            nm_stay("2022-07-01", "2022-07-11", 10, dec!(12000)),
        ],
    );
    assert_eq!(js[0].refused, Some(Refusal::ExcludedCause));
    assert_eq!(js[1].item(ItemCode::DailyAllowance), dec!(300));
}

#[test]
fn nm_a_stay_with_nothing_to_pay_is_zero_not_refused_and_not_a_paid_stay() {
    let s = scheme("nm-inpatient-2022");
    let js = judge_all(
        &s,
        &nm_member(),
        vec![
            nm_stay("2022-06-01", "2022-06-03", 0, dec!(0)),
            nm_stay("2022-07-01", "2022-07-11", 10, dec!(12000)),
        ],
    );
    assert_eq!(js[0].refused, None);
    assert!(js[0].items.is_empty());
    assert_eq!(js[0].payable(), dec!(0));
    assert_eq!(js[1].item(ItemCode::DailyAllowance), dec!(300));
}

#[test]
fn nm_a_paid_stay_under_200_is_topped_up_to_200() {
    let s = scheme("nm-inpatient-2022");
    let m = MemberPeriod {
        consecutive_periods: 1,
        ..nm_member()
    };
    let j = one(&s, &m, nm_stay("2022-06-01", "2022-06-03", 2, dec!(100)));
    assert_eq!(
        items(&j),
        vec![
            (ItemCode::Banded, dec!(40)),
            (ItemCode::DailyAllowance, dec!(20)),
            (ItemCode::MinimumTopUp, dec!(140))
        ]
    );
}

#[test]
fn nm_outpatient_special_months_are_paid_on_the_bands_without_allowance_or_floor() {
    let s = scheme("nm-inpatient-2022");
    let j = one(&s, &nm_member(), month(2022, 7, dec!(100)));
    assert_eq!(items(&j), vec![(ItemCode::Banded, dec!(40))]);
}

#[test]
fn nm_outpatient_special_months_count_toward_the_period_cap() {
    let s = scheme("nm-inpatient-2022");
    let js = judge_all(
        &s,
        &nm_member(),
        vec![
            month(2022, 7, dec!(600000)),
            nm_stay("2022-08-01", "2022-08-11", 10, dec!(100000)),
            month(2022, 9, dec!(100000)),
        ],
    );
    assert_eq!(js[0].item(ItemCode::Banded), dec!(473200));
    assert_eq!(js[1].item(ItemCode::Banded), dec!(26800));
    assert_eq!(js[2].refused, Some(Refusal::BenefitTerminated));
}

#[test]
fn nm_outpatient_months_are_never_stays_so_the_first_stay_keeps_its_allowance() {
    let s = scheme("nm-inpatient-2022");
    let js = judge_all(
        &s,
        &nm_member(),
        vec![
            month(2022, 6, dec!(5000)),
            nm_stay("2022-07-01", "2022-07-11", 10, dec!(12000)),
        ],
    );
    assert_eq!(js[1].item(ItemCode::DailyAllowance), dec!(300));
}

#[test]
fn nm_an_outpatient_month_partly_outside_coverage_is_prorated_by_covered_days_renewal_or_not() {
    let s = scheme("nm-inpatient-2022");
    // May 2022: 21 of 31 days covered (11th … 31st); 40% of 1000 = 400 × 21/31 = 270.967… → 270.97.
    let j = one(&s, &nm_member(), month(2022, 5, dec!(1000)));
    assert_eq!(j.item(ItemCode::Banded), dec!(270.97));
    // May 2023 with renewal: only the 10 days up to 2023-05-10 count. 400 × 10/31 = 129.03.
    let j = one(&s, &nm_member(), month(2023, 5, dec!(1000)));
    assert_eq!(j.item(ItemCode::Banded), dec!(129.03));
}

#[test]
fn nm_an_outpatient_month_wholly_outside_coverage_is_refused_outside_coverage() {
    let s = scheme("nm-inpatient-2022");
    assert_eq!(
        one(&s, &nm_member(), month(2022, 4, dec!(1000))).refused,
        Some(Refusal::OutsideCoverage)
    );
}

#[test]
fn a_stay_partly_before_coverage_start_is_prorated_by_covered_days() {
    let s = scheme("nm-inpatient-2022");
    // 2022-05-06 … 05-16: 10 days, 5 covered → 6600 × 5/10 = 3300.
    let j = one(
        &s,
        &nm_member(),
        nm_stay("2022-05-06", "2022-05-16", 10, dec!(12000)),
    );
    assert_eq!(j.item(ItemCode::Banded), dec!(3300));
}

#[test]
fn days_before_coverage_start_are_never_covered_even_with_continuous_renewal() {
    let s = scheme("nm-inpatient-2022");
    let m = MemberPeriod {
        continuous_renewal: true,
        ..nm_member()
    };
    let j = one(&s, &m, nm_stay("2022-05-08", "2022-05-14", 6, dec!(1000)));
    // 6 days, 3 covered: 400 × 3/6 = 200.
    assert_eq!(j.item(ItemCode::Banded), dec!(200));
}

#[test]
fn a_stay_running_past_coverage_end_is_prorated_without_continuous_renewal() {
    let s = scheme("nm-inpatient-2022");
    let m = MemberPeriod {
        continuous_renewal: false,
        ..nm_member()
    };
    // 2023-05-06 … 05-16: 10 days, 5 covered (05-06 … 05-10).
    let j = one(&s, &m, nm_stay("2023-05-06", "2023-05-16", 10, dec!(12000)));
    assert_eq!(j.item(ItemCode::Banded), dec!(3300));
    assert_eq!(j.item(ItemCode::DailyAllowance), dec!(150));
}

#[test]
fn a_stay_running_past_coverage_end_is_paid_whole_with_continuous_renewal() {
    let s = scheme("nm-inpatient-2022");
    let j = one(
        &s,
        &nm_member(),
        nm_stay("2023-05-06", "2023-05-16", 10, dec!(12000)),
    );
    assert_eq!(j.item(ItemCode::Banded), dec!(6600));
    assert_eq!(j.item(ItemCode::DailyAllowance), dec!(300));
}

#[test]
fn proration_stays_exact_until_the_item_is_rounded() {
    let s = scheme("nm-inpatient-2022");
    // 3 days, 1 covered: 6600 / 3 = 2200 exactly; 7 days, 2 covered: 6600 × 2/7 = 1885.714… → 1885.71.
    let j = one(
        &s,
        &nm_member(),
        nm_stay("2022-05-04", "2022-05-11", 7, dec!(12000)),
    );
    assert_eq!(j.refused, Some(Refusal::OutsideCoverage));
    let j = one(
        &s,
        &nm_member(),
        nm_stay("2022-05-05", "2022-05-12", 7, dec!(12000)),
    );
    assert_eq!(j.item(ItemCode::Banded), dec!(942.86));
    let j = one(
        &s,
        &nm_member(),
        nm_stay("2022-05-06", "2022-05-13", 7, dec!(12000)),
    );
    assert_eq!(j.item(ItemCode::Banded), dec!(1885.71));
}

#[test]
fn a_stay_with_no_day_inside_coverage_is_refused_outside_coverage() {
    let s = scheme("nm-inpatient-2022");
    assert_eq!(
        one(
            &s,
            &nm_member(),
            nm_stay("2022-05-01", "2022-05-11", 10, dec!(12000))
        )
        .refused,
        Some(Refusal::OutsideCoverage)
    );
    assert_eq!(
        one(
            &s,
            &nm_member(),
            nm_stay("2023-05-11", "2023-05-20", 9, dec!(12000))
        )
        .refused,
        Some(Refusal::OutsideCoverage)
    );
}

#[test]
fn nm_excludes_every_cause_but_illness() {
    let s = scheme("nm-inpatient-2022");
    let causes = [
        Cause::WorkInjury,
        Cause::Maternity,
        Cause::OccupationalDisease,
        Cause::MentalDisorder,
        Cause::MedicalAccident,
        Cause::TrafficAccident,
        Cause::PublicHealthEmergency,
        Cause::IllegalAct,
        Cause::Cosmetic,
        Cause::Checkup,
        Cause::Fraud,
    ];
    for cause in causes {
        let e = Event::Inpatient(Stay {
            cause,
            billed_days: Some(3),
            eligible_self_pay: Some(dec!(5000)),
            ..stay("2022-06-01", "2022-06-04")
        });
        assert_eq!(
            one(&s, &nm_member(), e).refused,
            Some(Refusal::ExcludedCause),
            "{cause:?}"
        );
    }
    assert_eq!(
        one(
            &s,
            &nm_member(),
            nm_stay("2022-06-01", "2022-06-04", 3, dec!(5000))
        )
        .refused,
        None
    );
}

#[test]
fn nm_2022_accepts_and_ignores_a_deductible() {
    let s = scheme("nm-inpatient-2022");
    let with = |ded| {
        Event::Inpatient(Stay {
            billed_days: Some(1),
            eligible_self_pay: Some(dec!(12000)),
            deductible: ded,
            ..stay("2022-06-01", "2022-06-02")
        })
    };
    let js = judge_all(&s, &nm_member(), vec![with(None), with(Some(dec!(800)))]);
    assert_eq!(js[1].item(ItemCode::Banded), dec!(6600));
}

// ---------------------------------------------------------------- nm-inpatient-2025

fn nm25_stay(admitted: &str, s: Decimal, deductible: Option<Decimal>) -> Event {
    Event::Inpatient(Stay {
        billed_days: Some(1),
        eligible_self_pay: Some(s),
        deductible,
        ..stay(admitted, admitted)
    })
}

#[test]
fn nm_2025_takes_the_stays_deductible_off_s_from_the_second_paid_stay_on() {
    let s = scheme("nm-inpatient-2025");
    let js = judge_all(
        &s,
        &year(2025),
        vec![
            nm25_stay("2025-02-01", dec!(12000), Some(dec!(800))),
            nm25_stay("2025-03-01", dec!(12000), Some(dec!(800))),
        ],
    );
    // First stay: full S. Second: 11200 → 1200+1000+3000+840 = 6040.
    assert_eq!(js[0].item(ItemCode::Banded), dec!(6600));
    assert_eq!(js[1].item(ItemCode::Banded), dec!(6040));
}

#[test]
fn nm_2025_the_deductible_never_takes_s_below_zero() {
    let s = scheme("nm-inpatient-2025");
    let js = judge_all(
        &s,
        &year(2025),
        vec![
            nm25_stay("2025-02-01", dec!(12000), None),
            nm25_stay("2025-03-01", dec!(500), Some(dec!(800))),
        ],
    );
    assert_eq!(js[1].refused, None);
    assert!(js[1].items.is_empty());
}

#[test]
fn nm_2025_a_missing_deductible_is_zero() {
    let s = scheme("nm-inpatient-2025");
    let js = judge_all(
        &s,
        &year(2025),
        vec![
            nm25_stay("2025-02-01", dec!(12000), None),
            nm25_stay("2025-03-01", dec!(12000), None),
        ],
    );
    assert_eq!(js[1].item(ItemCode::Banded), dec!(6600));
}

#[test]
fn nm_2025_the_deductible_waits_for_an_earlier_paid_stay_not_an_earlier_refused_one() {
    let s = scheme("nm-inpatient-2025");
    let refused = Event::Inpatient(Stay {
        cause: Cause::Maternity,
        eligible_self_pay: Some(dec!(12000)),
        deductible: Some(dec!(800)),
        ..stay("2025-02-01", "2025-02-01")
    });
    let js = judge_all(
        &s,
        &year(2025),
        vec![
            refused,
            nm25_stay("2025-03-01", dec!(12000), Some(dec!(800))),
        ],
    );
    assert_eq!(js[1].item(ItemCode::Banded), dec!(6600));
    assert_eq!(js[1].item(ItemCode::DailyAllowance), dec!(10));
}

#[test]
fn nm_2025_fees_are_90_and_390_plus_10_from_the_regional_union() {
    let s = scheme("nm-inpatient-2025");
    assert_eq!(
        (
            s.fees.in_service,
            s.fees.retired,
            s.fees.regional_union_share
        ),
        (dec!(90), Some(dec!(390)), Some(dec!(10)))
    );
    assert_eq!(
        (s.coverage.style, s.coverage.year),
        (CoverageStyle::CalendarYear, Some(2025))
    );
    assert_eq!(
        s.enrolment
            .large_unit
            .as_ref()
            .map(|l| (l.min_employees, l.min_participation)),
        Some((500, dec!(0.70)))
    );
}

// ---------------------------------------------------------------- xinkang

fn xk_member() -> MemberPeriod {
    member("2022-06-01", "2023-05-31")
}

#[test]
fn xinkang_a_diagnosis_inside_the_observation_period_pays_the_condolence_only() {
    let j = one(
        &scheme("nm-xinkang-2022"),
        &xk_member(),
        diag("2022-06-30", "vulvar_cancer"),
    );
    assert_eq!(items(&j), vec![(ItemCode::Condolence, dec!(500))]);
}

#[test]
fn xinkang_the_observation_period_ends_after_its_30th_day() {
    let j = one(
        &scheme("nm-xinkang-2022"),
        &xk_member(),
        diag("2022-07-01", "vulvar_cancer"),
    );
    assert_eq!(
        items(&j),
        vec![
            (ItemCode::FixedBenefit, dec!(20000)),
            (ItemCode::RehabilitationGrant, dec!(2000))
        ]
    );
}

#[test]
fn xinkang_a_continuously_renewed_member_has_no_observation_period() {
    let m = MemberPeriod {
        continuous_renewal: true,
        ..xk_member()
    };
    let j = one(
        &scheme("nm-xinkang-2022"),
        &m,
        diag("2022-06-01", "breast_cancer"),
    );
    assert_eq!(
        items(&j),
        vec![
            (ItemCode::FixedBenefit, dec!(30000)),
            (ItemCode::RehabilitationGrant, dec!(2000))
        ]
    );
}

#[test]
fn xinkang_primary_breast_cancer_pays_30000_plus_2000_rehabilitation() {
    let j = one(
        &scheme("nm-xinkang-2025"),
        &year(2025),
        diag("2025-05-01", "breast_cancer"),
    );
    assert_eq!(j.payable(), dec!(32000));
}

#[test]
fn xinkang_any_other_of_the_13_pays_20000_plus_2000_rehabilitation() {
    let s = scheme("nm-xinkang-2022");
    for code in s
        .diagnosis
        .as_ref()
        .map(|d| d.covered.clone())
        .unwrap_or_default()
    {
        let j = one(&s, &xk_member(), diag("2022-09-01", &code));
        let expected = if code == "breast_cancer" {
            dec!(32000)
        } else {
            dec!(22000)
        };
        assert_eq!(j.payable(), expected, "{code}");
    }
}

#[test]
fn xinkang_a_carcinoma_in_situ_pays_10000_plus_2000_rehabilitation() {
    let e = Event::Diagnosis(Diagnosis {
        in_situ: true,
        ..diagnosis("2022-09-01", "breast_cancer")
    });
    let j = one(&scheme("nm-xinkang-2022"), &xk_member(), e);
    assert_eq!(
        items(&j),
        vec![
            (ItemCode::FixedBenefit, dec!(10000)),
            (ItemCode::RehabilitationGrant, dec!(2000))
        ]
    );
}

#[test]
fn xinkang_pays_once_a_period_and_a_later_diagnosis_is_refused_benefit_terminated() {
    let js = judge_all(
        &scheme("nm-xinkang-2022"),
        &xk_member(),
        vec![
            diag("2022-09-01", "breast_cancer"),
            diag("2022-12-01", "vulvar_cancer"),
        ],
    );
    assert_eq!(js[0].payable(), dec!(32000));
    assert_eq!(js[1].refused, Some(Refusal::BenefitTerminated));
}

#[test]
fn xinkang_a_disease_had_before_enrolling_is_refused_pre_existing() {
    let e = Event::Diagnosis(Diagnosis {
        pre_existing: true,
        ..diagnosis("2022-09-01", "breast_cancer")
    });
    assert_eq!(
        one(&scheme("nm-xinkang-2022"), &xk_member(), e).refused,
        Some(Refusal::PreExisting)
    );
}

#[test]
fn xinkang_a_known_disease_not_in_the_list_is_refused_not_covered_disease() {
    assert_eq!(
        one(
            &scheme("nm-xinkang-2022"),
            &xk_member(),
            diag("2022-09-01", "critical_illness")
        )
        .refused,
        Some(Refusal::NotCoveredDisease)
    );
}

#[test]
fn xinkang_a_certificate_from_a_non_recognised_institution_is_refused() {
    let e = Event::Diagnosis(Diagnosis {
        recognised_institution: false,
        ..diagnosis("2022-09-01", "breast_cancer")
    });
    assert_eq!(
        one(&scheme("nm-xinkang-2022"), &xk_member(), e).refused,
        Some(Refusal::UnrecognisedInstitution)
    );
}

#[test]
fn xinkang_a_diagnosis_outside_coverage_is_refused_outside_coverage() {
    assert_eq!(
        one(
            &scheme("nm-xinkang-2022"),
            &xk_member(),
            diag("2023-06-01", "breast_cancer")
        )
        .refused,
        Some(Refusal::OutsideCoverage)
    );
}

#[test]
fn xinkang_when_several_refusals_apply_the_first_in_contract_order_wins() {
    let s = scheme("nm-xinkang-2022");
    let all_wrong = |on: &str, disease: &str| {
        Event::Diagnosis(Diagnosis {
            pre_existing: true,
            recognised_institution: false,
            ..diagnosis(on, disease)
        })
    };
    let paid = diag("2022-09-01", "breast_cancer");
    let cases = [
        (
            all_wrong("2023-06-01", "critical_illness"),
            Refusal::OutsideCoverage,
        ),
        (
            all_wrong("2022-10-01", "critical_illness"),
            Refusal::NotCoveredDisease,
        ),
        (
            all_wrong("2022-10-01", "vulvar_cancer"),
            Refusal::UnrecognisedInstitution,
        ),
        (
            Event::Diagnosis(Diagnosis {
                pre_existing: true,
                ..diagnosis("2022-10-01", "vulvar_cancer")
            }),
            Refusal::PreExisting,
        ),
        (
            diag("2022-10-01", "vulvar_cancer"),
            Refusal::BenefitTerminated,
        ),
    ];
    for (event, refusal) in cases {
        let js = judge_all(&s, &xk_member(), vec![paid.clone(), event]);
        assert_eq!(js[1].refused, Some(refusal));
    }
}

#[test]
fn xinkang_a_refused_diagnosis_does_not_end_the_benefit() {
    let pre = Event::Diagnosis(Diagnosis {
        pre_existing: true,
        ..diagnosis("2022-08-01", "breast_cancer")
    });
    let js = judge_all(
        &scheme("nm-xinkang-2022"),
        &xk_member(),
        vec![pre, diag("2022-09-01", "vulvar_cancer")],
    );
    assert_eq!(js[1].payable(), dec!(22000));
}

#[test]
fn xinkang_a_stay_is_the_wrong_event_kind() {
    let j = one(
        &scheme("nm-xinkang-2022"),
        &xk_member(),
        nm_stay("2022-09-01", "2022-09-03", 2, dec!(100)),
    );
    assert_eq!(j.refused, Some(Refusal::WrongEventKind));
}

#[test]
fn xinkang_icd10_codes_mean_a_listed_disease_by_their_longest_prefix() {
    for code in ["nm-xinkang-2022", "nm-xinkang-2025"] {
        let s = scheme(code);
        let d = s.diagnosis.as_ref().expect("diagnosis rules");
        let of = |icd: &str| d.icd10_entry(icd).map(|e| (e.disease.clone(), e.in_situ));
        let is = |disease: &str, in_situ| Some((disease.to_owned(), in_situ));
        assert_eq!(of("C50.9"), is("breast_cancer", false));
        assert_eq!(of("c50.900x001"), is("breast_cancer", false));
        assert_eq!(of("C509"), is("breast_cancer", false));
        assert_eq!(of("C57.0x01"), is("fallopian_tube_cancer", false));
        assert_eq!(of("C57.1"), None, "parametrium is not the fallopian tube");
        assert_eq!(of("C56"), is("ovarian_cancer_or_oophorectomy", false));
        assert_eq!(of("C54.1"), is("endometrial_cancer", false));
        assert_eq!(of("C54.2"), is("uterine_sarcoma", false));
        assert_eq!(of("D39.1"), is("borderline_ovarian_tumour", false));
        assert_eq!(of("D39.0"), None);
        assert_eq!(of("D05.1"), is("breast_cancer", true));
        assert_eq!(of("C34.9"), None, "lung cancer is not on the list");
        assert_eq!(of("C5"), None);
    }
}

#[test]
fn validation_refuses_an_icd10_entry_for_a_disease_not_covered_or_malformed() {
    let mut s = scheme("nm-xinkang-2025");
    let d = s.diagnosis.as_mut().expect("diagnosis rules");
    let n = d.icd10.len();
    d.icd10.push(Icd10Code {
        prefix: "C61".into(),
        disease: "prostate_cancer".into(),
        in_situ: false,
    });
    d.icd10.push(Icd10Code {
        prefix: "c5".into(),
        disease: "breast_cancer".into(),
        in_situ: false,
    });
    d.icd10.push(Icd10Code {
        prefix: "C50".into(),
        disease: "breast_cancer".into(),
        in_situ: false,
    });
    assert_eq!(
        problems(&s),
        [
            format!("diagnosis.icd10[{n}].disease"),
            format!("diagnosis.icd10[{}].prefix", n + 1),
            format!("diagnosis.icd10[{}].prefix", n + 2),
        ]
    );
}

// ---------------------------------------------------------------- yc-2022

#[test]
fn yc_pays_nothing_up_to_the_1000_deductible_but_the_anxin_allowance() {
    let j = one(
        &scheme("yc-2022"),
        &year(2022),
        yc_stay("2022-03-01", dec!(1000)),
    );
    assert_eq!(items(&j), vec![(ItemCode::AnxinAllowance, dec!(200))]);
}

#[test]
fn yc_bands_start_above_the_deductible_on_p_itself() {
    let j = one(
        &scheme("yc-2022"),
        &year(2022),
        yc_stay("2022-03-01", dec!(2000)),
    );
    assert_eq!(j.item(ItemCode::Banded), dec!(200));
    let j = one(
        &scheme("yc-2022"),
        &year(2022),
        yc_stay("2022-03-01", dec!(60000)),
    );
    // 200+250+700+2250+11000+13000+7500 = 34900
    assert_eq!(j.item(ItemCode::Banded), dec!(34900));
}

#[test]
fn yc_banded_benefits_of_a_year_never_exceed_50000() {
    let js = judge_all(
        &scheme("yc-2022"),
        &year(2022),
        vec![
            yc_stay("2022-03-01", dec!(60000)),
            yc_stay("2022-05-01", dec!(60000)),
            yc_stay("2022-07-01", dec!(3000)),
        ],
    );
    assert_eq!(js[1].item(ItemCode::Banded), dec!(15100));
    assert_eq!(js[2].refused, Some(Refusal::BenefitTerminated));
}

#[test]
fn yc_the_extra_grant_is_paid_once_a_year_on_the_first_stay_reaching_5000() {
    let js = judge_all(
        &scheme("yc-2022"),
        &year(2022),
        vec![
            yc_stay("2022-02-01", dec!(4999.99)),
            yc_stay("2022-03-01", dec!(5000)),
            yc_stay("2022-04-01", dec!(250000)),
        ],
    );
    assert_eq!(js[0].item(ItemCode::ExtraGrant), dec!(0));
    assert_eq!(js[1].item(ItemCode::ExtraGrant), dec!(500));
    assert_eq!(js[2].item(ItemCode::ExtraGrant), dec!(0));
}

#[test]
fn yc_the_extra_grant_brackets_follow_their_inclusive_and_exclusive_edges() {
    let s = scheme("yc-2022");
    let grant = |p| one(&s, &year(2022), yc_stay("2022-03-01", p)).item(ItemCode::ExtraGrant);
    assert_eq!(grant(dec!(10000)), dec!(500));
    assert_eq!(grant(dec!(10000.01)), dec!(1000));
    assert_eq!(grant(dec!(50000)), dec!(5000));
    assert_eq!(grant(dec!(80000)), dec!(10000));
    assert_eq!(grant(dec!(100000)), dec!(25000));
    assert_eq!(grant(dec!(200000)), dec!(40000));
    assert_eq!(grant(dec!(200000.01)), dec!(50000));
}

#[test]
fn yc_the_anxin_allowance_comes_once_with_the_first_stay_inside_coverage() {
    let js = judge_all(
        &scheme("yc-2022"),
        &year(2022),
        vec![
            yc_stay("2021-12-30", dec!(3000)),
            yc_stay("2022-03-01", dec!(3000)),
            yc_stay("2022-04-01", dec!(3000)),
        ],
    );
    assert_eq!(js[0].refused, Some(Refusal::OutsideCoverage));
    assert_eq!(js[1].item(ItemCode::AnxinAllowance), dec!(200));
    assert_eq!(js[2].item(ItemCode::AnxinAllowance), dec!(0));
}

#[test]
fn yc_excludes_no_cause() {
    let e = Event::Inpatient(Stay {
        cause: Cause::Fraud,
        personal_burden: Some(dec!(2000)),
        ..stay("2022-03-01", "2022-03-05")
    });
    assert_eq!(one(&scheme("yc-2022"), &year(2022), e).payable(), dec!(400));
}

#[test]
fn yc_stays_are_judged_by_admission_date_without_proration() {
    let e = Event::Inpatient(Stay {
        personal_burden: Some(dec!(12000)),
        ..stay("2022-12-20", "2023-01-20")
    });
    assert_eq!(
        one(&scheme("yc-2022"), &year(2022), e).item(ItemCode::Banded),
        dec!(4500)
    );
    let e = Event::Inpatient(Stay {
        personal_burden: Some(dec!(12000)),
        ..stay("2021-12-20", "2022-01-20")
    });
    assert_eq!(
        one(&scheme("yc-2022"), &year(2022), e).refused,
        Some(Refusal::OutsideCoverage)
    );
}

// ---------------------------------------------------------------- wj-2022

fn wj_unsettled(
    admitted: &str,
    cause: Cause,
    unsettled: Option<Decimal>,
    own: Option<Decimal>,
) -> Event {
    Event::Inpatient(Stay {
        cause,
        settled_by_insurance: false,
        out_of_pocket: Some(dec!(99999)),
        unsettled_cost: unsettled,
        own_liability_cost: own,
        ..stay(admitted, admitted)
    })
}

#[test]
fn wj_a_stay_that_raises_the_total_without_reaching_a_new_bracket_pays_zero() {
    let js = judge_all(
        &scheme("wj-2022"),
        &year(2022),
        vec![
            wj_stay("2022-03-01", dec!(1200)),
            wj_stay("2022-04-01", dec!(1000)),
        ],
    );
    assert_eq!(js[0].payable(), dec!(500));
    assert_eq!(js[1].refused, None);
    assert!(js[1].items.is_empty());
}

#[test]
fn wj_brackets_include_their_lower_edge_and_exclude_their_upper_edge() {
    let s = scheme("wj-2022");
    let pay = |c| one(&s, &year(2022), wj_stay("2022-03-01", c)).payable();
    assert_eq!(pay(dec!(999.99)), dec!(0));
    assert_eq!(pay(dec!(1000)), dec!(500));
    assert_eq!(pay(dec!(4999.99)), dec!(500));
    assert_eq!(pay(dec!(5000)), dec!(1000));
    assert_eq!(pay(dec!(99999.99)), dec!(15000));
    assert_eq!(pay(dec!(100000)), dec!(20000));
}

#[test]
fn wj_an_unsettled_stay_counts_34_percent_of_the_unsettled_cost_and_ignores_out_of_pocket() {
    let s = scheme("wj-2022");
    let j = one(
        &s,
        &year(2022),
        wj_unsettled("2022-03-01", Cause::Illness, Some(dec!(2941.18)), None),
    );
    // 2941.18 × 0.34 = 1000.0012 ≥ 1000: counted amounts stay exact.
    assert_eq!(j.counted_amount, Some(dec!(1000.0012)));
    assert_eq!(j.payable(), dec!(500));
    let j = one(
        &s,
        &year(2022),
        wj_unsettled("2022-03-01", Cause::Illness, Some(dec!(2941.17)), None),
    );
    assert_eq!(j.payable(), dec!(0));
}

#[test]
fn wj_an_unsettled_traffic_accident_counts_54_5_percent_of_the_own_liability_cost() {
    let j = one(
        &scheme("wj-2022"),
        &year(2022),
        wj_unsettled(
            "2022-03-01",
            Cause::TrafficAccident,
            Some(dec!(1)),
            Some(dec!(10000)),
        ),
    );
    assert_eq!(j.counted_amount, Some(dec!(5450.000)));
    assert_eq!(j.payable(), dec!(1000));
}

#[test]
fn wj_a_settled_traffic_accident_counts_its_out_of_pocket_and_is_paid() {
    let e = Event::Inpatient(Stay {
        cause: Cause::TrafficAccident,
        out_of_pocket: Some(dec!(5000)),
        ..stay("2022-03-01", "2022-03-02")
    });
    assert_eq!(
        one(&scheme("wj-2022"), &year(2022), e).payable(),
        dec!(1000)
    );
}

#[test]
fn wj_maternity_stays_are_paid() {
    let e = Event::Inpatient(Stay {
        cause: Cause::Maternity,
        out_of_pocket: Some(dec!(5000)),
        ..stay("2022-03-01", "2022-03-04")
    });
    assert_eq!(
        one(&scheme("wj-2022"), &year(2022), e).payable(),
        dec!(1000)
    );
}

#[test]
fn wj_work_injury_illegal_act_cosmetic_checkup_and_fraud_stays_are_excluded() {
    for cause in [
        Cause::WorkInjury,
        Cause::IllegalAct,
        Cause::Cosmetic,
        Cause::Checkup,
        Cause::Fraud,
    ] {
        let e = Event::Inpatient(Stay {
            cause,
            out_of_pocket: Some(dec!(5000)),
            ..stay("2022-03-01", "2022-03-04")
        });
        assert_eq!(
            one(&scheme("wj-2022"), &year(2022), e).refused,
            Some(Refusal::ExcludedCause),
            "{cause:?}"
        );
    }
}

#[test]
fn wj_a_refused_stay_adds_nothing_to_the_years_total() {
    let excluded = Event::Inpatient(Stay {
        cause: Cause::Fraud,
        out_of_pocket: Some(dec!(50000)),
        ..stay("2022-03-01", "2022-03-04")
    });
    let js = judge_all(
        &scheme("wj-2022"),
        &year(2022),
        vec![excluded, wj_stay("2022-04-01", dec!(1000))],
    );
    assert_eq!(js[1].payable(), dec!(500));
}

#[test]
fn wj_after_the_top_bracket_has_been_paid_later_stays_are_refused_benefit_terminated() {
    let js = judge_all(
        &scheme("wj-2022"),
        &year(2022),
        vec![
            wj_stay("2022-03-01", dec!(60000)),
            wj_stay("2022-04-01", dec!(50000)),
            wj_stay("2022-05-01", dec!(10)),
        ],
    );
    assert_eq!(js[0].payable(), dec!(15000));
    assert_eq!(js[1].payable(), dec!(5000));
    assert_eq!(js[2].refused, Some(Refusal::BenefitTerminated));
}

#[test]
fn wj_stays_are_judged_by_admission_date() {
    let e = Event::Inpatient(Stay {
        out_of_pocket: Some(dec!(5000)),
        ..stay("2021-12-28", "2022-01-05")
    });
    assert_eq!(
        one(&scheme("wj-2022"), &year(2022), e).refused,
        Some(Refusal::OutsideCoverage)
    );
    let e = Event::Inpatient(Stay {
        out_of_pocket: Some(dec!(5000)),
        ..stay("2022-12-28", "2023-01-05")
    });
    assert_eq!(
        one(&scheme("wj-2022"), &year(2022), e).payable(),
        dec!(1000)
    );
}

#[test]
fn wj_critical_illness_pays_5000_once_a_period() {
    let js = judge_all(
        &scheme("wj-2022"),
        &year(2022),
        vec![
            diag("2022-03-01", "critical_illness"),
            diag("2022-06-01", "critical_illness"),
        ],
    );
    assert_eq!(items(&js[0]), vec![(ItemCode::FixedBenefit, dec!(5000))]);
    assert_eq!(js[1].refused, Some(Refusal::BenefitTerminated));
}

#[test]
fn wj_critical_illness_needs_a_recognised_hospital_and_no_prior_illness() {
    let s = scheme("wj-2022");
    let e = Event::Diagnosis(Diagnosis {
        recognised_institution: false,
        ..diagnosis("2022-03-01", "critical_illness")
    });
    assert_eq!(
        one(&s, &year(2022), e).refused,
        Some(Refusal::UnrecognisedInstitution)
    );
    let e = Event::Diagnosis(Diagnosis {
        pre_existing: true,
        ..diagnosis("2022-03-01", "critical_illness")
    });
    assert_eq!(one(&s, &year(2022), e).refused, Some(Refusal::PreExisting));
    assert_eq!(
        one(&s, &year(2022), diag("2022-03-01", "breast_cancer")).refused,
        Some(Refusal::NotCoveredDisease)
    );
}

#[test]
fn wj_every_work_injury_pays_by_its_appraisal_grade() {
    let s = scheme("wj-2022");
    let expected = [
        (1, 5000),
        (2, 5000),
        (3, 3000),
        (4, 3000),
        (5, 2000),
        (6, 2000),
        (7, 500),
        (8, 500),
        (9, 300),
        (10, 300),
    ];
    let events: Vec<Event> = expected
        .iter()
        .map(|(g, _)| {
            Event::WorkInjury(WorkInjury {
                appraised_on: d("2022-06-01"),
                grade: InjuryGrade::Grade(*g),
            })
        })
        .chain([Event::WorkInjury(WorkInjury {
            appraised_on: d("2022-07-01"),
            grade: InjuryGrade::Death,
        })])
        .collect();
    let js = judge_all(&s, &year(2022), events);
    for (j, (g, amount)) in js.iter().zip(expected) {
        assert_eq!(
            items(j),
            vec![(ItemCode::WorkInjury, Decimal::from(amount))],
            "grade {g}"
        );
    }
    assert_eq!(js[10].payable(), dec!(5000));
}

#[test]
fn wj_a_work_injury_appraised_outside_coverage_is_refused() {
    let e = Event::WorkInjury(WorkInjury {
        appraised_on: d("2023-01-02"),
        grade: InjuryGrade::Grade(3),
    });
    assert_eq!(
        one(&scheme("wj-2022"), &year(2022), e).refused,
        Some(Refusal::OutsideCoverage)
    );
}

#[test]
fn a_known_event_kind_the_scheme_does_not_use_is_refused_wrong_event_kind() {
    let wi = Event::WorkInjury(WorkInjury {
        appraised_on: d("2022-06-01"),
        grade: InjuryGrade::Grade(3),
    });
    assert_eq!(
        one(&scheme("yc-2022"), &year(2022), wi.clone()).refused,
        Some(Refusal::WrongEventKind)
    );
    assert_eq!(
        one(&scheme("nm-inpatient-2022"), &nm_member(), wi).refused,
        Some(Refusal::WrongEventKind)
    );
    assert_eq!(
        one(&scheme("wj-2022"), &year(2022), month(2022, 3, dec!(100))).refused,
        Some(Refusal::WrongEventKind)
    );
}

// ---------------------------------------------------------------- hy-2021

fn hy_completed() -> SchemeDefinition {
    let mut s = scheme("hy-2021");
    s.missing.clear();
    if let Some(r) = s.inpatient.as_mut() {
        r.bands = Some(vec![Band {
            from: dec!(0),
            to: None,
            rate: dec!(0.5),
        }]);
    }
    if let Some(dg) = s.diagnosis.as_mut() {
        dg.benefits = Some(DiagnosisBenefits {
            default_amount: dec!(10000),
            by_disease: Default::default(),
            in_situ_amount: None,
            rehabilitation_grant: None,
            condolence_in_observation: None,
        });
    }
    s
}

#[test]
fn hy_2021_ships_incomplete_and_lists_its_missing_parameters() {
    let s = scheme("hy-2021");
    assert!(!s.is_complete());
    assert_eq!(
        s.missing_parameters(),
        [
            "inpatient.bands".to_owned(),
            "diagnosis.benefits".to_owned()
        ]
    );
    assert_eq!(s.validate(), Ok(()));
}

#[test]
fn hy_2021_is_refused_scheme_incomplete_with_its_missing_list() {
    let e = sim_err(
        json!({"scheme": "hy-2021", "member": {"coverage_start": "2021-01-01", "coverage_end": "2021-12-31"}, "events": []}),
    );
    assert_eq!(e.code, ErrorCode::SchemeIncomplete);
    assert_eq!(
        e.details,
        json!({"missing": ["inpatient.bands", "diagnosis.benefits"]})
    );
}

#[test]
fn hy_a_completed_version_validates_and_pays_the_second_grant_on_what_the_member_still_pays() {
    let s = hy_completed();
    assert_eq!(s.validate(), Ok(()));
    // 220000 at 50% → 110000 first grant; still paid 110000 → second grant 10000.
    let e = Event::Inpatient(Stay {
        eligible_self_pay: Some(dec!(220000)),
        ..stay("2021-03-01", "2021-03-05")
    });
    let j = one(&s, &year(2021), e);
    assert_eq!(
        items(&j),
        vec![
            (ItemCode::Banded, dec!(110000)),
            (ItemCode::SecondGrant, dec!(10000))
        ]
    );
    // 100000 → 50000 still paid → [50000, 100000) 6000.
    let e = Event::Inpatient(Stay {
        eligible_self_pay: Some(dec!(100000)),
        ..stay("2021-03-01", "2021-03-05")
    });
    assert_eq!(
        one(&s, &year(2021), e).item(ItemCode::SecondGrant),
        dec!(6000)
    );
}

#[test]
fn hy_a_completed_version_refuses_in_situ_and_knows_its_own_disease_codes() {
    let s = hy_completed();
    let lookup_hy = |code: &str| (code == "hy-2021").then_some((&s, 2));
    let req = |disease: &str, in_situ: bool| {
        json!({"scheme": "hy-2021", "member": {"coverage_start": "2021-01-01", "coverage_end": "2021-12-31"},
               "events": [{"kind": "diagnosis", "diagnosed_on": "2021-05-01", "disease": disease, "in_situ": in_situ}]})
    };
    let r = simulate(&req("prostate_cancer", false), lookup_hy).expect("accepted");
    assert_eq!(r.results[0].payable, dec!(10000));
    let r = simulate(&req("prostate_cancer", true), lookup_hy).expect("accepted");
    assert_eq!(r.results[0].refused, Some(Refusal::NotCoveredDisease));
    // Under another scheme the hy-only code is unknown.
    let e = sim_err(
        json!({"scheme": "wj-2022", "member": {"coverage_start": "2022-01-01", "coverage_end": "2022-12-31"},
        "events": [{"kind": "diagnosis", "diagnosed_on": "2022-05-01", "disease": "prostate_cancer"}]}),
    );
    assert_eq!(field_of(&e), "events[0].disease");
}

// ---------------------------------------------------------------- the contract

#[test]
fn the_response_serialises_in_contract_order_with_null_refusal_and_two_decimal_strings() {
    let body = sim(nm_request(json!([{"kind": "inpatient", "admitted_on": "2022-06-01", "discharged_on": "2022-06-11",
        "billed_days": 10, "eligible_self_pay": "12000.00", "deductible": "800.00", "cause": "illness"}])))
    .expect("ok");
    let text = serde_json::to_string(&body).expect("text");
    assert_eq!(
        text,
        r#"{"period_total":"6900.00","results":[{"index":0,"items":[{"amount":"6600.00","code":"banded"},{"amount":"300.00","code":"daily_allowance"}],"payable":"6900.00","refused":null}],"scheme":"nm-inpatient-2022","scheme_version":1}"#
    );
    // Field order of the struct itself (serde_json::Value above sorts keys).
    let r = simulate(&nm_request(json!([])), lookup).expect("ok");
    assert_eq!(
        serde_json::to_string(&r).expect("text"),
        r#"{"scheme":"nm-inpatient-2022","scheme_version":1,"results":[],"period_total":"0.00"}"#
    );
}

#[test]
fn a_refused_event_has_zero_payable_no_items_and_its_refusal_code() {
    let body = sim(json!({"scheme": "nm-xinkang-2022", "member": {"coverage_start": "2022-06-01", "coverage_end": "2023-05-31"},
        "events": [{"kind": "inpatient", "admitted_on": "2022-07-01", "discharged_on": "2022-07-02"}]}))
    .expect("ok");
    assert_eq!(
        body["results"][0],
        json!({"index": 0, "payable": "0.00", "refused": "wrong_event_kind", "items": []})
    );
}

#[test]
fn the_error_body_is_wrapped_in_error_with_code_message_and_details() {
    let e = sim(json!({"scheme": "xx", "member": {}, "events": []})).expect_err("refused");
    let text =
        serde_json::to_string(&simulate(&json!({"scheme": "xx"}), lookup).expect_err("refused"))
            .expect("text");
    assert!(
        text.starts_with(r#"{"error":{"code":"unknown_scheme","message":"#),
        "{text}"
    );
    assert_eq!(e["error"]["code"], "unknown_scheme");
}

#[test]
fn validation_order_is_unknown_scheme_then_scheme_incomplete_then_invalid_request() {
    let bad = json!({"scheme": "nope", "member": 3, "extra": true, "events": "x"});
    assert_eq!(sim_err(bad).code, ErrorCode::UnknownScheme);
    let bad = json!({"scheme": "hy-2021", "member": 3, "extra": true, "events": "x"});
    assert_eq!(sim_err(bad).code, ErrorCode::SchemeIncomplete);
    let bad = json!({"scheme": "wj-2022", "member": 3, "events": []});
    assert_eq!(sim_err(bad).code, ErrorCode::InvalidRequest);
}

#[test]
fn an_unknown_field_anywhere_is_invalid_request_with_its_path() {
    let e = sim_err(
        json!({"scheme": "wj-2022", "member": {"coverage_start": "2022-01-01", "coverage_end": "2022-12-31"}, "events": [], "x": 1}),
    );
    assert_eq!(field_of(&e), "x");
    let e = sim_err(
        json!({"scheme": "wj-2022", "member": {"coverage_start": "2022-01-01", "coverage_end": "2022-12-31", "name": "张三"}, "events": []}),
    );
    assert_eq!(field_of(&e), "member.name");
    let e = sim_err(nm_request(
        json!([{"kind": "outpatient_special", "month": "2022-07", "eligible_self_pay": "1.00", "deductible": "1.00"}]),
    ));
    assert_eq!(field_of(&e), "events[0].deductible");
}

#[test]
fn an_unknown_event_kind_is_invalid_request_on_its_kind() {
    let e = sim_err(nm_request(json!([{"kind": "dental"}])));
    assert_eq!(
        (e.code, field_of(&e)),
        (ErrorCode::InvalidRequest, "events[0].kind")
    );
    let e = sim_err(nm_request(json!([{"admitted_on": "2022-06-01"}])));
    assert_eq!(field_of(&e), "events[0].kind");
}

#[test]
fn an_unknown_disease_code_is_invalid_request_and_a_known_uncovered_one_is_refused() {
    let e = sim_err(
        json!({"scheme": "nm-xinkang-2022", "member": {"coverage_start": "2022-06-01", "coverage_end": "2023-05-31"},
        "events": [{"kind": "diagnosis", "diagnosed_on": "2022-09-01", "disease": "flu"}]}),
    );
    assert_eq!(field_of(&e), "events[0].disease");
    let body = sim(json!({"scheme": "nm-xinkang-2022", "member": {"coverage_start": "2022-06-01", "coverage_end": "2023-05-31"},
        "events": [{"kind": "diagnosis", "diagnosed_on": "2022-09-01", "disease": "critical_illness"}]}))
    .expect("ok");
    assert_eq!(body["results"][0]["refused"], "not_covered_disease");
}

#[test]
fn an_unknown_cause_is_invalid_request_on_its_cause() {
    let e = sim_err(nm_request(
        json!([{"kind": "inpatient", "admitted_on": "2022-06-01", "discharged_on": "2022-06-02", "eligible_self_pay": "1.00", "cause": "boredom"}]),
    ));
    assert_eq!(field_of(&e), "events[0].cause");
}

#[test]
fn a_field_the_event_kind_knows_but_the_scheme_does_not_use_is_accepted_and_ignored() {
    let body = sim(json!({"scheme": "yc-2022", "member": {"coverage_start": "2022-01-01", "coverage_end": "2022-12-31"},
        "events": [{"kind": "inpatient", "admitted_on": "2022-04-06", "discharged_on": "2022-04-20", "personal_burden": "12000.00",
                    "deductible": "800.00", "eligible_self_pay": "5.00", "billed_days": 14, "settled_by_insurance": false}]}))
    .expect("ok");
    assert_eq!(body["period_total"], "5700.00");
}

#[test]
fn a_negative_amount_is_invalid_request_on_its_field() {
    let e = sim_err(nm_request(
        json!([{"kind": "inpatient", "admitted_on": "2022-06-01", "discharged_on": "2022-06-02", "eligible_self_pay": "-1.00"}]),
    ));
    assert_eq!(
        (e.code, field_of(&e)),
        (ErrorCode::InvalidRequest, "events[0].eligible_self_pay")
    );
}

#[test]
fn an_amount_with_more_than_two_decimals_is_invalid_request_on_its_field() {
    let e = sim_err(nm_request(json!([
        {"kind": "outpatient_special", "month": "2022-07", "eligible_self_pay": "1.00"},
        {"kind": "outpatient_special", "month": "2022-08", "eligible_self_pay": "1.001"}])));
    assert_eq!(field_of(&e), "events[1].eligible_self_pay");
}

#[test]
fn a_non_numeric_amount_is_invalid_request_on_its_field() {
    for bad in [
        json!("abc"),
        json!(""),
        json!("1e3"),
        json!("+5"),
        json!(" 5"),
        json!("5."),
        json!(true),
    ] {
        let e = sim_err(nm_request(
            json!([{"kind": "inpatient", "admitted_on": "2022-06-01", "discharged_on": "2022-06-02", "eligible_self_pay": bad}]),
        ));
        assert_eq!(field_of(&e), "events[0].eligible_self_pay", "{bad}");
    }
}

#[test]
fn a_json_number_amount_is_invalid_request_because_money_travels_as_strings() {
    let e = sim_err(nm_request(
        json!([{"kind": "inpatient", "admitted_on": "2022-06-01", "discharged_on": "2022-06-02", "eligible_self_pay": 12000}]),
    ));
    assert_eq!(field_of(&e), "events[0].eligible_self_pay");
}

#[test]
fn amounts_without_decimals_or_with_one_decimal_are_accepted() {
    assert_eq!(parse_amount("12000"), Ok(dec!(12000)));
    assert_eq!(parse_amount("12000.5"), Ok(dec!(12000.5)));
    assert_eq!(parse_amount("-1"), Err(MoneyError::Negative));
    assert_eq!(parse_amount("1.234"), Err(MoneyError::Precision));
    assert_eq!(parse_amount("99999999999999"), Err(MoneyError::Overflow));
}

#[test]
fn a_missing_amount_field_the_scheme_needs_is_invalid_request_on_that_field() {
    let e = sim_err(nm_request(
        json!([{"kind": "inpatient", "admitted_on": "2022-06-01", "discharged_on": "2022-06-02", "personal_burden": "5.00"}]),
    ));
    assert_eq!(field_of(&e), "events[0].eligible_self_pay");
    let wj = |event: Value| json!({"scheme": "wj-2022", "member": {"coverage_start": "2022-01-01", "coverage_end": "2022-12-31"}, "events": [event]});
    let e = sim_err(wj(
        json!({"kind": "inpatient", "admitted_on": "2022-06-01", "discharged_on": "2022-06-02", "settled_by_insurance": false}),
    ));
    assert_eq!(field_of(&e), "events[0].unsettled_cost");
    let e = sim_err(wj(
        json!({"kind": "inpatient", "admitted_on": "2022-06-01", "discharged_on": "2022-06-02", "settled_by_insurance": false, "cause": "traffic_accident", "unsettled_cost": "5.00"}),
    ));
    assert_eq!(field_of(&e), "events[0].own_liability_cost");
    let e = sim_err(nm_request(
        json!([{"kind": "outpatient_special", "month": "2022-07"}]),
    ));
    assert_eq!(field_of(&e), "events[0].eligible_self_pay");
}

#[test]
fn a_discharge_before_admission_is_invalid_request_on_discharged_on() {
    let e = sim_err(nm_request(
        json!([{"kind": "inpatient", "admitted_on": "2022-06-02", "discharged_on": "2022-06-01", "eligible_self_pay": "1.00"}]),
    ));
    assert_eq!(field_of(&e), "events[0].discharged_on");
}

#[test]
fn malformed_dates_months_and_grades_are_invalid_request_on_their_field() {
    let e = sim_err(nm_request(
        json!([{"kind": "inpatient", "admitted_on": "2022-13-01", "discharged_on": "2022-06-01", "eligible_self_pay": "1.00"}]),
    ));
    assert_eq!(field_of(&e), "events[0].admitted_on");
    let e = sim_err(nm_request(
        json!([{"kind": "outpatient_special", "month": "2022-7", "eligible_self_pay": "1.00"}]),
    ));
    assert_eq!(field_of(&e), "events[0].month");
    let e = sim_err(
        json!({"scheme": "wj-2022", "member": {"coverage_start": "2022-01-01", "coverage_end": "2022-12-31"},
        "events": [{"kind": "work_injury", "appraised_on": "2022-06-01", "grade": 11}]}),
    );
    assert_eq!(field_of(&e), "events[0].grade");
    let e = sim_err(nm_request(
        json!([{"kind": "inpatient", "admitted_on": "2022-06-01", "discharged_on": "2022-06-02", "eligible_self_pay": "1.00", "billed_days": -1}]),
    ));
    assert_eq!(field_of(&e), "events[0].billed_days");
}

#[test]
fn member_problems_are_invalid_request_on_the_member_field() {
    let e = sim_err(
        json!({"scheme": "wj-2022", "member": {"coverage_start": "2022-12-31", "coverage_end": "2022-01-01"}, "events": []}),
    );
    assert_eq!(field_of(&e), "member.coverage_end");
    let e = sim_err(
        json!({"scheme": "wj-2022", "member": {"coverage_start": "2022-01-01", "coverage_end": "2022-12-31", "consecutive_periods": 0}, "events": []}),
    );
    assert_eq!(field_of(&e), "member.consecutive_periods");
    let e = sim_err(
        json!({"scheme": "wj-2022", "member": {"coverage_end": "2022-12-31"}, "events": []}),
    );
    assert_eq!(field_of(&e), "member.coverage_start");
    let e = sim_err(json!({"scheme": "wj-2022", "events": []}));
    assert_eq!(field_of(&e), "member");
}

#[test]
fn member_defaults_are_a_first_period_without_continuous_renewal() {
    let body = sim(json!({"scheme": "nm-inpatient-2022", "member": {"coverage_start": "2022-05-11", "coverage_end": "2023-05-10"},
        "events": [{"kind": "inpatient", "admitted_on": "2023-05-06", "discharged_on": "2023-05-16", "billed_days": 10, "eligible_self_pay": "12000.00"}]}))
    .expect("ok");
    // 10/day, 5 covered days; banded 6600 × 5/10.
    assert_eq!(
        body["results"][0]["items"],
        json!([{"code": "banded", "amount": "3300.00"}, {"code": "daily_allowance", "amount": "50.00"}])
    );
}

#[test]
fn the_period_total_is_the_sum_of_the_payables() {
    let body = sim(json!({"scheme": "wj-2022", "member": {"coverage_start": "2022-01-01", "coverage_end": "2022-12-31"},
        "events": [
            {"kind": "inpatient", "admitted_on": "2022-03-02", "discharged_on": "2022-03-09", "out_of_pocket": "3000.00"},
            {"kind": "diagnosis", "diagnosed_on": "2022-04-01", "disease": "critical_illness"},
            {"kind": "work_injury", "appraised_on": "2022-05-01", "grade": "death"},
            {"kind": "outpatient_special", "month": "2022-07", "eligible_self_pay": "100.00"}]}))
    .expect("ok");
    assert_eq!(body["period_total"], "10500.00");
    assert_eq!(body["results"][3]["refused"], "wrong_event_kind");
}

#[test]
fn a_request_that_is_not_an_object_or_lacks_a_scheme_is_invalid_request() {
    assert_eq!(field_of(&sim_err(json!([1, 2]))), "");
    assert_eq!(field_of(&sim_err(json!({"member": {}}))), "scheme");
    assert_eq!(field_of(&sim_err(json!({"scheme": 5}))), "scheme");
}

// ---------------------------------------------------------------- scheme validation

fn valid() -> SchemeDefinition {
    scheme("nm-inpatient-2022")
}

fn problems(s: &SchemeDefinition) -> Vec<String> {
    s.validate()
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.path)
        .collect()
}

#[test]
fn every_seed_scheme_parses_and_validates() {
    let seeds = seed_schemes().expect("seeds load");
    let codes: Vec<&str> = seeds.iter().map(|s| s.code()).collect();
    assert_eq!(
        codes,
        [
            "nm-inpatient-2022",
            "nm-inpatient-2025",
            "nm-xinkang-2022",
            "nm-xinkang-2025",
            "yc-2022",
            "wj-2022",
            "hy-2021"
        ]
    );
    assert!(
        seeds
            .iter()
            .filter(|s| s.code != "hy-2021")
            .all(SchemeDefinition::is_complete)
    );
}

#[test]
fn a_scheme_definition_round_trips_through_json_for_storage() {
    for s in seed_schemes().expect("seeds load") {
        let text = serde_json::to_string(&s).expect("serialises");
        let back: SchemeDefinition = serde_json::from_str(&text).expect("deserialises");
        assert_eq!(back, s);
    }
}

#[test]
fn validation_refuses_bands_that_are_not_contiguous() {
    let mut s = valid();
    if let Some(b) = s.inpatient.as_mut().and_then(|r| r.bands.as_mut()) {
        b[2].from = dec!(5500);
    }
    assert_eq!(problems(&s), ["inpatient.bands[2].from"]);
}

#[test]
fn validation_refuses_offer_review_data_for_a_kind_twice_or_a_kind_not_judged() {
    let mut s = valid();
    let mut again = s.offers[0].clone();
    s.offers.push(again.clone());
    again.claim_kind = EventKind::WorkInjury;
    s.offers.push(again);
    assert_eq!(
        problems(&s),
        ["offers[1].claim_kind", "offers[2].claim_kind"]
    );
}

#[test]
fn the_association_stage_cannot_be_skipped_by_an_offer() {
    // Only the checks before the money may be skipped: the data cannot name the association.
    let mut s = serde_json::to_value(valid()).expect("json");
    s["offers"][0]["skip_stages"] = json!(["union", "association"]);
    assert!(serde_json::from_value::<SchemeDefinition>(s).is_err());
}

#[test]
fn validation_refuses_bands_out_of_order() {
    let mut s = valid();
    if let Some(b) = s.inpatient.as_mut().and_then(|r| r.bands.as_mut()) {
        b.swap(1, 2);
    }
    assert!(problems(&s).contains(&"inpatient.bands[1].from".to_owned()));
}

#[test]
fn validation_refuses_a_band_whose_upper_edge_is_not_above_its_lower_edge() {
    let mut s = valid();
    if let Some(b) = s.inpatient.as_mut().and_then(|r| r.bands.as_mut()) {
        b[0].to = Some(dec!(0));
    }
    assert!(problems(&s).contains(&"inpatient.bands[0].to".to_owned()));
}

#[test]
fn validation_refuses_bands_that_do_not_start_at_the_fixed_deductible() {
    let mut s = scheme("yc-2022");
    if let Some(r) = s.inpatient.as_mut() {
        r.deductible.fixed = dec!(800);
    }
    assert_eq!(problems(&s), ["inpatient.bands[0].from"]);
}

#[test]
fn validation_refuses_rates_outside_zero_to_one() {
    let mut s = valid();
    if let Some(b) = s.inpatient.as_mut().and_then(|r| r.bands.as_mut()) {
        b[0].rate = dec!(1.01);
        b[1].rate = dec!(-0.1);
    }
    if let Some(c) = s.enrolment.min_participation.as_mut() {
        *c = dec!(75);
    }
    assert_eq!(
        problems(&s),
        [
            "enrolment.min_participation",
            "inpatient.bands[0].rate",
            "inpatient.bands[1].rate"
        ]
    );
}

#[test]
fn validation_refuses_negative_amounts() {
    let mut s = valid();
    s.fees.in_service = dec!(-1);
    if let Some(r) = s.inpatient.as_mut() {
        r.period_cap = Some(dec!(-5));
        r.minimum = Some(dec!(-200));
    }
    assert_eq!(
        problems(&s),
        [
            "fees.in_service",
            "inpatient.period_cap",
            "inpatient.minimum"
        ]
    );
    let mut w = scheme("wj-2022");
    if let Some(b) = w
        .inpatient
        .as_mut()
        .and_then(|r| r.accumulated_brackets.as_mut())
    {
        b[0].amount = dec!(-500);
    }
    assert_eq!(problems(&w), ["inpatient.accumulated_brackets[0].amount"]);
}

#[test]
fn validation_refuses_brackets_whose_shared_edge_is_in_both_or_neither() {
    let mut s = scheme("yc-2022");
    if let Some(b) = s.inpatient.as_mut().and_then(|r| r.extra_grant.as_mut()) {
        b[1].from_inclusive = true;
    }
    assert_eq!(problems(&s), ["inpatient.extra_grant[1].from_inclusive"]);
}

#[test]
fn validation_refuses_accumulated_brackets_that_pay_less_as_the_total_grows() {
    let mut s = scheme("wj-2022");
    if let Some(b) = s
        .inpatient
        .as_mut()
        .and_then(|r| r.accumulated_brackets.as_mut())
    {
        b[3].amount = dec!(100);
    }
    assert_eq!(problems(&s), ["inpatient.accumulated_brackets[3].amount"]);
}

#[test]
fn validation_refuses_an_absent_required_parameter_not_listed_as_missing() {
    let mut s = valid();
    if let Some(r) = s.inpatient.as_mut() {
        r.bands = None;
    }
    assert_eq!(problems(&s), ["inpatient.bands"]);
    let mut x = scheme("nm-xinkang-2022");
    if let Some(dg) = x.diagnosis.as_mut() {
        dg.benefits = None;
    }
    assert_eq!(problems(&x), ["diagnosis.benefits"]);
    let mut w = scheme("wj-2022");
    w.work_injury = None;
    assert_eq!(problems(&w), ["work_injury"]);
}

#[test]
fn validation_refuses_a_missing_list_naming_a_present_or_unknown_parameter() {
    let mut s = valid();
    s.missing = vec!["inpatient.bands".into(), "inpatient.colour".into()];
    assert_eq!(problems(&s), ["missing[0]", "missing[1]"]);
}

#[test]
fn validation_refuses_a_calendar_year_scheme_without_its_year() {
    let mut s = scheme("yc-2022");
    s.coverage.year = None;
    assert_eq!(problems(&s), ["coverage.year"]);
}

#[test]
fn validation_refuses_a_grade_table_that_does_not_cover_grades_1_to_10_once() {
    let mut s = scheme("wj-2022");
    if let Some(w) = s.work_injury.as_mut() {
        w.grades.pop();
    }
    assert_eq!(problems(&s), ["work_injury.grades", "work_injury.grades"]);
}

#[test]
fn validation_refuses_an_event_kind_without_materials() {
    let mut s = valid();
    s.materials
        .retain(|m| m.claim_kind != EventKind::OutpatientSpecial);
    assert_eq!(problems(&s), ["materials"]);
}

#[test]
fn validation_reports_each_problem_with_a_path_and_a_reason() {
    let mut s = valid();
    s.code = String::new();
    let found = s.validate().expect_err("invalid");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, "code");
    assert!(!found[0].reason.is_empty());
}

#[test]
fn a_scheme_toml_with_an_unknown_key_does_not_parse() {
    let text = super::seeds::SEED_FILES[0].1.replace(
        "code = \"nm-inpatient-2022\"",
        "code = \"nm-inpatient-2022\"\ncolour = \"red\"",
    );
    assert!(super::seeds::parse_scheme_toml(&text).is_err());
}

#[test]
fn the_display_data_carries_what_the_mini_program_shows() {
    for s in seed_schemes().expect("seeds load") {
        assert!(!s.display.display_name_zh.is_empty(), "{}", s.code);
        assert!(!s.display.what_is_paid_zh.is_empty(), "{}", s.code);
        assert!(!s.display.who_may_join_zh.is_empty(), "{}", s.code);
        assert_eq!(s.coverage.grace_days, 15, "{}", s.code);
        for kind in &s.event_kinds {
            assert!(
                s.materials.iter().any(|m| m.claim_kind == *kind),
                "{} {kind:?}",
                s.code
            );
        }
    }
    let x = scheme("nm-xinkang-2025");
    assert_eq!(
        (x.coverage.observation_days, x.fees.in_service),
        (30, dec!(35))
    );
}
