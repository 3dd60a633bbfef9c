//! Object storage against a real S3-protocol server (s3s-fs in CI, which verifies signatures).

use huzhu_tests::harness::{Backend, spawn_app_with};
use huzhu_tests::s3::{S3, s3};

async fn app_on_s3(s3: &S3, secret: &str) -> huzhu_tests::harness::TestApp {
    spawn_app_with(Backend::Sqlite, |s| s3.configure(s, secret))
        .await
        .expect("sqlite app")
}

#[tokio::test]
async fn objects_are_written_and_read_back_through_s3() {
    let Some(s3) = s3() else { return };
    let app = app_on_s3(&s3, &s3.secret_key).await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["storage"], "ok");
    app.state
        .storage
        .write("probe/hello.txt", "互助".as_bytes().to_vec())
        .await
        .expect("write");
    let back = app
        .state
        .storage
        .read("probe/hello.txt")
        .await
        .expect("read");
    assert_eq!(back.to_vec(), "互助".as_bytes());
    app.state
        .storage
        .delete("probe/hello.txt")
        .await
        .expect("delete");
}

/// Storage is a dependency the replica can still serve without (every read and write that does
/// not touch a photo): a wrong secret shows as `degraded`, not as a replica to take out
/// (issue 18: `/readyz` fails only without the database).
#[tokio::test]
async fn a_wrong_s3_secret_shows_storage_unreachable_and_the_service_degraded() {
    let Some(s3) = s3() else { return };
    let app = app_on_s3(&s3, "not-the-secret").await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["storage"], "unreachable", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
}
