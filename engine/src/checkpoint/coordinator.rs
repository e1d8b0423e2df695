//! The checkpoint coordinator as a state machine: it takes inputs (the clock,
//! acknowledgements from tasks, the outcome of writing a manifest) and returns
//! the actions to carry out, and does no I/O itself — so the embedded runtime
//! and the cluster's coordinator process drive the same logic, and a seeded
//! simulation tests it (see `tests.rs` beside this file).
//!
//! Rules (Flink's, with at most one checkpoint in flight):
//! - a checkpoint is triggered when none is in flight, `interval` has passed
//!   since the last trigger and `min_pause` since the last one ended;
//! - triggering asks the sources to record their positions and emit barrier
//!   *n* (ids only grow, also across aborted checkpoints);
//! - it completes only when every task has acknowledged *n* and its manifest
//!   is durably written; then completion is announced, once;
//! - a task that declines, a manifest that cannot be written, or `timeout`
//!   passing aborts it: the tasks are told to drop what they kept for it and
//!   the job goes on; the next checkpoint is triggered by the same rules.
//!
//! Time comes only from `Tick`s: a driver sends one with the current time
//! before each input it passes on (and at least every few ms), so ends and
//! pauses are measured at the moment they happen.
//!
//! Lives wherever the job is coordinated (a thread of the embedded runtime or
//! the cluster coordinator); it is not on any shard's record path.

use std::collections::BTreeMap;

/// A checkpoint's number: 1, 2, …
pub type CheckpointId = u64;

/// A task that acknowledges checkpoints (a shard of the job).
pub type TaskId = u32;

/// When checkpoints are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointTiming {
    /// From one trigger to the next, in ms.
    pub interval_ms: u64,
    /// A checkpoint not complete this long after its trigger is aborted.
    pub timeout_ms: u64,
    /// At least this long between the end of one checkpoint and the next
    /// trigger.
    pub min_pause_ms: u64,
}

/// What the coordinator is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointInput<A> {
    /// The clock: time has come to `now_ms` (triggers and timeouts happen here).
    Tick { now_ms: u64 },
    /// `task` has taken its part of `checkpoint`; `ack` says where it is
    /// (state handles, source positions) for the manifest.
    Acknowledged {
        checkpoint: CheckpointId,
        task: TaskId,
        ack: A,
    },
    /// `task` could not take its part of `checkpoint`.
    Declined {
        checkpoint: CheckpointId,
        task: TaskId,
        reason: String,
    },
    /// The manifest of `checkpoint` is durably written.
    ManifestWritten { checkpoint: CheckpointId },
    /// Writing the manifest of `checkpoint` failed.
    ManifestFailed {
        checkpoint: CheckpointId,
        reason: String,
    },
}

/// What the coordinator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointAction<A> {
    /// Sources: record your positions and emit barrier `checkpoint`.
    Trigger { checkpoint: CheckpointId },
    /// Write the manifest of `checkpoint` from every task's acknowledgement
    /// (by task), then report `ManifestWritten` or `ManifestFailed`.
    WriteManifest {
        checkpoint: CheckpointId,
        acks: BTreeMap<TaskId, A>,
    },
    /// `checkpoint` is complete: tell the operators (sinks commit).
    Completed { checkpoint: CheckpointId },
    /// `checkpoint` is abandoned: tasks drop what they kept for it.
    Aborted {
        checkpoint: CheckpointId,
        reason: String,
    },
}

/// The checkpoint in flight.
#[derive(Debug)]
struct InFlight<A> {
    id: CheckpointId,
    triggered_at_ms: u64,
    acks: BTreeMap<TaskId, A>,
    /// All acknowledged; the manifest is being written.
    writing_manifest: bool,
}

/// Counts of what happened, for metrics and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    pub triggered: u64,
    pub completed: u64,
    pub aborted: u64,
    pub last_completed: Option<CheckpointId>,
    /// Trigger to completion of the last completed checkpoint, in ms (as far
    /// as the ticks tell).
    pub last_duration_ms: Option<u64>,
}

/// See the module docs. `A` is what a task's acknowledgement carries.
#[derive(Debug)]
pub struct CheckpointCoordinator<A> {
    timing: CheckpointTiming,
    tasks: u32,
    next_id: CheckpointId,
    in_flight: Option<InFlight<A>>,
    last_trigger_ms: Option<u64>,
    last_end_ms: Option<u64>,
    now_ms: u64,
    stats: CheckpointStats,
    /// A checkpoint was asked for now (see `request_now`).
    requested: bool,
}

impl<A: Clone> CheckpointCoordinator<A> {
    /// A coordinator for a job of `tasks` tasks (numbered `0..tasks`); the
    /// first checkpoint gets id `first_id` (1, or one past the checkpoint the
    /// job was restored from).
    pub fn new(timing: CheckpointTiming, tasks: u32, first_id: CheckpointId) -> Self {
        assert!(tasks > 0, "a job has at least one task");
        assert!(
            timing.interval_ms > 0,
            "the checkpoint interval is positive"
        );
        CheckpointCoordinator {
            timing,
            tasks,
            next_id: first_id.max(1),
            in_flight: None,
            last_trigger_ms: None,
            last_end_ms: None,
            now_ms: 0,
            stats: CheckpointStats::default(),
            requested: false,
        }
    }

