//! The barrier aligner in a seeded, deterministic simulation: inputs deliver
//! records, barriers (some skipped: an upstream abandoned that checkpoint) and
//! ends; messages arrive into per-input queues and are processed later, in an
//! order the seed picks; the clock moves in uneven steps. A small gate around
//! the aligner does what its actions say, as `exchange/gate.rs` does. Each
//! step checks the aligner's invariants; each run checks, for every completed
//! checkpoint, that the records processed before its barrier and the records
//! kept in flight are exactly what came before the barrier on every input —
//! in every policy: aligned, unaligned, aligned with a timeout (which may
//! switch mid-alignment), with savepoints (always aligned) among the barriers.
//! A failing seed replays exactly.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use sluice_network::CheckpointBarrier;

use super::barrier_aligner::{AlignerAction, AlignerEvent, BarrierAligner};
use super::sim_rng::Rng;
use super::BarrierAlignment;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// Value `input * 1000 + n`.
    Record(u64),
    Barrier(u64),
    End,
}

/// What the chain after the gate saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Record(u64),
    Barrier(u64),
}

/// One input's script: records, barriers `1..=checkpoints` (an earlier one
/// sometimes skipped), sometimes cut short by its end.
fn script(rng: &mut Rng, input: u64, checkpoints: u64) -> Vec<Event> {
    let mut events = Vec::new();
    let mut n = 0;
    for id in 1..=checkpoints + 1 {
        for _ in 0..rng.below(4) {
            events.push(Event::Record(input * 1000 + n));
            n += 1;
        }
        if id <= checkpoints && (id == checkpoints || !rng.chance(10)) {
            events.push(Event::Barrier(id));
        }
    }
    if rng.chance(30) {
        events.truncate(rng.below(events.len() as u64 + 1) as usize);
        events.push(Event::End);
    } else if rng.chance(50) {
        events.push(Event::End);
    }
    events
}

/// A gate of queued inputs around the aligner, as `exchange/gate.rs` is.
struct Gate {
    aligner: BarrierAligner,
    queues: Vec<VecDeque<Event>>,
    seen: Vec<Seen>,
    /// Records kept as in flight for the alignment in progress.
    in_flight: Vec<u64>,
    /// Per completed checkpoint: whether it went unaligned, and what was kept.
    completed: BTreeMap<u64, (bool, Vec<u64>)>,
    /// Checkpoints whose alignment was abandoned after their barrier
    /// overtook (it went on; the checkpoint was aborted).
    overtaken_then_abandoned: Vec<u64>,
    savepoints: bool,
    base: Instant,
    now_ms: u64,
    seed: u64,
}

impl Gate {
    fn now(&self) -> Instant {
        self.base + Duration::from_millis(self.now_ms)
    }

    fn is_savepoint(&self, id: u64) -> bool {
        self.savepoints && id.is_multiple_of(2)
    }

    fn fail(&self, what: &str) -> ! {
        panic!("seed {}: {what}; seen {:?}", self.seed, self.seen)
    }

    fn step(&mut self, event: AlignerEvent<'_>) -> AlignerAction {
        let finished = self.aligner.finished();
        let action = self.aligner.step(event);
        self.check(finished, &action);
        action
    }

    /// The invariants that hold after every step.
    fn check(&self, finished_before: u64, action: &AlignerAction) {
        let a = &self.aligner;
        if a.finished() < finished_before {
            self.fail("the finished checkpoint went back");
        }
        for input in 0..self.queues.len() {
            if a.is_blocked(input) && a.is_recording(input) {
                self.fail("an input both blocked and recording");
            }
        }
        if let Some(current) = a.current() {
            if current.id <= a.finished() {
                self.fail("aligning a finished checkpoint");
            }
        }
        match action {
            AlignerAction::Complete { barrier, unaligned } => {
                if *unaligned && self.is_savepoint(barrier.id) {
                    self.fail("a savepoint went unaligned");
                }
                if a.finished() != barrier.id || a.is_aligning() {
                    self.fail("completed, yet not finished");
                }
            }
            AlignerAction::Overtake { barrier, .. } if self.is_savepoint(barrier.id) => {
                self.fail("a savepoint overtook");
            }
            _ => {}
        }
    }

    fn arrive(&mut self, input: usize, event: Event) {
        match event {
            Event::Barrier(id)
                if self
                    .aligner
                    .counts_on_arrival(&barrier(id), self.is_savepoint(id)) =>
            {
                self.barrier(input, id);
                return;
            }
            Event::Record(v) if self.aligner.is_recording(input) => self.in_flight.push(v),
            Event::End => {
                let action = self.step(AlignerEvent::EndArrived { input });
                self.perform(action);
            }
            _ => {}
        }
        self.queues[input].push_back(event);
    }

