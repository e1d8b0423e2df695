//! The keyed tumbling-window count: events keyed by `key`, counted per key in
//! 1-second event-time windows, results to the blackhole.
//!
//! Events come from the seeded generator with no delays, so timestamps are
//! monotonic per partition and every peer can compute the same windows.

use std::time::Duration;

use sluice_engine::connectors::{BlackholeSink, GeneratedEvent, GeneratorSource};
use sluice_engine::runtime::JobReport;
use sluice_engine::window::{Count, TimeWindow, TumblingWindows};
use sluice_engine::{JobConfig, StreamEnv, WatermarkStrategy};

pub const WINDOW_MS: i64 = 1_000;
pub const KEYS: u64 = 10_000;

/// The events of the workload (the same for every peer).
pub fn events(events: u64, partitions: u32) -> GeneratorSource {
    GeneratorSource {
        seed: 3,
        events: Some(events),
        keys: KEYS,
        partitions,
        events_per_second: 1_000_000,
        delayed_percent: 0,
        max_delay_ms: 0,
        ..Default::default()
    }
}

/// Runs the count in Sluice on `shards` shards; returns the job report.
/// `spin_before_park`: busy-poll this long before an idle shard sleeps.
pub fn sluice(shards: u32, events_total: u64, spin_before_park: Option<Duration>) -> JobReport {
    let config = JobConfig {
        shards,
        spin_before_park,
        flush_timeout: Duration::from_millis(5),
        progress_interval: None,
        ..Default::default()
    };
    let env = StreamEnv::new(config);
    env.source(
        events(events_total, shards.max(2)),
        WatermarkStrategy::monotonous(),
    )
    .key_by(|e: &GeneratedEvent| e.key)
    .window(TumblingWindows::of(WINDOW_MS))
    .aggregate(Count, |key: &u64, w: &TimeWindow, count: u64| {
        (*key, w.start, count)
    })
    .sink(BlackholeSink);
    env.execute().expect("window count job")
}
