//! Object storage through OpenDAL: local disk by default, memory in tests, S3/MinIO, Tencent
//! COS or Aliyun OSS in production. Photos never go into the database.

use opendal::{Operator, services};
use secrecy::ExposeSecret;

use crate::settings::{Settings, StorageKind};

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, opendal::Error> {
    value.as_deref().ok_or_else(|| {
        opendal::Error::new(
            opendal::ErrorKind::ConfigInvalid,
            format!("storage.{name} is required for this storage kind"),
        )
    })
}

/// Builds the operator described by `settings.storage`. Remote stores retry transient failures
/// with backoff and give up on a call after a timeout, so a slow store cannot hang requests.
pub fn operator(settings: &Settings) -> Result<Operator, opendal::Error> {
    // Registers the HTTP transport the remote services use (idempotent).
    opendal::install_default();
    let remote = |op: Operator| {
        op.layer(
            opendal::layers::RetryLayer::new()
                .with_max_times(3)
                .with_jitter(),
        )
        .layer(
            opendal::layers::TimeoutLayer::new()
                .with_timeout(std::time::Duration::from_secs(30))
                .with_io_timeout(std::time::Duration::from_secs(10)),
        )
    };
    let s = &settings.storage;
    let secret = s
        .secret_access_key
        .as_ref()
        .map(|k| k.expose_secret().to_owned())
        .unwrap_or_default();
    let op = match s.kind {
        StorageKind::Fs => {
            let root = s.root.clone().unwrap_or_else(|| {
                settings
                    .data_dir
                    .join("objects")
                    .to_string_lossy()
                    .into_owned()
            });
            std::fs::create_dir_all(&root).map_err(|e| {
                opendal::Error::new(opendal::ErrorKind::ConfigInvalid, format!("{root}: {e}"))
            })?;
            Operator::new(services::Fs::default().root(&root))?
        }
        StorageKind::Memory => Operator::new(services::Memory::default())?,
        StorageKind::S3 => {
            let mut b = services::S3::default()
                .bucket(required(&s.bucket, "bucket")?)
                .region(s.region.as_deref().unwrap_or("us-east-1"))
                .access_key_id(required(&s.access_key_id, "access_key_id")?)
                .secret_access_key(&secret)
                .root(s.root.as_deref().unwrap_or("/"))
                .disable_config_load()
                .disable_ec2_metadata();
            if let Some(endpoint) = &s.endpoint {
                b = b.endpoint(endpoint);
            }
            remote(Operator::new(b)?)
        }
        StorageKind::Cos => remote(Operator::new(
            services::Cos::default()
                .bucket(required(&s.bucket, "bucket")?)
                .endpoint(required(&s.endpoint, "endpoint")?)
                .secret_id(required(&s.access_key_id, "access_key_id")?)
                .secret_key(&secret)
                .root(s.root.as_deref().unwrap_or("/"))
                .disable_config_load(),
        )?),
        StorageKind::Oss => remote(Operator::new(
            services::Oss::default()
                .bucket(required(&s.bucket, "bucket")?)
                .endpoint(required(&s.endpoint, "endpoint")?)
                .access_key_id(required(&s.access_key_id, "access_key_id")?)
                .access_key_secret(&secret)
                .root(s.root.as_deref().unwrap_or("/")),
        )?),
    };
    Ok(op)
}
