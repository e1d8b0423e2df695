//! The checkpoints of a job in an [`ObjectStore`]:
//! - `shared/<name>`: files that one or more checkpoints need (incremental
//!   checkpoints refer to files uploaded by earlier ones);
//! - `checkpoints/<id, 20 digits>/MANIFEST`: written last; a checkpoint exists
//!   once its manifest does.
//!
//! Restoring takes the newest checkpoint whose manifest decodes and whose
//! files are all there with the sizes it lists; the ones skipped on the way
//! are reported with the reason. Retention keeps the newest `n` checkpoints
//! and deletes a shared file only when a dropped checkpoint referred to it and
//! no kept one does — never a file a kept checkpoint needs, never a file
//! uploaded for a checkpoint still in flight.

use std::collections::{BTreeMap, BTreeSet};

use super::manifest::{FileInfo, Manifest};
use super::object_store::{ObjectStore, PendingPut, StoreError};

const SHARED: &str = "shared/";
const CHECKPOINTS: &str = "checkpoints/";

/// A checkpoint that cannot be restored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub checkpoint: u64,
    pub reason: String,
}

/// What a retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retained {
    pub dropped_checkpoints: Vec<u64>,
    pub deleted_files: Vec<String>,
}

/// A shared file being uploaded as its bytes come
/// ([`CheckpointCatalog::begin_shared`]): the store's put and the file's
/// size and checksum so far.
pub struct SharedUpload {
    put: PendingPut,
    hasher: xxhash_rust::xxh3::Xxh3,
    size: u64,
}

