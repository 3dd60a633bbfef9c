//! Claims end to end: filing from the phone with photos, every review stage, exact money under
//! concurrency, idempotent submission, refused uploads that leave nothing behind.
//!
//! The demo's schemes are of past years, so each group of tests runs with the service's clock
//! (`clock.today`) set inside the claim windows of its schemes.

use huzhu::settings::Settings;
use huzhu_tests::claim_flow::{
    BANK_CARD, Period, act, approve_through, complete_hengyang, dec, detail, file, first_period_of,
    hengyang_period, list_items_are_their_details, pay, period, post_with_key,
    second_association_reviewer, second_reviewer, simulate, upload, upload_required,
    upload_required_small,
};
use huzhu_tests::harness::TestApp;
use huzhu_tests::pictures;
use huzhu_tests::{on_both_backends, on_both_backends_with};
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

fn in_2025(s: &mut Settings) {
    s.clock.today = chrono::NaiveDate::from_ymd_opt(2025, 9, 15);
}

fn in_2023(s: &mut Settings) {
    s.clock.today = chrono::NaiveDate::from_ymd_opt(2023, 6, 1);
}

fn in_2021(s: &mut Settings) {
    s.clock.today = chrono::NaiveDate::from_ymd_opt(2021, 6, 15);
}

/// Reviewers of a unit under 新城区代办点 (stage → token).
async fn xincheng_reviewers(app: &TestApp, union_login: &str) -> Vec<(&'static str, String)> {
    vec![
        ("union_review", app.login(union_login).await),
        ("service_point_review", app.login("sp-xincheng").await),
        ("appraisal", app.login("association").await),
        ("association_review", app.login("association").await),
    ]
}

/// Reviewers of a unit under 赛罕区代办点.
async fn saihan_reviewers(app: &TestApp, union_login: &str) -> Vec<(&'static str, String)> {
    vec![
        ("union_review", app.login(union_login).await),
        ("service_point_review", app.login("sp-saihan").await),
        ("appraisal", app.login("association").await),
        ("association_review", app.login("association").await),
    ]
}

/// The member files `event` with every required photo, submits, every stage approves; the
/// approved amount and breakdown equal the simulation of the same facts.
async fn walk(
    app: &TestApp,
    period: &Period,
    scheme: &str,
    event: Value,
    reviewers: &[(&str, String)],
    expected_stages: &[&str],
) -> Value {
    let member = app.login(&period.member_pid).await;
    let draft = file(app, &member, period, event.clone()).await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    assert_eq!(draft["claim"]["status"], "draft");
    assert_eq!(draft["claim"]["filed_by"], "member");
    upload_required(app, &member, &draft, 7).await;
    let (status, submitted) = act(app, &member, &claim, "submit", json!({})).await;
    assert_eq!(status, 200, "{submitted}");
    let stages: Vec<&str> = submitted["claim"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s.as_str().expect("stage"))
        .collect();
    assert_eq!(stages, expected_stages);
    assert_eq!(submitted["claim"]["status"], expected_stages[0]);

    let approved = approve_through(app, &claim, reviewers).await;
    assert_eq!(approved["claim"]["status"], "approved", "{approved}");

    let sim = simulate(app, scheme, period, vec![event]).await;
    let result = &sim["results"][0];
    assert_eq!(approved["claim"]["approved"], result["payable"], "{sim}");
    assert_eq!(approved["claim"]["payable"], result["payable"]);
    assert_eq!(approved["claim"]["judgement"]["items"], result["items"]);
    assert_eq!(approved["claim"]["scheme_version"], sim["scheme_version"]);
    assert!(dec(&approved["claim"]["approved"]) > Decimal::ZERO);
    assert!(approved["claim"]["pay_due_on"].is_string());

    // The member sees the breakdown and a timeline of levels, never names.
    let mine = detail(app, &member, &claim).await;
    assert_eq!(mine["claim"]["judgement"], approved["claim"]["judgement"]);
    let levels: Vec<&str> = mine["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| s["level"].as_str().expect("level"))
        .collect();
    assert_eq!(levels.first(), Some(&"member"));
    assert_eq!(levels.last(), Some(&"association"));
    for step in mine["timeline"].as_array().expect("timeline") {
        assert!(step.get("actor").is_none() && step.get("actor_pid").is_none());
    }

    // The association pays it through the bank; the member is told (outbox).
    let paid = pay(app, &claim).await;
    assert_eq!(paid["claim"]["status"], "paid", "{paid}");
    assert_eq!(paid["claim"]["approved"], result["payable"]);
    assert!(paid["claim"]["paid_at"].is_string());
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'payout_sent' AND dedupe_key = 'payout_sent:{claim}'"
        ))
        .await,
        1
    );
    assert_eq!(
        paid["timeline"]
            .as_array()
            .expect("timeline")
            .last()
            .expect("step")["level"],
        "bank"
    );
    paid
}

// ---- each seed scheme, draft to approval -------------------------------------------------

async fn an_nm_2025_stay_walks_union_service_point_and_association(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let reviewers = xincheng_reviewers(&app, "union-power").await;
    walk(
        &app,
        &p,
        "nm-inpatient-2025",
        json!({"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-11",
               "billed_days": 10, "eligible_self_pay": "12000.00", "deductible": "800.00"}),
        &reviewers,
        &["union_review", "service_point_review", "association_review"],
    )
    .await;
}

async fn an_nm_xinkang_2025_diagnosis_is_paid_as_simulated(app: TestApp) {
    let p = period(&app, "union-power", "nm-xinkang-2025", 0).await;
    let reviewers = xincheng_reviewers(&app, "union-power").await;
    walk(
        &app,
        &p,
        "nm-xinkang-2025",
        json!({"kind": "diagnosis", "diagnosed_on": "2025-06-20", "disease": "breast_cancer"}),
        &reviewers,
        &["union_review", "service_point_review", "association_review"],
    )
    .await;
}

async fn a_wujin_stay_is_paid_as_simulated(app: TestApp) {
    let p = period(&app, "union-education", "wj-2022", 0).await;
    let reviewers = saihan_reviewers(&app, "union-education").await;
    walk(
        &app,
        &p,
        "wj-2022",
        json!({"kind": "inpatient", "admitted_on": "2022-03-01", "discharged_on": "2022-03-08",
               "out_of_pocket": "8000.00"}),
        &reviewers,
        &["union_review", "service_point_review", "association_review"],
    )
    .await;
}

