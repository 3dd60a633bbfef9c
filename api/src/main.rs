//! `huzhu`: serve (default), migrate, simulate and administer.

fn main() -> std::process::ExitCode {
    huzhu::cli::main()
}
