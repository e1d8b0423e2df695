//! One shard's part of each checkpoint.
//!
//! Lives on its shard's core. The pipeline's participants register while the
//! shard is built: every source (it records its partitions' positions), every
//! plan node that owns keyed state (it writes its states when the barrier
//! reaches it) and every sink (it pre-commits). When barrier *n* has reached
//! all of them, the shard's state file and positions go to the job's
//! checkpoint driver ([`ShardReport::Snapshot`]). A participant that has seen
//! the end of its input counts as done for every later checkpoint (its state
//! no longer changes); when all have ended the shard sends its final part
//! once ([`ShardReport::Finished`]: positions only, see `final_part`) and
//! stops.
//!
//! With incremental checkpoints a shard writes only the changes since its
//! previous part when that part belongs to the last completed checkpoint
//! (and fewer than `full_every` changes files follow its last full one);
//! otherwise — first checkpoint, after a restore, after one was dropped or
//! aborted — it writes everything.
//!
//! Invariants: a shard works on at most one checkpoint; a barrier for a newer
//! one drops the older (the driver aborted it), a barrier for an older one is
//! ignored; each participant counts once per checkpoint.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use crate::metrics::ShardMetrics;

use std::cell::Cell;

use sluice_state::rocks_backend::{NativePart, PendingNative};
use sluice_state::{OwnerSnapshot, SnapshotKind, StateFile, StateFileWriter, StateRegistry};

use super::CheckpointId;

/// Bytes of a state file a shard collects before it hands them to the
/// driver ([`ShardReport::StateBytes`]) while its snapshot is still being
/// written (a few in unit tests, so that their snapshots stream).
const STREAMED_STATE_BYTES: usize = if cfg!(test) { 64 } else { 1 << 20 };

/// Source positions by `<source node>/<partition>`.
pub type SourcePositions = BTreeMap<String, u64>;

/// The key of one source partition's position.
pub fn position_key(source_node: u64, partition: &str) -> String {
    format!("source-{source_node}/{partition}")
}

/// What a shard tells the checkpoint driver.
#[derive(Debug)]
pub enum ShardReport {
    /// The shard's part of `checkpoint`.
    Snapshot {
        shard: u32,
        checkpoint: CheckpointId,
        /// The shard's state file: what `StateBytes` reports of this
        /// checkpoint did not already carry (all of it when none came).
        state: StateFile,
        sources: SourcePositions,
        /// Time spent writing state on the shard's core (the synchronous part).
        sync_micros: u64,
        /// The longest this checkpoint's barrier waited for alignment at one
        /// of the shard's input gates.
        alignment_micros: u64,
        /// Whether `state` holds everything or the changes since the shard's
        /// previous part.
        kind: SnapshotKind,
        /// Records in flight at unaligned barriers, by channel.
        channels: ChannelStates,
        /// RocksDB checkpoints of the plan nodes whose states live there
        /// (local directories the driver uploads from).
        native: Vec<NativePart>,
    },
    /// The next bytes of the shard's state file for `checkpoint`, written
    /// while its tables are still being encoded (the `Snapshot` that ends
    /// the part holds the rest of the file); sent once a few of them are
    /// ready, so that a snapshot never sits whole in memory.
    StateBytes {
        shard: u32,
        checkpoint: CheckpointId,
        kind: SnapshotKind,
        bytes: StateFile,
    },
    /// The shard could not take its part of `checkpoint`.
    Declined {
        shard: u32,
        checkpoint: CheckpointId,
        reason: String,
    },
    /// Every participant has ended: this part holds for every later checkpoint.
    Finished {
        shard: u32,
        state: Vec<u8>,
        sources: SourcePositions,
    },
}

/// What kind of participant, for what it contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantKind {
    Source,
    StateOwner(u64),
    Sink,
    /// An input gate of unaligned checkpoints: it adds the records that were
    /// in flight when the barrier overtook them (channel state).
    Channel,
}

/// Channel state by name (`channel-<edge>`): encoded records.
pub type ChannelStates = BTreeMap<String, Vec<u8>>;

