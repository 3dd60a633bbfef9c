//! The `huzhu` binary's commands, run as a person would run them.

use std::path::PathBuf;
use std::process::{Command, Output};

struct DataDir(PathBuf);

impl DataDir {
    fn new() -> DataDir {
        let dir = std::env::temp_dir().join(format!("huzhu-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        DataDir(dir)
    }

    fn huzhu(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_huzhu"))
            .args(args)
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
