//! Rolling keyed `reduce`: for each record, combine it with the key's current
//! value and emit the new value (Flink's `KeyedStream.reduce`).

use sluice_state::{KeyGroups, KeyedTable, Slot, SlotAction, StableKey, StateKey};

use crate::push::{Control, EdgeId, Push};
use crate::{Data, Rec};

pub struct KeyedReduce<K, T, KF, RF> {
    key_of: KF,
    reduce: RF,
    groups: KeyGroups,
    table: Box<dyn KeyedTable<K, (), T>>,
    output: Vec<Rec<T>>,
    next: Box<dyn Push<T>>,
}

impl<K, T, KF, RF> KeyedReduce<K, T, KF, RF> {
    pub fn new(
        key_of: KF,
        reduce: RF,
        groups: KeyGroups,
        table: Box<dyn KeyedTable<K, (), T>>,
        next: Box<dyn Push<T>>,
    ) -> Self {
        KeyedReduce {
            key_of,
            reduce,
            groups,
            table,
            output: Vec::new(),
            next,
        }
    }
}

impl<K, T, KF, RF> Push<T> for KeyedReduce<K, T, KF, RF>
where
    K: StateKey + StableKey,
    T: Data,
    KF: Fn(&T) -> K,
    RF: Fn(&T, &T) -> T,
{
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        let Self {
            key_of,
            reduce,
            groups,
            table,
            output,
            ..
        } = self;
        for r in batch.drain(..) {
            let key = key_of(&r.value);
            let group = groups.key_group_of_hash(key.stable_hash());
            let mut value = Some(r.value);
            table.update(group, &key, &(), &mut |slot| match slot {
                Slot::Present(current) => {
                    *current = reduce(current, value.as_ref().expect("one call"));
                    output.push(Rec {
                        ts: r.ts,
                        value: current.clone(),
                    });
                    SlotAction::Keep
                }
                Slot::Absent => {
                    let v = value.take().expect("one call");
                    output.push(Rec {
                        ts: r.ts,
                        value: v.clone(),
                    });
                    SlotAction::Put(v)
                }
            });
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
