//! The memory backend's namespace-major table: per key group, one map per
//! namespace, each from key to value.
//!
//! For namespaces that many keys share — the windows of tumbling and sliding
//! windows — this stores each namespace once instead of once per entry, so the
//! per-record map (key → value) is smaller and stays in cache. (For namespaces
//! held by one key, such as session windows, the key-major [`MemoryTable`]
//! is better: it costs no map per namespace.) A key group holds few
//! namespaces at a time (the open windows, or a sliding window's panes), so
//! it keeps them in a vector searched newest first — no hash of the
//! namespace, one cache line less per record than a map of maps — and
//! switches to a map past [`FEW_NAMESPACES`]. Lives on its shard's core.
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
    maps: Vec<GroupNamespaces<N, FastHashMap<K, V>>>,
    len: usize,
}

/// How many namespaces a key group keeps in a vector before it switches
/// to a map: a scan of this many beats a hash and a probe.
const FEW_NAMESPACES: usize = 8;

/// One key group's namespaces and what each holds.
enum GroupNamespaces<N, M> {
    /// In order of creation: records mostly go to the newest.
    Few(Vec<(N, M)>),
    Many(FastHashMap<N, M>),
}

impl<N: StateKey, M> Default for GroupNamespaces<N, M> {
    fn default() -> Self {
        GroupNamespaces::Few(Vec::new())
    }
}

impl<N: StateKey, M> GroupNamespaces<N, M> {
    #[inline]
    fn get(&self, namespace: &N) -> Option<&M> {
        match self {
            GroupNamespaces::Few(few) => few
                .iter()
                .rev()
                .find(|(n, _)| n == namespace)
                .map(|(_, m)| m),
            GroupNamespaces::Many(many) => many.get(namespace),
        }
    }

    #[inline]
    fn get_mut(&mut self, namespace: &N) -> Option<&mut M> {
        match self {
            GroupNamespaces::Few(few) => few
                .iter_mut()
                .rev()
                .find(|(n, _)| n == namespace)
                .map(|(_, m)| m),
            GroupNamespaces::Many(many) => many.get_mut(namespace),
        }
    }

    /// Adds `namespace`, which must be absent.
    fn insert_new(&mut self, namespace: N, inner: M) -> &mut M {
        if let GroupNamespaces::Few(few) = self {
            if few.len() == FEW_NAMESPACES {
                let many: FastHashMap<N, M> = std::mem::take(few).into_iter().collect();
                *self = GroupNamespaces::Many(many);
            }
        }
        match self {
            GroupNamespaces::Few(few) => {
                few.push((namespace, inner));
                &mut few.last_mut().expect("just pushed").1
            }
            GroupNamespaces::Many(many) => many.entry(namespace).insert(inner).into_mut(),
        }
    }

    fn remove(&mut self, namespace: &N) -> Option<M> {
        match self {
            GroupNamespaces::Few(few) => {
                let at = few.iter().position(|(n, _)| n == namespace)?;
                // Keeps creation order: the newest stay at the end.
                Some(few.remove(at).1)
            }
            GroupNamespaces::Many(many) => {
                let removed = many.remove(namespace);
                if many.is_empty() {
                    *self = GroupNamespaces::default();
                }
                removed
            }
        }
    }

    fn for_each(&self, f: &mut dyn FnMut(&N, &M)) {
        match self {
            GroupNamespaces::Few(few) => few.iter().for_each(|(n, m)| f(n, m)),
            GroupNamespaces::Many(many) => many.iter().for_each(|(n, m)| f(n, m)),
        }
    }
}

impl<K: StateKey, N: StateKey, V> NamespacedMemoryTable<K, N, V> {
    pub fn new(name: &str, groups: KeyGroupRange) -> Self {
        NamespacedMemoryTable {
            name: name.to_owned(),
            groups,
            maps: (0..groups.len())
                .map(|_| GroupNamespaces::default())
                .collect(),
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
                    outer.insert_new(namespace.clone(), inner);
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
        let inner = match outer.get(namespace).is_some() {
            true => outer.get_mut(namespace).expect("present"),
            false => outer.insert_new(namespace.clone(), FastHashMap::default()),
        };
        if inner.insert(key.clone(), value).is_none() {
            grow_staggered(inner, group.0 as usize);
            self.len += 1;
        }
    }

    fn for_each_in_group(&self, group: KeyGroup, f: &mut dyn FnMut(&K, &N, &V)) {
        self.maps[self.offset(group)].for_each(&mut |namespace, inner| {
            for (key, value) in inner {
                f(key, namespace, value);
            }
        });
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyGroups;

    /// Many namespaces in one key group, added and removed in an order
    /// unlike their creation: the group moves from a vector to a map and
    /// back, and reads always agree with a model.
    #[test]
    fn a_group_past_few_namespaces_keeps_every_entry() {
        let layout = KeyGroups::new(1, 1);
        let range = layout.range_of(0);
        let group = range.iter().next().expect("one group");
        let mut table = NamespacedMemoryTable::<u32, u32, u64>::new("t", range);
        let mut model = std::collections::BTreeMap::new();
        let check = |table: &NamespacedMemoryTable<u32, u32, u64>,
                     model: &std::collections::BTreeMap<(u32, u32), u64>| {
            let mut seen = std::collections::BTreeMap::new();
            table.for_each_in_group(group, &mut |k, n, v| {
                seen.insert((*k, *n), *v);
            });
            assert_eq!(&seen, model);
            assert_eq!(table.len(), model.len());
            for (&(k, n), &v) in model {
                assert_eq!(table.get(group, &k, &n), Some(v));
            }
        };
        for round in 0..3u32 {
            for n in 0..(3 * FEW_NAMESPACES as u32) {
                for k in 0..4 {
                    let value = u64::from(round * 1000 + n * 10 + k);
                    table.update(group, &k, &n, &mut |slot| match slot {
                        Slot::Present(v) => SlotAction::Put(*v + 1),
                        Slot::Absent => SlotAction::Put(value),
                    });
                    match model.get_mut(&(k, n)) {
                        Some(v) => *v += 1,
                        None => drop(model.insert((k, n), value)),
                    }
                }
            }
            check(&table, &model);
            // Drop every other namespace, oldest last.
            for n in (0..(3 * FEW_NAMESPACES as u32)).rev().step_by(2) {
                for k in 0..4 {
                    assert_eq!(table.remove(group, &k, &n), model.remove(&(k, n)));
                }
            }
            check(&table, &model);
        }
        for ((k, n), v) in std::mem::take(&mut model) {
            assert_eq!(table.remove(group, &k, &n), Some(v));
        }
        check(&table, &model);
        assert!(matches!(&table.maps[0], GroupNamespaces::Few(few) if few.is_empty()));
    }
}
