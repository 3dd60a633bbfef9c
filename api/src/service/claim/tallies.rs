//! Badge counts and yearly figures, read far more often than claims change.
//!
//! A reviewer's phone asks for the status counts (`GET /claims/counts`) every time a queue is
//! opened, and the association's and an office's scope hold every claim of the region: a
//! `GROUP BY` over 100,000 claims per tap does not fit the 50 ms a queue may take when 64
//! reviewers tap at once (issue 20). So each answer is kept per replica, per caller and filter,
//! served as it is for [`COUNTS_FRESH_FOR`] (figures: [`FIGURES_FRESH_FOR`]) and then recomputed
//! in the background while the kept one is still served (see [`kept`]), concurrent misses of one
//! key waiting for a single computation; and any change of a claim made through this replica
//! (a new draft, every status change) starts a new epoch, so that no answer read before it is
//! served after it. Changes made by another replica show within twice the freshness.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::future::Cache;
use tokio::runtime::Handle;

/// How long a status count a replica computed is served as it is (changes made elsewhere show
/// within twice this: see [`kept`]).
pub const COUNTS_FRESH_FOR: Duration = Duration::from_secs(2);

/// How long yearly figures a replica computed are served as they are.
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

/// One kept answer: when it was computed, and whether a recomputation is under way.
pub(crate) struct Kept<V> {
    value: V,
    at: Instant,
    refreshing: AtomicBool,
}

impl<V> Kept<V> {
    fn new(value: V) -> Arc<Self> {
        Arc::new(Self {
            value,
            at: Instant::now(),
            refreshing: AtomicBool::new(false),
        })
    }
}

/// The kept answers of one kind, with how long each is served as it is.
#[derive(Clone)]
pub(crate) struct Shelf<V> {
    cache: Cache<String, Arc<Kept<V>>>,
    fresh_for: Duration,
    /// Where computations run: never on the thread of the request that asked.
    background: Handle,
}

impl<V: Send + Sync + 'static> Shelf<V> {
    fn new(fresh_for: Duration, background: Handle) -> Self {
        Self {
            // Past twice its freshness an answer is gone: the next caller computes it afresh.
            cache: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(fresh_for * 2)
                .build(),
            fresh_for,
            background,
        }
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}

/// The kept answers of one replica (cheap to clone).
#[derive(Clone)]
pub struct Tallies {
    pub(crate) counts: Shelf<BTreeMap<String, i64>>,
    /// As answered (JSON): the association's are 200 KB.
    pub(crate) figures: Shelf<bytes::Bytes>,
}

impl std::fmt::Debug for Tallies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tallies")
            .field("counts", &self.counts.entry_count())
            .field("figures", &self.figures.entry_count())
            .finish()
    }
}

impl Tallies {
    /// Kept answers computed on `background`: the server's own runtime, not an HTTP worker's.
    ///
    /// An HTTP worker is one thread serving all of its connections; a recomputation spawned
    /// there (reading every paid claim's facts, writing the association's 200 KB of figures)
    /// held up every request queued behind it, which was the figures' p99 (issue 20). On a
    /// runtime of its own it takes its share of the cores like any other thread.
    pub fn new(background: Handle) -> Self {
        Self {
            counts: Shelf::new(COUNTS_FRESH_FOR, background.clone()),
            figures: Shelf::new(FIGURES_FRESH_FOR, background),
        }
    }
}

/// `compute`'s answer through `shelf` under `key`.
///
/// - Younger than the shelf's freshness: served as it is.
/// - Older, but younger than twice that: still served, and the first caller to find it so
///   starts one recomputation in the background that replaces it — so a steady stream of
///   callers never waits for the `GROUP BY` (the figures' p99 was that wait, issue 20), and what
///   another replica changed shows within twice the freshness.
/// - Missing (never computed, gone after twice the freshness, or a change made through this
///   replica started a new epoch, which is part of every key): computed now, concurrent callers
///   of the key waiting for that one computation.
///
/// An error is not kept: it is computed again, to be answered as itself.
pub(crate) async fn kept<V, E, F, Fut>(shelf: &Shelf<V>, key: String, compute: F) -> Result<V, E>
where
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<V, E>> + Send + 'static,
{
    if let Some(found) = shelf.cache.get(&key).await {
        if found.at.elapsed() >= shelf.fresh_for && !found.refreshing.swap(true, Ordering::AcqRel) {
            let cache = shelf.cache.clone();
            let key = key.clone();
            let stale = found.clone();
            shelf.background.spawn(async move {
                match compute().await {
                    Ok(value) => cache.insert(key, Kept::new(value)).await,
                    // The next caller tries again.
                    Err(_) => stale.refreshing.store(false, Ordering::Release),
                }
            });
        }
        return Ok(found.value.clone());
    }
    let background = &shelf.background;
    match shelf
        .cache
        .try_get_with(key, async {
            elsewhere(background, &compute).await.map(Kept::new)
        })
        .await
    {
        Ok(answer) => Ok(answer.value.clone()),
        Err(_) => elsewhere(background, &compute).await,
    }
}

