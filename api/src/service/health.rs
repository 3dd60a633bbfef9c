//! Readiness: whether the database, Redis (when configured) and the object store answer, each
//! asked with a time limit so a hung dependency cannot hang the probe.

use std::time::Duration;

use opendal::Operator;
use sea_orm::DatabaseConnection;

/// How long one dependency may take to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What each dependency answered: `Err` holds why it did not.
#[derive(Debug)]
pub struct Readiness {
    pub database: Result<(), String>,
    /// `None` when Redis is not configured.
    pub redis: Option<Result<(), String>>,
    pub storage: Result<(), String>,
}

impl Readiness {
    /// `name: why` for each dependency that did not answer.
    pub fn failures(&self) -> Vec<String> {
        [
            ("database", Some(&self.database)),
            ("redis", self.redis.as_ref()),
            ("storage", Some(&self.storage)),
        ]
        .into_iter()
        .filter_map(|(name, r)| match r {
            Some(Err(e)) => Some(format!("{name}: {e}")),
            _ => None,
        })
        .collect()
    }
}

/// Asks every dependency.
pub async fn readiness(
    db: &DatabaseConnection,
    redis: Option<&redis::aio::ConnectionManager>,
    storage: &Operator,
) -> Readiness {
    let database = check(db.ping()).await;
    let redis = match redis {
        Some(conn) => {
            let mut conn = conn.clone();
            Some(
                check(async move {
                    redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .map(|_| ())
                })
                .await,
            )
        }
        None => None,
    };
    let storage = check(storage.check()).await;
    Readiness {
        database,
        redis,
        storage,
    }
}

async fn check<F, E>(fut: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}
