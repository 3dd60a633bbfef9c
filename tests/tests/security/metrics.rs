//! `/metrics`: labels by route pattern only, so unknown paths cannot grow it; the metrics, the
//! API docs and the OpenAPI document are closed in production unless configured.

use huzhu::settings::{Mode, Settings};
use huzhu_tests::harness::{Backend, TestApp, spawn_app, spawn_app_with};
use secrecy::SecretString;

const OPS_PATHS: [&str; 3] = ["/metrics", "/api/docs/", "/api/v1/openapi.json"];

async fn status_and_body(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    app.get(path, token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_unknown_paths_share_one_unmatched_label() {
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite always runs");
    for _ in 0..1000 {
        let path = format!("/x-{}", uuid::Uuid::new_v4());
        assert_eq!(app.get(&path, None).await.0, 404);
    }
    app.get("/api/v1/schemes", None).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    assert!(!text.contains("/x-"), "an unknown path became a label");
    let totals: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("huzhu_http_requests_total{"))
        .collect();
    let unmatched: Vec<&&str> = totals
        .iter()
        .filter(|l| l.contains("endpoint=\"unmatched\""))
        .collect();
    assert_eq!(unmatched.len(), 1, "{unmatched:?}");
    assert!(unmatched[0].ends_with(" 1000"), "{}", unmatched[0]);
    assert!(
        totals
            .iter()
            .any(|l| l.contains("endpoint=\"/api/v1/schemes\"")),
        "matched routes keep their pattern: {totals:?}"
    );
}

fn production(settings: &mut Settings) {
    settings.mode = Some(Mode::Production);
    settings.auth.jwt_secret = Some(SecretString::from(
        huzhu::auth::crypto::generate_key_base64(),
    ));
    settings.pii.encryption_key = Some(SecretString::from(
        huzhu::auth::crypto::generate_key_base64(),
    ));
    settings.pii.lookup_key = Some(SecretString::from(
        huzhu::auth::crypto::generate_key_base64(),
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_serves_no_metrics_or_docs_unless_configured() {
    let app = spawn_app_with(Backend::Sqlite, production)
        .await
        .expect("SQLite always runs");
    for path in OPS_PATHS {
        let (status, body) = status_and_body(&app, path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    // The API itself answers.
    assert_eq!(app.get("/healthz", None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_operator_token_the_pages_answer_only_to_it() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        production(s);
        s.ops.token = Some(SecretString::from("ops-token-for-this-test-0123456789"));
    })
    .await
    .expect("SQLite always runs");
    for path in OPS_PATHS {
        let (status, body) = status_and_body(&app, path, None).await;
        assert_eq!(status, 401, "{path} without a token: {body}");
        assert_eq!(body["error"]["code"], "unauthenticated", "{path}: {body}");
        let (status, _) = status_and_body(&app, path, Some("wrong-token")).await;
        assert_eq!(status, 401, "{path} with a wrong token");
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth("ops-token-for-this-test-0123456789")
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200, "{path} with the token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_keeps_its_docs_open_as_the_readme_promises() {
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite always runs");
    for path in OPS_PATHS {
        let res = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(res.status(), 200, "{path}");
    }
}
