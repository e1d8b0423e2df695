//! Sources and sinks: the contracts, and the built-in connectors.
//!
//! A [`Source`] is split into partitions; partition `p` is read by shard
//! `p % shards`, with no coordination between shards. A [`SourceReader`] reads
//! one partition in batches and knows its position (so checkpoints can later
//! record and restore it). A [`Sink`] opens one [`SinkWriter`] per shard.

mod collect;
mod file_sink;
mod file_source;
mod generator;
mod partitioned_file_sink;
mod record_format;
mod transactional_file_sink;

pub use collect::{CollectSink, Collected};
pub use file_sink::{BlackholeSink, FileSink, StdoutSink};
pub use file_source::{FileSource, FileSplit, SPLIT_BYTES_DEFAULT};
pub use generator::{GeneratedEvent, GeneratorSource};
pub use partitioned_file_sink::TimePartitionedFileSink;
pub use record_format::{FormatError, RecordFormat};
pub use transactional_file_sink::TransactionalFileWriter;

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
    /// After `poll` said `Pending`: when the reader knows its next records are
    /// due (a paced source), so the shard sleeps exactly until then instead of
    /// backing off.
    fn ready_at(&self) -> Option<std::time::Instant> {
        None
    }
}

/// A partitioned source of records of type `T`.
pub trait Source<T>: Send + Sync + 'static {
    fn partitions(&self) -> u32;
    fn open(&self, partition: u32) -> Result<Box<dyn SourceReader<T>>, SourceError>;
}

/// Writes one shard's output. Lives on that shard.
pub trait SinkWriter<T> {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String>;
    /// Event time has advanced at this sink.
    fn watermark(&mut self, _watermark: i64) {}
    /// The stream ended: flush and close.
    fn finish(&mut self) -> Result<(), String>;
}

/// A sink: opens a writer per shard.
pub trait Sink<T>: Send + Sync + 'static {
    fn open(&self, shard: u32, shards: u32) -> Result<Box<dyn SinkWriter<T>>, String>;
}