async fn a_yinchuan_stay_is_paid_as_simulated(app: TestApp) {
    let p = period(&app, "union-dairy", "yc-2022", 0).await;
    let reviewers = saihan_reviewers(&app, "union-dairy").await;
    walk(
        &app,
        &p,
        "yc-2022",
        json!({"kind": "inpatient", "admitted_on": "2022-04-01", "discharged_on": "2022-04-10",
               "personal_burden": "12000.00"}),
        &reviewers,
        &["union_review", "service_point_review", "association_review"],
    )
    .await;
}

async fn an_nm_2022_stay_is_paid_as_simulated(app: TestApp) {
    let p = period(&app, "union-hospital", "nm-inpatient-2022", 0).await;
    let reviewers = xincheng_reviewers(&app, "union-hospital").await;
    walk(
        &app,
        &p,
        "nm-inpatient-2022",
        json!({"kind": "inpatient", "admitted_on": "2022-08-01", "discharged_on": "2022-08-11",
               "billed_days": 10, "eligible_self_pay": "12000.00"}),
        &reviewers,
        &["union_review", "service_point_review", "association_review"],
    )
    .await;
}

async fn an_nm_xinkang_2022_diagnosis_is_paid_as_simulated(app: TestApp) {
    let p = period(&app, "union-hospital", "nm-xinkang-2022", 0).await;
    let reviewers = xincheng_reviewers(&app, "union-hospital").await;
    walk(
        &app,
        &p,
        "nm-xinkang-2022",
        json!({"kind": "diagnosis", "diagnosed_on": "2022-09-01",
               "disease": "cervical_cancer_or_hysterectomy"}),
        &reviewers,
        &["union_review", "service_point_review", "association_review"],
    )
    .await;
}

/// Hengyang ships incomplete: nothing is approved until an administrator publishes a complete
/// version; a stay of 7000 or more then goes through the appraisal step.
async fn a_hengyang_stay_of_7000_goes_through_the_appraisal_once_the_scheme_is_complete(
    app: TestApp,
) {
    // A Hengyang period for a demo member (the demo enrols nobody in hy-2021).
    let p = hengyang_period(&app).await;
    let member = app.login(&p.member_pid).await;
    let event = json!({"kind": "inpatient", "admitted_on": "2021-05-01",
                       "discharged_on": "2021-05-11", "eligible_self_pay": "8000.00"});

    // Incomplete: refused with the missing parameters.
    let (status, body) = app
        .post(
            "/api/v1/claims",
            Some(&member),
            &json!({"membership_id": p.membership_pid, "event": event, "bank_card": BANK_CARD}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "scheme_incomplete");
    assert!(body["error"]["details"]["missing"].is_array());

    // The administrator completes it (rates chosen for the test).
    complete_hengyang(&app).await;

    // Four eyes: the appraisal and the association's review are two people's.
    let mut reviewers = saihan_reviewers(&app, "union-dairy").await;
    reviewers[3].1 = second_association_reviewer(&app).await;
    let approved = walk(
        &app,
        &p,
        "hy-2021",
        event,
        &reviewers,
        &[
            "union_review",
            "service_point_review",
            "appraisal",
            "association_review",
        ],
    )
    .await;
    assert_eq!(approved["claim"]["scheme_version"], 2);
    assert_eq!(approved["claim"]["status"], "paid");
}

on_both_backends_with!(in2025, in_2025 =>
    an_nm_2025_stay_walks_union_service_point_and_association,
    an_nm_xinkang_2025_diagnosis_is_paid_as_simulated,
    a_wujin_stay_is_paid_as_simulated,
    a_yinchuan_stay_is_paid_as_simulated,
    a_return_sends_the_claim_back_to_the_same_stage_after_new_photos,
    a_member_sees_the_period_they_claim_against_as_covered,
    a_clerk_files_for_a_member_without_a_smartphone,
    a_beneficiary_claim_needs_the_kinship_papers_and_pays_the_beneficiary,
    fifty_concurrent_approvals_near_the_cap_pay_exactly_up_to_it,
    one_transition_sent_twenty_times_at_once_succeeds_once,
    a_submission_retried_with_the_same_key_yields_one_claim,
    an_idempotency_key_reused_with_another_body_is_refused,
    refused_uploads_leave_nothing_stored,
    the_stored_photo_has_no_exif_and_links_are_signed,
    the_same_bill_in_another_claim_is_flagged_to_reviewers,
    submission_names_each_missing_material,
    reviewers_see_only_their_subtree_and_their_stage,
    queues_filter_and_count,
    the_association_may_lower_an_amount_with_a_written_reason,
    a_unit_without_a_service_point_skips_that_stage,
    late_payments_stand_out_in_the_queue,
);
on_both_backends_with!(in2023, in_2023 =>
    an_nm_2022_stay_is_paid_as_simulated,
    an_nm_xinkang_2022_diagnosis_is_paid_as_simulated,
);
on_both_backends_with!(in2021, in_2021 =>
    a_hengyang_stay_of_7000_goes_through_the_appraisal_once_the_scheme_is_complete,
);

// ---- the service's calendar ----------------------------------------------------------------

/// Found while writing the contract tests: memberships were judged on the real date while claims used
/// the service's (pinned) one, so a member saw "ended" on the period they could still claim on.
async fn a_member_sees_the_period_they_claim_against_as_covered(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let member = app.login(&p.member_pid).await;
    let (status, mine) = app.get("/api/v1/me/memberships", Some(&member)).await;
    assert_eq!(status, 200, "{mine}");
    let own = mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|m| m["id"] == p.membership_pid.as_str())
        .expect("the period");
    assert_eq!(own["state"], "covered", "{own}");
    let union = app.login("union-power").await;
    let (_, listed) = app
        .get(
            "/api/v1/memberships?scheme=nm-inpatient-2025&limit=1",
            Some(&union),
        )
        .await;
    assert_eq!(listed["items"][0]["state"], "covered", "{listed}");
}

// ---- return and resubmit -----------------------------------------------------------------

