//! Starts the real server for a test, on its own database.
//!
//! Backends: `Sqlite` always runs; `Postgres` (with Redis) runs when `HUZHU_TEST_POSTGRES_URL`
//! (an admin URL, e.g. `postgres://postgres@127.0.0.1:5432/postgres`) and
//! `HUZHU_TEST_REDIS_URL` are set. With `HUZHU_TEST_REQUIRE_SERVICES=1` (CI), a missing or
//! unreachable service fails the test instead of skipping it.

use std::future::Future;
use std::path::PathBuf;

use huzhu::settings::{Mode, Settings};
use huzhu::startup::Application;
use huzhu::state::AppState;
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::fake_wechat::FakeWeChat;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whether service-backed tests must run (CI) rather than skip.
pub fn services_required() -> bool {
    std::env::var("HUZHU_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The PostgreSQL admin URL and Redis URL, or `None` to skip (panics when required).
pub fn postgres_services() -> Option<(String, String)> {
    match (env("HUZHU_TEST_POSTGRES_URL"), env("HUZHU_TEST_REDIS_URL")) {
        (Some(pg), Some(redis)) => Some((pg, redis)),
        _ if services_required() => panic!(
            "HUZHU_TEST_REQUIRE_SERVICES=1 but HUZHU_TEST_POSTGRES_URL / HUZHU_TEST_REDIS_URL are not set"
        ),
        _ => {
            eprintln!(
                "skipped: set HUZHU_TEST_POSTGRES_URL and HUZHU_TEST_REDIS_URL to run on PostgreSQL + Redis"
            );
            None
        }
    }
}

/// A fresh PostgreSQL database, dropped (forcibly) when this is dropped.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates `huzhu_test_<random>` next to the admin URL's database.
    pub async fn create(admin_url: &str) -> PgDatabase {
        let name = format!("huzhu_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is unreachable: {e}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let mut url = reqwest::Url::parse(admin_url).expect("postgres URL");
        url.set_path(&format!("/{name}"));
        PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    /// Drops the database now (connections are terminated): the database becomes unreachable.
    pub async fn drop_now(&self) {
        if let Ok(admin) = Database::connect(&self.admin_url).await {
            let _ = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ))
                .await;
            admin.close().await.ok();
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await: run the DROP on a thread with its own small runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    admin.close().await.ok();
                }
            });
        })
        .join();
    }
}

/// Keys under a per-test Redis prefix, deleted on drop.
pub struct RedisKeys {
    pub url: String,
    pub prefix: String,
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let url = self.url.clone();
        let pattern = format!("{}*", self.prefix);
        let _ = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(url) else {
                return;
            };
            let Ok(mut conn) = client.get_connection() else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        })
        .join();
    }
}

