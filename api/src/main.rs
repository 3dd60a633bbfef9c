//! `huzhu`: serve (default), migrate, simulate and administer.

/// mimalloc instead of glibc's allocator: a claim-list request makes a few thousand small
/// allocations (rows, JSON, spans), and glibc's `malloc`/`free` took 15 % of its CPU
/// (BENCHMARKS.md, "Where the time went"). Freed memory is returned to the system by
/// `memory::trim`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    huzhu::cli::main()
}
