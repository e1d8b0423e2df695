//! The half of checkpointing that lives where shards run: it turns the
//! shards' reports into files in the checkpoint storage and acknowledgements
//! for the [`CheckpointLeader`](super::CheckpointLeader), and carries out
//! the leader's commands ([`PartCommand`]): publish a trigger to the shards,
//! commit the sinks of a completed checkpoint, discard an aborted one's files.
//!
//! Runs on the thread that waits for the shards of this process (never on a
//! shard's core). In an embedded job the leader sits next to it in the same
//! [`CheckpointDriver`](super::CheckpointDriver); on a cluster each worker
//! has one for its shards and the leader runs in the coordinator, the two
//! exchanging [`PartEvent`]s and [`PartCommand`]s as messages.
//!
//! Invariants: a shard's changes file extends its chain as of the last
//! checkpoint this writer saw completed (the shard writes changes only on top
//! of that); files of a checkpoint are discarded only when it aborts; sinks
//! commit only checkpoints the leader reported complete, in order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_state::checkpoint_store::{CheckpointCatalog, FileInfo};
use sluice_state::SnapshotKind;

use super::channel_file::encode_channels;
use super::native_upload::{upload_native, UploadedFiles};
use super::restore::Store;
use super::shard::{CheckpointSignals, ShardReport};
use super::task_entry::ShardAck;
use super::{CheckpointError, CheckpointId, CommitNote, Committers};

/// What a shard's part of a checkpoint cost (for the leader's statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartCost {
    /// Bytes uploaded.
    pub bytes: u64,
    /// Time spent writing state on the shard's core.
    pub sync_micros: u64,
    /// Records in flight kept by unaligned barriers (encoded bytes).
    pub in_flight_received_bytes: u64,
    pub in_flight_sent_bytes: u64,
}

/// What the part writer tells the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum PartEvent {
    Acknowledged {
        checkpoint: CheckpointId,
        shard: u32,
        ack: ShardAck,
        cost: PartCost,
    },
    Declined {
        checkpoint: CheckpointId,
        shard: u32,
        reason: String,
    },
    /// The shard has ended: this part answers every later checkpoint.
    Finished { shard: u32, ack: ShardAck },
    /// Sinks here committed and left notes for the process that decides
    /// for the job (see [`Committer`](super::Committer)).
    Notes { notes: Vec<CommitNote> },
}

/// What the leader tells every part writer of the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum PartCommand {
    /// Sources emit barrier `checkpoint`; `full`: every shard writes all its
    /// state (a savepoint); `stop`: sources read nothing after it.
    Trigger {
        checkpoint: CheckpointId,
        full: bool,
        stop: bool,
    },
    /// `checkpoint`'s manifest is written: sinks commit it.
    /// `resume_sources`: a stop-with-savepoint failed, sources read on.
    Completed {
        checkpoint: CheckpointId,
        resume_sources: bool,
    },
    /// `checkpoint` will never complete: its files go.
    Aborted {
        checkpoint: CheckpointId,
        resume_sources: bool,
    },
    /// Notes some part writer's sinks left, handed to every part writer.
    Notes { notes: Vec<CommitNote> },
}

/// See the module docs.
pub struct PartWriter {
    catalog: CheckpointCatalog<Store>,
    committers: Committers,
    signals: CheckpointSignals,
    /// Appended to the names of final parts (a cluster's attempt), so that
    /// no attempt overwrites another's.
    final_tag: String,
    /// Files written for checkpoints not yet completed, to discard on abort.
    written: BTreeMap<CheckpointId, Vec<String>>,
    /// RocksDB files uploaded (shared name → what the manifest records):
    /// each is uploaded once and referred to until retention deletes it.
    uploaded: UploadedFiles,
    /// Per shard, the state files of the last completed checkpoint.
    chains: BTreeMap<u32, Vec<(String, FileInfo)>>,
    /// Per checkpoint acknowledged and not yet completed, each shard's chain.
    acked: BTreeMap<CheckpointId, BTreeMap<u32, Vec<(String, FileInfo)>>>,
    /// Files of aborted checkpoints that could not be deleted yet (the
    /// storage was unreachable): retried after the next completed one.
    undiscarded: Vec<String>,
    /// A failure that must fail the job (a shard could not write its final part).
    pub fatal: Option<CheckpointError>,
}

impl PartWriter {
    pub fn new(
        catalog: CheckpointCatalog<Store>,
        committers: Committers,
        signals: CheckpointSignals,
        final_tag: String,
    ) -> Self {
        PartWriter {
            catalog,
            committers,
            signals,
            final_tag,
            written: BTreeMap::new(),
            uploaded: BTreeMap::new(),
            chains: BTreeMap::new(),
            acked: BTreeMap::new(),
            undiscarded: Vec::new(),
            fatal: None,
        }
    }

