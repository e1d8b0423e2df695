//! One RocksDB instance: the states of one plan node on one shard.
//!
//! Lives on its shard's core (RocksDB's own flush and compaction threads run
//! beside it). The instance sits in `<shard directory>/node-<node>/db`, one
//! column family per state; its checkpoints' links in
//! `…/node-<node>/checkpoints/<instance>/<checkpoint>`. Instances of a shard
//! share one block cache and one memtable budget ([`RocksResources`]).
//!
//! Why an instance per plan node and not per shard: a checkpoint is taken
//! when the barrier reaches a node, and nodes of a shard reach it at different
//! moments. RocksDB's checkpoint covers a whole instance, so each node's states
//! need their own.
//!
//! Writes skip the write-ahead log: durability comes from checkpoints, and a
//! crashed shard restores from the last one. At the barrier a checkpoint
//! only switches the memtables (the synchronous part: q18's whole barrier
//! took 4–9 ms with it, against 238–287 ms with a flush); once RocksDB's threads have flushed them, the live files
//! are hard-linked into a directory, checked to hold no write after the
//! barrier ([`barrier_view`](super::barrier_view)); uploading happens
//! elsewhere.
//!
//! Restoring: when one stored part covers exactly this shard's key groups,
//! its files are linked into place and opened (no data is rewritten);
//! otherwise (the shard count changed) every overlapping part is opened
//! read-only and the wanted key groups are copied over.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rocksdb::checkpoint::Checkpoint;
use rocksdb::{
    BlockBasedOptions, Cache, DBCompressionType, FlushOptions, Options, WriteBatch,
    WriteBufferManager, WriteOptions, DB,
};

use super::barrier_view::{check_view, live_file_sequence_numbers, HeldSnapshot, ViewCheck};
use super::key_layout::range_bounds;
use super::native::{is_sst, NativeFile, NativePart, NativeRestore, SharedFile};
use crate::KeyGroupRange;

/// Block cache per shard.
const BLOCK_CACHE_BYTES: usize = 128 << 20;
/// Memtables of all of a shard's instances together.
const MEMTABLE_BUDGET_BYTES: usize = 256 << 20;
/// Entries copied per write batch when restoring on a new shard count.
const RESTORE_BATCH_ENTRIES: usize = 4096;
/// How often a checkpoint lists the files again when one came and went
/// while they were linked (a compaction finishing), before it gives up.
const LISTING_ATTEMPTS: u32 = 8;
/// How long [`RocksInstance::checkpoint`] waits for the background flush.
const FLUSH_WAIT: Duration = Duration::from_secs(120);

/// What a shard's instances share, and where they live.
pub struct RocksResources {
    directory: PathBuf,
    cache: Cache,
    memtables: WriteBufferManager,
    shard: u32,
}

impl RocksResources {
    pub fn new(directory: PathBuf, shard: u32) -> Self {
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let memtables = WriteBufferManager::new_write_buffer_manager_with_cache(
            MEMTABLE_BUDGET_BYTES,
            false,
            cache.clone(),
        );
        RocksResources {
            directory,
            cache,
            memtables,
            shard,
        }
    }

    fn options(&self) -> Options {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_compression_type(DBCompressionType::Lz4);
        options.set_write_buffer_manager(&self.memtables);
        // A barrier switches the memtables while the last switch may still
        // be flushing: with RocksDB's default of two, the switch would wait
        // for that flush (the shard with it). The shared budget above, not
        // this count, bounds their memory.
        options.set_max_write_buffer_number(4);
        // State is read by exact key: bloom filters in the memtable and the
        // table files answer most lookups of absent entries (a window's
        // first record) without a search.
        options.set_memtable_whole_key_filtering(true);
        options.set_memtable_prefix_bloom_ratio(0.1);
        let mut table = BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        table.set_block_cache(&self.cache);
        options.set_block_based_table_factory(&table);
        options
    }
}