/// `compute`'s answer, computed on `background` and awaited here.
async fn elsewhere<V, E, F, Fut>(background: &Handle, compute: &F) -> Result<V, E>
where
    V: Send + 'static,
    E: Send + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<V, E>> + Send + 'static,
{
    match background.spawn(compute()).await {
        Ok(done) => done,
        // As if it had been computed here.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The background runtime is shutting down (so is the process): computed here then.
        Err(_) => compute().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A shelf whose `compute` counts its calls and answers the call's number.
    fn counter() -> (
        Arc<AtomicUsize>,
        impl Fn() -> std::future::Ready<Result<usize, ()>> + Clone + Send + 'static,
    ) {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        (calls, move || {
            std::future::ready(Ok(seen.fetch_add(1, Ordering::SeqCst) + 1))
        })
    }

    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn a_fresh_answer_is_served_a_stale_one_too_while_one_recomputation_replaces_it() {
        let shelf = Shelf::new(Duration::from_millis(300), Handle::current());
        let (calls, compute) = counter();
        let key = || "k".to_string();
        assert_eq!(kept(&shelf, key(), compute.clone()).await, Ok(1));
        assert_eq!(
            kept(&shelf, key(), compute.clone()).await,
            Ok(1),
            "fresh: served as it is"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        tokio::time::sleep(Duration::from_millis(350)).await;
        // Stale: the kept answer comes back at once, and only one recomputation starts however
        // many callers find it stale.
        for _ in 0..5 {
            assert_eq!(kept(&shelf, key(), compute.clone()).await, Ok(1));
        }
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            kept(&shelf, key(), compute.clone()).await,
            Ok(2),
            "replaced by the recomputation"
        );

        // Past twice the freshness nothing is served: the caller waits for a new answer.
        tokio::time::sleep(Duration::from_millis(650)).await;
        assert_eq!(kept(&shelf, key(), compute.clone()).await, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    /// An HTTP worker is a single thread: what is computed there waits for, and holds up,
    /// every request of its connections. The miss and the stale refresh alike run elsewhere.
    #[test]
    fn a_computation_never_runs_on_the_thread_of_the_request_that_asked() {
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let worker = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let shelf = Shelf::new(Duration::from_millis(50), background.handle().clone());
        let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = threads.clone();
        let compute = move || {
            let seen = seen.clone();
            async move {
                let mut threads = seen.lock().unwrap();
                threads.push(std::thread::current().id());
                Ok::<usize, ()>(threads.len())
            }
        };
        worker.block_on(async {
            assert_eq!(kept(&shelf, "k".into(), compute.clone()).await, Ok(1));
            tokio::time::sleep(Duration::from_millis(60)).await;
            assert_eq!(kept(&shelf, "k".into(), compute.clone()).await, Ok(1));
            for _ in 0..200 {
                if threads.lock().unwrap().len() == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let asked_on = std::thread::current().id();
        let ran_on = threads.lock().unwrap().clone();
        assert_eq!(ran_on.len(), 2, "the miss, then the stale answer's refresh");
        assert!(
            ran_on.iter().all(|t| *t != asked_on),
            "computed on the asking thread: {ran_on:?} (asked on {asked_on:?})"
        );
    }

    #[tokio::test]
    async fn an_error_is_never_kept() {
        let shelf: Shelf<usize> = Shelf::new(Duration::from_secs(60), Handle::current());
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let failing = move || {
            seen.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err::<usize, &str>("down"))
        };
        assert_eq!(kept(&shelf, "k".into(), failing.clone()).await, Err("down"));
        assert_eq!(kept(&shelf, "k".into(), failing.clone()).await, Err("down"));
        assert!(
            calls.load(Ordering::SeqCst) >= 2,
            "each caller computed again"
        );
        let (_, compute) = counter();
        assert_eq!(kept(&shelf, "k".into(), compute).await, Ok(1));
    }

    #[tokio::test]
    async fn a_new_epoch_is_a_new_key_so_a_change_here_is_never_answered_from_before_it() {
        let shelf = Shelf::new(Duration::from_secs(60), Handle::current());
        let (calls, compute) = counter();
        let key = || format!("{}|scope", epoch());
        assert_eq!(kept(&shelf, key(), compute.clone()).await, Ok(1));
        changed();
        assert_eq!(kept(&shelf, key(), compute.clone()).await, Ok(2));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
