//! What travels on one channel from one shard to another, in order.

use crate::RecordBatch;

/// A checkpoint barrier: everything before it on a channel belongs to checkpoint
/// `id` and earlier. Sources emit it when the checkpoint coordinator asks;
/// every exchange forwards it in band (aligned) or ahead of queued data
/// (unaligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointBarrier {
    pub id: u64,
    pub timestamp_ms: i64,
}

/// Whether a sender holds back event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatermarkStatus {
    /// The sender's watermark counts in the receiver's minimum.
    Active,
    /// The sender has no data for now: the receiver ignores its watermark until it
    /// becomes active again (with a batch or a watermark).
    Idle,
}

/// One message on a shard-to-shard channel.
#[derive(Debug)]
pub enum ExchangeMessage {
    /// Records, followed (optionally) by a watermark that applies after them.
    Batch(RecordBatch),
    /// The sender's sources are idle: do not wait for its watermark.
    Status(WatermarkStatus),
    /// A checkpoint barrier.
    Barrier(CheckpointBarrier),
    /// The sender will send nothing more on this channel.
    End,
}