    fn process(&mut self, input: usize) -> bool {
        self.check_deadline();
        if self.aligner.is_blocked(input) {
            return false;
        }
        let Some(event) = self.queues[input].pop_front() else {
            return false;
        };
        match event {
            Event::Record(v) => self.seen.push(Seen::Record(v)),
            Event::Barrier(id) => self.barrier(input, id),
            Event::End => {
                let action = self.step(AlignerEvent::End { input });
                self.perform(action);
            }
        }
        true
    }

    fn barrier(&mut self, input: usize, id: u64) {
        for _ in 0..3 {
            let action = self.step(AlignerEvent::Barrier {
                input,
                barrier: barrier(id),
                savepoint: self.is_savepoint(id),
                now: self.now(),
            });
            let abandoned = matches!(action, AlignerAction::Abandoned(_));
            self.perform(action);
            if !abandoned {
                return;
            }
        }
        self.fail("a barrier abandoned alignments twice");
    }

    fn check_deadline(&mut self) {
        let Some(deadline) = self.aligner.deadline() else {
            return;
        };
        if self.now() >= deadline {
            let action = self.step(AlignerEvent::Tick { now: self.now() });
            if self.aligner.deadline().is_some() {
                self.fail("a passed deadline did not turn the alignment unaligned");
            }
            self.perform(action);
        }
    }

    fn perform(&mut self, action: AlignerAction) {
        match action {
            AlignerAction::None => {}
            AlignerAction::Abandoned(old) => {
                if self.seen.contains(&Seen::Barrier(old.id)) {
                    self.overtaken_then_abandoned.push(old.id);
                }
                self.in_flight.clear();
            }
            AlignerAction::Overtake {
                barrier,
                in_flight_from,
            } => {
                self.seen.push(Seen::Barrier(barrier.id));
                let mut reached = Vec::new();
                for input in in_flight_from {
                    if self.record_queued(input, barrier.id) {
                        reached.push(input);
                    }
                }
                let next = self.step(AlignerEvent::Overtaken { reached: &reached });
                self.perform(next);
            }
            AlignerAction::Complete { barrier, unaligned } => {
                if !unaligned {
                    self.seen.push(Seen::Barrier(barrier.id));
                }
                let kept = std::mem::take(&mut self.in_flight);
                if self
                    .completed
                    .insert(barrier.id, (unaligned, kept))
                    .is_some()
                {
                    self.fail("a checkpoint completed twice");
                }
            }
        }
    }

    /// Keeps what `input` queued before barrier `id`; true if that barrier
    /// (taken out) or the end was among it.
    fn record_queued(&mut self, input: usize, id: u64) -> bool {
        let mut kept = VecDeque::new();
        let mut reached = false;
        let mut counted = false;
        for event in std::mem::take(&mut self.queues[input]) {
            if !reached {
                match event {
                    Event::Record(v) => self.in_flight.push(v),
                    Event::Barrier(b) if b == id => {
                        reached = true;
                        counted = true;
                        continue;
                    }
                    Event::Barrier(b) if b > id => reached = true,
                    Event::End => {
                        reached = true;
                        counted = true;
                    }
                    Event::Barrier(_) => {}
                }
            }
            kept.push_back(event);
        }
        self.queues[input] = kept;
        counted
    }
}

fn barrier(id: u64) -> CheckpointBarrier {
    CheckpointBarrier {
        id,
        timestamp_ms: 0,
    }
}

/// The records of `events` before barrier `id`; `None` when the input
/// skipped it (a newer barrier came instead), so checkpoint `id` could not
/// complete in a job.
fn before_barrier(events: &[Event], id: u64) -> Option<Vec<u64>> {
    let mut records = Vec::new();
    for event in events {
        match *event {
            Event::Barrier(b) if b == id => return Some(records),
            Event::Barrier(b) if b > id => return None,
            Event::Record(v) => records.push(v),
            _ => {}
        }
    }
    Some(records)
}

