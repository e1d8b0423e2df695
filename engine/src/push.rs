//! The fused operator chain: how a stage hands batches to the next.
//!
//! Lives on one shard's core. An operator receives a batch (`&mut Vec<Rec<T>>`),
//! consumes it (leaving it empty, capacity kept for reuse) and pushes its own
//! output batch to the next operator. Dispatch is per batch; per record, work
//! is monomorphized, allocation-free, lock-free and syscall-free.
//!
//! Control events travel through the same chain, in order with the data:
//! watermarks, watermark status, checkpoint barriers and end of stream.
//! Invariants: after [`Control::End`] nothing more is pushed; watermarks passed
//! downstream never move back.

use sluice_network::{CheckpointBarrier, WatermarkStatus};

use crate::Rec;

/// Identifies one exchange (a stage edge) of a job; the same on every shard.
pub type EdgeId = u32;

/// An in-band control event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Event time has reached this value: no record with a smaller or equal
    /// timestamp will follow (except late records).
    Watermark(i64),
    /// Whether this input holds back event time.
    Status(WatermarkStatus),
    /// A checkpoint barrier (carried, not acted on, until checkpoints exist).
    Barrier(CheckpointBarrier),
    /// The input is finished; a final `Watermark(i64::MAX)` came before it.
    End,
}

/// The receiving end of one link in a fused chain.
pub trait Push<T> {
    /// Consumes every record of `batch`, leaving it empty.
    fn push(&mut self, batch: &mut Vec<Rec<T>>);

    /// Handles a control event and forwards it as the operator's semantics say.
    fn control(&mut self, event: Control);

    /// Adds the exchanges this chain can send into, so that the task driving it
    /// knows which outboxes to wait on for backpressure.
    fn reachable_edges(&self, out: &mut Vec<EdgeId>);
}

/// A consumer that drops everything (the end of a chain nobody reads).
pub struct Discard;

impl<T> Push<T> for Discard {
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        batch.clear();
    }
    fn control(&mut self, _event: Control) {}
    fn reachable_edges(&self, _out: &mut Vec<EdgeId>) {}
}