/// See the module docs.
pub struct RocksInstance {
    /// `None` only while dropping (closed before its files are removed).
    db: RefCell<Option<DB>>,
    options: Options,
    directory: PathBuf,
    instance: String,
    node: u64,
    groups: KeyGroupRange,
    write: WriteOptions,
    /// Local SST files the checkpoint storage already holds (from the
    /// checkpoint this instance was restored from).
    inherited: BTreeMap<String, SharedFile>,
    /// Its column families but the unused default one (the memtables a
    /// barrier switches).
    families: RefCell<Vec<String>>,
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

impl RocksInstance {
    /// Opens the instance of plan node `node`, restored from `restore` (its
    /// parts that overlap `groups`; empty: a fresh instance).
    pub fn open(
        resources: &RocksResources,
        node: u64,
        groups: KeyGroupRange,
        restore: Vec<NativeRestore>,
    ) -> Result<Self, String> {
        let directory = resources.directory.join(format!("node-{node}"));
        let db_dir = directory.join("db");
        // Only the database of an earlier incarnation goes: the checkpoint
        // directories it linked may still be uploading.
        if db_dir.exists() {
            std::fs::remove_dir_all(&db_dir)
                .map_err(|e| io("clearing the state directory", &db_dir, e))?;
        }
        std::fs::create_dir_all(&directory)
            .map_err(|e| io("creating the state directory", &directory, e))?;
        let options = resources.options();
        let mut inherited = BTreeMap::new();
        // The default family is never written (every state has its own),
        // so a barrier has no memtable of it to switch.
        let mut families = Vec::new();
        let exact = match restore.as_slice() {
            [only] if only.groups == groups => Some(only),
            _ => None,
        };
        let db = match exact {
            Some(part) => {
                // Same key groups: the stored instance becomes this one.
                link_directory(&part.directory, &db_dir)?;
                inherited = part.inherited.clone();
                inherited.retain(|name, _| is_sst(name));
                let listed = DB::list_cf(&options, &db_dir)
                    .map_err(|e| io("listing the column families of", &db_dir, e))?;
                let db = DB::open_cf(&options, &db_dir, &listed)
                    .map_err(|e| io("opening the restored RocksDB", &db_dir, e))?;
                families = listed.into_iter().filter(|f| f != "default").collect();
                db
            }
            None => {
                let mut db =
                    DB::open(&options, &db_dir).map_err(|e| io("opening RocksDB", &db_dir, e))?;
                for part in &restore {
                    copy_groups(&mut db, &options, part, groups, &mut families)?;
                }
                db
            }
        };
        let mut write = WriteOptions::default();
        write.disable_wal(true);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let unique = xxhash_rust::xxh3::xxh3_64(
            format!("{stamp}/{}/{}/{node}", std::process::id(), resources.shard).as_bytes(),
        );
        Ok(RocksInstance {
            db: RefCell::new(Some(db)),
            options,
            directory,
            instance: format!("node{node}-shard{}-{unique:016x}", resources.shard),
            node,
            groups,
            write,
            inherited,
            families: RefCell::new(families),
        })
    }

    /// Creates column family `name` unless it exists (a restored one does).
    pub fn ensure_family(&self, name: &str) -> Result<(), String> {
        if self.db().cf_handle(name).is_some() {
            return Ok(());
        }
        let mut db = self.db.borrow_mut();
        db.as_mut()
            .expect("open until dropped")
            .create_cf(name, &self.options)
            .map_err(|e| format!("creating column family {name}: {e}"))?;
        self.families.borrow_mut().push(name.to_owned());
        Ok(())
    }

    pub(crate) fn db(&self) -> std::cell::Ref<'_, DB> {
        std::cell::Ref::map(self.db.borrow(), |db| {
            db.as_ref().expect("open until dropped")
        })
    }

    pub(crate) fn write_options(&self) -> &WriteOptions {
        &self.write
    }

    /// The unique name of this incarnation.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The synchronous part of checkpoint `checkpoint`, at its barrier:
    /// switches the memtables (RocksDB's threads flush them) and holds a
    /// snapshot at the barrier's sequence number. The returned checkpoint
    /// is [polled](PendingNative::poll) until its files are listed.
    pub fn begin_checkpoint(self: &Rc<Self>, checkpoint: u64) -> Result<PendingNative, String> {
        let db = self.db();
        let barrier = db.latest_sequence_number();
        let snapshot = HeldSnapshot::take(&db);
        let mut flush = FlushOptions::default();
        flush.set_wait(false);
        let families = self.families.borrow();
        let handles: Vec<_> = (families.iter())
            .map(|name| db.cf_handle(name).expect("created by this instance"))
            .collect();
        db.flush_cfs_opt(&handles, &flush)
            .map_err(|e| format!("switching the memtables of {}: {e}", self.instance))?;
        drop(db);
        Ok(PendingNative {
            _snapshot: snapshot,
            instance: self.clone(),
            checkpoint,
            barrier,
            attempts: 0,
        })
    }

