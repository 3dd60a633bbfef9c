//! Badge counts and yearly figures, read far more often than claims change.
//!
//! A reviewer's phone asks for the status counts (`GET /claims/counts`) every time a queue is
//! opened, and the association's and an office's scope hold every claim of the region: a
//! `GROUP BY` over 100,000 claims per tap does not fit the 50 ms a queue may take when 64
//! reviewers tap at once (issue 20). So each answer is kept per replica, per caller and filter,
//! for at most [`COUNTS_FRESH_FOR`] (figures: [`FIGURES_FRESH_FOR`]), concurrent misses of one
//! key waiting for a single computation; and any change of a claim made through this replica
//! (a new draft, every status change) starts a new epoch, so that no answer read before it is
//! served after it. Changes made by another replica show within the freshness bound.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;

use super::figures::ClaimFigures;

/// Longest a replica serves a status count it computed (changes made elsewhere show within it).
pub const COUNTS_FRESH_FOR: Duration = Duration::from_secs(2);

/// Longest a replica serves yearly figures it computed.
pub const FIGURES_FRESH_FOR: Duration = Duration::from_secs(10);

/// Answers kept (per kind); the least recently used go first.
const CAPACITY: u64 = 10_000;

/// Bumped by every claim change this process makes; part of every key.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Records that claims changed (call after a claim row is written): answers computed before
/// are not served again.
pub fn changed() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// The current epoch, to be part of a cache key.
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

/// The kept answers of one replica (cheap to clone).
#[derive(Clone)]
pub struct Tallies {
    pub(crate) counts: Cache<String, Arc<BTreeMap<String, i64>>>,
    pub(crate) figures: Cache<String, Arc<ClaimFigures>>,
}

impl std::fmt::Debug for Tallies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tallies")
            .field("counts", &self.counts.entry_count())
            .field("figures", &self.figures.entry_count())
            .finish()
    }
}

impl Default for Tallies {
    fn default() -> Self {
        Self {
            counts: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(COUNTS_FRESH_FOR)
                .build(),
            figures: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(FIGURES_FRESH_FOR)
                .build(),
        }
    }
}

/// `compute`'s answer through `cache` under `key` (concurrent misses wait for one computation).
/// An error is not kept: it is computed again, to be answered as itself.
pub(crate) async fn kept<V, E, F, Fut>(
    cache: &Cache<String, Arc<V>>,
    key: String,
    compute: F,
) -> Result<V, E>
where
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<V, E>>,
{
    match cache
        .try_get_with(key, async { compute().await.map(Arc::new) })
        .await
    {
        Ok(answer) => Ok((*answer).clone()),
        Err(_) => compute().await,
    }
}
