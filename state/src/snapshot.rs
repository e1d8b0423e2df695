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
//! A state file is *full* (every entry) or holds the *changes* since the
//! shard's previous file (puts and deletes, for incremental checkpoints):
//! states created with change tracking ([`TrackedTable`], registered timers)
//! remember which entries changed since their last snapshot. Restoring
//! applies a shard's chain in order: its last full file, then the changes.
//!
//! States stored in RocksDB are marked native: regular checkpoints take
//! them with their instance's own checkpoint (see
//! [`rocks_backend`](crate::rocks_backend)); savepoints and final parts write
//! them into sections like any other state, so those restore on any backend.
//!
//! Lives on its shard's core (the registry and states are `Rc<RefCell<_>>`).
//! Invariants: names are unique within a shard (a repeated name gets `#2`,
//! `#3`… in build order, the same on every run of the same plan); a section
//! holds only non-empty key groups; every snapshot, full or not, starts the
//! tracking of changes afresh.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::codec::{PartReader, PartWriter};
use crate::rocks_backend::{NativeRestore, PendingNative, RocksInstance};
use crate::{
    CodecError, KeyGroup, KeyGroupRange, KeyedTable, Slot, SlotAction, StateKey, StateValue,
};

/// First bytes of a full state file and of a file of changes (format 2:
/// fragments, each tagged, then an end record; see [`StateFileWriter`]).
const FULL_FILE_MAGIC: &[u8] = b"sluice-state v2\n";
const CHANGES_FILE_MAGIC: &[u8] = b"sluice-changes v2\n";
/// The same in format 1 (before streaming: a section count after the magic,
/// then the sections), still read.
const FULL_FILE_MAGIC_V1: &[u8] = b"sluice-state v1\n";
const CHANGES_FILE_MAGIC_V1: &[u8] = b"sluice-changes v1\n";
/// The tag before each fragment of a format-2 file, and before its end.
const FRAGMENT_TAG: u64 = 1;
const END_TAG: u64 = 0;

/// What a snapshot writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// Every entry.
    Full,
    /// The entries changed since the state's previous snapshot.
    Changes,
}

/// The tag (first part) of a change entry that puts an entry, in every
/// state's change files (keyed state here, timers in the engine).
pub const CHANGE_TAG_PUT: u64 = 0;
/// The tag of a change entry that removes an entry.
pub const CHANGE_TAG_DELETE: u64 = 1;

/// The encoded entries of one key group, in chunks (their concatenation is
/// the group's bytes in a state file).
pub type GroupBytes = (KeyGroup, Vec<Vec<u8>>);

/// Keyed state that a checkpoint can write and restore by key group.
pub trait SnapshotState {
    /// The entries (`Full`) or the changes since the previous snapshot
    /// (`Changes`) of every non-empty key group of `groups`, encoded, in group
    /// order. Either way, tracking of changes starts afresh.
    fn snapshot(
        &mut self,
        groups: KeyGroupRange,
        kind: SnapshotKind,
    ) -> Result<Vec<GroupBytes>, CodecError>;
    /// Adds the entries that a `Full` snapshot wrote for `group`.
    fn restore_group(&mut self, group: KeyGroup, bytes: &[u8]) -> Result<(), CodecError>;
    /// Applies the changes that a `Changes` snapshot wrote for `group`.
    fn apply_changes(&mut self, group: KeyGroup, bytes: &[u8]) -> Result<(), CodecError>;

    /// How many entries it holds now (RocksDB's estimate for its tables).
    fn entries(&self) -> u64;

    /// Starts a snapshot that may be written later, a key group at a time
    /// ([`snapshot_step`](Self::snapshot_step)) while the state keeps
    /// changing: it must capture the state as it is now. Returns the result
    /// at once when the state writes it synchronously (the default).
    fn begin_snapshot(
        &mut self,
        groups: KeyGroupRange,
        kind: SnapshotKind,
    ) -> Result<Option<Vec<GroupBytes>>, CodecError> {
        self.snapshot(groups, kind).map(Some)
    }

    /// Writes one more key group of the snapshot begun; returns the whole
    /// snapshot once every group is written.
    fn snapshot_step(&mut self) -> Result<Option<Vec<GroupBytes>>, CodecError> {
        Ok(Some(Vec::new()))
    }

    /// The key groups of the snapshot in progress written completely since
    /// the last call (any order); the final result of
    /// [`snapshot_step`](Self::snapshot_step) holds only the rest. Lets the
    /// groups go to storage while the others are still being written. By
    /// default none (everything comes at the end).
    fn take_finished(&mut self) -> Vec<GroupBytes> {
        Vec::new()
    }

    /// Drops a snapshot begun and not finished (its checkpoint was dropped).
    fn abandon_snapshot(&mut self) {}
}

