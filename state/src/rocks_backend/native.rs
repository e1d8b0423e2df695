//! What a RocksDB checkpoint consists of, between the shard that takes it, the
//! driver that uploads it and the restore that reads it back.
//!
//! A shard's part ([`NativePart`]) is a directory of hard links that RocksDB
//! wrote at the barrier (the immutable view), with, for every file, whether
//! the checkpoint storage already holds it under a shared name (a file the
//! instance inherited from the checkpoint it was restored from). The manifest
//! records a [`NativeHandle`] per instance: which shared file each local file
//! is. SST files never change once written and their numbers are never reused
//! within one instance, so the driver uploads each `(instance, SST)` once and
//! later checkpoints refer to the same shared file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::checkpoint_store::FileInfo;
use crate::KeyGroupRange;

/// A file the checkpoint storage holds: its shared name and what the manifest
/// records of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    pub name: String,
    pub info: FileInfo,
}

/// One file of a native checkpoint.
#[derive(Debug, Clone)]
pub struct NativeFile {
    /// Its name in the RocksDB directory (`000012.sst`, `MANIFEST-000005`, …).
    pub name: String,
    /// The shared file with the same bytes, when the storage holds one.
    pub inherited: Option<SharedFile>,
}

/// One RocksDB instance's part of a checkpoint, on local disk until uploaded.
#[derive(Debug)]
pub struct NativePart {
    /// The plan node whose states the instance holds.
    pub node: u64,
    /// The instance's incarnation (unique per opened instance).
    pub instance: String,
    pub groups: KeyGroupRange,
    /// The checkpoint directory (hard links); removed once uploaded.
    pub directory: PathBuf,
    pub files: Vec<NativeFile>,
}

impl NativePart {
    /// The shared name of local file `name` of this part: SST files once per
    /// instance, the small metadata files once per checkpoint.
    pub fn shared_name(&self, checkpoint: u64, name: &str) -> String {
        if is_sst(name) {
            format!("rocksdb/{}/{name}", self.instance)
        } else {
            format!("rocksdb/{}/{checkpoint:020}/{name}", self.instance)
        }
    }
}

/// Whether a RocksDB file is an immutable table file.
pub fn is_sst(name: &str) -> bool {
    name.ends_with(".sst")
}

/// How a manifest refers to one instance's part.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NativeHandle {
    pub node: u64,
    pub instance: String,
    /// `[start, end)` of the key groups it holds.
    pub groups: [u16; 2],
    /// Local file name → shared name.
    pub files: BTreeMap<String, String>,
}

impl NativeHandle {
    pub fn groups(&self) -> KeyGroupRange {
        KeyGroupRange {
            start: self.groups[0],
            end: self.groups[1],
        }
    }
}

/// A part to restore from: its files downloaded (and checked) into `directory`.
#[derive(Debug, Clone)]
pub struct NativeRestore {
    pub node: u64,
    pub groups: KeyGroupRange,
    pub directory: PathBuf,
    /// Local file name → the shared file it came from. Empty when the files
    /// came from another storage (a later checkpoint must upload them again).
    pub inherited: BTreeMap<String, SharedFile>,
}
