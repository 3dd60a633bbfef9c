use huzhu_tests::harness::{Backend, TestApp};
use huzhu_tests::on_both_backends;
use sea_orm::ConnectionTrait;

async fn liveness_answers_ok_with_a_request_id(app: TestApp) {
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let id = res
        .headers()
        .get("x-request-id")
        .expect("request id header");
    assert!(!id.to_str().unwrap().is_empty());
}

async fn readiness_is_ready_when_every_dependency_answers(app: TestApp) {
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["storage"], "ok");
    let redis = if app.backend == Backend::Postgres {
        "ok"
    } else {
        "not_configured"
    };
    assert_eq!(body["checks"]["redis"], redis);
}

async fn readiness_turns_503_when_the_database_is_unreachable(app: TestApp) {
    match &app.pg {
        // The database really disappears: connections are terminated and it is dropped.
        Some(pg) => pg.drop_now().await,
        // SQLite is a file the pool holds open: closing the pool makes it unreachable.
        None => app.state.db.close_by_ref().await.unwrap(),
    }
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(
        body["error"]["details"]["checks"]["database"],
        "unreachable"
    );
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz", None).await.0, 200);
}

async fn metrics_are_exposed_for_prometheus(app: TestApp) {
    app.get("/healthz", None).await;
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("huzhu_http_requests_total"), "{text}");
}

async fn an_unknown_path_answers_the_json_error_shape(app: TestApp) {
    let (status, body) = app.get("/api/v1/no-such-thing", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].is_string());
    assert!(body["error"]["details"].is_object());
}

async fn malformed_json_is_a_400_and_changes_nothing(app: TestApp) {
    let token = app.login("admin").await;
    let before = app.state.db.execute_unprepared("SELECT 1").await.is_ok();
    assert!(before);
    let res = app
        .client
        .post(app.url("/api/v1/organisations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"parent_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
}

async fn an_oversized_body_is_refused_with_413(app: TestApp) {
    let token = app.login("admin").await;
    let huge = "x".repeat(300 * 1024);
    let res = app
        .client
        .post(app.url("/api/v1/organisations"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "parent_id": "p", "kind": "office", "name": huge }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
}

async fn the_docs_page_is_served_without_any_cdn(app: TestApp) {
    let res = app.client.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    for cdn in ["unpkg.com", "cdn.jsdelivr", "cdnjs"] {
        assert!(!html.contains(cdn), "docs page loads from {cdn}");
    }
    let js = app
        .client
        .get(app.url("/api/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200, "the Swagger UI script is served locally");
}

on_both_backends!(
    liveness_answers_ok_with_a_request_id,
    readiness_is_ready_when_every_dependency_answers,
    readiness_turns_503_when_the_database_is_unreachable,
    metrics_are_exposed_for_prometheus,
    an_unknown_path_answers_the_json_error_shape,
    malformed_json_is_a_400_and_changes_nothing,
    an_oversized_body_is_refused_with_413,
    the_docs_page_is_served_without_any_cdn,
);