struct Participant {
    kind: ParticipantKind,
    ended: bool,
    /// A source's last positions (kept from its last barrier or its end).
    positions: SourcePositions,
}

struct InProgress {
    checkpoint: CheckpointId,
    sync_micros: u64,
    file: StateFileWriter,
    sources: SourcePositions,
    channels: ChannelStates,
    native: Vec<NativePart>,
    /// RocksDB checkpoints begun at the barrier, until their background
    /// flush is done and their files are listed.
    native_pending: Vec<PendingNative>,
    done: Vec<bool>,
    /// Owners whose states are still being written (participant, snapshot).
    pending: Vec<(usize, OwnerSnapshot)>,
}

/// See the module docs.
pub struct ShardCheckpoints {
    shard: u32,
    /// The shard's metrics (the gates' alignment waits), when it has them.
    metrics: Option<Arc<ShardMetrics>>,
    registry: Rc<RefCell<StateRegistry>>,
    reports: Sender<ShardReport>,
    /// The newest checkpoint the driver triggered (sources poll it).
    triggered: Arc<AtomicU64>,
    /// The checkpoint the job resumed from (0 for none): sources emit a
    /// barrier for every triggered checkpoint above it.
    resumed_from: CheckpointId,
    participants: RefCell<Vec<Participant>>,
    current: RefCell<Option<InProgress>>,
    /// Every participant has ended.
    finishing: Cell<bool>,
    finished_sent: RefCell<bool>,
    /// Incremental: at most this many changes files after a full one.
    full_every: Option<u32>,
    /// The newest checkpoint the driver completed.
    completed: Arc<AtomicU64>,
    /// The checkpoint of this shard's last part sent, and how many changes
    /// files it ends since the last full one.
    last_sent: Cell<Option<(CheckpointId, u32)>>,
    /// A checkpoint was dropped halfway: some states forgot their changes.
    needs_full: Cell<bool>,
    full_requested: Arc<AtomicU64>,
    stop_sources_at: Arc<AtomicU64>,
}

/// What the driver publishes to every shard (written by the driver only).
#[derive(Clone, Default)]
pub struct CheckpointSignals {
    /// The newest checkpoint triggered (sources poll it).
    pub triggered: Arc<AtomicU64>,
    /// The newest checkpoint completed.
    pub completed: Arc<AtomicU64>,
    /// The checkpoint every shard writes in full (a savepoint).
    pub full_requested: Arc<AtomicU64>,
    /// A stop-with-savepoint's checkpoint (0: none): sources read nothing
    /// after its barrier. Published before its trigger; cleared when it
    /// fails, and the sources read on.
    pub stop_sources_at: Arc<AtomicU64>,
}

/// How a shard takes part in checkpoints.
pub struct ShardCheckpointing {
    pub reports: Sender<ShardReport>,
    pub signals: CheckpointSignals,
    /// Incremental checkpoints: a full snapshot at least every this many.
    pub full_every: Option<u32>,
}

impl ShardCheckpoints {
    pub fn new(
        shard: u32,
        registry: Rc<RefCell<StateRegistry>>,
        checkpointing: ShardCheckpointing,
        resumed_from: CheckpointId,
    ) -> Self {
        ShardCheckpoints {
            shard,
            metrics: None,
            registry,
            reports: checkpointing.reports,
            triggered: checkpointing.signals.triggered,
            resumed_from,
            participants: RefCell::new(Vec::new()),
            current: RefCell::new(None),
            finishing: Cell::new(false),
            finished_sent: RefCell::new(false),
            full_every: checkpointing.full_every,
            completed: checkpointing.signals.completed,
            last_sent: Cell::new(None),
            needs_full: Cell::new(true),
            full_requested: checkpointing.signals.full_requested,
            stop_sources_at: checkpointing.signals.stop_sources_at,
        }
    }

