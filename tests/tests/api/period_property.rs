//! The period rule through the whole service, on both backends: for every complete seed scheme,
//! random sequences of claims are filed, some returned for a photo and resubmitted (before
//! their union approves them, or by the association right before it approves), and approved
//! at the association in a random order. After every approval:
//!
//! - `Σ granted − open offset` equals the simulation of the approved claims in filing order, to
//!   the fen (`period_total`);
//! - no claim is granted a negative amount;
//! - what the period was granted in all is the largest filing-order total it ever had (so it
//!   never passes a cap the simulation keeps: a grant is never taken back, and nothing is
//!   granted beyond what the period owed at some point).
//!
//! Cases come from proptest strategies run with a fixed seed (`TestRunner::deterministic`), a
//! reduced count per scheme (each case files and photographs every claim over HTTP);
//! `HUZHU_PERIOD_CASES` raises it. The engine's own property test
//! (`engine::period`, thousands of cases) covers the same invariant without the database.

use chrono::{Duration, NaiveDate};
use huzhu::settings::Settings;
use huzhu_tests::claim_flow::{
    Period, act, dec, detail, file, period, simulate, upload_required_small,
};
use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends_with;
use huzhu_tests::pictures;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn in_2025(s: &mut Settings) {
    s.clock.today = NaiveDate::from_ymd_opt(2025, 9, 15);
}

fn in_2023(s: &mut Settings) {
    s.clock.today = NaiveDate::from_ymd_opt(2023, 6, 1);
}

/// A claim before it is dressed as one scheme's event.
#[derive(Clone, Debug)]
struct Stay {
    /// Days after the coverage start.
    start: u32,
    days: u32,
    amount_fen: i64,
    deductible_fen: i64,
    /// Which disease (diagnosis schemes) or cause (Wujin).
    variant: usize,
    /// Returned by the union for a new invoice before it approves.
    returned_early: bool,
    /// Returned by the association right before it approves.
    returned_late: bool,
}

#[derive(Clone, Debug)]
struct Case {
    stays: Vec<Stay>,
    /// The association's order of approval (indices into `stays`, which are in filing order).
    order: Vec<usize>,
}

