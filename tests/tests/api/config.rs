use huzhu::settings::{Mode, Settings};
use huzhu::startup::Application;
use huzhu_tests::fake_wechat::FakeWeChat;
use huzhu_tests::harness::TempDir;
use secrecy::SecretString;
use serde_json::json;

/// A production configuration on a SQLite file (no demo, every secret set).
fn production(dir: &TempDir, wechat: &FakeWeChat, jwt_secret: &str) -> Settings {
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
    s.auth.jwt_secret = Some(SecretString::from(jwt_secret.to_owned()));
    s.pii.encryption_key = Some(SecretString::from(
        huzhu::auth::crypto::generate_key_base64(),
    ));
    s.pii.lookup_key = Some(SecretString::from(
        huzhu::auth::crypto::generate_key_base64(),
    ));
    s.wechat.base_url = wechat.base_url.clone();
    s.wechat.appid = wechat.appid.clone();
    s.wechat.secret = Some(SecretString::from(wechat.secret.clone()));
    s
}

#[tokio::test]
async fn production_refuses_to_start_with_a_default_signing_key() {
    huzhu::integrations::tls::install_crypto_provider();
    let dir = TempDir::new();
    let wechat = FakeWeChat::start().await;
    for key in ["change-me", "change-me-please-change-me-please-123456", ""] {
        let result = Application::build(production(&dir, &wechat, key)).await;
        let err = result.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(
            err.contains("jwt_secret"),
            "key {key:?} was accepted ({err})"
        );
    }
    let mut missing = production(&dir, &wechat, "x");
    missing.auth.jwt_secret = None;
    let err = Application::build(missing)
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(err.contains("auth.jwt_secret"), "{err}");
}

