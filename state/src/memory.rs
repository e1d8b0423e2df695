//! The memory state backend: one open-addressing table per key group,
//! values as Rust objects stored inline ([`OpenTable`]).
//!
//! Lives on its shard's core. Lookups take the key and namespace by reference
//! (no clone, no allocation); only inserting a new entry clones them. Tables
//! grow incrementally (a few entries moved per insert), staggered by key
//! group. Invariant: `maps[i]` holds exactly the entries of key group
//! `groups.start + i`.

use std::hash::{Hash, Hasher};

use crate::open_table::OpenTable;
use crate::{FastHasher, KeyGroup, KeyGroupRange, KeyedTable, Slot, SlotAction, StateKey};

/// The in-shard hash of `(key, namespace)`.
#[inline]
pub(crate) fn entry_hash<K: Hash, N: Hash>(key: &K, namespace: &N) -> u64 {
    let mut hasher = FastHasher::default();
    key.hash(&mut hasher);
    namespace.hash(&mut hasher);
    hasher.finish()
}

/// In-memory [`KeyedTable`].
pub struct MemoryTable<K, N, V> {
    name: String,
    groups: KeyGroupRange,
    maps: Vec<OpenTable<(K, N), V>>,
    len: usize,
}

impl<K: StateKey, N: StateKey, V> MemoryTable<K, N, V> {
    pub fn new(name: &str, groups: KeyGroupRange) -> Self {
        MemoryTable {
            name: name.to_owned(),
            groups,
            maps: (0..groups.len()).map(OpenTable::staggered).collect(),
            len: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    #[inline]
    fn map(&self, group: KeyGroup) -> &OpenTable<(K, N), V> {
        assert!(
            self.groups.contains(group),
            "{group} is not owned by table {} ({:?})",
            self.name,
            self.groups
        );
        &self.maps[self.groups.offset(group)]
    }

    #[inline]
    fn map_mut(&mut self, group: KeyGroup) -> &mut OpenTable<(K, N), V> {
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
        let hash = entry_hash(key, namespace);
        self.map(group)
            .get(hash, |(k, n)| k == key && n == namespace)
            .cloned()
    }

    fn read(&self, group: KeyGroup, key: &K, namespace: &N, f: &mut dyn FnMut(Option<&V>)) {
        let hash = entry_hash(key, namespace);
        f(self
            .map(group)
            .get(hash, |(k, n)| k == key && n == namespace))
    }

    #[inline]
    fn update(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        f: &mut dyn FnMut(Slot<'_, V>) -> SlotAction<V>,
    ) {
        let hash = entry_hash(key, namespace);
        let map = self.map_mut(group);
        match map.find(hash, |(k, n)| k == key && n == namespace) {
            Some(position) => match f(Slot::Present(map.value_mut(position))) {
                SlotAction::Keep => {}
                SlotAction::Put(new) => *map.value_mut(position) = new,
                SlotAction::Remove => {
                    map.remove_at(position);
                    self.len -= 1;
                }
            },
            None => {
                if let SlotAction::Put(new) = f(Slot::Absent) {
                    map.insert_new(hash, (key.clone(), namespace.clone()), new);
                    self.len += 1;
                }
            }
        }
    }

    #[inline]
    fn probe_order(&self, group: KeyGroup, key: &K, namespace: &N) -> u64 {
        self.map(group).home(entry_hash(key, namespace)) as u64
    }

    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Option<V> {
        let hash = entry_hash(key, namespace);
        let map = self.map_mut(group);
        let position = map.find(hash, |(k, n)| k == key && n == namespace)?;
        let (_, removed) = map.remove_at(position);
        self.len -= 1;
        Some(removed)
    }

    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) {
        let hash = entry_hash(key, namespace);
        let map = self.map_mut(group);
        match map.find(hash, |(k, n)| k == key && n == namespace) {
            Some(position) => *map.value_mut(position) = value,
            None => {
                map.insert_new(hash, (key.clone(), namespace.clone()), value);
                self.len += 1;
            }
        }
    }

    fn for_each_in_group(&self, group: KeyGroup, f: &mut dyn FnMut(&K, &N, &V)) {
        for ((k, n), v) in self.map(group).iter() {
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