    pub fn stats(&self) -> CheckpointStats {
        self.stats
    }

    /// The checkpoint in flight, if any.
    /// Asks for a checkpoint as soon as none is in flight, whatever the
    /// interval and pause (a savepoint); returns the id it will get unless one
    /// is triggered first by the clock.
    pub fn request_now(&mut self) {
        self.requested = true;
    }

    /// The id the next checkpoint will get.
    pub fn next_id(&self) -> CheckpointId {
        self.next_id
    }

    pub fn in_flight(&self) -> Option<CheckpointId> {
        self.in_flight.as_ref().map(|c| c.id)
    }

    /// Takes one input and returns the actions it calls for, in order.
    pub fn handle(&mut self, input: CheckpointInput<A>) -> Vec<CheckpointAction<A>> {
        let mut actions = Vec::new();
        match input {
            CheckpointInput::Tick { now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                self.on_tick(&mut actions);
            }
            CheckpointInput::Acknowledged {
                checkpoint,
                task,
                ack,
            } => self.on_ack(checkpoint, task, ack, &mut actions),
            CheckpointInput::Declined {
                checkpoint,
                task,
                reason,
            } => {
                if self.is_current(checkpoint) && task < self.tasks {
                    self.abort(format!("task {task} declined: {reason}"), &mut actions);
                }
            }
            CheckpointInput::ManifestWritten { checkpoint } => {
                if self.is_current(checkpoint)
                    && self.in_flight.as_ref().is_some_and(|c| c.writing_manifest)
                {
                    let done = self.in_flight.take().expect("current");
                    self.last_end_ms = Some(self.now_ms);
                    self.stats.completed += 1;
                    self.stats.last_completed = Some(done.id);
                    self.stats.last_duration_ms =
                        Some(self.now_ms.saturating_sub(done.triggered_at_ms));
                    actions.push(CheckpointAction::Completed {
                        checkpoint: done.id,
                    });
                }
            }
            CheckpointInput::ManifestFailed { checkpoint, reason } => {
                if self.is_current(checkpoint) {
                    self.abort(
                        format!("writing the manifest failed: {reason}"),
                        &mut actions,
                    );
                }
            }
        }
        actions
    }

    fn is_current(&self, checkpoint: CheckpointId) -> bool {
        self.in_flight.as_ref().is_some_and(|c| c.id == checkpoint)
    }

    fn on_tick(&mut self, actions: &mut Vec<CheckpointAction<A>>) {
        let now = self.now_ms;
        if let Some(c) = &self.in_flight {
            if now.saturating_sub(c.triggered_at_ms) >= self.timing.timeout_ms {
                self.abort(
                    format!("not complete within {} ms", self.timing.timeout_ms),
                    actions,
                );
            } else {
                return;
            }
        }
        let interval_passed = self.requested
            || self
                .last_trigger_ms
                .is_none_or(|t| now.saturating_sub(t) >= self.timing.interval_ms);
        let paused = self
            .last_end_ms
            .is_none_or(|t| now.saturating_sub(t) >= self.timing.min_pause_ms);
        if self.in_flight.is_none() && interval_passed && (paused || self.requested) {
            self.requested = false;
            let id = self.next_id;
            self.next_id += 1;
            self.last_trigger_ms = Some(now);
            self.stats.triggered += 1;
            self.in_flight = Some(InFlight {
                id,
                triggered_at_ms: now,
                acks: BTreeMap::new(),
                writing_manifest: false,
            });
            actions.push(CheckpointAction::Trigger { checkpoint: id });
        }
    }

    fn on_ack(
        &mut self,
        checkpoint: CheckpointId,
        task: TaskId,
        ack: A,
        actions: &mut Vec<CheckpointAction<A>>,
    ) {
        let tasks = self.tasks;
        let Some(c) = self.in_flight.as_mut().filter(|c| c.id == checkpoint) else {
            // Late acknowledgement of an aborted or completed checkpoint.
            return;
        };
        if task >= tasks || c.writing_manifest || c.acks.contains_key(&task) {
            return;
        }
        c.acks.insert(task, ack);
        if c.acks.len() == tasks as usize {
            c.writing_manifest = true;
            actions.push(CheckpointAction::WriteManifest {
                checkpoint,
                acks: c.acks.clone(),
            });
        }
    }

    fn abort(&mut self, reason: String, actions: &mut Vec<CheckpointAction<A>>) {
        if let Some(c) = self.in_flight.take() {
            self.last_end_ms = Some(self.now_ms);
            self.stats.aborted += 1;
            actions.push(CheckpointAction::Aborted {
                checkpoint: c.id,
                reason,
            });
        }
    }
}
