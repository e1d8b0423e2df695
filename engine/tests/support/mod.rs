//! What the engine's integration tests share: a counting source that can
//! fail once on purpose, checkpoints every 20 ms under a directory, and
//! reading an exactly-once sink's committed lines.

#![allow(dead_code)] // each test binary uses its own part

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_engine::checkpoint::{
    BarrierAlignment, CheckpointConfig, CheckpointTiming, StorageLocation,
};
use sluice_engine::connectors::{Source, SourcePoll, SourceReader};
use sluice_engine::{Rec, SourceError};

/// Counts `0..per_partition` on each of `partitions` partitions, in steps of
/// 100 records (one step a millisecond when `paced`); panics once at
/// `fail_at` on partition 0 if `armed` is still set.
#[derive(Clone)]
pub struct Counting {
    pub per_partition: u64,
    pub partitions: u32,
    pub paced: bool,
    pub fail_at: u64,
    pub armed: Arc<AtomicBool>,
}

impl Counting {
    /// A source that never fails.
    pub fn reliable(per_partition: u64, partitions: u32, paced: bool) -> Self {
        Counting {
            per_partition,
            partitions,
            paced,
            fail_at: 0,
            armed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same, failing once at record `fail_at` of partition 0.
    pub fn failing_at(mut self, fail_at: u64) -> Self {
        self.fail_at = fail_at;
        self.armed = Arc::new(AtomicBool::new(true));
        self
    }

    /// Whether the failure has happened.
    pub fn has_failed(&self) -> bool {
        self.fail_at > 0 && !self.armed.load(Ordering::SeqCst)
    }
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
        if self.next >= self.source.per_partition {
            return Ok(SourcePoll::End);
        }
        if self.source.paced {
            if Instant::now() < self.due {
                return Ok(SourcePoll::Pending);
            }
            self.due = Instant::now() + Duration::from_millis(1);
        }
        for _ in 0..100.min(self.source.per_partition - self.next) {
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
        self.source.paced.then_some(self.due)
    }
}

impl Source<(u32, u64)> for Counting {
    fn partitions(&self) -> u32 {
        self.partitions
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

/// The committed lines of the files in `dir` (hidden in-progress files
/// left out), sorted.
pub fn lines(dir: &Path) -> Vec<String> {
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

/// Incremental checkpoints every 20 ms into `dir/checkpoints`, the last two
/// kept.
pub fn checkpoints_every_20_ms(
    dir: &Path,
    job_name: &str,
    alignment: BarrierAlignment,
) -> CheckpointConfig {
    CheckpointConfig {
        storage: StorageLocation::Directory(dir.join("checkpoints")),
        timing: CheckpointTiming {
            interval_ms: 20,
            timeout_ms: 10_000,
            min_pause_ms: 0,
        },
        retain: 2,
        restore: None,
        restore_storage: None,
        job_name: job_name.into(),
        full_every: Some(3),
        alignment,
    }
}
