//! Runs a job's checkpoints in the embedded runtime: the coordinator's state
//! machine, the storage, and the shards' reports, on the thread that waits for
//! the job (never on a shard's core).
//!
//! Every few milliseconds [`CheckpointDriver::poll`] writes the state files
//! the shards reported (RocksDB parts through `native_upload`), passes
//! acknowledgements and the clock to the [`CheckpointCoordinator`], and
//! carries out its actions: a trigger is published to the sources through an
//! atomic; a manifest is written with the catalog (one `TaskEntry` per
//! shard); a completed checkpoint is committed by the sinks' committers and
//! old checkpoints are dropped beyond `retain`; an aborted one's files are
//! discarded. When every shard has finished, [`CheckpointDriver::finish`]
//! writes a final checkpoint marked finished and commits everything.
//! Restoring is `restore`'s, before the driver starts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_state::checkpoint_store::{CheckpointCatalog, FileInfo, Manifest, StorageLocation};
use sluice_state::SnapshotKind;

use super::channel_file::encode_channels;
use super::native_upload::{upload_native, UploadedFiles};
use super::restore::{open_catalog, Restored, Store};
use super::savepoint::{self, SavepointRequest};
use super::shard::{CheckpointSignals, ShardReport};
use super::task_entry::{ShardAck, TaskEntry};
use super::{
    CheckpointAction, CheckpointConfig, CheckpointCoordinator, CheckpointError, CheckpointId,
    CheckpointInput, Committer,
};

/// How often (in driver ticks) the storage is checked for a savepoint request.
const SAVEPOINT_POLL_TICKS: u64 = 20;

/// The checkpoint id of the parts a sink keeps at the end of its input; they
/// commit with the job's final checkpoint.
pub const FINAL_CHECKPOINT: CheckpointId = CheckpointId::MAX;

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

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    uploaded: UploadedFiles,
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
    pub fatal: Option<CheckpointError>,
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
    ) -> Result<Self, CheckpointError> {
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
                    tracing::info!(
                        "savepoint requested into {}{}",
                        request.target,
                        if request.stop { ", then stop" } else { "" }
                    );
                    self.savepoint = Some((request, None));
                    self.coordinator.request_now();
                }
                Some(Err(e)) => tracing::warn!("{e}"),
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
                let (catalog, written) = (&self.catalog, &mut self.written);
                let native =
                    upload_native(checkpoint, native, &mut self.uploaded, |name, bytes| {
                        write_file(catalog, written, checkpoint, name, &[bytes])
                    })
                    .map(|upload| {
                        if let Some(cost) = self.costs.get_mut(&checkpoint) {
                            cost.bytes += upload.bytes;
                        }
                        (upload.handles, upload.files)
                    });
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
                        encode_channels(&channels)
                            .map_err(|source| CheckpointError::Encode {
                                file: name.clone(),
                                source,
                            })
                            .and_then(|bytes| self.write(checkpoint, &name, &[&bytes]))
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
                        reason: reason.to_string(),
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
                    self.fatal = Some(CheckpointError::FinalState { shard, reason });
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
                    Err(source) => {
                        self.fatal = Some(CheckpointError::Storage {
                            context: format!("writing shard {shard}'s final state"),
                            source,
                        });
                    }
                }
            }
        }
    }

    fn write(
        &mut self,
        checkpoint: CheckpointId,
        name: &str,
        chunks: &[&[u8]],
    ) -> Result<FileInfo, CheckpointError> {
        write_file(&self.catalog, &mut self.written, checkpoint, name, chunks)
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
                    tracing::info!(
                        "checkpoint {checkpoint} completed, after {} aborted",
                        std::mem::take(&mut self.aborted_in_a_row)
                    );
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
                                tracing::info!("savepoint {location} written");
                                if request.stop {
                                    self.stopped_with = Some(location.clone());
                                }
                            }
                            Err(e) => {
                                tracing::warn!("savepoint of checkpoint {checkpoint} failed: {e}");
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
                tracing::warn!("checkpoint {checkpoint} aborted: {reason}");
                if let Some(files) = self.written.remove(&checkpoint) {
                    for name in &files {
                        self.uploaded.remove(name);
                    }
                    if let Err(e) = self.catalog.discard(&files) {
                        tracing::warn!(
                            "discarding checkpoint {checkpoint}'s files (retried later): {e}"
                        );
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
            tasks: acks
                .iter()
                .map(|(t, a)| (*t, TaskEntry::of(a).to_json()))
                .collect(),
            finished,
        }
    }

    fn commit(&self, checkpoint: CheckpointId) {
        for committer in self.committers.lock().expect("committers lock").iter() {
            if let Err(e) = committer.lock().expect("committer lock").commit(checkpoint) {
                // The parts stay pending; the next completed checkpoint (or a
                // recovery) commits them.
                tracing::warn!("committing checkpoint {checkpoint}: {e}");
            }
        }
    }

    fn retain(&mut self) {
        if !self.undiscarded.is_empty() {
            let files = std::mem::take(&mut self.undiscarded);
            if let Err(e) = self.catalog.discard(&files) {
                tracing::warn!("discarding files of aborted checkpoints: {e}");
                self.undiscarded = files;
            }
        }
        match self.catalog.retain(self.config.retain) {
            Ok(retained) => {
                for name in &retained.deleted_files {
                    self.uploaded.remove(name);
                }
            }
            Err(e) => tracing::warn!("dropping old checkpoints: {e}"),
        }
    }

    /// All shards have finished: writes the final checkpoint (marked finished)
    /// and commits every sink's remaining parts.
    pub fn finish(&mut self) -> Result<(), CheckpointError> {
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
            .map_err(CheckpointError::storage(format!(
                "writing the final checkpoint {checkpoint}"
            )))?;
        self.commit(FINAL_CHECKPOINT);
        self.retain();
        Ok(())
    }
}

/// Writes file `name` of `checkpoint` to the storage, noting it among the
/// checkpoint's files (discarded if it aborts).
fn write_file(
    catalog: &CheckpointCatalog<Store>,
    written: &mut BTreeMap<CheckpointId, Vec<String>>,
    checkpoint: CheckpointId,
    name: &str,
    chunks: &[&[u8]],
) -> Result<FileInfo, CheckpointError> {
    let info = catalog
        .put_shared_chunks(name, chunks)
        .map_err(CheckpointError::storage(format!("writing {name}")))?;
    written.entry(checkpoint).or_default().push(name.to_owned());
    Ok(info)
}
