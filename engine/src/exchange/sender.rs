//! The sending side of an exchange on one shard.
//!
//! Lives on its shard's core. Per record: route, then either append to the
//! local batch (same shard: no serialization) or serialize into the
//! destination's batch builder. Per batch: full batches go to the outbox, the
//! local batch goes straight to the local gate. A destination's batch is also
//! sent once its first content has waited `flush_timeout` ([`Flush`]), and
//! watermarks ride on the next batch to each destination, so they never force
//! small batches. Invariant: per destination, records, watermarks, status and
//! end leave in the order the chain produced them.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_network::{BatchBuilder, ExchangeMessage};

use super::{EdgeOutbox, ExchangeGate, Partitioner, Route};
use crate::metrics::ShardMetrics;
use crate::push::{Control, EdgeId, Push};
use crate::{EngineError, ExchangeData, Rec};

/// Something the shard's flusher visits periodically.
pub(crate) trait Flush {
    /// Sends every batch whose first content is older than the flush timeout.
    fn flush_expired(&mut self, now: Instant);
    /// True once the sender has seen the end of its input.
    fn is_ended(&self) -> bool;
}

pub(crate) struct SenderState<T, P> {
    edge: EdgeId,
    shard: u32,
    partitioner: P,
    builders: Vec<BatchBuilder<T>>,
    opened_at: Vec<Option<Instant>>,
    local: Vec<Rec<T>>,
    local_gate: Rc<RefCell<ExchangeGate<T>>>,
    outbox: Rc<EdgeOutbox>,
    flush_timeout: Duration,
    metrics: Arc<ShardMetrics>,
    errors: Arc<Mutex<Vec<EngineError>>>,
    ended: bool,
}

/// The chain-facing handle; the flusher holds another to the same state.
pub(crate) struct ExchangeSender<T, P> {
    state: Rc<RefCell<SenderState<T, P>>>,
}

impl<T: ExchangeData, P: Partitioner<T>> ExchangeSender<T, P> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        edge: EdgeId,
        shard: u32,
        shards: u32,
        partitioner: P,
        local_gate: Rc<RefCell<ExchangeGate<T>>>,
        outbox: Rc<EdgeOutbox>,
        batch_bytes_limit: usize,
        flush_timeout: Duration,
        metrics: Arc<ShardMetrics>,
        errors: Arc<Mutex<Vec<EngineError>>>,
    ) -> (Self, Rc<RefCell<SenderState<T, P>>>) {
        let state = Rc::new(RefCell::new(SenderState {
            edge,
            shard,
            partitioner,
            builders: (0..shards)
                .map(|_| BatchBuilder::new(batch_bytes_limit))
                .collect(),
            opened_at: vec![None; shards as usize],
            local: Vec::new(),
            local_gate,
            outbox,
            flush_timeout,
            metrics,
            errors,
            ended: false,
        }));
        (
            ExchangeSender {
                state: state.clone(),
            },
            state,
        )
    }
}

impl<T: ExchangeData, P: Partitioner<T>> ExchangeSender<T, P> {
    /// Sends restored channel state again: records this shard's outbox held
    /// at the restored (unaligned) checkpoint. Called before any input.
    pub fn replay(&mut self, records: &[u8]) -> Result<(), String> {
        let mut records = super::channel_state::read_records::<T>(records)?;
        self.push(&mut records);
        Ok(())
    }
}

impl<T: ExchangeData, P: Partitioner<T>> SenderState<T, P> {
    #[inline]
    fn append_remote(&mut self, destination: u32, record: &Rec<T>, now: &mut Option<Instant>) {
        let d = destination as usize;
        if self.builders[d].is_empty() {
            self.opened_at[d] = Some(*now.get_or_insert_with(Instant::now));
        }
        if let Err(e) = self.builders[d].push(record.ts, &record.value) {
            // A record that cannot be serialized is dropped and reported; the
            // records accepted before it still flow.
            self.errors
                .lock()
                .expect("errors lock")
                .push(EngineError::Serialize(format!("edge {}: {e}", self.edge)));
            return;
        }
        if self.builders[d].is_full() {
            self.send(destination);
        }
    }

