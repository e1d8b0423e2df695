//! Runs a job's checkpoints in the embedded runtime: the coordinator's state
//! machine, the storage, and the shards' reports, on the thread that waits for
//! the job (never on a shard's core).
//!
//! Every few milliseconds [`CheckpointDriver::poll`] writes the state files
//! the shards reported, passes acknowledgements and the clock to the
//! [`CheckpointCoordinator`], and carries out its actions: a trigger is
//! published to the sources through an atomic; a manifest is written with the
//! catalog; a completed checkpoint is committed by the sinks' committers and
//! old checkpoints are dropped beyond `retain`; an aborted one's files are
//! discarded. When every shard has finished, [`CheckpointDriver::finish`]
//! writes a final checkpoint marked finished and commits everything.
//!
//! Restoring ([`restore`]) reads a checkpoint's manifest and state files
//! before the shards start: each shard gets the key groups it owns, whatever
//! the shard count was, and sources get their partitions' positions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_state::checkpoint_store::{
    CheckpointCatalog, FileInfo, Manifest, ObjectStore, StorageLocation,
};
use sluice_state::rocks_backend::{
    native::is_sst, NativeHandle, NativePart, NativeRestore, SharedFile,
};
use sluice_state::{KeyGroups, PartReader, PartWriter, RestoreSet, SnapshotKind};

use super::savepoint::{self, SavepointRequest};
use super::shard::{ChannelStates, CheckpointSignals, ShardReport, SourcePositions};
use super::{
    CheckpointAction, CheckpointConfig, CheckpointCoordinator, CheckpointId, CheckpointInput,
    Committer, RestoreFrom,
};

/// How often (in driver ticks) the storage is checked for a savepoint request.
const SAVEPOINT_POLL_TICKS: u64 = 20;

/// The checkpoint id of the parts a sink keeps at the end of its input; they
/// commit with the job's final checkpoint.
pub const FINAL_CHECKPOINT: CheckpointId = CheckpointId::MAX;

/// What a shard acknowledged: its state file and its source positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardAck {
    /// The shard's state files, in the order a restore applies them: a full
    /// one, then the changes after it.
    files: Vec<(String, FileInfo)>,
    sources: SourcePositions,
    /// Records in flight at unaligned barriers, if any.
    channels: Option<(String, FileInfo)>,
    /// The shard's RocksDB instances, and the shared files they consist of.
    native: Vec<NativeHandle>,
    native_files: Vec<(String, FileInfo)>,
}

/// Encodes a shard's channel states into one file.
fn encode_channels(channels: &ChannelStates) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut w = PartWriter::new(&mut bytes);
    w.count(channels.len() as u64);
    for (name, records) in channels {
        let _ = w.bytes(name.as_bytes());
        let _ = w.bytes(records);
    }
    bytes
}

fn decode_channels(file: &str, bytes: &[u8]) -> Result<ChannelStates, String> {
    let context = |e: sluice_state::CodecError| format!("{file}: {e}");
    let mut r = PartReader::new(bytes);
    let mut channels = ChannelStates::new();
    for _ in 0..r.count().map_err(context)? {
        let name = String::from_utf8(r.raw().map_err(context)?.to_vec())
            .map_err(|_| format!("{file}: a channel name is not UTF-8"))?;
        channels.insert(name, r.raw().map_err(context)?.to_vec());
    }
    r.finish().map_err(context)?;
    Ok(channels)
}

/// What a completed checkpoint cost.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CompletedCheckpoint {
    pub id: CheckpointId,
    /// From the trigger to the manifest written.
    pub duration_ms: f64,
    /// Bytes written for it (uploaded).
    pub bytes: u64,
    /// Bytes of every file it consists of (shared with earlier ones or not).
    pub total_bytes: u64,
    /// The longest a shard spent writing its state on its core.
    pub sync_max_ms: f64,
    /// Records in flight kept by unaligned barriers (encoded bytes): those
    /// the gates had read but not processed, and those the outboxes had
    /// queued but not sent.
    pub in_flight_received_bytes: u64,
    pub in_flight_sent_bytes: u64,
}

