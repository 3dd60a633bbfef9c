//! Outages: the database stopped answers `503 service_unavailable` with `Retry-After` (not a
//! `500` after a hang), `/readyz` fails only without the database, and the service comes back
//! by itself; Redis killed leaves the API serving with `/readyz` reporting it as degraded.
//! Each test starts its own throwaway PostgreSQL or Redis — never the shared ones.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use huzhu_tests::harness::{Backend, TempDir, TestApp, spawn_app_with};
use secrecy::SecretString;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL server of its own, in a temporary directory, on a free port.
struct Postgres {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
}

impl Postgres {
    /// `None` when no PostgreSQL binaries are installed (the test is then skipped, unless
    /// services are required).
    fn start() -> Option<Postgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()?;
        let dir = TempDir::new();
        let pg = Postgres {
            bin,
            dir,
            port: free_port(),
        };
        if running_as_root() {
            // PostgreSQL refuses to run as root: its files belong to `postgres`.
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir.0)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the throwaway cluster's directory");
        }
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        pg.ctl_start();
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.0.join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.0.display()
        );
        let log = self.dir.0.join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn ctl_stop(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if running_as_root() {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", &self.data(), "-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A Redis server of its own on a free port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(dir: &Path) -> Option<Redis> {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let redis = Redis { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(redis);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the throwaway redis-server did not start");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn skip(what: &str) {
    assert!(
        !huzhu_tests::harness::services_required(),
        "{what} is required but not installed"
    );
    eprintln!("skipped: {what} is not installed");
}

/// Asks `path` until it answers `want` (a server coming back reconnects in the background).
async fn until_status(app: &TestApp, path: &str, token: &str, want: u16) -> u16 {
    let mut last = 0;
    for _ in 0..100 {
        last = app.get(path, Some(token)).await.0;
        if last == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_answers_503_with_retry_after_and_the_service_comes_back() {
    let Some(pg) = Postgres::start() else {
        return skip("PostgreSQL (initdb, pg_ctl)");
    };
    let url = pg.url();
    let app = spawn_app_with(Backend::Sqlite, move |s| {
        s.mode = Some(huzhu::settings::Mode::Demo);
        s.database.url = Some(SecretString::from(url));
        s.database.max_connections = 4;
    })
    .await
    .expect("app on the throwaway PostgreSQL");
    let admin = app.login("admin").await;
    assert_eq!(app.get("/api/v1/claims", Some(&admin)).await.0, 200);

    pg.ctl_stop();
    for path in ["/api/v1/claims", "/api/v1/members", "/api/v1/me"] {
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(
            body["error"]["code"], "service_unavailable",
            "{path}: {body}"
        );
        assert!(
            retry_after.is_some_and(|v| v.parse::<u32>().is_ok()),
            "{path}: Retry-After"
        );
    }
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["details"]["checks"]["database"],
        "unreachable"
    );
    assert_eq!(app.get("/healthz", None).await.0, 200);

    pg.ctl_start();
    assert_eq!(until_status(&app, "/api/v1/claims", &admin, 200).await, 200);
    assert_eq!(app.get("/readyz", None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_leaves_the_api_serving_and_readiness_degraded() {
    let dir = TempDir::new();
    let Some(mut redis) = Redis::start(&dir.0) else {
        return skip("redis-server");
    };
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = spawn_app_with(Backend::Sqlite, move |s| {
        s.redis.url = Some(SecretString::from(url));
    })
    .await
    .expect("app with the throwaway Redis");
    let admin = app.login("admin").await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(
        (status, &body["checks"]["redis"]),
        (200, &"ok".into()),
        "{body}"
    );

    redis.kill();
    // Signed-in requests go on: token generations come from the in-process cache.
    assert_eq!(app.get("/api/v1/claims", Some(&admin)).await.0, 200);
    assert_eq!(app.get("/api/v1/me", Some(&admin)).await.0, 200);
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "Redis is optional: {body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["redis"], "unreachable", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    // A revocation still takes effect on this replica.
    let fresh = app.login("admin").await;
    let (status, _) = app
        .post(
            "/api/v1/me/sessions/revoke",
            Some(&fresh),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.get("/api/v1/me", Some(&fresh)).await.0, 401);
}
