//! Barrier alignment as one pure state machine: which inputs of an operator
//! have delivered the barrier being aligned, when the barrier may go on, when
//! an older alignment is abandoned for a newer barrier, and when an aligned
//! checkpoint turns unaligned.
//!
//! Owned by whoever merges several inputs on one shard's core — the exchange
//! gate (`exchange/gate.rs`: one input per shard) and the aligner of a
//! multi-input operator (`input_aligner.rs`) — and stepped from there. It
//! holds no clock, no channel and no record: the caller tells it what happened
//! ([`AlignerEvent`], with the time where time matters) and does what it says
//! ([`AlignerAction`]); what an input holds meanwhile, and what is recorded as
//! in flight, stay with the caller. `barrier_aligner_sim.rs` runs it under a
//! seeded simulation.
//!
//! Invariants:
//! - at most one alignment at a time, for the newest barrier seen that is
//!   newer than the last completed one ([`BarrierAligner::finished`]);
//!   barriers up to that one are stale and ignored, and so is a barrier older
//!   than the one being aligned;
//! - a barrier newer than the one being aligned abandons the older alignment
//!   (its checkpoint was aborted) *without being taken*: the caller releases
//!   what its inputs hold and steps the same barrier again;
//! - an alignment completes exactly once, when every input has delivered its
//!   barrier or ended, and not while the caller is still recording what an
//!   overtaking barrier left in flight;
//! - aligned, an input that delivered the barrier is blocked until completion;
//!   unaligned, no input is blocked and an input is *recording* (its records
//!   are in flight for the checkpoint) until its barrier or end comes;
//! - savepoints are always aligned; [`BarrierAlignment::Aligned`] never turns
//!   unaligned.

use std::time::Instant;

use sluice_network::CheckpointBarrier;

use super::BarrierAlignment;

/// What happened at one of the inputs (or to the clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlignerEvent<'a> {
    /// `input` delivered `barrier`: in order, or on arrival ahead of what is
    /// queued before it when [`BarrierAligner::counts_on_arrival`] said so.
    Barrier {
        input: usize,
        barrier: CheckpointBarrier,
        savepoint: bool,
        now: Instant,
    },
    /// `input` ended: nothing more comes from it (processed in order).
    End { input: usize },
    /// `input`'s end arrived (not yet processed). While the input is
    /// recording, nothing after it belongs to the checkpoint: its part is
    /// complete.
    EndArrived { input: usize },
    /// The caller recorded what the inputs of an [`AlignerAction::Overtake`]
    /// had queued; `reached` are those whose barrier (or end) was among it.
    Overtaken { reached: &'a [usize] },
    /// Time passed: the alignment may turn unaligned.
    Tick { now: Instant },
}

/// What the caller must do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlignerAction {
    /// Nothing.
    None,
    /// The alignment of this older barrier was given up (its checkpoint was
    /// aborted). The event was **not** taken: release what the inputs hold,
    /// then step the same event again.
    Abandoned(CheckpointBarrier),
    /// The barrier goes on down the chain now, ahead of records still in
    /// flight. Record, as the checkpoint's channel state, what `in_flight_from`
    /// have queued before their barrier, then step
    /// [`AlignerEvent::Overtaken`]; afterwards the blocked inputs are free.
    Overtake {
        barrier: CheckpointBarrier,
        in_flight_from: Vec<usize>,
    },
    /// Every open input delivered `barrier`. Aligned (`unaligned == false`):
    /// the barrier goes on now, then the blocked inputs are free. Unaligned:
    /// it went on at the overtake; what was recorded is complete.
    Complete {
        barrier: CheckpointBarrier,
        unaligned: bool,
    },
}

/// The barrier being aligned and the inputs it has come from.
#[derive(Debug)]
struct Alignment {
    barrier: CheckpointBarrier,
    savepoint: bool,
    arrived: Vec<bool>,
    started: Instant,
    /// The barrier has gone on; records of inputs yet to deliver it are kept.
    unaligned: bool,
    /// An overtake is being recorded by the caller: completion waits for
    /// [`AlignerEvent::Overtaken`]. `Some(input)`: the input whose barrier
    /// overtook, counted as arrived then.
    overtaking: Option<Option<usize>>,
}

/// See the module docs.
#[derive(Debug)]
pub struct BarrierAligner {
    policy: BarrierAlignment,
    ended: Vec<bool>,
    alignment: Option<Alignment>,
    finished: u64,
}

impl BarrierAligner {
    /// An aligner of `inputs` inputs under `policy`.
    pub fn new(inputs: usize, policy: BarrierAlignment) -> Self {
        BarrierAligner {
            policy,
            ended: vec![false; inputs],
            alignment: None,
            finished: 0,
        }
    }

    /// Aligned: `input` delivered the barrier being aligned and waits.
    #[inline]
    pub fn is_blocked(&self, input: usize) -> bool {
        self.alignment
            .as_ref()
            .is_some_and(|a| !a.unaligned && a.arrived[input])
    }

    /// Unaligned: what comes from `input` now came before its barrier and is
    /// in flight for the checkpoint.
    #[inline]
    pub fn is_recording(&self, input: usize) -> bool {
        self.alignment
            .as_ref()
            .is_some_and(|a| a.unaligned && !a.arrived[input])
    }

    /// Whether an alignment is in progress.
    #[inline]
    pub fn is_aligning(&self) -> bool {
        self.alignment.is_some()
    }

    /// The barrier being aligned.
    pub fn current(&self) -> Option<CheckpointBarrier> {
        self.alignment.as_ref().map(|a| a.barrier)
    }

