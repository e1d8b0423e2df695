//! The first phase of a two-phase unbounded aggregation: folds each input
//! batch into one accumulator per key before the key exchange.
//!
//! Lives on the sending shard, fused right before the exchange. A batch's
//! records of one key leave as one partial `(key, accumulator)` carrying the
//! largest timestamp among them, and the key's owner merges it
//! ([`MergeAccumulators`](crate::window::MergeAccumulators)) into the
//! key's running accumulator. Nothing is held between batches, so a
//! watermark, barrier or end of input finds nothing here and the phase
//! needs no state of its own; what it saves grows with the skew (a hot key
//! that has half of a 1,000-record batch sends one partial instead of
//! 500). The key's results are the same; fewer intermediate updates are
//! emitted (one per partial instead of one per record), as with Flink's
//! mini-batch local-global aggregation.

use sluice_state::FastHashMap;

use crate::push::{Control, EdgeId, Push};
use crate::window::AggregateFunction;
use crate::Rec;

/// See the module docs.
pub struct BatchFold<K, T, F, A: AggregateFunction<T>> {
    key_of: F,
    function: A,
    /// Per key of the batch: its accumulator and largest timestamp.
    folded: FastHashMap<K, (A::Acc, i64)>,
    output: Vec<Rec<(K, A::Acc)>>,
    next: Box<dyn Push<(K, A::Acc)>>,
    _input: std::marker::PhantomData<fn(T)>,
}

impl<K, T, F, A: AggregateFunction<T>> BatchFold<K, T, F, A> {
    pub fn new(key_of: F, function: A, next: Box<dyn Push<(K, A::Acc)>>) -> Self {
        BatchFold {
            key_of,
            function,
            folded: FastHashMap::default(),
            output: Vec::new(),
            next,
            _input: std::marker::PhantomData,
        }
    }
}

impl<K, T, F, A> Push<T> for BatchFold<K, T, F, A>
where
    K: std::hash::Hash + Eq,
    F: Fn(&T) -> K,
    A: AggregateFunction<T>,
{
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        for record in batch.drain(..) {
            let key = (self.key_of)(&record.value);
            if let Some((acc, ts)) = self.folded.get_mut(&key) {
                self.function.add(&record.value, acc);
                *ts = (*ts).max(record.ts);
                continue;
            }
            let mut acc = self.function.create_accumulator();
            self.function.add(&record.value, &mut acc);
            self.folded.insert(key, (acc, record.ts));
        }
        self.output
            .extend((self.folded.drain()).map(|(key, (acc, ts))| Rec {
                ts,
                value: (key, acc),
            }));
        if !self.output.is_empty() {
            self.next.push(&mut self.output);
        }
    }

    fn control(&mut self, event: Control) {
        self.next.control(event);
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.next.reachable_edges(out);
    }
}
