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
use sluice_state::checkpoint_store::{CheckpointCatalog, FileInfo, SharedUpload};
use sluice_state::{SnapshotKind, StateFile};

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
    /// The longest a barrier of this checkpoint waited at one of the
    /// shard's input gates for the barriers of the gate's other channels
    /// (aligned checkpoints; about 0 for unaligned ones).
    #[serde(default)]
    pub alignment_micros: u64,
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
    /// Per shard, its state file of a checkpoint still being written,
    /// uploaded as its bytes come ([`ShardReport::StateBytes`]).
    streaming: BTreeMap<u32, StreamedFile>,
    /// A failure that must fail the job (a shard could not write its final part).
    pub fatal: Option<CheckpointError>,
}

/// A shard's state file on its way to storage.
struct StreamedFile {
    checkpoint: CheckpointId,
    name: String,
    /// The upload, or why it failed (the shard's part is then declined).
    upload: Result<SharedUpload, CheckpointError>,
}

/// The name of `shard`'s state file for `checkpoint`.
fn state_file_name(checkpoint: CheckpointId, shard: u32, kind: SnapshotKind) -> String {
    match kind {
        SnapshotKind::Full => format!("{checkpoint:020}-{shard:05}.state"),
        SnapshotKind::Changes => format!("{checkpoint:020}-{shard:05}.changes"),
    }
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
            streaming: BTreeMap::new(),
            fatal: None,
        }
    }

    /// Drops the upload of `shard`'s state file if `drop_it` says so.
    fn abort_streamed(&mut self, shard: u32, drop_it: impl Fn(CheckpointId) -> bool) {
        if let Some(streamed) = self.streaming.get(&shard) {
            if drop_it(streamed.checkpoint) {
                let streamed = self.streaming.remove(&shard).expect("just seen");
                if let Ok(upload) = streamed.upload {
                    self.catalog.abort_shared(upload);
                }
            }
        }
    }

    /// Drops every state file still being uploaded (the job is ending).
    pub fn abort_streams(&mut self) {
        let shards: Vec<u32> = self.streaming.keys().copied().collect();
        for shard in shards {
            self.abort_streamed(shard, |_| true);
        }
    }

    /// Uploads the next bytes of `shard`'s state file for `checkpoint`.
    fn stream(
        &mut self,
        shard: u32,
        checkpoint: CheckpointId,
        kind: SnapshotKind,
        bytes: &StateFile,
    ) {
        // A checkpoint the shard dropped for a newer one.
        self.abort_streamed(shard, |c| c != checkpoint);
        let catalog = &self.catalog;
        let streamed = self.streaming.entry(shard).or_insert_with(|| {
            let name = state_file_name(checkpoint, shard, kind);
            let upload = (catalog.begin_shared(&name))
                .map_err(CheckpointError::storage(format!("writing {name}")));
            StreamedFile {
                checkpoint,
                name,
                upload,
            }
        });
        if let Ok(upload) = &mut streamed.upload {
            for chunk in bytes.chunks() {
                if let Err(e) = catalog.append_shared(upload, chunk) {
                    // The store dropped what it had of the file.
                    streamed.upload = Err(CheckpointError::Storage {
                        context: format!("writing {}", streamed.name),
                        source: e,
                    });
                    break;
                }
            }
        }
    }

    /// Writes the rest of `shard`'s state file for `checkpoint`: after the
    /// bytes streamed before, or the whole file.
    fn write_state(
        &mut self,
        shard: u32,
        checkpoint: CheckpointId,
        name: &str,
        rest: &StateFile,
    ) -> Result<FileInfo, CheckpointError> {
        let streamed = match self.streaming.remove(&shard) {
            Some(streamed) if streamed.checkpoint == checkpoint => streamed,
            other => {
                if let Some(StreamedFile {
                    upload: Ok(upload), ..
                }) = other
                {
                    self.catalog.abort_shared(upload);
                }
                return self.write(checkpoint, name, &rest.chunks());
            }
        };
        let mut upload = streamed.upload?;
        for chunk in rest.chunks() {
            (self.catalog.append_shared(&mut upload, chunk))
                .map_err(CheckpointError::storage(format!("writing {name}")))?;
        }
        let info = (self.catalog.finish_shared(upload))
            .map_err(CheckpointError::storage(format!("writing {name}")))?;
        self.written
            .entry(checkpoint)
            .or_default()
            .push(name.to_owned());
        Ok(info)
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
                alignment_micros,
                kind,
                channels,
                native,
            } => {
                // The state file's bytes are added once it is written (some
                // of them may have been streamed before this report).
                let mut cost = PartCost {
                    sync_micros,
                    alignment_micros,
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
                let name = state_file_name(checkpoint, shard, kind);
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
                        self.write_state(shard, checkpoint, &name, &state)
                            .map(|info| (info, channels, native))
                    })
                });
                // Whatever happened, nothing of this part streams any more.
                self.abort_streamed(shard, |c| c <= checkpoint);
                Some(match written {
                    Ok((info, channels, (native, native_files))) => {
                        cost.bytes += info.size;
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
            ShardReport::StateBytes {
                shard,
                checkpoint,
                kind,
                bytes,
            } => {
                self.stream(shard, checkpoint, kind, &bytes);
                None
            }
            ShardReport::Declined {
                shard,
                checkpoint,
                reason,
            } => {
                self.abort_streamed(shard, |c| c <= checkpoint);
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
                self.abort_streamed(shard, |_| true);
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
                let shards: Vec<u32> = self.streaming.keys().copied().collect();
                for shard in shards {
                    self.abort_streamed(shard, |c| c == checkpoint);
                }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sluice_state::checkpoint_store::FileStore;
    use sluice_state::{KeyGroup, KeyGroups, RestoreSet, StateFileWriter};

    use super::*;

    fn writer(dir: &Path) -> PartWriter {
        let store: Store = Arc::new(FileStore::new(dir));
        PartWriter::new(
            CheckpointCatalog::new(store),
            Committers::default(),
            CheckpointSignals::default(),
            String::new(),
        )
    }

    /// Writes a fragment of one group into `file` and takes its bytes.
    fn piece(file: &mut StateFileWriter, group: u16) -> StateFile {
        let bytes = vec![group as u8; 100];
        (file.section_of("s", vec![(KeyGroup(group), vec![bytes])])).unwrap();
        file.take_ready()
    }

    fn bytes_of(shard: u32, checkpoint: CheckpointId, bytes: StateFile) -> ShardReport {
        ShardReport::StateBytes {
            shard,
            checkpoint,
            kind: SnapshotKind::Full,
            bytes,
        }
    }

    fn snapshot(shard: u32, checkpoint: CheckpointId, state: StateFile) -> ShardReport {
        ShardReport::Snapshot {
            shard,
            checkpoint,
            state,
            sources: Default::default(),
            sync_micros: 0,
            alignment_micros: 0,
            kind: SnapshotKind::Full,
            channels: Default::default(),
            native: Vec::new(),
        }
    }

    fn shared_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("shared"))
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn a_streamed_state_file_is_the_whole_file_and_a_dropped_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path());
        let final_id = super::super::FINAL_CHECKPOINT;
        // Checkpoint 1 streams a piece; the shard then drops it for 2.
        let mut one = StateFileWriter::new(SnapshotKind::Full);
        assert!(w
            .report(bytes_of(0, 1, piece(&mut one, 1)), final_id)
            .is_none());
        let mut two = StateFileWriter::new(SnapshotKind::Full);
        let mut whole = Vec::new();
        for group in [2, 3] {
            let bytes = piece(&mut two, group);
            whole.extend(bytes.to_vec());
            assert!(w.report(bytes_of(0, 2, bytes), final_id).is_none());
        }
        (two.section_of("s", vec![(KeyGroup(4), vec![vec![4; 100]])])).unwrap();
        let rest = two.finish();
        whole.extend(rest.to_vec());
        let Some(PartEvent::Acknowledged { ack, cost, .. }) =
            w.report(snapshot(0, 2, rest), final_id)
        else {
            panic!("checkpoint 2 not acknowledged");
        };
        let name = "00000000000000000002-00000.state";
        assert_eq!(ack.files, [(name.to_owned(), FileInfo::of(&whole))]);
        assert_eq!(cost.bytes, whole.len() as u64);
        let stored = std::fs::read(dir.path().join("shared").join(name)).unwrap();
        assert!(
            stored == whole,
            "the file is the bytes streamed, then the rest"
        );
        let range = KeyGroups::new(8, 1).range_of(0);
        RestoreSet::default()
            .add_file(name, &stored, range)
            .unwrap();
        // Nothing of checkpoint 1, no temporary file.
        assert_eq!(shared_files(dir.path()), [name]);

        // A part declined after streaming leaves nothing either, and so
        // does a checkpoint the leader aborts.
        let mut three = StateFileWriter::new(SnapshotKind::Full);
        w.report(bytes_of(0, 3, piece(&mut three, 1)), final_id);
        let declined = ShardReport::Declined {
            shard: 0,
            checkpoint: 3,
            reason: "test".into(),
        };
        assert!(matches!(
            w.report(declined, final_id),
            Some(PartEvent::Declined { checkpoint: 3, .. })
        ));
        let mut four = StateFileWriter::new(SnapshotKind::Full);
        w.report(bytes_of(1, 4, piece(&mut four, 1)), final_id);
        w.apply(&PartCommand::Aborted {
            checkpoint: 4,
            resume_sources: false,
        });
        assert_eq!(shared_files(dir.path()), [name]);
        assert!(w.streaming.is_empty());
    }
}
