//! The memory backend's namespace-major table: per key group, one map per
//! namespace, each from key to value.
//!
//! For namespaces that many keys share — the windows of tumbling and sliding
//! windows — this stores each namespace once instead of once per entry, so the
//! per-record map (key → value) is smaller and stays in cache. (For namespaces
//! held by one key, such as session windows, the key-major [`MemoryTable`]
//! is better: it costs no map per namespace.) Lives on its shard's core.
//! Invariants: `maps[i]` holds exactly the entries of key group
//! `groups.start + i`; no namespace maps to an empty inner map.
//!
//! [`MemoryTable`]: crate::MemoryTable

use crate::fast_hash::grow_staggered;
use crate::{FastHashMap, KeyGroup, KeyGroupRange, KeyedTable, Slot, SlotAction, StateKey};

/// Namespace-major in-memory [`KeyedTable`].
pub struct NamespacedMemoryTable<K, N, V> {
    name: String,
    groups: KeyGroupRange,
    maps: Vec<FastHashMap<N, FastHashMap<K, V>>>,
    len: usize,
}

impl<K: StateKey, N: StateKey, V> NamespacedMemoryTable<K, N, V> {
    pub fn new(name: &str, groups: KeyGroupRange) -> Self {
        NamespacedMemoryTable {
            name: name.to_owned(),
            groups,
            maps: (0..groups.len()).map(|_| FastHashMap::default()).collect(),
            len: 0,
        }
    }

    #[inline]
    fn offset(&self, group: KeyGroup) -> usize {
        assert!(
            self.groups.contains(group),
            "{group} is not owned by table {} ({:?})",
            self.name,
            self.groups
        );
        self.groups.offset(group)
    }
}

impl<K: StateKey, N: StateKey, V> KeyedTable<K, N, V> for NamespacedMemoryTable<K, N, V> {
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Option<V>
    where
        V: Clone,
    {
        self.maps[self.offset(group)]
            .get(namespace)?
            .get(key)
            .cloned()
    }

    fn read(&self, group: KeyGroup, key: &K, namespace: &N, f: &mut dyn FnMut(Option<&V>)) {
        f(self.maps[self.offset(group)]
            .get(namespace)
            .and_then(|m| m.get(key)))
    }

    #[inline]
    fn update(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        f: &mut dyn FnMut(Slot<'_, V>) -> SlotAction<V>,
    ) {
        let offset = self.offset(group);
        let outer = &mut self.maps[offset];
        match outer.get_mut(namespace) {
            Some(inner) => match inner.get_mut(key) {
                Some(value) => match f(Slot::Present(value)) {
                    SlotAction::Keep => {}
                    SlotAction::Put(new) => *value = new,
                    SlotAction::Remove => {
                        inner.remove(key);
                        self.len -= 1;
                        if inner.is_empty() {
                            outer.remove(namespace);
                        }
                    }
                },
                None => {
                    if let SlotAction::Put(new) = f(Slot::Absent) {
                        inner.insert(key.clone(), new);
                        grow_staggered(inner, group.0 as usize);
                        self.len += 1;
                    }
                }
            },
            None => {
                if let SlotAction::Put(new) = f(Slot::Absent) {
                    let mut inner = FastHashMap::default();
                    inner.insert(key.clone(), new);
                    outer.insert(namespace.clone(), inner);
                    self.len += 1;
                }
            }
        }
    }

    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Option<V> {
        let offset = self.offset(group);
        let outer = &mut self.maps[offset];
        let inner = outer.get_mut(namespace)?;
        let removed = inner.remove(key)?;
        if inner.is_empty() {
            outer.remove(namespace);
        }
        self.len -= 1;
        Some(removed)
    }

    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) {
        let offset = self.offset(group);
        let outer = &mut self.maps[offset];
        let inner = match outer.get_mut(namespace) {
            Some(inner) => inner,
            None => outer.entry(namespace.clone()).or_default(),
        };
        if inner.insert(key.clone(), value).is_none() {
            grow_staggered(inner, group.0 as usize);
            self.len += 1;
        }
    }

    fn for_each_in_group(&self, group: KeyGroup, f: &mut dyn FnMut(&K, &N, &V)) {
        for (namespace, inner) in &self.maps[self.offset(group)] {
            for (key, value) in inner {
                f(key, namespace, value);
            }
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}