async fn a_return_sends_the_claim_back_to_the_same_stage_after_new_photos(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 1).await;
    let member = app.login(&p.member_pid).await;
    let union = app.login("union-power").await;
    let sp = app.login("sp-xincheng").await;
    let draft = file(
        &app,
        &member,
        &p,
        json!({"kind": "inpatient", "admitted_on": "2025-04-01", "discharged_on": "2025-04-05",
               "eligible_self_pay": "3000.00"}),
    )
    .await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required(&app, &member, &draft, 11).await;
    assert_eq!(act(&app, &member, &claim, "submit", json!({})).await.0, 200);
    assert_eq!(act(&app, &union, &claim, "approve", json!({})).await.0, 200);

    // The service point asks for a sharper invoice.
    let (status, returned) = act(
        &app,
        &sp,
        &claim,
        "return",
        json!({"message": "发票不清晰", "materials": [{"category": "invoice", "note": "请重拍发票"}]}),
    )
    .await;
    assert_eq!(status, 200, "{returned}");
    assert_eq!(returned["claim"]["status"], "returned");
    assert_eq!(returned["claim"]["stage"], "service_point_review");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'claim_returned'")
            .await,
        1
    );

    // Resubmitting without a new invoice is refused, naming it.
    let (status, body) = act(&app, &member, &claim, "submit", json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "materials_missing");
    assert_eq!(body["error"]["details"]["missing"], json!(["invoice"]));

    let (status, body) = upload(
        &app,
        &member,
        &claim,
        "invoice",
        pictures::document_jpeg(999),
        "invoice.jpg",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = act(&app, &member, &claim, "submit", json!({})).await;
    assert_eq!(status, 200, "{body}");
    // Back in the service point's queue, not the union's.
    assert_eq!(body["claim"]["status"], "service_point_review");
    let (_, queue) = app
        .get("/api/v1/claims?status=service_point_review", Some(&sp))
        .await;
    assert!(
        queue["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|c| c["id"] == claim)
    );
    let actions: Vec<String> = body["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| s["action"].as_str().expect("action").to_owned())
        .collect();
    assert_eq!(
        actions,
        ["filed", "submitted", "approved", "returned", "resubmitted"]
    );
    assert_eq!(
        body["timeline"][3]["note"], "发票不清晰",
        "the member reads the reviewer's message"
    );
    // A claim with a return on record, as listed and as detailed.
    assert_eq!(list_items_are_their_details(&app, &member).await, 1);
    assert_eq!(list_items_are_their_details(&app, &union).await, 1);
}

// ---- on someone's behalf -----------------------------------------------------------------

async fn a_clerk_files_for_a_member_without_a_smartphone(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 2).await;
    let clerk = app.login("union-power").await;
    let draft = file(
        &app,
        &clerk,
        &p,
        json!({"kind": "inpatient", "admitted_on": "2025-05-01", "discharged_on": "2025-05-04",
               "eligible_self_pay": "2000.00"}),
    )
    .await;
    assert_eq!(draft["claim"]["filed_by"], "clerk");
    assert_eq!(draft["claim"]["member"]["id"], p.member_pid.as_str());
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required(&app, &clerk, &draft, 21).await;
    let (status, body) = act(&app, &clerk, &claim, "submit", json!({})).await;
    assert_eq!(status, 200, "{body}");
    // The member sees it on their phone, and it is paid to the member.
    let member = app.login(&p.member_pid).await;
    let (_, mine) = app.get("/api/v1/claims", Some(&member)).await;
    let listed = &mine["items"][0];
    assert_eq!(listed["id"], claim.as_str());
    assert_eq!(listed["payee_name"], listed["member"]["name"]);
    // Another union's clerk cannot file for this member.
    let other = app.login("union-hospital").await;
    let (status, _) = app
        .post(
            "/api/v1/claims",
            Some(&other),
            &json!({"membership_id": p.membership_pid, "event": draft["claim"]["event"], "bank_card": BANK_CARD}),
        )
        .await;
    assert_eq!(status, 404);
}

async fn a_beneficiary_claim_needs_the_kinship_papers_and_pays_the_beneficiary(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 3).await;
    let clerk = app.login("union-power").await;
    let (status, draft) = app
        .post(
            "/api/v1/claims",
            Some(&clerk),
            &json!({
                "membership_id": p.membership_pid,
                "event": {"kind": "inpatient", "admitted_on": "2025-06-01",
                          "discharged_on": "2025-06-21", "eligible_self_pay": "40000.00"},
                "beneficiary": {"name": "王芳", "id_number": "11010519491231002X",
                                "relationship": "配偶", "bank_card": "6217000000000000012"}
            }),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    assert_eq!(draft["claim"]["filed_by"], "beneficiary");
    assert_eq!(draft["claim"]["payee_name"], "王芳");
    assert_eq!(draft["claim"]["beneficiary"]["relationship"], "配偶");
    let required: Vec<&str> = draft["required_materials"]
        .as_array()
        .expect("required")
        .iter()
        .map(|m| m.as_str().expect("m"))
        .collect();
    assert!(required.contains(&"death_certificate") && required.contains(&"kinship_proof"));
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    // Without the kinship papers, submission names them.
    for (i, category) in required
        .iter()
        .filter(|c| !["death_certificate", "kinship_proof"].contains(c))
        .enumerate()
    {
        let (status, body) = upload(
            &app,
            &clerk,
            &claim,
            category,
            pictures::document_jpeg(3100 + i as u64),
            "p.jpg",
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = act(&app, &clerk, &claim, "submit", json!({})).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"]["details"]["missing"],
        json!(["death_certificate", "kinship_proof"])
    );
    upload_required(&app, &clerk, &draft, 32).await;
    // Four eyes: the clerk who filed it cannot approve it; a colleague of the union does.
    let mut reviewers = xincheng_reviewers(&app, "union-power").await;
    let unit = app
        .unit_id(&clerk, "内蒙古电力（集团）有限责任公司工会")
        .await;
    reviewers[0].1 = second_reviewer(&app, &unit, "union_reviewer", "union-power-2").await;
    assert_eq!(act(&app, &clerk, &claim, "submit", json!({})).await.0, 200);
    let approved = approve_through(&app, &claim, &reviewers).await;
    assert_eq!(approved["claim"]["status"], "approved");
    assert_eq!(approved["claim"]["payee_name"], "王芳");
    // The bank pays the beneficiary: the result names her, and the bank file matched it.
    let paid = pay(&app, &claim).await;
    assert_eq!(paid["claim"]["status"], "paid");
    // A member cannot file as a beneficiary.
    let member = app.login(&p.member_pid).await;
    let (status, _) = app
        .post(
            "/api/v1/claims",
            Some(&member),
            &json!({"membership_id": p.membership_pid, "event": approved["claim"]["event"],
                    "beneficiary": {"name": "王芳", "id_number": "11010519491231002X",
                                    "relationship": "配偶", "bank_card": "6217000000000000012"}}),
        )
        .await;
    assert_eq!(status, 403);
    // A paid beneficiary's claim (judgement, payment, beneficiary), as listed and detailed.
    let officer = app.login("association").await;
    assert!(list_items_are_their_details(&app, &officer).await >= 1);
}

// ---- exact money under concurrency -------------------------------------------------------

/// Brings a claim to the association's stage.
async fn to_association(
    app: &TestApp,
    p: &Period,
    member: &str,
    event: Value,
    seed: u64,
) -> String {
    let draft = file(app, member, p, event).await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required_small(app, member, &draft, seed).await;
    assert_eq!(act(app, member, &claim, "submit", json!({})).await.0, 200);
    let union = app.login("union-power").await;
    let sp = app.login("sp-xincheng").await;
    assert_eq!(act(app, &union, &claim, "approve", json!({})).await.0, 200);
    assert_eq!(act(app, &sp, &claim, "approve", json!({})).await.0, 200);
    claim
}

async fn fifty_concurrent_approvals_near_the_cap_pay_exactly_up_to_it(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 4).await;
    let member = app.login(&p.member_pid).await;
    // Each stay: S = 20000 → banded 12200; 50 of them would be 610000, over the 500000 cap.
    let event = |i: u32| {
        json!({"kind": "inpatient", "admitted_on": format!("2025-02-{:02}", 1 + i % 28),
               "discharged_on": format!("2025-02-{:02}", 1 + i % 28), "billed_days": 1,
               "eligible_self_pay": "20000.00"})
    };
    let mut claims = Vec::new();
    for i in 0..50u32 {
        claims.push(to_association(&app, &p, &member, event(i), 5000 + u64::from(i)).await);
    }
    let officer = app.login("association").await;
    let mut versions = Vec::new();
    for c in &claims {
        versions.push(detail(&app, &officer, c).await["claim"]["version"].clone());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (c, v) in claims.iter().zip(versions) {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/claims/{c}/approve"));
        let token = officer.clone();
        tasks.spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "version": v }))
                .send()
                .await
                .expect("approve");
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, body)
        });
    }
    let mut approved = Vec::new();
    let mut refused = 0;
    let mut paid = Decimal::ZERO;
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.expect("task");
        match status {
            200 => {
                paid += dec(&body["claim"]["approved"]);
                assert!(dec(&body["claim"]["approved"]) >= Decimal::ZERO);
                approved.push(body["claim"]["id"].as_str().expect("id").to_owned());
            }
            422 => {
                assert_eq!(body["error"]["code"], "claim_not_payable", "{body}");
                assert_eq!(body["error"]["details"]["refused"], "benefit_terminated");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(approved.len() + refused, 50);
    // The period's judgements as they stand (re-stated in filing order, whatever order the
    // approvals ran in): the cap reached exactly, the first-stay allowance paid once.
    let mut banded = Decimal::ZERO;
    let mut allowances = 0;
    let mut payable_judgements = 0;
    for c in &approved {
        let d = detail(&app, &officer, c).await;
        let judgement = &d["claim"]["judgement"];
        if judgement["refused"].is_null() {
            payable_judgements += 1;
        }
        for item in judgement["items"].as_array().expect("items") {
            match item["code"].as_str() {
                Some("banded") => banded += dec(&item["amount"]),
                Some("daily_allowance") => allowances += 1,
                _ => {}
            }
        }
    }
    assert_eq!(
        banded,
        Decimal::new(500_000, 0),
        "the cap is reached exactly"
    );
    assert_eq!(allowances, 1, "the first-stay allowance is paid once");
    // The same 50 stays simulated in one period pay the same.
    let sim = simulate(
        &app,
        "nm-inpatient-2025",
        &p,
        (0..50u32).map(event).collect(),
    )
    .await;
    assert_eq!(paid, dec(&sim["period_total"]), "{sim}");
    let paid_in_sim = sim["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["refused"].is_null())
        .count();
    assert_eq!(payable_judgements, paid_in_sim);
}

async fn one_transition_sent_twenty_times_at_once_succeeds_once(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 5).await;
    let member = app.login(&p.member_pid).await;
    let draft = file(
        &app,
        &member,
        &p,
        json!({"kind": "inpatient", "admitted_on": "2025-07-01", "discharged_on": "2025-07-03",
               "eligible_self_pay": "1000.00"}),
    )
    .await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required(&app, &member, &draft, 41).await;
    assert_eq!(act(&app, &member, &claim, "submit", json!({})).await.0, 200);
    let union = app.login("union-power").await;
    let version = detail(&app, &union, &claim).await["claim"]["version"].clone();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/claims/{claim}/approve"));
        let token = union.clone();
        let v = version.clone();
        tasks.spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "version": v }))
                .send()
                .await
                .expect("approve");
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, body)
        });
    }
    let mut ok = 0;
    let mut conflicts = 0;
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.expect("task");
        match status {
            200 => ok += 1,
            409 => {
                assert_eq!(body["error"]["code"], "version_conflict", "{body}");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 19));
    let d = detail(&app, &union, &claim).await;
    assert_eq!(d["claim"]["status"], "service_point_review");
    let approvals = d["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|s| s["action"] == "approved")
        .count();
    assert_eq!(approvals, 1);
}

