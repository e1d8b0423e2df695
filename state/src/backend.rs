//! The keyed state backend contract.
//!
//! A backend stores, per shard, tables of `(key, namespace) -> value` organized
//! by key group. The namespace is what Flink calls it too: the window a value
//! belongs to, or `()` for plain keyed state. Operators see tables only through
//! [`KeyedTable`], so the memory backend and the RocksDB backend (which stores
//! serialized bytes under `key group | key | namespace`) are interchangeable.
//!
//! Lives on one shard's core (`!Send` by use). Invariant: a table holds only keys
//! of the key groups its shard owns; every call names the key's group, which the
//! caller computed with the job's [`KeyGroups`](crate::KeyGroups).

use std::cell::RefCell;
use std::hash::Hash;
use std::path::PathBuf;
use std::rc::Rc;

use crate::rocks_backend::{RocksInstance, RocksResources, RocksTable};

use crate::{
    KeyGroup, KeyGroupRange, MemoryTable, NamespacedMemoryTable, RestoreSet, SharedTable,
    SnapshotState, StateCodec, StateRegistry, TrackedTable,
};

/// What a state key must offer: hashing and equality within a shard, and cloning
/// when a new entry is created.
/// Encodable ([`StateCodec`]) so checkpoints can write it.
pub trait StateKey: Hash + Eq + Clone + StateCodec {}
impl<T: Hash + Eq + Clone + StateCodec> StateKey for T {}

/// What a state value must offer: encodable ([`StateCodec`]) so checkpoints can
/// write it.
pub trait StateValue: StateCodec {}
impl<T: StateCodec> StateValue for T {}

/// The slot of one `(key, namespace)` in a table, handed to an update closure.
pub enum Slot<'a, V> {
    Present(&'a mut V),
    Absent,
}

/// What an update closure decides for its slot.
pub enum SlotAction<V> {
    /// Leave the slot as it is (a present value may have been changed in place).
    Keep,
    /// Store this value (insert or replace).
    Put(V),
    /// Remove the entry.
    Remove,
}

/// One table of keyed state on one shard. Object-safe, so operators can hold a
/// `Box<dyn KeyedTable<..>>` from whichever backend the job chose.
pub trait KeyedTable<K, N, V> {
    /// Reads a copy of the value.
    fn get(&self, group: KeyGroup, key: &K, namespace: &N) -> Option<V>
    where
        V: Clone;

    /// Calls `f` with a reference to the value, without copying it.
    fn read(&self, group: KeyGroup, key: &K, namespace: &N, f: &mut dyn FnMut(Option<&V>));

