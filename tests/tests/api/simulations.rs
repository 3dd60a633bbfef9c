//! The simulation contract by HTTP, replaying the worked examples and refusals committed in
//! `api/tests/fixtures/simulate/`, and publishing scheme versions.

use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../api/tests/fixtures/simulate"
);

/// (name, request bytes, expected response) of every fixture.
fn fixtures() -> Vec<(String, Vec<u8>, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(FIXTURES).expect("fixtures") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".request.json") {
            let request = std::fs::read(&path).unwrap();
            let expected: Value = serde_json::from_slice(
                &std::fs::read(format!("{FIXTURES}/{stem}.response.json")).unwrap(),
            )
            .unwrap();
            out.push((stem.to_owned(), request, expected));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 10, "worked examples and refusals");
    out
}

async fn post_raw(app: &TestApp, body: Vec<u8>) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/api/v1/simulations"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

async fn the_worked_examples_and_refusals_answer_as_the_contract_says(app: TestApp) {
    for (name, request, expected) in fixtures() {
        let (status, body) = post_raw(&app, request).await;
        let want = if expected.get("error").is_some() {
            422
        } else {
            200
        };
        assert_eq!(status, want, "{name}: {body}");
        assert_eq!(body, expected, "{name}");
    }
}

async fn a_request_that_is_not_json_is_an_invalid_request(app: TestApp) {
    let (status, body) = post_raw(&app, b"{\"scheme\": ".to_vec()).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_request");
}

async fn the_schemes_are_listed_for_the_mini_program(app: TestApp) {
    let (status, list) = app.get("/api/v1/schemes", None).await;
    assert_eq!(status, 200);
    let codes: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    for code in [
        "hy-2021",
        "nm-inpatient-2022",
        "nm-inpatient-2025",
        "nm-xinkang-2022",
        "nm-xinkang-2025",
        "wj-2022",
        "yc-2022",
    ] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    let hy = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == "hy-2021")
        .unwrap();
    assert_eq!(hy["complete"], false);
    let (status, nm) = app.get("/api/v1/schemes/nm-inpatient-2022", None).await;
    assert_eq!(status, 200);
    assert_eq!(nm["version"], 1);
    assert!(
        nm["definition"]["display"]["display_name_zh"]
            .as_str()
            .unwrap()
            .contains("内蒙古")
    );
    assert_eq!(nm["definition"]["fees"]["in_service"], "100.00");
    assert!(!nm["definition"]["materials"].as_array().unwrap().is_empty());
    assert_eq!(app.get("/api/v1/schemes/no-such", None).await.0, 404);
}

async fn an_invalid_scheme_version_is_refused_with_its_problems_and_nothing_is_published(
    app: TestApp,
) {
    let admin = app.login("admin").await;
    let (_, current) = app.get("/api/v1/schemes/nm-inpatient-2022", None).await;
    let mut broken = current["definition"].clone();
    broken["inpatient"]["bands"][1]["from"] = json!("3500");
    broken["inpatient"]["bands"][2]["rate"] = json!("1.5");
    let (status, err) = app
        .post(
            "/api/v1/schemes/nm-inpatient-2022/versions",
            Some(&admin),
            &broken,
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "scheme_invalid");
    let problems = err["error"]["details"]["problems"].as_array().unwrap();
    assert!(problems.len() >= 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p["path"].as_str().unwrap().starts_with("inpatient.bands"))
    );
    let (_, versions) = app
        .get("/api/v1/schemes/nm-inpatient-2022/versions", Some(&admin))
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 1, "nothing published");

    // Only administrators publish.
    let reviewer = app.login("association").await;
    let (status, _) = app
        .post(
            "/api/v1/schemes/nm-inpatient-2022/versions",
            Some(&reviewer),
            &current["definition"],
        )
        .await;
    assert_eq!(status, 403);
}

async fn hy_2021_is_refused_until_a_complete_version_is_published(app: TestApp) {
    let request = json!({
        "scheme": "hy-2021",
        "member": { "coverage_start": "2021-01-01", "coverage_end": "2021-12-31" },
        "events": [{ "kind": "inpatient", "admitted_on": "2021-03-01", "discharged_on": "2021-03-11",
                     "billed_days": 10, "eligible_self_pay": "60000.00" }]
    });
    let (status, err) = app.post("/api/v1/simulations", None, &request).await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "scheme_incomplete");
    assert_eq!(
        err["error"]["details"]["missing"],
        json!(["inpatient.bands", "diagnosis.benefits"])
    );

    let admin = app.login("admin").await;
    let (_, current) = app.get("/api/v1/schemes/hy-2021", None).await;
    let mut complete = current["definition"].clone();
    complete.as_object_mut().unwrap().remove("missing");
    complete["inpatient"]["bands"] = json!([
        { "from": "0", "to": "10000", "rate": "0.50" },
        { "from": "10000", "rate": "0.60" }
    ]);
    complete["diagnosis"]["benefits"] = json!({ "default_amount": "10000.00" });
    let (status, published) = app
        .post("/api/v1/schemes/hy-2021/versions", Some(&admin), &complete)
        .await;
    assert_eq!(status, 201, "{published}");
    assert_eq!(published["version"], 2);
    assert_eq!(published["complete"], true);

    let (status, result) = app.post("/api/v1/simulations", None, &request).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(
        result["scheme_version"], 2,
        "every result names the version used"
    );
    // 10000 × 50% + 50000 × 60% = 35000; what is left (60000 − 35000 = 25000) is below the
    // second grant's 50000.
    assert_eq!(
        result["results"][0]["items"][0],
        json!({ "code": "banded", "amount": "35000.00" })
    );
}

async fn every_seed_scheme_is_published_exactly_as_its_file_says(app: TestApp) {
    // The engine's rules are tested on the definitions in the files; this proves the stored
    // versions both databases serve are those same definitions, field for field.
    for seed in huzhu::engine::seed_schemes().expect("seed schemes") {
        let (status, published) = app
            .get(&format!("/api/v1/schemes/{}", seed.code), None)
            .await;
        assert_eq!(status, 200, "{}", seed.code);
        assert_eq!(published["version"], 1);
        assert_eq!(
            published["definition"],
            serde_json::to_value(&seed).unwrap(),
            "{}",
            seed.code
        );
    }
}

on_both_backends!(
    every_seed_scheme_is_published_exactly_as_its_file_says,
    the_worked_examples_and_refusals_answer_as_the_contract_says,
    a_request_that_is_not_json_is_an_invalid_request,
    the_schemes_are_listed_for_the_mini_program,
    an_invalid_scheme_version_is_refused_with_its_problems_and_nothing_is_published,
    hy_2021_is_refused_until_a_complete_version_is_published,
);
