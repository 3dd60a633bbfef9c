//! Review by exception (免申即享, issue 21 item 5): an offer enters the first review stage its
//! scheme's data does not skip and needs only the materials that data asks for; the
//! association approves offers in bulk, each claim judged and locked as a single approval —
//! on both databases.

use chrono::NaiveDate;
use huzhu_tests::claim_flow::{
    self, BANK_CARD, Period, act, complete_hengyang, dec, detail, file, hengyang_period, period,
    upload_required_small,
};
use huzhu_tests::harness::TestApp;
use huzhu_tests::{on_both_backends_with, pictures};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::offers::{id_number_of, import, in_2025, stays};

fn in_2021(s: &mut huzhu::settings::Settings) {
    s.clock.today = NaiveDate::from_ymd_opt(2021, 9, 15);
}

on_both_backends_with!(review_2025, in_2025 =>
    an_inner_mongolia_offer_goes_straight_to_the_association_with_no_photograph,
    offers_are_approved_in_bulk_and_each_refusal_leaves_its_claim_as_it_was,
    bulk_approval_under_concurrency_holds_the_period_invariant,
);

on_both_backends_with!(review_2021, in_2021 =>
    a_hengyang_offer_from_the_threshold_keeps_the_appraisal_and_needs_its_certificate,
);

