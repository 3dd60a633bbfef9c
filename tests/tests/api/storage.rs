//! Object storage against a real S3-protocol server (s3s-fs in CI, which verifies signatures).

use huzhu::settings::StorageKind;
use huzhu_tests::harness::{Backend, spawn_app_with};
use secrecy::SecretString;

struct S3 {
    endpoint: String,
    bucket: String,
    access_key: String,
    secret_key: String,
}

fn s3() -> Option<S3> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    match (
        var("HUZHU_TEST_S3_ENDPOINT"),
        var("HUZHU_TEST_S3_BUCKET"),
        var("HUZHU_TEST_S3_ACCESS_KEY"),
        var("HUZHU_TEST_S3_SECRET_KEY"),
    ) {
        (Some(endpoint), Some(bucket), Some(access_key), Some(secret_key)) => Some(S3 {
            endpoint,
            bucket,
            access_key,
            secret_key,
        }),
        _ if std::env::var("HUZHU_TEST_REQUIRE_S3").is_ok_and(|v| v == "1") => {
            panic!("HUZHU_TEST_REQUIRE_S3=1 but HUZHU_TEST_S3_* are not set")
        }
        _ => {
            eprintln!("skipped: set HUZHU_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY, _SECRET_KEY");
            None
        }
    }
}

async fn app_on_s3(s3: &S3, secret: &str) -> huzhu_tests::harness::TestApp {
    let prefix = format!("/run-{}/", uuid::Uuid::new_v4().simple());
    spawn_app_with(Backend::Sqlite, |s| {
        s.storage.kind = StorageKind::S3;
        s.storage.endpoint = Some(s3.endpoint.clone());
        s.storage.bucket = Some(s3.bucket.clone());
        s.storage.region = Some("us-east-1".into());
        s.storage.access_key_id = Some(s3.access_key.clone());
        s.storage.secret_access_key = Some(SecretString::from(secret.to_owned()));
        s.storage.root = Some(prefix);
    })
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

#[tokio::test]
async fn a_wrong_s3_secret_makes_the_service_not_ready() {
    let Some(s3) = s3() else { return };
    let app = app_on_s3(&s3, "not-the-secret").await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["details"]["checks"]["storage"], "unreachable");
}
