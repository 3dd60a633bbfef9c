//! Finding 4: outside demo mode the server refuses to start with weak keys — low entropy,
//! placeholders, keys published in this repository, all-zero keys, one key for two purposes —
//! naming the setting; `gen-secrets` keys pass. PII key rotation: the new key encrypts, the old
//! one still decrypts, `rotate-pii` re-encrypts everything, and once the old key is removed every
//! value still decrypts (on both backends).

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use huzhu::auth::crypto::{PiiKind, generate_key_base64};
use huzhu::auth::keys::{self, REPOSITORY_TEST_KEYS};
use huzhu::service::pii_rotation::{self, ENCRYPTED_COLUMNS};
use huzhu::settings::{Mode, Settings};
use huzhu::startup::Application;
use huzhu_tests::claim_flow::{file, period};
use huzhu_tests::fake_wechat::FakeWeChat;
use huzhu_tests::harness::{TempDir, TestApp};
use huzhu_tests::on_both_backends_with;
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use serde_json::json;

/// A production configuration on a SQLite file with the given keys.
fn production(dir: &TempDir, wechat: &FakeWeChat, jwt: &str, enc: &str, lookup: &str) -> Settings {
    let mut s = Settings {
        mode: Some(Mode::Production),
        listen: "127.0.0.1:0".into(),
        data_dir: dir.0.clone(),
        ..Settings::default()
    };
    s.database.url = Some(SecretString::from(format!(
        "sqlite://{}?mode=rwc",
        dir.0.join("prod.db").display()
    )));
    s.auth.jwt_secret = Some(SecretString::from(jwt.to_owned()));
    s.pii.encryption_key = Some(SecretString::from(enc.to_owned()));
    s.pii.lookup_key = Some(SecretString::from(lookup.to_owned()));
    s.wechat.base_url = wechat.base_url.clone();
    s.wechat.appid = wechat.appid.clone();
    s.wechat.secret = Some(SecretString::from(wechat.secret.clone()));
    s.reminders.schedule_enabled = false;
    s.reminders.dispatch_enabled = false;
    s
}

#[tokio::test]
async fn production_refuses_weak_published_zero_and_shared_keys_naming_the_setting() {
    huzhu::integrations::tls::install_crypto_provider();
    let dir = TempDir::new();
    let wechat = FakeWeChat::start().await;
    let good = generate_key_base64;
    let zero = STANDARD.encode([0u8; 32]);
    let shared = good();
    let cases: Vec<(String, String, String, &str)> = vec![
        ("a".repeat(32), good(), good(), "auth.jwt_secret"),
        ("a".repeat(64), good(), good(), "auth.jwt_secret"),
        (
            "0123456789abcdef0123456789abcdef".into(),
            good(),
            good(),
            "auth.jwt_secret",
        ),
        (
            REPOSITORY_TEST_KEYS[REPOSITORY_TEST_KEYS.len() - 1].into(),
            good(),
            good(),
            "auth.jwt_secret",
        ),
        (good(), zero.clone(), good(), "pii.encryption_key"),
        (good(), good(), zero, "pii.lookup_key"),
        (
            good(),
            STANDARD.encode([b'a'; 32]),
            good(),
            "pii.encryption_key",
        ),
        (
            good(),
            "Y2hlY2stY29tcG9zZS1kdW1teS0zMi1ieXRlcy0wMDE=".into(),
            good(),
            "pii.encryption_key",
        ),
        (
            good(),
            good(),
            STANDARD.encode(b"change-me-change-me-change-me-12"),
            "pii.lookup_key",
        ),
        (good(), shared.clone(), shared, "pii.lookup_key"),
    ];
    for (jwt, enc, lookup, setting) in cases {
        let result = Application::build(production(&dir, &wechat, &jwt, &enc, &lookup)).await;
        let err = result.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(
            err.contains(setting),
            "{setting} ({jwt} / {enc} / {lookup}) was accepted or refused for another reason: {err:?}"
        );
    }
}

