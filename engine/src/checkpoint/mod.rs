//! Checkpoints: the coordinator's protocol (a state machine driven by inputs
//! and a clock). Barriers travel in the exchange messages; snapshotting,
//! storage and recovery follow in the fault-tolerance issue.

mod coordinator;

pub use coordinator::{
    CheckpointAction, CheckpointCoordinator, CheckpointId, CheckpointInput, CheckpointStats,
    CheckpointTiming, TaskId,
};

#[cfg(test)]
mod tests;
