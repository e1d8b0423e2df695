//! The keyed tumbling-window count over numeric Nexmark bids: bids keyed by
//! auction, counted per auction in 1-second event-time windows, results to
//! the blackhole — Nexmark's hot-auction skew included (half the bids go to
//! the current hot auction). Also its rolling (unbounded) counterpart, and
//! both in one or two phases.
//!
//! Bids come from the Nexmark generator's numeric projection (no strings) with
//! no delays, so timestamps are monotonic per partition and every peer can
//! compute the same windows.

use std::time::Duration;

use sluice_engine::connectors::BlackholeSink;
use sluice_engine::runtime::JobReport;
use sluice_engine::window::{Count, TimeWindow, TumblingWindows};
use sluice_engine::{JobConfig, StreamEnv, WatermarkStrategy};

use sluice_engine::connectors::nexmark::{NexmarkConfig, NumericBid, NumericBidSource};

pub const WINDOW_MS: i64 = 1_000;

/// The generator configuration of the workload (the same for every peer):
/// `events` Nexmark events (92 % of them bids) at 1M events/s of event time.
pub fn generator_config(events: u64, partitions: u32) -> NexmarkConfig {
    NexmarkConfig {
        seed: 3,
        events: Some(events),
        partitions,
        first_event_rate: 1_000_000,
        prob_delayed_event: 0.0,
        ..Default::default()
    }
}

/// The bids of the workload.
pub fn bids(events: u64, partitions: u32) -> NumericBidSource {
    NumericBidSource {
        config: generator_config(events, partitions),
    }
}

/// How the count is aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phases {
    /// Every bid crosses the exchange to its auction's shard.
    One,
    /// Each shard counts its bids per auction and window before the exchange
    /// (at most this many counts held) and the owner adds the counts up.
    Two { max_partials: usize },
}

/// Runs the count in Sluice on `shards` shards; returns the job report.
/// `spin_before_park`: busy-poll this long before an idle shard sleeps.
pub fn sluice(
    shards: u32,
    events_total: u64,
    spin_before_park: Option<Duration>,
    phases: Phases,
) -> JobReport {
    let config = JobConfig {
        shards,
        spin_before_park,
        flush_timeout: Duration::from_millis(5),
        progress_interval: None,
        ..Default::default()
    };
    let env = StreamEnv::new(config);
    let windows = env
        .source(
            bids(events_total, shards.max(2)),
            WatermarkStrategy::monotonous(),
        )
        .key_by(|b: &NumericBid| b.auction)
        .window(TumblingWindows::of(WINDOW_MS));
    let result = |key: &i64, w: &TimeWindow, count: u64| (*key, w.start, count);
    match phases {
        Phases::One => windows.aggregate(Count, result),
        Phases::Two { max_partials } => windows.aggregate_two_phase(Count, max_partials, result),
    }
    .sink(BlackholeSink);
    env.execute().expect("window count job")
}

/// The rolling (unbounded) count of bids per auction in Sluice on `shards`
/// shards: one update per bid, or with two phases one per auction and
/// folded batch of each shard; updates to the blackhole.
pub fn sluice_rolling(shards: u32, events_total: u64, phases: Phases) -> JobReport {
    let config = JobConfig {
        shards,
        flush_timeout: Duration::from_millis(5),
        progress_interval: None,
        ..Default::default()
    };
    let env = StreamEnv::new(config);
    let keyed = env
        .source(
            bids(events_total, shards.max(2)),
            WatermarkStrategy::monotonous(),
        )
        .key_by(|b: &NumericBid| b.auction);
    match phases {
        Phases::One => keyed.aggregate(Count),
        Phases::Two { .. } => keyed.aggregate_two_phase(Count),
    }
    .sink(BlackholeSink);
    env.execute().expect("rolling count job")
}
