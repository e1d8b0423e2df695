//! A keyed table that checkpoints can snapshot while it keeps changing, and
//! that remembers which entries changed since its last snapshot.
//!
//! [`TrackedTable`] wraps a backend's table. A snapshot begins at a barrier
//! and is then written a key group at a time by steps, while writes go on:
//! the first write to an entry of a group not yet written first encodes that
//! entry as it was at the barrier (copy on write, per entry), and the steps
//! skip the entries so captured. Every group is thus written as it was at
//! the barrier.
//!
//! Change tracking (incremental checkpoints, memory backend) keeps, in the
//! table itself, a *mark* per entry: the change interval that last wrote it
//! ([`Marked`]). Intervals are numbered; a snapshot closes the current one.
//! The first write to an entry in an interval sets its mark and appends the
//! entry to the interval's log of writes (one append, next to a cache line
//! the write touches anyway — a separate set of changed entries cost a
//! cache miss per write); removals go to a set of removed entries, except
//! of entries the mark says were created in the same interval (absent at
//! both ends of it: no change). A snapshot of changes writes the removed
//! entries still absent, then, from the closed interval's log, the entries
//! still marked with that interval (others were written by a step already,
//! or captured by a later write).
//! Marks only ever compare equal to the interval being written or the
//! current one; entries written while tracking was off carry mark 0, which
//! no interval has.
//!
//! Lives on its shard's core. Invariants: a pending snapshot of changes
//! for interval `i` holds the log and removed set of `i`; an entry marked
//! `i` in a pending group is not written yet (a step that writes it resets
//! its mark, a write sets it to the current interval after capturing it);
//! a key leaves the removed set of `i` when its absence is written or a
//! write captures it, and before any step writes an entry of its group
//! from the log.

use std::cmp::Reverse;
use std::marker::PhantomData;

use crate::snapshot::{apply_entry_changes, restore_entries, CHANGE_TAG_DELETE, CHANGE_TAG_PUT};
use crate::{
    CodecError, EntryWriter, FastHashSet, GroupBytes, KeyGroup, KeyGroupRange, KeyedTable, Slot,
    SlotAction, SnapshotKind, SnapshotState, StateKey, StateValue,
};

/// How many entries one snapshot step writes at most (a few in unit tests,
/// so that writes land between the steps of one key group).
const CHANGES_PER_STEP: usize = if cfg!(test) { 3 } else { 4096 };
/// How many encoded bytes one step writes at most (one entry more than
/// that at worst): ~0.3 ms of encoding on this machine, so records wait no
/// longer than that behind a step.
const BYTES_PER_STEP: usize = 64 * 1024;

/// The mark of an entry no tracked interval wrote.
const UNMARKED: u64 = 0;

/// The mark of an entry written in `interval` that existed before it.
#[inline]
fn written_in(interval: u64) -> u64 {
    interval << 1
}

/// The mark of an entry created in `interval` (absent at its start).
#[inline]
fn created_in(interval: u64) -> u64 {
    interval << 1 | 1
}

/// The interval of a mark.
#[inline]
fn interval_of(mark: u64) -> u64 {
    mark >> 1
}

/// A value with the change interval that last wrote it.
pub struct Marked<V> {
    value: V,
    mark: u64,
}

/// How the inner table of a [`TrackedTable`] stores a value: plain (no
/// change tracking) or [`Marked`].
pub trait StoredValue<V> {
    fn stored(value: V, mark: u64) -> Self;
    fn value(&self) -> &V;
    fn value_mut(&mut self) -> &mut V;
    fn into_value(self) -> V;
    fn mark(&self) -> u64;
    fn set_mark(&mut self, mark: u64);
}

impl<V> StoredValue<V> for V {
    #[inline]
    fn stored(value: V, _: u64) -> Self {
        value
    }
    #[inline]
    fn value(&self) -> &V {
        self
    }
    #[inline]
    fn value_mut(&mut self) -> &mut V {
        self
    }
    #[inline]
    fn into_value(self) -> V {
        self
    }
    #[inline]
    fn mark(&self) -> u64 {
        UNMARKED
    }
    #[inline]
    fn set_mark(&mut self, _: u64) {}
}

