//! Writing a shard's keyed state into a checkpoint and reading it back.
//!
//! Every piece of keyed state a shard creates — each table, each timer service
//! — is registered here under a job-wide name with the plan node that owns it
//! ([`StateRegistry`]). When a checkpoint barrier reaches that node, the node's
//! states are encoded key group by key group ([`SnapshotState`]) into a section
//! of the shard's state file ([`StateFileWriter`]). Restoring reads the sections
//! of any number of files ([`RestoreSet`]) and hands each state the key groups
//! its shard now owns, so a checkpoint can be restored with another shard count.
//!
//! Lives on its shard's core (the registry and states are `Rc<RefCell<_>>`).
//! Invariants: names are unique within a shard (a repeated name gets `#2`,
//! `#3`… in build order, the same on every run of the same plan); a section
//! holds only non-empty key groups.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::codec::{PartReader, PartWriter};
use crate::{
    CodecError, KeyGroup, KeyGroupRange, KeyedTable, MemoryTable, NamespacedMemoryTable, Slot,
    SlotAction, StateKey, StateValue,
};

/// First bytes of every state file.
const STATE_FILE_MAGIC: &[u8] = b"sluice-state v1\n";

/// The encoded entries of one key group.
pub type GroupBytes = (KeyGroup, Vec<u8>);

/// Keyed state that a checkpoint can write and restore by key group.
pub trait SnapshotState {
    /// The entries of every non-empty key group of `groups`, encoded, in group
    /// order.
    fn snapshot(&self, groups: KeyGroupRange) -> Result<Vec<GroupBytes>, CodecError>;
    /// Adds the entries that `snapshot` wrote for `group`.
    fn restore_group(&mut self, group: KeyGroup, bytes: &[u8]) -> Result<(), CodecError>;
}

/// Encodes entries as a count followed by parts; for [`SnapshotState`] impls.
pub struct EntryWriter {
    bytes: Vec<u8>,
    entries: u64,
}

impl Default for EntryWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl EntryWriter {
    pub fn new() -> Self {
        EntryWriter {
            bytes: vec![0; 8],
            entries: 0,
        }
    }