    /// What the next part holds (see the module docs).
    fn next_kind(&self, checkpoint: CheckpointId) -> SnapshotKind {
        if self.full_requested.load(Ordering::Acquire) == checkpoint {
            return SnapshotKind::Full;
        }
        let completed = self.completed.load(Ordering::Acquire);
        match (self.full_every, self.last_sent.get()) {
            (Some(full_every), Some((sent, changes)))
                if sent == completed && changes < full_every && !self.needs_full.get() =>
            {
                SnapshotKind::Changes
            }
            _ => SnapshotKind::Full,
        }
    }

    /// The newest checkpoint triggered (0 before the first).
    pub fn triggered(&self) -> CheckpointId {
        self.triggered.load(Ordering::Acquire)
    }

    /// Whether a source whose last barrier was `last_barrier` must read
    /// nothing more: that barrier belongs to a stop-with-savepoint.
    pub fn sources_stopped_at(&self, last_barrier: CheckpointId) -> bool {
        let stop = self.stop_sources_at.load(Ordering::Acquire);
        stop != 0 && stop == last_barrier
    }

    /// The checkpoint the job resumed from (0 for none).
    pub fn resumed_from(&self) -> CheckpointId {
        self.resumed_from
    }

    /// Adds a participant (while building); returns its index.
    pub fn participate(&self, kind: ParticipantKind) -> usize {
        let mut participants = self.participants.borrow_mut();
        participants.push(Participant {
            kind,
            ended: false,
            positions: SourcePositions::new(),
        });
        participants.len() - 1
    }

    /// Participant `index` has passed barrier `checkpoint` (a source with the
    /// positions it recorded; empty for others).
    pub fn at_barrier(&self, index: usize, checkpoint: CheckpointId, positions: SourcePositions) {
        if !self.begin(checkpoint) {
            return;
        }
        if !positions.is_empty() {
            self.participants.borrow_mut()[index].positions = positions;
        }
        self.contribute(index);
        self.send_if_complete();
    }

    /// Gate participant `index` has all of checkpoint `checkpoint`'s barriers:
    /// `records` were in flight when the first one overtook them.
    pub fn channel_state(
        &self,
        index: usize,
        checkpoint: CheckpointId,
        name: String,
        records: Vec<u8>,
    ) {
        if !self.begin(checkpoint) {
            return;
        }
        if let Some(progress) = self.current.borrow_mut().as_mut() {
            if !records.is_empty() {
                progress.channels.insert(name, records);
            }
        }
        self.contribute(index);
        self.send_if_complete();
    }

    /// This shard cannot take its part of `checkpoint`: the driver aborts it.
    pub fn decline(&self, checkpoint: CheckpointId, reason: &str) {
        let mut current = self.current.borrow_mut();
        if current.as_ref().is_some_and(|c| c.checkpoint == checkpoint) {
            let dropped = current.take().expect("checked");
            self.abandon(&self.registry.borrow(), dropped);
            self.needs_full.set(true);
        }
        let _ = self.reports.send(ShardReport::Declined {
            shard: self.shard,
            checkpoint,
            reason: reason.to_owned(),
        });
        drop(current);
        self.finish_if_idle();
    }

    /// Whether `checkpoint` is a savepoint (every barrier of it is aligned, so
    /// it restores on any shard count).
    pub fn is_savepoint(&self, checkpoint: CheckpointId) -> bool {
        self.full_requested.load(Ordering::Acquire) == checkpoint
    }

    /// Participant `index` has seen the end of its input (a source with its
    /// final positions).
    pub fn ended(&self, index: usize, positions: SourcePositions) {
        {
            let mut participants = self.participants.borrow_mut();
            let participant = &mut participants[index];
            participant.ended = true;
            if !positions.is_empty() {
                participant.positions = positions;
            }
        }
        let in_progress = self.current.borrow().is_some();
        if in_progress {
            self.contribute(index);
            self.send_if_complete();
        }
        let all_ended = self.participants.borrow().iter().all(|p| p.ended);
        if all_ended && !self.finishing.replace(true) {
            // A checkpoint whose barrier got here is written to its end
            // first: its part holds the state at that barrier, which the
            // final part (positions only) cannot stand in for. One that can
            // no longer complete is dropped.
            let stuck = self
                .current
                .borrow()
                .as_ref()
                .is_some_and(|c| c.pending.is_empty());
            if stuck {
                let dropped = self.current.borrow_mut().take().expect("checked");
                self.needs_full.set(true);
                self.abandon(&self.registry.borrow(), dropped);
            }
            self.finish_if_idle();
        }
    }