impl<V> StoredValue<V> for Marked<V> {
    #[inline]
    fn stored(value: V, mark: u64) -> Self {
        Marked { value, mark }
    }
    #[inline]
    fn value(&self) -> &V {
        &self.value
    }
    #[inline]
    fn value_mut(&mut self) -> &mut V {
        &mut self.value
    }
    #[inline]
    fn into_value(self) -> V {
        self.value
    }
    #[inline]
    fn mark(&self) -> u64 {
        self.mark
    }
    #[inline]
    fn set_mark(&mut self, mark: u64) {
        self.mark = mark;
    }
}

/// The changes of one interval, per key group (by offset).
struct IntervalChanges<K, N> {
    /// Entries first written in the interval (once per time their mark was
    /// set: an entry removed and created again appears twice).
    written: Vec<Vec<(K, N)>>,
    /// Entries removed in the interval (some may exist again).
    removed: Vec<FastHashSet<(K, N)>>,
    /// Whether a snapshot has put the group's log in probe order (see
    /// [`KeyedTable::probe_order`]).
    ordered: Vec<bool>,
}

impl<K: StateKey, N: StateKey> IntervalChanges<K, N> {
    fn new(groups: usize, spare: &mut Vec<Vec<(K, N)>>) -> Self {
        IntervalChanges {
            written: (0..groups)
                .map(|_| spare.pop().unwrap_or_default())
                .collect(),
            removed: (0..groups).map(|_| FastHashSet::default()).collect(),
            ordered: vec![false; groups],
        }
    }
}

/// What a pending snapshot has still to write.
enum Frozen<K, N> {
    /// The changes of interval `interval`.
    Changes {
        interval: u64,
        changes: IntervalChanges<K, N>,
    },
    /// Every entry, per group: `listed` says whether `entries` lists the
    /// group's entries yet (a step lists them; entries added later were not
    /// there at the barrier). A write to a listed entry takes it out and
    /// encodes its value at the barrier; a write before the listing records
    /// the entry in `captured`, which the listing skips.
    Full {
        listed: Vec<bool>,
        entries: Vec<FastHashSet<(K, N)>>,
        captured: Vec<FastHashSet<(K, N)>>,
    },
}

/// A snapshot begun at a barrier and written by steps (see the module docs).
struct PendingSnapshot<K, N> {
    /// Per key group (by offset): not written yet.
    pending: Vec<bool>,
    /// The next group a step writes (every one before it is written).
    cursor: usize,
    frozen: Frozen<K, N>,
    entries: Vec<EntryWriter>,
    written: Vec<GroupBytes>,
    failed: Option<CodecError>,
}

/// A table that can be snapshotted while it changes, and (with [`Marked`]
/// values) remembers its changes; see the module docs.
pub struct TrackedTable<K, N, V, T, W = V> {
    table: T,
    _stored: PhantomData<fn() -> (V, W)>,
    groups: KeyGroupRange,
    snapshot: Option<PendingSnapshot<K, N>>,
    /// The changes of the current interval (`None`: not tracking, every
    /// snapshot is full).
    changes: Option<IntervalChanges<K, N>>,
    /// The current change interval (≥ 1).
    interval: u64,
    /// Logs of written snapshots, emptied, kept for their capacity.
    spare: Vec<Vec<(K, N)>>,
}

impl<K: StateKey, N: StateKey, V, T: KeyedTable<K, N, V>> TrackedTable<K, N, V, T, V> {
    /// A table whose every snapshot is full.
    pub fn new(table: T, groups: KeyGroupRange) -> Self {
        Self::with_changes(table, groups, false)
    }
}

impl<K: StateKey, N: StateKey, V, T: KeyedTable<K, N, Marked<V>>>
    TrackedTable<K, N, V, T, Marked<V>>
{
    /// A table that remembers its changes, for snapshots of changes.
    pub fn tracking(table: T, groups: KeyGroupRange) -> Self {
        Self::with_changes(table, groups, true)
    }
}

impl<K: StateKey, N: StateKey, V, T, W> TrackedTable<K, N, V, T, W> {
    fn with_changes(table: T, groups: KeyGroupRange, track: bool) -> Self {
        let mut spare = Vec::new();
        TrackedTable {
            table,
            _stored: PhantomData,
            groups,
            snapshot: None,
            changes: track.then(|| IntervalChanges::new(groups.len(), &mut spare)),
            interval: 1,
            spare,
        }
    }
}