#[tokio::test]
async fn production_has_no_dev_login_and_no_demo_data() {
    huzhu::integrations::tls::install_crypto_provider();
    let dir = TempDir::new();
    let wechat = FakeWeChat::start().await;
    let app = Application::build(production(
        &dir,
        &wechat,
        &huzhu::auth::crypto::generate_key_base64(),
    ))
    .await
    .expect("production starts with proper keys");
    let base = format!("http://127.0.0.1:{}", app.port());
    let db = app.state().db.clone();
    tokio::spawn(app.run_until_stopped());
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/dev-login"))
        .json(&json!({ "account": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(huzhu::service::organisation::is_empty(&db).await.unwrap());
}

#[tokio::test]
async fn a_configured_database_url_means_production_unless_told_otherwise() {
    let mut s = Settings::default();
    assert_eq!(s.effective_mode(), Mode::Demo);
    s.database.url = Some(SecretString::from("postgres://db/huzhu"));
    assert_eq!(s.effective_mode(), Mode::Production);
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail closure returns figment's own error type
fn settings_come_from_environment_variables_with_the_fixed_names() {
    use figment::Figment;
    figment::Jail::expect_with(|jail| {
        jail.set_env("HUZHU_LISTEN", "0.0.0.0:0");
        jail.set_env("HUZHU_DATA_DIR", "/srv/huzhu");
        jail.set_env("HUZHU_DATABASE__MAX_CONNECTIONS", "7");
        jail.set_env("HUZHU_AUTH__JWT_SECRET", "s3cr3t-value-that-must-not-print");
        jail.set_env(
            "HUZHU_TEST_SOMETHING",
            "belongs to the test suite, not the settings",
        );
        let s = Settings::from_figment(Figment::new().merge(Settings::environment()))
            .expect("settings");
        assert_eq!(s.listen, "0.0.0.0:0");
        assert_eq!(s.data_dir, std::path::PathBuf::from("/srv/huzhu"));
        assert_eq!(s.database.max_connections, 7);
        assert!(!format!("{s:?}").contains("s3cr3t"), "secrets never print");
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail closure returns figment's own error type
fn numeric_provider_ids_are_taken_as_numbers_or_as_strings() {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    figment::Jail::expect_with(|jail| {
        jail.set_env("HUZHU_SMS__SDK_APP_ID", "1400987654");
        let s = Settings::from_figment(Figment::new().merge(Settings::environment()))
            .expect("an unquoted SmsSdkAppId in the environment");
        assert_eq!(s.sms.sdk_app_id.as_deref(), Some("1400987654"));
        jail.set_env("HUZHU_SMS__SDK_APP_ID", "\"1400987654\"");
        let s = Settings::from_figment(Figment::new().merge(Settings::environment()))
            .expect("a quoted one");
        assert_eq!(s.sms.sdk_app_id.as_deref(), Some("1400987654"));
        Ok(())
    });
    for toml in [
        "[sms]\nsdk_app_id = 1400987654",
        "[sms]\nsdk_app_id = \"1400987654\"",
    ] {
        let s = Settings::from_figment(Figment::new().merge(Toml::string(toml)))
            .unwrap_or_else(|e| panic!("{toml}: {e}"));
        assert_eq!(s.sms.sdk_app_id.as_deref(), Some("1400987654"), "{toml}");
    }
    let err = Settings::from_figment(Figment::new().merge(Toml::string("[sms]\nsdk_app_id = 1.5")))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("sdk_app_id"), "a fraction is refused: {err}");
}

#[tokio::test]
#[allow(clippy::result_large_err)] // figment's Jail closure returns figment's own error type
async fn a_tencent_account_configured_with_an_unquoted_app_id_sends() {
    use figment::Figment;
    use huzhu::integrations::sms::{Outcome, Sms, SmsBatch};
    use huzhu_tests::fake_sms::FakeTencent;
    let gateway = FakeTencent::start().await;
    // As an operator writes it in the environment: the digits, unquoted.
    let mut settings = None;
    figment::Jail::expect_with(|jail| {
        jail.set_env("HUZHU_SMS__PROVIDER", "tencent");
        jail.set_env("HUZHU_SMS__SDK_APP_ID", &gateway.sdk_app_id);
        settings = Some(
            Settings::from_figment(Figment::new().merge(Settings::environment()))
                .map_err(|e| e.to_string())?,
        );
        Ok(())
    });
    let mut settings = settings.expect("settings");
    let from_env = settings.sms.sdk_app_id.clone();
    settings.sms = gateway.settings();
    settings.sms.sdk_app_id = from_env;
    let provider = huzhu::integrations::sms::provider(&settings).expect("provider");
    let outcomes = provider
        .send(&SmsBatch {
            template: "100001".into(),
            params: vec![("amount".into(), "100.00".into())],
            sign_name: gateway.sign_name.clone(),
            messages: vec![Sms {
                message_id: "hz1".into(),
                phone: "13904710001".into(),
            }],
        })
        .await;
    assert!(
        matches!(outcomes.as_slice(), [(_, Outcome::Accepted { .. })]),
        "{outcomes:?}"
    );
    assert_eq!(gateway.delivered("hz1"), 1);
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail closure returns figment's own error type
fn the_dispatcher_is_configured_within_bounds() {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    use huzhu::service::reminders::dispatch::DispatchConfig;
    figment::Jail::expect_with(|jail| {
        jail.set_env("HUZHU_REMINDERS__LEASE_SECONDS", "300");
        jail.set_env("HUZHU_REMINDERS__LOOKUP_AFTER_SECONDS", "90");
        jail.set_env("HUZHU_REMINDERS__BACKOFF_BASE_SECONDS", "5");
        jail.set_env("HUZHU_REMINDERS__BATCH_SIZE", "200");
        let s = Settings::from_figment(Figment::new().merge(Settings::environment()))
            .expect("settings");
        let config = DispatchConfig::from_settings(&s.reminders);
        assert_eq!(config.lease, chrono::Duration::seconds(300));
        assert_eq!(config.lookup_after, chrono::Duration::seconds(90));
        assert_eq!(config.backoff_base, chrono::Duration::seconds(5));
        assert_eq!(config.batch, 200);
        Ok(())
    });
    for (toml, named) in [
        ("[reminders]\nlease_seconds = 5", "reminders.lease_seconds"),
        (
            "[reminders]\nlease_seconds = 86400",
            "reminders.lease_seconds",
        ),
        (
            "[reminders]\nlookup_after_seconds = 0",
            "reminders.lookup_after_seconds",
        ),
        (
            "[reminders]\nbackoff_base_seconds = 0",
            "reminders.backoff_base_seconds",
        ),
        ("[reminders]\nbatch_size = 0", "reminders.batch_size"),
        ("[reminders]\nbatch_size = 100000", "reminders.batch_size"),
        // The lease must outlast a call to the provider.
        (
            "[reminders]\nlease_seconds = 30\n[sms]\ntimeout_ms = 20000",
            "sms.timeout_ms",
        ),
    ] {
        let err = Settings::from_figment(Figment::new().merge(Toml::string(toml)))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(named),
            "{toml:?} refused naming {named}: {err:?}"
        );
    }
}

#[test]
fn quiet_hours_may_be_turned_off_for_rehearsals_only() {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    use huzhu::service::reminders::dispatch::DispatchConfig;
    let demo = Settings::from_figment(Figment::new().merge(Toml::string(
        "mode = \"demo\"\n[reminders]\nquiet_hours = false",
    )))
    .expect("demo settings");
    assert!(!DispatchConfig::from_settings(&demo.reminders).quiet_hours);
    assert!(DispatchConfig::from_settings(&Settings::default().reminders).quiet_hours);
    let err = Settings::from_figment(Figment::new().merge(Toml::string(
        "mode = \"production\"\n[reminders]\nquiet_hours = false",
    )))
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("reminders.quiet_hours"), "{err:?}");
}

#[tokio::test]
async fn out_of_bounds_dispatch_settings_stop_the_start() {
    huzhu::integrations::tls::install_crypto_provider();
    let dir = TempDir::new();
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.0.clone(),
        ..Settings::default()
    };
    settings.reminders.batch_size = 0;
    let err = Application::build(settings)
        .await
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(err.contains("reminders.batch_size"), "{err}");
}

#[test]
fn an_unknown_setting_is_refused() {
    use figment::Figment;
    use figment::providers::{Format, Toml};
    let err = Settings::from_figment(Figment::new().merge(Toml::string("listne = \"x\"")));
    assert!(err.is_err());
}

#[tokio::test]
async fn the_embedded_default_keeps_its_files_in_the_data_directory() {
    huzhu::integrations::tls::install_crypto_provider();
    let dir = TempDir::new();
    let app = Application::build(Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.0.clone(),
        ..Settings::default()
    })
    .await
    .expect("starts with no configuration");
    assert!(dir.0.join("huzhu.db").exists());
    assert!(dir.0.join("objects").is_dir());
    assert!(dir.0.join("secrets.toml").exists());
    assert!(
        !huzhu::service::organisation::is_empty(&app.state().db)
            .await
            .unwrap(),
        "demo seeded"
    );
}
