use huzhu_tests::harness::{Backend, spawn_app};

const COMMITTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../miniapp-contract/openapi.json"
);

#[test]
fn the_committed_openapi_document_is_up_to_date() {
    let committed = std::fs::read_to_string(COMMITTED).expect("miniapp-contract/openapi.json");
    let generated = huzhu::openapi::document_json();
    assert!(
        committed == generated,
        "miniapp-contract/openapi.json is stale: run `cargo run -p huzhu-api -- openapi > miniapp-contract/openapi.json`"
    );
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let app = spawn_app(Backend::Sqlite).await.expect("sqlite app");
    let served: serde_json::Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(COMMITTED).unwrap()).unwrap();
    assert_eq!(served, committed);
    assert!(served["paths"]["/api/v1/auth/wechat"]["post"].is_object());
    assert!(served["components"]["securitySchemes"]["bearer"].is_object());
}
