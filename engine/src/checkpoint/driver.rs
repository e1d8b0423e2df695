//! Runs a job's checkpoints for the shards of this process: a
//! [`PartWriter`] writes what the shards report and carries out the leader's
//! commands; the [`CheckpointLeader`] decides. In an embedded job the
//! leader is here ([`LeaderLink::Local`]); on a cluster it runs in the
//! coordinator and the two talk through the task's messages
//! ([`LeaderLink::Remote`]). Runs on the thread that waits for the shards
//! (never on a shard's core).
//!
//! Every few milliseconds [`CheckpointDriver::poll`] passes the shards'
//! reports through the part writer to the leader, the clock to the leader,
//! and the leader's commands to the part writer: a trigger is published to
//! the sources through an atomic; a completed checkpoint is committed by the
//! sinks' committers; an aborted one's files are discarded. When every shard
//! here has finished, [`CheckpointDriver::finish`] has the final checkpoint
//! written (marked finished) and commits everything. Restoring is
//! `restore`'s, before the driver starts.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_state::checkpoint_store::StorageLocation;

use super::leader::CheckpointLeader;
use super::part_writer::{PartCommand, PartEvent, PartWriter};
use super::restore::{open_catalog, Restored};
use super::shard::{CheckpointSignals, ShardReport};
use super::{CheckpointConfig, CheckpointError, CheckpointId, Committer};

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
    /// The longest a barrier waited at an input gate for alignment.
    pub alignment_max_ms: f64,
    /// Records in flight kept by unaligned barriers (encoded bytes): those
    /// the gates had read but not processed, and those the outboxes had
    /// queued but not sent.
    pub in_flight_received_bytes: u64,
    pub in_flight_sent_bytes: u64,
}

/// The committers of a job's exactly-once sinks (shared with the shards that
/// register them while building).
pub type Committers = Arc<Mutex<Vec<Arc<Mutex<dyn Committer>>>>>;

/// How long a part whose shards all ended waits for the leader to complete
/// the final checkpoint.
const FINAL_WAIT: Duration = Duration::from_secs(600);

/// Where a part's events go: to the leader elsewhere.
pub type PartEvents = Box<dyn FnMut(PartEvent) + Send>;

/// Where the leader is.
pub enum LeaderLink {
    /// In this process (an embedded job of `shards` shards, all here).
    Local { shards: u32 },
    /// Elsewhere (the coordinator): events go out through `events`,
    /// commands come in through `commands`; `final_tag` keeps this
    /// attempt's final parts apart from others'.
    Remote {
        events: PartEvents,
        commands: Receiver<PartCommand>,
        final_tag: String,
    },
}

/// A leader elsewhere, as the driver talks to it.
struct RemoteLeader {
    events: PartEvents,
    commands: Receiver<PartCommand>,
}

/// See the module docs.
pub struct CheckpointDriver {
    writer: PartWriter,
    leader: Option<CheckpointLeader>,
    remote: Option<RemoteLeader>,
    reports: Receiver<ShardReport>,
    signals: CheckpointSignals,
    /// The shards of this process.
    shards_here: usize,
    /// How many of them have left their final part.
    finished_here: usize,
    /// The final checkpoint completed (a remote leader said so).
    final_completed: bool,
    /// A stop-with-savepoint completed: the job must stop, committing nothing
    /// more; this is the savepoint. Always `None` with a remote leader,
    /// which stops the job itself.
    pub stopped_with: Option<StorageLocation>,
    /// How many of the leader's completed checkpoints
    /// [`newly_completed`](Self::newly_completed) has handed out.
    completed_seen: usize,
}

impl CheckpointDriver {
    /// A driver for the `shards_here` shards of this process.
    pub fn new(
        config: CheckpointConfig,
        shards_here: usize,
        restored: &Restored,
        reports: Receiver<ShardReport>,
        signals: CheckpointSignals,
        committers: Committers,
        leader: LeaderLink,
    ) -> Result<Self, CheckpointError> {
        let catalog = open_catalog(&config.storage)?;
        let resumed_from = restored.checkpoint.map_or(0, |(id, _)| id);
        // Sources emit a barrier for the newest id above the one they resumed
        // from; nothing is triggered yet.
        signals.triggered.store(resumed_from, Ordering::Release);
        let (leader, remote, final_tag) = match leader {
            LeaderLink::Local { shards } => {
                let first = restored.highest_stored.max(resumed_from) + 1;
                let leader = CheckpointLeader::new(config, shards, first)?;
                (Some(leader), None, String::new())
            }
            LeaderLink::Remote {
                events,
                commands,
                final_tag,
            } => (None, Some(RemoteLeader { events, commands }), final_tag),
        };
        Ok(CheckpointDriver {
            writer: PartWriter::new(catalog, committers, signals.clone(), final_tag),
            leader,
            remote,
            reports,
            signals,
            shards_here,
            finished_here: 0,
            final_completed: false,
            stopped_with: None,
            completed_seen: 0,
        })
    }