    /// Once every participant has ended and no checkpoint is in progress:
    /// sends the final part, once.
    fn finish_if_idle(&self) {
        if !self.finishing.get() || self.current.borrow().is_some() {
            return;
        }
        if !self.finished_sent.replace(true) {
            let (state, sources) = self.final_part();
            let _ = self.reports.send(ShardReport::Finished {
                shard: self.shard,
                state,
                sources,
            });
        }
    }

    /// Makes `checkpoint` the one in progress; false if it is stale.
    fn begin(&self, checkpoint: CheckpointId) -> bool {
        let current = self.current.borrow().as_ref().map(|c| c.checkpoint);
        match current {
            Some(c) if c == checkpoint => return true,
            Some(c) if c > checkpoint => return false,
            _ => {}
        }
        let dropped = self.current.borrow_mut().take();
        if let Some(dropped) = dropped {
            // An older checkpoint is dropped halfway: states it reached have
            // forgotten their changes.
            self.needs_full.set(true);
            self.abandon(&self.registry.borrow(), dropped);
        }
        let count = self.participants.borrow().len();
        *self.current.borrow_mut() = Some(InProgress {
            checkpoint,
            sync_micros: 0,
            file: StateFileWriter::new(self.next_kind(checkpoint)),
            sources: SourcePositions::new(),
            channels: ChannelStates::new(),
            native: Vec::new(),
            native_pending: Vec::new(),
            done: vec![false; count],
            pending: Vec::new(),
        });
        // Participants that have ended take part as they are now.
        let ended: Vec<usize> = (self.participants.borrow().iter().enumerate())
            .filter(|(_, p)| p.ended)
            .map(|(i, _)| i)
            .collect();
        for index in ended {
            self.contribute(index);
        }
        true
    }

    /// Adds participant `index`'s part to the checkpoint in progress.
    fn contribute(&self, index: usize) {
        let mut current = self.current.borrow_mut();
        let Some(progress) = current.as_mut() else {
            return;
        };
        // Done, or its snapshot is being written by steps: a participant
        // ending meanwhile must not begin it again (with its state at the
        // end instead of at the barrier).
        if progress.done[index] || progress.pending.iter().any(|(i, _)| *i == index) {
            return;
        }
        progress.done[index] = true;
        let participants = self.participants.borrow();
        let participant = &participants[index];
        match participant.kind {
            ParticipantKind::Source => progress
                .sources
                .extend(participant.positions.iter().map(|(k, v)| (k.clone(), *v))),
            ParticipantKind::StateOwner(node) => {
                // The synchronous part: the states capture themselves as they
                // are; tables are encoded later, a key group at a time. States
                // in RocksDB take a native checkpoint instead (savepoints
                // write them like the others, to restore on any backend).
                let started = std::time::Instant::now();
                let registry = self.registry.borrow();
                let native = !self.is_savepoint(progress.checkpoint);
                let written = match native {
                    true => registry.native_checkpoint(node, progress.checkpoint),
                    false => Ok(None),
                }
                .map(|pending| progress.native_pending.extend(pending))
                .and_then(|()| {
                    registry
                        .begin_owner(node, progress.file.kind(), native)
                        .map_err(|e| e.to_string())
                })
                .and_then(|snapshot| {
                    if snapshot.is_complete() {
                        registry
                            .write_owner(snapshot, &mut progress.file)
                            .map_err(|e| e.to_string())
                    } else {
                        progress.done[index] = false;
                        progress.pending.push((index, snapshot));
                        Ok(())
                    }
                });
                progress.sync_micros += started.elapsed().as_micros() as u64;
                if let Err(e) = written {
                    let checkpoint = progress.checkpoint;
                    let dropped = current.take().expect("in progress");
                    self.abandon(&registry, dropped);
                    drop(registry);
                    self.needs_full.set(true);
                    let _ = self.reports.send(ShardReport::Declined {
                        shard: self.shard,
                        checkpoint,
                        reason: e,
                    });
                }
            }
            ParticipantKind::Sink | ParticipantKind::Channel => {}
        }
    }