/// Writes one part of an entry.
pub type EntryPart<'f> = &'f dyn Fn(&mut PartWriter<'_>) -> Result<(), CodecError>;

/// How many bytes an [`EntryWriter`] chunk holds before the next entry
/// starts a new one (a few in unit tests, so that groups span chunks).
const ENTRY_CHUNK_BYTES: usize = if cfg!(test) { 48 } else { 64 * 1024 };

/// Encodes entries as a count followed by parts; for [`SnapshotState`] impls.
///
/// Large outputs are kept in chunks of about [`ENTRY_CHUNK_BYTES`] (an
/// entry never spans two), so a key group of megabytes is never copied to
/// grow its buffer: a state file takes the chunks as they are.
pub struct EntryWriter {
    /// Chunks written, in order; the first starts with the entry count.
    full: Vec<Vec<u8>>,
    /// Bytes in `full`.
    full_len: usize,
    /// The chunk being written.
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
            full: Vec::new(),
            full_len: 0,
            bytes: vec![0; 8],
            entries: 0,
        }
    }

    /// Appends one entry made of `parts` (encoded in order).
    pub fn entry(&mut self, parts: &[EntryPart<'_>]) -> Result<(), CodecError> {
        if self.bytes.len() >= ENTRY_CHUNK_BYTES {
            // Room for the chunk and most entries that end it.
            let next = Vec::with_capacity(ENTRY_CHUNK_BYTES + ENTRY_CHUNK_BYTES / 8);
            let done = std::mem::replace(&mut self.bytes, next);
            self.full_len += done.len();
            self.full.push(done);
        }
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

    /// The bytes written so far.
    pub fn len_bytes(&self) -> usize {
        self.full_len + self.bytes.len()
    }

    /// The bytes, in one buffer (a copy when they span chunks).
    pub fn finish(self) -> Vec<u8> {
        let mut chunks = self.finish_chunks();
        match chunks.len() {
            1 => chunks.pop().unwrap_or_default(),
            _ => chunks.concat(),
        }
    }

    /// The bytes, in chunks.
    pub fn finish_chunks(mut self) -> Vec<Vec<u8>> {
        let count = self.entries.to_le_bytes();
        let first = self.full.first_mut().unwrap_or(&mut self.bytes);
        first[..8].copy_from_slice(&count);
        if !self.bytes.is_empty() {
            self.full.push(self.bytes);
        }
        self.full
    }
}

pub(crate) fn apply_entry_changes<K: StateKey, N: StateKey, V: StateValue>(
    table: &mut dyn KeyedTable<K, N, V>,
    group: KeyGroup,
    bytes: &[u8],
) -> Result<(), CodecError> {
    let mut r = PartReader::new(bytes);
    for _ in 0..r.count()? {
        let tag = r.count()?;
        let (k, n): (K, N) = (r.part()?, r.part()?);
        match tag {
            CHANGE_TAG_PUT => table.put(group, &k, &n, r.part()?),
            CHANGE_TAG_DELETE => {
                table.remove(group, &k, &n);
            }
            other => return Err(CodecError::new(format!("a change tagged {other}"))),
        }
    }
    r.finish()
}

pub(crate) fn restore_entries<K: StateKey, N: StateKey, V: StateValue>(
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

/// Per key group, the bytes of a full snapshot and of the changes after it.
type GroupChains = BTreeMap<KeyGroup, Vec<(SnapshotKind, Vec<u8>)>>;

/// The bytes of each state's key groups, read from one or more state files:
/// per group, a full snapshot and the changes after it, in order.
#[derive(Default, Debug)]
pub struct RestoreSet {
    states: HashMap<String, GroupChains>,
    /// RocksDB parts that hold some of the wanted key groups.
    natives: Vec<NativeRestore>,
}

impl RestoreSet {
    /// Adds every section of the state file `bytes` (named `file` in errors),
    /// keeping only the key groups in `wanted`. A shard's files must come in
    /// the order they were written (its full file first).
    pub fn add_file(
        &mut self,
        file: &str,
        bytes: &[u8],
        wanted: KeyGroupRange,
    ) -> Result<(), CodecError> {
        let formats = [
            (FULL_FILE_MAGIC, SnapshotKind::Full, 2),
            (CHANGES_FILE_MAGIC, SnapshotKind::Changes, 2),
            (FULL_FILE_MAGIC_V1, SnapshotKind::Full, 1),
            (CHANGES_FILE_MAGIC_V1, SnapshotKind::Changes, 1),
        ];
        let Some((kind, version, body)) = formats.iter().find_map(|(magic, kind, version)| {
            bytes
                .strip_prefix(*magic)
                .map(|body| (*kind, *version, body))
        }) else {
            return Err(CodecError::new(format!(
                "{file}: not a Sluice state file (bad header)"
            )));
        };
        let mut r = PartReader::new(body);
        let context = |e: CodecError| CodecError::new(format!("{file}: {e}"));
        if version == 1 {
            let sections = r.count().map_err(context)?;
            for _ in 0..sections {
                self.add_fragment(file, kind, &mut r, wanted)?;
            }
        } else {
            let mut fragments = 0u64;
            loop {
                match r.count().map_err(context)? {
                    FRAGMENT_TAG => {
                        self.add_fragment(file, kind, &mut r, wanted)?;
                        fragments += 1;
                    }
                    END_TAG => break,
                    other => {
                        return Err(CodecError::new(format!(
                            "{file}: a record tagged {other} after {fragments} fragment(s)"
                        )))
                    }
                }
            }
            let counted = r.count().map_err(context)?;
            if counted != fragments {
                return Err(CodecError::new(format!(
                    "{file}: the end record counts {counted} fragment(s), the file holds {fragments}"
                )));
            }
        }
        r.finish().map_err(context)
    }

    /// Reads one fragment (a state's name, then some of its key groups).
    fn add_fragment(
        &mut self,
        file: &str,
        kind: SnapshotKind,
        r: &mut PartReader<'_>,
        wanted: KeyGroupRange,
    ) -> Result<(), CodecError> {
        let context = |e: CodecError| CodecError::new(format!("{file}: {e}"));
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
                let chain = self
                    .states
                    .entry(name.clone())
                    .or_default()
                    .entry(group)
                    .or_default();
                if kind == SnapshotKind::Full && !chain.is_empty() {
                    return Err(CodecError::new(format!(
                        "{file}: state {name}: {group} appears in two full snapshots"
                    )));
                }
                chain.push((kind, data.to_vec()));
            }
        }
        Ok(())
    }

    /// Adds a RocksDB part if it holds any of the groups in `wanted`.
    pub fn add_native(&mut self, native: NativeRestore, wanted: KeyGroupRange) {
        if native.groups.start < wanted.end && wanted.start < native.groups.end {
            self.natives.push(native);
        }
    }

    /// Names of the states that hold data.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.states.keys().map(String::as_str)
    }

    fn take(&mut self, name: &str) -> Option<GroupChains> {
        self.states.remove(name)
    }

    /// The RocksDB parts of plan node `node` (taken once).
    pub fn take_natives(&mut self, node: u64) -> Vec<NativeRestore> {
        let (taken, kept) = std::mem::take(&mut self.natives)
            .into_iter()
            .partition(|n| n.node == node);
        self.natives = kept;
        taken
    }
}

