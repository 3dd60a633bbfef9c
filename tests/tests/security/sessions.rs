//! Revocable sessions: a disabled account, one whose role or organisation changed, or one
//! signed out everywhere, is refused at once with `401 token_revoked`, whatever its token's
//! expiry.

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

async fn organisation_id(app: &TestApp, token: &str, kind: &str, name: &str) -> String {
    let (status, page) = app
        .get(
            &format!("/api/v1/organisations?kind={kind}&limit=100"),
            Some(token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn a_role_or_organisation_change_refuses_earlier_tokens_and_the_next_sign_in_carries_it(
    app: TestApp,
) {
    let admin = app.login("admin").await;
    let before = app.login("union-power").await;
    let (_, me) = app.get("/api/v1/me", Some(&before)).await;
    assert_eq!(me["role"], "union_reviewer", "{me}");
    let pid = staff_pid(&app, &admin, "union-power").await;
    let point = organisation_id(&app, &admin, "service_point", "新城区代办点").await;
    let path = format!("/api/v1/staff/{pid}");

    // Refusals change nothing and revoke nothing.
    let (status, body) = app
        .patch(&path, Some(&before), &json!({ "role": "admin" }))
        .await;
    assert_eq!(
        status, 403,
        "a reviewer changes no role, their own included: {body}"
    );
    let (status, body) = app
        .patch(
            &path,
            Some(&admin),
            &json!({ "role": "service_point_reviewer" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "role_does_not_fit", "{body}");
    let (status, body) = app.patch(&path, Some(&admin), &json!({})).await;
    assert_eq!(status, 422, "nothing to change: {body}");
    let (status, body) = app
        .patch(
            &path,
            Some(&admin),
            &json!({ "organisation_id": uuid::Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(status, 404, "an unknown organisation: {body}");
    let admin_pid = staff_pid(&app, &admin, "admin").await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/staff/{admin_pid}"),
            Some(&admin),
            &json!({ "role": "association_reviewer" }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "cannot_change_self", "{body}");
    assert_eq!(app.get("/api/v1/claims", Some(&before)).await.0, 200);
    assert_eq!(app.get("/api/v1/staff", Some(&admin)).await.0, 200);

    // The union's clerk becomes the service point's reviewer.
    let (status, changed) = app
        .patch(
            &path,
            Some(&admin),
            &json!({ "role": "service_point_reviewer", "organisation_id": point }),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["role"], "service_point_reviewer", "{changed}");
    assert_eq!(changed["organisation"]["id"], point.as_str(), "{changed}");
    assert_eq!(changed["active"], true, "{changed}");
    for path in ["/api/v1/me", "/api/v1/claims", "/api/v1/members"] {
        let (status, body) = app.get(path, Some(&before)).await;
        assert_revoked(status, &body, path);
    }
    let after = app.login("union-power").await;
    let (status, me) = app.get("/api/v1/me", Some(&after)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "service_point_reviewer", "{me}");
    assert_eq!(me["organisation"]["id"], point.as_str(), "{me}");
    assert_eq!(app.get("/api/v1/claims", Some(&after)).await.0, 200);

    // Moved alone (same role, another unit union): earlier tokens go too.
    let hospital_clerk = app.login("union-hospital").await;
    let power = app
        .unit_id(&admin, "内蒙古电力（集团）有限责任公司工会")
        .await;
    let hospital_pid = staff_pid(&app, &admin, "union-hospital").await;
    let (status, changed) = app
        .patch(
            &format!("/api/v1/staff/{hospital_pid}"),
            Some(&admin),
            &json!({ "organisation_id": power }),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["role"], "union_reviewer", "{changed}");
    let (status, body) = app.get("/api/v1/claims", Some(&hospital_clerk)).await;
    assert_revoked(status, &body, "moved clerk");
    let moved = app.login("union-hospital").await;
    let (_, me) = app.get("/api/v1/me", Some(&moved)).await;
    assert_eq!(me["organisation"]["id"], power.as_str(), "{me}");

    // Re-activating an active account changes nothing and revokes nothing.
    let (status, _) = app
        .patch(
            &format!("/api/v1/staff/{hospital_pid}"),
            Some(&admin),
            &json!({ "active": true }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.get("/api/v1/claims", Some(&moved)).await.0, 200);

    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_event WHERE action = 'staff.changed'")
            .await,
        2
    );
}

on_both_backends!(
    a_disabled_staff_members_token_is_refused_at_once,
    signing_out_everywhere_refuses_every_earlier_token_and_a_new_sign_in_works,
    a_role_or_organisation_change_refuses_earlier_tokens_and_the_next_sign_in_carries_it,
);
