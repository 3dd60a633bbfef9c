//! The period is the unit of money: what a period pays does not depend on the order in which
//! reviewers happen to approve its claims (issue 16).
//!
//! Reproduction, as filed: a member on nm-inpatient-2025 files stay A (30 billed days) and then
//! stay B (2 days), each with eligible self-pay 6000.00 and deductible 1000.00. Both pass the union
//! and the service point; the association approves B first, then A. The simulation of the period's
//! events in filing order [A, B] pays 3700.00 + 2200.00 = 5900.00; approval in the order B, A paid
//! 2860.00 + 2200.00 = 5060.00, because each claim was judged against the claims approved before
//! it rather than those filed before it.

use huzhu::settings::Settings;
use huzhu_tests::claim_flow::{
    Period, act, dec, detail, file, period, simulate, upload_required_small,
};
use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends_with;
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn in_2025(s: &mut Settings) {
    s.clock.today = chrono::NaiveDate::from_ymd_opt(2025, 9, 15);
}

fn stay_a() -> Value {
    json!({"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-31",
           "billed_days": 30, "eligible_self_pay": "6000.00", "deductible": "1000.00"})
}

fn stay_b() -> Value {
    json!({"kind": "inpatient", "admitted_on": "2025-05-10", "discharged_on": "2025-05-12",
           "billed_days": 2, "eligible_self_pay": "6000.00", "deductible": "1000.00"})
}

