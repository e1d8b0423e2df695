//! The job-wide abort signal.
//!
//! Set when a shard fails (a panic in a task: a bug). Every wait that depends
//! on another shard — sending into a full channel, receiving from an empty one —
//! races against it, so the remaining shards wind down instead of waiting for
//! a peer that is gone. Shared by all shards (an atomic flag); waiting checks it
//! every `ABORT_CHECK_INTERVAL`, which costs nothing while the job runs.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a blocked wait checks the abort signal.
const ABORT_CHECK_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Clone, Default)]
pub(crate) struct AbortSignal(Arc<AtomicBool>);

impl AbortSignal {
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Completes once the signal is set.
    pub async fn wait(&self) {
        while !self.is_set() {
            glommio::timer::sleep(ABORT_CHECK_INTERVAL).await;
        }
    }

    /// Runs `future` unless the job aborts first (then `None`).
    pub async fn unless_aborted<T>(&self, future: impl Future<Output = T>) -> Option<T> {
        futures_lite::future::or(async { Some(future.await) }, async {
            self.wait().await;
            None
        })
        .await
    }
}
