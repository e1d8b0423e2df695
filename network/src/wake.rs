//! Waking the tasks of one shard that wait for something another task of
//! the same shard does (an arrival in a gate, credit granted to a channel's
//! sender).
//!
//! Lives on one shard's core. A wake-up releases every task waiting at that
//! moment, each exactly once (a generation count, not permits: a permit
//! could be taken by a task that started waiting later, leaving an earlier
//! waiter asleep for good). Waiters look again for what they wait for.
//! Polling a waiter again keeps one waker per task, not one per poll.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// A wake-up for every task waiting at that moment; see the module docs.
pub struct Wake {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Default for Wake {
    fn default() -> Self {
        Wake::new()
    }
}

impl Wake {
    pub fn new() -> Self {
        Wake {
            generation: Cell::new(0),
            wakers: RefCell::new(Vec::new()),
        }
    }

    /// Waits until the next wake-up.
    pub async fn wait(&self) {
        let started = self.generation.get();
        poll_fn(|cx| {
            if self.generation.get() != started {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Releases every waiter.
    pub fn wake_all(&self) {
        self.generation.set(self.generation.get() + 1);
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_up_releases_every_waiter_once_whoever_started_waiting_later() {
        glommio::LocalExecutor::default().run(async {
            let wake = std::rc::Rc::new(Wake::new());
            let released = std::rc::Rc::new(Cell::new(0));
            let waiter = |wake: std::rc::Rc<Wake>, released: std::rc::Rc<Cell<u32>>| async move {
                wake.wait().await;
                released.set(released.get() + 1);
            };
            let first = glommio::spawn_local(waiter(wake.clone(), released.clone()));
            glommio::executor().yield_task_queue_now().await;
            futures_lite::future::yield_now().await;
            wake.wake_all();
            // A task that starts waiting after the wake-up waits for the next.
            let second = glommio::spawn_local(waiter(wake.clone(), released.clone()));
            first.await;
            assert_eq!(released.get(), 1);
            futures_lite::future::yield_now().await;
            assert_eq!(
                released.get(),
                1,
                "the later waiter waits for the next wake-up"
            );
            wake.wake_all();
            second.await;
            assert_eq!(released.get(), 2);
        });
    }
}
