//! Keyed state handles for user functions: value, list, map, reducing and
//! aggregating state (Flink's state primitives).
//!
//! A handle owns one table of the shard's state backend and is always used with
//! a context that names the current key ([`CurrentKey`]), so user code cannot
//! touch another key's state. Lives on its shard's core.

use sluice_state::{
    FastHashMap, KeyGroup, KeyedTable, Slot, SlotAction, StateBackend, StateKey, StateMap,
    StateValue, StateVec,
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
    /// Changes the key's value in place, starting from `V::default()` when it
    /// has none, and returns what `f` returns (no copy of the value is made).
    pub fn modify<R>(&mut self, ctx: &impl CurrentKey<K>, f: impl FnOnce(&mut V) -> R) -> R
    where
        V: Default,
    {
        let mut f = Some(f);
        let mut result = None;
        self.table
            .update(ctx.current_group(), ctx.current_key(), &(), &mut |slot| {
                let f = f.take().expect("one call");
                match slot {
                    Slot::Present(value) => {
                        result = Some(f(value));
                        SlotAction::Keep
                    }
                    Slot::Absent => {
                        let mut value = V::default();
                        result = Some(f(&mut value));
                        SlotAction::Put(value)
                    }
                }
            });
        result.expect("the table calls back once")
    }
}

/// A list of values per key.
pub struct ListState<K, V> {
    table: Box<dyn KeyedTable<K, (), StateVec<V>>>,
}

impl<K: StateKey, V: StateValue + Clone> ListState<K, V> {
    pub fn new(backend: &mut StateBackend, name: &str) -> Self {
        ListState {
            table: backend.table(name),
        }
    }
    /// Appends `value` and returns the list's new length.
    pub fn add(&mut self, ctx: &impl CurrentKey<K>, value: V) -> usize {
        let mut value = Some(value);
        let mut len = 1;
        self.table.update(
            ctx.current_group(),
            ctx.current_key(),
            &(),
            &mut |slot| match slot {
                Slot::Present(StateVec(list)) => {
                    list.push(value.take().expect("one call"));
                    len = list.len();
                    SlotAction::Keep
                }
                Slot::Absent => SlotAction::Put(StateVec(vec![value.take().expect("one call")])),
            },
        );
        len
    }
    /// Removes the key's list and returns it (empty if none), without a copy.
    pub fn take(&mut self, ctx: &impl CurrentKey<K>) -> Vec<V> {
        let mut taken = Vec::new();
        self.table.update(
            ctx.current_group(),
            ctx.current_key(),
            &(),
            &mut |slot| match slot {
                Slot::Present(StateVec(list)) => {
                    taken = std::mem::take(list);
                    SlotAction::Remove
                }
                Slot::Absent => SlotAction::Keep,
            },
        );
        taken
    }
    /// A copy of the key's list (empty if none).
    pub fn get(&self, ctx: &impl CurrentKey<K>) -> Vec<V> {
        self.table
            .get(ctx.current_group(), ctx.current_key(), &())
            .unwrap_or_default()
            .0
    }
    pub fn clear(&mut self, ctx: &impl CurrentKey<K>) {
        self.table
            .remove(ctx.current_group(), ctx.current_key(), &());
    }
}

