//! Keyed state handles for user functions: value, list, map, reducing and
//! aggregating state (Flink's state primitives).
//!
//! A handle owns one table of the shard's state backend and is always used with
//! a context that names the current key ([`CurrentKey`]), so user code cannot
//! touch another key's state. Lives on its shard's core.

use sluice_state::{
    FastHashMap, KeyGroup, KeyedTable, Slot, SlotAction, StateBackend, StateKey, StateValue,
};

use crate::window::AggregateFunction;

/// A context that knows the key being processed.
pub trait CurrentKey<K> {
    fn current_key(&self) -> &K;
    fn current_group(&self) -> KeyGroup;
}

/// One value per key.
pub struct ValueState<K, V> {
    table: Box<dyn KeyedTable<K, (), V>>,
}

impl<K: StateKey, V: StateValue + Clone> ValueState<K, V> {
    pub fn new(backend: &mut StateBackend, name: &str) -> Self {
        ValueState {
            table: backend.table(name),
        }
    }
    pub fn value(&self, ctx: &impl CurrentKey<K>) -> Option<V> {
        self.table.get(ctx.current_group(), ctx.current_key(), &())
    }
    pub fn update(&mut self, ctx: &impl CurrentKey<K>, value: V) {
        self.table
            .put(ctx.current_group(), ctx.current_key(), &(), value);
    }
    pub fn clear(&mut self, ctx: &impl CurrentKey<K>) {
        self.table
            .remove(ctx.current_group(), ctx.current_key(), &());
    }
}

/// A list of values per key.
pub struct ListState<K, V> {
    table: Box<dyn KeyedTable<K, (), Vec<V>>>,
}

impl<K: StateKey, V: StateValue + Clone> ListState<K, V> {
    pub fn new(backend: &mut StateBackend, name: &str) -> Self {
        ListState {
            table: backend.table(name),
        }
    }
    pub fn add(&mut self, ctx: &impl CurrentKey<K>, value: V) {
        let mut value = Some(value);
        self.table.update(
            ctx.current_group(),
            ctx.current_key(),
            &(),
            &mut |slot| match slot {
                Slot::Present(list) => {
                    list.push(value.take().expect("one call"));
                    SlotAction::Keep
                }
                Slot::Absent => SlotAction::Put(vec![value.take().expect("one call")]),
            },
        );
    }
    /// A copy of the key's list (empty if none).
    pub fn get(&self, ctx: &impl CurrentKey<K>) -> Vec<V> {
        self.table
            .get(ctx.current_group(), ctx.current_key(), &())
            .unwrap_or_default()
    }
    pub fn clear(&mut self, ctx: &impl CurrentKey<K>) {
        self.table
            .remove(ctx.current_group(), ctx.current_key(), &());
    }
}

/// A map per key.
pub struct MapState<K, MK, V> {
    table: Box<dyn KeyedTable<K, (), FastHashMap<MK, V>>>,
}