async fn a_submission_retried_with_the_same_key_yields_one_claim(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 6).await;
    let member = app.login(&p.member_pid).await;
    let body = json!({"membership_id": p.membership_pid, "bank_card": BANK_CARD,
                      "event": {"kind": "inpatient", "admitted_on": "2025-08-01",
                                "discharged_on": "2025-08-03", "eligible_self_pay": "1500.00"}});
    let (first, created) = post_with_key(&app, "/api/v1/claims", &member, Some("k-1"), &body).await;
    assert_eq!(first, 201, "{created}");
    let (again, retried) = post_with_key(&app, "/api/v1/claims", &member, Some("k-1"), &body).await;
    assert_eq!(again, 200, "{retried}");
    assert_eq!(created["claim"]["id"], retried["claim"]["id"]);
    let claim = created["claim"]["id"].as_str().expect("id").to_owned();
    upload_required(&app, &member, &created, 51).await;
    let submit = json!({ "version": created["claim"]["version"] });
    let path = format!("/api/v1/claims/{claim}/submit");
    let (s1, b1) = post_with_key(&app, &path, &member, Some("s-1"), &submit).await;
    assert_eq!(s1, 200, "{b1}");
    // The phone lost the answer and sends the same submission again.
    let (s2, b2) = post_with_key(&app, &path, &member, Some("s-1"), &submit).await;
    assert_eq!(s2, 200, "{b2}");
    assert_eq!(b1["claim"]["version"], b2["claim"]["version"]);
    // Without the key, the stale version is a conflict.
    let (s3, b3) = post_with_key(&app, &path, &member, None, &submit).await;
    assert_eq!(s3, 409, "{b3}");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM claim c JOIN member m ON m.id = c.member_id WHERE m.pid = '{}'",
            p.member_pid
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM claim_event e JOIN claim c ON c.id = e.claim_id WHERE c.pid = '{claim}' AND e.action = 'submitted'"
        ))
        .await,
        1
    );
}

