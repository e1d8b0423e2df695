//! Restoring a job from a checkpoint or savepoint, before its shards start.
//!
//! Runs on the thread that starts the job. [`restore`] reads a checkpoint's
//! manifest, every state file, channel-state file and RocksDB part
//! completely (a damaged one is rejected before anything starts), and splits
//! them by shard: each shard gets the key groups it owns, whatever the shard
//! count was when the checkpoint was taken, and sources get their
//! partitions' positions. Restoring the latest checkpoint falls back past
//! ones that cannot be read, naming each.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use sluice_state::checkpoint_store::{CheckpointCatalog, Manifest, ObjectStore, StorageLocation};
use sluice_state::rocks_backend::{NativeHandle, NativeRestore, SharedFile};
use sluice_state::{KeyGroups, RestoreSet};

use super::channel_file::decode_channels;
use super::task_entry::TaskEntry;
use super::{
    ChannelStates, CheckpointConfig, CheckpointError, CheckpointId, RestoreFrom, SourcePositions,
    FINAL_CHECKPOINT,
};

/// What a job resumes from.
#[derive(Debug, Default)]
pub struct Restored {
    /// The checkpoint restored, and whether the job had finished in it.
    pub checkpoint: Option<(CheckpointId, bool)>,
    /// Source positions by `source-<node>/<partition>`.
    pub positions: SourcePositions,
    /// Each shard's key groups of state.
    pub shard_states: Vec<Mutex<Option<RestoreSet>>>,
    /// Newer checkpoints that could not be used, with the reason.
    pub skipped: Vec<String>,
    /// Each shard's channel state (unaligned checkpoints; same shard count).
    pub channels: Vec<Mutex<ChannelStates>>,
    /// The highest checkpoint id in the storage: new ones are numbered above
    /// it, so nothing of an earlier run is overwritten.
    pub highest_stored: CheckpointId,
}

impl Restored {
    /// The checkpoint id sinks recover to (`FINAL_CHECKPOINT` for a finished job).
    pub fn sink_checkpoint(&self) -> Option<CheckpointId> {
        self.checkpoint
            .map(|(id, finished)| if finished { FINAL_CHECKPOINT } else { id })
    }

    /// Shard `shard`'s records of channel `name` to replay (taken once).
    pub fn take_channel(&self, shard: u32, name: &str) -> Option<Vec<u8>> {
        self.channels
            .get(shard as usize)
            .and_then(|c| c.lock().expect("restore lock").remove(name))
    }

    /// Shard `shard`'s state to restore (taken once).
    pub fn take_state(&self, shard: u32) -> RestoreSet {
        self.shard_states
            .get(shard as usize)
            .and_then(|s| s.lock().expect("restore lock").take())
            .unwrap_or_default()
    }
}

/// A checkpoint storage, opened.
pub type Store = Arc<dyn ObjectStore>;

pub(super) fn open_catalog(
    location: &StorageLocation,
) -> Result<CheckpointCatalog<Store>, CheckpointError> {
    location
        .open()
        .map(CheckpointCatalog::new)
        .map_err(|reason| CheckpointError::Open {
            location: location.to_string(),
            reason,
        })
}

/// The id a job's next checkpoint gets when it resumes as `config` says:
/// above every checkpoint in its storage and in the storage it restores
/// from (a checkpoint restored from elsewhere is numbered there), and above
/// `restore`. For a leader that runs apart from the shards.
pub fn first_checkpoint_id(
    config: &CheckpointConfig,
    restore: Option<CheckpointId>,
) -> Result<CheckpointId, CheckpointError> {
    let mut highest = restore.unwrap_or(0);
    if let Some(RestoreFrom::Checkpoint(id)) = config.restore {
        highest = highest.max(id);
    }
    let storages = std::iter::once(&config.storage).chain(&config.restore_storage);
    for location in storages {
        let listed = open_catalog(location)?
            .checkpoints()
            .map_err(CheckpointError::storage(format!(
                "listing checkpoints in {location}"
            )))?;
        highest = highest.max(listed.last().copied().unwrap_or(0));
    }
    Ok(highest + 1)
}

