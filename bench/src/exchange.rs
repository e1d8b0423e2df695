//! Records through a key exchange between shards, nothing else: generator →
//! `key_by` → blackhole. About half of the records change shard with 2 shards.

use std::time::Duration;

use sluice_engine::connectors::{BlackholeSink, GeneratedEvent, GeneratorSource};
use sluice_engine::runtime::JobReport;
use sluice_engine::{JobConfig, StreamEnv, WatermarkStrategy};

/// `spin_before_park`: busy-poll this long before an idle shard sleeps.
pub fn sluice(
    shards: u32,
    events: u64,
    batch_bytes: usize,
    spin_before_park: Option<Duration>,
) -> JobReport {
    let config = JobConfig {
        shards,
        spin_before_park,
        batch_bytes_limit: batch_bytes,
        flush_timeout: Duration::from_millis(5),
        progress_interval: None,
        ..Default::default()
    };
    let env = StreamEnv::new(config);
    let source = GeneratorSource {
        seed: 5,
        events: Some(events),
        keys: 1 << 20,
        partitions: shards,
        ..Default::default()
    };
    env.source(source, WatermarkStrategy::bounded_out_of_orderness(500))
        .key_by(|e: &GeneratedEvent| e.key)
        .stream()
        .sink(BlackholeSink);
    env.execute().expect("exchange job")
}
