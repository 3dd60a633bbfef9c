//! Configuration: defaults → optional `huzhu.toml` → `HUZHU_*` environment variables, into one
//! typed [`Settings`]. Nested keys use a double underscore in the environment
//! (`HUZHU_DATABASE__URL`); two keys are fixed by name for outside checks: `HUZHU_LISTEN` and
//! `HUZHU_DATA_DIR`. Secrets are [`SecretString`]s, so they never print.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Whether this process serves the demo (embedded default) or a real association.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Demo data on first start, `dev-login`, keys generated into the data directory.
    Demo,
    /// Real deployments: every key must be configured; `dev-login` does not exist.
    Production,
}

/// Everything the service needs to start.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `demo` or `production`; when absent: demo on the embedded SQLite default, production
    /// as soon as a database URL is configured (so a real deployment never opens `dev-login`).
    pub mode: Option<Mode>,
    /// Address to listen on (`HUZHU_LISTEN`); port 0 picks a free port, printed at start.
    pub listen: String,
    /// Where the embedded default keeps its files (`HUZHU_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Run pending migrations when `serve` starts.
    pub migrate_on_start: bool,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub storage: StorageSettings,
    pub auth: AuthSettings,
    pub pii: PiiSettings,
    pub wechat: WeChatSettings,
    pub sms: SmsSettings,
    pub reminders: RemindersSettings,
    pub http: HttpSettings,
    pub ops: OpsSettings,
    pub log: LogSettings,
    pub clock: ClockSettings,
}

/// The calendar the service counts in.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockSettings {
    /// Pretend today is this date (Asia/Shanghai) for claim windows and service levels — for
    /// rehearsing a past scheme year and for tests; never set in a live deployment.
    pub today: Option<chrono::NaiveDate>,
}

impl Settings {
    /// Today in Asia/Shanghai, the calendar the schemes count in (or `clock.today`).
    pub fn today(&self) -> chrono::NaiveDate {
        self.clock.today.unwrap_or_else(|| {
            chrono::Utc::now()
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .date_naive()
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: None,
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            migrate_on_start: true,
            database: DatabaseSettings::default(),
            redis: RedisSettings::default(),
            storage: StorageSettings::default(),
            auth: AuthSettings::default(),
            pii: PiiSettings::default(),
            wechat: WeChatSettings::default(),
            sms: SmsSettings::default(),
            reminders: RemindersSettings::default(),
            http: HttpSettings::default(),
            ops: OpsSettings::default(),
            log: LogSettings::default(),
            clock: ClockSettings::default(),
        }
    }
}

/// The relational database.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…`; absent: SQLite at `{data_dir}/huzhu.db`.
    pub url: Option<SecretString>,
    pub max_connections: u32,
    pub connect_timeout_seconds: u64,
    /// Longest wait for a connection from the pool: past it the request answers `503
    /// service_unavailable` with `Retry-After`. The first request to meet an outage waits this
    /// long; the breaker then answers the others at once until the database is back.
    pub acquire_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
            connect_timeout_seconds: 5,
            acquire_timeout_ms: 5000,
        }
    }
}

/// Redis, for what must be shared between replicas (token cache, locks, limits).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// Absent: in-process fallbacks (one replica only).
    pub url: Option<SecretString>,
    /// Prefix of every key, so several deployments (or tests) can share one server.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "huzhu:".into(),
        }
    }
}

/// Which object store holds photos and exports.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// Local disk under `root` (default `{data_dir}/objects`).
    #[default]
    Fs,
    /// In memory (tests only: lost on exit).
    Memory,
    /// Amazon S3 or any S3-compatible store (MinIO).
    S3,
    /// Tencent Cloud COS.
    Cos,
    /// Aliyun OSS.
    Oss,
}

/// Object storage settings (one shape for every kind; unused fields are ignored).
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    pub kind: StorageKind,
    /// File-system root, or a key prefix inside the bucket.
    pub root: Option<String>,
    pub bucket: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
}

/// Our own tokens.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 key, at least 32 bytes; generated into the data directory in demo mode.
    pub jwt_secret: Option<SecretString>,
    pub issuer: String,
    pub audience: String,
    /// Tokens are short-lived: the mini-program signs in again silently with `wx.login`.
    pub token_ttl_seconds: i64,
    /// How long an invitation code stays valid.
    pub invitation_ttl_hours: i64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            issuer: "huzhu".into(),
            audience: "huzhu-miniapp".into(),
            token_ttl_seconds: 900,
            invitation_ttl_hours: 72,
        }
    }
}

