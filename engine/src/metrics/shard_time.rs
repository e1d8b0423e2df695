//! How a shard's time divides into busy, backpressured and idle, and how
//! many entries its operators' states hold.
//!
//! Runs on the shard's own core, as a task beside its others: every
//! [`SAMPLE_EVERY`] it takes the time the executor spent running tasks
//! since the last look (glommio's executor stats, which reset when read;
//! nothing else in the shard reads them) and adds it to
//! [`ShardMetrics::busy_ns`]; once a second has passed it publishes the
//! second's shares in milliseconds per second, as Flink's
//! `busyTimeMsPerSecond`, `backPressuredTimeMsPerSecond` and
//! `idleTimeMsPerSecond` do.
//!
//! Invariants: busy is what the executor measured; backpressured is the
//! outboxes' credit waits (which run while other tasks may be busy, so the
//! two can overlap: it is capped at what is left after busy); idle is the
//! rest. The three published figures add up to 1,000. A shard is several
//! of Flink's tasks at once (its sources, exchanges and sinks), so a sink
//! that blocks its thread counts as busy, and which exchange waits is told
//! per operator (`edge_backpressured_ns`), not here.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_state::StateRegistry;

use super::ShardMetrics;

/// How often the executor's run time is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The window the per-second figures are computed over.
const WINDOW: Duration = Duration::from_secs(1);

/// Samples the shard's time into `metrics` until the shard's executor
/// ends (spawn it detached); once a second also the entries of the states
/// each plan node owns in `registry`.
pub(crate) async fn sample_shard_time(
    metrics: Arc<ShardMetrics>,
    registry: Rc<RefCell<StateRegistry>>,
) {
    let mut window = ShareWindow::new(&metrics);
    loop {
        glommio::timer::sleep(SAMPLE_EVERY).await;
        take_busy_time(&metrics);
        if window.maybe_publish(&metrics, Instant::now()) {
            publish_state_entries(&metrics, &registry);
        }
    }
}

/// Stores the entries of each owner's states (skipped while the registry is
/// borrowed by a snapshot step: the next second tries again).
fn publish_state_entries(metrics: &ShardMetrics, registry: &RefCell<StateRegistry>) {
    let Ok(registry) = registry.try_borrow() else {
        return;
    };
    for (owner, entries) in registry.entries_by_owner() {
        if let Some(gauge) = metrics.node_state_entries.get(owner as usize) {
            gauge.set(entries);
        }
    }
}

/// Adds the executor's run time since the last look to `busy_ns`.
pub(crate) fn take_busy_time(metrics: &ShardMetrics) {
    let ran = glommio::executor().executor_stats().executor_runtime();
    ShardMetrics::add(&metrics.busy_ns, ran.as_nanos() as u64);
}

/// The counters at the start of the current window.
struct ShareWindow {
    started: Instant,
    busy_ns: u64,
    backpressured_ns: u64,
}

impl ShareWindow {
    fn new(metrics: &ShardMetrics) -> Self {
        ShareWindow {
            started: Instant::now(),
            busy_ns: metrics.busy_ns.load(Ordering::Relaxed),
            backpressured_ns: metrics.backpressured_ns.load(Ordering::Relaxed),
        }
    }

    /// Publishes the window's shares if a second has passed (true then).
    fn maybe_publish(&mut self, metrics: &ShardMetrics, now: Instant) -> bool {
        let elapsed = now.duration_since(self.started);
        if elapsed < WINDOW {
            return false;
        }
        let busy = metrics.busy_ns.load(Ordering::Relaxed);
        let backpressured = metrics.backpressured_ns.load(Ordering::Relaxed);
        let shares = Shares::of(
            elapsed.as_nanos() as u64,
            busy.saturating_sub(self.busy_ns),
            backpressured.saturating_sub(self.backpressured_ns),
        );
        metrics.busy_ms_per_s.store(shares.busy, Ordering::Relaxed);
        (metrics.backpressured_ms_per_s).store(shares.backpressured, Ordering::Relaxed);
        metrics.idle_ms_per_s.store(shares.idle, Ordering::Relaxed);
        *self = ShareWindow {
            started: now,
            busy_ns: busy,
            backpressured_ns: backpressured,
        };
        true
    }
}

/// A window's time in milliseconds per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shares {
    busy: u64,
    backpressured: u64,
    idle: u64,
}

impl Shares {
    /// Of a window of `elapsed_ns` with `busy_ns` run and `backpressured_ns`
    /// waited for credit.
    fn of(elapsed_ns: u64, busy_ns: u64, backpressured_ns: u64) -> Shares {
        let elapsed = elapsed_ns.max(1) as u128;
        let per_second = |ns: u64| ((ns as u128 * 1000 + elapsed / 2) / elapsed) as u64;
        let busy = per_second(busy_ns.min(elapsed_ns)).min(1000);
        let backpressured = per_second(backpressured_ns).min(1000 - busy);
        Shares {
            busy,
            backpressured,
            idle: 1000 - busy - backpressured,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shares_of_a_window() {
        let second = 1_000_000_000;
        assert_eq!(
            Shares::of(second, second / 4, second / 2),
            Shares {
                busy: 250,
                backpressured: 500,
                idle: 250
            }
        );
        // Two seconds sampled late: still per second.
        assert_eq!(Shares::of(2 * second, second, 0).busy, 500);
        // Credit waits overlapping busy time are capped by what is left.
        assert_eq!(
            Shares::of(second, second * 9 / 10, second),
            Shares {
                busy: 900,
                backpressured: 100,
                idle: 0
            }
        );
    }

    proptest! {
        #[test]
        fn shares_add_up_to_a_second(
            elapsed in 1u64..10_000_000_000,
            busy in 0u64..20_000_000_000,
            backpressured in 0u64..20_000_000_000,
        ) {
            let shares = Shares::of(elapsed, busy, backpressured);
            prop_assert_eq!(shares.busy + shares.backpressured + shares.idle, 1000);
            prop_assert!(shares.busy <= 1000);
        }
    }

    #[test]
    fn busy_time_is_taken_from_the_executor() {
        let metrics = Arc::new(ShardMetrics::default());
        let inside = metrics.clone();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                take_busy_time(&inside);
                // A task's run counts once its task queue's turn ends.
                glommio::spawn_local(async {
                    let spin = Instant::now();
                    let mut x = 0u64;
                    while spin.elapsed() < Duration::from_millis(30) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                })
                .await;
                glommio::timer::sleep(Duration::from_millis(1)).await;
                take_busy_time(&inside);
            })
            .expect("an executor")
            .join()
            .expect("it ran");
        let busy = metrics.busy_ns.load(Ordering::Relaxed);
        assert!(busy >= 25_000_000, "busy {busy} ns");
    }
}