    fn send(&mut self, destination: u32) {
        let d = destination as usize;
        if self.builders[d].is_empty() {
            return;
        }
        let batch = self.builders[d].take();
        self.opened_at[d] = None;
        ShardMetrics::add(&self.metrics.records_exchanged, batch.len() as u64);
        ShardMetrics::add(&self.metrics.bytes_exchanged, batch.byte_len() as u64);
        ShardMetrics::add(&self.metrics.batches_exchanged, 1);
        self.outbox
            .enqueue(destination, ExchangeMessage::Batch(batch));
    }

    fn flush_local(&mut self) {
        if !self.local.is_empty() {
            self.local_gate.borrow_mut().push_local(&mut self.local);
        }
    }

    /// Sends every open batch, then `message()` to every other shard.
    fn send_to_others(&mut self, message: impl Fn() -> ExchangeMessage) {
        self.send_all();
        for destination in 0..self.builders.len() as u32 {
            if destination != self.shard {
                self.outbox.enqueue(destination, message());
            }
        }
    }

    fn send_all(&mut self) {
        for destination in 0..self.builders.len() as u32 {
            if destination != self.shard {
                self.send(destination);
            }
        }
    }
}

impl<T: ExchangeData, P: Partitioner<T>> Push<T> for ExchangeSender<T, P> {
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        assert!(!state.ended, "bug: push after end on edge {}", state.edge);
        let mut now = None;
        let shards = state.builders.len() as u32;
        for record in batch.drain(..) {
            match state.partitioner.route(&record.value) {
                Route::Shard(d) if d == state.shard => state.local.push(record),
                Route::Shard(d) => state.append_remote(d, &record, &mut now),
                Route::AllShards => {
                    for d in 0..shards {
                        if d != state.shard {
                            state.append_remote(d, &record, &mut now);
                        }
                    }
                    state.local.push(record);
                }
            }
        }
        if state.flush_timeout.is_zero() {
            state.send_all();
        }
        state.flush_local();
    }

    fn control(&mut self, event: Control) {
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        match event {
            Control::Watermark(wm) => {
                let now = Instant::now();
                for d in 0..state.builders.len() {
                    if d as u32 == state.shard {
                        continue;
                    }
                    if state.builders[d].is_empty() {
                        state.opened_at[d] = Some(now);
                    }
                    state.builders[d].set_watermark(wm);
                }
                if state.flush_timeout.is_zero() {
                    state.send_all();
                }
                let gate = state.local_gate.clone();
                gate.borrow_mut().watermark(state.shard, wm);
            }
            Control::Status(status) => {
                state.send_to_others(|| ExchangeMessage::Status(status));
                let gate = state.local_gate.clone();
                gate.borrow_mut().status(state.shard, status);
            }
            Control::Barrier(barrier) => {
                // Open batches join the queue first: an unaligned barrier
                // overtakes them with the rest.
                state.send_all();
                state.outbox.barrier(barrier);
                let gate = state.local_gate.clone();
                gate.borrow_mut().barrier(state.shard, barrier);
            }
            Control::End => {
                state.send_to_others(|| ExchangeMessage::End);
                state.outbox.ended();
                state.ended = true;
                let gate = state.local_gate.clone();
                gate.borrow_mut().end(state.shard);
            }
        }
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        let state = self.state.borrow();
        out.push(state.edge);
        state.local_gate.borrow().reachable_edges(out);
    }
}

impl<T: ExchangeData, P: Partitioner<T>> Flush for SenderState<T, P> {
    fn flush_expired(&mut self, now: Instant) {
        for d in 0..self.builders.len() {
            if let Some(opened) = self.opened_at[d] {
                if now.duration_since(opened) >= self.flush_timeout {
                    self.send(d as u32);
                }
            }
        }
    }

    fn is_ended(&self) -> bool {
        self.ended
    }
}
