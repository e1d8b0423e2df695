//! The receiving side of an exchange on one shard: the input gate.
//!
//! Lives on its shard's core. It has one input per shard (its own shard's input
//! is the local path). Records from other shards are read in place from their
//! batch and handed to the downstream chain; watermarks are combined over the
//! inputs ([`WatermarkCombiner`]), so the chain sees the minimum over non-idle
//! inputs, never moving back; the chain sees `End` once every input has ended.
//! Checkpoint barriers travel in order with the data but are not aligned yet:
//! each one received is passed on (nothing sends them until checkpoints exist).

use sluice_network::{ExchangeData, ExchangeMessage, RecordBatch, WatermarkStatus};

use crate::push::{Control, EdgeId, Push};
use crate::watermark::WatermarkCombiner;
use crate::Rec;

/// Type-erased view of a gate for the tasks that receive its channels.
pub(crate) trait GateInput {
    /// Handles one message from shard `source`.
    fn receive(&mut self, source: u32, message: ExchangeMessage);
    /// The input from `source` went away without `End` (its shard failed).
    fn disconnected(&mut self, source: u32);
    fn reachable_edges(&self, out: &mut Vec<EdgeId>);
}

pub(crate) struct ExchangeGate<T> {
    combiner: WatermarkCombiner,
    status: WatermarkStatus,
    downstream: Box<dyn Push<T>>,
    decoded: Vec<Rec<T>>,
    ended: bool,
}

impl<T: ExchangeData> ExchangeGate<T> {
    pub fn new(downstream: Box<dyn Push<T>>, shards: u32) -> Self {
        ExchangeGate {
            combiner: WatermarkCombiner::new(shards as usize),
            status: WatermarkStatus::Active,
            downstream,
            decoded: Vec::new(),
            ended: false,
        }
    }

    pub fn push_local(&mut self, batch: &mut Vec<Rec<T>>) {
        self.downstream.push(batch);
    }

    fn receive_batch(&mut self, source: u32, batch: RecordBatch) {
        debug_assert_eq!(batch.check_invariants(), Ok(()));
        if !batch.is_empty() {
            let timestamps = batch.timestamps();
            self.decoded.reserve(batch.len());
            for (i, &ts) in timestamps.iter().enumerate() {
                // SAFETY: this batch came through an in-process channel from
                // another shard of this job, which built it with a
                // `BatchBuilder<T>` for this very edge (edges are typed), so the
                // bytes are trusted and aligned. Batches from other machines will
                // arrive through the network layer and use `read_checked`.
                let value = unsafe { batch.read_trusted::<T>(i) };
                self.decoded.push(Rec { ts, value });
            }
            self.downstream.push(&mut self.decoded);
        }
        if let Some(wm) = batch.watermark {
            self.watermark(source, wm);
        }
    }

    pub fn watermark(&mut self, source: u32, wm: i64) {
        if let Some(combined) = self.combiner.update(source as usize, wm) {
            self.downstream.control(Control::Watermark(combined));
        }
        self.refresh_status();
    }

    pub fn status(&mut self, source: u32, status: WatermarkStatus) {
        let advanced = self
            .combiner
            .set_idle(source as usize, status == WatermarkStatus::Idle);
        if let Some(combined) = advanced {
            self.downstream.control(Control::Watermark(combined));
        }
        self.refresh_status();
    }

    fn refresh_status(&mut self) {
        let status = self.combiner.status();
        if status != self.status {
            self.status = status;
            self.downstream.control(Control::Status(status));
        }
    }

    pub fn end(&mut self, source: u32) {
        if let Some(combined) = self.combiner.end(source as usize) {
            self.downstream.control(Control::Watermark(combined));
        }
        if self.combiner.all_ended() && !self.ended {
            self.ended = true;
            self.downstream.control(Control::End);
        } else {
            self.refresh_status();
        }
    }

    pub fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.downstream.reachable_edges(out);
    }
}

impl<T: ExchangeData> GateInput for ExchangeGate<T> {
    fn receive(&mut self, source: u32, message: ExchangeMessage) {
        match message {
            ExchangeMessage::Batch(batch) => self.receive_batch(source, batch),
            ExchangeMessage::Status(status) => self.status(source, status),
            ExchangeMessage::Barrier(barrier) => self.downstream.control(Control::Barrier(barrier)),
            ExchangeMessage::End => self.end(source),
        }
    }

    fn disconnected(&mut self, source: u32) {
        self.end(source);
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        ExchangeGate::reachable_edges(self, out)
    }
}