/// Keys protecting personal data at rest.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiSettings {
    /// AES-256-GCM key, base64 of 32 bytes: encrypts every new value.
    pub encryption_key: Option<SecretString>,
    /// The id of `encryption_key`, written into each value it encrypts (`v<id>:…`); raise it
    /// with every new key.
    pub key_id: u32,
    /// Retired encryption keys by id (`HUZHU_PII__PREVIOUS_KEYS__1=…`): they still decrypt
    /// values written under them until `huzhu admin rotate-pii` has re-encrypted those.
    pub previous_keys: std::collections::BTreeMap<String, SecretString>,
    /// HMAC-SHA256 key for look-up hashes, base64 of 32 bytes.
    pub lookup_key: Option<SecretString>,
}

impl Default for PiiSettings {
    fn default() -> Self {
        Self {
            encryption_key: None,
            key_id: 1,
            previous_keys: Default::default(),
            lookup_key: None,
        }
    }
}

/// The WeChat mini-program.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeChatSettings {
    pub base_url: String,
    pub appid: String,
    pub secret: Option<SecretString>,
    pub timeout_ms: u64,
}

impl Default for WeChatSettings {
    fn default() -> Self {
        Self {
            base_url: "https://api.weixin.qq.com".into(),
            appid: "wx-demo-appid".into(),
            secret: None,
            timeout_ms: 5000,
        }
    }
}

/// Which SMS provider sends reminders.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmsProvider {
    /// Writes each message to the log (embedded default).
    #[default]
    Log,
    Tencent,
    Aliyun,
}

/// SMS settings: which provider, its credentials and how long to wait for it.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsSettings {
    pub provider: SmsProvider,
    /// Tencent Cloud SMS API root (tests point it at a local fake).
    pub tencent_base_url: String,
    /// Aliyun SMS (Dysmsapi) API root.
    pub aliyun_base_url: String,
    /// Tencent `SecretId` / Aliyun `AccessKey ID`.
    pub secret_id: Option<String>,
    /// Tencent `SecretKey` / Aliyun `AccessKey secret`.
    pub secret_key: Option<SecretString>,
    /// Tencent `SmsSdkAppId` (the SMS application, e.g. `1400006666`), written as a number
    /// or as a string.
    #[serde(deserialize_with = "id_string")]
    pub sdk_app_id: Option<String>,
    /// Tencent `X-TC-Region` (default `ap-guangzhou`) / Aliyun `RegionId` (default
    /// `cn-hangzhou`).
    pub region: Option<String>,
    /// The approved signature (签名) put in front of every message, without 【】.
    pub sign_name: String,
    /// Longest wait for a connection to the provider.
    pub connect_timeout_ms: u64,
    /// Longest wait for one whole call (connection, request and answer). After it the
    /// message's fate is unknown and the provider is asked before it is sent again.
    pub timeout_ms: u64,
    /// Cut every template variable to 6 characters (newer Tencent accounts refuse longer
    /// ones); templates must be worded so that a cut value still reads (`12月31日`).
    pub short_params: bool,
    /// How long after an attempt a provider's "no such message" is believed: earlier, a
    /// look-up that finds nothing answers "unknown" (Tencent lists a message only once the
    /// operator's delivery report has arrived).
    pub lookup_grace_seconds: u64,
    /// Token the providers must present when they post delivery receipts to us (part of the
    /// callback URL configured at the provider); absent: receipts are refused.
    pub receipt_secret: Option<SecretString>,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            provider: SmsProvider::Log,
            tencent_base_url: "https://sms.tencentcloudapi.com".into(),
            aliyun_base_url: "https://dysmsapi.aliyuncs.com".into(),
            secret_id: None,
            secret_key: None,
            sdk_app_id: None,
            region: None,
            sign_name: "职工互助".into(),
            connect_timeout_ms: 5000,
            timeout_ms: 5000,
            short_params: false,
            lookup_grace_seconds: 600,
            receipt_secret: None,
        }
    }
}

