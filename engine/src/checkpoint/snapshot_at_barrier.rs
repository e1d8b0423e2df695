//! The link in a chain, just before an operator that owns keyed state, that
//! writes that state into the checkpoint when a barrier reaches it.
//!
//! Lives on its shard's core. The barrier reaches this link after every record
//! that precedes it (aligned at the gates before it), so the state it writes
//! is exactly the state after those records; the operator then sees the
//! barrier and passes it on. After `End` the operator's state is final and
//! counts for every later checkpoint.

use std::rc::Rc;

use super::shard::{ShardCheckpoints, SourcePositions};
use crate::push::{Control, EdgeId, Push};
use crate::Rec;

pub struct SnapshotAtBarrier<T> {
    checkpoints: Rc<ShardCheckpoints>,
    participant: usize,
    operator: Box<dyn Push<T>>,
}

impl<T> SnapshotAtBarrier<T> {
    pub fn new(
        checkpoints: Rc<ShardCheckpoints>,
        participant: usize,
        operator: Box<dyn Push<T>>,
    ) -> Self {
        SnapshotAtBarrier {
            checkpoints,
            participant,
            operator,
        }
    }
}

impl<T> Push<T> for SnapshotAtBarrier<T> {
    #[inline]
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        self.operator.push(batch)
    }

    fn control(&mut self, event: Control) {
        match event {
            Control::Barrier(barrier) => {
                self.checkpoints
                    .at_barrier(self.participant, barrier.id, SourcePositions::new());
                self.operator.control(event);
            }
            Control::End => {
                self.operator.control(event);
                self.checkpoints
                    .ended(self.participant, SourcePositions::new());
            }
            Control::Watermark(_) | Control::Status(_) => self.operator.control(event),
        }
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.operator.reachable_edges(out)
    }
}