    /// Appends one entry made of `parts` (encoded in order).
    pub fn entry(
        &mut self,
        parts: &[&dyn Fn(&mut PartWriter<'_>) -> Result<(), CodecError>],
    ) -> Result<(), CodecError> {
        let mut w = PartWriter::new(&mut self.bytes);
        for part in parts {
            part(&mut w)?;
        }
        self.entries += 1;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.bytes[..8].copy_from_slice(&self.entries.to_le_bytes());
        self.bytes
    }
}

fn snapshot_entries<K: StateKey, N: StateKey, V: StateValue>(
    table: &dyn KeyedTable<K, N, V>,
    groups: KeyGroupRange,
) -> Result<Vec<GroupBytes>, CodecError> {
    let mut out = Vec::new();
    for group in groups.iter() {
        let mut entries = EntryWriter::new();
        let mut failed = Ok(());
        table.for_each_in_group(group, &mut |k, n, v| {
            if failed.is_ok() {
                failed = entries.entry(&[&|w| w.part(k), &|w| w.part(n), &|w| w.part(v)]);
            }
        });
        failed?;
        if !entries.is_empty() {
            out.push((group, entries.finish()));
        }
    }
    Ok(out)
}

fn restore_entries<K: StateKey, N: StateKey, V: StateValue>(
    table: &mut dyn KeyedTable<K, N, V>,
    group: KeyGroup,
    bytes: &[u8],
) -> Result<(), CodecError> {
    let mut r = PartReader::new(bytes);
    for _ in 0..r.count()? {
        let (k, n, v): (K, N, V) = (r.part()?, r.part()?, r.part()?);
        table.put(group, &k, &n, v);
    }
    r.finish()
}

impl<K: StateKey, N: StateKey, V: StateValue> SnapshotState for MemoryTable<K, N, V> {
    fn snapshot(&self, groups: KeyGroupRange) -> Result<Vec<GroupBytes>, CodecError> {
        snapshot_entries(self, groups)
    }
    fn restore_group(&mut self, group: KeyGroup, bytes: &[u8]) -> Result<(), CodecError> {
        restore_entries(self, group, bytes)
    }
}

impl<K: StateKey, N: StateKey, V: StateValue> SnapshotState for NamespacedMemoryTable<K, N, V> {
    fn snapshot(&self, groups: KeyGroupRange) -> Result<Vec<GroupBytes>, CodecError> {
        snapshot_entries(self, groups)
    }
    fn restore_group(&mut self, group: KeyGroup, bytes: &[u8]) -> Result<(), CodecError> {
        restore_entries(self, group, bytes)
    }
}

/// A table shared between the operator that uses it and the registry that
/// snapshots it. Each call borrows the table for its own duration only.
pub struct SharedTable<T>(pub Rc<RefCell<T>>);

impl<K, N, V, T: KeyedTable<K, N, V>> KeyedTable<K, N, V> for SharedTable<T> {
    #[inline]
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Option<V>
    where
        V: Clone,
    {
        self.0.borrow().get(group, key, namespace)
    }
    #[inline]
    fn read(&self, group: KeyGroup, key: &K, namespace: &N, f: &mut dyn FnMut(Option<&V>)) {
        self.0.borrow().read(group, key, namespace, f)
    }
    #[inline]
    fn update(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        f: &mut dyn FnMut(Slot<'_, V>) -> SlotAction<V>,
    ) {
        self.0.borrow_mut().update(group, key, namespace, f)
    }
    #[inline]
    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Option<V> {
        self.0.borrow_mut().remove(group, key, namespace)
    }
    #[inline]
    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V) {
        self.0.borrow_mut().put(group, key, namespace, value)
    }
    fn for_each_in_group(&self, group: KeyGroup, f: &mut dyn FnMut(&K, &N, &V)) {
        self.0.borrow().for_each_in_group(group, f)
    }
    fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

/// The bytes of each state's key groups, read from one or more state files.
#[derive(Default, Debug)]
pub struct RestoreSet {
    states: HashMap<String, BTreeMap<KeyGroup, Vec<u8>>>,
}

impl RestoreSet {
    /// Adds every section of the state file `bytes` (named `file` in errors),
    /// keeping only the key groups in `wanted`.
    pub fn add_file(
        &mut self,
        file: &str,
        bytes: &[u8],
        wanted: KeyGroupRange,
    ) -> Result<(), CodecError> {
        let body = bytes.strip_prefix(STATE_FILE_MAGIC).ok_or_else(|| {
            CodecError::new(format!("{file}: not a Sluice state file (bad header)"))
        })?;
        let mut r = PartReader::new(body);
        let context = |e: CodecError| CodecError::new(format!("{file}: {e}"));
        let sections = r.count().map_err(context)?;
        for _ in 0..sections {
            let name = std::str::from_utf8(r.raw().map_err(context)?)
                .map_err(|_| CodecError::new(format!("{file}: a state name is not UTF-8")))?
                .to_owned();
            let groups = r.count().map_err(context)?;
            for _ in 0..groups {
                let group = r.count().map_err(context)?;
                let group = u16::try_from(group).map(KeyGroup).map_err(|_| {
                    CodecError::new(format!(
                        "{file}: state {name}: key group {group} out of range"
                    ))
                })?;
                let data = r.raw().map_err(context)?;
                if wanted.contains(group) {
                    let previous = self
                        .states
                        .entry(name.clone())
                        .or_default()
                        .insert(group, data.to_vec());
                    if previous.is_some() {
                        return Err(CodecError::new(format!(
                            "{file}: state {name}: {group} appears twice"
                        )));
                    }
                }
            }
        }
        r.finish().map_err(context)
    }

    /// Names of the states that hold data.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.states.keys().map(String::as_str)
    }

    fn take(&mut self, name: &str) -> Option<BTreeMap<KeyGroup, Vec<u8>>> {
        self.states.remove(name)
    }
}

/// Builds one shard's state file for one checkpoint, section by section.
pub struct StateFileWriter {
    sections: u64,
    body: Vec<u8>,
}

impl Default for StateFileWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl StateFileWriter {
    pub fn new() -> Self {
        StateFileWriter {
            sections: 0,
            body: Vec::new(),
        }
    }

    /// Writes state `name`: its non-empty key groups in `groups`.
    pub fn section(
        &mut self,
        name: &str,
        state: &dyn SnapshotState,
        groups: KeyGroupRange,
    ) -> Result<(), CodecError> {
        let groups = state.snapshot(groups)?;
        let mut w = PartWriter::new(&mut self.body);
        w.bytes(name.as_bytes())?;
        w.count(groups.len() as u64);
        for (group, bytes) in &groups {
            w.count(group.0 as u64);
            w.bytes(bytes)?;
        }
        self.sections += 1;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.sections == 0
    }

    /// The file's bytes.
    pub fn finish(self) -> Vec<u8> {
        let mut file = Vec::with_capacity(STATE_FILE_MAGIC.len() + 8 + self.body.len());
        file.extend_from_slice(STATE_FILE_MAGIC);
        PartWriter::new(&mut file).count(self.sections);
        file.extend_from_slice(&self.body);
        file
    }
}

struct Registered {
    name: String,
    owner: u64,
    state: Rc<RefCell<dyn SnapshotState>>,
}

/// Every state of one shard, by name and owning plan node; see the module docs.
pub struct StateRegistry {
    groups: KeyGroupRange,
    states: Vec<Registered>,
    restore: RestoreSet,
    errors: Vec<String>,
}

impl StateRegistry {
    pub fn new(groups: KeyGroupRange, restore: RestoreSet) -> Self {
        StateRegistry {
            groups,
            states: Vec::new(),
            restore,
            errors: Vec::new(),
        }
    }

    /// Registers `state` under `name` for plan node `owner`, and fills it from
    /// the restore set if that holds the name. Returns the unique name used.
    pub fn register(
        &mut self,
        name: &str,
        owner: u64,
        state: Rc<RefCell<dyn SnapshotState>>,
    ) -> String {
        let mut unique = name.to_owned();
        let mut n = 1;
        while self.states.iter().any(|s| s.name == unique) {
            n += 1;
            unique = format!("{name}#{n}");
        }
        if let Some(groups) = self.restore.take(&unique) {
            let mut target = state.borrow_mut();
            for (group, bytes) in groups {
                if let Err(e) = target.restore_group(group, &bytes) {
                    self.errors
                        .push(format!("restoring state {unique}, {group}: {e}"));
                }
            }
        }
        self.states.push(Registered {
            name: unique.clone(),
            owner,
            state,
        });
        unique
    }

    /// Problems met while restoring, and states of the restore set that no
    /// operator claimed (the plan changed): the job must not start with them.
    pub fn restore_problems(&self) -> Vec<String> {
        let mut problems = self.errors.clone();
        let mut unclaimed: Vec<&str> = self.restore.names().collect();
        unclaimed.sort_unstable();
        problems.extend(unclaimed.into_iter().map(|name| {
            format!("the checkpoint holds state {name}, which no operator of this job has")
        }));
        problems
    }

    /// Writes the states of plan node `owner` into `file`.
    pub fn snapshot_owner(&self, owner: u64, file: &mut StateFileWriter) -> Result<(), CodecError> {
        for registered in self.states.iter().filter(|s| s.owner == owner) {
            file.section(&registered.name, &*registered.state.borrow(), self.groups)
                .map_err(|e| CodecError::new(format!("state {}: {e}", registered.name)))?;
        }
        Ok(())
    }

    /// The plan nodes that own state, each once.
    pub fn owners(&self) -> Vec<u64> {
        let mut owners: Vec<u64> = self.states.iter().map(|s| s.owner).collect();
        owners.sort_unstable();
        owners.dedup();
        owners
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::{KeyGroups, StableKey};

    type Model = BTreeMap<(u16, u8), i64>;

    /// Writes `model` as `shards` shards would: one state file per shard.
    fn files_of(model: &Model, layout_of: impl Fn(u32) -> KeyGroups, shards: u32) -> Vec<Vec<u8>> {
        let layout = layout_of(shards);
        (0..shards)
            .map(|shard| {
                let range = layout.range_of(shard);
                let mut registry = StateRegistry::new(range, RestoreSet::default());
                let key_major = Rc::new(RefCell::new(MemoryTable::<u16, u8, i64>::new("a", range)));
                let namespaced = Rc::new(RefCell::new(NamespacedMemoryTable::<u16, u8, i64>::new(
                    "b", range,
                )));
                registry.register("a", 1, key_major.clone());
                registry.register("b", 2, namespaced.clone());
                for (&(k, n), &v) in model {
                    let group = layout.key_group_of_hash(k.stable_hash());
                    if range.contains(group) {
                        key_major.borrow_mut().put(group, &k, &n, v);
                        namespaced.borrow_mut().put(group, &k, &n, v + 1);
                    }
                }
                let mut file = StateFileWriter::new();
                registry.snapshot_owner(1, &mut file).unwrap();
                registry.snapshot_owner(2, &mut file).unwrap();
                file.finish()
            })
            .collect()
    }

    proptest! {
        // State written by `from` shards and read back by `to` shards is the
        // same state, whatever the two shard counts.
        #[test]
        fn restore_redistributes_key_groups(
            entries in proptest::collection::btree_map((0u16..500, 0u8..3), any::<i64>(), 0..300),
            from in 1u32..4,
            to in 1u32..5,
        ) {
            let layout_of = |shards| KeyGroups::new(16, shards);
            let files = files_of(&entries, layout_of, from);
            let layout = layout_of(to);
            let (mut a, mut b) = (Model::new(), Model::new());
            for shard in 0..to {
                let range = layout.range_of(shard);
                let mut restore = RestoreSet::default();
                for (i, file) in files.iter().enumerate() {
                    restore.add_file(&format!("file {i}"), file, range).unwrap();
                }
                let mut registry = StateRegistry::new(range, restore);
                let key_major = Rc::new(RefCell::new(MemoryTable::<u16, u8, i64>::new("a", range)));
                let namespaced =
                    Rc::new(RefCell::new(NamespacedMemoryTable::<u16, u8, i64>::new("b", range)));
                registry.register("a", 1, key_major.clone());
                registry.register("b", 2, namespaced.clone());
                prop_assert!(registry.restore_problems().is_empty(), "{:?}", registry.restore_problems());
                for group in range.iter() {
                    key_major.borrow().for_each_in_group(group, &mut |k, n, v| { a.insert((*k, *n), *v); });
                    namespaced.borrow().for_each_in_group(group, &mut |k, n, v| { b.insert((*k, *n), *v - 1); });
                }
            }
            prop_assert_eq!(&a, &entries);
            prop_assert_eq!(&b, &entries);
        }

        // A damaged state file is an error (or, where the damage hits only
        // values, different values) — never a panic.
        #[test]
        fn damaged_state_files_never_panic(
            entries in proptest::collection::btree_map((0u16..50, 0u8..3), any::<i64>(), 1..40),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
            cut in any::<bool>(),
        ) {
            let mut file = files_of(&entries, |s| KeyGroups::new(16, s), 1).remove(0);
            let i = at.index(file.len());
            if cut { file.truncate(i); } else { file[i] ^= flip; }
            let range = KeyGroups::new(16, 1).range_of(0);
            let mut restore = RestoreSet::default();
            if restore.add_file("damaged", &file, range).is_ok() {
                let mut registry = StateRegistry::new(range, restore);
                registry.register("a", 1, Rc::new(RefCell::new(MemoryTable::<u16, u8, i64>::new("a", range))));
                registry.register("b", 2, Rc::new(RefCell::new(NamespacedMemoryTable::<u16, u8, i64>::new("b", range))));
                let _ = registry.restore_problems();
            }
        }
    }

    #[test]
    fn unclaimed_state_and_bad_header_are_named() {
        let range = KeyGroups::new(16, 1).range_of(0);
        let mut model = Model::new();
        model.insert((1, 0), 5);
        let file = files_of(&model, |s| KeyGroups::new(16, s), 1).remove(0);
        let mut restore = RestoreSet::default();
        restore.add_file("f", &file, range).unwrap();
        let mut registry = StateRegistry::new(range, restore);
        registry.register(
            "a",
            1,
            Rc::new(RefCell::new(MemoryTable::<u16, u8, i64>::new("a", range))),
        );
        let problems = registry.restore_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("state b"), "{problems:?}");
        let err = RestoreSet::default()
            .add_file("x.state", b"not a state file", range)
            .unwrap_err();
        assert!(err.to_string().contains("x.state"), "{err}");
    }
}
