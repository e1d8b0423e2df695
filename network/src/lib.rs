//! The bytes that move between shards.
//!
//! This crate is a leaf: it knows nothing of operators, state or executors. It
//! owns
//! - [`ExchangeData`]: what a record type must be to cross a shard boundary
//!   (rkyv-serializable, readable in place);
//! - [`RecordBatch`] and [`BatchBuilder`]: records serialized once into one
//!   aligned buffer, with their event timestamps as a column beside it, and read
//!   back in place by [`RecordBatch::read`];
//! - [`ExchangeMessage`]: what travels on one channel between two shards — data
//!   with in-band watermarks, checkpoint barriers, end of stream.
//!
//! Moving a batch between shards of one process moves its buffers (pointers), never
//! its bytes. Later, TCP links between machines frame the same batches.

mod batch;
mod exchange_data;
mod message;

pub use batch::{BatchBuilder, BatchError, RecordBatch, BATCH_BYTES_MIN, BATCH_RECORDS_MAX};
pub use exchange_data::ExchangeData;
pub use message::{CheckpointBarrier, ExchangeMessage, WatermarkStatus};
