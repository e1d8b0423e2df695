//! One RocksDB instance: the states of one plan node on one shard.
//!
//! Lives on its shard's core (RocksDB's own flush and compaction threads run
//! beside it). The instance sits in `<shard directory>/node-<node>/db`, one
//! column family per state. Instances of a shard share one block cache and
//! one memtable budget ([`RocksResources`]).
//!
//! Why an instance per plan node and not per shard: a checkpoint is taken
//! when the barrier reaches a node, and nodes of a shard reach it at different
//! moments. RocksDB's checkpoint covers a whole instance, so each node's states
//! need their own.
//!
//! Writes skip the write-ahead log: durability comes from checkpoints, and a
//! crashed shard restores from the last one. A checkpoint flushes the
//! memtables and hard-links the live files into a directory (the synchronous
//! part, milliseconds); uploading happens elsewhere.
//!
//! Restoring: when one stored part covers exactly this shard's key groups,
//! its files are linked into place and opened (no data is rewritten);
//! otherwise (the shard count changed) every overlapping part is opened
//! read-only and the wanted key groups are copied over.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rocksdb::checkpoint::Checkpoint;
use rocksdb::{
    BlockBasedOptions, Cache, DBCompressionType, Options, WriteBatch, WriteBufferManager,
    WriteOptions, DB,
};

use super::key_layout::range_bounds;
use super::native::{is_sst, NativeFile, NativePart, NativeRestore, SharedFile};
use crate::KeyGroupRange;

/// Block cache per shard.
const BLOCK_CACHE_BYTES: usize = 128 << 20;
/// Memtables of all of a shard's instances together.
const MEMTABLE_BUDGET_BYTES: usize = 256 << 20;
/// Entries copied per write batch when restoring on a new shard count.
const RESTORE_BATCH_ENTRIES: usize = 4096;

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
        if directory.exists() {
            std::fs::remove_dir_all(&directory)
                .map_err(|e| io("clearing the state directory", &directory, e))?;
        }
        std::fs::create_dir_all(&directory)
            .map_err(|e| io("creating the state directory", &directory, e))?;
        let options = resources.options();
        let mut inherited = BTreeMap::new();
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
                let families = DB::list_cf(&options, &db_dir)
                    .map_err(|e| io("listing the column families of", &db_dir, e))?;
                DB::open_cf(&options, &db_dir, families)
                    .map_err(|e| io("opening the restored RocksDB", &db_dir, e))?
            }
            None => {
                let mut db =
                    DB::open(&options, &db_dir).map_err(|e| io("opening RocksDB", &db_dir, e))?;
                for part in &restore {
                    copy_groups(&mut db, &options, part, groups)?;
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
            .map_err(|e| format!("creating column family {name}: {e}"))
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

    /// The synchronous part of checkpoint `checkpoint`: flushes the memtables
    /// and hard-links every live file into a directory of its own.
    pub fn checkpoint(&self, checkpoint: u64) -> Result<NativePart, String> {
        let directory = self
            .directory
            .join("checkpoints")
            .join(format!("{checkpoint:020}"));
        if directory.exists() {
            std::fs::remove_dir_all(&directory)
                .map_err(|e| io("clearing the checkpoint directory", &directory, e))?;
        }
        let parent = directory.parent().expect("has a parent");
        std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
        let db = self.db();
        Checkpoint::new(&db)
            .and_then(|c| c.create_checkpoint(&directory))
            .map_err(|e| io("RocksDB checkpoint into", &directory, e))?;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&directory).map_err(|e| io("listing", &directory, e))? {
            let entry = entry.map_err(|e| io("listing", &directory, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            files.push(NativeFile {
                inherited: self.inherited.get(&name).cloned(),
                name,
            });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(NativePart {
            node: self.node,
            instance: self.instance.clone(),
            groups: self.groups,
            directory,
            files,
        })
    }
}

impl Drop for RocksInstance {
    fn drop(&mut self) {
        // Closed first (closing flushes the memtables, which needs the
        // directory), then removed: its files are scratch, checkpoints hold
        // what must last.
        drop(self.db.borrow_mut().take());
        let _ = std::fs::remove_dir_all(&self.directory);
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