/// A map per key.
pub struct MapState<K, MK, V> {
    table: Box<dyn KeyedTable<K, (), StateMap<MK, V>>>,
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
                found = map.and_then(|m| m.0.get(map_key).cloned());
            });
        found
    }
    pub fn put(&mut self, ctx: &impl CurrentKey<K>, map_key: MK, value: V) {
        let mut entry = Some((map_key, value));
        self.table
            .update(ctx.current_group(), ctx.current_key(), &(), &mut |slot| {
                let (mk, v) = entry.take().expect("one call");
                match slot {
                    Slot::Present(StateMap(map)) => {
                        map.insert(mk, v);
                        SlotAction::Keep
                    }
                    Slot::Absent => {
                        let mut map = FastHashMap::default();
                        map.insert(mk, v);
                        SlotAction::Put(StateMap(map))
                    }
                }
            });
    }
    /// Changes the entry of `map_key` in place, starting from `V::default()`
    /// when there is none, and returns what `f` returns.
    pub fn modify<R>(
        &mut self,
        ctx: &impl CurrentKey<K>,
        map_key: MK,
        f: impl FnOnce(&mut V) -> R,
    ) -> R
    where
        V: Default,
    {
        let mut entry = Some((map_key, f));
        let mut result = None;
        self.table
            .update(ctx.current_group(), ctx.current_key(), &(), &mut |slot| {
                let (mk, f) = entry.take().expect("one call");
                match slot {
                    Slot::Present(StateMap(map)) => {
                        result = Some(f(map.entry(mk).or_default()));
                        SlotAction::Keep
                    }
                    Slot::Absent => {
                        let mut map = FastHashMap::default();
                        result = Some(f(map.entry(mk).or_default()));
                        SlotAction::Put(StateMap(map))
                    }
                }
            });
        result.expect("the table calls back once")
    }
    pub fn remove(&mut self, ctx: &impl CurrentKey<K>, map_key: &MK) -> Option<V> {
        let mut removed = None;
        self.table.update(
            ctx.current_group(),
            ctx.current_key(),
            &(),
            &mut |slot| match slot {
                Slot::Present(StateMap(map)) => {
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
    /// Calls `f` with each of the key's entries, in no order (no copy).
    pub fn for_each(&self, ctx: &impl CurrentKey<K>, mut f: impl FnMut(&MK, &V)) {
        self.table
            .read(ctx.current_group(), ctx.current_key(), &(), &mut |map| {
                for (map_key, value) in map.into_iter().flat_map(|m| m.0.iter()) {
                    f(map_key, value);
                }
            });
    }
    /// Keeps the key's entries for which `keep` holds (the key's map goes
    /// when none is left).
    pub fn retain(&mut self, ctx: &impl CurrentKey<K>, mut keep: impl FnMut(&MK, &V) -> bool) {
        self.table.update(
            ctx.current_group(),
            ctx.current_key(),
            &(),
            &mut |slot| match slot {
                Slot::Present(StateMap(map)) => {
                    map.retain(|map_key, value| keep(map_key, value));
                    if map.is_empty() {
                        SlotAction::Remove
                    } else {
                        SlotAction::Keep
                    }
                }
                Slot::Absent => SlotAction::Keep,
            },
        );
    }
    /// A copy of the key's entries.
    pub fn entries(&self, ctx: &impl CurrentKey<K>) -> Vec<(MK, V)> {
        self.table
            .get(ctx.current_group(), ctx.current_key(), &())
            .map(|m| m.0.into_iter().collect())
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

#[cfg(test)]
mod tests {
    use sluice_state::{KeyGroup, KeyGroupRange, StateBackend, StateBackendKind};

    use super::*;

    struct At(u64);

    /// A memory backend owning key group 0 (every `At` key's group).
    fn memory_backend() -> StateBackend {
        StateBackend::new(
            StateBackendKind::Memory,
            KeyGroupRange { start: 0, end: 1 },
            Default::default(),
        )
    }

    impl CurrentKey<u64> for At {
        fn current_key(&self) -> &u64 {
            &self.0
        }
        fn current_group(&self) -> KeyGroup {
            KeyGroup(0)
        }
    }

    #[test]
    fn modify_starts_from_the_default_and_changes_in_place() {
        let mut backend = memory_backend();
        let mut state: ValueState<u64, Vec<u32>> = ValueState::new(&mut backend, "v");
        let len = state.modify(&At(7), |v| {
            v.push(1);
            v.len()
        });
        assert_eq!(len, 1);
        state.modify(&At(7), |v| v.push(2));
        state.modify(&At(8), |v| v.push(3));
        assert_eq!(state.value(&At(7)), Some(vec![1, 2]));
        assert_eq!(state.value(&At(8)), Some(vec![3]));
        state.clear(&At(7));
        assert_eq!(state.value(&At(7)), None);
    }

    #[test]
    fn map_for_each_sees_the_entries_and_retain_drops_the_rest() {
        let mut backend = memory_backend();
        let mut state: MapState<u64, i64, u32> = MapState::new(&mut backend, "m");
        for (map_key, value) in [(1, 10), (2, 20), (3, 30)] {
            state.put(&At(7), map_key, value);
        }
        state.put(&At(8), 1, 99);
        let seen = |state: &MapState<u64, i64, u32>, key| {
            let mut seen = Vec::new();
            state.for_each(&At(key), |k, v| seen.push((*k, *v)));
            seen.sort();
            seen
        };
        assert_eq!(seen(&state, 7), [(1, 10), (2, 20), (3, 30)]);
        state.retain(&At(7), |k, _| *k != 2);
        assert_eq!(seen(&state, 7), [(1, 10), (3, 30)]);
        assert_eq!(seen(&state, 8), [(1, 99)], "another key's map is untouched");
        state.retain(&At(7), |_, _| false);
        assert_eq!(seen(&state, 7), []);
        assert_eq!(state.get(&At(7), &1), None);
        state.retain(&At(9), |_, _| false); // an absent key stays absent
        assert_eq!(seen(&state, 9), []);
    }

    #[test]
    fn list_add_counts_and_take_empties() {
        let mut backend = memory_backend();
        let mut state: ListState<u64, u32> = ListState::new(&mut backend, "l");
        assert_eq!(state.add(&At(1), 10), 1);
        assert_eq!(state.add(&At(1), 11), 2);
        assert_eq!(state.add(&At(2), 20), 1);
        assert_eq!(state.take(&At(1)), vec![10, 11]);
        assert_eq!(state.take(&At(1)), Vec::<u32>::new());
        assert_eq!(state.get(&At(2)), vec![20]);
    }

    #[test]
    fn map_modify_starts_from_the_default_per_map_key() {
        let mut backend = memory_backend();
        let mut state: MapState<u64, u32, u8> = MapState::new(&mut backend, "m");
        let before = state.modify(&At(1), 5, |mask| std::mem::replace(mask, *mask | 2));
        assert_eq!(before, 0);
        state.modify(&At(1), 5, |mask| *mask |= 4);
        state.modify(&At(1), 6, |mask| *mask |= 1);
        state.modify(&At(2), 5, |mask| *mask |= 8);
        assert_eq!(state.get(&At(1), &5), Some(6));
        assert_eq!(state.get(&At(1), &6), Some(1));
        assert_eq!(state.get(&At(2), &5), Some(8));
    }
}