#[tokio::test]
async fn keys_from_gen_secrets_start_production() {
    huzhu::integrations::tls::install_crypto_provider();
    let dir = TempDir::new();
    let wechat = FakeWeChat::start().await;
    let lines = keys::generate_env_lines();
    let value = |name: &str| {
        lines
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {lines}"))
            .to_owned()
    };
    assert_eq!(lines.lines().count(), 3, "{lines}");
    let app = Application::build(production(
        &dir,
        &wechat,
        &value("HUZHU_AUTH__JWT_SECRET"),
        &value("HUZHU_PII__ENCRYPTION_KEY"),
        &value("HUZHU_PII__LOOKUP_KEY"),
    ))
    .await;
    assert!(app.is_ok(), "{:?}", app.err());
}

/// Every base64 text of 32 bytes in the repository's tracked files.
fn base64_keys_in(text: &str) -> Vec<String> {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    text.split(|c: char| !is_b64(c))
        .filter(|w| w.len() == 44 && w.ends_with('=') && !w.ends_with("=="))
        .filter(|w| STANDARD.decode(w).is_ok_and(|b| b.len() == 32))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_key_in_the_repository_is_on_the_list_production_refuses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root");
    let files = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .expect("git ls-files");
    let mut unlisted = Vec::new();
    for name in String::from_utf8_lossy(&files.stdout).split('\0') {
        if name.is_empty() || name.ends_with(".lock") || name.ends_with("package-lock.json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(name)) else {
            continue;
        };
        for key in base64_keys_in(&text) {
            if !REPOSITORY_TEST_KEYS.contains(&key.as_str()) {
                unlisted.push(format!("{name}: {key}"));
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "keys in the repository missing from auth::keys::REPOSITORY_TEST_KEYS: {unlisted:#?}"
    );
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail closure returns figment's own error type
fn previous_keys_are_read_from_the_environment_by_id() {
    let old = generate_key_base64();
    figment::Jail::expect_with(|jail| {
        jail.set_env("HUZHU_PII__KEY_ID", "2");
        jail.set_env("HUZHU_PII__PREVIOUS_KEYS__1", &old);
        let settings = huzhu::settings::Settings::from_figment(
            figment::Figment::new().merge(huzhu::settings::Settings::environment()),
        )
        .expect("settings");
        assert_eq!(settings.pii.key_id, 2);
        assert_eq!(
            settings
                .pii
                .previous_keys
                .get("1")
                .map(|k| secrecy::ExposeSecret::expose_secret(k).to_owned()),
            Some(old.clone())
        );
        Ok(())
    });
}

/// This run's keys: the first encryption key, the second, and the look-up key.
fn run_keys() -> &'static (String, String, String) {
    static KEYS: OnceLock<(String, String, String)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            generate_key_base64(),
            generate_key_base64(),
            generate_key_base64(),
        )
    })
}

/// The first key, id 1, inside the 2025 claim window.
fn first_key(s: &mut Settings) {
    let (first, _, lookup) = run_keys();
    s.pii.encryption_key = Some(SecretString::from(first.clone()));
    s.pii.lookup_key = Some(SecretString::from(lookup.clone()));
    s.pii.key_id = 1;
    s.clock.today = chrono::NaiveDate::from_ymd_opt(2025, 9, 15);
}

/// Every stored value of every encrypted column.
async fn stored_values(app: &TestApp) -> Vec<(PiiKind, String)> {
    let mut out = Vec::new();
    for (table, column, kind) in ENCRYPTED_COLUMNS {
        let rows = app
            .state
            .db
            .query_all_raw(sea_orm::Statement::from_string(
                app.state.db.get_database_backend(),
                format!("SELECT {column} AS v FROM {table} WHERE {column} IS NOT NULL"),
            ))
            .await
            .expect("select");
        for row in rows {
            out.push((*kind, row.try_get::<String>("", "v").expect("v")));
        }
    }
    out
}