    /// Writes what a shard reported; `final_id` names a final part (above
    /// every checkpoint id stored). Returns what the leader must hear.
    pub fn report(&mut self, report: ShardReport, final_id: CheckpointId) -> Option<PartEvent> {
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
                let mut cost = PartCost {
                    bytes: state.len() as u64,
                    sync_micros,
                    ..PartCost::default()
                };
                for (name, records) in &channels {
                    match name.starts_with(crate::exchange::OUTPUT_STATE_PREFIX) {
                        true => cost.in_flight_sent_bytes += records.len() as u64,
                        false => cost.in_flight_received_bytes += records.len() as u64,
                    }
                }
                let (catalog, written) = (&self.catalog, &mut self.written);
                let native =
                    upload_native(checkpoint, native, &mut self.uploaded, |name, bytes| {
                        write_file(catalog, written, checkpoint, name, &[bytes])
                    })
                    .map(|upload| {
                        cost.bytes += upload.bytes;
                        (upload.handles, upload.files)
                    });
                let name = match kind {
                    SnapshotKind::Full => format!("{checkpoint:020}-{shard:05}.state"),
                    SnapshotKind::Changes => format!("{checkpoint:020}-{shard:05}.changes"),
                };
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
                Some(match written {
                    Ok((info, channels, (native, native_files))) => {
                        files.push((name, info));
                        (self.acked.entry(checkpoint).or_default()).insert(shard, files.clone());
                        PartEvent::Acknowledged {
                            checkpoint,
                            shard,
                            ack: ShardAck {
                                files,
                                sources,
                                channels,
                                native,
                                native_files,
                            },
                            cost,
                        }
                    }
                    Err(reason) => PartEvent::Declined {
                        checkpoint,
                        shard,
                        reason: reason.to_string(),
                    },
                })
            }
            ShardReport::Declined {
                shard,
                checkpoint,
                reason,
            } => {
                if checkpoint == super::FINAL_CHECKPOINT {
                    self.fatal = Some(CheckpointError::FinalState { shard, reason });
                    return None;
                }
                Some(PartEvent::Declined {
                    checkpoint,
                    shard,
                    reason,
                })
            }
            ShardReport::Finished {
                shard,
                state,
                sources,
            } => {
                let name = format!("{final_id:020}-{shard:05}{}.final.state", self.final_tag);
                match self.catalog.put_shared(&name, &state) {
                    Ok(info) => Some(PartEvent::Finished {
                        shard,
                        ack: ShardAck {
                            files: vec![(name, info)],
                            sources,
                            channels: None,
                            native: Vec::new(),
                            native_files: Vec::new(),
                        },
                    }),
                    Err(source) => {
                        self.fatal = Some(CheckpointError::Storage {
                            context: format!("writing shard {shard}'s final state"),
                            source,
                        });
                        None
                    }
                }
            }
        }
    }

    /// Carries out one of the leader's commands.
    pub fn apply(&mut self, command: &PartCommand) {
        match *command {
            PartCommand::Notes { ref notes } => self.receive_notes(notes),
            PartCommand::Trigger {
                checkpoint,
                full,
                stop,
            } => {
                // Before the trigger is published: the shards read them then.
                if full {
                    (self.signals.full_requested).store(checkpoint, Ordering::Release);
                }
                if stop {
                    (self.signals.stop_sources_at).store(checkpoint, Ordering::Release);
                }
                self.signals.triggered.store(checkpoint, Ordering::Release);
            }
            PartCommand::Completed {
                checkpoint,
                resume_sources,
            } => {
                self.written.retain(|id, _| *id > checkpoint);
                if let Some(chains) = self.acked.remove(&checkpoint) {
                    self.chains = chains;
                }
                self.acked.retain(|id, _| *id > checkpoint);
                store_max(&self.signals.completed, checkpoint);
                self.commit(checkpoint);
                if resume_sources {
                    self.signals.stop_sources_at.store(0, Ordering::Release);
                }
                if !self.undiscarded.is_empty() {
                    let files = std::mem::take(&mut self.undiscarded);
                    if let Err(e) = self.catalog.discard(&files) {
                        tracing::warn!("discarding files of aborted checkpoints: {e}");
                        self.undiscarded = files;
                    }
                }
            }
            PartCommand::Aborted {
                checkpoint,
                resume_sources,
            } => {
                if resume_sources {
                    self.signals.stop_sources_at.store(0, Ordering::Release);
                }
                self.acked.remove(&checkpoint);
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
            }
        }
    }

    /// Hands notes from other processes to every committer here.
    fn receive_notes(&self, notes: &[CommitNote]) {
        for committer in self.committers.lock().expect("committers lock").iter() {
            let mut committer = committer.lock().expect("committer lock");
            for note in notes {
                if let Err(e) = committer.receive_note(note) {
                    // What the note would have let this process decide
                    // waits; nothing committed is lost.
                    tracing::warn!("a commit note of sink {}: {e}", note.sink);
                }
            }
        }
    }

    /// The notes the committers here left since the last call.
    pub fn take_notes(&self) -> Vec<CommitNote> {
        let committers = self.committers.lock().expect("committers lock");
        (committers.iter())
            .flat_map(|c| c.lock().expect("committer lock").take_notes())
            .collect()
    }

    /// Whether a committer here waits for other processes' notes of the
    /// final checkpoint.
    pub fn awaiting_final_notes(&self) -> bool {
        let committers = self.committers.lock().expect("committers lock");
        (committers.iter()).any(|c| c.lock().expect("committer lock").awaiting_final_notes())
    }

    /// Retention deleted these files: a later checkpoint uploads them again
    /// if it needs them.
    pub fn forget_uploaded(&mut self, deleted: &[String]) {
        for name in deleted {
            self.uploaded.remove(name);
        }
    }

    /// Commits every sink's parts up to `checkpoint`.
    pub fn commit(&self, checkpoint: CheckpointId) {
        for committer in self.committers.lock().expect("committers lock").iter() {
            if let Err(e) = committer.lock().expect("committer lock").commit(checkpoint) {
                // The parts stay pending; the next completed checkpoint (or a
                // recovery) commits them.
                tracing::warn!("committing checkpoint {checkpoint}: {e}");
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
}

/// Raises `atomic` to `value` (a completed id never goes back; the final
/// checkpoint is above all).
fn store_max(atomic: &Arc<AtomicU64>, value: CheckpointId) {
    atomic.fetch_max(value, Ordering::AcqRel);
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
