//! Sources and sinks: the contracts, and the built-in connectors.
//!
//! A [`Source`] is split into partitions; partition `p` is read by shard
//! `p % shards`, with no coordination between shards. A [`SourceReader`] reads
//! one partition in batches and knows its position (so checkpoints can later
//! record and restore it). A [`Sink`] opens one [`SinkWriter`] per shard.

mod bad_records;
mod collect;
pub(crate) mod csv_line;
mod file;
mod file_source;
mod generator;
pub mod nexmark;
mod record_format;

pub use bad_records::{BadRecordPolicy, BadRecords};
pub use collect::{CollectSink, Collected};
pub use file::{
    BlackholeSink, ExactlyOnceFileSink, FileSink, StdoutSink, ThrottledBlackholeSink,
    TimePartitionedFileSink, TransactionalFileWriter,
};
pub use file_source::{FileSource, FileSplit, Parse, SPLIT_BYTES_DEFAULT};
pub use generator::{GeneratedEvent, GeneratorSource};
pub use record_format::{FormatError, RecordFormat};

use crate::{Rec, SourceError};

/// What a poll produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePoll {
    /// Records were appended (possibly none); poll again.
    Ready,
    /// Nothing available right now (an unbounded source waiting for data).
    Pending,
    /// The partition is exhausted (records may have been appended by this call).
    End,
}

/// Reads one partition. Lives on the shard that owns the partition.
pub trait SourceReader<T> {
    /// Appends at most `max` records to `out`.
    fn poll(&mut self, out: &mut Vec<Rec<T>>, max: usize) -> Result<SourcePoll, SourceError>;
    /// The position to resume from (records or bytes, as the source defines).
    fn position(&self) -> u64;
    /// Moves a freshly opened reader to `position` (one that `position`
    /// returned), so a restored job reads on from there. Sources that cannot
    /// resume say so, and checkpointed jobs do not start with them.
    fn seek(&mut self, position: u64) -> Result<(), SourceError> {
        let _ = position;
        Err(SourceError::CannotResume {
            source_name: "this source".into(),
        })
    }
    /// After `poll` said `Pending`: when the reader knows its next records are
    /// due (a paced source), so the shard sleeps exactly until then instead of
    /// backing off.
    fn ready_at(&self) -> Option<std::time::Instant> {
        None
    }
}

/// A partitioned source of records of type `T`.
///
/// Partitions are numbered `0..partitions()` in each process; a source whose
/// partitions appear while the job runs (a Kafka topic that grows) says how
/// often to look ([`discovery_interval`](Self::discovery_interval)), and its
/// count only grows, numbers never changing their partition. Numbers are
/// local to a process: what crosses processes (checkpointed positions, the
/// shard that reads a partition) goes by [`partition_name`](Self::partition_name).
pub trait Source<T>: Send + Sync + 'static {
    fn partitions(&self) -> u32;
    fn open(&self, partition: u32) -> Result<Box<dyn SourceReader<T>>, SourceError>;

    /// The partition's name in checkpoints: the same in every process and
    /// every run of the job (default: its number).
    fn partition_name(&self, partition: u32) -> String {
        partition.to_string()
    }

    /// The shard (of `shards`) that reads `partition` (default: round robin).
    fn shard_of(&self, partition: u32, shards: u32) -> u32 {
        partition % shards
    }

    /// How often the source tasks look for partitions that appeared since
    /// they started (`None`: the partitions are fixed). `partitions()` must
    /// answer without blocking: the source discovers on a thread of its own.
    fn discovery_interval(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Writes one shard's output. Lives on that shard.
pub trait SinkWriter<T> {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String>;
    /// Checkpoint `checkpoint`'s barrier has reached the sink: make what was
    /// written before it durable and ready to commit when the checkpoint
    /// completes. Sinks that do not take part in checkpoints need not act.
    fn pre_commit(&mut self, _checkpoint: u64) -> Result<(), String> {
        Ok(())
    }
    /// Event time has advanced at this sink.
    fn watermark(&mut self, _watermark: i64) {}
    /// The stream ended: flush and close.
    fn finish(&mut self) -> Result<(), String>;
}

/// A sink: opens a writer per shard.
pub trait Sink<T>: Send + Sync + 'static {
    fn open(&self, shard: u32, shards: u32) -> Result<Box<dyn SinkWriter<T>>, String>;

    /// Opens the writer of a job that may take checkpoints or be restored;
    /// an exactly-once sink recovers its pending output here and registers
    /// its committer.
    fn open_in(&self, context: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, String> {
        self.open(context.shard, context.shards)
    }
}

/// What a sink is told about the job when it opens on a shard.
pub struct SinkContext {
    pub shard: u32,
    pub shards: u32,
    /// The job takes checkpoints: commit only what they complete.
    pub checkpointing: bool,
    /// The checkpoint the job was restored from, as sinks recover to it
    /// ([`FINAL_CHECKPOINT`](crate::checkpoint::FINAL_CHECKPOINT) when the
    /// job had finished in it).
    pub restored: Option<u64>,
    pub committers: crate::checkpoint::Committers,
    /// Shard 0 runs in this process: what a sink decides for the whole job
    /// once every shard committed (a bucket's marker) is decided here; other
    /// processes send notes (see [`Committer`](crate::checkpoint::Committer)).
    pub decides_for_job: bool,
}
