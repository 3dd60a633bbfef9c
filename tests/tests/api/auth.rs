use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends;
use serde_json::{Value, json};

/// Issues an invitation for a demo staff login through the admin API.
async fn invitation_for(app: &TestApp, login: &str) -> String {
    let admin = app.login("admin").await;
    let (_, staff) = app.get("/api/v1/staff?limit=100", Some(&admin)).await;
    let id = staff["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["login"] == login)
        .expect("demo staff")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .post(
            &format!("/api/v1/staff/{id}/invitations"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["code"].as_str().unwrap().to_owned()
}

/// Name and full ID number of a demo member (the admin sees full numbers).
async fn some_member(app: &TestApp) -> (String, String, String) {
    let admin = app.login("admin").await;
    let (_, members) = app.get("/api/v1/members?limit=1", Some(&admin)).await;
    let m = &members["items"][0];
    (
        m["id"].as_str().unwrap().to_owned(),
        m["name"].as_str().unwrap().to_owned(),
        m["id_number"].as_str().unwrap().to_owned(),
    )
}

async fn staff_bind_wechat_with_an_invitation_and_then_sign_in_with_wechat_alone(app: TestApp) {
    let invitation = invitation_for(&app, "union-power").await;
    let code = app.wechat.login_code("openid-union-power");
    let (status, body) = app
        .post(
            "/api/v1/auth/wechat",
            None,
            &json!({ "code": code, "invitation_code": invitation.to_lowercase() }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account"]["role"], "union_reviewer");
    assert_eq!(body["token_type"], "Bearer");

    let (status, me) = app.get("/api/v1/me", body["token"].as_str()).await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "union_reviewer");

    // Next time WeChat alone is enough.
    let code = app.wechat.login_code("openid-union-power");
    let (status, again) = app
        .post("/api/v1/auth/wechat", None, &json!({ "code": code }))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["account"]["id"], body["account"]["id"]);

    // The invitation was single-use.
    let code = app.wechat.login_code("openid-someone-else");
    let (status, err) = app
        .post(
            "/api/v1/auth/wechat",
            None,
            &json!({ "code": code, "invitation_code": invitation }),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "invitation_invalid");
}

async fn a_wechat_code_cannot_be_used_twice(app: TestApp) {
    let invitation = invitation_for(&app, "sp-xincheng").await;
    let code = app.wechat.login_code("openid-sp");
    let (status, _) = app
        .post(
            "/api/v1/auth/wechat",
            None,
            &json!({ "code": code, "invitation_code": invitation }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, err) = app
        .post("/api/v1/auth/wechat", None, &json!({ "code": code }))
        .await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "wechat_invalid_code");
}

async fn an_unknown_wechat_account_is_asked_to_bind(app: TestApp) {
    let code = app.wechat.login_code("openid-stranger");
    let (status, err) = app
        .post("/api/v1/auth/wechat", None, &json!({ "code": code }))
        .await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "account_not_bound");
}

async fn a_member_binds_by_name_and_id_number_and_sees_their_own_record(app: TestApp) {
    let (pid, name, id_number) = some_member(&app).await;
    let code = app.wechat.login_code("openid-member-1");
    let (status, body) = app
        .post(
            "/api/v1/auth/wechat",
            None,
            &json!({ "code": code, "name": name, "id_number": id_number }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account"]["role"], "member");
    assert_eq!(body["account"]["id"], pid.as_str());
    let token = body["token"].as_str().unwrap().to_owned();

    let (status, me) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, 200);
    let masked = me["member"]["id_number"].as_str().unwrap();
    assert_eq!(masked.len(), 18);
    assert!(masked.contains("**********"), "{masked}");
    assert_eq!(&masked[..4], &id_number[..4]);

    // Someone else's WeChat cannot take the same member.
    let code = app.wechat.login_code("openid-impostor");
    let (status, err) = app
        .post(
            "/api/v1/auth/wechat",
            None,
            &json!({ "code": code, "name": name, "id_number": id_number }),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(err["error"]["code"], "already_bound");
}

async fn a_name_that_does_not_match_the_id_number_is_not_on_the_roster(app: TestApp) {
    let (_, _, id_number) = some_member(&app).await;
    let code = app.wechat.login_code("openid-wrong-name");
    let (status, err) = app
        .post(
            "/api/v1/auth/wechat",
            None,
            &json!({ "code": code, "name": "不存在", "id_number": id_number }),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "not_on_roster");
}

async fn wechat_errors_become_clear_errors(app: TestApp) {
    for (errcode, status, code) in [
        (45011, 429, "wechat_rate_limited"),
        (40226, 403, "forbidden"),
        (-1, 503, "wechat_busy"),
        (40029, 401, "wechat_invalid_code"),
    ] {
        app.wechat.fail_next_login(errcode);
        let code_value = app.wechat.login_code("openid-x");
        let (got, body) = app
            .post("/api/v1/auth/wechat", None, &json!({ "code": code_value }))
            .await;
        assert_eq!(got, status, "errcode {errcode}: {body}");
        assert_eq!(body["error"]["code"], code, "errcode {errcode}");
    }
}

async fn a_member_binds_their_phone_through_wechat(app: TestApp) {
    let (_, name, id_number) = some_member(&app).await;
    let code = app.wechat.login_code("openid-phone");
    let (_, body) = app
        .post(
            "/api/v1/auth/wechat",
            None,
            &json!({ "code": code, "name": name, "id_number": id_number }),
        )
        .await;
    let token = body["token"].as_str().unwrap().to_owned();
    let phone_code = app.wechat.phone_code("13912345678");
    let (status, bound) = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            &json!({ "code": phone_code }),
        )
        .await;
    assert_eq!(status, 200, "{bound}");
    assert_eq!(bound["phone"], "139****5678");
    let (_, me) = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me["member"]["phone"], "139****5678");
    // A second call reuses the cached access token.
    let phone_code = app.wechat.phone_code("13912345679");
    let (status, _) = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            &json!({ "code": phone_code }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.wechat.token_requests(), 1);
}

async fn requests_without_or_with_a_bad_token_are_401(app: TestApp) {
    let (status, body) = app.get("/api/v1/me", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthenticated");
    let (status, body) = app.get("/api/v1/me", Some("not-a-token")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_token");
}

async fn a_token_carries_issuer_audience_role_and_scope(app: TestApp) {
    let token = app.login("sp-saihan").await;
    let claims = app.state.jwt.verify(&token).expect("valid");
    assert_eq!(claims.iss, "huzhu");
    assert_eq!(claims.aud, "huzhu-miniapp");
    assert_eq!(claims.role, huzhu::domain::Role::ServicePointReviewer);
    assert!(claims.scope.is_some());
    assert!(claims.exp - claims.iat <= 900);
}

async fn unknown_fields_in_a_sign_in_are_refused(app: TestApp) {
    let (status, body): (u16, Value) = app
        .post(
            "/api/v1/auth/wechat",
            None,
            &json!({ "code": "x", "password": "hunter2" }),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_request");
}

on_both_backends!(
    staff_bind_wechat_with_an_invitation_and_then_sign_in_with_wechat_alone,
    a_wechat_code_cannot_be_used_twice,
    an_unknown_wechat_account_is_asked_to_bind,
    a_member_binds_by_name_and_id_number_and_sees_their_own_record,
    a_name_that_does_not_match_the_id_number_is_not_on_the_roster,
    wechat_errors_become_clear_errors,
    a_member_binds_their_phone_through_wechat,
    requests_without_or_with_a_bad_token_are_401,
    a_token_carries_issuer_audience_role_and_scope,
    unknown_fields_in_a_sign_in_are_refused,
);