/// Reads what a job restores from, for a job of `shards` shards. `latest`
/// falls back past checkpoints that cannot be read (a corrupt or missing
/// manifest or state file), naming each in `skipped`.
/// RocksDB parts are downloaded (and checked) into `staging`.
pub fn restore(
    config: &CheckpointConfig,
    layout: KeyGroups,
    shards: u32,
    staging: &std::path::Path,
) -> Result<Restored, CheckpointError> {
    let mut restored = Restored {
        shard_states: (0..shards)
            .map(|_| Mutex::new(Some(RestoreSet::default())))
            .collect(),
        ..Restored::default()
    };
    let storage = open_catalog(&config.storage)?;
    let highest = storage
        .checkpoints()
        .map_err(CheckpointError::storage(format!(
            "listing checkpoints in {}",
            config.storage
        )))?
        .last()
        .copied()
        .unwrap_or(0);
    restored.highest_stored = highest;
    let Some(from) = config.restore else {
        return Ok(restored);
    };
    let source = config.restore_storage.as_ref().unwrap_or(&config.storage);
    let catalog = match source == &config.storage {
        true => storage,
        false => open_catalog(source)?,
    };
    let where_ = source.describe();
    // Files of our own storage can be referred to by later checkpoints.
    let own_storage = source == &config.storage;
    let reader = CheckpointReader {
        catalog: &catalog,
        layout,
        shards,
        staging,
        own_storage,
    };
    let ids = catalog
        .checkpoints()
        .map_err(CheckpointError::storage(format!(
            "listing checkpoints in {where_}"
        )))?;
    match from {
        RestoreFrom::Latest => {
            for id in ids.into_iter().rev() {
                match reader.read(id) {
                    Ok(found) => return Ok(found.with_skipped(restored.skipped, highest)),
                    Err(reason) => restored
                        .skipped
                        .push(format!("checkpoint {id} skipped: {reason}")),
                }
            }
            // Nothing usable (the job never completed one): start fresh.
            Ok(restored)
        }
        RestoreFrom::Checkpoint(id) => reader
            .read(id)
            .map(|found| found.with_skipped(Vec::new(), highest))
            .map_err(|reason| CheckpointError::Restore {
                checkpoint: id,
                location: where_,
                reason: Box::new(reason),
            }),
    }
}

impl Restored {
    fn with_skipped(mut self, skipped: Vec<String>, highest_stored: CheckpointId) -> Self {
        self.skipped = skipped;
        self.highest_stored = highest_stored;
        self
    }
}

/// What reading a checkpoint needs.
struct CheckpointReader<'a> {
    catalog: &'a CheckpointCatalog<Store>,
    layout: KeyGroups,
    shards: u32,
    staging: &'a std::path::Path,
    own_storage: bool,
}