    /// Drops a checkpoint in progress, with the snapshots it was writing.
    fn abandon(&self, registry: &StateRegistry, progress: InProgress) {
        for (_, snapshot) in progress.pending {
            registry.abandon_owner(snapshot);
        }
        for part in progress.native {
            let _ = std::fs::remove_dir_all(&part.directory);
        }
    }

    /// Whether states are still being written for the checkpoint in
    /// progress (or RocksDB is still flushing what its barrier switched).
    pub fn has_pending(&self) -> bool {
        self.current
            .borrow()
            .as_ref()
            .is_some_and(|c| !c.pending.is_empty() || !c.native_pending.is_empty())
    }

    /// Every participant has ended: nothing more to do.
    pub fn is_finished(&self) -> bool {
        *self.finished_sent.borrow()
    }

    /// Writes one more key group of the checkpoint in progress, after
    /// listing the files of RocksDB checkpoints whose background flush has
    /// finished (called by the shard's snapshot task between other work).
    /// False when nothing could be done but wait for RocksDB's flush.
    pub fn step(&self) -> bool {
        let mut current = self.current.borrow_mut();
        let Some(progress) = current.as_mut() else {
            return false;
        };
        let mut worked = false;
        let mut stepped = poll_natives(progress).map(|listed| worked |= listed);
        if stepped.is_ok() {
            if let Some((index, mut snapshot)) = progress.pending.pop() {
                worked = true;
                let registry = self.registry.borrow();
                stepped = registry
                    .step_owner(&mut snapshot)
                    .and_then(|complete| {
                        if complete {
                            registry.write_owner(snapshot, &mut progress.file)?;
                            progress.done[index] = true;
                        } else {
                            registry.drain_owner(&snapshot, &mut progress.file)?;
                            progress.pending.push((index, snapshot));
                        }
                        Ok(())
                    })
                    .map_err(|e| e.to_string());
            }
        }
        if stepped.is_ok() && progress.file.ready_len() >= STREAMED_STATE_BYTES {
            let _ = self.reports.send(ShardReport::StateBytes {
                shard: self.shard,
                checkpoint: progress.checkpoint,
                kind: progress.file.kind(),
                bytes: progress.file.take_ready(),
            });
        }
        if let Err(reason) = stepped {
            let checkpoint = progress.checkpoint;
            let dropped = current.take().expect("in progress");
            self.abandon(&self.registry.borrow(), dropped);
            self.needs_full.set(true);
            let _ = self.reports.send(ShardReport::Declined {
                shard: self.shard,
                checkpoint,
                reason,
            });
            drop(current);
            self.finish_if_idle();
            return true;
        }
        drop(current);
        self.send_if_complete();
        self.finish_if_idle();
        worked
    }

    /// The longest wait of the last barrier at any input gate of the shard:
    /// when a part completes, every gate has let its barrier through.
    fn alignment_micros(&self) -> u64 {
        (self.metrics.as_ref())
            .and_then(|m| m.edges.iter().map(|e| e.last_alignment_us.get()).max())
            .unwrap_or(0)
    }

