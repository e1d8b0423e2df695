//! The checkpoint leader of each running attempt of a job that checkpoints:
//! a thread of the coordinator process that runs the engine's
//! [`CheckpointLeader`] for the whole job — triggers, acknowledgements from
//! every worker's part writer, manifests in the job's storage, retention —
//! and sends its commands to every worker of the attempt.
//!
//! When a worker of the attempt drains (SIGTERM), the leader takes a
//! checkpoint now and, once one triggered after the request completes,
//! moves the job off: every task stops and the job is placed again on the
//! workers left, restoring that checkpoint.
//!
//! Invariants: events reach the leader of their own attempt only (an
//! earlier attempt's are dropped, a later attempt's wait in its channel
//! until its leader starts); a completed checkpoint is recorded in the job's
//! record before any worker is told to commit it, so a restarted attempt
//! never restores a checkpoint older than what sinks committed; the leader
//! stops as soon as its attempt is no longer the job's current one.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_engine::checkpoint::{
    first_checkpoint_id, CheckpointConfig, CheckpointId, CheckpointLeader, PartCommand, PartEvent,
};

use super::Shared;
use crate::control::ToWorker;

/// How often a leader looks at the clock when no event arrives.
const LEADER_TICK: Duration = Duration::from_millis(10);

/// How often a drain asks again for a checkpoint while none has completed
/// since it began (one was declined or timed out).
const DRAIN_RETRY: Duration = Duration::from_secs(1);

/// What a leader is told.
pub(crate) enum LeaderInput {
    /// A shard's part writer reported.
    Part(PartEvent),
    /// A worker of the attempt is draining: take a checkpoint now, then
    /// move the job off it.
    Drain { worker: String },
}

/// A drain in progress: the first checkpoint it may move off with, and
/// when a checkpoint was last asked for.
struct PendingDrain {
    from: CheckpointId,
    asked: Instant,
}

/// The channel to one attempt's leader.
struct LeaderSlot {
    attempt: u32,
    events: Sender<LeaderInput>,
    /// Taken by the leader's thread when it starts.
    unread: Option<Receiver<LeaderInput>>,
}

/// Every job's leader channel, by job id.
#[derive(Default)]
pub(crate) struct Leaders(Mutex<HashMap<String, LeaderSlot>>);

impl Leaders {
    /// The slot of `attempt` of `job`, made when missing or older; `None`
    /// when a newer attempt has one.
    fn with_slot<T>(
        &self,
        job: &str,
        attempt: u32,
        f: impl FnOnce(&mut LeaderSlot) -> T,
    ) -> Option<T> {
        let mut slots = self.0.lock().expect("leaders lock");
        let slot = slots
            .entry(job.to_owned())
            .or_insert_with(|| new_slot(attempt));
        if slot.attempt < attempt {
            *slot = new_slot(attempt);
        }
        (slot.attempt == attempt).then(|| f(slot))
    }

    /// An event from a worker for `attempt` of `job`.
    pub fn route(&self, job: &str, attempt: u32, event: PartEvent) {
        // A leader that already stopped has no use for it.
        self.with_slot(job, attempt, |slot| {
            let _ = slot.events.send(LeaderInput::Part(event));
        });
    }

    /// Worker `worker` of `attempt` of `job` is draining.
    pub fn drain(&self, job: &str, attempt: u32, worker: &str) {
        self.with_slot(job, attempt, |slot| {
            let _ = slot.events.send(LeaderInput::Drain {
                worker: worker.to_owned(),
            });
        });
    }

    /// Forgets the slot of a job that ended.
    pub fn forget(&self, job: &str) {
        self.0.lock().expect("leaders lock").remove(job);
    }
}

fn new_slot(attempt: u32) -> LeaderSlot {
    let (events, unread) = channel();
    LeaderSlot {
        attempt,
        events,
        unread: Some(unread),
    }
}

/// What a leader is started with.
pub(crate) struct LeaderStart {
    pub job: String,
    pub attempt: u32,
    pub shards: u32,
    pub config: CheckpointConfig,
    /// The checkpoint the attempt restores (`None`: the job file's choice).
    pub restore: Option<CheckpointId>,
}

/// Starts the leader of an attempt just deployed.
pub(crate) fn start(shared: &Arc<Shared>, start: LeaderStart) {
    let Some(Some(events)) = shared
        .leaders
        .with_slot(&start.job, start.attempt, |slot| slot.unread.take())
    else {
        return;
    };
    let shared = shared.clone();
    let name = format!("sluice-leader-{}", start.job);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let (job, attempt) = (start.job.clone(), start.attempt);
        if let Err(e) = lead(&shared, start, &events) {
            tracing::warn!("job {job} attempt {attempt}: checkpoints: {e}");
            shared.act(|cluster| ((), cluster.leader_failed(&job, attempt, e)));
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start a checkpoint leader: {e}");
    }
}