/// Bytes of a state file as the chunks they were built from: the bytes of
/// large key groups are moved in, not copied (a copy of hundreds of MB into
/// freshly faulted memory stalled a shard for 0.5 s), and storage writes the
/// chunks one after another. A whole file, or the part of one that a
/// [`StateFileWriter`] had not handed out yet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateFile {
    chunks: Vec<Vec<u8>>,
}

impl StateFile {
    /// The size in bytes.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.iter().all(Vec::is_empty)
    }

    /// The bytes, in order, as slices.
    pub fn chunks(&self) -> Vec<&[u8]> {
        self.chunks.iter().map(Vec::as_slice).collect()
    }

    /// The bytes in one buffer (a copy).
    pub fn to_vec(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

/// Key groups of at least this many bytes become chunks of their own;
/// smaller ones are copied into the chunk being built (a few bytes in unit
/// tests, so that their files mix both).
const MOVED_GROUP_BYTES: usize = if cfg!(test) { 64 } else { 16 * 1024 };

/// Builds one shard's state file for one checkpoint, fragment by fragment,
/// and hands its bytes out as they are ready ([`take_ready`](Self::take_ready)),
/// so that storage can write the beginning while the rest is encoded.
///
/// Format 2: the magic; then fragments, each [`FRAGMENT_TAG`], a state's
/// name, a group count and that many groups (id as `u64`, length-prefixed
/// bytes); then [`END_TAG`] and the number of fragments. Nothing is patched
/// once written. A state's groups may span several fragments (its groups
/// are handed out as they finish); a group appears once per state.
pub struct StateFileWriter {
    kind: SnapshotKind,
    fragments: u64,
    /// Chunks complete and not handed out yet.
    chunks: Vec<Vec<u8>>,
    /// The chunk being built (the magic, fragment headers, small groups).
    building: Vec<u8>,
}

impl StateFileWriter {
    pub fn new(kind: SnapshotKind) -> Self {
        StateFileWriter {
            kind,
            fragments: 0,
            chunks: Vec::new(),
            building: Self::magic(kind).to_vec(),
        }
    }

    fn magic(kind: SnapshotKind) -> &'static [u8] {
        match kind {
            SnapshotKind::Full => FULL_FILE_MAGIC,
            SnapshotKind::Changes => CHANGES_FILE_MAGIC,
        }
    }

    pub fn kind(&self) -> SnapshotKind {
        self.kind
    }

    /// Writes state `name`: its non-empty key groups in `groups`.
    pub fn section(
        &mut self,
        name: &str,
        state: &mut dyn SnapshotState,
        groups: KeyGroupRange,
    ) -> Result<(), CodecError> {
        let groups = state.snapshot(groups, self.kind)?;
        self.section_of(name, groups)
    }

    /// Writes a fragment of state `name` from its encoded key groups (large
    /// ones are moved into the file, not copied); none when `groups` is empty.
    pub fn section_of(&mut self, name: &str, groups: Vec<GroupBytes>) -> Result<(), CodecError> {
        if groups.is_empty() {
            return Ok(());
        }
        let mut w = PartWriter::new(&mut self.building);
        w.count(FRAGMENT_TAG);
        w.bytes(name.as_bytes())?;
        w.count(groups.len() as u64);
        for (group, chunks) in groups {
            let total: usize = chunks.iter().map(Vec::len).sum();
            let len =
                u32::try_from(total).map_err(|_| CodecError::new("a key group over 4 GiB"))?;
            // As `PartWriter::bytes` would write it: the length, then the bytes.
            self.building
                .extend_from_slice(&(group.0 as u64).to_le_bytes());
            self.building.extend_from_slice(&len.to_le_bytes());
            if total < MOVED_GROUP_BYTES {
                chunks
                    .iter()
                    .for_each(|chunk| self.building.extend_from_slice(chunk));
            } else {
                self.chunks.push(std::mem::take(&mut self.building));
                self.chunks
                    .extend(chunks.into_iter().filter(|c| !c.is_empty()));
            }
        }
        self.fragments += 1;
        Ok(())
    }

    /// No state written yet.
    pub fn is_empty(&self) -> bool {
        self.fragments == 0
    }

    /// Bytes written and not handed out yet.
    pub fn ready_len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum::<usize>() + self.building.len()
    }

    /// The bytes written since the last call, in order; the file is their
    /// concatenation over every call, then [`finish`](Self::finish)'s.
    pub fn take_ready(&mut self) -> StateFile {
        if !self.building.is_empty() {
            self.chunks.push(std::mem::take(&mut self.building));
        }
        StateFile {
            chunks: std::mem::take(&mut self.chunks),
        }
    }

    /// The rest of the file (all of it if nothing was taken).
    pub fn finish(mut self) -> StateFile {
        let mut w = PartWriter::new(&mut self.building);
        w.count(END_TAG);
        w.count(self.fragments);
        self.take_ready()
    }
}

