//! The `huzhu` binary's commands, run as a person would run them.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A data directory, plus the environment that points the binary at a database.
struct DataDir(PathBuf, Vec<(String, String)>);

impl DataDir {
    fn new() -> DataDir {
        let dir = std::env::temp_dir().join(format!("huzhu-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        DataDir(dir, Vec::new())
    }

    fn huzhu(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_huzhu"))
            .args(args)
            .envs(self.1.iter().map(|(k, v)| (k, v)))
            .env("HUZHU_DATA_DIR", &self.0)
            .env("HUZHU_LOG__FORMAT", "pretty")
            .env("RUST_LOG", "warn")
            .output()
            .expect("run huzhu")
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn migrate_up_status_and_down_walk_the_schema_both_ways() {
    let dir = DataDir::new();
    let up = dir.huzhu(&["migrate", "up"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let status = stdout(&dir.huzhu(&["migrate", "status"]));
    assert!(status.contains("Applied"), "{status}");
    assert!(
        status.contains("m20261123_000001_create_foundation"),
        "{status}"
    );
    let down = dir.huzhu(&["migrate", "down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let status = stdout(&dir.huzhu(&["migrate", "status"]));
    assert!(status.contains("Pending"), "{status}");
}

#[test]
fn an_administrator_builds_the_tree_and_invites_staff_from_the_command_line() {
    let dir = DataDir::new();
    let association = dir.huzhu(&[
        "admin",
        "create-association",
        "--name",
        "衡阳市职工互助保障协会",
    ]);
    assert!(
        association.status.success(),
        "{}",
        String::from_utf8_lossy(&association.stderr)
    );
    let association_id = stdout(&association).trim().to_owned();
    assert_eq!(association_id.len(), 36);

    let second = dir.huzhu(&["admin", "create-association", "--name", "第二个"]);
    assert!(!second.status.success(), "one association per deployment");

    let unit = dir.huzhu(&[
        "admin",
        "create-organisation",
        "--parent",
        &association_id,
        "--kind",
        "unit_union",
        "--name",
        "衡阳钢管集团工会",
        "--head-count",
        "40",
    ]);
    assert!(
        unit.status.success(),
        "{}",
        String::from_utf8_lossy(&unit.stderr)
    );
    let unit_id = stdout(&unit).trim().to_owned();

    let staff = dir.huzhu(&[
        "admin",
        "create-staff",
        "--organisation",
        &unit_id,
        "--role",
        "union_reviewer",
        "--name",
        "李干事",
        "--login",
        "hy-steel",
    ]);
    assert!(
        staff.status.success(),
        "{}",
        String::from_utf8_lossy(&staff.stderr)
    );

    let wrong = dir.huzhu(&[
        "admin",
        "create-staff",
        "--organisation",
        &unit_id,
        "--role",
        "admin",
        "--name",
        "x",
        "--login",
        "x",
    ]);
    assert!(
        !wrong.status.success(),
        "an admin does not belong in a unit union"
    );

    let invite = dir.huzhu(&["admin", "invite", "--login", "hy-steel"]);
    assert!(
        invite.status.success(),
        "{}",
        String::from_utf8_lossy(&invite.stderr)
    );
    let code = stdout(&invite);
    assert_eq!(code.split_whitespace().next().unwrap().len(), 14, "{code}");
}

/// Runs one statement on the data directory's SQLite database, as someone with file access.
fn tamper(dir: &DataDir, statement: &str) {
    let url = format!("sqlite://{}", dir.0.join("huzhu.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(&url)
            .await
            .expect("open the database");
        let done = db.execute_unprepared(statement).await.expect(statement);
        assert_eq!(done.rows_affected(), 1, "{statement}");
        db.close().await.ok();
    });
}

#[test]
fn audit_verify_passes_an_intact_trail_and_fails_an_edited_one() {
    let dir = DataDir::new();
    assert!(dir.huzhu(&["migrate", "up"]).status.success());
    let fresh = dir.huzhu(&["audit", "verify"]);
    assert_eq!(
        fresh.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    assert!(
        stdout(&fresh).starts_with("audit trail intact: 0 events checked"),
        "{}",
        stdout(&fresh)
    );

    let association = dir.huzhu(&["admin", "create-association", "--name", "审计协会"]);
    assert!(association.status.success());
    let audited = dir.huzhu(&["audit", "verify"]);
    assert_eq!(audited.status.code(), Some(0), "{}", stdout(&audited));
    assert!(
        stdout(&audited).starts_with("audit trail intact: 1 events checked, head seq 1"),
        "{}",
        stdout(&audited)
    );

    tamper(
        &dir,
        "UPDATE audit_event SET details = '{\"name\":\"别的协会\"}' WHERE seq = 1",
    );
    let edited = dir.huzhu(&["audit", "verify"]);
    assert_eq!(edited.status.code(), Some(1), "{}", stdout(&edited));
    assert!(
        stdout(&edited).starts_with("hash_mismatch id=1 seq=1: "),
        "{}",
        stdout(&edited)
    );
    let json = dir.huzhu(&["audit", "verify", "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON report");
    assert_eq!(report["checked"], 1);
    assert_eq!(report["problems"][0]["kind"], "hash_mismatch");
    assert_eq!(report["problems"][0]["seq"], 1);
}

#[test]
fn audit_verify_exits_2_when_it_cannot_check() {
    // No migration: there is no trail to read.
    let dir = DataDir::new();
    let out = dir.huzhu(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot verify the audit trail"));
}

#[test]
fn the_openapi_command_prints_the_committed_document() {
    let dir = DataDir::new();
    let out = dir.huzhu(&["openapi"]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../miniapp-contract/openapi.json"
    ))
    .expect("committed document");
    assert!(
        stdout(&out) == committed,
        "run `cargo run -- openapi > miniapp-contract/openapi.json`"
    );
}

#[test]
fn a_bad_configuration_is_refused_with_a_clear_message() {
    let dir = DataDir::new();
    let out = Command::new(env!("CARGO_BIN_EXE_huzhu"))
        .arg("migrate")
        .arg("status")
        .env("HUZHU_DATA_DIR", &dir.0)
        .env("HUZHU_LISTNE", "typo")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listne"));
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/simulate");

/// The server binary on port 0, as `cargo run` starts it; killed on drop.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Server {
    fn start(dir: &DataDir) -> Server {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_huzhu"))
            .envs(dir.1.iter().map(|(k, v)| (k, v)))
            .env("HUZHU_DATA_DIR", &dir.0)
            .env("HUZHU_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start huzhu");
        let stdout = child.stdout.take().expect("stdout");
        let mut base = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if let Some(addr) = line.strip_prefix("huzhu listening on ") {
                base = Some(addr.trim().to_owned());
                break;
            }
        }
        Server {
            child,
            base: base.expect("the bound address is printed"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_cli_and_the_endpoint_give_byte_for_byte_the_same_answers() {
    cli_and_endpoint_agree(&DataDir::new());
}

/// A fresh PostgreSQL database for the binary, dropped afterwards.
struct PgDatabase {
    admin: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use sea_orm::ConnectionTrait;
                let db = sea_orm::Database::connect(&admin).await.ok()?;
                db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

mod postgres {
    use super::*;

    /// The same check with the binary on PostgreSQL (skipped unless configured; required in CI).
    #[test]
    fn the_cli_and_the_endpoint_give_byte_for_byte_the_same_answers() {
        let Some(admin) = std::env::var("HUZHU_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty())
        else {
            assert!(
                std::env::var("HUZHU_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "HUZHU_TEST_REQUIRE_SERVICES=1 but HUZHU_TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipped: HUZHU_TEST_POSTGRES_URL not set");
            return;
        };
        let name = format!("huzhu_cli_{}", uuid::Uuid::new_v4().simple());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(&admin)
                .await
                .expect("PostgreSQL reachable");
            db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create");
        });
        let _guard = PgDatabase {
            admin: admin.clone(),
            name: name.clone(),
        };
        let mut url = reqwest::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        let mut dir = DataDir::new();
        dir.1 = vec![
            ("HUZHU_DATABASE__URL".into(), url.to_string()),
            ("HUZHU_MODE".into(), "demo".into()),
        ];
        cli_and_endpoint_agree(&dir);
    }
}

fn cli_and_endpoint_agree(dir: &DataDir) {
    let server = Server::start(dir);
    let client = reqwest::blocking::Client::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(FIXTURES).expect("fixtures") {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".request.json") else {
            continue;
        };
        let request = std::fs::read(&path).unwrap();
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(format!("{stem}.response.json")).unwrap())
                .unwrap();

        let http = client
            .post(format!("{}/api/v1/simulations", server.base))
            .header("content-type", "application/json")
            .body(request.clone())
            .send()
            .expect("http");
        let http_status = http.status().as_u16();
        let http_body = http.bytes().expect("body").to_vec();

        let cli = dir.huzhu(&["simulate", path.to_str().unwrap()]);
        let refused = expected.get("error").is_some();
        assert_eq!(
            cli.status.code(),
            Some(if refused { 2 } else { 0 }),
            "{name}"
        );
        assert_eq!(http_status, if refused { 422 } else { 200 }, "{name}");
        assert_eq!(cli.stdout, http_body, "{name}: CLI and HTTP differ");
        let parsed: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
        assert_eq!(parsed, expected, "{name}");
        checked += 1;
    }
    assert!(checked >= 10);
}

#[test]
fn the_cli_reads_a_request_from_standard_input() {
    use std::io::Write;
    let dir = DataDir::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_huzhu"))
        .args(["simulate", "-"])
        .env("HUZHU_DATA_DIR", &dir.0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let request = std::fs::read(format!("{FIXTURES}/example5.request.json")).unwrap();
    child.stdin.take().unwrap().write_all(&request).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["period_total"], "5700.00");
}
