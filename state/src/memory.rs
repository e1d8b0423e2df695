//! The memory state backend: one hash map per key group, values as Rust objects.
//!
//! Lives on its shard's core. Lookups take the key and namespace by reference
//! (no clone, no allocation); only inserting a new entry clones them. Maps
//! grow staggered by key group ([`grow_staggered`]). Invariant: `maps[i]`
//! holds exactly the entries of key group `groups.start + i`.

use std::hash::{Hash, Hasher};

use hashbrown::Equivalent;

use crate::fast_hash::grow_staggered;
use crate::{FastHashMap, KeyGroup, KeyGroupRange, KeyedTable, Slot, SlotAction, StateKey};

/// Borrowed `(key, namespace)` that hashes and compares like the owned tuple.
struct EntryRef<'a, K, N>(&'a K, &'a N);

impl<K: Hash, N: Hash> Hash for EntryRef<'_, K, N> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must match the derived `Hash` of `(K, N)`: elements in order.
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl<K: Eq, N: Eq> Equivalent<(K, N)> for EntryRef<'_, K, N> {
    #[inline]
    fn equivalent(&self, owned: &(K, N)) -> bool {
        *self.0 == owned.0 && *self.1 == owned.1
    }
}

/// In-memory [`KeyedTable`].
pub struct MemoryTable<K, N, V> {
    name: String,
    groups: KeyGroupRange,
    maps: Vec<FastHashMap<(K, N), V>>,
    len: usize,
}

impl<K: StateKey, N: StateKey, V> MemoryTable<K, N, V> {
    pub fn new(name: &str, groups: KeyGroupRange) -> Self {
        MemoryTable {
            name: name.to_owned(),
            groups,
            maps: (0..groups.len()).map(|_| FastHashMap::default()).collect(),
            len: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn map(&self, group: KeyGroup) -> &FastHashMap<(K, N), V> {
        assert!(
            self.groups.contains(group),
            "{group} is not owned by table {} ({:?})",
            self.name,
            self.groups
        );
        &self.maps[self.groups.offset(group)]
    }

    #[inline]
    fn map_mut(&mut self, group: KeyGroup) -> &mut FastHashMap<(K, N), V> {
        assert!(
            self.groups.contains(group),
            "{group} is not owned by table {} ({:?})",
            self.name,
            self.groups
        );
        let offset = self.groups.offset(group);
        &mut self.maps[offset]
    }
}

impl<K: StateKey, N: StateKey, V> KeyedTable<K, N, V> for MemoryTable<K, N, V> {
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Option<V>
    where
        V: Clone,
    {
        self.map(group).get(&EntryRef(key, namespace)).cloned()
    }

    fn read(&self, group: KeyGroup, key: &K, namespace: &N, f: &mut dyn FnMut(Option<&V>)) {
        f(self.map(group).get(&EntryRef(key, namespace)))
    }

    #[inline]
    fn update(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        f: &mut dyn FnMut(Slot<'_, V>) -> SlotAction<V>,
    ) {
        let map = self.map_mut(group);
        let delta: isize = match map.get_mut(&EntryRef(key, namespace)) {
            Some(value) => match f(Slot::Present(value)) {
                SlotAction::Keep => 0,
                SlotAction::Put(new) => {
                    *value = new;
                    0
                }
                SlotAction::Remove => {
                    map.remove(&EntryRef(key, namespace));
                    -1
                }
            },
            None => match f(Slot::Absent) {
                SlotAction::Keep | SlotAction::Remove => 0,
                SlotAction::Put(new) => {
                    map.insert((key.clone(), namespace.clone()), new);
                    grow_staggered(map, group.0 as usize);
                    1
                }
            },
        };
        self.len = self.len.wrapping_add_signed(delta);
    }

    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Option<V> {
        let removed = self.map_mut(group).remove(&EntryRef(key, namespace));
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) {
        let map = self.map_mut(group);
        if let Some(slot) = map.get_mut(&EntryRef(key, namespace)) {
            *slot = value;
        } else {
            map.insert((key.clone(), namespace.clone()), value);
            grow_staggered(map, group.0 as usize);
            self.len += 1;
        }
    }

    fn for_each_in_group(&self, group: KeyGroup, f: &mut dyn FnMut(&K, &N, &V)) {
        for ((k, n), v) in self.map(group) {
            f(k, n, v);
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyGroups;

    #[test]
    #[should_panic(expected = "is not owned")]
    fn foreign_key_group_is_a_bug() {
        let layout = KeyGroups::new(16, 2);
        let mut table: MemoryTable<u16, (), i64> = MemoryTable::new("t", layout.range_of(0));
        table.put(KeyGroup(15), &1, &(), 1);
    }
}
