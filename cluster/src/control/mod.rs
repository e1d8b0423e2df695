//! The control plane between the coordinator and its workers: one TCP
//! connection per worker, opened by the worker and authenticated with the
//! cluster secret before anything else is read (`sluice_network::auth`),
//! then messages both ways ([`message`]), each a length-prefixed JSON
//! document.
//!
//! Runs on plain threads of each process (blocking sockets with timeouts),
//! never on a shard's core: nothing here is on the record path.
//!
//! Invariants: a message is at most [`message::MESSAGE_MAX_BYTES`]; every
//! message about a job's task names the job and the attempt it belongs to,
//! and a receiver drops what names an attempt other than the current one
//! (fencing: a worker that wakes up late acts on nothing).

pub mod message;
mod secret;

pub use message::{
    read_message, write_message, MessageError, ShardPlacement, ShardProgress, TaskTotals,
    ToCoordinator, ToWorker,
};
pub use secret::load_secret;

/// What a control connection's handshake context says (the data plane's
/// say which link they are).
pub const CONTROL_CONTEXT: &[u8] = b"sluice control";