    /// Takes checkpoint `checkpoint` and waits for it (tests and tools; the
    /// engine polls instead).
    pub fn checkpoint(self: &Rc<Self>, checkpoint: u64) -> Result<NativePart, String> {
        let mut pending = self.begin_checkpoint(checkpoint)?;
        let deadline = Instant::now() + FLUSH_WAIT;
        loop {
            if let Some(part) = pending.poll()? {
                return Ok(part);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "RocksDB did not flush the memtables of {} within {FLUSH_WAIT:?}",
                    self.instance
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether every memtable switched so far is flushed.
    fn memtables_flushed(&self) -> Result<bool, String> {
        let db = self.db();
        let failed = db
            .property_int_value("rocksdb.background-errors")
            .map_err(|e| format!("reading the state of {}: {e}", self.instance))?;
        if failed.is_some_and(|n| n > 0) {
            return Err(format!(
                "RocksDB's background flush or compaction of {} failed",
                self.instance
            ));
        }
        for name in self.families.borrow().iter() {
            let family = db.cf_handle(name).expect("created by this instance");
            let unflushed = db
                .property_int_value_cf(family, "rocksdb.num-immutable-mem-table")
                .map_err(|e| format!("reading the memtables of {}: {e}", self.instance))?;
            if unflushed.unwrap_or(0) > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Hard-links the live files into the directory of checkpoint
    /// `checkpoint`, without flushing, and lists them.
    fn link_live_files(&self, checkpoint: u64) -> Result<(PathBuf, Vec<String>), String> {
        let directory = (self.directory.join("checkpoints"))
            .join(&self.instance)
            .join(format!("{checkpoint:020}"));
        if directory.exists() {
            std::fs::remove_dir_all(&directory)
                .map_err(|e| io("clearing the checkpoint directory", &directory, e))?;
        }
        let parent = directory.parent().expect("has a parent");
        std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
        let db = self.db();
        Checkpoint::new(&db)
            .and_then(|c| c.create_checkpoint_with_log_size(&directory, u64::MAX))
            .map_err(|e| io("RocksDB checkpoint into", &directory, e))?;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&directory).map_err(|e| io("listing", &directory, e))? {
            let entry = entry.map_err(|e| io("listing", &directory, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok((directory, names))
    }

    fn part(&self, directory: PathBuf, names: Vec<String>) -> NativePart {
        let files = (names.into_iter())
            .map(|name| NativeFile {
                inherited: self.inherited.get(&name).cloned(),
                name,
            })
            .collect();
        NativePart {
            node: self.node,
            instance: self.instance.clone(),
            groups: self.groups,
            directory,
            files,
        }
    }
}

/// A native checkpoint begun at its barrier, waiting for the background
/// flush of the memtables the barrier switched. Dropping it abandons the
/// checkpoint (and releases the barrier's snapshot).
pub struct PendingNative {
    /// Held until dropped; declared before `instance`, so released while
    /// the database is open.
    _snapshot: HeldSnapshot,
    instance: Rc<RocksInstance>,
    checkpoint: u64,
    /// The sequence number of the last write before the barrier.
    barrier: u64,
    attempts: u32,
}

impl PendingNative {
    /// The checkpoint's part once the barrier's memtables are flushed
    /// (`None` until then): its files checked to hold no later write. An
    /// error when they do (a memtable filled and was flushed after the
    /// barrier first: this checkpoint cannot be taken any more).
    pub fn poll(&mut self) -> Result<Option<NativePart>, String> {
        let instance = &self.instance;
        if !instance.memtables_flushed()? {
            return Ok(None);
        }
        let before = live_file_sequence_numbers(&instance.db());
        let (directory, names) = instance.link_live_files(self.checkpoint)?;
        let after = live_file_sequence_numbers(&instance.db());
        let tables = names.iter().filter(|n| is_sst(n)).map(String::as_str);
        match check_view(self.barrier, tables, &before, &after) {
            ViewCheck::Consistent => Ok(Some(instance.part(directory, names))),
            ViewCheck::Unknown(file) => {
                let _ = std::fs::remove_dir_all(&directory);
                self.attempts += 1;
                if self.attempts >= LISTING_ATTEMPTS {
                    return Err(format!(
                        "the files of {} kept changing while checkpoint {} linked them ({file} last)",
                        instance.instance, self.checkpoint
                    ));
                }
                Ok(None)
            }
            ViewCheck::After { file, largest } => {
                let _ = std::fs::remove_dir_all(&directory);
                Err(format!(
                    "{file} of {} holds writes after the barrier of checkpoint {} \
                     (sequence number {largest} > {}): a memtable filled and was flushed \
                     before the barrier's own flush was listed",
                    instance.instance, self.checkpoint, self.barrier
                ))
            }
        }
    }

    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }
}

impl Drop for RocksInstance {
    fn drop(&mut self) {
        // Closed first (closing flushes the memtables, which needs the
        // directory), then removed: its files are scratch, checkpoints hold
        // what must last. Its checkpoint directories stay: the last may
        // still be uploading after the shard ended, and the uploader removes
        // each (the run's local directory goes at the end in any case).
        drop(self.db.borrow_mut().take());
        let _ = std::fs::remove_dir_all(self.directory.join("db"));
    }
}

/// Hard-links (or, across file systems, copies) every file of `from` into a
/// new directory `to`.
fn link_directory(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| io("creating", to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io("listing", from, e))? {
        let entry = entry.map_err(|e| io("listing", from, e))?;
        let target = to.join(entry.file_name());
        if std::fs::hard_link(entry.path(), &target).is_err() {
            std::fs::copy(entry.path(), &target).map_err(|e| io("copying", &entry.path(), e))?;
        }
    }
    Ok(())
}

/// Copies the key groups of `part` that `groups` wants into `db`, family by
/// family, reading the part read-only where it was downloaded.
fn copy_groups(
    db: &mut DB,
    options: &Options,
    part: &NativeRestore,
    groups: KeyGroupRange,
    created: &mut Vec<String>,
) -> Result<(), String> {
    let wanted = KeyGroupRange {
        start: groups.start.max(part.groups.start),
        end: groups.end.min(part.groups.end),
    };
    if wanted.start >= wanted.end {
        return Ok(());
    }
    let families = DB::list_cf(options, &part.directory)
        .map_err(|e| io("listing the column families of", &part.directory, e))?;
    let source = DB::open_cf_for_read_only(options, &part.directory, &families, false)
        .map_err(|e| io("opening the stored RocksDB", &part.directory, e))?;
    let (lower, upper) = range_bounds(wanted);
    for family in families.iter().filter(|f| *f != "default") {
        if db.cf_handle(family).is_none() {
            db.create_cf(family, options)
                .map_err(|e| format!("creating column family {family}: {e}"))?;
            created.push(family.clone());
        }
        let from = source.cf_handle(family).expect("listed");
        let into = db.cf_handle(family).expect("created");
        let mut read = rocksdb::ReadOptions::default();
        read.set_iterate_lower_bound(lower.clone());
        read.set_iterate_upper_bound(upper.clone());
        read.fill_cache(false);
        let mut iter = source.raw_iterator_cf_opt(from, read);
        iter.seek(&lower);
        let mut batch = WriteBatch::default();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            batch.put_cf(into, key, value);
            if batch.len() >= RESTORE_BATCH_ENTRIES {
                db.write_without_wal(std::mem::take(&mut batch))
                    .map_err(|e| format!("restoring {family}: {e}"))?;
            }
            iter.next();
        }
        iter.status()
            .map_err(|e| io(&format!("reading {family} of"), &part.directory, e))?;
        db.write_without_wal(batch)
            .map_err(|e| format!("restoring {family}: {e}"))?;
    }
    Ok(())
}