/// What a checkpoint in flight has cost so far.
struct CheckpointCost {
    started: std::time::Instant,
    /// Bytes uploaded.
    bytes: u64,
    /// The longest synchronous part of a shard.
    sync_micros: u64,
    /// Bytes of all the files its manifest lists.
    total_bytes: u64,
    in_flight_received_bytes: u64,
    in_flight_sent_bytes: u64,
}

impl Default for CheckpointCost {
    fn default() -> Self {
        CheckpointCost {
            started: std::time::Instant::now(),
            bytes: 0,
            sync_micros: 0,
            total_bytes: 0,
            in_flight_received_bytes: 0,
            in_flight_sent_bytes: 0,
        }
    }
}

/// The committers of a job's exactly-once sinks (shared with the shards that
/// register them while building).
pub type Committers = Arc<Mutex<Vec<Arc<Mutex<dyn Committer>>>>>;

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

fn open_catalog(location: &StorageLocation) -> Result<CheckpointCatalog<Store>, String> {
    location
        .open()
        .map(CheckpointCatalog::new)
        .map_err(|e| format!("opening checkpoint storage {location}: {e}"))
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
) -> Result<Restored, String> {
    let mut restored = Restored {
        shard_states: (0..shards)
            .map(|_| Mutex::new(Some(RestoreSet::default())))
            .collect(),
        ..Restored::default()
    };
    let storage = open_catalog(&config.storage)?;
    let highest = storage
        .checkpoints()
        .map_err(|e| format!("listing checkpoints in {}: {e}", config.storage))?
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
        .map_err(|e| format!("listing checkpoints in {where_}: {e}"))?;
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
            .map_err(|e| format!("checkpoint {id} in {where_}: {e}")),
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
    fn read(&self, id: CheckpointId) -> Result<Restored, String> {
        let manifest = self.catalog.load(id)?;
        let restored = read_checkpoint(self.catalog, &manifest, self.layout, self.shards)?;
        for (task, value) in &manifest.tasks {
            let Some(handles) = value.get("rocksdb") else {
                continue;
            };
            let handles: Vec<NativeHandle> = serde_json::from_value(handles.clone())
                .map_err(|e| format!("task {task}: malformed rocksdb entry: {e}"))?;
            for handle in handles {
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
    ) -> Result<NativeRestore, String> {
        let directory = self
            .staging
            .join(format!("{:020}", manifest.checkpoint))
            .join(&handle.instance);
        std::fs::create_dir_all(&directory)
            .map_err(|e| format!("creating {}: {e}", directory.display()))?;
        let mut inherited = BTreeMap::new();
        for (local, shared) in &handle.files {
            if local.contains('/') || local.starts_with('.') {
                return Err(format!(
                    "instance {}: a file named {local:?} is not a RocksDB file name",
                    handle.instance
                ));
            }
            let info = manifest.files.get(shared).ok_or_else(|| {
                format!(
                    "instance {} refers to {shared}, which the manifest does not list",
                    handle.instance
                )
            })?;
            let bytes = self.catalog.get_shared(shared, info)?;
            let path = directory.join(local);
            std::fs::write(&path, &bytes)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
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

/// Reads checkpoint `id`'s manifest, state files and channel states.
fn read_checkpoint(
    catalog: &CheckpointCatalog<Store>,
    manifest: &Manifest,
    layout: KeyGroups,
    shards: u32,
) -> Result<Restored, String> {
    let mut sets: Vec<RestoreSet> = (0..shards).map(|_| RestoreSet::default()).collect();
    let mut positions = SourcePositions::new();
    let mut channels: Vec<ChannelStates> = (0..shards).map(|_| ChannelStates::new()).collect();
    for (task, value) in &manifest.tasks {
        let (state_files, sources) =
            parse_task(value).ok_or_else(|| format!("task {task}: malformed entry {value}"))?;
        if let Some(name) = value.get("channels").and_then(|c| c.as_str()) {
            let info = manifest.files.get(name).ok_or_else(|| {
                format!("task {task} refers to {name}, which the manifest does not list")
            })?;
            let states = decode_channels(name, &catalog.get_shared(name, info)?)?;
            if !states.is_empty() && manifest.tasks.len() != shards as usize {
                return Err(format!(
                    "it holds records in flight (an unaligned checkpoint of {} shards) and restores only on {} shards, not {shards}; rescale from a savepoint",
                    manifest.tasks.len(),
                    manifest.tasks.len()
                ));
            }
            if let Some(shard_channels) = channels.get_mut(*task as usize) {
                shard_channels.extend(states);
            }
        }
        for state_file in state_files {
            let info = manifest.files.get(&state_file).ok_or_else(|| {
                format!("task {task} refers to {state_file}, which the manifest does not list")
            })?;
            let bytes = catalog.get_shared(&state_file, info)?;
            for (shard, set) in sets.iter_mut().enumerate() {
                set.add_file(&state_file, &bytes, layout.range_of(shard as u32))
                    .map_err(|e| e.to_string())?;
            }
        }
        positions.extend(sources);
    }
    Ok(Restored {
        checkpoint: Some((manifest.checkpoint, manifest.finished)),
        positions,
        shard_states: sets.into_iter().map(|s| Mutex::new(Some(s))).collect(),
        skipped: Vec::new(),
        channels: channels.into_iter().map(Mutex::new).collect(),
        highest_stored: 0,
    })
}

fn task_entry(ack: &ShardAck) -> serde_json::Value {
    let state: Vec<&str> = ack.files.iter().map(|(name, _)| name.as_str()).collect();
    let channels = ack.channels.as_ref().map(|(name, _)| name.as_str());
    let mut entry =
        serde_json::json!({ "state": state, "sources": ack.sources, "channels": channels });
    if !ack.native.is_empty() {
        entry["rocksdb"] = serde_json::to_value(&ack.native).expect("serializes");
    }
    entry
}

fn parse_task(value: &serde_json::Value) -> Option<(Vec<String>, SourcePositions)> {
    let state = serde_json::from_value(value.get("state")?.clone()).ok()?;
    let sources = serde_json::from_value(value.get("sources")?.clone()).ok()?;
    Some((state, sources))
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A line for the operator; checkpoints are rare, so every one is logged.
fn log(message: &str) {
    eprintln!("sluice: {message}");
}

/// See the module docs.
pub struct CheckpointDriver {
    config: CheckpointConfig,
    catalog: CheckpointCatalog<Store>,
    coordinator: CheckpointCoordinator<ShardAck>,
    reports: Receiver<ShardReport>,
    triggered: Arc<AtomicU64>,
    committers: Committers,
    shards: u32,
    /// Final parts of the shards that have finished.
    finished: BTreeMap<u32, ShardAck>,
    /// Files written for checkpoints not yet completed, to discard on abort.
    written: BTreeMap<CheckpointId, Vec<String>>,
    started_ms: u64,
    /// Per checkpoint in flight: when triggered, bytes written, longest sync part.
    costs: BTreeMap<CheckpointId, CheckpointCost>,
    /// Every checkpoint this run completed.
    pub completed: Vec<CompletedCheckpoint>,
    /// The newest completed checkpoint, for the shards (incremental parts).
    completed_id: Arc<AtomicU64>,
    /// RocksDB files uploaded (shared name → what the manifest records):
    /// each is uploaded once and referred to until retention deletes it.
    uploaded: BTreeMap<String, FileInfo>,
    /// Per shard, the state files of the last completed checkpoint.
    chains: BTreeMap<u32, Vec<(String, FileInfo)>>,
    /// The same, for the checkpoint whose manifest is being written.
    manifest_chains: BTreeMap<u32, Vec<(String, FileInfo)>>,
    /// The checkpoint storage, where savepoint requests arrive.
    requests: Store,
    ticks: u64,
    /// A savepoint asked for, and the checkpoint that takes it once triggered.
    savepoint: Option<(SavepointRequest, Option<CheckpointId>)>,
    /// The checkpoint every shard must write in full (a savepoint).
    full_requested: Arc<AtomicU64>,
    /// The checkpoint of a stop-with-savepoint, for the sources (0: none).
    stop_sources_at: Arc<AtomicU64>,
    /// A stop-with-savepoint completed: the job must stop, committing nothing
    /// more; this is the savepoint.
    pub stopped_with: Option<StorageLocation>,
    /// A failure that must fail the job (a shard could not write its final part).
    pub fatal: Option<String>,
    /// Checkpoints aborted since the last one completed.
    aborted_in_a_row: u32,
    /// Files of aborted checkpoints that could not be deleted yet (the
    /// storage was unreachable): retried after the next completed one.
    undiscarded: Vec<String>,
}

impl CheckpointDriver {
    pub fn new(
        config: CheckpointConfig,
        shards: u32,
        restored: &Restored,
        reports: Receiver<ShardReport>,
        signals: CheckpointSignals,
        committers: Committers,
    ) -> Result<Self, String> {
        let catalog = open_catalog(&config.storage)?;
        let requests = catalog.store().clone();
        let CheckpointSignals {
            triggered,
            completed,
            full_requested,
            stop_sources_at,
        } = signals;
        let resumed_from = restored.checkpoint.map_or(0, |(id, _)| id);
        let first = restored.highest_stored.max(resumed_from) + 1;
        // Sources emit a barrier for the newest id above the one they resumed
        // from; nothing is triggered yet.
        triggered.store(resumed_from, Ordering::Release);
        Ok(CheckpointDriver {
            catalog,
            coordinator: CheckpointCoordinator::new(config.timing, shards, first),
            requests,
            config,
            reports,
            triggered,
            committers,
            shards,
            finished: BTreeMap::new(),
            written: BTreeMap::new(),
            started_ms: now_unix_ms(),
            costs: BTreeMap::new(),
            completed: Vec::new(),
            completed_id: completed,
            uploaded: BTreeMap::new(),
            chains: BTreeMap::new(),
            manifest_chains: BTreeMap::new(),
            ticks: 0,
            savepoint: None,
            full_requested,
            stop_sources_at,
            stopped_with: None,
            fatal: None,
            aborted_in_a_row: 0,
            undiscarded: Vec::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        now_unix_ms().saturating_sub(self.started_ms)
    }

    /// The last checkpoint this run completed.
    pub fn last_completed(&self) -> Option<CheckpointId> {
        self.coordinator.stats().last_completed
    }

    /// Handles what the shards reported and what the clock says.
    pub fn poll(&mut self) {
        if self.stopped_with.is_some() {
            // Stopped with a savepoint: the job is ending, and nothing after
            // the savepoint may be triggered or committed.
            while self.reports.try_recv().is_ok() {}
            return;
        }
        while let Ok(report) = self.reports.try_recv() {
            self.report(report);
        }
        self.ticks += 1;
        if self.ticks.is_multiple_of(SAVEPOINT_POLL_TICKS) && self.savepoint.is_none() {
            match savepoint::take_request(&self.requests) {
                Some(Ok(request)) => {
                    log(&format!(
                        "savepoint requested into {}{}",
                        request.target,
                        if request.stop { ", then stop" } else { "" }
                    ));
                    self.savepoint = Some((request, None));
                    self.coordinator.request_now();
                }
                Some(Err(e)) => log(&e),
                None => {}
            }
        }
        self.input(CheckpointInput::Tick {
            now_ms: self.now_ms(),
        });
    }

    fn report(&mut self, report: ShardReport) {
        match report {
            ShardReport::Snapshot {
                shard,
                checkpoint,
                state,
                sources,
                sync_micros,
                kind,
                channels,
                native,
            } => {
                if let Some(cost) = self.costs.get_mut(&checkpoint) {
                    cost.bytes += state.len() as u64;
                    cost.sync_micros = cost.sync_micros.max(sync_micros);
                    for (name, records) in &channels {
                        match name.starts_with(crate::exchange::OUTPUT_STATE_PREFIX) {
                            true => cost.in_flight_sent_bytes += records.len() as u64,
                            false => cost.in_flight_received_bytes += records.len() as u64,
                        }
                    }
                }
                let native = self.upload_native(checkpoint, native);
                let name = match kind {
                    SnapshotKind::Full => format!("{checkpoint:020}-{shard:05}.state"),
                    SnapshotKind::Changes => format!("{checkpoint:020}-{shard:05}.changes"),
                };
                // Changes extend the shard's chain as of the last completed
                // checkpoint (the shard writes changes only on top of that).
                let mut files = match kind {
                    SnapshotKind::Full => Vec::new(),
                    SnapshotKind::Changes => self.chains.get(&shard).cloned().unwrap_or_default(),
                };
                let channels = match channels.is_empty() {
                    true => Ok(None),
                    false => {
                        let name = format!("{checkpoint:020}-{shard:05}.channels");
                        let bytes = encode_channels(&channels);
                        self.write(checkpoint, &name, &[&bytes])
                            .map(|info| Some((name, info)))
                    }
                };
                let written = native.and_then(|native| {
                    channels.and_then(|channels| {
                        self.write(checkpoint, &name, &state.chunks())
                            .map(|info| (info, channels, native))
                    })
                });
                let input = match written {
                    Ok((info, channels, (native, native_files))) => {
                        files.push((name, info));
                        CheckpointInput::Acknowledged {
                            checkpoint,
                            task: shard,
                            ack: ShardAck {
                                files,
                                sources,
                                channels,
                                native,
                                native_files,
                            },
                        }
                    }
                    Err(reason) => CheckpointInput::Declined {
                        checkpoint,
                        task: shard,
                        reason,
                    },
                };
                self.input(input);
            }
            ShardReport::Declined {
                shard,
                checkpoint,
                reason,
            } => {
                if checkpoint == FINAL_CHECKPOINT {
                    self.fatal = Some(format!(
                        "shard {shard} could not write its final state: {reason}"
                    ));
                } else {
                    self.input(CheckpointInput::Declined {
                        checkpoint,
                        task: shard,
                        reason,
                    });
                }
            }
            ShardReport::Finished {
                shard,
                state,
                sources,
            } => {
                // Above every stored id: unique across runs in this storage.
                let at = self.coordinator.next_id();
                let name = format!("{at:020}-{shard:05}.final.state");
                match self.catalog.put_shared(&name, &state) {
                    Ok(info) => {
                        let ack = ShardAck {
                            files: vec![(name, info)],
                            sources,
                            channels: None,
                            native: Vec::new(),
                            native_files: Vec::new(),
                        };
                        self.finished.insert(shard, ack.clone());
                        // It will not answer the checkpoint in flight itself.
                        if let Some(checkpoint) = self.coordinator.in_flight() {
                            self.input(CheckpointInput::Acknowledged {
                                checkpoint,
                                task: shard,
                                ack,
                            });
                        }
                    }
                    Err(e) => {
                        self.fatal = Some(format!("writing shard {shard}'s final state: {e}"));
                    }
                }
            }
        }
    }

    /// Uploads the files of RocksDB parts that the storage does not hold
    /// yet, then removes the parts' local directories.
    #[allow(clippy::type_complexity)]
    fn upload_native(
        &mut self,
        checkpoint: CheckpointId,
        parts: Vec<NativePart>,
    ) -> Result<(Vec<NativeHandle>, Vec<(String, FileInfo)>), String> {
        let mut uploaded = || {
            let mut handles = Vec::new();
            let mut files = Vec::new();
            for part in &parts {
                let mut handle = NativeHandle {
                    node: part.node,
                    instance: part.instance.clone(),
                    groups: [part.groups.start, part.groups.end],
                    files: BTreeMap::new(),
                };
                for file in &part.files {
                    let (shared, info) = match &file.inherited {
                        Some(inherited) => (inherited.name.clone(), inherited.info.clone()),
                        None => {
                            let shared = part.shared_name(checkpoint, &file.name);
                            match self.uploaded.get(&shared) {
                                Some(info) => (shared, info.clone()),
                                None => self.upload_file(checkpoint, part, &file.name, shared)?,
                            }
                        }
                    };
                    handle.files.insert(file.name.clone(), shared.clone());
                    files.push((shared, info));
                }
                handles.push(handle);
            }
            Ok((handles, files))
        };
        let result = uploaded();
        for part in &parts {
            let _ = std::fs::remove_dir_all(&part.directory);
        }
        result
    }

    fn upload_file(
        &mut self,
        checkpoint: CheckpointId,
        part: &NativePart,
        name: &str,
        shared: String,
    ) -> Result<(String, FileInfo), String> {
        let path = part.directory.join(name);
        let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        if let Some(cost) = self.costs.get_mut(&checkpoint) {
            cost.bytes += bytes.len() as u64;
        }
        let info = self.write(checkpoint, &shared, &[&bytes])?;
        if is_sst(name) {
            self.uploaded.insert(shared.clone(), info.clone());
        }
        Ok((shared, info))
    }

    fn write(
        &mut self,
        checkpoint: CheckpointId,
        name: &str,
        chunks: &[&[u8]],
    ) -> Result<FileInfo, String> {
        let info = self
            .catalog
            .put_shared_chunks(name, chunks)
            .map_err(|e| e.to_string())?;
        self.written
            .entry(checkpoint)
            .or_default()
            .push(name.to_owned());
        Ok(info)
    }

    fn input(&mut self, input: CheckpointInput<ShardAck>) {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            for action in self.coordinator.handle(input) {
                if let Some(next) = self.act(action) {
                    queue.push_back(CheckpointInput::Tick {
                        now_ms: self.now_ms(),
                    });
                    queue.push_back(next);
                }
            }
        }
    }

    /// Carries out one action; returns the input it leads to, if any.
    fn act(&mut self, action: CheckpointAction<ShardAck>) -> Option<CheckpointInput<ShardAck>> {
        match action {
            CheckpointAction::Trigger { checkpoint } => {
                if self.stopped_with.is_some() {
                    // The savepoint that stops the job has just completed.
                    return None;
                }
                if let Some((request, id @ None)) = &mut self.savepoint {
                    *id = Some(checkpoint);
                    // Before the trigger is published: the shards read it then.
                    self.full_requested.store(checkpoint, Ordering::Release);
                    if request.stop {
                        // As Flink's stop-with-savepoint: sources read
                        // nothing after its barrier, so no sink sees a
                        // record the savepoint does not account for.
                        self.stop_sources_at.store(checkpoint, Ordering::Release);
                    }
                }
                self.costs.insert(
                    checkpoint,
                    CheckpointCost {
                        started: std::time::Instant::now(),
                        ..CheckpointCost::default()
                    },
                );
                self.triggered.store(checkpoint, Ordering::Release);
                // Finished shards answer with their final part at once.
                let finished: Vec<(u32, ShardAck)> =
                    self.finished.iter().map(|(s, a)| (*s, a.clone())).collect();
                for (task, ack) in finished {
                    self.input(CheckpointInput::Acknowledged {
                        checkpoint,
                        task,
                        ack,
                    });
                }
                None
            }
            CheckpointAction::WriteManifest { checkpoint, acks } => {
                let manifest = self.manifest(checkpoint, &acks, false);
                if let Some(cost) = self.costs.get_mut(&checkpoint) {
                    cost.total_bytes = manifest.files.values().map(|f| f.size).sum();
                }
                self.manifest_chains = acks.iter().map(|(s, a)| (*s, a.files.clone())).collect();
                Some(match self.catalog.commit(&manifest) {
                    Ok(()) => CheckpointInput::ManifestWritten { checkpoint },
                    Err(e) => CheckpointInput::ManifestFailed {
                        checkpoint,
                        reason: e.to_string(),
                    },
                })
            }
            CheckpointAction::Completed { checkpoint } => {
                if self.aborted_in_a_row > 0 {
                    log(&format!(
                        "checkpoint {checkpoint} completed, after {} aborted",
                        std::mem::take(&mut self.aborted_in_a_row)
                    ));
                }
                self.written.retain(|id, _| *id > checkpoint);
                self.chains = std::mem::take(&mut self.manifest_chains);
                self.completed_id.store(checkpoint, Ordering::Release);
                if let Some(cost) = self.costs.remove(&checkpoint) {
                    self.completed.push(CompletedCheckpoint {
                        id: checkpoint,
                        duration_ms: cost.started.elapsed().as_secs_f64() * 1e3,
                        bytes: cost.bytes,
                        total_bytes: cost.total_bytes,
                        sync_max_ms: cost.sync_micros as f64 / 1e3,
                        in_flight_received_bytes: cost.in_flight_received_bytes,
                        in_flight_sent_bytes: cost.in_flight_sent_bytes,
                    });
                }
                self.commit(checkpoint);
                if let Some((_, Some(id))) = &self.savepoint {
                    if *id == checkpoint {
                        let (request, _) = self.savepoint.take().expect("checked");
                        let result =
                            StorageLocation::resolve(&request.target, &self.config.storage)
                                .and_then(|target| {
                                    savepoint::copy_checkpoint(&self.catalog, checkpoint, &target)
                                });
                        match &result {
                            Ok(location) => {
                                log(&format!("savepoint {location} written"));
                                if request.stop {
                                    self.stopped_with = Some(location.clone());
                                }
                            }
                            Err(e) => {
                                log(&format!("savepoint of checkpoint {checkpoint} failed: {e}"));
                                // The job goes on: its sources read on.
                                self.stop_sources_at.store(0, Ordering::Release);
                            }
                        }
                        savepoint::respond(&self.requests, &request.request, result);
                    }
                }
                self.retain();
                None
            }
            CheckpointAction::Aborted { checkpoint, reason } => {
                self.aborted_in_a_row += 1;
                self.costs.remove(&checkpoint);
                if matches!(&self.savepoint, Some((_, Some(id))) if *id == checkpoint) {
                    let (request, _) = self.savepoint.take().expect("checked");
                    // The job goes on: its sources read on.
                    self.stop_sources_at.store(0, Ordering::Release);
                    savepoint::respond(
                        &self.requests,
                        &request.request,
                        Err(format!(
                            "the savepoint's checkpoint {checkpoint} was aborted: {reason}"
                        )),
                    );
                }
                log(&format!("checkpoint {checkpoint} aborted: {reason}"));
                if let Some(files) = self.written.remove(&checkpoint) {
                    for name in &files {
                        self.uploaded.remove(name);
                    }
                    if let Err(e) = self.catalog.discard(&files) {
                        log(&format!(
                            "discarding checkpoint {checkpoint}'s files (retried later): {e}"
                        ));
                        self.undiscarded.extend(files);
                    }
                }
                None
            }
        }
    }

    fn manifest(
        &self,
        checkpoint: CheckpointId,
        acks: &BTreeMap<u32, ShardAck>,
        finished: bool,
    ) -> Manifest {
        Manifest {
            checkpoint,
            job: self.config.job_name.clone(),
            created_unix_ms: now_unix_ms(),
            files: acks
                .values()
                .flat_map(|a| a.files.iter().chain(&a.channels).chain(&a.native_files))
                .cloned()
                .collect(),
            tasks: acks.iter().map(|(t, a)| (*t, task_entry(a))).collect(),
            finished,
        }
    }

    fn commit(&self, checkpoint: CheckpointId) {
        for committer in self.committers.lock().expect("committers lock").iter() {
            if let Err(e) = committer.lock().expect("committer lock").commit(checkpoint) {
                // The parts stay pending; the next completed checkpoint (or a
                // recovery) commits them.
                log(&format!("committing checkpoint {checkpoint}: {e}"));
            }
        }
    }

    fn retain(&mut self) {
        if !self.undiscarded.is_empty() {
            let files = std::mem::take(&mut self.undiscarded);
            if let Err(e) = self.catalog.discard(&files) {
                log(&format!("discarding files of aborted checkpoints: {e}"));
                self.undiscarded = files;
            }
        }
        match self.catalog.retain(self.config.retain) {
            Ok(retained) => {
                for name in &retained.deleted_files {
                    self.uploaded.remove(name);
                }
            }
            Err(e) => log(&format!("dropping old checkpoints: {e}")),
        }
    }

    /// All shards have finished: writes the final checkpoint (marked finished)
    /// and commits every sink's remaining parts.
    pub fn finish(&mut self) -> Result<(), String> {
        while let Ok(report) = self.reports.try_recv() {
            self.report(report);
        }
        if let Some((request, _)) = self.savepoint.take() {
            savepoint::respond(
                &self.requests,
                &request.request,
                Err("the job ended before the savepoint was taken".into()),
            );
        }
        if let Some(fatal) = self.fatal.take() {
            return Err(fatal);
        }
        if self.finished.len() != self.shards as usize {
            // A shard failed: no final checkpoint; recovery resumes from the
            // last complete one.
            return Ok(());
        }
        let checkpoint = self.coordinator.next_id();
        let manifest = self.manifest(checkpoint, &self.finished, true);
        self.catalog
            .commit(&manifest)
            .map_err(|e| format!("writing the final checkpoint {checkpoint}: {e}"))?;
        self.commit(FINAL_CHECKPOINT);
        self.retain();
        Ok(())
    }
}
