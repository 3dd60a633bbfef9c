//! Finding 5: far-future and absurd values are refused before anything is stored, each with
//! its own code — a coverage extension to 9999-12-31, a stay admitted on 9999-12-30, an event
//! wholly outside the period claimed against, an amount of more than ten million.

use huzhu::settings::Settings;
use huzhu_tests::claim_flow::{BANK_CARD, Period, file, period};
use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends_with;
use serde_json::{Value, json};

/// Inside the claim window of the demo's 2025 schemes.
fn in_2025(s: &mut Settings) {
    s.clock.today = chrono::NaiveDate::from_ymd_opt(2025, 9, 15);
}

fn stay(admitted: &str, discharged: &str, self_pay: &str) -> Value {
    json!({"kind": "inpatient", "admitted_on": admitted, "discharged_on": discharged,
           "billed_days": 1, "eligible_self_pay": self_pay})
}

async fn try_file(app: &TestApp, token: &str, p: &Period, event: Value) -> (u16, Value) {
    app.post(
        "/api/v1/claims",
        Some(token),
        &json!({ "membership_id": p.membership_pid, "event": event, "bank_card": BANK_CARD }),
    )
    .await
}

async fn refused_with(app: &TestApp, event: Value, code: &str, field: &str) {
    let p = period(app, "union-power", "nm-inpatient-2025", 0).await;
    let member = app.login(&p.member_pid).await;
    let before = app.count("SELECT COUNT(*) AS n FROM claim").await;
    let (status, body) = try_file(app, &member, &p, event).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["details"]["field"], field, "{body}");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM claim").await,
        before,
        "nothing stored"
    );
}

async fn a_stay_admitted_in_the_far_future_is_refused_event_in_future(app: TestApp) {
    refused_with(
        &app,
        stay("9999-12-30", "9999-12-31", "1000.00"),
        "event_in_future",
        "event.admitted_on",
    )
    .await;
}

async fn a_stay_discharged_after_today_is_refused_event_in_future(app: TestApp) {
    refused_with(
        &app,
        stay("2025-09-10", "2025-09-20", "1000.00"),
        "event_in_future",
        "event.discharged_on",
    )
    .await;
}

async fn a_stay_wholly_outside_the_period_is_refused_event_outside_period(app: TestApp) {
    refused_with(
        &app,
        stay("2023-03-01", "2023-03-05", "1000.00"),
        "event_outside_period",
        "event.admitted_on",
    )
    .await;
}

async fn an_amount_over_ten_million_is_refused_amount_out_of_range(app: TestApp) {
    refused_with(
        &app,
        stay("2025-03-01", "2025-03-05", "10000000.01"),
        "amount_out_of_range",
        "event.eligible_self_pay",
    )
    .await;
}

async fn a_sane_claim_is_still_filed_and_a_draft_cannot_be_moved_into_the_future(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let member = app.login(&p.member_pid).await;
    let draft = file(
        &app,
        &member,
        &p,
        stay("2025-03-01", "2025-03-05", "1000.00"),
    )
    .await;
    let id = draft["claim"]["id"].as_str().expect("id");
    let version = draft["claim"]["version"].clone();
    let (status, body) = app
        .patch(
            &format!("/api/v1/claims/{id}"),
            Some(&member),
            &json!({"version": version, "event": stay("9999-12-30", "9999-12-31", "1000.00")}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "event_in_future", "{body}");
    let (_, after) = app
        .get(&format!("/api/v1/claims/{id}"), Some(&member))
        .await;
    assert_eq!(after["claim"]["version"], version, "the draft is unchanged");
}

async fn an_extension_to_9999_is_refused_and_nothing_is_extended(app: TestApp) {
    let officer = app.login("association").await;
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let ends = "SELECT COUNT(*) AS n FROM membership WHERE coverage_end > '2026-12-31'";
    let (status, body) = app
        .post(
            "/api/v1/extensions",
            Some(&officer),
            &json!({"membership_ids": [p.membership_pid], "new_end": "9999-12-31",
                    "reason": "探测 / probe"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "extension_too_long", "{body}");
    assert_eq!(body["error"]["details"]["field"], "new_end", "{body}");
    assert_eq!(app.count(ends).await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM coverage_extension")
            .await,
        0
    );
    // The same for a whole scheme.
    let (status, body) = app
        .post(
            "/api/v1/extensions",
            Some(&officer),
            &json!({"scheme_code": "nm-inpatient-2025", "new_end": "9999-12-31",
                    "reason": "探测 / probe"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "extension_too_long", "{body}");
    assert_eq!(app.count(ends).await, 0);
}

async fn an_extension_by_one_term_is_still_done(app: TestApp) {
    let officer = app.login("association").await;
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let end: chrono::NaiveDate = p.coverage_end.parse().expect("date");
    let new_end = end
        .checked_add_months(chrono::Months::new(12))
        .expect("date");
    let (status, body) = app
        .post(
            "/api/v1/extensions",
            Some(&officer),
            &json!({"membership_ids": [p.membership_pid], "new_end": new_end,
                    "reason": "疫情期间免费延长保障期"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["membership_count"], 1, "{body}");
}

on_both_backends_with!(sane_ranges, in_2025 =>
    a_stay_admitted_in_the_far_future_is_refused_event_in_future,
    a_stay_discharged_after_today_is_refused_event_in_future,
    a_stay_wholly_outside_the_period_is_refused_event_outside_period,
    an_amount_over_ten_million_is_refused_amount_out_of_range,
    a_sane_claim_is_still_filed_and_a_draft_cannot_be_moved_into_the_future,
    an_extension_to_9999_is_refused_and_nothing_is_extended,
    an_extension_by_one_term_is_still_done,
);
