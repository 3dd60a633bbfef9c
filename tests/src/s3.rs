//! The real S3-protocol server of the tests (s3s-fs in CI, which verifies signatures).

use huzhu::settings::{Settings, StorageKind};
use secrecy::SecretString;

/// Where the test S3 server is.
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The S3 server from `HUZHU_TEST_S3_*`, or `None` to skip (panics when
/// `HUZHU_TEST_REQUIRE_S3=1`).
pub fn s3() -> Option<S3> {
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

impl S3 {
    /// Points `settings` at this server, under a fresh prefix, signing with `secret`.
    pub fn configure(&self, settings: &mut Settings, secret: &str) {
        settings.storage.kind = StorageKind::S3;
        settings.storage.endpoint = Some(self.endpoint.clone());
        settings.storage.bucket = Some(self.bucket.clone());
        settings.storage.region = Some("us-east-1".into());
        settings.storage.access_key_id = Some(self.access_key.clone());
        settings.storage.secret_access_key = Some(SecretString::from(secret.to_owned()));
        settings.storage.root = Some(format!("/run-{}/", uuid::Uuid::new_v4().simple()));
    }
}