fn case_strategy(max_amount_fen: i64) -> impl Strategy<Value = Case> {
    let stay = (
        0u32..200,
        1u32..40,
        10_000i64..max_amount_fen,
        0i64..200_000,
        0usize..3,
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(start, days, amount_fen, deductible_fen, variant, early, late)| Stay {
                start,
                days,
                amount_fen,
                deductible_fen,
                variant,
                returned_early: early,
                returned_late: late,
            },
        );
    prop::collection::vec(stay, 2..=4).prop_flat_map(|stays| {
        let n = stays.len();
        (Just(stays), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
            .prop_map(|(stays, order)| Case { stays, order })
    })
}

fn money(fen: i64) -> String {
    Decimal::new(fen, 2).to_string()
}

/// A scheme under test: who reviews its claims and how a stay reads in its terms.
struct SchemeUnderTest {
    code: &'static str,
    union: &'static str,
    service_point: &'static str,
    max_amount_fen: i64,
}

impl SchemeUnderTest {
    fn event(&self, p: &Period, today: NaiveDate, s: &Stay) -> Value {
        let start: NaiveDate = p.coverage_start.parse().expect("start");
        let end: NaiveDate = p.coverage_end.parse().expect("end");
        // Inside coverage, and over before today.
        let last = end.min(today - Duration::days(1));
        let room = (last - start).num_days().max(1);
        let admitted = start + Duration::days(i64::from(s.start) % room);
        let discharged = (admitted + Duration::days(i64::from(s.days))).min(last);
        let days = (discharged - admitted).num_days().max(1);
        let (a, d) = (admitted.to_string(), discharged.to_string());
        match self.code {
            "nm-inpatient-2025" => json!({"kind": "inpatient", "admitted_on": a,
                "discharged_on": d, "billed_days": days, "eligible_self_pay": money(s.amount_fen),
                "deductible": money(s.deductible_fen)}),
            "nm-inpatient-2022" => json!({"kind": "inpatient", "admitted_on": a,
                "discharged_on": d, "billed_days": days, "eligible_self_pay": money(s.amount_fen)}),
            "nm-xinkang-2025" | "nm-xinkang-2022" => {
                let disease = [
                    "breast_cancer",
                    "cervical_cancer_or_hysterectomy",
                    "ovarian_cancer_or_oophorectomy",
                ][s.variant];
                json!({"kind": "diagnosis", "diagnosed_on": a, "disease": disease})
            }
            "wj-2022" => {
                let cause = ["illness", "maternity", "illness"][s.variant];
                json!({"kind": "inpatient", "admitted_on": a, "discharged_on": d,
                    "out_of_pocket": money(s.amount_fen), "cause": cause})
            }
            "yc-2022" => json!({"kind": "inpatient", "admitted_on": a, "discharged_on": d,
                "personal_burden": money(s.amount_fen)}),
            other => panic!("no event for {other}"),
        }
    }
}

fn cases() -> u32 {
    std::env::var("HUZHU_PERIOD_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// Returns the claim for a new invoice (as `reviewer`), the member photographs it and
/// resubmits: it is back in `reviewer`'s queue, in its filing place.
async fn return_and_resubmit(app: &TestApp, reviewer: &str, member: &str, claim: &str, seed: u64) {
    let (status, body) = act(
        app,
        reviewer,
        claim,
        "return",
        json!({"message": "发票不清晰", "materials": [{"category": "invoice", "note": "请重拍"}]}),
    )
    .await;
    assert_eq!(status, 200, "return: {body}");
    let (status, body) = huzhu_tests::claim_flow::upload(
        app,
        member,
        claim,
        "invoice",
        pictures::small_document_jpeg(seed),
        "invoice.jpg",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = act(app, member, claim, "submit", json!({})).await;
    assert_eq!(status, 200, "resubmit: {body}");
}

async fn run_scheme(app: &TestApp, s: &SchemeUnderTest, today: NaiveDate) {
    let mut runner = TestRunner::deterministic();
    let strategy = case_strategy(s.max_amount_fen);
    let union = app.login(s.union).await;
    let sp = app.login(s.service_point).await;
    let officer = app.login("association").await;
    // One fresh period per case: as many cases as the demo has periods of the scheme there.
    let (status, page) = app
        .get(
            &format!("/api/v1/memberships?scheme={}&limit=100", s.code),
            Some(&union),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let periods = page["items"].as_array().map_or(0, Vec::len) as u32;
    assert!(periods >= 2, "{}: the demo has {periods} periods", s.code);
    for n in 0..cases().min(periods) {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        let p = period(app, s.union, s.code, n as usize).await;
        let member = app.login(&p.member_pid).await;
        let events: Vec<Value> = case.stays.iter().map(|st| s.event(&p, today, st)).collect();
        let context = format!("{} case {n}: {case:?}", s.code);

        // Filed in order; each through the union and the service point.
        let mut claims = Vec::new();
        for (i, (event, stay)) in events.iter().zip(&case.stays).enumerate() {
            let seed = 70_000 + u64::from(n) * 100 + i as u64 * 10;
            let draft = file(app, &member, &p, event.clone()).await;
            let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
            upload_required_small(app, &member, &draft, seed).await;
            let (status, body) = act(app, &member, &claim, "submit", json!({})).await;
            assert_eq!(status, 200, "{context}: submit {body}");
            if stay.returned_early {
                return_and_resubmit(app, &union, &member, &claim, seed + 7).await;
            }
            for reviewer in [&union, &sp] {
                let (status, body) = act(app, reviewer, &claim, "approve", json!({})).await;
                assert_eq!(status, 200, "{context}: {body}");
            }
            claims.push(claim);
        }

        // Approved in a random order; a refused claim is rejected instead.
        let mut approved: Vec<usize> = Vec::new();
        let mut highest = Decimal::ZERO;
        for &i in &case.order {
            if case.stays[i].returned_late {
                let seed = 90_000 + u64::from(n) * 100 + i as u64;
                return_and_resubmit(app, &officer, &member, &claims[i], seed).await;
            }
            let (status, body) = act(app, &officer, &claims[i], "approve", json!({})).await;
            if status == 422 && body["error"]["code"] == "claim_not_payable" {
                let (status, body) = act(
                    app,
                    &officer,
                    &claims[i],
                    "reject",
                    json!({"reason": "other", "note": "按提交顺序不予给付"}),
                )
                .await;
                assert_eq!(status, 200, "{context}: reject {body}");
                continue;
            }
            assert_eq!(status, 200, "{context}: approve {i}: {body}");
            approved.push(i);
            approved.sort_unstable();

            let mut granted = Decimal::ZERO;
            let mut offset = None;
            for &j in &approved {
                let d = detail(app, &officer, &claims[j]).await;
                let amount = dec(&d["claim"]["approved"]);
                assert!(amount >= Decimal::ZERO, "{context}: {d}");
                granted += amount;
                offset = Some(dec(&d["period"]["open_offset"]));
            }
            let offset = offset.expect("an approved claim");
            let sim = simulate(
                app,
                s.code,
                &p,
                approved.iter().map(|&j| events[j].clone()).collect(),
            )
            .await;
            let total = dec(&sim["period_total"]);
            assert_eq!(
                granted - offset,
                total,
                "{context}: after approving {i} (approved {approved:?}): granted {granted}, offset {offset}, {sim}"
            );
            highest = highest.max(total);
            assert_eq!(
                granted, highest,
                "{context}: granted beyond the highest total"
            );
        }
    }
}

const NM_2025: SchemeUnderTest = SchemeUnderTest {
    code: "nm-inpatient-2025",
    union: "union-power",
    service_point: "sp-xincheng",
    max_amount_fen: 30_000_000,
};
const XINKANG_2025: SchemeUnderTest = SchemeUnderTest {
    code: "nm-xinkang-2025",
    union: "union-power",
    service_point: "sp-xincheng",
    max_amount_fen: 20_000,
};
const NM_2022: SchemeUnderTest = SchemeUnderTest {
    code: "nm-inpatient-2022",
    union: "union-hospital",
    service_point: "sp-xincheng",
    max_amount_fen: 30_000_000,
};
const XINKANG_2022: SchemeUnderTest = SchemeUnderTest {
    code: "nm-xinkang-2022",
    union: "union-hospital",
    service_point: "sp-xincheng",
    max_amount_fen: 20_000,
};
const WUJIN: SchemeUnderTest = SchemeUnderTest {
    code: "wj-2022",
    union: "union-education",
    service_point: "sp-saihan",
    max_amount_fen: 20_000_000,
};
const YINCHUAN: SchemeUnderTest = SchemeUnderTest {
    code: "yc-2022",
    union: "union-dairy",
    service_point: "sp-saihan",
    max_amount_fen: 15_000_000,
};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

async fn nm_inpatient_2025_periods_pay_their_filing_order_total(app: TestApp) {
    run_scheme(&app, &NM_2025, day(2025, 9, 15)).await;
}

async fn nm_xinkang_2025_periods_pay_their_filing_order_total(app: TestApp) {
    run_scheme(&app, &XINKANG_2025, day(2025, 9, 15)).await;
}

async fn wujin_periods_pay_their_filing_order_total(app: TestApp) {
    run_scheme(&app, &WUJIN, day(2025, 9, 15)).await;
}

async fn yinchuan_periods_pay_their_filing_order_total(app: TestApp) {
    run_scheme(&app, &YINCHUAN, day(2025, 9, 15)).await;
}

async fn nm_inpatient_2022_periods_pay_their_filing_order_total(app: TestApp) {
    run_scheme(&app, &NM_2022, day(2023, 6, 1)).await;
}

async fn nm_xinkang_2022_periods_pay_their_filing_order_total(app: TestApp) {
    run_scheme(&app, &XINKANG_2022, day(2023, 6, 1)).await;
}

on_both_backends_with!(period_property_2025, in_2025 =>
    nm_inpatient_2025_periods_pay_their_filing_order_total,
    nm_xinkang_2025_periods_pay_their_filing_order_total,
    wujin_periods_pay_their_filing_order_total,
    yinchuan_periods_pay_their_filing_order_total,
);
on_both_backends_with!(period_property_2023, in_2023 =>
    nm_inpatient_2022_periods_pay_their_filing_order_total,
    nm_xinkang_2022_periods_pay_their_filing_order_total,
);
