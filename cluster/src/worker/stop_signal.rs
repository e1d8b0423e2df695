//! A worker's graceful stop: the first SIGTERM or SIGINT asks for a drain
//! (the coordinator moves the worker's tasks elsewhere after a checkpoint
//! taken then, and the worker exits once it runs none); a second one ends
//! the process at once with status 1.
//!
//! The handlers run on whichever thread the kernel picks and do one atomic
//! store (async-signal-safe); the worker's control thread reads the flag
//! between messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

/// Whether a stop was asked for. `Default`: never (no handlers: a library
/// user or a test stops the worker its own way).
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    requested: Arc<AtomicBool>,
}

impl StopSignal {
    /// Handles SIGTERM and SIGINT for the rest of the process's life.
    pub fn install() -> Result<Self, String> {
        let requested = Arc::new(AtomicBool::new(false));
        for signal in [SIGTERM, SIGINT] {
            // Registered first, so it sees the flag as the previous signal
            // left it: set means this is the second.
            signal_hook::flag::register_conditional_shutdown(signal, 1, requested.clone())
                .and_then(|_| signal_hook::flag::register(signal, requested.clone()))
                .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
        }
        Ok(StopSignal { requested })
    }

    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    /// Asks for a stop as a signal would (tests).
    pub fn request(&self) {
        self.requested.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_sees_the_request() {
        let stop = StopSignal::default();
        let seen = stop.clone();
        assert!(!seen.requested());
        stop.request();
        assert!(seen.requested());
    }
}
