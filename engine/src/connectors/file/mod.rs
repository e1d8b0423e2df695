//! The file sinks, from the simplest to exactly-once.
//!
//! - `file_sink`: stdout, a file per shard, and the blackhole (at least once
//!   with checkpoints: nothing is rolled back);
//! - `transactional_file_writer`: a shard's part files and their life
//!   (in progress, pending at a barrier, committed when the checkpoint
//!   completes), the core of exactly-once output;
//! - `exactly_once_file_sink`: one directory of committed parts;
//! - `partitioned_file_sink` and `partitioned_transactional_writer`: a
//!   directory per event-time bucket, marked `_SUCCESS` once complete.
//!
//! Writers run on their shard's core; commits on the checkpoint driver's
//! thread (through [`Committer`](crate::checkpoint::Committer)).

mod exactly_once_file_sink;
mod file_sink;
mod partitioned_file_sink;
mod partitioned_transactional_writer;
mod transactional_file_writer;

pub use exactly_once_file_sink::ExactlyOnceFileSink;
pub use file_sink::{BlackholeSink, FileSink, StdoutSink, ThrottledBlackholeSink};
pub use partitioned_file_sink::TimePartitionedFileSink;
pub use transactional_file_writer::TransactionalFileWriter;

use super::{RecordFormat, Sink, SinkContext, SinkWriter};