/// A snapshot of one plan node's states in progress (see
/// [`StateRegistry::begin_owner`]).
pub struct OwnerSnapshot {
    /// Per state (index in the registry): its groups once written.
    states: Vec<(usize, Option<Vec<GroupBytes>>)>,
}

impl OwnerSnapshot {
    pub fn is_complete(&self) -> bool {
        self.states.iter().all(|(_, r)| r.is_some())
    }
}

struct Registered {
    name: String,
    owner: u64,
    state: Rc<RefCell<dyn SnapshotState>>,
    /// Stored in the owner's RocksDB instance, which checkpoints it natively
    /// (written here only for savepoints and final parts).
    native: bool,
}

/// Every state of one shard, by name and owning plan node; see the module docs.
pub struct StateRegistry {
    groups: KeyGroupRange,
    states: Vec<Registered>,
    restore: RestoreSet,
    errors: Vec<String>,
    /// The RocksDB instance of each plan node that has one.
    instances: BTreeMap<u64, Rc<RocksInstance>>,
}

impl StateRegistry {
    pub fn new(groups: KeyGroupRange, restore: RestoreSet) -> Self {
        StateRegistry {
            groups,
            states: Vec::new(),
            restore,
            errors: Vec::new(),
            instances: BTreeMap::new(),
        }
    }

    /// The name a state registered as `name` gets: `name`, or `name#2`, … when
    /// taken.
    pub fn unique_name(&self, name: &str) -> String {
        let mut unique = name.to_owned();
        let mut n = 1;
        while self.states.iter().any(|s| s.name == unique) {
            n += 1;
            unique = format!("{name}#{n}");
        }
        unique
    }

    /// A problem that must keep the job from starting.
    pub fn add_problem(&mut self, problem: String) {
        self.errors.push(problem);
    }

    /// The RocksDB parts to restore plan node `node` from.
    pub fn take_natives(&mut self, node: u64) -> Vec<NativeRestore> {
        self.restore.take_natives(node)
    }

    /// Plan node `owner`'s RocksDB instance, once opened.
    pub fn instance(&self, owner: u64) -> Option<Rc<RocksInstance>> {
        self.instances.get(&owner).cloned()
    }

