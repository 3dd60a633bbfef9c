//! Four eyes on money: whoever filed a claim or changed its payee card cannot approve it, the
//! same staff account never approves two stages of one claim (`403 same_reviewer`), and a
//! payee card set by anyone but the member is its own timeline step, masked, told to the member
//! by SMS through the dispatcher.

use chrono::Duration;
use huzhu::service::reminders::dispatch::{DispatchConfig, Dispatcher};
use huzhu::service::reminders::limits::NumberLimits;
use huzhu::settings::Settings;
use huzhu_tests::claim_flow::{
    BANK_CARD, Period, act, complete_hengyang, detail, file, hengyang_period, period,
    second_association_reviewer, second_reviewer, upload, upload_required,
};
use huzhu_tests::fake_sms::FakeTencent;
use huzhu_tests::harness::{Backend, TestApp, spawn_app_with};
use huzhu_tests::on_both_backends_with;
use huzhu_tests::pictures;
use serde_json::{Value, json};

/// The unit union of `union-power`.
const POWER: &str = "内蒙古电力（集团）有限责任公司工会";

/// Another card that passes the Luhn check.
const OTHER_CARD: &str = "6217000000000000012";

fn in_2025(s: &mut Settings) {
    s.clock.today = chrono::NaiveDate::from_ymd_opt(2025, 9, 15);
}

fn in_2021(s: &mut Settings) {
    s.clock.today = chrono::NaiveDate::from_ymd_opt(2021, 6, 15);
}

fn stay() -> Value {
    json!({"kind": "inpatient", "admitted_on": "2025-05-01", "discharged_on": "2025-05-04",
           "eligible_self_pay": "2000.00"})
}

fn steps(detail: &Value, action: &str) -> Vec<Value> {
    detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|s| s["action"] == action)
        .cloned()
        .collect()
}

fn assert_same_reviewer(status: u16, body: &Value) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "same_reviewer", "{body}");
}

async fn a_clerk_who_filed_a_claim_cannot_approve_it(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 2).await;
    let clerk = app.login("union-power").await;
    let draft = file(&app, &clerk, &p, stay()).await;
    assert_eq!(draft["claim"]["filed_by"], "clerk");
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required(&app, &clerk, &draft, 41).await;
    assert_eq!(act(&app, &clerk, &claim, "submit", json!({})).await.0, 200);
    // The union has another clerk: the claim waits for her.
    let unit = app.unit_id(&clerk, POWER).await;
    let other = second_reviewer(&app, &unit, "union_reviewer", "union-power-2").await;
    let before = detail(&app, &clerk, &claim).await;

    let (status, body) = act(&app, &clerk, &claim, "approve", json!({})).await;
    assert_same_reviewer(status, &body);
    let after = detail(&app, &clerk, &claim).await;
    assert_eq!(after["claim"]["status"], "union_review");
    assert_eq!(after["claim"]["version"], before["claim"]["version"]);
    assert_eq!(after["timeline"], before["timeline"]);

    // The other clerk of the same union may.
    let (status, body) = act(&app, &other, &claim, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claim"]["status"], "service_point_review");
}

