//! Finding 6 and the JWT attacks: a token is accepted only as we issue it — HS256 with our key,
//! our issuer and audience, not expired, not "valid from" or "issued at" a future time, its
//! claims untouched. Everything else is a 401 in our JSON shape; a valid member token on a staff
//! route is a 403.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use huzhu::settings::Settings;
use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends_with;
use secrecy::SecretString;
use serde_json::{Value, json};

/// The suite's signing key (listed in `auth::keys::REPOSITORY_TEST_KEYS`: never a production key).
const KEY: &str = "8J+UkSB0aGUgc2VjdXJpdHkgc3VpdGUncyBqd3Qga2V5IPCflJE=";

fn known_key(s: &mut Settings) {
    s.auth.jwt_secret = Some(SecretString::from(KEY.to_owned()));
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// HMAC-SHA256 over `header.payload` with `key`.
fn sign(signing_input: &str, key: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("key");
    mac.update(signing_input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// A token with this header and these claims, HMAC-signed with `key`.
fn token(header: &Value, claims: &Value, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = sign(&input, key);
    format!("{input}.{signature}")
}

fn hs256() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

/// The claims of a real token the server issued.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("claims")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Status and error code of `GET /api/v1/me` with `token`.
async fn me_with(app: &TestApp, token: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert!(
            content_type.starts_with("application/json"),
            "{status} answered {content_type}"
        );
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    (status, body)
}

async fn refused(app: &TestApp, token: &str, code: &str, what: &str) {
    let (status, body) = me_with(app, token).await;
    assert_eq!(status, 401, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
}

async fn a_token_re_signed_with_our_key_is_accepted_so_the_forgeries_below_are_meaningful(
    app: TestApp,
) {
    let claims = claims_of(&app.login("admin").await);
    let (status, body) = me_with(&app, &token(&hs256(), &claims, KEY.as_bytes())).await;
    assert_eq!(status, 200, "{body}");
}

async fn alg_none_is_refused(app: TestApp) {
    let claims = claims_of(&app.login("admin").await);
    for alg in ["none", "None", "NONE"] {
        let unsigned = format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "JWT"})),
            b64(&claims)
        );
        refused(&app, &unsigned, "invalid_token", alg).await;
    }
}

async fn a_token_signed_with_another_key_is_refused(app: TestApp) {
    let claims = claims_of(&app.login("admin").await);
    let forged = token(&hs256(), &claims, b"attacker-key-attacker-key-attacker-key");
    refused(&app, &forged, "invalid_token", "wrong key").await;
}

async fn other_algorithms_are_refused_even_when_signed_with_our_key(app: TestApp) {
    // HS/RS confusion: a server that took `alg` from the token would verify an "RS256" token
    // with an HMAC over its key. We accept HS256 only.
    let claims = claims_of(&app.login("admin").await);
    for alg in ["RS256", "ES256", "PS256", "HS512", "HS384", "EdDSA"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        refused(
            &app,
            &token(&header, &claims, KEY.as_bytes()),
            "invalid_token",
            alg,
        )
        .await;
    }
}

async fn an_expired_token_is_refused_as_expired(app: TestApp) {
    let mut claims = claims_of(&app.login("admin").await);
    claims["iat"] = json!(now() - 3600);
    claims["exp"] = json!(now() - 60);
    refused(
        &app,
        &token(&hs256(), &claims, KEY.as_bytes()),
        "token_expired",
        "expired",
    )
    .await;
}

async fn a_token_not_valid_before_a_future_time_is_refused(app: TestApp) {
    let mut claims = claims_of(&app.login("admin").await);
    claims["nbf"] = json!(now() + 600);
    refused(
        &app,
        &token(&hs256(), &claims, KEY.as_bytes()),
        "invalid_token",
        "future nbf",
    )
    .await;
}

async fn a_token_issued_in_the_future_is_refused(app: TestApp) {
    let mut claims = claims_of(&app.login("admin").await);
    claims["iat"] = json!(now() + 600);
    claims["exp"] = json!(now() + 1200);
    refused(
        &app,
        &token(&hs256(), &claims, KEY.as_bytes()),
        "invalid_token",
        "future iat",
    )
    .await;
}

async fn another_issuer_or_audience_is_refused(app: TestApp) {
    let claims = claims_of(&app.login("admin").await);
    for (field, value) in [("iss", "someone-else"), ("aud", "another-app")] {
        let mut forged = claims.clone();
        forged[field] = json!(value);
        refused(
            &app,
            &token(&hs256(), &forged, KEY.as_bytes()),
            "invalid_token",
            field,
        )
        .await;
    }
}

async fn a_member_token_with_its_role_changed_is_refused(app: TestApp) {
    let (_, page) = app
        .get("/api/v1/members?limit=1", Some(&app.login("admin").await))
        .await;
    let member = page["items"][0]["id"].as_str().expect("member").to_owned();
    let real = app.login(&member).await;
    let mut claims = claims_of(&real);
    claims["role"] = json!("admin");
    claims["scope"] = json!("/1/");
    // The member's own signature on the altered claims.
    let mut parts = real.split('.');
    let (_, _, signature) = (parts.next(), parts.next(), parts.next().expect("signature"));
    let tampered = format!("{}.{}.{signature}", b64(&hs256()), b64(&claims));
    refused(&app, &tampered, "invalid_token", "tampered role").await;
}

async fn a_member_token_on_staff_routes_is_forbidden(app: TestApp) {
    let (_, page) = app
        .get("/api/v1/members?limit=1", Some(&app.login("admin").await))
        .await;
    let member = page["items"][0]["id"].as_str().expect("member").to_owned();
    let token = app.login(&member).await;
    for path in [
        "/api/v1/members",
        "/api/v1/staff",
        "/api/v1/organisations",
        "/api/v1/messages",
    ] {
        let (status, body) = app.get(path, Some(&token)).await;
        assert!(
            status == 403 || status == 404,
            "{path} as a member: {status} {body}"
        );
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    let (status, body) = app
        .post(
            "/api/v1/members/search",
            Some(&token),
            &json!({"id_number": "11010519491231002X"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
}

async fn garbage_tokens_are_refused_in_our_json_shape(app: TestApp) {
    for garbage in [
        "x",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9..",
        &"A".repeat(5000),
    ] {
        refused(&app, garbage, "invalid_token", garbage).await;
    }
}

on_both_backends_with!(attacks, known_key =>
    a_token_re_signed_with_our_key_is_accepted_so_the_forgeries_below_are_meaningful,
    alg_none_is_refused,
    a_token_signed_with_another_key_is_refused,
    other_algorithms_are_refused_even_when_signed_with_our_key,
    an_expired_token_is_refused_as_expired,
    a_token_not_valid_before_a_future_time_is_refused,
    a_token_issued_in_the_future_is_refused,
    another_issuer_or_audience_is_refused,
    a_member_token_with_its_role_changed_is_refused,
    a_member_token_on_staff_routes_is_forbidden,
    garbage_tokens_are_refused_in_our_json_shape,
);