/// The first nm-inpatient-2025 period of the demo with three consecutive periods and continuous
/// renewal (the reporter's member), else the first period.
async fn reporters_period(app: &TestApp) -> Period {
    let token = app.login("union-power").await;
    let (status, page) = app
        .get(
            "/api/v1/memberships?scheme=nm-inpatient-2025&limit=100",
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().expect("items");
    let index = items
        .iter()
        .position(|m| m["consecutive_periods"] == 3 && m["continuous_renewal"] == true)
        .unwrap_or(0);
    period(app, "union-power", "nm-inpatient-2025", index).await
}

/// Files, photographs and submits a stay, and has the union and the service point approve it:
/// it waits for the association.
async fn at_association(app: &TestApp, p: &Period, event: Value, seed: u64) -> String {
    let member = app.login(&p.member_pid).await;
    let draft = file(app, &member, p, event).await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required_small(app, &member, &draft, seed).await;
    assert_eq!(act(app, &member, &claim, "submit", json!({})).await.0, 200);
    let union = app.login("union-power").await;
    let sp = app.login("sp-xincheng").await;
    let (status, body) = act(app, &union, &claim, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = act(app, &sp, &claim, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    claim
}

/// Approves `order` at the association and returns what the period was granted in all.
async fn granted_in_order(app: &TestApp, order: &[&str]) -> Decimal {
    let officer = app.login("association").await;
    for claim in order {
        let (status, body) = act(app, &officer, claim, "approve", json!({})).await;
        assert_eq!(status, 200, "approve {claim}: {body}");
    }
    let mut total = Decimal::ZERO;
    for claim in order {
        let d = detail(app, &officer, claim).await;
        assert_eq!(d["claim"]["status"], "approved", "{d}");
        total += dec(&d["claim"]["approved"]);
    }
    total
}

async fn a_period_pays_its_simulation_when_the_later_stay_is_approved_first(app: TestApp) {
    let p = reporters_period(&app).await;
    let a = at_association(&app, &p, stay_a(), 9100).await;
    let b = at_association(&app, &p, stay_b(), 9200).await;
    let sim = simulate(&app, "nm-inpatient-2025", &p, vec![stay_a(), stay_b()]).await;
    let granted = granted_in_order(&app, &[&b, &a]).await;
    assert_eq!(
        granted,
        dec(&sim["period_total"]),
        "approved B then A; the simulation of [A, B] is {sim}"
    );
    if p.consecutive_periods == 3 && p.continuous_renewal {
        assert_eq!(granted, Decimal::new(590_000, 2));
    }
    // B's detail explains why its breakdown changed: re-stated when A, filed before it, was
    // approved (the allowance moved to A), its grant unchanged.
    let officer = app.login("association").await;
    let b_now = detail(&app, &officer, &b).await;
    let kept = b_now["judgements"].as_array().expect("judgements");
    assert_eq!(kept.len(), 2, "{b_now}");
    assert_eq!(kept[1]["cause"], "restated");
    assert_eq!(kept[1]["caused_by"], a.as_str());
    assert_eq!(kept[1]["items"], sim["results"][1]["items"]);
    assert_eq!(
        b_now["claim"]["judgement"]["items"],
        sim["results"][1]["items"]
    );
    let restated = b_now["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|s| s["action"] == "restated")
        .unwrap_or_else(|| panic!("{b_now}"))
        .clone();
    assert!(
        restated["note"]
            .as_str()
            .expect("note")
            .contains("重新核算"),
        "{restated}"
    );
}

/// An adjustment is a recorded reduction, not a new judgement: the association lowers A with a
/// written reason; B, approved next, is granted what it adds to A's *judged* grant, so the
/// reduction is never granted back. Σ approved + reductions − offset = the simulation.
async fn an_adjustment_is_a_reduction_later_claims_do_not_grant_back(app: TestApp) {
    let p = reporters_period(&app).await;
    let a = at_association(&app, &p, stay_a(), 9910).await;
    let b = at_association(&app, &p, stay_b(), 9920).await;
    let sim = simulate(&app, "nm-inpatient-2025", &p, vec![stay_a(), stay_b()]).await;
    let officer = app.login("association").await;
    let (status, body) = act(
        &app,
        &officer,
        &a,
        "approve",
        json!({"amount": "1000.00", "adjustment_reason": "部分费用不属于本次住院"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claim"]["approved"], "1000.00");
    assert_eq!(body["claim"]["payable"], sim["results"][0]["payable"]);
    let (status, body) = act(&app, &officer, &b, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["claim"]["approved"], sim["results"][1]["payable"],
        "{body}"
    );
    let reduction = dec(&sim["results"][0]["payable"]) - Decimal::new(100_000, 2);
    let approved = Decimal::new(100_000, 2) + dec(&body["claim"]["approved"]);
    assert_eq!(approved + reduction, dec(&sim["period_total"]));
    assert_eq!(open_offset(&app, &p).await, Decimal::ZERO);
}

async fn a_period_pays_its_simulation_when_the_stays_are_approved_in_filing_order(app: TestApp) {
    let p = reporters_period(&app).await;
    let a = at_association(&app, &p, stay_a(), 9300).await;
    let b = at_association(&app, &p, stay_b(), 9400).await;
    let sim = simulate(&app, "nm-inpatient-2025", &p, vec![stay_a(), stay_b()]).await;
    let granted = granted_in_order(&app, &[&a, &b]).await;
    assert_eq!(granted, dec(&sim["period_total"]), "{sim}");
}

/// The membership's open offset, as the association sees it.
async fn open_offset(app: &TestApp, p: &Period) -> Decimal {
    let officer = app.login("association").await;
    let (status, page) = app
        .get(
            "/api/v1/memberships?scheme=nm-inpatient-2025&limit=100",
            Some(&officer),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let m = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|m| m["id"] == p.membership_pid.as_str())
        .unwrap_or_else(|| panic!("{} not in {page}", p.membership_pid));
    dec(&m["open_offset"])
}

/// A (2 days, little to pay) is filed first and B (30 days) second; B is approved first and
/// takes the first-stay allowance for 30 days. When A is approved, filing order gives the
/// allowance to A (for its 2 days): the period's total falls below what B was granted. A is
/// approved at 0.00, the period carries the overpaid amount, B's judgement is re-stated (kept
/// in its timeline), and the next claim C absorbs the offset.
async fn an_earlier_stay_approved_late_leaves_an_offset_the_next_claim_absorbs(app: TestApp) {
    let p = reporters_period(&app).await;
    let small_a = json!({"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-03",
           "billed_days": 2, "eligible_self_pay": "1100.00", "deductible": "1000.00"});
    let long_b = json!({"kind": "inpatient", "admitted_on": "2025-05-01", "discharged_on": "2025-05-31",
           "billed_days": 30, "eligible_self_pay": "6000.00", "deductible": "1000.00"});
    let later_c = json!({"kind": "inpatient", "admitted_on": "2025-07-01", "discharged_on": "2025-07-03",
           "billed_days": 2, "eligible_self_pay": "6000.00", "deductible": "1000.00"});
    let a = at_association(&app, &p, small_a.clone(), 9500).await;
    let b = at_association(&app, &p, long_b.clone(), 9600).await;
    let c = at_association(&app, &p, later_c.clone(), 9700).await;
    let officer = app.login("association").await;

    let (status, body) = act(&app, &officer, &b, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let granted_b = dec(&body["claim"]["approved"]);
    assert!(
        body["claim"]["judgement"]["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["code"] == "daily_allowance"),
        "B alone takes the allowance: {body}"
    );

    let (status, body) = act(&app, &officer, &a, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claim"]["approved"], "0.00", "{body}");
    assert_eq!(body["claim"]["status"], "closed");
    let sim_ab = simulate(
        &app,
        "nm-inpatient-2025",
        &p,
        vec![small_a.clone(), long_b.clone()],
    )
    .await;
    let offset = open_offset(&app, &p).await;
    assert!(offset > Decimal::ZERO, "an offset is carried");
    assert_eq!(granted_b - offset, dec(&sim_ab["period_total"]), "{sim_ab}");
    // B now shows its judgement in filing order (no allowance), and says why.
    let b_now = detail(&app, &officer, &b).await;
    assert_eq!(
        b_now["claim"]["judgement"]["items"],
        sim_ab["results"][1]["items"]
    );
    assert_eq!(
        dec(&b_now["claim"]["approved"]),
        granted_b,
        "a grant is never taken back"
    );
    assert!(
        b_now["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|s| s["action"] == "restated"),
        "{b_now}"
    );
    // The detail keeps both judgements of B: the approval's and the re-statement A caused.
    let kept = b_now["judgements"].as_array().expect("judgements");
    assert_eq!(kept.len(), 2, "{b_now}");
    assert_eq!(kept[0]["cause"], "approved");
    assert_eq!(dec(&kept[0]["payable"]), granted_b);
    assert_eq!(kept[1]["cause"], "restated");
    assert_eq!(kept[1]["caused_by"], a.as_str());
    assert_eq!(kept[1]["items"], sim_ab["results"][1]["items"]);
    // The association sees the open offset on the claims of the period and in the figures.
    let a_now = detail(&app, &officer, &a).await;
    assert_eq!(dec(&a_now["period"]["open_offset"]), offset, "{a_now}");
    assert_eq!(dec(&b_now["period"]["open_offset"]), offset, "{b_now}");
    assert_eq!(dec(&a_now["period"]["granted"]), granted_b);
    let year = &p.coverage_start[..4];
    let (status, figures) = app
        .get(
            &format!("/api/v1/claim-figures?year={year}&scheme=nm-inpatient-2025"),
            Some(&officer),
        )
        .await;
    assert_eq!(status, 200, "{figures}");
    let total = figures["totals"]
        .as_array()
        .expect("totals")
        .iter()
        .map(|t| dec(&t["open_offset"]))
        .sum::<Decimal>();
    assert_eq!(total, offset, "{figures}");
    let member = app.login(&p.member_pid).await;
    let mine = detail(&app, &member, &a).await;
    assert!(
        mine["period"].is_null(),
        "members do not see period money: {mine}"
    );

    let (status, body) = act(&app, &officer, &c, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let granted_c = dec(&body["claim"]["approved"]);
    let sim_abc = simulate(
        &app,
        "nm-inpatient-2025",
        &p,
        vec![small_a, long_b, later_c],
    )
    .await;
    let own_c = dec(&sim_abc["results"][2]["payable"]);
    assert!(own_c > offset, "C adds more than the offset: {sim_abc}");
    assert_eq!(granted_c, own_c - offset, "C absorbs the offset");
    assert_eq!(open_offset(&app, &p).await, Decimal::ZERO);
    assert_eq!(granted_b + granted_c, dec(&sim_abc["period_total"]));
}

/// Which scheme version judges a claim: the one in force when it was first submitted, recorded
/// on the claim then. The simulation judges by the version in force now — what a claim filed
/// now would get. Publishing a later version changes no claim already submitted or granted;
/// a claim filed after it is judged by it, knowing the period's earlier claims.
async fn a_claim_is_judged_by_the_version_in_force_at_its_first_submission(app: TestApp) {
    let p = reporters_period(&app).await;
    let (_, current) = app.get("/api/v1/schemes/nm-inpatient-2025", None).await;
    let v1 = current["version"].as_i64().expect("version");
    let a = at_association(&app, &p, stay_a(), 9800).await;
    let sim_v1 = simulate(&app, "nm-inpatient-2025", &p, vec![stay_a(), stay_b()]).await;
    assert_eq!(sim_v1["scheme_version"], v1);

    // The administrator halves every band's rate.
    let admin = app.login("admin").await;
    let mut def = current["definition"].clone();
    for band in def["inpatient"]["bands"].as_array_mut().expect("bands") {
        let rate: Decimal = dec(&band["rate"]);
        band["rate"] = json!((rate / Decimal::TWO).round_dp(2).to_string());
    }
    let (status, published) = app
        .post(
            "/api/v1/schemes/nm-inpatient-2025/versions",
            Some(&admin),
            &def,
        )
        .await;
    assert_eq!(status, 201, "{published}");
    let v2 = published["version"].as_i64().expect("version");
    assert_eq!(v2, v1 + 1);
    let sim_v2 = simulate(&app, "nm-inpatient-2025", &p, vec![stay_a(), stay_b()]).await;
    assert_eq!(
        sim_v2["scheme_version"], v2,
        "the simulation judges by the version in force now"
    );
    assert_ne!(
        sim_v1["results"][0]["payable"],
        sim_v2["results"][0]["payable"]
    );

    // A was submitted under v1: approved after v2 was published, it is judged by v1.
    let officer = app.login("association").await;
    let (status, body) = act(&app, &officer, &a, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claim"]["scheme_version"], v1, "{body}");
    assert_eq!(body["claim"]["approved"], sim_v1["results"][0]["payable"]);

    // B is filed after v2: judged by v2, knowing A (judged by v1) was filed before it.
    let b = at_association(&app, &p, stay_b(), 9900).await;
    let (status, body) = act(&app, &officer, &b, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claim"]["scheme_version"], v2, "{body}");
    assert_eq!(body["claim"]["approved"], sim_v2["results"][1]["payable"]);

    // A's grant and judgement did not move.
    let a_now = detail(&app, &officer, &a).await;
    assert_eq!(a_now["claim"]["approved"], sim_v1["results"][0]["payable"]);
    assert_eq!(a_now["claim"]["scheme_version"], v1);
    assert_eq!(
        a_now["judgements"].as_array().expect("judgements").len(),
        1,
        "{a_now}"
    );
    assert_eq!(a_now["judgements"][0]["scheme_version"], v1);
}

on_both_backends_with!(money_by_period, in_2025 =>
    an_adjustment_is_a_reduction_later_claims_do_not_grant_back,
    a_claim_is_judged_by_the_version_in_force_at_its_first_submission,
    an_earlier_stay_approved_late_leaves_an_offset_the_next_claim_absorbs,
    a_period_pays_its_simulation_when_the_later_stay_is_approved_first,
    a_period_pays_its_simulation_when_the_stays_are_approved_in_filing_order,
);
