//! Per-key timers of one keyed operator on one shard.
//!
//! Timers are `(time, key, namespace)` triples, deduplicated: registering the
//! same triple twice keeps one. Event-time timers fire when the watermark
//! reaches their time, in time order. Lives on its shard's core.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use sluice_state::{
    CodecError, EntryWriter, FastHashSet, GroupBytes, KeyGroup, KeyGroupRange, KeyGroups,
    PartReader, SnapshotState, StableKey, StateBackend, StateKey,
};

/// The timers themselves; shared with the state registry when registered.
struct Timers<K, N> {
    by_time: BTreeMap<i64, FastHashSet<(K, N)>>,
    len: usize,
    /// Set when registered: checkpoints write timers by the key's group.
    layout: Option<KeyGroups>,
}

pub struct TimerService<K, N> {
    timers: Rc<RefCell<Timers<K, N>>>,
}

impl<K: StateKey, N: StateKey> Default for TimerService<K, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: StateKey + StableKey, N: StateKey> TimerService<K, N> {
    /// Timers that checkpoints write (as state `name` of the backend's current
    /// owner) and a restore fills.
    pub fn registered(backend: &mut StateBackend, name: &str, layout: KeyGroups) -> Self {
        let service = Self::new();
        service.timers.borrow_mut().layout = Some(layout);
        backend.register(name, service.timers.clone());
        service
    }
}

impl<K: StateKey + StableKey, N: StateKey> SnapshotState for Timers<K, N> {
    fn snapshot(&self, groups: KeyGroupRange) -> Result<Vec<GroupBytes>, CodecError> {
        let layout = self.layout.expect("bug: snapshot of unregistered timers");
        let mut by_group: Vec<EntryWriter> = groups.iter().map(|_| EntryWriter::new()).collect();
        for (time, set) in &self.by_time {
            for (key, namespace) in set {
                let group = layout.key_group_of_hash(key.stable_hash());
                by_group[groups.offset(group)].entry(&[
                    &|w| w.part(time),
                    &|w| w.part(key),
                    &|w| w.part(namespace),
                ])?;
            }
        }
        Ok(groups
            .iter()
            .zip(by_group)
            .filter(|(_, entries)| !entries.is_empty())
            .map(|(group, entries)| (group, entries.finish()))
            .collect())
    }

    fn restore_group(&mut self, _group: KeyGroup, bytes: &[u8]) -> Result<(), CodecError> {
        let mut r = PartReader::new(bytes);
        for _ in 0..r.count()? {
            let (time, key, namespace): (i64, K, N) = (r.part()?, r.part()?, r.part()?);
            self.len += self
                .by_time
                .entry(time)
                .or_default()
                .insert((key, namespace)) as usize;
        }
        r.finish()
    }
}

impl<K: StateKey, N: StateKey> TimerService<K, N> {
    /// Timers that checkpoints do not see (tests, operators without keys).
    pub fn new() -> Self {
        TimerService {
            timers: Rc::new(RefCell::new(Timers {
                by_time: BTreeMap::new(),
                len: 0,
                layout: None,
            })),
        }
    }

    /// Registers a timer; returns false if it already existed.
    pub fn register(&mut self, time: i64, key: K, namespace: N) -> bool {
        let timers = &mut *self.timers.borrow_mut();
        let inserted = timers
            .by_time
            .entry(time)
            .or_default()
            .insert((key, namespace));
        timers.len += inserted as usize;
        inserted
    }

    /// Deletes a timer; returns false if there was none.
    pub fn delete(&mut self, time: i64, key: &K, namespace: &N) -> bool {
        let timers = &mut *self.timers.borrow_mut();
        let Some(set) = timers.by_time.get_mut(&time) else {
            return false;
        };
        // The set owns (K, N); a borrowed lookup would need an Equivalent type,
        // deletes are rare (merging windows, user code), so clone.
        let removed = set.remove(&(key.clone(), namespace.clone()));
        if set.is_empty() {
            timers.by_time.remove(&time);
        }
        timers.len -= removed as usize;
        removed
    }

    /// Removes and appends to `out` every timer with time `<= up_to`, in time order.
    pub fn pop_due(&mut self, up_to: i64, out: &mut Vec<(i64, K, N)>) {
        let timers = &mut *self.timers.borrow_mut();
        while let Some(entry) = timers.by_time.first_entry() {
            if *entry.key() > up_to {
                break;
            }
            let time = *entry.key();
            let set = entry.remove();
            timers.len -= set.len();
            out.extend(set.into_iter().map(|(k, n)| (time, k, n)));
        }
    }

    /// The earliest timer's time.
    pub fn next_time(&self) -> Option<i64> {
        self.timers.borrow().by_time.keys().next().copied()
    }

    pub fn len(&self) -> usize {
        self.timers.borrow().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_and_fires_in_time_order() {
        let mut t: TimerService<u32, ()> = TimerService::new();
        assert!(t.register(20, 1, ()));
        assert!(!t.register(20, 1, ()));
        assert!(t.register(10, 2, ()));
        assert!(t.register(30, 3, ()));
        assert!(t.delete(30, &3, &()));
        assert!(!t.delete(30, &3, &()));
        assert_eq!(t.len(), 2);
        let mut due = Vec::new();
        t.pop_due(25, &mut due);
        assert_eq!(due, vec![(10, 2, ()), (20, 1, ())]);
        assert!(t.is_empty());
    }
}
