//! Giving freed memory back to the operating system.
//!
//! glibc's allocator keeps what a process freed for its next allocations: after the start (the
//! migrations, the OpenAPI document built and parsed, the demo seeded) or a burst of work
//! (roster imports, photo uploads), an idle replica would hold tens of megabytes it no longer
//! uses — 66 MB resident at rest instead of 38 (BENCHMARKS.md, "Idle memory"). A replica
//! therefore asks glibc to return its free pages a few seconds after starting and then once a
//! minute; each call takes well under a millisecond on an idle heap.

use std::time::Duration;

/// Returns the allocator's free memory to the operating system (glibc on Linux; elsewhere a
/// no-op).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free pages of glibc's own heaps; it takes the
    // allocator's locks itself and touches no memory the program holds.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims shortly after the start (once the workers have built their apps) and then every
/// minute, for the life of the process.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            trim();
        }
    });
}
