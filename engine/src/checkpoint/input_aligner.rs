//! Barrier alignment for operators with several inputs in one chain (`union`,
//! two-input `connect(..).process(..)`).
//!
//! Lives on its shard's core. Each input of such an operator gets an
//! [`AlignedInput`] in front of it; they share one [`InputAligner`], whose
//! [`BarrierAligner`] (always aligned) says when. Once barrier *n* has come
//! through an input, that input's later events are held (in order) until
//! barrier *n* has come through every input that has not ended; then the
//! operator's state is written (when it has any), the barrier goes on once,
//! and the held events follow. A newer barrier abandons an older alignment.
//! The held events are bounded by how long alignment takes.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use sluice_network::CheckpointBarrier;

use super::barrier_aligner::{AlignerAction, AlignerEvent, BarrierAligner};
use super::shard::{ShardCheckpoints, SourcePositions};
use super::BarrierAlignment;
use crate::push::{Control, EdgeId, Push};
use crate::Rec;

enum Held<T> {
    Records(Vec<Rec<T>>),
    Control(Control),
}

/// An input as the aligner sees it (type-erased over its record type).
trait AlignedInputHandle {
    /// Passes the held events on, until none is left or the input blocks again.
    fn replay(&self);
    /// Passes `barrier` to the operator through this input.
    fn forward_barrier(&self, barrier: CheckpointBarrier);
}

/// The alignment state shared by the inputs of one operator.
pub struct InputAligner {
    aligner: BarrierAligner,
    inputs: Vec<Rc<dyn AlignedInputHandle>>,
    /// The operator's part in checkpoints, when it owns state.
    snapshot: Option<(Rc<ShardCheckpoints>, usize)>,
}

impl InputAligner {
    pub fn new(
        inputs: usize,
        snapshot: Option<(Rc<ShardCheckpoints>, usize)>,
    ) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(InputAligner {
            aligner: BarrierAligner::new(inputs, BarrierAlignment::Aligned),
            inputs: Vec::with_capacity(inputs),
            snapshot,
        }))
    }
}

struct InputState<T> {
    index: usize,
    aligner: Rc<RefCell<InputAligner>>,
    held: RefCell<VecDeque<Held<T>>>,
    next: RefCell<Box<dyn Push<T>>>,
}

/// One input of a multi-input operator; see the module docs.
pub struct AlignedInput<T> {
    state: Rc<InputState<T>>,
}

impl<T: 'static> AlignedInput<T> {
    /// Input `index` of the operator `aligner` aligns, feeding `next`.
    pub fn new(aligner: Rc<RefCell<InputAligner>>, index: usize, next: Box<dyn Push<T>>) -> Self {
        let state = Rc::new(InputState {
            index,
            aligner: aligner.clone(),
            held: RefCell::new(VecDeque::new()),
            next: RefCell::new(next),
        });
        aligner.borrow_mut().inputs.push(state.clone());
        AlignedInput { state }
    }
}

impl<T> InputState<T>
where
    Self: AlignedInputHandle,
{
    fn blocked(&self) -> bool {
        self.aligner.borrow().aligner.is_blocked(self.index)
    }

    fn step(&self, event: AlignerEvent<'_>) -> AlignerAction {
        self.aligner.borrow_mut().aligner.step(event)
    }

    fn control(&self, event: Control) {
        if self.blocked() {
            self.held.borrow_mut().push_back(Held::Control(event));
            return;
        }
        match event {
            Control::Barrier(barrier) => self.barrier(barrier),
            Control::End => {
                self.next.borrow_mut().control(Control::End);
                let action = self.step(AlignerEvent::End { input: self.index });
                perform(&self.aligner, action, None);
                // The operator's state is final: it counts for later checkpoints.
                let (all_ended, snapshot) = {
                    let a = self.aligner.borrow();
                    (a.aligner.all_ended(), a.snapshot.clone())
                };
                if let (true, Some((checkpoints, participant))) = (all_ended, snapshot) {
                    checkpoints.ended(participant, SourcePositions::new());
                }
            }
            other => self.next.borrow_mut().control(other),
        }
    }

    fn barrier(&self, barrier: CheckpointBarrier) {
        loop {
            let action = self.step(AlignerEvent::Barrier {
                input: self.index,
                barrier,
                savepoint: false,
                now: Instant::now(),
            });
            if let AlignerAction::Abandoned(_) = action {
                // The older checkpoint was aborted: what the inputs held goes
                // on first, in order (it may bring this barrier along too);
                // then this barrier counts.
                replay_all(&self.aligner);
                continue;
            }
            return perform(&self.aligner, action, Some(self));
        }
    }
}

fn replay_all(aligner: &Rc<RefCell<InputAligner>>) {
    let inputs = aligner.borrow().inputs.clone();
    for input in inputs {
        input.replay();
    }
}