/// The `huzhu` binary, for tests that run it as processes: `HUZHU_BIN` when set, otherwise the
/// debug binary of the target directory this test runs from (`target/debug/deps/<test>` →
/// `target/debug/huzhu`), which `cargo test --workspace` and `cargo nextest run --workspace`
/// build with the tests (`CARGO_TARGET_DIR` honoured, since the test binary lives there).
///
/// # Panics
/// When neither exists, saying how to build it.
pub fn huzhu_binary() -> PathBuf {
    if let Some(bin) = env("HUZHU_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .filter(|d| d.ends_with("deps"))
        .and_then(std::path::Path::parent)
        .or_else(|| exe.parent())
        .expect("the target directory");
    let bin = dir.join(format!("huzhu{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it (`cargo build -p huzhu-api --bin huzhu`, or run the tests with \
         --workspace) or set HUZHU_BIN",
        bin.display()
    );
    bin
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("huzhu-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server and what a test needs around it.
pub struct TestApp {
    pub backend: Backend,
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub wechat: FakeWeChat,
    pub pg: Option<PgDatabase>,
    pub redis_keys: Option<RedisKeys>,
    pub data_dir: TempDir,
}

/// Settings for a test in demo mode on `backend`; `None` when the backend is unavailable.
pub async fn test_settings(
    backend: Backend,
    data_dir: &TempDir,
    wechat: &FakeWeChat,
) -> Option<(Settings, Option<PgDatabase>)> {
    let mut settings = Settings {
        mode: Some(Mode::Demo),
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.0.clone(),
        ..Settings::default()
    };
    settings.http.workers = 2;
    // Tests dispatch reminders themselves, at the times they choose.
    settings.reminders.dispatch_enabled = false;
    // The renewal scan would queue messages behind a test's back; tests that want the
    // scheduler turn it on.
    settings.reminders.schedule_enabled = false;
    settings.wechat.base_url = wechat.base_url.clone();
    settings.wechat.appid = wechat.appid.clone();
    settings.wechat.secret = Some(SecretString::from(wechat.secret.clone()));
    settings.wechat.timeout_ms = 2000;
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let (pg_url, redis_url) = postgres_services()?;
            let db = PgDatabase::create(&pg_url).await;
            settings.database.url = Some(SecretString::from(db.url.clone()));
            settings.database.max_connections = 5;
            settings.redis.url = Some(SecretString::from(redis_url));
            settings.redis.key_prefix = format!("huzhu-test:{}:", uuid::Uuid::new_v4().simple());
            Some(db)
        }
    };
    Some((settings, pg))
}

/// Starts the app on `backend` with the demo seeded; `None` when the backend is unavailable.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// As [`spawn_app`], letting the test adjust the settings first.
pub async fn spawn_app_with(
    backend: Backend,
    customize: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    huzhu::integrations::tls::install_crypto_provider();
    let wechat = FakeWeChat::start().await;
    let data_dir = TempDir::new();
    let (mut settings, pg) = test_settings(backend, &data_dir, &wechat).await?;
    customize(&mut settings);
    let redis_keys = settings.redis.url.as_ref().map(|url| RedisKeys {
        url: secrecy::ExposeSecret::expose_secret(url).to_owned(),
        prefix: settings.redis.key_prefix.clone(),
    });
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    Some(TestApp {
        backend,
        address,
        client: reqwest::Client::new(),
        state,
        wechat,
        pg,
        redis_keys,
        data_dir,
    })
}

/// Runs `test` on `backend` (skips when the backend is unavailable and not required).
pub async fn run_on<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(app) = spawn_app(backend).await {
        test(app).await;
    }
}

/// Runs `test` on `backend` with adjusted settings (skips like [`run_on`]).
pub async fn run_on_with<F, Fut>(backend: Backend, customize: fn(&mut Settings), test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(app) = spawn_app_with(backend, customize).await {
        test(app).await;
    }
}

impl TestApp {
    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A token through the demo sign-in.
    pub async fn login(&self, account: &str) -> String {
        let res = self
            .client
            .post(self.url("/api/v1/auth/dev-login"))
            .json(&json!({ "account": account }))
            .send()
            .await
            .expect("dev-login request");
        assert_eq!(res.status(), 200, "dev-login as {account}");
        let body: Value = res.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }

    /// `SELECT COUNT(*) AS n …` on the app's database.
    pub async fn count(&self, sql: &str) -> i64 {
        let backend = self.state.db.get_database_backend();
        self.state
            .db
            .query_one_raw(sea_orm::Statement::from_string(backend, sql.to_owned()))
            .await
            .expect("count query")
            .expect("a row")
            .try_get::<i64>("", "n")
            .expect("n")
    }

    /// The public id of the unit union called `name`, as `token` sees it.
    pub async fn unit_id(&self, token: &str, name: &str) -> String {
        let (_, page) = self
            .get(
                "/api/v1/organisations?kind=unit_union&limit=100",
                Some(token),
            )
            .await;
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("no unit {name}"))["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// GET with a token; returns status and JSON body.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// GET a file with a token; returns status, content type and the bytes.
    pub async fn download(&self, path: &str, token: &str) -> (u16, String, Vec<u8>) {
        let res = self
            .client
            .get(self.url(path))
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
        (
            status,
            content_type,
            res.bytes().await.expect("body").to_vec(),
        )
    }

    /// POST a `multipart/form-data` form with a token; returns status and JSON body.
    pub async fn post_form(
        &self,
        path: &str,
        token: &str,
        form: reqwest::multipart::Form,
    ) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// POST JSON with a token; returns status and JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, body).await
    }

    /// PATCH JSON with a token; returns status and JSON body.
    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, token, body).await
    }

    /// Any method with a JSON body and a token; returns status and JSON body.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        self.send(method, path, token, body).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// Declares each listed `async fn name(app: TestApp)` as two tests, `sqlite::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::harness::run_on($crate::harness::Backend::Sqlite, super::$name).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::harness::run_on($crate::harness::Backend::Postgres, super::$name).await;
                }
            )+
        }
    };
}

/// As [`on_both_backends!`], with settings adjusted by `customize` (a `fn(&mut Settings)`),
/// inside a module `group` so that one file can hold several such groups; `customize` names a function of the same file.
#[macro_export]
macro_rules! on_both_backends_with {
    ($group:ident, $customize:ident => $($name:ident),+ $(,)?) => {
        mod $group {
            mod sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        $crate::harness::run_on_with(
                            $crate::harness::Backend::Sqlite,
                            super::super::$customize,
                            super::super::$name,
                        )
                        .await;
                    }
                )+
            }
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        $crate::harness::run_on_with(
                            $crate::harness::Backend::Postgres,
                            super::super::$customize,
                            super::super::$name,
                        )
                        .await;
                    }
                )+
            }
        }
    };
}