async fn rotating_the_pii_key_re_encrypts_everything_and_the_old_key_can_go(app: TestApp) {
    // Data under the first key: the demo's members, a member with every number, a claim with
    // its own payee card.
    let union = app.login("union-power").await;
    let unit = app
        .unit_id(&union, "内蒙古电力（集团）有限责任公司工会")
        .await;
    let (status, created) = app
        .post(
            "/api/v1/members",
            Some(&union),
            &json!({"organisation_id": unit, "name": "王小明", "id_number": "150102199003152344",
                    "phone": "13987654321", "bank_card": "6228480045123456787"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let member = app.login(&p.member_pid).await;
    file(
        &app,
        &member,
        &p,
        json!({"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-05",
               "billed_days": 4, "eligible_self_pay": "1000.00"}),
    )
    .await;
    let before = stored_values(&app).await;
    assert!(before.len() > 40, "{} values", before.len());
    assert!(before.iter().all(|(_, v)| v.starts_with("v1:")));

    // The new key (id 2) encrypts; the first stays as previous key 1.
    let (first, second, lookup) = run_keys();
    let mut rotated = (*app.state.settings).clone();
    rotated.pii.encryption_key = Some(SecretString::from(second.clone()));
    rotated.pii.key_id = 2;
    rotated
        .pii
        .previous_keys
        .insert("1".into(), SecretString::from(first.clone()));
    let vault = keys::vault(&keys::resolve(&rotated).expect("keys")).expect("vault");
    let mut batches = Vec::new();
    let report = pii_rotation::rotate(&app.state.db, &vault, 7, |p| batches.push(p.clone()))
        .await
        .expect("rotation");
    assert_eq!(report.seen, before.len() as u64);
    assert_eq!(report.resealed, before.len() as u64);
    assert!(batches.len() > 5, "progress after each batch: {batches:?}");
    assert!(batches.iter().all(|b| b.total == before.len() as u64));
    // Running it again finds nothing left to do.
    let again = pii_rotation::rotate(&app.state.db, &vault, 7, |_| {})
        .await
        .expect("rotation");
    assert_eq!(again.resealed, 0);

    // The first key removed: every value still decrypts, to what it held before.
    let mut new_only = (*app.state.settings).clone();
    new_only.pii.encryption_key = Some(SecretString::from(second.clone()));
    new_only.pii.lookup_key = Some(SecretString::from(lookup.clone()));
    new_only.pii.key_id = 2;
    let new_vault = keys::vault(&keys::resolve(&new_only).expect("keys")).expect("vault");
    let after = stored_values(&app).await;
    assert_eq!(after.len(), before.len());
    let old_vault = &app.state.pii;
    let mut plain_before: Vec<String> = before
        .iter()
        .map(|(k, v)| old_vault.open(*k, v).expect("old opens"))
        .collect();
    let mut plain_after: Vec<String> = after
        .iter()
        .map(|(k, v)| {
            assert!(v.starts_with("v2:"), "{v}");
            new_vault.open(*k, v).expect("new key alone opens")
        })
        .collect();
    plain_before.sort();
    plain_after.sort();
    assert_eq!(plain_before, plain_after);

    // And a server started with the new key alone serves the numbers and finds by them.
    new_only.listen = "127.0.0.1:0".into();
    let server = Application::build(new_only).await.expect("restarts");
    let base = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped());
    let admin = app.login("admin").await;
    let res = app
        .client
        .post(format!("{base}/api/v1/members/search"))
        .bearer_auth(&admin)
        .json(&json!({"id_number": "150102199003152344"}))
        .send()
        .await
        .expect("search");
    assert_eq!(res.status(), 200);
    let page: serde_json::Value = res.json().await.expect("json");
    assert_eq!(page["items"][0]["phone"], "13987654321", "{page}");
    assert_eq!(
        page["items"][0]["bank_card"], "6228480045123456787",
        "{page}"
    );
}

on_both_backends_with!(rotation, first_key =>
    rotating_the_pii_key_re_encrypts_everything_and_the_old_key_can_go,
);
