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
    PartReader, SnapshotKind, SnapshotState, StableKey, StateBackend, StateKey, CHANGE_TAG_DELETE,
    CHANGE_TAG_PUT,
};

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
    snapshot: Option<PendingTimers<K, N>>,
}

/// How many timers a snapshot step encodes.
const TIMERS_PER_STEP: usize = 16 * 1024;

/// A timer snapshot being encoded by steps: the timers (or the changes) as
/// they were at the barrier, frozen then (the changes sets taken, or the
/// timers cloned, which costs far less than encoding them), so later
/// registrations and firings do not touch it.
struct PendingTimers<K, N> {
    groups: KeyGroupRange,
    layout: KeyGroups,
    /// `(tag, time, key, namespace)`; the tag only for changes.
    frozen: Box<dyn Iterator<Item = (Option<u64>, i64, K, N)>>,
    by_group: Vec<EntryWriter>,
}

impl<K: StateKey + StableKey, N: StateKey> PendingTimers<K, N> {
    /// Encodes up to `limit` more timers; true once all are.
    fn step(&mut self, limit: usize) -> Result<bool, CodecError> {
        for _ in 0..limit {
            let Some((tag, time, key, namespace)) = self.frozen.next() else {
                return Ok(true);
            };
            let group = self
                .groups
                .offset(self.layout.key_group_of_hash(key.stable_hash()));
            let entries = &mut self.by_group[group];
            match tag {
                None => entries.entry(&[&|w| w.part(&time), &|w| w.part(&key), &|w| {
                    w.part(&namespace)
                }])?,
                Some(tag) => entries.entry(&[
                    &|w| w.tag(tag),
                    &|w| w.part(&time),
                    &|w| w.part(&key),
                    &|w| w.part(&namespace),
                ])?,
            }
        }
        Ok(false)
    }

    fn finish(self) -> Vec<GroupBytes> {
        self.groups
            .iter()
            .zip(self.by_group)
            .filter(|(_, entries)| !entries.is_empty())
            .map(|(group, entries)| (group, entries.finish_chunks()))
            .collect()
    }
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
    fn entries(&self) -> u64 {
        self.len as u64
    }

    fn snapshot(
        &mut self,
        groups: KeyGroupRange,
        kind: SnapshotKind,
    ) -> Result<Vec<GroupBytes>, CodecError> {
        // Written at once: the snapshot begun, then stepped to its end (a
        // snapshot still being written is superseded).
        self.begin_snapshot(groups, kind)?;
        loop {
            if let Some(written) = self.snapshot_step()? {
                return Ok(written);
            }
        }
    }

    fn begin_snapshot(
        &mut self,
        groups: KeyGroupRange,
        kind: SnapshotKind,
    ) -> Result<Option<Vec<GroupBytes>>, CodecError> {
        let layout = self.layout.expect("bug: snapshot of unregistered timers");
        let frozen: Box<dyn Iterator<Item = (Option<u64>, i64, K, N)>> =
            match kind {
                SnapshotKind::Full => {
                    if let Some(changes) = &mut self.changes {
                        changes.added.clear();
                        changes.removed.clear();
                    }
                    Box::new(self.by_time.clone().into_iter().flat_map(|(time, set)| {
                        set.into_iter().map(move |(k, n)| (None, time, k, n))
                    }))
                }
                SnapshotKind::Changes => {
                    let Some(changes) = &mut self.changes else {
                        return Err(CodecError::new(
                            "bug: changes asked of timers that do not track them",
                        ));
                    };
                    let added = std::mem::take(&mut changes.added);
                    let removed = std::mem::take(&mut changes.removed);
                    Box::new(
                        (added
                            .into_iter()
                            .map(|(t, k, n)| (Some(CHANGE_TAG_PUT), t, k, n)))
                        .chain(
                            removed
                                .into_iter()
                                .map(|(t, k, n)| (Some(CHANGE_TAG_DELETE), t, k, n)),
                        ),
                    )
                }
            };
        self.snapshot = Some(PendingTimers {
            groups,
            layout,
            frozen,
            by_group: groups.iter().map(|_| EntryWriter::new()).collect(),
        });
        Ok(None)
    }