    /// The last checkpoint completed (as far as this process knows).
    pub fn last_completed(&self) -> Option<CheckpointId> {
        match &self.leader {
            Some(leader) => leader.last_completed(),
            None => Some(self.signals.completed.load(Ordering::Acquire))
                .filter(|id| *id != 0 && *id != FINAL_CHECKPOINT),
        }
    }

    /// The checkpoints the leader here completed since the last call.
    pub fn newly_completed(&mut self) -> Vec<CompletedCheckpoint> {
        let Some(leader) = &self.leader else {
            return Vec::new();
        };
        let new = leader.completed[self.completed_seen.min(leader.completed.len())..].to_vec();
        self.completed_seen = leader.completed.len();
        new
    }

    /// Every checkpoint the leader here completed.
    pub fn completed(self) -> Vec<CompletedCheckpoint> {
        self.leader.map(|l| l.completed).unwrap_or_default()
    }

    /// The id a final part written now is named after: above every
    /// checkpoint stored or triggered.
    fn final_id(&self) -> CheckpointId {
        match &self.leader {
            Some(leader) => leader.next_id(),
            None => self.signals.triggered.load(Ordering::Acquire) + 1,
        }
    }

    /// Handles what the shards reported, what the clock says and what the
    /// leader commands.
    pub fn poll(&mut self) {
        if self.stopped_with.is_some() {
            // Stopped with a savepoint: the job is ending, and nothing after
            // the savepoint may be triggered or committed.
            while self.reports.try_recv().is_ok() {}
            self.writer.abort_streams();
            return;
        }
        while let Ok(report) = self.reports.try_recv() {
            let final_id = self.final_id();
            if let Some(event) = self.writer.report(report, final_id) {
                self.send(event);
            }
            self.apply_commands();
        }
        if let Some(leader) = &mut self.leader {
            leader.poll();
        }
        self.apply_commands();
    }

    fn send(&mut self, event: PartEvent) {
        if matches!(event, PartEvent::Finished { .. }) {
            self.finished_here += 1;
        }
        match (&mut self.leader, &mut self.remote) {
            (Some(leader), _) => leader.event(event),
            (None, Some(remote)) => (remote.events)(event),
            (None, None) => {}
        }
    }

    /// The leader's commands, carried out in order. Also while the job
    /// aborts: a checkpoint the leader completed is complete, and its sinks
    /// commit it (a stop-with-savepoint's last output, on a cluster).
    pub fn apply_commands(&mut self) {
        let commands = match (&mut self.leader, &mut self.remote) {
            (Some(leader), _) => {
                self.writer.forget_uploaded(&leader.take_deleted());
                if leader.stopped_with.is_some() {
                    self.stopped_with = leader.stopped_with.clone();
                }
                leader.take_commands()
            }
            (None, Some(remote)) => remote.commands.try_iter().collect(),
            (None, None) => Vec::new(),
        };
        for command in &commands {
            if matches!(
                command,
                PartCommand::Completed {
                    checkpoint: FINAL_CHECKPOINT,
                    ..
                }
            ) {
                self.final_completed = true;
            }
            self.writer.apply(command);
        }
        if self.remote.is_some() {
            let notes = self.writer.take_notes();
            if !notes.is_empty() {
                self.send(PartEvent::Notes { notes });
            }
        }
    }

    /// All shards here have ended: the final checkpoint is written (by the
    /// leader here, or awaited from the remote one until `cancelled`) and
    /// every sink commits its remaining parts.
    pub fn finish(&mut self, cancelled: &dyn Fn() -> bool) -> Result<(), CheckpointError> {
        while let Ok(report) = self.reports.try_recv() {
            let final_id = self.final_id();
            if let Some(event) = self.writer.report(report, final_id) {
                self.send(event);
            }
        }
        self.apply_commands();
        if let Some(fatal) = self.writer.fatal.take() {
            return Err(fatal);
        }
        if self.finished_here != self.shards_here {
            // A shard failed: no final checkpoint; recovery resumes from the
            // last complete one.
            if let Some(leader) = &mut self.leader {
                leader.finish()?;
            }
            return Ok(());
        }
        if let Some(leader) = &mut self.leader {
            leader.finish()?;
            self.apply_commands();
            return Ok(());
        }
        // The final checkpoint completed, and where the job's sinks decide
        // (shard 0 runs here) the other processes' notes of its commit.
        let deadline = Instant::now() + FINAL_WAIT;
        loop {
            let waiting_for = match (self.final_completed, self.writer.awaiting_final_notes()) {
                (true, false) => return Ok(()),
                (false, _) => "the coordinator",
                (true, true) => "every process's final commit",
            };
            if cancelled() {
                return Err(CheckpointError::FinalNotCompleted(format!(
                    "the task was cancelled while waiting for {waiting_for}"
                )));
            }
            if Instant::now() >= deadline {
                return Err(CheckpointError::FinalNotCompleted(format!(
                    "no word of {waiting_for} within {} s",
                    FINAL_WAIT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
            self.apply_commands();
        }
    }
}