/// On completion, writes the operator's state, passes the barrier on
/// (through `via`, the input that completed the alignment, or the first
/// input when an end did) and replays what the inputs held.
fn perform(
    aligner: &Rc<RefCell<InputAligner>>,
    action: AlignerAction,
    via: Option<&dyn AlignedInputHandle>,
) {
    let barrier = match action {
        AlignerAction::None => return,
        AlignerAction::Complete { barrier, .. } => barrier,
        AlignerAction::Abandoned(_) | AlignerAction::Overtake { .. } => {
            unreachable!("an aligned policy never overtakes; an abandon is retried by the caller")
        }
    };
    let snapshot = aligner.borrow().snapshot.clone();
    if let Some((checkpoints, participant)) = snapshot {
        checkpoints.at_barrier(participant, barrier.id, SourcePositions::new());
    }
    match via {
        Some(input) => input.forward_barrier(barrier),
        None => {
            let first = aligner.borrow().inputs.first().cloned();
            if let Some(first) = first {
                first.forward_barrier(barrier);
            }
        }
    }
    replay_all(aligner);
}

impl<T> AlignedInputHandle for InputState<T> {
    fn forward_barrier(&self, barrier: CheckpointBarrier) {
        self.next.borrow_mut().control(Control::Barrier(barrier));
    }

    fn replay(&self) {
        loop {
            if self.blocked() {
                return;
            }
            let Some(event) = self.held.borrow_mut().pop_front() else {
                return;
            };
            match event {
                Held::Records(mut batch) => self.next.borrow_mut().push(&mut batch),
                Held::Control(control) => self.control(control),
            }
        }
    }
}

impl<T: 'static> Push<T> for AlignedInput<T> {
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        if self.state.blocked() {
            self.state
                .held
                .borrow_mut()
                .push_back(Held::Records(std::mem::take(batch)));
            return;
        }
        self.state.next.borrow_mut().push(batch);
    }

    fn control(&mut self, event: Control) {
        self.state.control(event);
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.state.next.borrow().reachable_edges(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    enum Seen {
        Record(u32),
        Barrier(u64),
        End,
    }

    struct Recorder(Rc<RefCell<Vec<Seen>>>);

    impl Push<u32> for Recorder {
        fn push(&mut self, batch: &mut Vec<Rec<u32>>) {
            let mut seen = self.0.borrow_mut();
            seen.extend(batch.drain(..).map(|r| Seen::Record(r.value)));
        }
        fn control(&mut self, event: Control) {
            match event {
                Control::Barrier(b) => self.0.borrow_mut().push(Seen::Barrier(b.id)),
                Control::End => self.0.borrow_mut().push(Seen::End),
                _ => {}
            }
        }
        fn reachable_edges(&self, _out: &mut Vec<EdgeId>) {}
    }

    fn barrier(id: u64) -> Control {
        Control::Barrier(CheckpointBarrier {
            id,
            timestamp_ms: 0,
        })
    }

    fn inputs() -> (Vec<AlignedInput<u32>>, Rc<RefCell<Vec<Seen>>>) {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let aligner = InputAligner::new(2, None);
        let inputs = (0..2)
            .map(|i| AlignedInput::new(aligner.clone(), i, Box::new(Recorder(seen.clone()))))
            .collect();
        (inputs, seen)
    }

    fn records(values: &[u32]) -> Vec<Rec<u32>> {
        values.iter().map(|&v| Rec::new(0, v)).collect()
    }

    #[test]
    fn records_after_a_barrier_wait_for_the_other_inputs_barrier() {
        let (mut inputs, seen) = inputs();
        inputs[0].push(&mut records(&[1]));
        inputs[0].control(barrier(1));
        inputs[0].push(&mut records(&[2]));
        inputs[1].push(&mut records(&[10]));
        assert_eq!(*seen.borrow(), vec![Seen::Record(1), Seen::Record(10)]);
        inputs[1].control(barrier(1));
        inputs[1].push(&mut records(&[11]));
        assert_eq!(
            *seen.borrow(),
            vec![
                Seen::Record(1),
                Seen::Record(10),
                Seen::Barrier(1),
                Seen::Record(2),
                Seen::Record(11)
            ]
        );
    }

    #[test]
    fn an_ended_input_does_not_hold_back_the_barrier() {
        let (mut inputs, seen) = inputs();
        inputs[0].control(barrier(1));
        inputs[0].push(&mut records(&[2]));
        inputs[0].control(Control::End);
        inputs[1].push(&mut records(&[10]));
        inputs[1].control(Control::End);
        assert_eq!(
            *seen.borrow(),
            vec![
                Seen::Record(10),
                Seen::End,
                Seen::Barrier(1),
                Seen::Record(2),
                Seen::End
            ]
        );
    }

    #[test]
    fn a_newer_barrier_abandons_the_older_alignment() {
        let (mut inputs, seen) = inputs();
        inputs[0].control(barrier(1));
        inputs[0].push(&mut records(&[2]));
        inputs[1].control(barrier(2));
        inputs[0].control(barrier(2));
        assert_eq!(
            *seen.borrow(),
            vec![Seen::Record(2), Seen::Barrier(2)],
            "input 0's held record goes on when alignment 1 is dropped"
        );
    }
}