/// Stripe's rule: a key names one request. The same key with another body is a client bug
/// (or a key reused across screens), answered 422, never with the first request's claim.
async fn an_idempotency_key_reused_with_another_body_is_refused(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 6).await;
    let member = app.login(&p.member_pid).await;
    let stay = json!({"kind": "inpatient", "admitted_on": "2025-08-01",
                      "discharged_on": "2025-08-03", "eligible_self_pay": "1500.00"});
    let body = json!({"membership_id": p.membership_pid, "bank_card": BANK_CARD, "event": stay});
    let (first, created) = post_with_key(&app, "/api/v1/claims", &member, Some("k-1"), &body).await;
    assert_eq!(first, 201, "{created}");
    let other_facts = json!({"membership_id": p.membership_pid, "bank_card": BANK_CARD,
                             "event": {"kind": "inpatient", "admitted_on": "2025-08-01",
                                       "discharged_on": "2025-08-03", "eligible_self_pay": "9500.00"}});
    let (status, refused) =
        post_with_key(&app, "/api/v1/claims", &member, Some("k-1"), &other_facts).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["error"]["code"], "idempotency_key_reused",
        "{refused}"
    );
    assert_eq!(
        refused["error"]["details"]["header"], "Idempotency-Key",
        "{refused}"
    );
    // The same body with the same key is still the first claim.
    let (again, retried) = post_with_key(&app, "/api/v1/claims", &member, Some("k-1"), &body).await;
    assert_eq!(again, 200, "{retried}");
    assert_eq!(created["claim"]["id"], retried["claim"]["id"]);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM claim c JOIN member m ON m.id = c.member_id WHERE m.pid = '{}'",
            p.member_pid
        ))
        .await,
        1
    );

    // A clerk reusing a key for another member's period.
    let q = period(&app, "union-power", "nm-inpatient-2025", 7).await;
    let clerk = app.login("union-power").await;
    let for_p = json!({"membership_id": p.membership_pid, "bank_card": BANK_CARD, "event": stay});
    let (status, filed) = post_with_key(&app, "/api/v1/claims", &clerk, Some("c-1"), &for_p).await;
    assert_eq!(status, 201, "{filed}");
    let for_q = json!({"membership_id": q.membership_pid, "bank_card": BANK_CARD, "event": stay});
    let (status, refused) =
        post_with_key(&app, "/api/v1/claims", &clerk, Some("c-1"), &for_q).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["error"]["code"], "idempotency_key_reused",
        "{refused}"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM claim c JOIN member m ON m.id = c.member_id WHERE m.pid = '{}'",
            q.member_pid
        ))
        .await,
        0
    );

    // A submission key names one submission too: another version under it is refused.
    let claim = created["claim"]["id"].as_str().expect("id").to_owned();
    upload_required(&app, &member, &created, 56).await;
    let version = created["claim"]["version"].as_i64().expect("version");
    let path = format!("/api/v1/claims/{claim}/submit");
    let (s1, b1) = post_with_key(
        &app,
        &path,
        &member,
        Some("s-1"),
        &json!({ "version": version }),
    )
    .await;
    assert_eq!(s1, 200, "{b1}");
    let (s2, b2) = post_with_key(
        &app,
        &path,
        &member,
        Some("s-1"),
        &json!({ "version": version + 7 }),
    )
    .await;
    assert_eq!(s2, 422, "{b2}");
    assert_eq!(b2["error"]["code"], "idempotency_key_reused", "{b2}");
    let (s3, b3) = post_with_key(
        &app,
        &path,
        &member,
        Some("s-1"),
        &json!({ "version": version }),
    )
    .await;
    assert_eq!(s3, 200, "{b3}");
    assert_eq!(b1["claim"]["version"], b3["claim"]["version"]);
}

// ---- uploads -----------------------------------------------------------------------------

/// Every object the storage holds.
async fn stored_objects(app: &TestApp) -> Vec<String> {
    let entries = app
        .state
        .storage
        .list_with("claims/")
        .recursive(true)
        .await
        .unwrap_or_default();
    entries
        .into_iter()
        .filter(|e| !e.path().ends_with('/'))
        .map(|e| e.path().to_owned())
        .collect()
}

