//! The `idsync` binary: parse arguments, run, print the error, exit.

use clap::Parser;

// A full sync allocates and frees millions of small records across threads;
// mimalloc keeps that off the system allocator's slow paths (and the kernel's).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tracing_subscriber::EnvFilter;

fn main() {
    // `idsync runs | head` must end quietly when head stops reading, as any
    // Unix tool does, instead of failing on a closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of a signal at the start of
    // main, before any thread exists, has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = idsync::cli::Cli::parse();
    let level = if cli.quiet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("IDSYNC_LOG").unwrap_or_else(|_| EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    match idsync::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(idsync::cli::exit_code(&e));
        }
    }
}