/// Encodes one full entry.
fn encode_entry<K: StateKey, N: StateKey, V: StateValue>(
    entries: &mut EntryWriter,
    k: &K,
    n: &N,
    v: &V,
) -> Result<(), CodecError> {
    entries.entry(&[&|w| w.part(k), &|w| w.part(n), &|w| w.part(v)])
}

/// One change: the entry's value (a put) or its absence (a delete).
fn encode_change<K: StateKey, N: StateKey, V: StateValue>(
    entries: &mut EntryWriter,
    k: &K,
    n: &N,
    v: Option<&V>,
) -> Result<(), CodecError> {
    match v {
        Some(v) => entries.entry(&[
            &|w| w.tag(CHANGE_TAG_PUT),
            &|w| w.part(k),
            &|w| w.part(n),
            &|w| w.part(v),
        ]),
        None => entries.entry(&[&|w| w.tag(CHANGE_TAG_DELETE), &|w| w.part(k), &|w| {
            w.part(n)
        }]),
    }
}

impl<K, N, V, T, W> TrackedTable<K, N, V, T, W>
where
    K: StateKey,
    N: StateKey,
    V: StateValue,
    T: KeyedTable<K, N, W>,
    W: StoredValue<V>,
{
    /// Writes part of group `offset` of the pending snapshot (see
    /// [`PendingSnapshot`]): lists a full snapshot's group, or writes at most
    /// [`CHANGES_PER_STEP`] entries and about [`BYTES_PER_STEP`] bytes (the
    /// group stays pending until all are written), so a step stays short.
    fn write_group(&mut self, offset: usize) {
        let group = KeyGroup(self.groups.start + offset as u16);
        let Some(snapshot) = self.snapshot.as_mut() else {
            return;
        };
        if !snapshot.pending[offset] {
            return;
        }
        let mut entries = std::mem::take(&mut snapshot.entries[offset]);
        let budget = entries.len_bytes() + BYTES_PER_STEP;
        let mut result = Ok(());
        let complete = match &mut snapshot.frozen {
            Frozen::Full {
                listed,
                entries: frozen,
                captured,
            } if !listed[offset] => {
                let captured = std::mem::take(&mut captured[offset]);
                let frozen = &mut frozen[offset];
                self.table.for_each_in_group(group, &mut |k, n, _| {
                    let entry = (k.clone(), n.clone());
                    if captured.is_empty() || !captured.contains(&entry) {
                        frozen.insert(entry);
                    }
                });
                listed[offset] = true;
                frozen.is_empty()
            }
            Frozen::Full {
                entries: frozen, ..
            } => {
                let frozen = &mut frozen[offset];
                // Entries captured by a write are no longer listed, and the
                // ones taken out here are written before any other write.
                for (k, n) in frozen.extract_if(|_| true).take(CHANGES_PER_STEP) {
                    // Not written since the barrier (or the listing): the
                    // table holds its value at the barrier.
                    self.table.read(group, &k, &n, &mut |v| {
                        result = match v {
                            Some(v) => encode_entry(&mut entries, &k, &n, W::value(v)),
                            None => Err(CodecError::new(
                                "bug: an entry listed for a full snapshot is gone",
                            )),
                        };
                    });
                    // Leaving the iterator keeps the entries not taken yet.
                    if result.is_err() || entries.len_bytes() >= budget {
                        break;
                    }
                }
                frozen.is_empty()
            }
            Frozen::Changes { interval, changes } => {
                let interval = *interval;
                let log = &mut changes.written[offset];
                if !changes.ordered[offset] {
                    // Looked up in the table's order, the changed entries
                    // (spread over a table of GBs) are read in one sweep
                    // instead of one cache miss each; popped from the end.
                    let table = &self.table;
                    log.sort_by_cached_key(|(k, n)| Reverse(table.probe_order(group, k, n)));
                    changes.ordered[offset] = true;
                }
                let removed = &mut changes.removed[offset];
                let mut taken = 0;
                // Removals first, of entries still absent (one created
                // again is in the log, or was captured by a write). Before
                // the log: once a step has written an entry created again,
                // a later removal of it is no change of this snapshot.
                for (k, n) in removed.extract_if(|_| true).take(CHANGES_PER_STEP) {
                    taken += 1;
                    let mut absent = false;
                    self.table
                        .read(group, &k, &n, &mut |v| absent = v.is_none());
                    if absent {
                        result = encode_change::<K, N, V>(&mut entries, &k, &n, None);
                    }
                    if result.is_err() || entries.len_bytes() >= budget {
                        break;
                    }
                }
                // Then written entries: those still marked with the
                // interval hold their value at the barrier.
                while removed.is_empty()
                    && result.is_ok()
                    && taken < CHANGES_PER_STEP
                    && entries.len_bytes() < budget
                {
                    let Some((k, n)) = log.pop() else { break };
                    taken += 1;
                    self.table.update(group, &k, &n, &mut |slot| {
                        if let Slot::Present(w) = slot {
                            if interval_of(W::mark(w)) == interval {
                                result = encode_change(&mut entries, &k, &n, Some(W::value(w)));
                                W::set_mark(w, UNMARKED);
                            }
                        }
                        SlotAction::Keep
                    });
                }
                if log.is_empty() && removed.is_empty() {
                    // Keep the log's room for a later interval.
                    self.spare.push(std::mem::take(log));
                    true
                } else {
                    false
                }
            }
        };
        match result {
            Ok(()) if !complete => snapshot.entries[offset] = entries,
            Ok(()) => {
                snapshot.pending[offset] = false;
                if !entries.is_empty() {
                    snapshot.written.push((group, entries.finish_chunks()));
                }
            }
            Err(e) => {
                snapshot.pending[offset] = false;
                snapshot.failed.get_or_insert(e);
            }
        }
    }

    /// Copy on write for a pending full snapshot: before an entry of a group
    /// not yet written changes, its value at the barrier is encoded.
    fn capture_for_full(&mut self, group: KeyGroup, key: &K, namespace: &N) {
        let Some(snapshot) = self.snapshot.as_mut() else {
            return;
        };
        let Frozen::Full {
            listed,
            entries: frozen,
            captured,
        } = &mut snapshot.frozen
        else {
            return;
        };
        if !self.groups.contains(group) {
            return;
        }
        let offset = self.groups.offset(group);
        if !snapshot.pending[offset] {
            return;
        }
        let entry = (key.clone(), namespace.clone());
        if !listed[offset] {
            // Not listed yet: the listing skips captured entries.
            if !captured[offset].insert(entry) {
                return;
            }
        } else if !frozen[offset].remove(&entry) {
            // Captured entries are taken out of the entries to write, so
            // the steps that write the group do not see them again; others
            // were not there at the barrier (or the listing).
            return;
        }
        let entries = &mut snapshot.entries[offset];
        let mut result = Ok(());
        self.table.read(group, key, namespace, &mut |v| {
            if let Some(v) = v {
                result = encode_entry(entries, key, namespace, W::value(v));
            }
        });
        if let Err(e) = result {
            snapshot.failed.get_or_insert(e);
        }
    }

    /// Whether writes need more than the plain table: a snapshot pending or
    /// changes tracked.
    #[inline]
    fn plain(&self) -> bool {
        self.snapshot.is_none() && self.changes.is_none()
    }

    /// The first write to an entry in the current interval: captures it for
    /// a pending snapshot of changes (`before`: its mark and value, `None`
    /// if absent) and logs it as written.
    #[inline]
    fn first_write(
        snapshot: &mut Option<PendingSnapshot<K, N>>,
        changes: &mut Option<IntervalChanges<K, N>>,
        offset: usize,
        key: &K,
        namespace: &N,
        before: Option<(u64, &V)>,
    ) {
        if let Some(snapshot) = snapshot {
            if let Frozen::Changes {
                interval,
                changes: frozen,
            } = &mut snapshot.frozen
            {
                if snapshot.pending[offset] {
                    let removed = &mut frozen.removed[offset];
                    // A captured entry leaves the removed set (one lookup:
                    // the removal takes it out and says whether it was in).
                    let mut take_out =
                        || !removed.is_empty() && removed.remove(&(key.clone(), namespace.clone()));
                    let capture = match before {
                        // Written in the closed interval and not by a step
                        // (also removed in it, maybe, and created again).
                        Some((mark, _)) if interval_of(mark) == *interval => {
                            take_out();
                            true
                        }
                        Some(_) => false,
                        // Removed in the closed interval, not written yet.
                        None => take_out(),
                    };
                    if capture {
                        let value = before.map(|(_, v)| v);
                        if let Err(e) =
                            encode_change(&mut snapshot.entries[offset], key, namespace, value)
                        {
                            snapshot.failed.get_or_insert(e);
                        }
                    }
                }
            }
        }
        if let Some(changes) = changes {
            changes.written[offset].push((key.clone(), namespace.clone()));
        }
    }

    /// A write with tracking or a snapshot pending (see the module docs).
    fn update_tracked(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        f: &mut dyn FnMut(Slot<'_, V>) -> SlotAction<V>,
    ) {
        self.capture_for_full(group, key, namespace);
        let Some(offset) = self
            .groups
            .contains(group)
            .then(|| self.groups.offset(group))
        else {
            // Not owned: the table reports it.
            return self.update_plain(group, key, namespace, f);
        };
        let TrackedTable {
            table,
            snapshot,
            changes,
            interval,
            ..
        } = self;
        let interval = *interval;
        let mut removed = false;
        table.update(group, key, namespace, &mut |slot| match slot {
            Slot::Present(w) => {
                if interval_of(W::mark(w)) != interval {
                    let before = Some((W::mark(w), W::value(w)));
                    Self::first_write(snapshot, changes, offset, key, namespace, before);
                    W::set_mark(w, written_in(interval));
                }
                match f(Slot::Present(W::value_mut(w))) {
                    SlotAction::Keep => SlotAction::Keep,
                    SlotAction::Put(value) => {
                        *W::value_mut(w) = value;
                        SlotAction::Keep
                    }
                    SlotAction::Remove => {
                        // One created in this interval was not there at
                        // its start: no change.
                        removed = W::mark(w) != created_in(interval);
                        SlotAction::Remove
                    }
                }
            }
            Slot::Absent => match f(Slot::Absent) {
                SlotAction::Put(value) => {
                    Self::first_write(snapshot, changes, offset, key, namespace, None);
                    SlotAction::Put(W::stored(value, created_in(interval)))
                }
                SlotAction::Keep => SlotAction::Keep,
                SlotAction::Remove => SlotAction::Remove,
            },
        });
        if removed {
            if let Some(changes) = changes {
                changes.removed[offset].insert((key.clone(), namespace.clone()));
            }
        }
    }

    /// A write straight to the table (nothing tracked, nothing pending).
    #[inline]
    fn update_plain(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        f: &mut dyn FnMut(Slot<'_, V>) -> SlotAction<V>,
    ) {
        self.table
            .update(group, key, namespace, &mut |slot| match slot {
                Slot::Present(w) => match f(Slot::Present(W::value_mut(w))) {
                    SlotAction::Keep => SlotAction::Keep,
                    SlotAction::Put(value) => {
                        *W::value_mut(w) = value;
                        SlotAction::Keep
                    }
                    SlotAction::Remove => SlotAction::Remove,
                },
                Slot::Absent => match f(Slot::Absent) {
                    SlotAction::Put(value) => SlotAction::Put(W::stored(value, UNMARKED)),
                    SlotAction::Keep => SlotAction::Keep,
                    SlotAction::Remove => SlotAction::Remove,
                },
            })
    }
}

impl<K, N, V, T, W> KeyedTable<K, N, V> for TrackedTable<K, N, V, T, W>
where
    K: StateKey,
    N: StateKey,
    V: StateValue,
    T: KeyedTable<K, N, W>,
    W: StoredValue<V>,
{
    #[inline]
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Option<V>
    where
        V: Clone,
    {
        let mut value = None;
        self.table.read(group, key, namespace, &mut |w| {
            value = w.map(|w| W::value(w).clone())
        });
        value
    }
    #[inline]
    fn read(&self, group: KeyGroup, key: &K, namespace: &N, f: &mut dyn FnMut(Option<&V>)) {
        self.table
            .read(group, key, namespace, &mut |w| f(w.map(StoredValue::value)))
    }
    #[inline]
    fn update(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        f: &mut dyn FnMut(Slot<'_, V>) -> SlotAction<V>,
    ) {
        if self.plain() {
            self.update_plain(group, key, namespace, f)
        } else {
            self.update_tracked(group, key, namespace, f)
        }
    }
    #[inline]
    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Option<V> {
        if self.plain() {
            return self
                .table
                .remove(group, key, namespace)
                .map(StoredValue::into_value);
        }
        // Captures and logs the entry as any write does; the value is then
        // taken out and the removal recorded.
        self.update_tracked(group, key, namespace, &mut |_| SlotAction::Keep);
        let removed = self.table.remove(group, key, namespace)?;
        let created_here = W::mark(&removed) == created_in(self.interval);
        if let Some(changes) = self.changes.as_mut().filter(|_| !created_here) {
            if self.groups.contains(group) {
                changes.removed[self.groups.offset(group)].insert((key.clone(), namespace.clone()));
            }
        }
        Some(removed.into_value())
    }
    #[inline]
    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) {
        let mut value = Some(value);
        self.update(group, key, namespace, &mut |_| match value.take() {
            Some(value) => SlotAction::Put(value),
            None => SlotAction::Keep,
        })
    }
    fn for_each_in_group(&self, group: KeyGroup, f: &mut dyn FnMut(&K, &N, &V)) {
        self.table
            .for_each_in_group(group, &mut |k, n, w| f(k, n, W::value(w)))
    }
    #[inline]
    fn probe_order(&self, group: KeyGroup, key: &K, namespace: &N) -> u64 {
        self.table.probe_order(group, key, namespace)
    }
    fn len(&self) -> usize {
        self.table.len()
    }
}

impl<K, N, V, T, W> SnapshotState for TrackedTable<K, N, V, T, W>
where
    K: StateKey,
    N: StateKey,
    V: StateValue,
    T: KeyedTable<K, N, W>,
    W: StoredValue<V>,
{
    fn entries(&self) -> u64 {
        self.table.len() as u64
    }

    fn snapshot(
        &mut self,
        groups: KeyGroupRange,
        kind: SnapshotKind,
    ) -> Result<Vec<GroupBytes>, CodecError> {
        // Written at once: the snapshot begun, then every group in turn (a
        // snapshot still being written is superseded).
        if let Some(written) = self.begin_snapshot(groups, kind)? {
            return Ok(written);
        }
        loop {
            if let Some(written) = self.snapshot_step()? {
                return Ok(written);
            }
        }
    }
    fn restore_group(&mut self, group: KeyGroup, bytes: &[u8]) -> Result<(), CodecError> {
        // Restored entries are not changes (the next snapshot is full).
        let changes = self.changes.take();
        let result = restore_entries(self, group, bytes);
        self.changes = changes;
        result
    }
    fn apply_changes(&mut self, group: KeyGroup, bytes: &[u8]) -> Result<(), CodecError> {
        let changes = self.changes.take();
        let result = apply_entry_changes(self, group, bytes);
        self.changes = changes;
        result
    }

    fn begin_snapshot(
        &mut self,
        groups: KeyGroupRange,
        kind: SnapshotKind,
    ) -> Result<Option<Vec<GroupBytes>>, CodecError> {
        if groups != self.groups {
            return Err(CodecError::new(format!(
                "bug: a snapshot of {groups:?} asked of a table of {:?}",
                self.groups
            )));
        }
        if kind == SnapshotKind::Changes && self.changes.is_none() {
            return Err(CodecError::new(
                "bug: changes asked of a table that does not track them",
            ));
        }
        // A snapshot still pending is superseded; its logs keep their room.
        if let Some(PendingSnapshot {
            frozen: Frozen::Changes { changes, .. },
            ..
        }) = self.snapshot.take()
        {
            self.recycle(changes);
        }
        let closed = self.interval;
        // Changes from now on belong to the next interval.
        self.interval += 1;
        let fresh = || {
            groups
                .iter()
                .map(|_| FastHashSet::default())
                .collect::<Vec<_>>()
        };
        let frozen = match kind {
            SnapshotKind::Changes => {
                let next = IntervalChanges::new(groups.len(), &mut self.spare);
                let changes = self.changes.replace(next).expect("checked above");
                Frozen::Changes {
                    interval: closed,
                    changes,
                }
            }
            SnapshotKind::Full => {
                if let Some(changes) = &mut self.changes {
                    changes.written.iter_mut().for_each(Vec::clear);
                    changes.removed.iter_mut().for_each(FastHashSet::clear);
                }
                Frozen::Full {
                    listed: vec![false; groups.len()],
                    entries: fresh(),
                    captured: fresh(),
                }
            }
        };
        self.snapshot = Some(PendingSnapshot {
            pending: vec![true; groups.len()],
            cursor: 0,
            frozen,
            entries: groups.iter().map(|_| EntryWriter::new()).collect(),
            written: Vec::new(),
            failed: None,
        });
        Ok(None)
    }

    fn snapshot_step(&mut self) -> Result<Option<Vec<GroupBytes>>, CodecError> {
        let Some(snapshot) = self.snapshot.as_mut() else {
            return Ok(Some(Vec::new()));
        };
        // Skip groups a write already captured.
        while snapshot.cursor < snapshot.pending.len() && !snapshot.pending[snapshot.cursor] {
            snapshot.cursor += 1;
        }
        if snapshot.cursor < snapshot.pending.len() {
            let offset = snapshot.cursor;
            self.write_group(offset);
            return Ok(None);
        }
        let done = self.snapshot.take().expect("checked");
        if let Frozen::Changes { changes, .. } = done.frozen {
            self.recycle(changes);
        }
        if let Some(e) = done.failed {
            return Err(e);
        }
        let mut written = done.written;
        written.sort_by_key(|(group, _)| *group);
        Ok(Some(written))
    }

    fn take_finished(&mut self) -> Vec<GroupBytes> {
        (self.snapshot.as_mut())
            .map(|snapshot| std::mem::take(&mut snapshot.written))
            .unwrap_or_default()
    }

    fn abandon_snapshot(&mut self) {
        if let Some(PendingSnapshot {
            frozen: Frozen::Changes { changes, .. },
            ..
        }) = self.snapshot.take()
        {
            self.recycle(changes);
        }
    }
}

impl<K, N, V, T, W> TrackedTable<K, N, V, T, W> {
    /// Keeps the room of a closed interval's logs for later intervals.
    fn recycle(&mut self, changes: IntervalChanges<K, N>) {
        for mut log in changes.written {
            if log.capacity() > 0 {
                log.clear();
                self.spare.push(log);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    use proptest::prelude::*;

    use super::*;
    use crate::{
        KeyGroups, MemoryTable, NamespacedMemoryTable, RestoreSet, StableKey, StateFileWriter,
        StateRegistry,
    };

    type Model = BTreeMap<(u16, u8), i64>;

    #[derive(Debug, Clone)]
    enum Op {
        Put(u16, u8, i64),
        Remove(u16, u8),
        /// Adds to a present value in place; removes it when it reaches 0.
        Add(u16, u8, i64),
        /// A barrier: a snapshot of changes (or a full one when true) that
        /// steps then write, one step per later op.
        Barrier(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few keys, so entries are written, removed and created again
        // around barriers.
        prop_oneof![
            4 => (0u16..24, 0u8..2, 1i64..50).prop_map(|(k, n, v)| Op::Put(k, n, v)),
            2 => (0u16..24, 0u8..2).prop_map(|(k, n)| Op::Remove(k, n)),
            3 => (0u16..24, 0u8..2, -2i64..3).prop_map(|(k, n, d)| Op::Add(k, n, d)),
            1 => prop::bool::weighted(0.15).prop_map(Op::Barrier),
        ]
    }

    fn apply(table: &mut dyn KeyedTable<u16, u8, i64>, model: &mut Model, op: &Op) {
        let layout = KeyGroups::new(8, 1);
        let group = |k: u16| layout.key_group_of_hash(k.stable_hash());
        match *op {
            Op::Put(k, n, v) => {
                table.put(group(k), &k, &n, v);
                model.insert((k, n), v);
            }
            Op::Remove(k, n) => {
                let removed = table.remove(group(k), &k, &n);
                assert_eq!(removed, model.remove(&(k, n)));
            }
            Op::Add(k, n, d) => {
                table.update(group(k), &k, &n, &mut |slot| match slot {
                    Slot::Present(v) if *v + d == 0 => SlotAction::Remove,
                    Slot::Present(v) => {
                        *v += d;
                        SlotAction::Keep
                    }
                    Slot::Absent => SlotAction::Keep,
                });
                if let Some(v) = model.get_mut(&(k, n)) {
                    *v += d;
                    if *v == 0 {
                        model.remove(&(k, n));
                    }
                }
            }
            Op::Barrier(_) => {}
        }
    }

    /// What `chain` (a full file, then changes) restores on one shard.
    fn restore(chain: &[Vec<u8>], range: KeyGroupRange) -> Model {
        let mut set = RestoreSet::default();
        for (i, file) in chain.iter().enumerate() {
            set.add_file(&format!("file {i}"), file, range).unwrap();
        }
        let mut registry = StateRegistry::new(range, set);
        let table = Rc::new(RefCell::new(TrackedTable::tracking(
            MemoryTable::<u16, u8, Marked<i64>>::new("t", range),
            range,
        )));
        registry.register("t", 1, table.clone());
        assert!(registry.restore_problems().is_empty());
        let mut restored = Model::new();
        for g in range.iter() {
            table.borrow().for_each_in_group(g, &mut |k, n, v| {
                restored.insert((*k, *n), *v);
            });
        }
        restored
    }

    /// Runs `ops` against a tracked table, snapshots written by steps while
    /// the ops go on (one in flight, as a shard does), and checks that every
    /// chain restores the state at its last barrier.
    fn chain_restores_every_barrier<T>(table: T, ops: &[Op]) -> Result<(), TestCaseError>
    where
        T: KeyedTable<u16, u8, Marked<i64>> + 'static,
    {
        let range = KeyGroups::new(8, 1).range_of(0);
        let table = Rc::new(RefCell::new(TrackedTable::tracking(table, range)));
        let mut registry = StateRegistry::new(range, RestoreSet::default());
        registry.register("t", 1, table.clone());
        let mut model = Model::new();
        let mut chain: Vec<Vec<u8>> = Vec::new();
        // The snapshot being written, its kind and the state at its barrier.
        let mut pending = None;
        let finish = |snapshot, kind, at_barrier: &Model, chain: &mut Vec<Vec<u8>>| {
            let mut file = StateFileWriter::new(kind);
            registry.write_owner(snapshot, &mut file).unwrap();
            if kind == SnapshotKind::Full {
                chain.clear();
            }
            chain.push(file.finish().to_vec());
            prop_assert_eq!(&restore(chain, range), at_barrier);
            Ok(())
        };
        for op in ops.iter().chain([Op::Barrier(false)].iter()) {
            if let Some((snapshot, _, _)) = &mut pending {
                if registry.step_owner(snapshot).unwrap() {
                    let (snapshot, kind, at_barrier) = pending.take().expect("pending");
                    finish(snapshot, kind, &at_barrier, &mut chain)?;
                }
            }
            if let Op::Barrier(full) = *op {
                // The previous snapshot completes first (one in flight).
                if let Some((mut snapshot, kind, at_barrier)) = pending.take() {
                    while !registry.step_owner(&mut snapshot).unwrap() {}
                    finish(snapshot, kind, &at_barrier, &mut chain)?;
                }
                let kind = match full || chain.is_empty() {
                    true => SnapshotKind::Full,
                    false => SnapshotKind::Changes,
                };
                let snapshot = registry.begin_owner(1, kind, false).unwrap();
                pending = Some((snapshot, kind, model.clone()));
            } else {
                apply(&mut *table.borrow_mut(), &mut model, op);
            }
        }
        if let Some((mut snapshot, kind, at_barrier)) = pending.take() {
            while !registry.step_owner(&mut snapshot).unwrap() {}
            finish(snapshot, kind, &at_barrier, &mut chain)?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        // Marks, logs and copy on write together: each snapshot of a chain,
        // written by steps while entries are written, removed and created
        // again, restores exactly the state at its barrier.
        #[test]
        fn every_snapshot_of_a_chain_holds_its_barrier(
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let range = KeyGroups::new(8, 1).range_of(0);
            chain_restores_every_barrier(MemoryTable::new("t", range), &ops)?;
            chain_restores_every_barrier(NamespacedMemoryTable::new("t", range), &ops)?;
        }
    }

    #[test]
    fn restored_entries_are_not_changes() {
        let range = KeyGroups::new(8, 1).range_of(0);
        let mut table =
            TrackedTable::tracking(MemoryTable::<u16, u8, Marked<i64>>::new("t", range), range);
        let mut full = EntryWriter::new();
        full.entry(&[&|w| w.part(&7u16), &|w| w.part(&0u8), &|w| w.part(&5i64)])
            .unwrap();
        table.restore_group(KeyGroup(3), &full.finish()).unwrap();
        assert_eq!(table.get(KeyGroup(3), &7, &0), Some(5));
        table.begin_snapshot(range, SnapshotKind::Full).unwrap();
        while table.snapshot_step().unwrap().is_none() {}
        // Nothing written since: the changes are empty.
        table.begin_snapshot(range, SnapshotKind::Changes).unwrap();
        let mut written = None;
        while written.is_none() {
            written = table.snapshot_step().unwrap();
        }
        assert_eq!(written, Some(Vec::new()));
    }
}
