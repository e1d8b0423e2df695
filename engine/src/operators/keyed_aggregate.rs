//! Rolling keyed `aggregate`: each record is added to its key's accumulator and
//! the key's current result is emitted (the rolling counterpart of a window
//! aggregate; Flink's `KeyedStream.aggregate` semantics without windows).

use sluice_state::{KeyGroups, KeyedTable, Slot, SlotAction, StableKey, StateKey};

use crate::push::{Control, EdgeId, Push};
use crate::window::AggregateFunction;
use crate::{Data, Rec};

pub struct KeyedAggregate<K, T, A: AggregateFunction<T>, KF> {
    key_of: KF,
    function: A,
    groups: KeyGroups,
    table: Box<dyn KeyedTable<K, (), A::Acc>>,
    output: Vec<Rec<(K, A::Out)>>,
    next: Box<dyn Push<(K, A::Out)>>,
}

impl<K, T, A: AggregateFunction<T>, KF> KeyedAggregate<K, T, A, KF> {
    pub fn new(
        key_of: KF,
        function: A,
        groups: KeyGroups,
        table: Box<dyn KeyedTable<K, (), A::Acc>>,
        next: Box<dyn Push<(K, A::Out)>>,
    ) -> Self {
        KeyedAggregate {
            key_of,
            function,
            groups,
            table,
            output: Vec::new(),
            next,
        }
    }
}

impl<K, T, A, KF> Push<T> for KeyedAggregate<K, T, A, KF>
where
    K: StateKey + StableKey,
    T: Data,
    A: AggregateFunction<T>,
    KF: Fn(&T) -> K,
{
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        let Self {
            key_of,
            function,
            groups,
            table,
            output,
            ..
        } = self;
        for r in batch.drain(..) {
            let key = key_of(&r.value);
            let group = groups.key_group_of_hash(key.stable_hash());
            let mut result = None;
            table.update(group, &key, &(), &mut |slot| match slot {
                Slot::Present(acc) => {
                    function.add(&r.value, acc);
                    result = Some(function.get_result(acc));
                    SlotAction::Keep
                }
                Slot::Absent => {
                    let mut acc = function.create_accumulator();
                    function.add(&r.value, &mut acc);
                    result = Some(function.get_result(&acc));
                    SlotAction::Put(acc)
                }
            });
            if let Some(result) = result {
                output.push(Rec {
                    ts: r.ts,
                    value: (key, result),
                });
            }
        }
        self.next.push(&mut self.output);
    }
    fn control(&mut self, event: Control) {
        self.next.control(event);
    }
    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.next.reachable_edges(out);
    }
}
