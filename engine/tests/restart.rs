//! Automatic restart: a checkpointed job whose shard fails (here a source that
//! panics once, mid-stream) is restarted from its last completed checkpoint as
//! `restart` allows, and its exactly-once output equals a failure-free run's.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_engine::checkpoint::{
    CheckpointConfig, CheckpointTiming, RestartStrategy, StorageLocation,
};
use sluice_engine::connectors::{
    ExactlyOnceFileSink, RecordFormat, Source, SourcePoll, SourceReader,
};
use sluice_engine::{EngineError, JobConfig, Rec, SourceError, StreamEnv, WatermarkStrategy};

const PER_PARTITION: u64 = 20_000;
const PARTITIONS: u32 = 2;

/// Counts `0..PER_PARTITION` per partition, 100 records a millisecond; panics
/// once at `fail_at` on partition 0 if `armed` is still set.
#[derive(Clone)]
struct Counting {
    fail_at: u64,
    armed: Arc<AtomicBool>,
}

struct CountingReader {
    partition: u32,
    next: u64,
    due: Instant,
    source: Counting,
}

impl SourceReader<(u32, u64)> for CountingReader {
    fn poll(
        &mut self,
        out: &mut Vec<Rec<(u32, u64)>>,
        _max: usize,
    ) -> Result<SourcePoll, SourceError> {
        if self.next >= PER_PARTITION {
            return Ok(SourcePoll::End);
        }
        if Instant::now() < self.due {
            return Ok(SourcePoll::Pending);
        }
        self.due = Instant::now() + Duration::from_millis(1);
        for _ in 0..100 {
            if self.partition == 0
                && self.next == self.source.fail_at
                && self.source.armed.swap(false, Ordering::SeqCst)
            {
                panic!("injected failure at record {}", self.next);
            }
            out.push(Rec::new(self.next as i64, (self.partition, self.next)));
            self.next += 1;
        }
        Ok(SourcePoll::Ready)
    }
    fn position(&self) -> u64 {
        self.next
    }
    fn seek(&mut self, position: u64) -> Result<(), SourceError> {
        self.next = position;
        Ok(())
    }
    fn ready_at(&self) -> Option<Instant> {
        Some(self.due)
    }
}

impl Source<(u32, u64)> for Counting {
    fn partitions(&self) -> u32 {
        PARTITIONS
    }
    fn open(&self, partition: u32) -> Result<Box<dyn SourceReader<(u32, u64)>>, SourceError> {
        Ok(Box::new(CountingReader {
            partition,
            next: 0,
            due: Instant::now(),
            source: self.clone(),
        }))
    }
}

/// Running sum per partition (keyed by partition, so each key's order is its
/// partition's order and the output is deterministic), into exactly-once files.
fn run(dir: &Path, source: Counting, restart: RestartStrategy) -> Result<u32, EngineError> {
    let config = JobConfig {
        shards: 2,
        flush_timeout: Duration::from_millis(1),
        checkpoint: Some(CheckpointConfig {
            storage: StorageLocation::Directory(dir.join("checkpoints")),
            timing: CheckpointTiming {
                interval_ms: 20,
                timeout_ms: 10_000,
                min_pause_ms: 0,
            },
            retain: 2,
            restore: None,
            restore_storage: None,
            job_name: "restart-test".into(),
            full_every: Some(3),
            alignment: Default::default(),
        }),
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

fn lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
            lines.extend(
                std::fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
    lines.sort();
    lines
}

#[test]
fn a_failed_shard_restarts_from_the_last_checkpoint_with_exactly_once_output() {
    let clean = tempfile::tempdir().unwrap();
    let unarmed = Counting {
        fail_at: 0,
        armed: Arc::new(AtomicBool::new(false)),
    };
    assert_eq!(
        run(clean.path(), unarmed, RestartStrategy::None).unwrap(),
        0
    );
    let expected = lines(&clean.path().join("out"));
    assert_eq!(expected.len() as u64, PER_PARTITION * PARTITIONS as u64);

    let failing = tempfile::tempdir().unwrap();
    let source = Counting {
        fail_at: PER_PARTITION / 2,
        armed: Arc::new(AtomicBool::new(true)),
    };
    let restart = RestartStrategy::FixedDelay {
        attempts: 2,
        delay: Duration::from_millis(10),
    };
    let restarts = run(failing.path(), source.clone(), restart).unwrap();
    assert_eq!(restarts, 1);
    assert!(!source.armed.load(Ordering::SeqCst), "the failure happened");
    assert!(
        lines(&failing.path().join("out")) == expected,
        "output differs from the clean run"
    );
}

#[test]
fn without_restarts_left_the_failure_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let source = Counting {
        fail_at: 500,
        armed: Arc::new(AtomicBool::new(true)),
    };
    let err = run(dir.path(), source, RestartStrategy::None).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
}