/// Reads an id the provider defines as a number (`SmsSdkAppId`, `1400987654`) written either
/// way: TOML and environment variables (`HUZHU_SMS__SDK_APP_ID=1400987654`) give unquoted
/// digits as a number, and an id is text to us.
fn id_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Id;
    impl<'de> serde::de::Visitor<'de> for Id {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or a whole number")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            if v < 0 {
                return Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self));
            }
            Ok(Some(v.to_string()))
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(Id)
        }
    }
    d.deserialize_any(Id)
}

/// The renewal-reminder scheduler (`service::reminders::schedule`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemindersSettings {
    /// Whether `serve` runs the renewal scan (at start, then every interval). Every replica may
    /// leave it on: only one scans at a time.
    pub schedule_enabled: bool,
    /// Seconds between scans. The scan is idempotent and catches up missed days, so the
    /// interval only bounds how late in the day a reminder is queued.
    pub scan_interval_seconds: u64,
    /// Whether `serve` sends due messages (every replica may: they share the work).
    pub dispatch_enabled: bool,
    /// Seconds between dispatch rounds.
    pub dispatch_interval_seconds: u64,
    /// Messages one number may get in any 60 s (rolling, from each message's own time).
    pub per_number_per_minute: u32,
    /// Messages one number may get per calendar day of Asia/Shanghai (as the providers count).
    pub per_number_per_day: u32,
    /// Seconds a leased message is held before another dispatcher may look it up; it must
    /// outlast one call to the provider (at least three times `sms.timeout_ms`).
    pub lease_seconds: u64,
    /// Seconds after an unknown outcome before the provider is asked (its records lag).
    pub lookup_after_seconds: u64,
    /// Seconds before the first retry after a provider error; each further attempt doubles
    /// it (at most an hour), ±50 %.
    pub backoff_base_seconds: u64,
    /// Messages leased per dispatch round.
    pub batch_size: u64,
    /// Hold messages to 08:00–21:00 Asia/Shanghai. Off only for rehearsals and tests that
    /// send at any hour (refused in production mode: members are not texted at night).
    pub quiet_hours: bool,
    /// Offer each message first as a WeChat subscribe message, to members who signed in with
    /// the mini-program, on occasions whose template names one; SMS when WeChat refuses
    /// (43101: no subscription left) or cannot be reached. Needs `wechat.secret`.
    pub wechat_subscribe: bool,
    /// Which version of the mini-program a subscribe message's page opens in.
    pub wechat_miniprogram_state: MiniprogramState,
}

/// WeChat's `miniprogram_state`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MiniprogramState {
    /// The released version.
    #[default]
    Formal,
    Trial,
    Developer,
}

impl MiniprogramState {
    /// As WeChat spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MiniprogramState::Formal => "formal",
            MiniprogramState::Trial => "trial",
            MiniprogramState::Developer => "developer",
        }
    }
}

impl RemindersSettings {
    /// Refuses values the dispatcher cannot work with, naming the key and its bounds.
    pub fn check(&self, sms: &SmsSettings) -> Result<(), String> {
        let bounded = [
            ("reminders.lease_seconds", self.lease_seconds, 30, 3600),
            (
                "reminders.lookup_after_seconds",
                self.lookup_after_seconds,
                10,
                3600,
            ),
            (
                "reminders.backoff_base_seconds",
                self.backoff_base_seconds,
                1,
                3600,
            ),
            ("reminders.batch_size", self.batch_size, 1, 5000),
        ];
        for (key, value, min, max) in bounded {
            if !(min..=max).contains(&value) {
                return Err(format!("{key} = {value} is outside {min} to {max}"));
            }
        }
        // A call must end well inside the lease, or a dispatcher could find the lease run
        // out while the call is still on its way and send the message again.
        if self.lease_seconds.saturating_mul(1000) < sms.timeout_ms.saturating_mul(3) {
            return Err(format!(
                "reminders.lease_seconds = {} must be at least three times sms.timeout_ms \
                 ({} ms): a leased message must outlast its call to the provider",
                self.lease_seconds, sms.timeout_ms
            ));
        }
        Ok(())
    }
}

