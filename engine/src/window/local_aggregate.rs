//! Two-phase window aggregation: the local phase, before the key exchange,
//! whose partial results [`MergeAccumulators`](super::MergeAccumulators)
//! merges after it (Flink's local-global aggregation).
//!
//! A hot key (Nexmark's hot auction takes half of all bids) sends its
//! records to the one shard that owns it. With two phases each shard first
//! folds its own records into one accumulator per (key, window) and sends
//! only those partial accumulators through the exchange; the owner merges
//! them. The exchange then carries about one record per key, window and
//! sending shard, however skewed the input.
//!
//! [`LocalWindowAggregate`] runs on the sending shard, fused into its chain
//! right before the exchange. It keeps no checkpointed state: everything it
//! holds leaves before a barrier passes (so a checkpoint finds it in the
//! exchange or downstream, never here), and the partials of a window leave
//! before a watermark that closes the window. Invariants: a partial's
//! timestamp is its window's `max_timestamp`, so the receiving side, with
//! [`WindowsEndingAt`](super::WindowsEndingAt) of the same size, assigns it
//! to that same window; at most `max_partials` accumulators are held (more:
//! all leave at once).

use std::collections::BTreeMap;

use sluice_state::FastHashMap;

use crate::push::{Control, EdgeId, Push};
use crate::Rec;

use super::{AggregateFunction, TimeWindow, Window, WindowAssigner};

/// How many partials go downstream in one batch.
const OUTPUT_BATCH: usize = 1024;

/// Window assigners whose windows all have one size, so that the window of
/// a partial follows from its timestamp alone.
pub trait FixedSizeWindows: WindowAssigner<W = TimeWindow> {
    fn size_ms(&self) -> i64;
}

impl FixedSizeWindows for super::TumblingWindows {
    fn size_ms(&self) -> i64 {
        self.size_ms
    }
}

impl FixedSizeWindows for super::SlidingWindows {
    fn size_ms(&self) -> i64 {
        self.size_ms
    }
}

/// The local phase: see the module docs.
pub struct LocalWindowAggregate<K, T, F, A, Ag: AggregateFunction<T>> {
    key_of: F,
    assigner: A,
    function: Ag,
    /// Open windows, oldest first, each with its keys' accumulators.
    partials: BTreeMap<TimeWindow, FastHashMap<K, Ag::Acc>>,
    held: usize,
    max_partials: usize,
    watermark: i64,
    windows: Vec<TimeWindow>,
    output: Vec<Rec<(K, Ag::Acc)>>,
    next: Box<dyn Push<(K, Ag::Acc)>>,
    _input: std::marker::PhantomData<fn(T)>,
}

impl<K, T, F, A, Ag> LocalWindowAggregate<K, T, F, A, Ag>
where
    K: std::hash::Hash + Eq + Clone,
    F: Fn(&T) -> K,
    A: FixedSizeWindows,
    Ag: AggregateFunction<T>,
{
    pub fn new(
        key_of: F,
        assigner: A,
        function: Ag,
        max_partials: usize,
        next: Box<dyn Push<(K, Ag::Acc)>>,
    ) -> Self {
        LocalWindowAggregate {
            key_of,
            assigner,
            function,
            partials: BTreeMap::new(),
            held: 0,
            max_partials: max_partials.max(1),
            watermark: i64::MIN,
            windows: Vec::new(),
            output: Vec::new(),
            next,
            _input: std::marker::PhantomData,
        }
    }

    /// Sends the partials of every window that ends at or before
    /// `max_timestamp` (all: `i64::MAX`).
    fn release_through(&mut self, max_timestamp: i64) {
        while let Some(entry) = self.partials.first_entry() {
            let window = *entry.key();
            if window.max_timestamp() > max_timestamp {
                break;
            }
            let keys = entry.remove();
            self.held -= keys.len();
            let ts = window.max_timestamp();
            for (key, acc) in keys {
                self.output.push(Rec {
                    ts,
                    value: (key, acc),
                });
                if self.output.len() >= OUTPUT_BATCH {
                    self.next.push(&mut self.output);
                }
            }
        }
        if !self.output.is_empty() {
            self.next.push(&mut self.output);
        }
    }
}

impl<K, T, F, A, Ag> Push<T> for LocalWindowAggregate<K, T, F, A, Ag>
where
    K: std::hash::Hash + Eq + Clone,
    F: Fn(&T) -> K,
    A: FixedSizeWindows,
    Ag: AggregateFunction<T>,
{
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        let mut late = false;
        for record in batch.drain(..) {
            self.windows.clear();
            self.assigner.assign(record.ts, &mut self.windows);
            let key = (self.key_of)(&record.value);
            for window in &self.windows {
                late |= window.max_timestamp() <= self.watermark;
                let keys = self.partials.entry(*window).or_default();
                if let Some(acc) = keys.get_mut(&key) {
                    self.function.add(&record.value, acc);
                    continue;
                }
                let mut acc = self.function.create_accumulator();
                self.function.add(&record.value, &mut acc);
                keys.insert(key.clone(), acc);
                self.held += 1;
            }
        }
        if self.held >= self.max_partials {
            self.release_through(i64::MAX);
        } else if late {
            // Behind this shard's watermark: the receiving side decides
            // whether it is still in time, as it would for the record.
            self.release_through(self.watermark);
        }
    }

    fn control(&mut self, event: Control) {
        match event {
            Control::Watermark(watermark) => {
                self.watermark = self.watermark.max(watermark);
                self.release_through(self.watermark);
            }
            Control::Barrier(_) | Control::End => self.release_through(i64::MAX),
            Control::Status(_) => {}
        }
        self.next.control(event);
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.next.reachable_edges(out);
    }
}