impl<K: StateKey, MK: StateKey, V: StateValue + Clone> MapState<K, MK, V> {
    pub fn new(backend: &mut StateBackend, name: &str) -> Self {
        MapState {
            table: backend.table(name),
        }
    }
    pub fn get(&self, ctx: &impl CurrentKey<K>, map_key: &MK) -> Option<V> {
        let mut found = None;
        self.table
            .read(ctx.current_group(), ctx.current_key(), &(), &mut |map| {
                found = map.and_then(|m| m.get(map_key).cloned());
            });
        found
    }
    pub fn put(&mut self, ctx: &impl CurrentKey<K>, map_key: MK, value: V) {
        let mut entry = Some((map_key, value));
        self.table
            .update(ctx.current_group(), ctx.current_key(), &(), &mut |slot| {
                let (mk, v) = entry.take().expect("one call");
                match slot {
                    Slot::Present(map) => {
                        map.insert(mk, v);
                        SlotAction::Keep
                    }
                    Slot::Absent => {
                        let mut map = FastHashMap::default();
                        map.insert(mk, v);
                        SlotAction::Put(map)
                    }
                }
            });
    }
    pub fn remove(&mut self, ctx: &impl CurrentKey<K>, map_key: &MK) -> Option<V> {
        let mut removed = None;
        self.table.update(
            ctx.current_group(),
            ctx.current_key(),
            &(),
            &mut |slot| match slot {
                Slot::Present(map) => {
                    removed = map.remove(map_key);
                    if map.is_empty() {
                        SlotAction::Remove
                    } else {
                        SlotAction::Keep
                    }
                }
                Slot::Absent => SlotAction::Keep,
            },
        );
        removed
    }
    /// A copy of the key's entries.
    pub fn entries(&self, ctx: &impl CurrentKey<K>) -> Vec<(MK, V)> {
        self.table
            .get(ctx.current_group(), ctx.current_key(), &())
            .map(|m| m.into_iter().collect())
            .unwrap_or_default()
    }
    pub fn clear(&mut self, ctx: &impl CurrentKey<K>) {
        self.table
            .remove(ctx.current_group(), ctx.current_key(), &());
    }
}

/// One value per key, combined with each added value by a reduce function.
pub struct ReducingState<K, V, F> {
    table: Box<dyn KeyedTable<K, (), V>>,
    reduce: F,
}

impl<K: StateKey, V: StateValue + Clone, F: Fn(&V, &V) -> V> ReducingState<K, V, F> {
    pub fn new(backend: &mut StateBackend, name: &str, reduce: F) -> Self {
        ReducingState {
            table: backend.table(name),
            reduce,
        }
    }
    pub fn add(&mut self, ctx: &impl CurrentKey<K>, value: V) {
        let reduce = &self.reduce;
        let mut value = Some(value);
        self.table.update(
            ctx.current_group(),
            ctx.current_key(),
            &(),
            &mut |slot| match slot {
                Slot::Present(current) => {
                    *current = reduce(current, value.as_ref().expect("one call"));
                    SlotAction::Keep
                }
                Slot::Absent => SlotAction::Put(value.take().expect("one call")),
            },
        );
    }
    pub fn get(&self, ctx: &impl CurrentKey<K>) -> Option<V> {
        self.table.get(ctx.current_group(), ctx.current_key(), &())
    }
    pub fn clear(&mut self, ctx: &impl CurrentKey<K>) {
        self.table
            .remove(ctx.current_group(), ctx.current_key(), &());
    }
}

/// An accumulator per key, fed by an [`AggregateFunction`].
pub struct AggregatingState<K, T, A: AggregateFunction<T>> {
    table: Box<dyn KeyedTable<K, (), A::Acc>>,
    function: A,
}

impl<K: StateKey, T, A: AggregateFunction<T>> AggregatingState<K, T, A> {
    pub fn new(backend: &mut StateBackend, name: &str, function: A) -> Self {
        AggregatingState {
            table: backend.table(name),
            function,
        }
    }
    pub fn add(&mut self, ctx: &impl CurrentKey<K>, value: &T) {
        let f = &self.function;
        self.table.update(
            ctx.current_group(),
            ctx.current_key(),
            &(),
            &mut |slot| match slot {
                Slot::Present(acc) => {
                    f.add(value, acc);
                    SlotAction::Keep
                }
                Slot::Absent => {
                    let mut acc = f.create_accumulator();
                    f.add(value, &mut acc);
                    SlotAction::Put(acc)
                }
            },
        );
    }
    pub fn get(&self, ctx: &impl CurrentKey<K>) -> Option<A::Out> {
        self.table
            .get(ctx.current_group(), ctx.current_key(), &())
            .map(|acc| self.function.get_result(&acc))
    }
    pub fn clear(&mut self, ctx: &impl CurrentKey<K>) {
        self.table
            .remove(ctx.current_group(), ctx.current_key(), &());
    }
}
