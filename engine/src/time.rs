//! Clocks. Passed in, never global, so tests and simulations can control them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, for processing time.
pub trait Clock {
    fn now_ms(&self) -> i64;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}
