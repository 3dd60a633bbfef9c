//! Bounded photo work. Decoding and re-encoding a 12 MP photo holds ≈ 90 MB for a moment, so
//! eight at once took a server to 716 MB. Uploads are admitted up to a bound
//! ([`PhotoWork::admit`], before the body is read, so waiting uploads hold only their own
//! bytes), and the decoding itself runs on the blocking pool at most `workers` at a time; the
//! rest queue. Past the bound an upload is refused at once ([`Busy`]: `503` with
//! `Retry-After`), before its body is read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

/// The limiter every replica keeps (cheap to clone).
#[derive(Clone, Debug)]
pub struct PhotoWork {
    permits: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    workers: usize,
}

/// Every photo worker is busy and the queue is full.
#[derive(Debug, thiserror::Error)]
#[error("every photo worker is busy and the queue is full")]
pub struct Busy;

/// An admitted upload: holds its place until dropped.
#[derive(Debug)]
pub struct Ticket {
    work: PhotoWork,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.work.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PhotoWork {
    /// `workers` decodings at once (0: one per core), and up to `queue` more uploads waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = crate::settings::one_per_core_unless(workers);
        Self {
            permits: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: workers + queue,
            workers,
        }
    }

    /// Decodings that may run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// A place for one upload, or [`Busy`] when `workers + queue` are already admitted.
    pub fn admit(&self) -> Result<Ticket, Busy> {
        let admitted = self
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            });
        match admitted {
            Ok(_) => Ok(Ticket { work: self.clone() }),
            Err(_) => Err(Busy),
        }
    }
}

impl Ticket {
    /// Runs `job` on the blocking pool once a worker is free.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self
            .work
            .permits
            .acquire()
            .await
            .map_err(|e| anyhow::anyhow!("photo workers: {e}"))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| anyhow::anyhow!("photo task: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_past_workers_and_queue_are_refused_until_one_ends() {
        let work = PhotoWork::new(2, 1);
        let tickets: Vec<Ticket> = (0..3).map(|_| work.admit().expect("admitted")).collect();
        assert!(work.admit().is_err());
        drop(tickets);
        assert!(work.admit().is_ok());
    }
}