impl SharedUpload {
    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

/// See the module docs.
pub struct CheckpointCatalog<S> {
    store: S,
}

fn manifest_key(checkpoint: u64) -> String {
    format!("{CHECKPOINTS}{checkpoint:020}/MANIFEST")
}

fn shared_key(name: &str) -> String {
    format!("{SHARED}{name}")
}

impl<S: ObjectStore> CheckpointCatalog<S> {
    pub fn new(store: S) -> Self {
        CheckpointCatalog { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Uploads a shared file and returns what a manifest records of it.
    pub fn put_shared(&self, name: &str, bytes: &[u8]) -> Result<FileInfo, StoreError> {
        self.put_shared_chunks(name, &[bytes])
    }

    /// The same for a file made of `chunks` in order.
    pub fn put_shared_chunks(&self, name: &str, chunks: &[&[u8]]) -> Result<FileInfo, StoreError> {
        self.store.put_chunks(&shared_key(name), chunks)?;
        Ok(FileInfo::of_chunks(chunks))
    }

    /// Starts a streamed upload of a shared file (see
    /// [`ObjectStore::begin_put`]): it appears whole at
    /// [`finish_shared`](Self::finish_shared), or never.
    pub fn begin_shared(&self, name: &str) -> Result<SharedUpload, StoreError> {
        Ok(SharedUpload {
            put: self.store.begin_put(&shared_key(name))?,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            size: 0,
        })
    }

    /// Appends bytes to a streamed upload.
    pub fn append_shared(&self, upload: &mut SharedUpload, bytes: &[u8]) -> Result<(), StoreError> {
        upload.hasher.update(bytes);
        upload.size += bytes.len() as u64;
        self.store.append_put(&mut upload.put, bytes)
    }

    /// Finishes a streamed upload; returns what a manifest records of it.
    pub fn finish_shared(&self, upload: SharedUpload) -> Result<FileInfo, StoreError> {
        let info = FileInfo {
            size: upload.size,
            xxh3: upload.hasher.digest(),
        };
        self.store.finish_put(upload.put)?;
        Ok(info)
    }

    /// Drops a streamed upload: nothing of it stays.
    pub fn abort_shared(&self, upload: SharedUpload) {
        self.store.abort_put(upload.put)
    }

    /// Reads a shared file and checks it against what the manifest says.
    pub fn get_shared(&self, name: &str, expected: &FileInfo) -> Result<Vec<u8>, String> {
        let key = shared_key(name);
        let bytes = self.store.get(&key).map_err(|e| e.to_string())?;
        let actual = FileInfo::of(&bytes);
        if &actual != expected {
            return Err(format!(
                "{key}: {} bytes with checksum {:016x}, the manifest says {} bytes with {:016x}",
                actual.size, actual.xxh3, expected.size, expected.xxh3
            ));
        }
        Ok(bytes)
    }

    /// Makes `manifest`'s checkpoint count: its manifest is written last.
    pub fn commit(&self, manifest: &Manifest) -> Result<(), StoreError> {
        self.store
            .put(&manifest_key(manifest.checkpoint), &manifest.encode())
    }

    /// Deletes shared files uploaded for a checkpoint that was aborted (they
    /// are in no manifest); files a committed checkpoint refers to are kept.
    pub fn discard(&self, names: &[String]) -> Result<(), String> {
        let referenced = self.referenced_by_all()?;
        for name in names {
            if !referenced.contains(name) {
                self.store
                    .delete(&shared_key(name))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The checkpoints with a manifest, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<u64>, StoreError> {
        let mut ids: Vec<u64> = self
            .store
            .list(CHECKPOINTS)?
            .iter()
            .filter_map(|key| {
                key.strip_prefix(CHECKPOINTS)?
                    .strip_suffix("/MANIFEST")?
                    .parse()
                    .ok()
            })
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The manifest of `checkpoint`, decoded and checked against the files
    /// it refers to (present, with the listed sizes).
    pub fn load(&self, checkpoint: u64) -> Result<Manifest, String> {
        let key = manifest_key(checkpoint);
        let bytes = self.store.get(&key).map_err(|e| e.to_string())?;
        let manifest = Manifest::decode(&key, &bytes)?;
        if manifest.checkpoint != checkpoint {
            return Err(format!(
                "{key}: names checkpoint {}, expected {checkpoint}",
                manifest.checkpoint
            ));
        }
        let present: BTreeSet<String> = self
            .store
            .list(SHARED)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        for name in manifest.files.keys() {
            if !present.contains(&shared_key(name)) {
                return Err(format!(
                    "{key}: refers to {} which is missing",
                    shared_key(name)
                ));
            }
        }
        Ok(manifest)
    }

    /// The newest restorable checkpoint, and the newer ones skipped (newest
    /// first) with their reasons.
    pub fn latest(&self) -> Result<(Option<Manifest>, Vec<Unusable>), StoreError> {
        let mut skipped = Vec::new();
        for checkpoint in self.checkpoints()?.into_iter().rev() {
            match self.load(checkpoint) {
                Ok(manifest) => return Ok((Some(manifest), skipped)),
                Err(reason) => skipped.push(Unusable { checkpoint, reason }),
            }
        }
        Ok((None, skipped))
    }

    /// Shared files referred to by any manifest that decodes.
    fn referenced_by_all(&self) -> Result<BTreeSet<String>, String> {
        let mut referenced = BTreeSet::new();
        for checkpoint in self.checkpoints().map_err(|e| e.to_string())? {
            let key = manifest_key(checkpoint);
            let bytes = self.store.get(&key).map_err(|e| e.to_string())?;
            if let Ok(m) = Manifest::decode(&key, &bytes) {
                referenced.extend(m.files.into_keys());
            }
        }
        Ok(referenced)
    }

    /// Keeps the newest `keep` checkpoints (at least one) and drops the rest:
    /// their manifests, and the shared files only they referred to.
    pub fn retain(&self, keep: usize) -> Result<Retained, String> {
        let keep = keep.max(1);
        let ids = self.checkpoints().map_err(|e| e.to_string())?;
        let split = ids.len().saturating_sub(keep);
        let (dropped, kept) = ids.split_at(split);
        let mut files_of: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        for &id in ids.iter() {
            let key = manifest_key(id);
            let bytes = self.store.get(&key).map_err(|e| e.to_string())?;
            // A manifest that does not decode refers to nothing we can know of.
            let files = Manifest::decode(&key, &bytes)
                .map(|m| m.files.into_keys().collect())
                .unwrap_or_default();
            files_of.insert(id, files);
        }
        let needed: BTreeSet<&String> = kept.iter().flat_map(|id| &files_of[id]).collect();
        let mut retained = Retained::default();
        for &id in dropped {
            // The manifest first: a crash halfway leaves files no manifest
            // names (garbage), never a manifest naming deleted files.
            self.store
                .delete(&manifest_key(id))
                .map_err(|e| e.to_string())?;
            retained.dropped_checkpoints.push(id);
        }
        let unneeded: BTreeSet<&String> = dropped
            .iter()
            .flat_map(|id| &files_of[id])
            .filter(|name| !needed.contains(name))
            .collect();
        for name in unneeded {
            self.store
                .delete(&shared_key(name))
                .map_err(|e| e.to_string())?;
            retained.deleted_files.push(name.clone());
        }
        Ok(retained)
    }
}