impl CheckpointReader<'_> {
    /// Reads checkpoint `id` completely (manifest, every state file, every
    /// section, every RocksDB file), so that a damaged one is rejected
    /// before anything starts.
    fn read(&self, id: CheckpointId) -> Result<Restored, CheckpointError> {
        let manifest = self.catalog.load(id).map_err(CheckpointError::Unusable)?;
        let (restored, entries) =
            read_checkpoint(self.catalog, &manifest, self.layout, self.shards)?;
        for entry in entries {
            for handle in entry.rocksdb {
                let native = self.download(&manifest, &handle)?;
                for (shard, set) in restored.shard_states.iter().enumerate() {
                    let mut set = set.lock().expect("restore lock");
                    let set = set.as_mut().expect("not taken yet");
                    set.add_native(native.clone(), self.layout.range_of(shard as u32));
                }
            }
        }
        Ok(restored)
    }

    /// Downloads one RocksDB part into the staging directory, checking each
    /// file against the manifest.
    fn download(
        &self,
        manifest: &Manifest,
        handle: &NativeHandle,
    ) -> Result<NativeRestore, CheckpointError> {
        let directory = self
            .staging
            .join(format!("{:020}", manifest.checkpoint))
            .join(&handle.instance);
        std::fs::create_dir_all(&directory).map_err(|source| CheckpointError::LocalFile {
            what: "creating",
            path: directory.clone(),
            source,
        })?;
        let mut inherited = BTreeMap::new();
        for (local, shared) in &handle.files {
            if local.contains('/') || local.starts_with('.') {
                return Err(CheckpointError::Unusable(format!(
                    "instance {}: a file named {local:?} is not a RocksDB file name",
                    handle.instance
                )));
            }
            let info = manifest.files.get(shared).ok_or_else(|| {
                CheckpointError::Unusable(format!(
                    "instance {} refers to {shared}, which the manifest does not list",
                    handle.instance
                ))
            })?;
            let bytes =
                (self.catalog.get_shared(shared, info)).map_err(CheckpointError::Unusable)?;
            let path = directory.join(local);
            std::fs::write(&path, &bytes).map_err(|source| CheckpointError::LocalFile {
                what: "writing",
                path: path.clone(),
                source,
            })?;
            if self.own_storage {
                inherited.insert(
                    local.clone(),
                    SharedFile {
                        name: shared.clone(),
                        info: info.clone(),
                    },
                );
            }
        }
        Ok(NativeRestore {
            node: handle.node,
            groups: handle.groups(),
            directory,
            inherited,
        })
    }
}

/// Reads checkpoint `id`'s manifest, state files and channel states; returns
/// them and the manifest's task entries.
fn read_checkpoint(
    catalog: &CheckpointCatalog<Store>,
    manifest: &Manifest,
    layout: KeyGroups,
    shards: u32,
) -> Result<(Restored, Vec<TaskEntry>), CheckpointError> {
    let unusable = CheckpointError::Unusable;
    let mut entries = Vec::new();
    let mut sets: Vec<RestoreSet> = (0..shards).map(|_| RestoreSet::default()).collect();
    let mut positions = SourcePositions::new();
    let mut channels: Vec<ChannelStates> = (0..shards).map(|_| ChannelStates::new()).collect();
    for (task, value) in &manifest.tasks {
        let entry = TaskEntry::from_json(value)
            .map_err(|e| unusable(format!("task {task}: malformed entry {value}: {e}")))?;
        if let Some(name) = &entry.channels {
            let info = manifest.files.get(name).ok_or_else(|| {
                unusable(format!(
                    "task {task} refers to {name}, which the manifest does not list"
                ))
            })?;
            let bytes = catalog.get_shared(name, info).map_err(unusable)?;
            let states = decode_channels(name, &bytes)?;
            if !states.is_empty() && manifest.tasks.len() != shards as usize {
                return Err(unusable(format!(
                    "it holds records in flight (an unaligned checkpoint of {} shards) and restores only on {} shards, not {shards}; rescale from a savepoint",
                    manifest.tasks.len(),
                    manifest.tasks.len()
                )));
            }
            if let Some(shard_channels) = channels.get_mut(*task as usize) {
                shard_channels.extend(states);
            }
        }
        for state_file in &entry.state {
            let info = manifest.files.get(state_file).ok_or_else(|| {
                unusable(format!(
                    "task {task} refers to {state_file}, which the manifest does not list"
                ))
            })?;
            let bytes = catalog.get_shared(state_file, info).map_err(unusable)?;
            for (shard, set) in sets.iter_mut().enumerate() {
                set.add_file(state_file, &bytes, layout.range_of(shard as u32))
                    .map_err(|e| unusable(e.to_string()))?;
            }
        }
        positions.extend(entry.sources.clone());
        entries.push(entry);
    }
    let restored = Restored {
        checkpoint: Some((manifest.checkpoint, manifest.finished)),
        positions,
        shard_states: sets.into_iter().map(|s| Mutex::new(Some(s))).collect(),
        skipped: Vec::new(),
        channels: channels.into_iter().map(Mutex::new).collect(),
        highest_stored: 0,
    };
    Ok((restored, entries))
}