/// The pids of `period`'s offers, in filing order (import, settlement date, row).
async fn offers_of(app: &TestApp, p: &Period) -> Vec<String> {
    let member = app.login(&p.member_pid).await;
    let (status, mine) = app.get("/api/v1/claims?limit=100", Some(&member)).await;
    assert_eq!(status, 200, "{mine}");
    let mut offers: Vec<(chrono::DateTime<chrono::FixedOffset>, String)> = mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|c| {
            c["filed_by"] == "insurance_file" && c["membership_id"] == p.membership_pid.as_str()
        })
        .map(|c| {
            let filed = c["first_submitted_at"].as_str().expect("filed");
            (
                chrono::DateTime::parse_from_rfc3339(filed).expect("a time"),
                c["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect();
    offers.sort();
    offers.into_iter().map(|(_, id)| id).collect()
}

/// The member confirms the offer with the card on the test's form; returns the detail.
async fn confirm(app: &TestApp, p: &Period, claim: &str) -> (u16, Value) {
    let member = app.login(&p.member_pid).await;
    let version = detail(app, &member, claim).await["claim"]["version"].clone();
    app.post(
        &format!("/api/v1/claims/{claim}/confirm-offer"),
        Some(&member),
        &json!({ "version": version, "bank_card": BANK_CARD }),
    )
    .await
}

/// The facts the simulation reads for one of [`stays`]'s rows.
fn stay_event(admitted: &str, discharged: &str, self_pay: &str, deductible: &str) -> Value {
    json!({"kind": "inpatient", "admitted_on": admitted, "discharged_on": discharged,
           "billed_days": 10, "eligible_self_pay": self_pay, "deductible": deductible,
           "personal_burden": "15000.00"})
}

async fn version_of(app: &TestApp, token: &str, claim: &str) -> Value {
    detail(app, token, claim).await["claim"]["version"].clone()
}

async fn an_inner_mongolia_offer_goes_straight_to_the_association_with_no_photograph(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let id = id_number_of(&app, &p).await;
    let association = app.login("association").await;
    let job = import(
        &app,
        &association,
        stays(&[(
            &id,
            "JS-R1",
            "2025-03-01",
            "2025-03-11",
            "12000.00",
            "800.00",
        )]),
        "结算.csv",
    )
    .await;
    assert_eq!(job["summary"]["offered"], 1, "{job}");
    let claim = offers_of(&app, &p).await.remove(0);
    let member = app.login(&p.member_pid).await;
    // The settlement replaces every paper of 细则第十一条: nothing to photograph.
    let shown = detail(&app, &member, &claim).await;
    assert_eq!(shown["required_materials"], json!([]), "{shown}");
    let (status, confirmed) = confirm(&app, &p, &claim).await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["claim"]["status"], "association_review");
    assert_eq!(confirmed["claim"]["stages"], json!(["association_review"]));
    // The union and the service point have nothing of it in their queues.
    for login in ["union-power", "sp-xincheng"] {
        let token = app.login(login).await;
        let (_, queue) = app
            .get(
                "/api/v1/claims?status=union_review,service_point_review&limit=100",
                Some(&token),
            )
            .await;
        assert!(
            !queue["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|c| c["id"] == claim.as_str()),
            "{login}: {queue}"
        );
    }
    // The same stay applied for passes every stage and needs its papers.
    let other = period(&app, "union-power", "nm-inpatient-2025", 1).await;
    let other_member = app.login(&other.member_pid).await;
    let draft = file(
        &app,
        &other_member,
        &other,
        stay_event("2025-03-01", "2025-03-11", "12000.00", "800.00"),
    )
    .await;
    assert!(
        draft["required_materials"]
            .as_array()
            .expect("required")
            .iter()
            .any(|m| m == "settlement_slip"),
        "{draft}"
    );
    let applied = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required_small(&app, &other_member, &draft, 71).await;
    let (status, submitted) = act(&app, &other_member, &applied, "submit", json!({})).await;
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(
        submitted["claim"]["stages"],
        json!(["union_review", "service_point_review", "association_review"])
    );
}

async fn a_hengyang_offer_from_the_threshold_keeps_the_appraisal_and_needs_its_certificate(
    app: TestApp,
) {
    complete_hengyang(&app).await;
    let p = hengyang_period(&app).await;
    let id = id_number_of(&app, &p).await;
    let association = app.login("association").await;
    // 办法第二十六条: a claim of 7000 or more goes to a third-party appraisal; the settlement
    // replaces the slip, not the appraisal.
    let job = import(
        &app,
        &association,
        stays(&[
            (&id, "HY-1", "2021-08-01", "2021-08-11", "9000.00", "600.00"),
            (&id, "HY-2", "2021-08-20", "2021-08-25", "3000.00", "600.00"),
        ]),
        "结算.csv",
    )
    .await;
    assert_eq!(job["summary"]["offered"], 2, "{job}");
    let offers = offers_of(&app, &p).await;
    let (big, small) = (&offers[0], &offers[1]);
    let member = app.login(&p.member_pid).await;
    let shown = detail(&app, &member, big).await;
    assert_eq!(
        shown["required_materials"],
        json!(["appraisal_certificate"])
    );
    let (status, refused) = confirm(&app, &p, big).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "materials_missing");
    assert_eq!(
        refused["error"]["details"]["missing"],
        json!(["appraisal_certificate"])
    );
    assert_eq!(
        detail(&app, &member, big).await["claim"]["status"],
        "offered"
    );
    let (status, body) = claim_flow::upload(
        &app,
        &member,
        big,
        "appraisal_certificate",
        pictures::small_document_jpeg(9101),
        "鉴定书.jpg",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, confirmed) = confirm(&app, &p, big).await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["claim"]["status"], "appraisal");
    assert_eq!(
        confirmed["claim"]["stages"],
        json!(["appraisal", "association_review"])
    );
    // Under the threshold: no appraisal, no paper; straight to the association.
    assert_eq!(
        detail(&app, &member, small).await["required_materials"],
        json!([])
    );
    let (status, confirmed) = confirm(&app, &p, small).await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["claim"]["status"], "association_review");
}

