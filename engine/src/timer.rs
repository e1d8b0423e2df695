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
    PartReader, SnapshotKind, SnapshotState, StableKey, StateBackend, StateKey,
};

/// Tags of timer changes.
const PUT: u64 = 0;
const DELETE: u64 = 1;

/// Timers added and removed since the last snapshot (incremental checkpoints).
struct TimerChanges<K, N> {
    added: FastHashSet<(i64, K, N)>,
    removed: FastHashSet<(i64, K, N)>,
}

impl<K: StateKey, N: StateKey> TimerChanges<K, N> {
    fn added(&mut self, timer: (i64, K, N)) {
        // A timer removed and added again since the snapshot is unchanged.
        if !self.removed.remove(&timer) {
            self.added.insert(timer);
        }
    }
    fn removed(&mut self, timer: (i64, K, N)) {
        if !self.added.remove(&timer) {
            self.removed.insert(timer);
        }
    }
}

/// The timers themselves; shared with the state registry when registered.
struct Timers<K, N> {
    by_time: BTreeMap<i64, FastHashSet<(K, N)>>,
    len: usize,
    /// Set when registered: checkpoints write timers by the key's group.
    layout: Option<KeyGroups>,
    changes: Option<TimerChanges<K, N>>,
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
        {
            let mut timers = service.timers.borrow_mut();
            timers.layout = Some(layout);
            if backend.tracks_changes() {
                timers.changes = Some(TimerChanges {
                    added: FastHashSet::default(),
                    removed: FastHashSet::default(),
                });
            }
        }
        backend.register(name, service.timers.clone());
        service
    }
}

impl<K: StateKey + StableKey, N: StateKey> SnapshotState for Timers<K, N> {
    fn snapshot(
        &mut self,
        groups: KeyGroupRange,
        kind: SnapshotKind,
    ) -> Result<Vec<GroupBytes>, CodecError> {
        let layout = self.layout.expect("bug: snapshot of unregistered timers");
        let mut by_group: Vec<EntryWriter> = groups.iter().map(|_| EntryWriter::new()).collect();
        let group_of = |key: &K| groups.offset(layout.key_group_of_hash(key.stable_hash()));
        match (kind, &self.changes) {
            (SnapshotKind::Full, _) => {
                for (time, set) in &self.by_time {
                    for (key, namespace) in set {
                        by_group[group_of(key)].entry(&[
                            &|w| w.part(time),
                            &|w| w.part(key),
                            &|w| w.part(namespace),
                        ])?;
                    }
                }
            }
            (SnapshotKind::Changes, Some(changes)) => {
                let tagged = [(PUT, &changes.added), (DELETE, &changes.removed)];
                for (tag, timers) in tagged {
                    for (time, key, namespace) in timers {
                        by_group[group_of(key)].entry(&[
                            &|w| w.tag(tag),
                            &|w| w.part(time),
                            &|w| w.part(key),
                            &|w| w.part(namespace),
                        ])?;
                    }
                }
            }
            (SnapshotKind::Changes, None) => {
                return Err(CodecError::new(
                    "bug: changes asked of timers that do not track them",
                ))
            }
        }
        if let Some(changes) = &mut self.changes {
            changes.added.clear();
            changes.removed.clear();
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

    fn apply_changes(&mut self, _group: KeyGroup, bytes: &[u8]) -> Result<(), CodecError> {
        let mut r = PartReader::new(bytes);
        for _ in 0..r.count()? {
            let tag = r.count()?;
            let (time, key, namespace): (i64, K, N) = (r.part()?, r.part()?, r.part()?);
            match tag {
                PUT => {
                    let set = self.by_time.entry(time).or_default();
                    self.len += set.insert((key, namespace)) as usize;
                }
                DELETE => {
                    if let Some(set) = self.by_time.get_mut(&time) {
                        self.len -= set.remove(&(key, namespace)) as usize;
                        if set.is_empty() {
                            self.by_time.remove(&time);
                        }
                    }
                }
                other => return Err(CodecError::new(format!("a timer change tagged {other}"))),
            }
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
                changes: None,
            })),
        }
    }

    /// Registers a timer; returns false if it already existed.
    pub fn register(&mut self, time: i64, key: K, namespace: N) -> bool {
        let timers = &mut *self.timers.borrow_mut();
        let set = timers.by_time.entry(time).or_default();
        let inserted = match &mut timers.changes {
            Some(changes) => {
                let inserted = set.insert((key.clone(), namespace.clone()));
                if inserted {
                    changes.added((time, key, namespace));
                }
                inserted
            }
            None => set.insert((key, namespace)),
        };
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
        if let (true, Some(changes)) = (removed, &mut timers.changes) {
            changes.removed((time, key.clone(), namespace.clone()));
        }
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
            let first = out.len();
            out.extend(set.into_iter().map(|(k, n)| (time, k, n)));
            if let Some(changes) = &mut timers.changes {
                for timer in &out[first..] {
                    changes.removed(timer.clone());
                }
            }
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

#[cfg(test)]
mod snapshot_tests {
    use sluice_state::{KeyGroups, RestoreSet, StateBackendKind, StateFileWriter};

    use super::*;

    fn backend(layout: KeyGroups, restore: RestoreSet) -> StateBackend {
        let mut backend = StateBackend::new(StateBackendKind::Memory, layout.range_of(0), restore);
        backend.track_changes(true);
        backend.set_owner(1);
        backend
    }

    fn write(backend: &StateBackend, kind: SnapshotKind) -> Vec<u8> {
        let mut file = StateFileWriter::new(kind);
        backend
            .registry()
            .borrow()
            .snapshot_owner(1, &mut file)
            .unwrap();
        file.finish()
    }

    fn all(timers: &mut TimerService<u32, ()>) -> Vec<(i64, u32, ())> {
        let mut due = Vec::new();
        timers.pop_due(i64::MAX, &mut due);
        due.sort();
        due
    }

    #[test]
    fn a_full_snapshot_and_changes_restore_the_timers() {
        let layout = KeyGroups::new(8, 1);
        let mut state = backend(layout, RestoreSet::default());
        let mut timers: TimerService<u32, ()> = TimerService::registered(&mut state, "t", layout);
        for key in 0..20 {
            timers.register(100 + key as i64, key, ());
        }
        let full = write(&state, SnapshotKind::Full);
        // Changes: some fire, one is deleted, new ones come, one is re-added.
        let mut due = Vec::new();
        timers.pop_due(104, &mut due);
        assert_eq!(due.len(), 5);
        assert!(timers.delete(110, &10, &()));
        timers.register(500, 77, ());
        timers.register(101, 1, ());
        let changes = write(&state, SnapshotKind::Changes);
        assert!(
            changes.len() < full.len(),
            "changes are smaller than everything"
        );

        let mut restore = RestoreSet::default();
        restore.add_file("full", &full, layout.range_of(0)).unwrap();
        restore
            .add_file("changes", &changes, layout.range_of(0))
            .unwrap();
        let mut restored_state = backend(layout, restore);
        let mut restored: TimerService<u32, ()> =
            TimerService::registered(&mut restored_state, "t", layout);
        assert!(restored_state
            .registry()
            .borrow()
            .restore_problems()
            .is_empty());
        assert_eq!(restored.len(), timers.len());
        assert_eq!(all(&mut restored), all(&mut timers));
    }
}
