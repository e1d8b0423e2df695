//! The bytes that move between shards, and the link that moves them.
//!
//! This crate knows nothing of operators, state or jobs: the engine builds on
//! it. It owns
//! - [`BatchRecord`]: what a record type must be to travel in a batch
//!   (rkyv-serializable, readable in place);
//! - [`RecordBatch`] and [`BatchBuilder`]: records serialized once into one
//!   aligned buffer, with their event timestamps as a column beside it, and read
//!   back in place by [`RecordBatch::read_trusted`];
//! - [`ExchangeMessage`]: what travels on one channel between two shards — data
//!   with in-band watermarks, checkpoint barriers, end of stream;
//! - the link between two shards ([`ChannelSender`], [`ChannelReceiver`],
//!   [`CreditGrantor`]) with credit-based flow control as pure state
//!   ([`SendCredits`], [`CreditsOwed`]), and its in-process implementation
//!   ([`local`], wired for a whole job by [`LocalMesh`]);
//! - [`auth`]: the cluster secret, proven on connect by a challenge–response;
//! - [`wire`]: the frames of a link between two workers, decoded from
//!   untrusted bytes without a panic.
//!
//! Moving a batch between shards of one process moves its buffers (pointers), never
//! its bytes. Next, TCP links between machines frame the same batches behind the
//! same channel interface.

pub mod auth;
mod batch;
mod batch_record;
mod channel;
mod credit;
pub mod link;
pub mod local;
mod local_mesh;
mod message;
mod wake;
pub mod wire;

pub use batch::{BatchBuilder, BatchError, RecordBatch, BATCH_BYTES_MIN, BATCH_RECORDS_MAX};
pub use batch_record::BatchRecord;
pub use channel::{ChannelReceiver, ChannelSender, CreditGrantor, SendError};
pub use credit::{CreditsOwed, ExcessGrant, SendCredits};
pub use local_mesh::{LocalMesh, ShardChannelEnds};
pub use message::{CheckpointBarrier, ExchangeMessage, WatermarkStatus};
pub use wake::Wake;