    pub fn add_instance(&mut self, owner: u64, instance: Rc<RocksInstance>) {
        self.instances.insert(owner, instance);
    }

    /// The synchronous part of plan node `owner`'s native checkpoint, if its
    /// states live in RocksDB: begun at the barrier, polled until its files
    /// are listed.
    pub fn native_checkpoint(
        &self,
        owner: u64,
        checkpoint: u64,
    ) -> Result<Option<PendingNative>, String> {
        self.instances
            .get(&owner)
            .map(|instance| instance.begin_checkpoint(checkpoint))
            .transpose()
    }

    /// Registers `state` under `name` for plan node `owner`, and fills it from
    /// the restore set if that holds the name. Returns the unique name used.
    pub fn register(
        &mut self,
        name: &str,
        owner: u64,
        state: Rc<RefCell<dyn SnapshotState>>,
    ) -> String {
        self.register_with(name, owner, state, false)
    }

    /// Like [`register`](Self::register), for a state stored in `owner`'s
    /// RocksDB instance under exactly `name` (from [`unique_name`](Self::unique_name)).
    pub fn register_native(
        &mut self,
        name: &str,
        owner: u64,
        state: Rc<RefCell<dyn SnapshotState>>,
    ) -> String {
        self.register_with(name, owner, state, true)
    }

