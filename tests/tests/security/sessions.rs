//! Revocable sessions: a disabled account, or one signed out everywhere, is refused at once
//! with `401 token_revoked`, whatever its token's expiry.

use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

async fn staff_pid(app: &TestApp, admin: &str, login: &str) -> String {
    let (status, page) = app.get("/api/v1/staff?limit=100", Some(admin)).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["login"] == login)
        .unwrap_or_else(|| panic!("no staff {login}"))["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn assert_revoked(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 401, "{what}: {body}");
    assert_eq!(body["error"]["code"], "token_revoked", "{what}: {body}");
}

async fn a_disabled_staff_members_token_is_refused_at_once(app: TestApp) {
    let admin = app.login("admin").await;
    let reviewer = app.login("union-power").await;
    let (status, me) = app.get("/api/v1/me", Some(&reviewer)).await;
    assert_eq!(status, 200, "{me}");
    let unit = me["organisation"]["id"].as_str().expect("unit").to_owned();
    assert_eq!(app.get("/api/v1/claims", Some(&reviewer)).await.0, 200);

    let pid = staff_pid(&app, &admin, "union-power").await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/staff/{pid}"),
            Some(&admin),
            &json!({ "active": false }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = app.get("/api/v1/claims", Some(&reviewer)).await;
    assert_revoked(status, &body, "GET /claims");
    let members_before = app.count("SELECT COUNT(*) AS n FROM member").await;
    let (status, body) = app
        .post(
            "/api/v1/members",
            Some(&reviewer),
            &json!({
                "organisation_id": unit,
                "name": "赵六",
                "id_number": "11010519491231002X",
                "phone": "13812345678"
            }),
        )
        .await;
    assert_revoked(status, &body, "POST /members");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM member").await,
        members_before,
        "nothing stored"
    );
    // Another account's token is untouched.
    assert_eq!(app.get("/api/v1/claims", Some(&admin)).await.0, 200);
}

async fn any_member_pid(app: &TestApp) -> String {
    let backend = app.state.db.get_database_backend();
    app.state
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT pid FROM member ORDER BY id LIMIT 1".to_owned(),
        ))
        .await
        .expect("query")
        .expect("a member")
        .try_get::<String>("", "pid")
        .expect("pid")
}

async fn signing_out_everywhere_refuses_every_earlier_token_and_a_new_sign_in_works(app: TestApp) {
    let member = any_member_pid(&app).await;
    let phone_a = app.login(&member).await;
    let phone_b = app.login(&member).await;
    assert_eq!(app.get("/api/v1/me", Some(&phone_b)).await.0, 200);

    let (status, body) = app
        .post("/api/v1/me/sessions/revoke", Some(&phone_a), &json!({}))
        .await;
    assert_eq!(status, 204, "{body}");
    for (name, token) in [("this phone", &phone_a), ("the other phone", &phone_b)] {
        let (status, body) = app.get("/api/v1/me", Some(token)).await;
        assert_revoked(status, &body, name);
    }
    // Signing in again gives a token of the new generation.
    let fresh = app.login(&member).await;
    assert_eq!(app.get("/api/v1/me", Some(&fresh)).await.0, 200);
    // Staff too.
    let admin = app.login("admin").await;
    let (status, _) = app
        .post("/api/v1/me/sessions/revoke", Some(&admin), &json!({}))
        .await;
    assert_eq!(status, 204);
    let (status, body) = app.get("/api/v1/staff", Some(&admin)).await;
    assert_revoked(status, &body, "admin after signing out");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_event WHERE action = 'sessions.revoked'")
            .await,
        2
    );
}

on_both_backends!(
    a_disabled_staff_members_token_is_refused_at_once,
    signing_out_everywhere_refuses_every_earlier_token_and_a_new_sign_in_works,
);