    /// The newest checkpoint whose alignment completed.
    pub fn finished(&self) -> u64 {
        self.finished
    }

    /// Whether `input` ended.
    pub fn has_ended(&self, input: usize) -> bool {
        self.ended[input]
    }

    /// Whether every input ended.
    pub fn all_ended(&self) -> bool {
        self.ended.iter().all(|e| *e)
    }

    /// Whether `barrier` counts the moment it arrives, ahead of what its input
    /// has queued (unaligned), rather than when it is processed in order.
    pub fn counts_on_arrival(&self, barrier: &CheckpointBarrier, savepoint: bool) -> bool {
        if savepoint {
            return false;
        }
        match self.policy {
            BarrierAlignment::Aligned => false,
            BarrierAlignment::Unaligned => true,
            BarrierAlignment::AlignedWithTimeout(_) => self
                .alignment
                .as_ref()
                .is_some_and(|a| a.unaligned && a.barrier.id == barrier.id),
        }
    }

    /// When the alignment in progress turns unaligned unless it completes
    /// first ([`AlignerEvent::Tick`] at or after it does it).
    pub fn deadline(&self) -> Option<Instant> {
        let alignment = self
            .alignment
            .as_ref()
            .filter(|a| !a.unaligned && !a.savepoint)?;
        match self.policy {
            BarrierAlignment::AlignedWithTimeout(timeout) => Some(alignment.started + timeout),
            _ => None,
        }
    }

    /// Takes one event; see [`AlignerAction`] for what the caller does next.
    pub fn step(&mut self, event: AlignerEvent<'_>) -> AlignerAction {
        match event {
            AlignerEvent::Barrier {
                input,
                barrier,
                savepoint,
                now,
            } => self.barrier(input, barrier, savepoint, now),
            AlignerEvent::End { input } => {
                self.ended[input] = true;
                self.try_complete()
            }
            AlignerEvent::EndArrived { input } => {
                if !self.is_recording(input) {
                    return AlignerAction::None;
                }
                self.alignment.as_mut().expect("recording").arrived[input] = true;
                self.try_complete()
            }
            AlignerEvent::Overtaken { reached } => {
                let Some(alignment) = self.alignment.as_mut() else {
                    return AlignerAction::None;
                };
                let Some(overtaking) = alignment.overtaking.take() else {
                    return AlignerAction::None;
                };
                for &input in reached.iter().chain(&overtaking) {
                    alignment.arrived[input] = true;
                }
                self.try_complete()
            }
            AlignerEvent::Tick { now } => {
                if let Some(action) = self.apply_policy(now) {
                    return action;
                }
                self.try_complete()
            }
        }
    }

    fn barrier(
        &mut self,
        input: usize,
        barrier: CheckpointBarrier,
        savepoint: bool,
        now: Instant,
    ) -> AlignerAction {
        if barrier.id <= self.finished {
            return AlignerAction::None;
        }
        match &self.alignment {
            Some(a) if a.barrier.id > barrier.id => return AlignerAction::None,
            Some(a) if a.barrier.id < barrier.id => {
                let abandoned = a.barrier;
                self.alignment = None;
                return AlignerAction::Abandoned(abandoned);
            }
            Some(_) => {}
            None => {
                let overtakes = self.counts_on_arrival(&barrier, savepoint);
                self.alignment = Some(Alignment {
                    barrier,
                    savepoint,
                    arrived: vec![false; self.ended.len()],
                    started: now,
                    unaligned: false,
                    overtaking: None,
                });
                if overtakes {
                    // Everything queued at every input, this one included,
                    // came before its barrier.
                    return self.overtake(Some(input));
                }
            }
        }
        self.alignment.as_mut().expect("aligning").arrived[input] = true;
        if let Some(action) = self.apply_policy(now) {
            return action;
        }
        self.try_complete()
    }

    /// Turns the alignment unaligned when the policy says so.
    fn apply_policy(&mut self, now: Instant) -> Option<AlignerAction> {
        let alignment = self.alignment.as_ref()?;
        if alignment.unaligned || alignment.savepoint {
            return None;
        }
        let go = match self.policy {
            BarrierAlignment::Aligned => false,
            BarrierAlignment::Unaligned => true,
            BarrierAlignment::AlignedWithTimeout(timeout) => {
                now.saturating_duration_since(alignment.started) >= timeout
            }
        };
        go.then(|| self.overtake(None))
    }

    /// The barrier goes on: the inputs that have not delivered it (and
    /// `counted`, whose barrier overtook its queue) are in flight.
    fn overtake(&mut self, counted: Option<usize>) -> AlignerAction {
        let alignment = self.alignment.as_mut().expect("aligning");
        alignment.unaligned = true;
        alignment.overtaking = Some(counted);
        let in_flight_from = (0..self.ended.len())
            .filter(|&i| !alignment.arrived[i] && !self.ended[i])
            .collect();
        AlignerAction::Overtake {
            barrier: alignment.barrier,
            in_flight_from,
        }
    }

    fn try_complete(&mut self) -> AlignerAction {
        let Some(alignment) = &self.alignment else {
            return AlignerAction::None;
        };
        if alignment.overtaking.is_some() {
            return AlignerAction::None;
        }
        let aligned = (alignment.arrived.iter().zip(&self.ended)).all(|(a, e)| *a || *e);
        if !aligned {
            return AlignerAction::None;
        }
        let Alignment {
            barrier, unaligned, ..
        } = self.alignment.take().expect("checked");
        self.finished = barrier.id;
        AlignerAction::Complete { barrier, unaligned }
    }
}
