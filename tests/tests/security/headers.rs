//! Security headers on every answer (refusals included), HSTS behind TLS, and `no-store` on
//! every API answer — they carry personal data (full numbers for the roles that see them) and
//! downloads.

use huzhu_tests::harness::{Backend, TestApp, spawn_app};

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn assert_security_headers(what: &str, res: &reqwest::Response) {
    assert_eq!(
        header(res, "x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header(res, "referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
    assert!(
        header(res, "content-security-policy")
            .is_some_and(|v| v.contains("frame-ancestors 'none'")),
        "{what}"
    );
}

async fn app() -> TestApp {
    spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite always runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers_and_api_answers_are_not_stored() {
    let app = app().await;
    let admin = app.login("admin").await;
    let member_pid = {
        let (_, page) = app.get("/api/v1/members?limit=1", Some(&admin)).await;
        page["items"][0]["id"]
            .as_str()
            .expect("a member")
            .to_owned()
    };
    for (path, token) in [
        ("/healthz", None),
        ("/api/v1/nothing-here", None),
        ("/api/v1/me", None),
        ("/api/v1/me", Some(&admin)),
        // The association's administrator sees full ID, phone and card numbers here.
        (&*format!("/api/v1/members/{member_pid}"), Some(&admin)),
        ("/api/v1/roster-template.xlsx", Some(&admin)),
    ] {
        let mut req = app.client.get(app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        assert_security_headers(path, &res);
        assert!(
            header(&res, "strict-transport-security").is_none(),
            "{path}: no HSTS over plain HTTP"
        );
        if path.starts_with("/api/v1/") {
            assert_eq!(
                header(&res, "cache-control").as_deref(),
                Some("no-store"),
                "{path} ({})",
                res.status()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_proxy_answers_carry_hsts() {
    let app = app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("request");
    assert!(
        header(&res, "strict-transport-security").is_some_and(|v| v.contains("max-age=")),
        "HSTS behind TLS"
    );
    assert_security_headers("/healthz via https", &res);
}