    /// Calls `f` with the slot of `(key, namespace)` and applies its decision.
    /// The one call that reads and writes, so read-modify-write costs one lookup.
    fn update(
        &mut self,
        group: KeyGroup,
        key: &K,
        namespace: &N,
        f: &mut dyn FnMut(Slot<'_, V>) -> SlotAction<V>,
    );

    /// Removes and returns the value.
    fn remove(&mut self, group: KeyGroup, key: &K, namespace: &N) -> Option<V>;

    /// Stores a value.
    fn put(&mut self, group: KeyGroup, key: &K, namespace: &N, value: V);

    /// Visits every entry of one key group (order unspecified).
    fn for_each_in_group(&self, group: KeyGroup, f: &mut dyn FnMut(&K, &N, &V));

    /// Number of entries in the table.
    fn len(&self) -> usize;
    /// Where a lookup of `(key, namespace)` starts, as a number that orders
    /// lookups by the memory they touch: looking many entries up in this
    /// order sweeps the table instead of jumping around it. By default 0
    /// (no order helps).
    #[inline]
    fn probe_order(&self, group: KeyGroup, key: &K, namespace: &N) -> u64 {
        let _ = (group, key, namespace);
        0
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which backend a job uses (`state.backend` in the job file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateBackendKind {
    /// Hash tables on the shard's heap.
    #[default]
    Memory,
    /// RocksDB on the shard's local disk (see [`rocks_backend`](crate::rocks_backend)).
    RocksDb,
}

impl StateBackendKind {
    /// Its name in job files.
    pub fn name(self) -> &'static str {
        match self {
            StateBackendKind::Memory => "memory",
            StateBackendKind::RocksDb => "rocksdb",
        }
    }
}

/// The state backend of one shard: creates the tables its operators ask for,
/// and registers each with the shard's [`StateRegistry`] (under the plan node
/// being built) so checkpoints can write it and a restore can fill it.
pub struct StateBackend {
    kind: StateBackendKind,
    groups: KeyGroupRange,
    registry: Rc<RefCell<StateRegistry>>,
    owner: u64,
    track_changes: bool,
    /// RocksDB: the shard's directory and shared cache (set before the first table).
    rocks: Option<RocksResources>,
}

impl StateBackend {
    /// A backend for `groups`, filled from `restore` as states are created.
    pub fn new(kind: StateBackendKind, groups: KeyGroupRange, restore: RestoreSet) -> Self {
        StateBackend {
            kind,
            groups,
            registry: Rc::new(RefCell::new(StateRegistry::new(groups, restore))),
            owner: 0,
            track_changes: false,
            rocks: None,
        }
    }

    /// Where shard `shard` keeps RocksDB instances (required before a table
    /// of the RocksDB backend is created).
    pub fn set_local_directory(&mut self, directory: PathBuf, shard: u32) {
        self.rocks = Some(RocksResources::new(directory, shard));
    }

    /// States created from now on remember what changed between snapshots
    /// (for incremental checkpoints; memory tables then keep a change mark
    /// per entry and log each entry's first write between snapshots).
    pub fn track_changes(&mut self, track: bool) {
        self.track_changes = track;
    }

    /// Whether states track their changes.
    pub fn tracks_changes(&self) -> bool {
        self.track_changes
    }

    pub fn kind(&self) -> StateBackendKind {
        self.kind
    }

    pub fn key_groups(&self) -> KeyGroupRange {
        self.groups
    }

    /// States created from now on belong to plan node `owner`.
    pub fn set_owner(&mut self, owner: u64) {
        self.owner = owner;
    }

    /// The shard's registry of states (shared with the checkpoint hooks).
    pub fn registry(&self) -> Rc<RefCell<StateRegistry>> {
        self.registry.clone()
    }

    /// Registers a state that is not a table (timers), restoring it if the
    /// restore set holds `name`.
    pub fn register(&mut self, name: &str, state: Rc<RefCell<dyn SnapshotState>>) {
        self.registry.borrow_mut().register(name, self.owner, state);
    }

    /// Registers `table` under `name` and hands it to the operator that
    /// asked for it.
    fn shared<K, N, V, T>(&mut self, name: &str, table: T) -> Box<dyn KeyedTable<K, N, V>>
    where
        T: KeyedTable<K, N, V> + SnapshotState + 'static,
    {
        let table = Rc::new(RefCell::new(table));
        self.register(name, table.clone());
        Box::new(SharedTable(table))
    }

    /// Creates the table `name` (names are unique per job; the RocksDB backend
    /// maps each to a column family).
    pub fn table<K: StateKey, N: StateKey, V: StateValue>(
        &mut self,
        name: &str,
    ) -> Box<dyn KeyedTable<K, N, V>> {
        match self.kind {
            StateBackendKind::Memory if self.track_changes => {
                let table = MemoryTable::new(name, self.groups);
                self.shared(name, TrackedTable::tracking(table, self.groups))
            }
            StateBackendKind::Memory => {
                let table = MemoryTable::new(name, self.groups);
                self.shared(name, TrackedTable::new(table, self.groups))
            }
            StateBackendKind::RocksDb => self.rocks_table(name),
        }
    }

    /// The current owner's RocksDB instance, opened (and restored) on first use.
    fn instance(&mut self) -> Result<Rc<RocksInstance>, String> {
        let mut registry = self.registry.borrow_mut();
        if let Some(instance) = registry.instance(self.owner) {
            return Ok(instance);
        }
        let resources = self
            .rocks
            .as_ref()
            .ok_or_else(|| "bug: the RocksDB backend was given no local directory".to_owned())?;
        let restore = registry.take_natives(self.owner);
        let instance = Rc::new(RocksInstance::open(
            resources,
            self.owner,
            self.groups,
            restore,
        )?);
        registry.add_instance(self.owner, instance.clone());
        Ok(instance)
    }

    fn rocks_table<K: StateKey, N: StateKey, V: StateValue>(
        &mut self,
        name: &str,
    ) -> Box<dyn KeyedTable<K, N, V>> {
        let unique = self.registry.borrow().unique_name(name);
        let table = self
            .instance()
            .and_then(|instance| RocksTable::new(instance, &unique));
        match table {
            Ok(table) => {
                // Checkpointed natively; tracking would only cost.
                let table = Rc::new(RefCell::new(TrackedTable::new(table, self.groups)));
                self.registry
                    .borrow_mut()
                    .register_native(&unique, self.owner, table.clone());
                Box::new(SharedTable(table))
            }
            Err(e) => {
                // The job does not start (the builder checks the registry's
                // problems); a memory table lets the build finish first.
                self.registry
                    .borrow_mut()
                    .add_problem(format!("RocksDB state {unique}: {e}"));
                let table = MemoryTable::new(name, self.groups);
                self.shared(name, TrackedTable::new(table, self.groups))
            }
        }
    }

    /// Like [`table`](Self::table), for namespaces that many keys share (the
    /// windows of fixed-size windows): the memory backend then stores each
    /// namespace once. Backends that serialize keys treat it as `table`.
    pub fn namespaced_table<K: StateKey, N: StateKey, V: StateValue>(
        &mut self,
        name: &str,
    ) -> Box<dyn KeyedTable<K, N, V>> {
        match self.kind {
            StateBackendKind::Memory if self.track_changes => {
                let table = NamespacedMemoryTable::new(name, self.groups);
                self.shared(name, TrackedTable::tracking(table, self.groups))
            }
            StateBackendKind::Memory => {
                let table = NamespacedMemoryTable::new(name, self.groups);
                self.shared(name, TrackedTable::new(table, self.groups))
            }
            StateBackendKind::RocksDb => self.rocks_table(name),
        }
    }
}