/// A union with a single clerk, who filed the claim: no one at the union may approve it, so her
/// approval moves it up to the service point unapproved (an `escalated` step); the levels above
/// review it as usual.
async fn a_claim_moves_up_when_its_level_has_no_other_reviewer(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 3).await;
    let clerk = app.login("union-power").await;
    let draft = file(&app, &clerk, &p, stay()).await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required(&app, &clerk, &draft, 42).await;
    assert_eq!(act(&app, &clerk, &claim, "submit", json!({})).await.0, 200);

    let (status, body) = act(&app, &clerk, &claim, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claim"]["status"], "service_point_review", "{body}");
    let d = detail(&app, &clerk, &claim).await;
    let escalated = steps(&d, "escalated");
    assert_eq!(escalated.len(), 1, "{d}");
    assert_eq!(escalated[0]["level"], "union");
    assert!(
        steps(&d, "approved").is_empty(),
        "nobody approved the union stage: {d}"
    );

    let sp = app.login("sp-xincheng").await;
    let (status, body) = act(&app, &sp, &claim, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let officer = app.login("association").await;
    let (status, body) = act(&app, &officer, &claim, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claim"]["status"], "approved", "{body}");
}

/// The clerk sets the claim's card to `card`.
async fn change_card(app: &TestApp, token: &str, claim: &str, card: &str) -> Value {
    let current = detail(app, token, claim).await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/claims/{claim}"),
            Some(token),
            &json!({"version": current["claim"]["version"], "bank_card": card}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The member files and submits; the union returns it for a new invoice.
async fn returned_claim(app: &TestApp, p: &Period, union: &str) -> String {
    let member = app.login(&p.member_pid).await;
    let draft = file(app, &member, p, stay()).await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required(app, &member, &draft, 43).await;
    assert_eq!(act(app, &member, &claim, "submit", json!({})).await.0, 200);
    let (status, body) = act(
        app,
        union,
        &claim,
        "return",
        json!({"message": "发票不清晰", "materials": [{"category": "invoice", "note": "请重拍发票"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload(
        app,
        &member,
        &claim,
        "invoice",
        pictures::document_jpeg(4301),
        "invoice.jpg",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    claim
}

async fn a_clerk_who_changed_the_payee_cannot_approve_it(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 3).await;
    let clerk = app.login("union-power").await;
    let claim = returned_claim(&app, &p, &clerk).await;
    change_card(&app, &clerk, &claim, OTHER_CARD).await;
    assert_eq!(act(&app, &clerk, &claim, "submit", json!({})).await.0, 200);
    let unit = app.unit_id(&clerk, POWER).await;
    second_reviewer(&app, &unit, "union_reviewer", "union-power-2").await;
    let before = detail(&app, &clerk, &claim).await;
    assert_eq!(before["claim"]["status"], "union_review");

    let (status, body) = act(&app, &clerk, &claim, "approve", json!({})).await;
    assert_same_reviewer(status, &body);
    let after = detail(&app, &clerk, &claim).await;
    assert_eq!(after["claim"]["version"], before["claim"]["version"]);
    assert_eq!(after["claim"]["status"], "union_review");
}

async fn one_account_never_approves_two_stages_of_a_claim(app: TestApp) {
    // A Hengyang period (stays of 7000 and over go through the appraisal, then the
    // association's review: both stages are the association's).
    let p = hengyang_period(&app).await;
    complete_hengyang(&app).await;

    let member = app.login(&p.member_pid).await;
    let draft = file(
        &app,
        &member,
        &p,
        json!({"kind": "inpatient", "admitted_on": "2021-05-01",
               "discharged_on": "2021-05-11", "eligible_self_pay": "8000.00"}),
    )
    .await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    upload_required(&app, &member, &draft, 47).await;
    assert_eq!(act(&app, &member, &claim, "submit", json!({})).await.0, 200);
    let union = app.login("union-dairy").await;
    let sp = app.login("sp-saihan").await;
    let association = app.login("association").await;
    for token in [&union, &sp, &association] {
        let (status, body) = act(&app, token, &claim, "approve", json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    let before = detail(&app, &association, &claim).await;
    assert_eq!(before["claim"]["status"], "association_review");

    let (status, body) = act(&app, &association, &claim, "approve", json!({})).await;
    assert_same_reviewer(status, &body);
    let after = detail(&app, &association, &claim).await;
    assert_eq!(after["claim"]["version"], before["claim"]["version"]);
    assert_eq!(after["claim"]["status"], "association_review");

    // A second association reviewer may.
    let other = second_association_reviewer(&app).await;
    let (status, body) = act(&app, &other, &claim, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["claim"]["status"], "approved");
}

on_both_backends_with!(in2025, in_2025 =>
    a_clerk_who_filed_a_claim_cannot_approve_it,
    a_claim_moves_up_when_its_level_has_no_other_reviewer,
    a_clerk_who_changed_the_payee_cannot_approve_it,
);
on_both_backends_with!(in2021, in_2021 =>
    one_account_never_approves_two_stages_of_a_claim,
);

// ---- the member is told ------------------------------------------------------------------

async fn a_payee_change_is_a_masked_step_and_an_sms_to_the_member(backend: Backend) {
    let gateway = FakeTencent::start().await;
    let sms = gateway.settings();
    let Some(app) = spawn_app_with(backend, {
        let sms = sms.clone();
        move |s| {
            in_2025(s);
            s.sms = sms;
        }
    })
    .await
    else {
        return;
    };
    // Every template gets an id at the gateway.
    let admin = app.login("admin").await;
    let (status, templates) = app.get("/api/v1/sms-templates", Some(&admin)).await;
    assert_eq!(status, 200, "{templates}");
    let templates = templates.as_array().expect("templates").clone();
    assert!(
        templates.iter().any(|t| t["occasion"] == "payee_changed"),
        "{templates:?}"
    );
    let mut payee_template = String::new();
    for (i, t) in templates.iter().enumerate() {
        let occasion = t["occasion"].as_str().expect("occasion");
        let id = format!("{}", 100_000 + i);
        if occasion == "payee_changed" {
            payee_template = id.clone();
        }
        let (status, body) = app
            .send_json(
                reqwest::Method::PUT,
                &format!("/api/v1/sms-templates/{occasion}"),
                Some(&admin),
                &json!({
                    "tencent_template_id": id,
                    "aliyun_template_code": format!("SMS_{}", 100_000 + i),
                    "body_zh": t["body_zh"],
                    "params": t["params"],
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    // A clerk files with a card: a step of its own, the card masked.
    let p = period(&app, "union-power", "nm-inpatient-2025", 4).await;
    let clerk = app.login("union-power").await;
    let draft = file(&app, &clerk, &p, stay()).await;
    let claim = draft["claim"]["id"].as_str().expect("id").to_owned();
    let member = app.login(&p.member_pid).await;
    let seen = detail(&app, &member, &claim).await;
    let changed = steps(&seen, "payee_changed");
    assert_eq!(changed.len(), 1, "{seen}");
    let note = changed[0]["note"].as_str().expect("note");
    assert!(note.contains("6217***********0004"), "{note}");
    assert!(!note.contains(BANK_CARD), "{note}");

    // The clerk edits the card of the returned claim: another step, old and new masked.
    upload_required(&app, &clerk, &draft, 45).await;
    assert_eq!(act(&app, &clerk, &claim, "submit", json!({})).await.0, 200);
    let sp_unit = app.unit_id(&clerk, POWER).await;
    let other = second_reviewer(&app, &sp_unit, "union_reviewer", "union-power-2").await;
    let (status, body) = act(
        &app,
        &other,
        &claim,
        "return",
        json!({"message": "发票不清晰", "materials": []}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    change_card(&app, &clerk, &claim, OTHER_CARD).await;
    let seen = detail(&app, &member, &claim).await;
    let changed = steps(&seen, "payee_changed");
    assert_eq!(changed.len(), 2, "{seen}");
    let note = changed[1]["note"].as_str().expect("note");
    assert!(
        note.contains("6217***********0004") && note.contains("6217***********0012"),
        "{note}"
    );
    assert!(
        !note.contains(OTHER_CARD) && !note.contains(BANK_CARD),
        "{note}"
    );
    assert_eq!(changed[1]["level"], "union");

    // The member's own change is no such step.
    let body = change_card(&app, &member, &claim, BANK_CARD).await;
    assert_eq!(steps(&body, "payee_changed").len(), 2, "{body}");

    // Two messages queued, both sent to the member's phone by the dispatcher.
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'payee_changed'")
            .await,
        2
    );
    let mut settings = (*app.state.settings).clone();
    settings.sms = sms;
    let provider = huzhu::integrations::sms::provider(&settings).expect("provider");
    let d = Dispatcher::from_state(
        &app.state,
        provider,
        DispatchConfig {
            lookup_after: Duration::zero(),
            batch: 50,
            quiet_hours: false,
            backoff_base: Duration::zero(),
            lease: Duration::seconds(1),
            ..DispatchConfig::default()
        },
        NumberLimits {
            per_minute: 100,
            per_day: 100,
        },
    );
    for _ in 0..20 {
        d.run(chrono::Utc::now()).await.expect("dispatch");
        if app
            .count("SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'payee_changed' AND status = 'accepted'")
            .await
            == 2
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent: Vec<_> = gateway
        .sent()
        .into_iter()
        .filter(|s| s.template == payee_template)
        .collect();
    assert_eq!(sent.len(), 2, "{:?}", gateway.sent());
    let params = format!("{:?}", sent.iter().map(|s| &s.params).collect::<Vec<_>>());
    assert!(
        params.contains("0004") && params.contains("0012"),
        "{params}"
    );
    assert!(!params.contains(OTHER_CARD), "{params}");
}

macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(huzhu_tests::harness::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(huzhu_tests::harness::Backend::Postgres).await;
                }
            )+
        }
    };
}

both!(a_payee_change_is_a_masked_step_and_an_sms_to_the_member);