    fn register_with(
        &mut self,
        name: &str,
        owner: u64,
        state: Rc<RefCell<dyn SnapshotState>>,
        native: bool,
    ) -> String {
        let unique = self.unique_name(name);
        if let Some(groups) = self.restore.take(&unique) {
            let mut target = state.borrow_mut();
            for (group, chain) in groups {
                for (kind, bytes) in chain {
                    let applied = match kind {
                        SnapshotKind::Full => target.restore_group(group, &bytes),
                        SnapshotKind::Changes => target.apply_changes(group, &bytes),
                    };
                    if let Err(e) = applied {
                        self.errors
                            .push(format!("restoring state {unique}, {group}: {e}"));
                    }
                }
            }
        }
        self.states.push(Registered {
            name: unique.clone(),
            owner,
            state,
            native,
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
        problems.extend(self.restore.natives.iter().map(|native| {
            format!(
                "the checkpoint holds RocksDB state of plan node {}, which this job does not have with state.backend = \"rocksdb\" (restore a savepoint to change backends)",
                native.node
            )
        }));
        problems
    }

    /// Writes the states of plan node `owner` into `file`.
    pub fn snapshot_owner(&self, owner: u64, file: &mut StateFileWriter) -> Result<(), CodecError> {
        for registered in self.states.iter().filter(|s| s.owner == owner) {
            file.section(
                &registered.name,
                &mut *registered.state.borrow_mut(),
                self.groups,
            )
            .map_err(|e| CodecError::new(format!("state {}: {e}", registered.name)))?;
        }
        Ok(())
    }

    /// Starts a snapshot of the states of plan node `owner` that captures
    /// them as they are now; tables write theirs a key group at a time
    /// ([`step_owner`](Self::step_owner)), copying a group on its first
    /// write, so the shard is not stopped while they are encoded.
    /// With `skip_native`, states in RocksDB are left out (their native
    /// checkpoint holds them).
    pub fn begin_owner(
        &self,
        owner: u64,
        kind: SnapshotKind,
        skip_native: bool,
    ) -> Result<OwnerSnapshot, CodecError> {
        let mut states = Vec::new();
        for (index, registered) in self
            .states
            .iter()
            .enumerate()
            .filter(|(_, s)| s.owner == owner && !(skip_native && s.native))
        {
            let begun = registered
                .state
                .borrow_mut()
                .begin_snapshot(self.groups, kind)
                .map_err(|e| CodecError::new(format!("state {}: {e}", registered.name)))?;
            states.push((index, begun));
        }
        Ok(OwnerSnapshot { states })
    }

    /// Writes one more key group of `snapshot`; true once it is complete.
    pub fn step_owner(&self, snapshot: &mut OwnerSnapshot) -> Result<bool, CodecError> {
        let Some((index, result)) = snapshot.states.iter_mut().find(|(_, r)| r.is_none()) else {
            return Ok(true);
        };
        let registered = &self.states[*index];
        *result = registered
            .state
            .borrow_mut()
            .snapshot_step()
            .map_err(|e| CodecError::new(format!("state {}: {e}", registered.name)))?;
        Ok(snapshot.states.iter().all(|(_, r)| r.is_some()))
    }

    /// Writes the key groups that the unfinished states of `snapshot` have
    /// finished since the last call into `file`, as fragments.
    pub fn drain_owner(
        &self,
        snapshot: &OwnerSnapshot,
        file: &mut StateFileWriter,
    ) -> Result<(), CodecError> {
        for (index, _) in snapshot.states.iter().filter(|(_, r)| r.is_none()) {
            let registered = &self.states[*index];
            let finished = registered.state.borrow_mut().take_finished();
            file.section_of(&registered.name, finished)?;
        }
        Ok(())
    }

    /// Writes a complete `snapshot` into `file`.
    pub fn write_owner(
        &self,
        snapshot: OwnerSnapshot,
        file: &mut StateFileWriter,
    ) -> Result<(), CodecError> {
        for (index, result) in snapshot.states {
            let groups = result.expect("bug: writing an incomplete snapshot");
            file.section_of(&self.states[index].name, groups)?;
        }
        Ok(())
    }

    /// Drops a snapshot that will not be finished.
    pub fn abandon_owner(&self, snapshot: OwnerSnapshot) {
        for (index, result) in snapshot.states {
            if result.is_none() {
                self.states[index].state.borrow_mut().abandon_snapshot();
            }
        }
    }

    /// Per plan node that owns state, the entries of its states now. A
    /// state borrowed elsewhere at this moment is left out.
    pub fn entries_by_owner(&self) -> BTreeMap<u64, u64> {
        let mut entries = BTreeMap::new();
        for registered in &self.states {
            let Ok(state) = registered.state.try_borrow() else {
                continue;
            };
            *entries.entry(registered.owner).or_insert(0) += state.entries();
        }
        entries
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
    use crate::{KeyGroups, Marked, MemoryTable, NamespacedMemoryTable, StableKey, TrackedTable};

    type Tracked<T> = TrackedTable<u16, u8, i64, T, Marked<i64>>;

    fn tracked<T: KeyedTable<u16, u8, Marked<i64>>>(
        table: T,
        range: KeyGroupRange,
    ) -> Rc<RefCell<Tracked<T>>> {
        Rc::new(RefCell::new(TrackedTable::tracking(table, range)))
    }

    type Model = BTreeMap<(u16, u8), i64>;

    /// What a shard owning `range` reads from `files`, in order.
    fn restore_set(files: &[Vec<u8>], range: KeyGroupRange) -> RestoreSet {
        let mut set = RestoreSet::default();
        for (i, file) in files.iter().enumerate() {
            set.add_file(&format!("file {i}"), file, range).unwrap();
        }
        set
    }

    /// Writes `model` as `shards` shards would: one state file per shard.
    fn files_of(model: &Model, layout_of: impl Fn(u32) -> KeyGroups, shards: u32) -> Vec<Vec<u8>> {
        let layout = layout_of(shards);
        (0..shards)
            .map(|shard| {
                let range = layout.range_of(shard);
                let mut registry = StateRegistry::new(range, RestoreSet::default());
                let key_major =
                    tracked(MemoryTable::<u16, u8, Marked<i64>>::new("a", range), range);
                let namespaced = tracked(
                    NamespacedMemoryTable::<u16, u8, Marked<i64>>::new("b", range),
                    range,
                );
                registry.register("a", 1, key_major.clone());
                registry.register("b", 2, namespaced.clone());
                for (&(k, n), &v) in model {
                    let group = layout.key_group_of_hash(k.stable_hash());
                    if range.contains(group) {
                        key_major.borrow_mut().put(group, &k, &n, v);
                        namespaced.borrow_mut().put(group, &k, &n, v + 1);
                    }
                }
                let mut file = StateFileWriter::new(SnapshotKind::Full);
                registry.snapshot_owner(1, &mut file).unwrap();
                registry.snapshot_owner(2, &mut file).unwrap();
                file.finish().to_vec()
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
                let mut registry = StateRegistry::new(range, restore_set(&files, range));
                let key_major = tracked(MemoryTable::<u16, u8, Marked<i64>>::new("a", range), range);
                let namespaced =
                    tracked(NamespacedMemoryTable::<u16, u8, Marked<i64>>::new("b", range), range);
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
                registry.register("a", 1, tracked(MemoryTable::<u16, u8, Marked<i64>>::new("a", range), range));
                registry.register("b", 2, tracked(NamespacedMemoryTable::<u16, u8, Marked<i64>>::new("b", range), range));
                let _ = registry.restore_problems();
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u16, u8, i64),
        Remove(u16, u8),
        Add(u16, u8, i64),
        /// Take a checkpoint: everything when true, else the changes.
        Snapshot(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..200, 0u8..3, any::<i64>()).prop_map(|(k, n, v)| Op::Put(k, n, v)),
            2 => (0u16..200, 0u8..3).prop_map(|(k, n)| Op::Remove(k, n)),
            3 => (0u16..200, 0u8..3, -3i64..3).prop_map(|(k, n, d)| Op::Add(k, n, d)),
            1 => any::<bool>().prop_map(Op::Snapshot),
        ]
    }

    proptest! {
        // A chain of a full snapshot and the changes after it restores exactly
        // the state at the last snapshot, on any shard count.
        #[test]
        fn full_then_changes_restores_the_last_snapshot(
            ops in proptest::collection::vec(op(), 1..400),
            to in 1u32..4,
        ) {
            let layout = KeyGroups::new(16, 1);
            let range = layout.range_of(0);
            let table = tracked(MemoryTable::<u16, u8, Marked<i64>>::new("a", range), range);
            let mut registry = StateRegistry::new(range, RestoreSet::default());
            registry.register("a", 1, table.clone());
            let mut model = Model::new();
            let mut chain: Vec<Vec<u8>> = Vec::new();
            let mut at_last_snapshot = None;
            for op in ops {
                let group = |k: u16| layout.key_group_of_hash(k.stable_hash());
                match op {
                    Op::Put(k, n, v) => {
                        table.borrow_mut().put(group(k), &k, &n, v);
                        model.insert((k, n), v);
                    }
                    Op::Remove(k, n) => {
                        table.borrow_mut().remove(group(k), &k, &n);
                        model.remove(&(k, n));
                    }
                    Op::Add(k, n, d) => {
                        table.borrow_mut().update(group(k), &k, &n, &mut |slot| match slot {
                            Slot::Present(v) if *v + d == 0 => SlotAction::Remove,
                            Slot::Present(v) => { *v += d; SlotAction::Keep }
                            Slot::Absent => SlotAction::Keep,
                        });
                        if let Some(v) = model.get_mut(&(k, n)) {
                            *v += d;
                            if *v == 0 { model.remove(&(k, n)); }
                        }
                    }
                    Op::Snapshot(full) => {
                        let kind = if full || chain.is_empty() { SnapshotKind::Full } else { SnapshotKind::Changes };
                        let mut file = StateFileWriter::new(kind);
                        registry.snapshot_owner(1, &mut file).unwrap();
                        if kind == SnapshotKind::Full { chain.clear(); }
                        chain.push(file.finish().to_vec());
                        at_last_snapshot = Some(model.clone());
                    }
                }
            }
            let Some(expected) = at_last_snapshot else { return Ok(()) };
            let layout = KeyGroups::new(16, to);
            let mut restored = Model::new();
            for shard in 0..to {
                let range = layout.range_of(shard);
                let mut registry = StateRegistry::new(range, restore_set(&chain, range));
                let table = tracked(MemoryTable::<u16, u8, Marked<i64>>::new("a", range), range);
                registry.register("a", 1, table.clone());
                prop_assert!(registry.restore_problems().is_empty(), "{:?}", registry.restore_problems());
                for g in range.iter() {
                    table.borrow().for_each_in_group(g, &mut |k, n, v| { restored.insert((*k, *n), *v); });
                }
            }
            prop_assert_eq!(restored, expected);
        }
    }

    type Table = Tracked<MemoryTable<u16, u8, Marked<i64>>>;

    fn apply(table: &RefCell<Table>, model: &mut Model, op: &Op) {
        let layout = KeyGroups::new(16, 1);
        let group = |k: u16| layout.key_group_of_hash(k.stable_hash());
        match *op {
            Op::Put(k, n, v) => {
                table.borrow_mut().put(group(k), &k, &n, v);
                model.insert((k, n), v);
            }
            Op::Remove(k, n) | Op::Add(k, n, _) => {
                table.borrow_mut().remove(group(k), &k, &n);
                model.remove(&(k, n));
            }
            Op::Snapshot(_) => {}
        }
    }

    proptest! {
        // A snapshot begun at a barrier and written a group at a time while
        // writes go on holds exactly the state at the barrier.
        #[test]
        fn a_snapshot_written_later_holds_the_state_at_its_start(
            before in proptest::collection::vec(op(), 0..200),
            after in proptest::collection::vec(op(), 0..200),
            changes in any::<bool>(),
            take_every in 1usize..5,
        ) {
            let layout = KeyGroups::new(16, 1);
            let range = layout.range_of(0);
            let table = tracked(MemoryTable::<u16, u8, Marked<i64>>::new("a", range), range);
            let mut registry = StateRegistry::new(range, RestoreSet::default());
            registry.register("a", 1, table.clone());
            let mut model = Model::new();
            // A full snapshot first, so a snapshot of changes has a base.
            let mut base = StateFileWriter::new(SnapshotKind::Full);
            registry.snapshot_owner(1, &mut base).unwrap();
            let base = base.finish().to_vec();
            for op in &before {
                apply(&table, &mut model, op);
            }
            let at_barrier = model.clone();
            let kind = if changes { SnapshotKind::Changes } else { SnapshotKind::Full };
            let mut snapshot = registry.begin_owner(1, kind, false).unwrap();
            let mut after = after.iter();
            // Streamed: finished groups go into the file between steps, and
            // its bytes are taken out now and then.
            let mut file = StateFileWriter::new(kind);
            let mut streamed = Vec::new();
            let mut steps = 0;
            while !registry.step_owner(&mut snapshot).unwrap() {
                if let Some(op) = after.next() {
                    apply(&table, &mut model, op);
                }
                registry.drain_owner(&snapshot, &mut file).unwrap();
                steps += 1;
                if steps % take_every == 0 {
                    streamed.extend(file.take_ready().to_vec());
                }
            }
            registry.write_owner(snapshot, &mut file).unwrap();
            streamed.extend(file.finish().to_vec());
            let mut set = RestoreSet::default();
            if changes {
                set.add_file("base", &base, range).unwrap();
            }
            set.add_file("snapshot", &streamed, range).unwrap();
            let mut restored_registry = StateRegistry::new(range, set);
            let restored = tracked(MemoryTable::<u16, u8, Marked<i64>>::new("a", range), range);
            restored_registry.register("a", 1, restored.clone());
            let mut got = Model::new();
            for g in range.iter() {
                restored.borrow().for_each_in_group(g, &mut |k, n, v| { got.insert((*k, *n), *v); });
            }
            prop_assert_eq!(got, at_barrier);
        }
    }

    /// A state file in format 1 (a section count after the magic, then
    /// the sections), as checkpoints taken before format 2 hold them.
    /// A state's name and its groups' bytes.
    type Section<'a> = (&'a str, Vec<(u16, Vec<u8>)>);

    fn format_1_file(kind: SnapshotKind, sections: &[Section<'_>]) -> Vec<u8> {
        let mut bytes = match kind {
            SnapshotKind::Full => FULL_FILE_MAGIC_V1.to_vec(),
            SnapshotKind::Changes => CHANGES_FILE_MAGIC_V1.to_vec(),
        };
        let mut w = PartWriter::new(&mut bytes);
        w.count(sections.len() as u64);
        for (name, groups) in sections {
            w.bytes(name.as_bytes()).unwrap();
            w.count(groups.len() as u64);
            for (group, data) in groups {
                w.count(u64::from(*group));
                w.bytes(data).unwrap();
            }
        }
        bytes
    }

    #[test]
    fn format_1_files_still_restore() {
        let range = KeyGroups::new(16, 1).range_of(0);
        let mut entries = EntryWriter::new();
        (entries.entry(&[&|w| w.part(&7u16), &|w| w.part(&0u8), &|w| w.part(&70i64)])).unwrap();
        let group = KeyGroups::new(16, 1).key_group_of_hash(7u16.stable_hash());
        let full = format_1_file(
            SnapshotKind::Full,
            &[("a", vec![(group.0, entries.finish())])],
        );
        let mut changes = EntryWriter::new();
        let put = |w: &mut PartWriter<'_>| w.tag(CHANGE_TAG_PUT);
        (changes.entry(&[&put, &|w| w.part(&7u16), &|w| w.part(&0u8), &|w| {
            w.part(&71i64)
        }]))
        .unwrap();
        let changes = format_1_file(
            SnapshotKind::Changes,
            &[("a", vec![(group.0, changes.finish())])],
        );
        let mut set = RestoreSet::default();
        set.add_file("full", &full, range).unwrap();
        set.add_file("changes", &changes, range).unwrap();
        let mut registry = StateRegistry::new(range, set);
        let table = tracked(MemoryTable::<u16, u8, Marked<i64>>::new("a", range), range);
        registry.register("a", 1, table.clone());
        assert!(
            registry.restore_problems().is_empty(),
            "{:?}",
            registry.restore_problems()
        );
        assert_eq!(table.borrow().get(group, &7, &0), Some(71));
    }

    #[test]
    fn a_file_cut_short_or_with_a_wrong_end_is_refused() {
        let range = KeyGroups::new(16, 1).range_of(0);
        let mut model = Model::new();
        model.insert((1, 0), 5);
        let file = files_of(&model, |s| KeyGroups::new(16, s), 1).remove(0);
        // Without its end record (16 bytes: the tag and the fragment count).
        let cut = &file[..file.len() - 16];
        let err = RestoreSet::default().add_file("f", cut, range).unwrap_err();
        assert!(err.to_string().contains("f: truncated"), "{err}");
        let mut wrong_count = file.clone();
        let at = wrong_count.len() - 8;
        wrong_count[at..].copy_from_slice(&9u64.to_le_bytes());
        let err = (RestoreSet::default().add_file("f", &wrong_count, range)).unwrap_err();
        assert!(err.to_string().contains("counts 9 fragment(s)"), "{err}");
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
            tracked(MemoryTable::<u16, u8, Marked<i64>>::new("a", range), range),
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
