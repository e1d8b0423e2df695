//! The half of checkpointing that decides: the coordinator's state machine
//! ([`CheckpointCoordinator`]) fed with the part writers' events and the
//! clock, the manifests, retention and savepoints. Its decisions go to every
//! part writer as [`PartCommand`]s.
//!
//! Runs on one thread that is never a shard's core: in an embedded job the
//! thread that waits for the shards (inside the
//! [`CheckpointDriver`](super::CheckpointDriver)); on a cluster a thread of
//! the coordinator process per running job attempt.
//!
//! Invariants: a manifest is written only when every shard acknowledged its
//! checkpoint (a finished shard's final part answers every checkpoint after
//! its end); `Completed` is commanded only after the manifest is in the
//! storage; a stop-with-savepoint's sources resume if the savepoint fails.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_state::checkpoint_store::{CheckpointCatalog, Manifest, StorageLocation};

use super::part_writer::{PartCommand, PartCost, PartEvent};
use super::restore::{open_catalog, Store};
use super::savepoint::{self, SavepointRequest};
use super::task_entry::{ShardAck, TaskEntry};
use super::{
    CheckpointAction, CheckpointConfig, CheckpointCoordinator, CheckpointError, CheckpointId,
    CheckpointInput, CompletedCheckpoint, FINAL_CHECKPOINT,
};

/// How often (in polls) the storage is checked for a savepoint request.
const SAVEPOINT_POLL_TICKS: u64 = 20;

/// What a checkpoint in flight has cost so far.
struct CheckpointCost {
    started: std::time::Instant,
    parts: PartCost,
    /// Bytes of all the files its manifest lists.
    total_bytes: u64,
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// See the module docs.
pub struct CheckpointLeader {
    config: CheckpointConfig,
    catalog: CheckpointCatalog<Store>,
    coordinator: CheckpointCoordinator<ShardAck>,
    shards: u32,
    /// Final parts of the shards that have finished.
    finished: BTreeMap<u32, ShardAck>,
    started_ms: u64,
    /// Per checkpoint in flight: when triggered and what it cost so far.
    costs: BTreeMap<CheckpointId, CheckpointCost>,
    /// Every checkpoint this leader completed.
    pub completed: Vec<CompletedCheckpoint>,
    /// The checkpoint storage, where savepoint requests arrive.
    requests: Store,
    ticks: u64,
    /// A savepoint asked for, and the checkpoint that takes it once triggered.
    savepoint: Option<(SavepointRequest, Option<CheckpointId>)>,
    /// A stop-with-savepoint completed: the job must stop, committing nothing
    /// more; this is the savepoint.
    pub stopped_with: Option<StorageLocation>,
    /// Checkpoints aborted since the last one completed.
    aborted_in_a_row: u32,
    /// Commands for the part writers, in order (see [`Self::take_commands`]).
    commands: Vec<PartCommand>,
    /// Files retention deleted since last taken (see [`Self::take_deleted`]).
    deleted: Vec<String>,
}

impl CheckpointLeader {
    /// A leader for a job of `shards` shards whose first checkpoint is
    /// numbered `first`.
    pub fn new(
        config: CheckpointConfig,
        shards: u32,
        first: CheckpointId,
    ) -> Result<Self, CheckpointError> {
        let catalog = open_catalog(&config.storage)?;
        let requests = catalog.store().clone();
        Ok(CheckpointLeader {
            catalog,
            coordinator: CheckpointCoordinator::new(config.timing, shards, first),
            requests,
            config,
            shards,
            finished: BTreeMap::new(),
            started_ms: now_unix_ms(),
            costs: BTreeMap::new(),
            completed: Vec::new(),
            ticks: 0,
            savepoint: None,
            stopped_with: None,
            aborted_in_a_row: 0,
            commands: Vec::new(),
            deleted: Vec::new(),
        })
    }

    /// The id above every checkpoint stored or taken.
    pub fn next_id(&self) -> CheckpointId {
        self.coordinator.next_id()
    }

    /// The last checkpoint this leader completed.
    pub fn last_completed(&self) -> Option<CheckpointId> {
        self.coordinator.stats().last_completed
    }

    /// Asks for a checkpoint as soon as none is in flight, whatever the
    /// interval (a worker is draining); it gets an id of at least
    /// [`Self::next_id`] as of now.
    pub fn checkpoint_now(&mut self) {
        self.coordinator.request_now();
    }

    /// Commands for every part writer, oldest first.
    pub fn take_commands(&mut self) -> Vec<PartCommand> {
        std::mem::take(&mut self.commands)
    }

    /// Files retention deleted (part writers forget they uploaded them).
    pub fn take_deleted(&mut self) -> Vec<String> {
        std::mem::take(&mut self.deleted)
    }

    fn now_ms(&self) -> u64 {
        now_unix_ms().saturating_sub(self.started_ms)
    }