async fn refused_uploads_leave_nothing_stored(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 7).await;
    let member = app.login(&p.member_pid).await;
    let draft = file(
        &app,
        &member,
        &p,
        json!({"kind": "inpatient", "admitted_on": "2025-08-10", "discharged_on": "2025-08-12",
               "eligible_self_pay": "900.00"}),
    )
    .await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "bomb.png",
            pictures::png_bomb(),
            "image_too_large",
            "decompression bomb",
        ),
        (
            "cut.jpg",
            pictures::truncated_jpeg(1),
            "image_truncated",
            "truncated JPEG",
        ),
        ("a.svg", pictures::svg(), "file_type_svg", "SVG"),
        (
            "scan.jpg",
            pictures::pdf(),
            "file_type_pdf",
            "PDF renamed .jpg",
        ),
        ("IMG_0001.HEIC", pictures::heic(), "file_type_heic", "HEIC"),
    ];
    for (filename, bytes, code, what) in cases {
        let (status, body) = upload(&app, &member, &claim, "invoice", bytes, filename).await;
        assert_eq!(status, 422, "{what}: {body}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert_eq!(body["error"]["details"]["field"], "file");
        assert!(
            !body["error"]["message"]
                .as_str()
                .expect("message")
                .is_empty()
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM claim_material").await,
        0
    );
    assert!(stored_objects(&app).await.is_empty());
    // An unknown category is refused before anything is read.
    let (status, body) = upload(
        &app,
        &member,
        &claim,
        "selfie",
        pictures::document_jpeg(2),
        "a.jpg",
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "unknown_category");
}

async fn the_stored_photo_has_no_exif_and_links_are_signed(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 8).await;
    let member = app.login(&p.member_pid).await;
    let draft = file(
        &app,
        &member,
        &p,
        json!({"kind": "inpatient", "admitted_on": "2025-08-10", "discharged_on": "2025-08-12",
               "eligible_self_pay": "900.00"}),
    )
    .await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    let original = pictures::jpeg_with_gps(77);
    assert!(
        original
            .windows(pictures::EXIF_MARKER.len())
            .any(|w| w == pictures::EXIF_MARKER)
    );
    let (status, material) = upload(
        &app,
        &member,
        &claim,
        "settlement_slip",
        original.clone(),
        "IMG_2231.jpg",
    )
    .await;
    assert_eq!(status, 201, "{material}");
    let objects = stored_objects(&app).await;
    assert_eq!(objects.len(), 2, "the photo and its thumbnail: {objects:?}");
    for key in &objects {
        let stored = app.state.storage.read(key).await.expect("read").to_vec();
        assert!(
            !stored
                .windows(pictures::EXIF_MARKER.len())
                .any(|w| w == pictures::EXIF_MARKER),
            "{key} still carries EXIF"
        );
        assert!(
            key.starts_with(&format!("claims/{claim}/")),
            "server-chosen key {key}"
        );
    }
    // The signed link serves the cleaned photo without a token; a forged one is refused.
    let url = material["url"].as_str().expect("url");
    let res = app.client.get(app.url(url)).send().await.expect("photo");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().expect("type"),
        "image/jpeg"
    );
    let body = res.bytes().await.expect("bytes");
    assert!(image::load_from_memory(&body).is_ok());
    assert!(
        !body
            .windows(pictures::EXIF_MARKER.len())
            .any(|w| w == pictures::EXIF_MARKER)
    );
    let forged = url.replace("variant=full", "variant=thumbnail");
    let res = app
        .client
        .get(app.url(&forged))
        .send()
        .await
        .expect("photo");
    assert_eq!(res.status(), 403);
    // Someone else's claim: not found, no link issued.
    let stranger = period(&app, "union-hospital", "nm-inpatient-2022", 0).await;
    let other = app.login(&stranger.member_pid).await;
    let (status, _) = app
        .get(&format!("/api/v1/claims/{claim}"), Some(&other))
        .await;
    assert_eq!(status, 404);
}

async fn the_same_bill_in_another_claim_is_flagged_to_reviewers(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 9).await;
    let member = app.login(&p.member_pid).await;
    let event = json!({"kind": "inpatient", "admitted_on": "2025-08-10",
                       "discharged_on": "2025-08-12", "eligible_self_pay": "900.00"});
    let first = file(&app, &member, &p, event.clone()).await;
    let first_id = first["claim"]["id"].as_str().expect("id").to_owned();
    upload_required(&app, &member, &first, 61).await;
    let second = file(&app, &member, &p, event).await;
    let second_id = second["claim"]["id"].as_str().expect("id").to_owned();
    // The same invoice, re-saved as PNG (other bytes, same picture).
    let required = first["required_materials"].as_array().expect("required");
    let invoice_index = required
        .iter()
        .position(|m| m == "invoice")
        .expect("invoice required") as u64;
    let (status, material) = upload(
        &app,
        &member,
        &second_id,
        "invoice",
        pictures::document_png(61 * 100 + invoice_index),
        "again.png",
    )
    .await;
    assert_eq!(status, 201, "{material}");
    assert_eq!(
        material["duplicate_of_claim"],
        Value::Null,
        "members are not shown the flag"
    );
    let union = app.login("union-power").await;
    upload_required(&app, &member, &second, 62).await;
    assert_eq!(
        act(&app, &member, &second_id, "submit", json!({})).await.0,
        200
    );
    let reviewed = detail(&app, &union, &second_id).await;
    assert_eq!(reviewed["claim"]["flagged"], true);
    let flagged: Vec<&Value> = reviewed["materials"]
        .as_array()
        .expect("materials")
        .iter()
        .filter(|m| m["duplicate_of_claim"].is_string())
        .collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0]["duplicate_of_claim"], first_id.as_str());
    let (_, queue) = app.get("/api/v1/claims?flagged=true", Some(&union)).await;
    assert_eq!(queue["items"].as_array().expect("items").len(), 1);
    // Flagged to the reviewer, not to the member, in the list as in the detail.
    assert_eq!(list_items_are_their_details(&app, &union).await, 1);
    assert_eq!(list_items_are_their_details(&app, &member).await, 2);
}

async fn submission_names_each_missing_material(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let member = app.login(&p.member_pid).await;
    let draft = file(
        &app,
        &member,
        &p,
        json!({"kind": "inpatient", "admitted_on": "2025-08-10", "discharged_on": "2025-08-12",
               "eligible_self_pay": "900.00"}),
    )
    .await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    let (status, body) = upload(
        &app,
        &member,
        &claim,
        "invoice",
        pictures::document_jpeg(71),
        "i.jpg",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = act(&app, &member, &claim, "submit", json!({})).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "materials_missing");
    let missing = body["error"]["details"]["missing"]
        .as_array()
        .expect("missing");
    assert!(!missing.contains(&json!("invoice")));
    assert!(missing.contains(&json!("settlement_slip")));
    assert!(missing.contains(&json!("discharge_certificate")));
    assert_eq!(
        detail(&app, &member, &claim).await["claim"]["status"],
        "draft",
        "nothing changed"
    );
}

