//! Automatic restart: a checkpointed job whose shard fails (here a source that
//! panics once, mid-stream) is restarted from its last completed checkpoint as
//! `restart` allows, and its exactly-once output equals a failure-free run's.

use std::path::Path;
use std::time::Duration;

use sluice_engine::checkpoint::{BarrierAlignment, RestartStrategy};
use sluice_engine::connectors::{ExactlyOnceFileSink, RecordFormat};
use sluice_engine::{EngineError, JobConfig, StreamEnv, WatermarkStrategy};

const PER_PARTITION: u64 = 20_000;
const PARTITIONS: u32 = 2;

mod support;
use support::{checkpoints_every_20_ms, lines, Counting};

/// Running sum per partition (keyed by partition, so each key's order is its
/// partition's order and the output is deterministic), into exactly-once files.
fn run(dir: &Path, source: Counting, restart: RestartStrategy) -> Result<u32, EngineError> {
    let config = JobConfig {
        shards: 2,
        flush_timeout: Duration::from_millis(1),
        checkpoint: Some(checkpoints_every_20_ms(
            dir,
            "restart-test",
            BarrierAlignment::Aligned,
        )),
        restart,
        ..Default::default()
    };
    let env = StreamEnv::new(config);
    env.source(source, WatermarkStrategy::no_watermarks())
        .key_by(|(partition, _)| *partition)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .sink(ExactlyOnceFileSink {
            directory: dir.join("out"),
            format: RecordFormat::JsonLines,
        });
    env.execute().map(|report| report.restarts)
}

#[test]
fn a_failed_shard_restarts_from_the_last_checkpoint_with_exactly_once_output() {
    let clean = tempfile::tempdir().unwrap();
    let unarmed = Counting::reliable(PER_PARTITION, PARTITIONS, true);
    assert_eq!(
        run(clean.path(), unarmed, RestartStrategy::None).unwrap(),
        0
    );
    let expected = lines(&clean.path().join("out"));
    assert_eq!(expected.len() as u64, PER_PARTITION * PARTITIONS as u64);

    let failing = tempfile::tempdir().unwrap();
    let source = Counting::reliable(PER_PARTITION, PARTITIONS, true).failing_at(PER_PARTITION / 2);
    let restart = RestartStrategy::FixedDelay {
        attempts: 2,
        delay: Duration::from_millis(10),
    };
    let restarts = run(failing.path(), source.clone(), restart).unwrap();
    assert_eq!(restarts, 1);
    assert!(source.has_failed(), "the failure happened");
    assert!(
        lines(&failing.path().join("out")) == expected,
        "output differs from the clean run"
    );
}

#[test]
fn without_restarts_left_the_failure_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let source = Counting::reliable(PER_PARTITION, PARTITIONS, true).failing_at(500);
    let err = run(dir.path(), source, RestartStrategy::None).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
}
