//! Checkpoints under heavy backpressure (a slow sink behind a key exchange
//! with deep channels): an aligned barrier waits behind every batch queued
//! before it, so aligned checkpoints take longer the deeper the backlog; an
//! unaligned barrier overtakes the batches queued in the sending outboxes
//! and those read but not processed by the receiving gates (both become
//! channel state), so unaligned checkpoints complete within a bound.

use std::time::Duration;

use sluice_engine::checkpoint::{
    BarrierAlignment, CheckpointConfig, CheckpointTiming, StorageLocation,
};
use sluice_engine::connectors::{GeneratedEvent, GeneratorSource, Sink, SinkWriter};
use sluice_engine::{JobConfig, Rec, StreamEnv, WatermarkStrategy};

/// Takes 400 µs per batch it is handed, whatever its size.
struct SlowSink;

struct SlowWriter;

impl SinkWriter<GeneratedEvent> for SlowWriter {
    fn write(&mut self, _batch: &[Rec<GeneratedEvent>]) -> Result<(), String> {
        std::thread::sleep(Duration::from_micros(400));
        Ok(())
    }
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

impl Sink<GeneratedEvent> for SlowSink {
    fn open(
        &self,
        _shard: u32,
        _shards: u32,
    ) -> Result<Box<dyn SinkWriter<GeneratedEvent>>, String> {
        Ok(Box::new(SlowWriter))
    }
}

/// The median and the longest checkpoint duration, in ms.
fn checkpoint_ms(alignment: BarrierAlignment, channel_batches: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let config = JobConfig {
        shards: 2,
        channel_batches,
        batch_bytes_limit: 2_048,
        flush_timeout: Duration::from_millis(1),
        checkpoint: Some(CheckpointConfig {
            storage: StorageLocation::Directory(dir.path().to_owned()),
            timing: CheckpointTiming {
                interval_ms: 100,
                timeout_ms: 60_000,
                min_pause_ms: 0,
            },
            retain: 1,
            restore: None,
            restore_storage: None,
            job_name: "backpressure".into(),
            full_every: Some(10),
            alignment,
        }),
        ..Default::default()
    };
    let env = StreamEnv::new(config);
    let source = GeneratorSource {
        seed: 9,
        events: Some(300_000),
        keys: 1_000,
        partitions: 2,
        ..Default::default()
    };
    env.source(source, WatermarkStrategy::no_watermarks())
        .key_by(|e: &GeneratedEvent| e.key)
        .stream()
        .sink(SlowSink);
    let report = env.execute().unwrap();
    let mut durations: Vec<f64> = report.checkpoints.iter().map(|c| c.duration_ms).collect();
    assert!(
        durations.len() >= 3,
        "only {} checkpoints completed",
        durations.len()
    );
    durations.sort_by(f64::total_cmp);
    (durations[durations.len() / 2], *durations.last().unwrap())
}

#[test]
fn unaligned_checkpoints_complete_in_bounded_time_while_aligned_ones_grow_with_the_backlog() {
    let (aligned_shallow, _) = checkpoint_ms(BarrierAlignment::Aligned, 32);
    let (aligned_deep, _) = checkpoint_ms(BarrierAlignment::Aligned, 512);
    let (unaligned_deep, unaligned_max) = checkpoint_ms(BarrierAlignment::Unaligned, 512);
    eprintln!(
        "checkpoint median ms: aligned 32 batches {aligned_shallow:.1}, aligned 512 {aligned_deep:.1}, unaligned 512 {unaligned_deep:.1} (max {unaligned_max:.1})"
    );
    assert!(
        aligned_deep > 2.0 * aligned_shallow,
        "aligned checkpoints should grow with the backlog: {aligned_shallow:.1} -> {aligned_deep:.1} ms"
    );
    // Unaligned checkpoints complete, within a bound, under the same
    // backpressure, and do not wait for the backlog. Measured here: their
    // median was 5–8× shorter than aligned ones at 512 batches (the figures
    // are in bench/RESULTS.md); only "shorter" is asserted, as this shared
    // machine is noisy.
    assert!(
        unaligned_max < 2_000.0,
        "an unaligned checkpoint took {unaligned_max:.1} ms under backpressure"
    );
    assert!(
        unaligned_deep < aligned_deep,
        "unaligned checkpoints ({unaligned_deep:.1} ms) should not wait for the backlog as aligned ones do ({aligned_deep:.1} ms)"
    );
}
