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

    /// Runs `future` unless the job aborts first (then `None`). The abort is
    /// looked for every `ABORT_CHECK_INTERVAL`, which polls `future` again:
    /// not for a glommio channel's `recv` (each poll of an empty channel
    /// leaves a waker behind), which races [`AbortWatch::wait`] instead.
    pub async fn unless_aborted<T>(&self, future: impl Future<Output = T>) -> Option<T> {
        futures_lite::future::or(async { Some(future.await) }, async {
            self.wait().await;
            None
        })
        .await
    }
}

/// One shard's view of the abort signal for waits that must not be polled
/// again and again: a task looks at the signal every
/// `ABORT_CHECK_INTERVAL` and wakes them once it is set.
pub(crate) struct AbortWatch {
    fired: std::cell::Cell<bool>,
    wake: sluice_network::Wake,
}

impl AbortWatch {
    /// The watch and the task that keeps it (spawn it; it ends with the abort).
    pub fn new(signal: AbortSignal) -> (std::rc::Rc<Self>, impl Future<Output = ()>) {
        let watch = std::rc::Rc::new(AbortWatch {
            fired: std::cell::Cell::new(false),
            wake: sluice_network::Wake::new(),
        });
        let keeper = watch.clone();
        let task = async move {
            signal.wait().await;
            keeper.fired.set(true);
            keeper.wake.wake_all();
        };
        (watch, task)
    }

    /// Completes once the job aborts.
    pub async fn wait(&self) {
        while !self.fired.get() {
            self.wake.wait().await;
        }
    }
}