    /// Where the shard's input gates publish their alignment waits.
    pub fn with_metrics(mut self, metrics: Arc<ShardMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn send_if_complete(&self) {
        let complete = self
            .current
            .borrow()
            .as_ref()
            .is_some_and(|c| c.done.iter().all(|d| *d) && c.native_pending.is_empty());
        if !complete {
            return;
        }
        let progress = self.current.borrow_mut().take().expect("checked above");
        let kind = progress.file.kind();
        let changes = match (kind, self.last_sent.get()) {
            (SnapshotKind::Changes, Some((_, changes))) => changes + 1,
            _ => 0,
        };
        self.last_sent.set(Some((progress.checkpoint, changes)));
        self.needs_full.set(false);
        let _ = self.reports.send(ShardReport::Snapshot {
            shard: self.shard,
            checkpoint: progress.checkpoint,
            state: progress.file.finish(),
            sources: progress.sources,
            sync_micros: progress.sync_micros,
            alignment_micros: self.alignment_micros(),
            kind,
            channels: progress.channels,
            native: progress.native,
        });
    }

    /// The shard's part once everything has ended: its sources' final
    /// positions, and no keyed state. A shard ends only once every input of
    /// every operator on it has ended, so no record can reach its state
    /// again, not even after a restore (upstream sources resume at their
    /// ends, and what an unfinished shard had yet to process is in that
    /// shard's own part); its end-of-input work (the last windows fired) is
    /// done. Writing the state would cost a full snapshot at the end of
    /// every bounded job (seconds for GBs of state) for nothing, and
    /// restoring a finished job would fire its end-of-input windows again.
    fn final_part(&self) -> (Vec<u8>, SourcePositions) {
        let mut sources = SourcePositions::new();
        for participant in self.participants.borrow().iter() {
            if participant.kind == ParticipantKind::Source {
                sources.extend(participant.positions.iter().map(|(k, v)| (k.clone(), *v)))
            }
        }
        (
            StateFileWriter::new(SnapshotKind::Full).finish().to_vec(),
            sources,
        )
    }
}

/// Lists the files of the RocksDB checkpoints in `progress` whose
/// background flush has finished; true if any was.
fn poll_natives(progress: &mut InProgress) -> Result<bool, String> {
    let mut listed = false;
    let mut index = 0;
    while index < progress.native_pending.len() {
        match progress.native_pending[index].poll()? {
            Some(part) => {
                progress.native_pending.swap_remove(index);
                progress.native.push(part);
                listed = true;
            }
            None => index += 1,
        }
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::TryRecvError;

    use sluice_state::{KeyGroup, KeyGroups, KeyedTable, MemoryTable, RestoreSet, TrackedTable};

    use super::*;

    fn at(position: u64) -> SourcePositions {
        SourcePositions::from([("1/0".to_owned(), position)])
    }

    /// A shard that ends while its part of a checkpoint is still being
    /// written finishes that part (its state as at the barrier, not as
    /// emptied by the end of input; its positions then) before its final
    /// one; the final part carries no keyed state.
    #[test]
    fn a_shard_ending_mid_checkpoint_sends_that_part_before_its_final_one() {
        let groups = KeyGroups::new(128, 1).range_of(0);
        let registry = Rc::new(RefCell::new(StateRegistry::new(
            groups,
            RestoreSet::default(),
        )));
        let table = Rc::new(RefCell::new(TrackedTable::new(
            MemoryTable::<u64, u8, u64>::new("t", groups),
            groups,
        )));
        registry.borrow_mut().register("t", 7, table.clone());
        for key in 0..1_000u64 {
            let group = KeyGroup((key % 128) as u16);
            table.borrow_mut().put(group, &key, &0, key);
        }
        let (checkpoints, reports_in) = shard_checkpoints(registry);
        let source = checkpoints.participate(ParticipantKind::Source);
        let owner = checkpoints.participate(ParticipantKind::StateOwner(7));
        checkpoints.at_barrier(source, 1, at(10));
        checkpoints.at_barrier(owner, 1, SourcePositions::new());
        assert!(checkpoints.has_pending(), "the table is written by steps");
        // The end of input fires what the state held, and the owner ends.
        for key in 0..1_000u64 {
            let group = KeyGroup((key % 128) as u16);
            table.borrow_mut().remove(group, &key, &0);
        }
        checkpoints.ended(source, at(20));
        checkpoints.ended(owner, SourcePositions::new());
        assert_eq!(reports_in.try_recv().err(), Some(TryRecvError::Empty));
        assert!(!checkpoints.is_finished());
        let mut steps = 0;
        while checkpoints.has_pending() {
            checkpoints.step();
            steps += 1;
            assert!(steps <= 1_000, "the snapshot never completes");
        }
        // The file streams out while it is written, then the part ends it.
        let mut file = Vec::new();
        let mut streamed = 0;
        loop {
            match reports_in.try_recv() {
                Ok(ShardReport::StateBytes {
                    checkpoint, bytes, ..
                }) if streamed < 1_000 => {
                    assert_eq!(checkpoint, 1);
                    file.extend(bytes.to_vec());
                    streamed += 1;
                }
                Ok(ShardReport::Snapshot {
                    checkpoint,
                    sources,
                    state,
                    ..
                }) => {
                    assert_eq!((checkpoint, sources), (1, at(10)));
                    file.extend(state.to_vec());
                    break;
                }
                other => panic!("expected checkpoint 1's part, got {other:?}"),
            }
        }
        assert!(streamed > 1, "{streamed} pieces streamed");
        // The whole file holds the state at the barrier.
        let mut set = RestoreSet::default();
        set.add_file("part", &file, groups).unwrap();
        let restored_registry = Rc::new(RefCell::new(StateRegistry::new(groups, set)));
        let restored = Rc::new(RefCell::new(TrackedTable::new(
            MemoryTable::<u64, u8, u64>::new("t", groups),
            groups,
        )));
        restored_registry
            .borrow_mut()
            .register("t", 7, restored.clone());
        let mut entries = 0;
        for group in groups.iter() {
            restored.borrow().for_each_in_group(group, &mut |k, _, v| {
                assert_eq!(k, v);
                entries += 1;
            });
        }
        assert_eq!(entries, 1_000);
        match reports_in.try_recv() {
            Ok(ShardReport::Finished { sources, state, .. }) => {
                assert_eq!(sources, at(20));
                assert_eq!(
                    state,
                    StateFileWriter::new(SnapshotKind::Full).finish().to_vec()
                );
            }
            other => panic!("expected the final part, got {other:?}"),
        }
        assert!(checkpoints.is_finished());
    }

    /// Shard 0's checkpoints over `registry`, full snapshots only, and what
    /// they report.
    fn shard_checkpoints(
        registry: Rc<RefCell<StateRegistry>>,
    ) -> (ShardCheckpoints, std::sync::mpsc::Receiver<ShardReport>) {
        let (reports, reports_in) = std::sync::mpsc::channel();
        let checkpointing = ShardCheckpointing {
            reports,
            signals: CheckpointSignals::default(),
            full_every: None,
        };
        (
            ShardCheckpoints::new(0, registry, checkpointing, 0),
            reports_in,
        )
    }

    /// A part carries the longest alignment wait of the shard's gates for
    /// its barrier (what they published when they let it through).
    #[test]
    fn a_part_carries_the_longest_alignment_wait_of_the_shards_gates() {
        let groups = KeyGroups::new(128, 1).range_of(0);
        let registry = Rc::new(RefCell::new(StateRegistry::new(
            groups,
            RestoreSet::default(),
        )));
        let metrics = Arc::new(ShardMetrics::for_plan(3, 2));
        let (checkpoints, reports_in) = shard_checkpoints(registry);
        let checkpoints = checkpoints.with_metrics(metrics.clone());
        let source = checkpoints.participate(ParticipantKind::Source);
        metrics.edge(0).unwrap().last_alignment_us.set(1_500);
        metrics.edge(1).unwrap().last_alignment_us.set(42_000);
        checkpoints.at_barrier(source, 1, at(10));
        match reports_in.try_recv() {
            Ok(ShardReport::Snapshot {
                checkpoint,
                alignment_micros,
                ..
            }) => assert_eq!((checkpoint, alignment_micros), (1, 42_000)),
            other => panic!("expected checkpoint 1's part, got {other:?}"),
        }
    }
}