async fn reviewers_see_only_their_subtree_and_their_stage(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 1).await;
    let member = app.login(&p.member_pid).await;
    let draft = file(
        &app,
        &member,
        &p,
        json!({"kind": "inpatient", "admitted_on": "2025-08-10", "discharged_on": "2025-08-12",
               "eligible_self_pay": "900.00"}),
    )
    .await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    // A draft is the member's: no reviewer sees it yet.
    let union = app.login("union-power").await;
    let (status, _) = app
        .get(&format!("/api/v1/claims/{claim}"), Some(&union))
        .await;
    assert_eq!(status, 404);
    upload_required(&app, &member, &draft, 81).await;
    assert_eq!(act(&app, &member, &claim, "submit", json!({})).await.0, 200);
    // Other union, other service point: not found.
    for outsider in ["union-hospital", "sp-saihan", "union-dairy"] {
        let token = app.login(outsider).await;
        let (status, _) = app
            .get(&format!("/api/v1/claims/{claim}"), Some(&token))
            .await;
        assert_eq!(status, 404, "{outsider}");
        let (_, list) = app.get("/api/v1/claims", Some(&token)).await;
        assert!(
            !list["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|c| c["id"] == claim.as_str()),
            "{outsider}"
        );
    }
    // The service point sees it but it is not its stage yet.
    let sp = app.login("sp-xincheng").await;
    let (status, body) = act(&app, &sp, &claim, "approve", json!({})).await;
    assert_eq!(status, 403, "{body}");
    // The member cannot approve their own claim.
    let (status, _) = act(&app, &member, &claim, "approve", json!({})).await;
    assert_eq!(status, 403);
    // Reject needs a known reason; `other` needs a note.
    let (status, body) = act(&app, &union, &claim, "reject", json!({"reason": "other"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "note_required");
    let (status, body) = act(
        &app,
        &union,
        &claim,
        "reject",
        json!({"reason": "excluded_traffic_accident", "note": "交通事故"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claim"]["status"], "rejected");
    assert_eq!(body["claim"]["reject_reason"], "excluded_traffic_accident");
    // Rejected: the member can no longer withdraw.
    let (status, body) = act(&app, &member, &claim, "withdraw", json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "invalid_transition");
    assert!(list_items_are_their_details(&app, &member).await >= 1);
}

async fn queues_filter_and_count(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 2).await;
    let member = app.login(&p.member_pid).await;
    let mut ids = Vec::new();
    for i in 0..3u64 {
        let draft = file(
            &app,
            &member,
            &p,
            json!({"kind": "inpatient", "admitted_on": "2025-08-10",
                   "discharged_on": "2025-08-12", "eligible_self_pay": "900.00"}),
        )
        .await;
        let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
        upload_required(&app, &member, &draft, 90 + i).await;
        assert_eq!(act(&app, &member, &claim, "submit", json!({})).await.0, 200);
        ids.push(claim);
    }
    let union = app.login("union-power").await;
    assert_eq!(
        act(&app, &union, &ids[0], "approve", json!({})).await.0,
        200
    );
    let (status, counts) = app.get("/api/v1/claims/counts", Some(&union)).await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(counts["counts"]["union_review"], 2);
    assert_eq!(counts["counts"]["service_point_review"], 1);
    assert_eq!(counts["counts"]["draft"], 0);
    // Pages of one, in order, through the cursor.
    let (_, page1) = app
        .get("/api/v1/claims?status=union_review&limit=1", Some(&union))
        .await;
    assert_eq!(page1["items"][0]["id"], ids[1].as_str());
    let cursor = page1["next_cursor"].as_str().expect("cursor");
    let (_, page2) = app
        .get(
            &format!("/api/v1/claims?status=union_review&limit=1&cursor={cursor}"),
            Some(&union),
        )
        .await;
    assert_eq!(page2["items"][0]["id"], ids[2].as_str());
    assert!(page2["next_cursor"].is_null());
    // Filters: scheme, unit, dates, overdue.
    let unit = app
        .unit_id(&union, "内蒙古电力（集团）有限责任公司工会")
        .await;
    let (_, by_unit) = app
        .get(
            &format!("/api/v1/claims?unit={unit}&scheme_code=nm-inpatient-2025"),
            Some(&union),
        )
        .await;
    assert_eq!(by_unit["items"].as_array().expect("items").len(), 3);
    let (_, none) = app
        .get("/api/v1/claims?scheme_code=wj-2022", Some(&union))
        .await;
    assert_eq!(none["items"].as_array().expect("items").len(), 0);
    let (_, overdue) = app.get("/api/v1/claims?overdue=true", Some(&union)).await;
    assert_eq!(overdue["items"].as_array().expect("items").len(), 0);
    let (status, body) = app.get("/api/v1/claims?status=bogus", Some(&union)).await;
    assert_eq!(status, 422, "{body}");
}

// ---- the window, with the real clock ------------------------------------------------------

async fn a_claim_after_the_window_is_refused_with_the_day_it_closed(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let member = app.login(&p.member_pid).await;
    let (status, body) = app
        .post(
            "/api/v1/claims",
            Some(&member),
            &json!({"membership_id": p.membership_pid, "bank_card": BANK_CARD,
                    "event": {"kind": "inpatient", "admitted_on": "2025-03-01",
                              "discharged_on": "2025-03-11", "eligible_self_pay": "12000.00"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "claim_window_closed");
    // 2025-12-31 + 90 days.
    assert_eq!(body["error"]["details"]["closed_on"], "2026-03-31");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM claim").await, 0);
}

async fn bad_facts_are_refused_with_the_field(app: TestApp) {
    let p = period(&app, "union-education", "wj-2022", 0).await;
    let member = app.login(&p.member_pid).await;
    let (status, body) = app
        .post(
            "/api/v1/claims",
            Some(&member),
            &json!({"membership_id": p.membership_pid, "bank_card": BANK_CARD,
                    "event": {"kind": "inpatient", "admitted_on": "2022-03-08",
                              "discharged_on": "2022-03-01", "out_of_pocket": "1.001"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    assert!(
        body["error"]["details"]["field"]
            .as_str()
            .expect("field")
            .starts_with("event.")
    );
    let (status, body) = app
        .post(
            "/api/v1/claims",
            Some(&member),
            &json!({"membership_id": p.membership_pid, "bank_card": BANK_CARD,
                    "event": {"kind": "outpatient_special", "month": "2022-03",
                              "eligible_self_pay": "100.00"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "wrong_event_kind");
    let (status, _) = app
        .post(
            "/api/v1/claims",
            Some(&member),
            &json!({"membership_id": "nope", "event": {"kind": "inpatient"}}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM claim").await, 0);
}

on_both_backends!(
    a_claim_after_the_window_is_refused_with_the_day_it_closed,
    bad_facts_are_refused_with_the_field,
);

// ---- photos on a real S3-protocol server ---------------------------------------------------

async fn on_s3(backend: huzhu_tests::harness::Backend) {
    let Some(s3) = huzhu_tests::s3::s3() else {
        return;
    };
    let Some(app) = huzhu_tests::harness::spawn_app_with(backend, |s| {
        in_2025(s);
        s3.configure(s, &s3.secret_key);
    })
    .await
    else {
        return;
    };
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let reviewers = xincheng_reviewers(&app, "union-power").await;
    let paid = walk(
        &app,
        &p,
        "nm-inpatient-2025",
        json!({"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-11",
               "billed_days": 10, "eligible_self_pay": "12000.00"}),
        &reviewers,
        &["union_review", "service_point_review", "association_review"],
    )
    .await;
    // Every photo and thumbnail is in the bucket, and served back through its signed link.
    let claim = paid["claim"]["id"].as_str().expect("id");
    let objects = stored_objects(&app).await;
    let materials = paid["materials"].as_array().expect("materials");
    assert_eq!(objects.len(), materials.len() * 2, "{objects:?}");
    assert!(
        objects
            .iter()
            .all(|k| k.starts_with(&format!("claims/{claim}/")))
    );
    let res = app
        .client
        .get(app.url(materials[0]["thumbnail_url"].as_str().expect("url")))
        .send()
        .await
        .expect("thumbnail");
    assert_eq!(res.status(), 200);
}

mod s3 {
    mod sqlite {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_claim_with_photos_on_s3_walks_to_paid() {
            super::super::on_s3(huzhu_tests::harness::Backend::Sqlite).await;
        }
    }
    mod postgres {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_claim_with_photos_on_s3_walks_to_paid() {
            super::super::on_s3(huzhu_tests::harness::Backend::Postgres).await;
        }
    }
}

// ---- adjustments, shorter trees, service levels -------------------------------------------

async fn the_association_may_lower_an_amount_with_a_written_reason(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 3).await;
    let member = app.login(&p.member_pid).await;
    let claim = to_association(
        &app,
        &p,
        &member,
        json!({"kind": "inpatient", "admitted_on": "2025-05-01", "discharged_on": "2025-05-06",
               "billed_days": 5, "eligible_self_pay": "5000.00"}),
        301,
    )
    .await;
    let officer = app.login("association").await;
    // Without a reason, or above what the rules give: refused, nothing changes.
    let (status, body) = act(
        &app,
        &officer,
        &claim,
        "approve",
        json!({"amount": "100.00"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "reason_required");
    let (status, body) = act(
        &app,
        &officer,
        &claim,
        "approve",
        json!({"amount": "999999.00", "adjustment_reason": "多算"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "adjustment_out_of_range");
    assert_eq!(
        detail(&app, &officer, &claim).await["claim"]["status"],
        "association_review"
    );
    let (status, body) = act(
        &app,
        &officer,
        &claim,
        "approve",
        json!({"amount": "1000.00", "adjustment_reason": "发票中含自费药品，核减"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claim"]["approved"], "1000.00");
    assert!(dec(&body["claim"]["payable"]) > Decimal::new(1000, 0));
    assert_eq!(body["claim"]["adjustment_reason"], "发票中含自费药品，核减");
    assert_eq!(list_items_are_their_details(&app, &officer).await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_event WHERE action = 'claim.approve'")
            .await,
        1
    );
}

async fn a_unit_without_a_service_point_skips_that_stage(app: TestApp) {
    let admin = app.login("admin").await;
    let (_, associations) = app
        .get("/api/v1/organisations?kind=association", Some(&admin))
        .await;
    let association = associations["items"][0]["id"]
        .as_str()
        .expect("association");
    let (status, unit) = app
        .post(
            "/api/v1/organisations",
            Some(&admin),
            &json!({"parent_id": association, "kind": "unit_union", "name": "自治区直属机关工会"}),
        )
        .await;
    assert_eq!(status, 201, "{unit}");
    let unit_id = unit["id"].as_str().expect("unit");
    let (status, body) = app
        .post(
            "/api/v1/staff",
            Some(&admin),
            &json!({"organisation_id": unit_id, "role": "union_reviewer", "name": "直属工会干事",
                    "login": "union-direct"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, member) = app
        .post(
            "/api/v1/members",
            Some(&admin),
            &json!({"organisation_id": unit_id, "name": "赵卫东", "id_number": "11010519491231002X"}),
        )
        .await;
    assert_eq!(status, 201, "{member}");
    let member_pid = member["id"].as_str().expect("member").to_owned();
    let p = first_period_of(&app, &member_pid, "yc-2022", 2022).await;
    let reviewers = vec![
        ("union_review", app.login("union-direct").await),
        ("association_review", app.login("association").await),
    ];
    walk(
        &app,
        &p,
        "yc-2022",
        json!({"kind": "inpatient", "admitted_on": "2022-06-01", "discharged_on": "2022-06-09",
               "personal_burden": "6000.00"}),
        &reviewers,
        &["union_review", "association_review"],
    )
    .await;
}

async fn late_payments_stand_out_in_the_queue(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 5).await;
    let member = app.login(&p.member_pid).await;
    let claim = to_association(
        &app,
        &p,
        &member,
        json!({"kind": "inpatient", "admitted_on": "2025-05-01", "discharged_on": "2025-05-06",
               "eligible_self_pay": "5000.00"}),
        401,
    )
    .await;
    let officer = app.login("association").await;
    let (status, approved) = act(&app, &officer, &claim, "approve", json!({})).await;
    assert_eq!(status, 200, "{approved}");
    // Approved on Monday 2025-09-15: 5 working days → Monday 2025-09-22; 15 → 2025-10-11
    // (the National Day holiday, 1–8 October, is skipped; Saturday 11 October is a make-up
    // working day).
    assert_eq!(approved["claim"]["pay_due_on"], "2025-09-22");
    assert_eq!(approved["claim"]["pay_due_max_on"], "2025-10-11");
    assert_eq!(approved["claim"]["overdue"], false);
    // Time passes (the due days move into the past), and the claim stands out.
    app.state
        .db
        .execute_unprepared(&format!(
            "UPDATE claim SET pay_due_on = '2025-09-01', pay_due_max_on = '2025-09-10' WHERE pid = '{claim}'"
        ))
        .await
        .expect("age the claim");
    let (_, late) = app.get("/api/v1/claims?overdue=true", Some(&officer)).await;
    let items = late["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{late}");
    assert_eq!(items[0]["id"], claim.as_str());
    assert_eq!(items[0]["overdue"], true);
    assert_eq!(items[0]["overdue_beyond_maximum"], true);
    let (_, on_time) = app
        .get(
            "/api/v1/claims?overdue=false&status=approved",
            Some(&officer),
        )
        .await;
    assert_eq!(on_time["items"].as_array().expect("items").len(), 0);
    assert_eq!(list_items_are_their_details(&app, &officer).await, 1);
}