    /// Looks for savepoint requests and passes the clock on.
    pub fn poll(&mut self) {
        if self.stopped_with.is_some() {
            return;
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

    /// What a part writer reported.
    pub fn event(&mut self, event: PartEvent) {
        if self.stopped_with.is_some() {
            // Stopped with a savepoint: nothing after it counts.
            return;
        }
        match event {
            PartEvent::Acknowledged {
                checkpoint,
                shard,
                ack,
                cost,
            } => {
                if let Some(c) = self.costs.get_mut(&checkpoint) {
                    c.parts.bytes += cost.bytes;
                    c.parts.sync_micros = c.parts.sync_micros.max(cost.sync_micros);
                    c.parts.alignment_micros = c.parts.alignment_micros.max(cost.alignment_micros);
                    c.parts.in_flight_received_bytes += cost.in_flight_received_bytes;
                    c.parts.in_flight_sent_bytes += cost.in_flight_sent_bytes;
                }
                self.input(CheckpointInput::Acknowledged {
                    checkpoint,
                    task: shard,
                    ack,
                });
            }
            PartEvent::Declined {
                checkpoint,
                shard,
                reason,
            } => self.input(CheckpointInput::Declined {
                checkpoint,
                task: shard,
                reason,
            }),
            PartEvent::Notes { notes } => self.commands.push(PartCommand::Notes { notes }),
            PartEvent::Finished { shard, ack } => {
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
        }
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
                let (mut full, mut stop) = (false, false);
                if let Some((request, id @ None)) = &mut self.savepoint {
                    *id = Some(checkpoint);
                    full = true;
                    // As Flink's stop-with-savepoint: sources read nothing
                    // after its barrier, so no sink sees a record the
                    // savepoint does not account for.
                    stop = request.stop;
                }
                self.costs.insert(
                    checkpoint,
                    CheckpointCost {
                        started: std::time::Instant::now(),
                        parts: PartCost::default(),
                        total_bytes: 0,
                    },
                );
                self.commands.push(PartCommand::Trigger {
                    checkpoint,
                    full,
                    stop,
                });
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
                if let Some(cost) = self.costs.remove(&checkpoint) {
                    self.completed.push(CompletedCheckpoint {
                        id: checkpoint,
                        duration_ms: cost.started.elapsed().as_secs_f64() * 1e3,
                        bytes: cost.parts.bytes,
                        total_bytes: cost.total_bytes,
                        sync_max_ms: cost.parts.sync_micros as f64 / 1e3,
                        alignment_max_ms: cost.parts.alignment_micros as f64 / 1e3,
                        in_flight_received_bytes: cost.parts.in_flight_received_bytes,
                        in_flight_sent_bytes: cost.parts.in_flight_sent_bytes,
                    });
                }
                let mut resume_sources = false;
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
                                resume_sources = request.stop;
                            }
                        }
                        savepoint::respond(&self.requests, &request.request, result);
                    }
                }
                self.commands.push(PartCommand::Completed {
                    checkpoint,
                    resume_sources,
                });
                self.retain();
                None
            }
            CheckpointAction::Aborted { checkpoint, reason } => {
                self.aborted_in_a_row += 1;
                self.costs.remove(&checkpoint);
                let mut resume_sources = false;
                if matches!(&self.savepoint, Some((_, Some(id))) if *id == checkpoint) {
                    let (request, _) = self.savepoint.take().expect("checked");
                    // The job goes on: its sources read on.
                    resume_sources = request.stop;
                    savepoint::respond(
                        &self.requests,
                        &request.request,
                        Err(format!(
                            "the savepoint's checkpoint {checkpoint} was aborted: {reason}"
                        )),
                    );
                }
                tracing::warn!("checkpoint {checkpoint} aborted: {reason}");
                self.commands.push(PartCommand::Aborted {
                    checkpoint,
                    resume_sources,
                });
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

    fn retain(&mut self) {
        match self.catalog.retain(self.config.retain) {
            Ok(retained) => self.deleted.extend(retained.deleted_files),
            Err(e) => tracing::warn!("dropping old checkpoints: {e}"),
        }
    }

    /// Every shard has ended (or the job stops): answers a pending savepoint
    /// request, and when every shard left its final part writes the final
    /// checkpoint (marked finished), commands its commit and returns its id.
    pub fn finish(&mut self) -> Result<Option<CheckpointId>, CheckpointError> {
        if let Some((request, _)) = self.savepoint.take() {
            savepoint::respond(
                &self.requests,
                &request.request,
                Err("the job ended before the savepoint was taken".into()),
            );
        }
        if self.finished.len() != self.shards as usize {
            // A shard failed: no final checkpoint; recovery resumes from the
            // last complete one.
            return Ok(None);
        }
        let checkpoint = self.coordinator.next_id();
        let manifest = self.manifest(checkpoint, &self.finished, true);
        self.catalog
            .commit(&manifest)
            .map_err(CheckpointError::storage(format!(
                "writing the final checkpoint {checkpoint}"
            )))?;
        self.commands.push(PartCommand::Completed {
            checkpoint: FINAL_CHECKPOINT,
            resume_sources: false,
        });
        self.retain();
        Ok(Some(checkpoint))
    }

    /// Whether every shard has left its final part.
    pub fn all_finished(&self) -> bool {
        self.finished.len() == self.shards as usize
    }
}