    fn snapshot_step(&mut self) -> Result<Option<Vec<GroupBytes>>, CodecError> {
        let Some(pending) = self.snapshot.as_mut() else {
            return Ok(Some(Vec::new()));
        };
        let done = pending
            .step(TIMERS_PER_STEP)
            .inspect_err(|_| self.snapshot = None)?;
        match done {
            true => Ok(Some(self.snapshot.take().expect("checked").finish())),
            false => Ok(None),
        }
    }

    fn abandon_snapshot(&mut self) {
        self.snapshot = None;
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
                CHANGE_TAG_PUT => {
                    let set = self.by_time.entry(time).or_default();
                    self.len += set.insert((key, namespace)) as usize;
                }
                CHANGE_TAG_DELETE => {
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
                snapshot: None,
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
        file.finish().to_vec()
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

    /// Begins a snapshot of `kind`, runs `meanwhile` after its first step
    /// (the timers change while it is written), then steps it to its end.
    fn write_by_steps(
        backend: &StateBackend,
        kind: SnapshotKind,
        meanwhile: impl FnOnce(),
    ) -> Vec<u8> {
        let registry = backend.registry();
        let mut snapshot = registry.borrow().begin_owner(1, kind, false).unwrap();
        assert!(!registry.borrow().step_owner(&mut snapshot).unwrap());
        meanwhile();
        let mut steps = 0;
        while !registry.borrow().step_owner(&mut snapshot).unwrap() {
            steps += 1;
            assert!(steps < 100, "the snapshot never completes");
        }
        let mut file = StateFileWriter::new(kind);
        registry.borrow().write_owner(snapshot, &mut file).unwrap();
        file.finish().to_vec()
    }

    #[test]
    fn snapshots_written_by_steps_hold_the_timers_as_at_their_barrier() {
        let layout = KeyGroups::new(8, 1);
        let state = &mut backend(layout, RestoreSet::default());
        let timers = &mut TimerService::<u32, ()>::registered(state, "t", layout);
        for key in 0..40_000 {
            timers.register(100 + (key % 50) as i64, key, ());
        }
        let mut expected = TimerService::<u32, ()>::new();
        for (time, key, ()) in all(&mut clone_of(timers)) {
            expected.register(time, key, ());
        }
        let full = write_by_steps(state, SnapshotKind::Full, || {
            let mut due = Vec::new();
            timers.pop_due(120, &mut due);
            timers.register(1_000, 7, ());
        });
        let at_second_barrier = all(&mut clone_of(timers));
        let changes = write_by_steps(state, SnapshotKind::Changes, || {
            timers.register(2_000, 8, ());
            assert!(timers.delete(1_000, &7, &()));
        });
        let restored_from = |files: &[(&str, &Vec<u8>)]| {
            let mut restore = RestoreSet::default();
            for (name, file) in files {
                restore.add_file(name, file, layout.range_of(0)).unwrap();
            }
            let mut restored_state = backend(layout, restore);
            let mut restored =
                TimerService::<u32, ()>::registered(&mut restored_state, "t", layout);
            all(&mut restored)
        };
        assert_eq!(restored_from(&[("full", &full)]), all(&mut expected));
        assert_eq!(
            restored_from(&[("full", &full), ("changes", &changes)]),
            at_second_barrier
        );
    }

    /// An unregistered copy of `timers` (to read them without firing them).
    fn clone_of(timers: &TimerService<u32, ()>) -> TimerService<u32, ()> {
        let copy = TimerService::new();
        copy.timers.borrow_mut().by_time = timers.timers.borrow().by_time.clone();
        copy.timers.borrow_mut().len = timers.len();
        copy
    }
}
