//! Backpressure: with a sink far slower than the source, 10M records pass
//! through a key exchange while resident memory stays flat — the source is
//! slowed down instead of the records piling up.
//!
//! Alone in its test binary so that the process's memory is this test's.

use std::time::Duration;

use sluice_engine::connectors::{GeneratedEvent, GeneratorSource};
use sluice_engine::{JobConfig, StreamEnv, WatermarkStrategy};
use sluice_tests::{proc_status_kib, SlowSink};

#[test]
fn memory_stays_bounded_with_a_slow_sink() {
    const EVENTS: u64 = 10_000_000;
    let config = JobConfig {
        shards: 2,
        progress_interval: None,
        ..Default::default()
    };
    let env = StreamEnv::new(config);
    let source = GeneratorSource {
        events: Some(EVENTS),
        keys: 100_000,
        partitions: 4,
        ..Default::default()
    };
    env.source(source, WatermarkStrategy::bounded_out_of_orderness(500))
        .key_by(|e: &GeneratedEvent| e.key)
        .stream()
        .map(|e: GeneratedEvent| (e.key, e.value))
        .sink(SlowSink {
            pause: Duration::from_micros(500),
        });

    let rss_before_kib = proc_status_kib("VmRSS");
    let report = env.execute().expect("job runs");
    let peak_kib = proc_status_kib("VmHWM");

    assert_eq!(report.totals.records_in, EVENTS);
    assert_eq!(report.totals.records_out, EVENTS);
    // Unbounded queues would hold most of the 10M records (~40 bytes each in
    // memory, 400 MB); bounded channels and outboxes hold a few MiB.
    let growth_mib = peak_kib.saturating_sub(rss_before_kib) / 1024;
    assert!(
        growth_mib < 64,
        "resident memory grew by {growth_mib} MiB while 10M records passed a slow sink"
    );
    eprintln!(
        "peak growth {growth_mib} MiB, {:.1} s",
        report.elapsed.as_secs_f64()
    );
}
