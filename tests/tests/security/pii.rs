//! Finding 3 and the `pg_dump` check: personal numbers never sit in a URL (look-ups take them
//! in a POST body; the old query form is refused with a 400 naming the new way), never in a log
//! line (captured from the running server and searched), and never in plain text in the
//! database (a `pg_dump` after writing steps is searched).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use huzhu::settings::{LogFormat, LogSettings};
use huzhu_tests::claim_flow::{file, period};
use huzhu_tests::harness::{Backend, TestApp, run_on_with};
use huzhu_tests::on_both_backends;
use serde_json::json;

/// A member the tests add (valid check digit, Luhn-valid card; not in the demo).
const ID_NUMBER: &str = "150102199003152344";
const PHONE: &str = "13987654321";
const CARD: &str = "6228480045123456787";
/// A second card, for a claim's payee.
const CLAIM_CARD: &str = "6222021234567890128";

/// Adds the test member to 电力 unit union (its reviewer); returns its public id.
async fn add_member(app: &TestApp) -> String {
    let union = app.login("union-power").await;
    let unit = app
        .unit_id(&union, "内蒙古电力（集团）有限责任公司工会")
        .await;
    let (status, body) = app
        .post(
            "/api/v1/members",
            Some(&union),
            &json!({"organisation_id": unit, "name": "王小明", "id_number": ID_NUMBER,
                    "phone": PHONE, "bank_card": CARD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

async fn a_personal_number_as_a_query_parameter_is_refused_naming_the_search(app: TestApp) {
    let admin = app.login("admin").await;
    for path in [
        format!("/api/v1/members?id_number={ID_NUMBER}"),
        format!("/api/v1/members?limit=5&phone={PHONE}"),
        format!("/api/v1/claims?bank_card={CARD}"),
        format!("/api/v1/members?ID_NUMBER={ID_NUMBER}"),
    ] {
        let (status, body) = app.get(&path, Some(&admin)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "pii_in_url", "{body}");
        assert_eq!(
            body["error"]["details"]["use"],
            "POST /api/v1/members/search"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("POST /api/v1/members/search")),
            "{body}"
        );
    }
    // Without a token too (nothing about the caller is needed to refuse it), as JSON with the
    // request id like every answer.
    let res = app
        .client
        .get(app.url(&format!("/api/v1/members?id_number={ID_NUMBER}")))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    assert!(res.headers().contains_key("x-request-id"));
    assert!(
        res.headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    );
}

async fn members_are_found_by_id_phone_or_card_in_a_post_body(app: TestApp) {
    let pid = add_member(&app).await;
    let union = app.login("union-power").await;
    for body in [
        json!({"id_number": ID_NUMBER}),
        json!({"phone": PHONE}),
        json!({"bank_card": CARD}),
        json!({"id_number": ID_NUMBER, "phone": PHONE}),
    ] {
        let (status, page) = app
            .post("/api/v1/members/search", Some(&union), &body)
            .await;
        assert_eq!(status, 200, "{body}: {page}");
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{body}: {page}");
        assert_eq!(items[0]["id"], pid.as_str());
    }
    // Another union's reviewer does not find the member (scope holds).
    let other = app.login("union-dairy").await;
    let (status, page) = app
        .post(
            "/api/v1/members/search",
            Some(&other),
            &json!({"id_number": ID_NUMBER}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0), "{page}");
    // No number: a 422 naming the field; a malformed one: its own code.
    let (status, body) = app
        .post("/api/v1/members/search", Some(&union), &json!({}))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = app
        .post(
            "/api/v1/members/search",
            Some(&union),
            &json!({"id_number": "150102199003152345"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"]["field"], "id_number");
}

/// The captured log of this process (the subscriber is global: installed once).
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static CAPTURE: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        huzhu::telemetry::init_with_writer(
            &LogSettings {
                format: LogFormat::Json,
                filter: "info".into(),
            },
            move || Capture(sink.clone()),
        );
        buffer
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn no_personal_number_or_token_reaches_the_log(app: TestApp) {
    let pid = add_member(&app).await;
    let union = app.login("union-power").await;
    let member = app.login(&pid).await;
    // In bodies.
    app.post(
        "/api/v1/members/search",
        Some(&union),
        &json!({"id_number": ID_NUMBER, "phone": PHONE, "bank_card": CARD}),
    )
    .await;
    app.post(
        "/api/v1/members",
        Some(&union),
        &json!({"organisation_id": "nope", "name": "王小明", "id_number": ID_NUMBER,
                "phone": PHONE, "bank_card": "6228480045123456788"}),
    )
    .await;
    // In query strings and paths (refused or not found: each logs a warning with its target).
    for path in [
        format!("/api/v1/members?id_number={ID_NUMBER}"),
        format!("/api/v1/members?mobile={PHONE}&card={CARD}"),
        format!("/api/v1/members/{ID_NUMBER}"),
        format!("/api/v1/claims/{PHONE}"),
        format!("/api/v1/claims/{CARD}/materials"),
        format!("/api/v1/members/{pid}?note={ID_NUMBER}"),
        format!("/api/v1/organisations?q=6228-4800-4512-3456-787&access_token={member}"),
    ] {
        let (status, _) = app.get(&path, Some(&union)).await;
        assert!((200..500).contains(&status), "{path} answered {status}");
    }
    // A token where it does not belong.
    app.get(&format!("/api/v1/me?token={member}"), Some("garbage"))
        .await;
    let log = String::from_utf8_lossy(&captured().lock().expect("log")).into_owned();
    assert!(
        log.contains("http.target") || log.contains("\"target\""),
        "the capture holds the request log: {log}"
    );
    for secret in [
        ID_NUMBER,
        PHONE,
        CARD,
        "6228480045123456788",
        member.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "{secret} is in the log:\n{}",
            log.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(
        !log.contains("6228-4800-4512-3456"),
        "grouped card in the log"
    );
}

on_both_backends!(
    a_personal_number_as_a_query_parameter_is_refused_naming_the_search,
    members_are_found_by_id_phone_or_card_in_a_post_body,
);

/// The capture must be installed before the server starts logging.
fn with_capture(_: &mut huzhu::settings::Settings) {
    captured();
}

mod log_capture {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_no_personal_number_or_token_reaches_the_log() {
        run_on_with(
            Backend::Sqlite,
            with_capture,
            no_personal_number_or_token_reaches_the_log,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_no_personal_number_or_token_reaches_the_log() {
        run_on_with(
            Backend::Postgres,
            with_capture,
            no_personal_number_or_token_reaches_the_log,
        )
        .await;
    }
}

/// Runs `pg_dump` on the test's database and returns the dump (data and schema).
fn pg_dump(url: &str) -> String {
    let out = std::process::Command::new("pg_dump")
        .arg("--no-owner")
        .arg(url)
        .output()
        .expect("pg_dump runs (apt-get install postgresql-client)");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn after_writing_steps_a_pg_dump_holds_no_plaintext_personal_number(app: TestApp) {
    let pid = add_member(&app).await;
    let union = app.login("union-power").await;
    // A card change, a search, a claim with its own payee card.
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let member_token = app.login(&p.member_pid).await;
    let stay = json!({"kind": "inpatient", "admitted_on": "2025-03-01",
                      "discharged_on": "2025-03-05", "billed_days": 4,
                      "eligible_self_pay": "1000.00"});
    let draft = file(&app, &member_token, &p, stay).await;
    let claim = draft["claim"]["id"].as_str().expect("claim");
    let version = draft["claim"]["version"].clone();
    let (status, body) = app
        .patch(
            &format!("/api/v1/claims/{claim}"),
            Some(&member_token),
            &json!({"version": version, "bank_card": CLAIM_CARD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.post(
        "/api/v1/members/search",
        Some(&union),
        &json!({"id_number": ID_NUMBER}),
    )
    .await;
    // Every demo member's numbers too, as the association sees them in full.
    let officer = app.login("association").await;
    let mut numbers: Vec<String> = vec![
        ID_NUMBER.into(),
        PHONE.into(),
        CARD.into(),
        CLAIM_CARD.into(),
    ];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/members?limit=100&cursor={c}"),
            None => "/api/v1/members?limit=100".into(),
        };
        let (status, page) = app.get(&path, Some(&officer)).await;
        assert_eq!(status, 200, "{page}");
        for m in page["items"].as_array().expect("items") {
            for field in ["id_number", "phone", "bank_card"] {
                if let Some(v) = m[field].as_str().filter(|v| !v.contains('*')) {
                    numbers.push(v.to_owned());
                }
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(numbers.len() > 40, "the demo's members were read in full");
    let dump = pg_dump(&app.pg.as_ref().expect("postgres").url);
    assert!(dump.contains("COPY public.member"), "a real dump");
    let _ = pid;
    let found: Vec<&String> = numbers
        .iter()
        .filter(|n| dump.contains(n.as_str()))
        .collect();
    assert!(found.is_empty(), "plaintext in the dump: {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_after_writing_steps_a_pg_dump_holds_no_plaintext_personal_number() {
    run_on_with(
        Backend::Postgres,
        |s| s.clock.today = chrono::NaiveDate::from_ymd_opt(2025, 9, 15),
        after_writing_steps_a_pg_dump_holds_no_plaintext_personal_number,
    )
    .await;
}