impl Default for RemindersSettings {
    fn default() -> Self {
        Self {
            schedule_enabled: true,
            scan_interval_seconds: 3600,
            dispatch_enabled: true,
            dispatch_interval_seconds: 15,
            per_number_per_minute: 1,
            per_number_per_day: 10,
            lease_seconds: 120,
            lookup_after_seconds: 60,
            backoff_base_seconds: 30,
            batch_size: 500,
            quiet_hours: true,
            wechat_subscribe: false,
            wechat_miniprogram_state: MiniprogramState::Formal,
        }
    }
}

/// HTTP limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Largest JSON body accepted.
    pub json_limit_bytes: usize,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Whether a reverse proxy in front sets `X-Forwarded-For` (then its first entry is the
    /// client's address); otherwise the header could be forged and the peer address is used.
    pub trust_forwarded_for: bool,
    /// Send `Strict-Transport-Security` on every answer (the service is only reached over
    /// HTTPS); without it, only on requests a proxy marks `X-Forwarded-Proto: https`.
    pub hsts: bool,
    /// Photo decodings and re-encodings run at once (each holds a decoded 12 MP image,
    /// ≈ 36–48 MB); 0: one per core.
    pub photo_workers: usize,
    /// Uploads that may wait for a photo worker; beyond them `503` with `Retry-After`.
    pub photo_queue: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            json_limit_bytes: 256 * 1024,
            workers: 0,
            trust_forwarded_for: false,
            hsts: false,
            photo_workers: 0,
            photo_queue: 64,
        }
    }
}

/// Operators' pages: `/metrics`, `/api/docs/` and `/api/v1/openapi.json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsSettings {
    /// When set, those pages answer only `Authorization: Bearer <token>` (else `401`).
    pub token: Option<SecretString>,
    /// Without a token: whether they are open to anyone. Default: open on the demo, closed
    /// (`404`) in production.
    pub public: Option<bool>,
}

/// Log output.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `json` (default) or `pretty`.
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            filter: "info,sqlx=warn,sea_orm=warn".into(),
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Configuration that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration refused: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads defaults, then `config_file` (or `huzhu.toml` when present, or `HUZHU_CONFIG`),
    /// then `HUZHU_*` variables.
    pub fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        let file = config_file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("HUZHU_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("huzhu.toml"));
        Self::from_figment(
            Figment::new()
                .merge(Toml::file(file))
                .merge(Self::environment()),
        )
    }

    /// The `HUZHU_*` variables as a provider. `HUZHU_CONFIG` names the file and the test
    /// suite's own `HUZHU_TEST_*` variables are not settings.
    pub fn environment() -> Env {
        Env::prefixed("HUZHU_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                key != "config" && !key.starts_with("test_")
            })
            .split("__")
    }

    /// Builds settings from an explicit figment (tests compose their own), refusing values
    /// out of their bounds ([`Settings::check`]).
    pub fn from_figment(figment: Figment) -> Result<Self, SettingsError> {
        let settings: Settings = figment
            .extract()
            .map_err(|e| SettingsError::Load(Box::new(e)))?;
        settings.check()?;
        Ok(settings)
    }

    /// Refuses values out of their bounds, naming the key (at start-up, before anything runs).
    pub fn check(&self) -> Result<(), SettingsError> {
        self.reminders
            .check(&self.sms)
            .map_err(SettingsError::Invalid)?;
        if !self.reminders.quiet_hours && self.effective_mode() == Mode::Production {
            return Err(SettingsError::Invalid(
                "reminders.quiet_hours = false is for rehearsals and tests (demo mode): in \
                 production messages are held to 08:00–21:00 Asia/Shanghai"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The mode in force (see [`Settings::mode`]).
    pub fn effective_mode(&self) -> Mode {
        self.mode.unwrap_or(if self.database.url.is_some() {
            Mode::Production
        } else {
            Mode::Demo
        })
    }

    /// The database URL in force: the configured one, or the embedded SQLite file.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("huzhu.db").display()
            ),
        }
    }

    /// The HTTP workers that serve: `http.workers`, or one per core when it is 0 (as
    /// actix-server counts them, two when the cores cannot be read).
    pub fn http_workers(&self) -> usize {
        one_per_core_unless(self.http.workers)
    }

    /// Whether the database is SQLite (the embedded default or an explicit sqlite URL).
    pub fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }
}

/// `n`, or one per core when it is 0 (two when the cores cannot be read).
pub fn one_per_core_unless(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(2, usize::from)
    }
}