/// Runs one attempt's leader until the attempt is no longer current.
fn lead(
    shared: &Arc<Shared>,
    start: LeaderStart,
    events: &Receiver<LeaderInput>,
) -> Result<(), String> {
    let LeaderStart {
        job,
        attempt,
        shards,
        config,
        restore,
    } = start;
    let first = first_checkpoint_id(&config, restore).map_err(|e| e.to_string())?;
    let mut leader = CheckpointLeader::new(config, shards, first).map_err(|e| e.to_string())?;
    let mut recorded = None;
    let mut final_written = false;
    // How many of the leader's completed checkpoints `/metrics` has seen.
    let mut figures_seen = 0;
    let mut drain: Option<PendingDrain> = None;
    loop {
        let mut input = match events.recv_timeout(LEADER_TICK) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        while let Some(next) = input.take().or_else(|| events.try_recv().ok()) {
            match next {
                LeaderInput::Part(event) => leader.event(event),
                LeaderInput::Drain { worker } => {
                    tracing::info!(
                        "job {job} attempt {attempt}: worker {worker} is draining: \
                         a checkpoint now, then the job moves off it"
                    );
                    if drain.is_none() {
                        drain = Some(PendingDrain {
                            from: leader.next_id(),
                            asked: Instant::now(),
                        });
                        leader.checkpoint_now();
                    }
                }
            }
        }
        if let Some(pending) = drain.as_mut().filter(|d| d.asked.elapsed() >= DRAIN_RETRY) {
            pending.asked = Instant::now();
            leader.checkpoint_now();
        }
        leader.poll();
        if leader.all_finished() && !final_written {
            final_written = true;
            if let Some(id) = leader.finish().map_err(|e| e.to_string())? {
                record_completed(shared, &job, id);
            }
        }
        let _ = leader.take_deleted();
        if leader.completed.len() > figures_seen {
            let new = (leader.completed.len() - figures_seen) as u64;
            figures_seen = leader.completed.len();
            let latest = leader.completed[figures_seen - 1];
            let at_ms = crate::dashboard::view::now_ms();
            for completed in &leader.completed[figures_seen - new as usize..] {
                shared.board.checkpoint_completed(&job, completed, at_ms);
            }
            let mut figures = (shared.checkpoint_figures.lock()).unwrap_or_else(|p| p.into_inner());
            let entry = figures.entry(job.clone()).or_insert((0, latest));
            *entry = (entry.0 + new, latest);
        }
        if let Some(id) = leader.last_completed().filter(|id| Some(*id) != recorded) {
            // Recorded before any sink commits it.
            record_completed(shared, &job, id);
            recorded = Some(id);
        }
        let commands = leader.take_commands();
        let workers = {
            let cluster = shared.cluster.lock().expect("cluster lock");
            cluster.attempt_workers(&job, attempt)
        };
        let Some(workers) = workers else {
            return Ok(());
        };
        for command in commands {
            send_all(shared, &workers, &job, attempt, command);
        }
        let drained =
            (drain.as_ref()).and_then(|d| leader.last_completed().filter(|&id| id >= d.from));
        if let Some(checkpoint) = drained {
            tracing::info!(
                "job {job} attempt {attempt}: checkpoint {checkpoint} taken for the drain: \
                 the job moves to the workers left"
            );
            shared.act(|cluster| {
                let out = cluster.move_off_draining(&job, attempt, checkpoint);
                ((), out)
            });
            return Ok(());
        }
        if let Some(location) = leader.stopped_with.take() {
            tracing::info!("job {job} stopped with savepoint {location}");
            shared.act(|cluster| {
                let out = cluster.stopped_with_savepoint(&job, attempt, location.to_string());
                ((), out)
            });
            return Ok(());
        }
    }
}

/// Records checkpoint `id` of `job` as completed (in its job record, and
/// with `[ha]` first in its checkpoint pointer in etcd, durably: this waits
/// while etcd is away). Only then may a sink commit it.
fn record_completed(shared: &Shared, job: &str, id: CheckpointId) {
    shared.records.persist_checkpoint(job, id);
    shared.act(|cluster| {
        cluster.checkpoint_completed(job, id);
        ((), Vec::new())
    });
}

fn send_all(shared: &Shared, workers: &[String], job: &str, attempt: u32, command: PartCommand) {
    for worker in workers {
        shared.send(
            worker,
            &ToWorker::Checkpoint {
                job: job.to_owned(),
                attempt,
                command: command.clone(),
            },
        );
    }
}
