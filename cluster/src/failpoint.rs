//! Failpoints: named places where a test makes the process die as `kill -9`
//! would, at a moment no signal sent from outside can hit reliably (between
//! two requests of one protocol step).
//!
//! `SLUICE_FAILPOINT=<name>@<n>` kills the process (SIGKILL, so nothing is
//! flushed or cleaned up) the first time failpoint `<name>` is reached with
//! a number of at least `<n>` (a checkpoint id). Unset, a failpoint costs
//! one read of a cached value. Production runs never set it.

use std::sync::OnceLock;

/// The failpoint the environment names, read once.
fn armed() -> Option<&'static (String, u64)> {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let text = std::env::var("SLUICE_FAILPOINT").ok()?;
            let (name, at) = text.split_once('@')?;
            Some((name.to_owned(), at.parse().ok()?))
        })
        .as_ref()
}

/// Dies here if the environment armed failpoint `name` for `n` or less.
pub fn reach(name: &str, n: u64) {
    if let Some((armed, at)) = armed() {
        if armed == name && n >= *at {
            eprintln!("failpoint {name} reached at {n}: killing the process");
            // SAFETY: kill(2) on our own pid; the call has no memory effects.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}