/// One seeded run under `policy`; panics naming the seed on a violation.
fn simulate(seed: u64, policy: BarrierAlignment, savepoints: bool) {
    let mut rng = Rng::new(seed);
    let inputs = 1 + rng.below(4) as usize;
    let checkpoints = 1 + rng.below(4);
    let scripts: Vec<Vec<Event>> = (0..inputs)
        .map(|i| script(&mut rng, i as u64, checkpoints))
        .collect();
    let mut gate = Gate {
        aligner: BarrierAligner::new(inputs, policy),
        queues: vec![VecDeque::new(); inputs],
        seen: Vec::new(),
        in_flight: Vec::new(),
        completed: BTreeMap::new(),
        overtaken_then_abandoned: Vec::new(),
        savepoints,
        base: Instant::now(),
        now_ms: 0,
        seed,
    };
    let mut next = vec![0usize; inputs];
    // The seed picks among arriving, processing and time passing.
    for _ in 0..300 {
        let input = rng.below(inputs as u64) as usize;
        match rng.below(10) {
            0..=3 => {
                if let Some(&event) = scripts[input].get(next[input]) {
                    next[input] += 1;
                    gate.arrive(input, event);
                }
            }
            4..=8 => {
                gate.process(input);
            }
            _ => {
                gate.now_ms += rng.below(30);
                gate.check_deadline();
            }
        }
    }
    // Everything left arrives and is processed, as a gate's tasks would.
    for _ in 0..10_000 {
        let mut progressed = false;
        for input in 0..inputs {
            if let Some(&event) = scripts[input].get(next[input]) {
                next[input] += 1;
                gate.arrive(input, event);
                progressed = true;
            }
            while gate.process(input) {
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    for (input, queue) in gate.queues.iter().enumerate() {
        if next[input] != scripts[input].len() || !queue.is_empty() {
            gate.fail(&format!("input {input} stuck: {queue:?}"));
        }
    }
    if gate.aligner.is_aligning() {
        gate.fail("an alignment never completed");
    }
    verify(&gate, &scripts, policy);
}

/// What must hold of a finished run.
fn verify(gate: &Gate, scripts: &[Vec<Event>], policy: BarrierAlignment) {
    let seen = &gate.seen;
    // Every record once, in its input's order.
    for (input, script) in scripts.iter().enumerate() {
        let sent: Vec<u64> = script
            .iter()
            .filter_map(|e| match e {
                Event::Record(v) => Some(*v),
                _ => None,
            })
            .collect();
        let processed: Vec<u64> = seen
            .iter()
            .filter_map(|s| match s {
                Seen::Record(v) if *v / 1000 == input as u64 => Some(*v),
                _ => None,
            })
            .collect();
        if sent != processed {
            gate.fail(&format!(
                "input {input}: sent {sent:?}, processed {processed:?}"
            ));
        }
    }
    // Each barrier passed on once, in order: the completed ones, and those
    // that overtook before their alignment was abandoned.
    let passed: Vec<u64> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Barrier(id) => Some(*id),
            _ => None,
        })
        .collect();
    if passed.windows(2).any(|w| w[0] >= w[1]) {
        gate.fail(&format!("barriers out of order: {passed:?}"));
    }
    let mut completed: Vec<u64> = gate.completed.keys().copied().collect();
    completed.extend(&gate.overtaken_then_abandoned);
    completed.sort_unstable();
    if passed != completed {
        gate.fail(&format!("passed {passed:?}, completed {completed:?}"));
    }
    // Every input delivers the newest barrier or ends first: it completes.
    let newest = scripts
        .iter()
        .flatten()
        .filter_map(|e| match e {
            Event::Barrier(id) => Some(*id),
            _ => None,
        })
        .max();
    if let Some(newest) = newest.filter(|id| !gate.completed.contains_key(id)) {
        gate.fail(&format!("checkpoint {newest} never completed: {scripts:?}"));
    }
    // The cut: processed before the barrier, then kept, is what came before.
    for (&id, (unaligned, kept)) in &gate.completed {
        let unaligned_allowed = match policy {
            BarrierAlignment::Aligned => false,
            _ => !gate.is_savepoint(id),
        };
        if *unaligned && !unaligned_allowed {
            gate.fail(&format!("checkpoint {id} went unaligned"));
        }
        if !unaligned && !kept.is_empty() {
            gate.fail(&format!("aligned checkpoint {id} kept {kept:?}"));
        }
        let expected: Option<Vec<Vec<u64>>> =
            scripts.iter().map(|s| before_barrier(s, id)).collect();
        let Some(expected) = expected else {
            continue;
        };
        let at = seen
            .iter()
            .position(|s| *s == Seen::Barrier(id))
            .expect("passed");
        for (input, expected) in expected.iter().enumerate() {
            let of_input = |v: &u64| *v / 1000 == input as u64;
            let mut together: Vec<u64> = seen[..at]
                .iter()
                .filter_map(|s| match s {
                    Seen::Record(v) => Some(*v),
                    _ => None,
                })
                .filter(of_input)
                .collect();
            together.extend(kept.iter().copied().filter(of_input));
            if together != *expected {
                gate.fail(&format!(
                    "checkpoint {id} input {input}: processed and kept {together:?}, \
                     before the barrier {expected:?}"
                ));
            }
        }
    }
}

const SEEDS: u64 = 3_000;

#[test]
fn aligned_barriers_cut_every_input_at_the_same_point() {
    for seed in 0..SEEDS {
        simulate(seed, BarrierAlignment::Aligned, false);
    }
}

#[test]
fn unaligned_barriers_keep_exactly_what_they_overtook() {
    for seed in 0..SEEDS {
        simulate(seed, BarrierAlignment::Unaligned, seed.is_multiple_of(2));
    }
}

#[test]
fn an_alignment_past_its_timeout_switches_to_unaligned() {
    for seed in 0..SEEDS {
        let timeout = Duration::from_millis(seed % 40);
        simulate(
            seed,
            BarrierAlignment::AlignedWithTimeout(timeout),
            seed.is_multiple_of(3),
        );
    }
}

#[test]
fn a_newer_barrier_abandons_the_older_alignment_without_being_taken() {
    let now = Instant::now();
    let mut aligner = BarrierAligner::new(2, BarrierAlignment::Aligned);
    let at = |input, id| AlignerEvent::Barrier {
        input,
        barrier: barrier(id),
        savepoint: false,
        now,
    };
    assert_eq!(aligner.step(at(0, 1)), AlignerAction::None);
    assert!(aligner.is_blocked(0));
    assert_eq!(aligner.step(at(1, 2)), AlignerAction::Abandoned(barrier(1)));
    assert!(!aligner.is_aligning(), "nothing is blocked while releasing");
    assert_eq!(aligner.step(at(1, 2)), AlignerAction::None);
    assert_eq!(aligner.current(), Some(barrier(2)));
    // An older barrier is ignored.
    assert_eq!(aligner.step(at(0, 1)), AlignerAction::None);
    assert_eq!(
        aligner.step(at(0, 2)),
        AlignerAction::Complete {
            barrier: barrier(2),
            unaligned: false
        }
    );
    // Stale once finished.
    assert_eq!(aligner.step(at(1, 2)), AlignerAction::None);
    assert!(!aligner.is_aligning());
}

#[test]
fn an_input_that_ends_mid_alignment_completes_it() {
    let now = Instant::now();
    let mut aligner = BarrierAligner::new(3, BarrierAlignment::Aligned);
    let at = |input| AlignerEvent::Barrier {
        input,
        barrier: barrier(1),
        savepoint: false,
        now,
    };
    assert_eq!(aligner.step(at(0)), AlignerAction::None);
    assert_eq!(
        aligner.step(AlignerEvent::End { input: 2 }),
        AlignerAction::None
    );
    assert_eq!(
        aligner.step(at(1)),
        AlignerAction::Complete {
            barrier: barrier(1),
            unaligned: false
        }
    );
    assert!(!aligner.all_ended());
}

#[test]
fn an_overtake_completes_only_once_the_caller_recorded_it() {
    let now = Instant::now();
    // Times out at once: input 0's barrier is taken aligned, then overtakes.
    let mut aligner = BarrierAligner::new(2, BarrierAlignment::AlignedWithTimeout(Duration::ZERO));
    let action = aligner.step(AlignerEvent::Barrier {
        input: 0,
        barrier: barrier(1),
        savepoint: false,
        now,
    });
    assert_eq!(
        action,
        AlignerAction::Overtake {
            barrier: barrier(1),
            in_flight_from: vec![1]
        }
    );
    assert!(aligner.is_recording(1), "its queue is in flight");
    // The other input ends while the caller records: not complete yet.
    assert_eq!(
        aligner.step(AlignerEvent::End { input: 1 }),
        AlignerAction::None
    );
    assert_eq!(
        aligner.step(AlignerEvent::Overtaken { reached: &[] }),
        AlignerAction::Complete {
            barrier: barrier(1),
            unaligned: true
        }
    );
}

#[test]
fn a_savepoint_never_turns_unaligned() {
    let now = Instant::now();
    let mut aligner = BarrierAligner::new(2, BarrierAlignment::AlignedWithTimeout(Duration::ZERO));
    let savepoint = AlignerEvent::Barrier {
        input: 0,
        barrier: barrier(1),
        savepoint: true,
        now,
    };
    assert!(!aligner.counts_on_arrival(&barrier(1), true));
    assert_eq!(aligner.step(savepoint), AlignerAction::None);
    assert_eq!(aligner.deadline(), None);
    let later = now + Duration::from_secs(60);
    assert_eq!(
        aligner.step(AlignerEvent::Tick { now: later }),
        AlignerAction::None
    );
    assert!(aligner.is_blocked(0));
}