async fn offers_are_approved_in_bulk_and_each_refusal_leaves_its_claim_as_it_was(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 2).await;
    let id = id_number_of(&app, &p).await;
    let association = app.login("association").await;
    let rows = [
        ("JS-B1", "2025-02-01", "2025-02-11", "20000.00"),
        ("JS-B2", "2025-03-01", "2025-03-11", "8000.00"),
        ("JS-B3", "2025-04-01", "2025-04-11", "3000.00"),
        ("JS-B4", "2025-05-01", "2025-05-11", "5000.00"),
    ];
    let file_rows: Vec<_> = rows
        .iter()
        .map(|(s, a, d, pay)| (id.as_str(), *s, *a, *d, *pay, "800.00"))
        .collect();
    let job = import(&app, &association, stays(&file_rows), "结算.csv").await;
    assert_eq!(job["summary"]["offered"], 4, "{job}");
    let offers = offers_of(&app, &p).await;
    // Three are confirmed; the fourth is still an unconfirmed offer.
    for claim in &offers[..3] {
        let (status, body) = confirm(&app, &p, claim).await;
        assert_eq!(status, 200, "{body}");
    }
    // An application waiting at the association, of another member.
    let other = period(&app, "union-power", "nm-inpatient-2025", 3).await;
    let other_member = app.login(&other.member_pid).await;
    let draft = file(
        &app,
        &other_member,
        &other,
        stay_event("2025-03-01", "2025-03-11", "6000.00", "800.00"),
    )
    .await;
    let applied = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required_small(&app, &other_member, &draft, 72).await;
    assert_eq!(
        act(&app, &other_member, &applied, "submit", json!({}))
            .await
            .0,
        200
    );
    for login in ["union-power", "sp-xincheng"] {
        let token = app.login(login).await;
        assert_eq!(
            act(&app, &token, &applied, "approve", json!({})).await.0,
            200
        );
    }

    let listed = |claims: &[(&str, Value)]| json!({ "claims": claims.iter().map(|(id, v)| json!({"id": id, "version": v})).collect::<Vec<_>>() });
    let v: Vec<Value> = {
        let mut v = Vec::new();
        for c in offers.iter().chain(std::iter::once(&applied)) {
            v.push(version_of(&app, &association, c).await);
        }
        v
    };
    // Refused as a whole: not the association's reviewer; an empty list; over the bound.
    for login in ["union-power", "sp-xincheng", "admin"] {
        let token = app.login(login).await;
        let (status, body) = app
            .post(
                "/api/v1/claims/approve-offers",
                Some(&token),
                &listed(&[(&offers[0], v[0].clone())]),
            )
            .await;
        assert_eq!(status, 403, "{login}: {body}");
    }
    let (status, body) = app
        .post(
            "/api/v1/claims/approve-offers",
            Some(&association),
            &json!({"claims": []}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let many: Vec<(&str, Value)> = (0..101)
        .map(|_| (offers[0].as_str(), v[0].clone()))
        .collect();
    let (status, body) = app
        .post(
            "/api/v1/claims/approve-offers",
            Some(&association),
            &listed(&many),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM claim WHERE status = 'approved'")
            .await,
        0
    );

    // Listed last-filed first, one at a version since overtaken, an unconfirmed offer, an
    // application and an unknown id.
    let stale = v[1].as_i64().expect("version") - 1;
    let (status, summary) = app
        .post(
            "/api/v1/claims/approve-offers",
            Some(&association),
            &listed(&[
                (&offers[2], v[2].clone()),
                (&offers[1], json!(stale)),
                (&offers[0], v[0].clone()),
                (&offers[3], v[3].clone()),
                (&applied, v[4].clone()),
                ("0193a4c2-7d1e-7c11-9a0e-3f6a1b2c4d5e", json!(1)),
            ]),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    let approved: Vec<&str> = summary["approved"]
        .as_array()
        .expect("approved")
        .iter()
        .map(|a| a["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        approved,
        vec![offers[2].as_str(), offers[0].as_str()],
        "{summary}"
    );
    let skipped: Vec<(&str, &str)> = summary["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().expect("id"),
                s["error"]["code"].as_str().expect("code"),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        vec![
            (offers[1].as_str(), "version_conflict"),
            (offers[3].as_str(), "invalid_transition"),
            (applied.as_str(), "not_an_offer"),
            ("0193a4c2-7d1e-7c11-9a0e-3f6a1b2c4d5e", "not_found"),
        ],
        "{summary}"
    );
    assert_eq!(
        summary["skipped"][0]["error"]["details"]["current_version"],
        v[1]
    );
    assert_eq!(
        summary["skipped"][1]["error"]["details"]["status"],
        "offered"
    );
    // Each approved as alone, in filing order: the same amounts as the simulation of the two
    // stays, each claim's detail saying what the summary says.
    let sim = claim_flow::simulate(
        &app,
        "nm-inpatient-2025",
        &p,
        vec![
            stay_event(rows[0].1, rows[0].2, rows[0].3, "800.00"),
            stay_event(rows[2].1, rows[2].2, rows[2].3, "800.00"),
        ],
    )
    .await;
    let mut total = Decimal::ZERO;
    for (a, expected) in summary["approved"]
        .as_array()
        .expect("approved")
        .iter()
        .zip([&sim["results"][1], &sim["results"][0]])
    {
        assert_eq!(a["approved"], expected["payable"], "{summary} {sim}");
        let d = detail(&app, &association, a["id"].as_str().expect("id")).await;
        assert_eq!(d["claim"]["status"], "approved");
        assert_eq!(d["claim"]["approved"], a["approved"]);
        assert_eq!(d["claim"]["version"], a["version"]);
        total += dec(&a["approved"]);
    }
    assert_eq!(dec(&summary["approved_total"]), total);
    assert_eq!(total, dec(&sim["period_total"]), "{sim}");
    // The skipped ones are as they were.
    for (claim, version, status) in [
        (&offers[1], &v[1], "association_review"),
        (&offers[3], &v[3], "offered"),
        (&applied, &v[4], "association_review"),
    ] {
        let d = detail(&app, &association, claim).await;
        assert_eq!(d["claim"]["status"], status, "{d}");
        assert_eq!(&d["claim"]["version"], version, "{d}");
    }
    // Sent again as it was: nothing more is approved, each already-approved one is stale.
    let (status, again) = app
        .post(
            "/api/v1/claims/approve-offers",
            Some(&association),
            &listed(&[(&offers[2], v[2].clone()), (&offers[0], v[0].clone())]),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["approved"], json!([]));
    assert_eq!(again["skipped"][0]["error"]["code"], "version_conflict");
    assert_eq!(dec(&again["approved_total"]), Decimal::ZERO);
}

async fn bulk_approval_under_concurrency_holds_the_period_invariant(app: TestApp) {
    // Three members' periods, four offered stays each: the 500000 cap cuts the fourth, and the
    // first-stay allowance and the later stays' deductible depend on filing order.
    let stays_of = [
        ("2025-01-05", "2025-01-15", "150000.00"),
        ("2025-02-05", "2025-02-15", "200000.00"),
        ("2025-03-05", "2025-03-15", "180000.00"),
        ("2025-04-05", "2025-04-15", "100000.00"),
    ];
    let mut periods = Vec::new();
    let mut file_rows = Vec::new();
    let mut ids = Vec::new();
    for i in 4..7 {
        let p = period(&app, "union-power", "nm-inpatient-2025", i).await;
        ids.push(id_number_of(&app, &p).await);
        periods.push(p);
    }
    for (n, id) in ids.iter().enumerate() {
        for (k, (admitted, discharged, pay)) in stays_of.iter().enumerate() {
            file_rows.push((
                id.clone(),
                format!("JS-C{n}{k}"),
                *admitted,
                *discharged,
                *pay,
            ));
        }
    }
    let rows: Vec<(&str, &str, &str, &str, &str, &str)> = file_rows
        .iter()
        .map(|(id, s, a, d, pay)| (id.as_str(), s.as_str(), *a, *d, *pay, "800.00"))
        .collect();
    let association = app.login("association").await;
    let job = import(&app, &association, stays(&rows), "结算.csv").await;
    assert_eq!(job["summary"]["offered"], 12, "{job}");
    let mut claims = Vec::new();
    for p in &periods {
        for claim in offers_of(&app, p).await {
            let (status, body) = confirm(&app, p, &claim).await;
            assert_eq!(status, 200, "{body}");
            claims.push(claim);
        }
    }
    // A second officer, so that two people approve at once as well as two requests.
    let second = claim_flow::second_association_reviewer(&app).await;
    let mut listed = Vec::new();
    for c in &claims {
        listed.push(json!({ "id": c, "version": version_of(&app, &association, c).await }));
    }
    // Each request holds two claims of every period (a bulk approval takes its claims in filing
    // order, whatever the list's): the first and second stays in one, the third and fourth in
    // the other, so each period's claims are approved two at a time, one by each request. Only
    // the period lock makes the second of a pair wait for the first: without it both judge the
    // period without the other, and the last pair together pays past the cap.
    let (first_half, second_half): (Vec<Value>, Vec<Value>) = {
        let (a, b): (Vec<_>, Vec<_>) = listed.iter().enumerate().partition(|(i, _)| i % 4 < 2);
        (
            a.into_iter().map(|(_, v)| v.clone()).collect(),
            b.into_iter().map(|(_, v)| v.clone()).collect(),
        )
    };
    let mut tasks = tokio::task::JoinSet::new();
    let bulk = |token: String, list: Vec<Value>| {
        let client = app.client.clone();
        let url = app.url("/api/v1/claims/approve-offers");
        async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "claims": list }))
                .send()
                .await
                .expect("bulk");
            let status = res.status().as_u16();
            (
                None,
                status,
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    tasks.spawn(bulk(association.clone(), first_half));
    tasks.spawn(bulk(second.clone(), second_half));
    // Every other claim of the last period also approved alone, at once.
    for (i, item) in listed
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= 8 && i % 2 == 1)
    {
        let client = app.client.clone();
        let claim = item["id"].as_str().expect("id").to_owned();
        let url = app.url(&format!("/api/v1/claims/{claim}/approve"));
        let token = if i % 4 == 1 {
            association.clone()
        } else {
            second.clone()
        };
        let version = item["version"].clone();
        tasks.spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "version": version }))
                .send()
                .await
                .expect("approve");
            let status = res.status().as_u16();
            (
                Some(claim),
                status,
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        });
    }
    // Each claim is approved exactly once, by whichever request came first.
    let mut approvals: std::collections::BTreeMap<String, u32> = Default::default();
    while let Some(done) = tasks.join_next().await {
        let (single, status, body) = done.expect("task");
        match single {
            Some(claim) => match status {
                200 => *approvals.entry(claim).or_default() += 1,
                409 => assert!(
                    ["version_conflict", "invalid_transition"]
                        .contains(&body["error"]["code"].as_str().unwrap_or_default()),
                    "{body}"
                ),
                other => panic!("single approval answered {other}: {body}"),
            },
            None => {
                assert_eq!(status, 200, "{body}");
                for a in body["approved"].as_array().expect("approved") {
                    *approvals
                        .entry(a["id"].as_str().expect("id").to_owned())
                        .or_default() += 1;
                }
                for s in body["skipped"].as_array().expect("skipped") {
                    assert_eq!(s["error"]["code"], "version_conflict", "{body}");
                }
            }
        }
    }
    assert_eq!(approvals.len(), 12, "{approvals:?}");
    assert!(approvals.values().all(|n| *n == 1), "{approvals:?}");
    // Each period granted what the engine pays for its four stays in filing order.
    for (p, chunk) in periods.iter().zip(claims.chunks(4)) {
        let mut granted = Decimal::ZERO;
        for c in chunk {
            let d = detail(&app, &association, c).await;
            assert!(
                ["approved", "closed"].contains(&d["claim"]["status"].as_str().unwrap_or_default()),
                "{d}"
            );
            granted += dec(&d["claim"]["approved"]);
        }
        let events = stays_of
            .iter()
            .map(|(a, d, pay)| stay_event(a, d, pay, "800.00"))
            .collect();
        let sim = claim_flow::simulate(&app, "nm-inpatient-2025", p, events).await;
        assert_eq!(granted, dec(&sim["period_total"]), "{sim}");
        assert!(granted > Decimal::ZERO);
    }
}
