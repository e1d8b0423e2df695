//! Unaligned checkpoints under constant backpressure (a slow stage behind a
//! key exchange): barriers overtake the batches queued in the sending
//! outboxes and those read but not processed by the receiving gates, both
//! kept as channel state; a job that fails is restarted from such a
//! checkpoint, the kept records are sent and processed again before new
//! input, and the exactly-once output equals a failure-free run's.

use std::path::Path;
use std::time::Duration;

use sluice_engine::checkpoint::{BarrierAlignment, CompletedCheckpoint, RestartStrategy};
use sluice_engine::connectors::{ExactlyOnceFileSink, RecordFormat};
use sluice_engine::{EngineError, JobConfig, StreamEnv, WatermarkStrategy};

mod support;
use support::{checkpoints_every_20_ms, lines, Counting};

const PER_PARTITION: u64 = 20_000;
const PARTITIONS: u32 = 2;

/// Every record, keyed over 64 keys, through a stage that takes ~2 ms per
/// 100 records, into exactly-once files. Returns the restarts and the last
/// attempt's checkpoints.
fn run(
    dir: &Path,
    source: Counting,
    restart: RestartStrategy,
) -> Result<(u32, Vec<CompletedCheckpoint>), EngineError> {
    let config = JobConfig {
        shards: 2,
        channel_batches: 64,
        batch_bytes_limit: 1_024,
        flush_timeout: Duration::from_millis(1),
        checkpoint: Some(checkpoints_every_20_ms(
            dir,
            "unaligned-recovery",
            BarrierAlignment::Unaligned,
        )),
        restart,
        ..Default::default()
    };
    let env = StreamEnv::new(config);
    env.source(source, WatermarkStrategy::no_watermarks())
        .key_by(|(_, n)| n % 64)
        .stream()
        .map(|record: (u32, u64)| {
            if record.1.is_multiple_of(100) {
                std::thread::sleep(Duration::from_millis(2));
            }
            record
        })
        .sink(ExactlyOnceFileSink {
            directory: dir.join("out"),
            format: RecordFormat::JsonLines,
        });
    env.execute()
        .map(|report| (report.restarts, report.checkpoints))
}

#[test]
fn a_job_restarted_from_unaligned_checkpoints_under_backpressure_commits_exactly_once() {
    let clean = tempfile::tempdir().unwrap();
    let (_, checkpoints) = run(
        clean.path(),
        Counting::reliable(PER_PARTITION, PARTITIONS, false),
        RestartStrategy::None,
    )
    .unwrap();
    let expected = lines(&clean.path().join("out"));
    assert_eq!(expected.len() as u64, PER_PARTITION * PARTITIONS as u64);
    // Under backpressure the barriers did overtake queued records, on both
    // sides of the exchange.
    let sent = checkpoints
        .iter()
        .filter(|c| c.in_flight_sent_bytes > 0)
        .count();
    let received = (checkpoints.iter())
        .filter(|c| c.in_flight_received_bytes > 0)
        .count();
    eprintln!(
        "{} checkpoints: {sent} kept records queued to send, {received} records read but not processed",
        checkpoints.len()
    );
    assert!(
        sent > 0 && received > 0,
        "no checkpoint kept records in flight: {checkpoints:?}"
    );

    let failing = tempfile::tempdir().unwrap();
    let source = Counting::reliable(PER_PARTITION, PARTITIONS, false).failing_at(PER_PARTITION / 2);
    let restart = RestartStrategy::FixedDelay {
        attempts: 2,
        delay: Duration::from_millis(10),
    };
    let (restarts, _) = run(failing.path(), source.clone(), restart).unwrap();
    assert_eq!(restarts, 1);
    assert!(source.has_failed(), "the failure happened");
    let got = lines(&failing.path().join("out"));
    assert_eq!(got.len(), expected.len(), "records lost or committed twice");
    assert!(got == expected, "output differs from the clean run");
}
