//! Stopping cleanly on SIGINT and SIGTERM. The first signal only sets a
//! process-wide flag; long work polls [`requested`] at safe points (between
//! profile steps, between objects inside a step) and ends there, so a step's
//! transaction is either committed or dropped whole. A second signal means
//! "now": the process exits at once with 130 (SIGINT) or 143 (SIGTERM), which
//! is safe too, since an uncommitted SQLite transaction leaves nothing behind.
//!
//! Commands that write the store call [`install`]; others keep the default
//! disposition, so Ctrl-C ends them immediately.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

fn flag() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Installs the SIGINT and SIGTERM handlers; calling it again does nothing.
pub fn install() -> std::io::Result<()> {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    if *installed {
        return Ok(());
    }
    for (signal, code) in [
        (signal_hook::consts::SIGINT, 130),
        (signal_hook::consts::SIGTERM, 143),
    ] {
        // Registered first, so it sees the flag as the previous signal left
        // it: the first signal sets it, the second finds it set and exits.
        signal_hook::flag::register_conditional_shutdown(signal, code, Arc::clone(flag()))?;
        signal_hook::flag::register(signal, Arc::clone(flag()))?;
    }
    *installed = true;
    Ok(())
}

/// True once SIGINT or SIGTERM arrived (or [`request`] was called).
pub fn requested() -> bool {
    flag().load(Ordering::SeqCst)
}

/// Asks the running work to stop at its next safe point, as a signal would.
pub fn request() {
    flag().store(true, Ordering::SeqCst);
}
