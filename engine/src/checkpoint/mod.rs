//! Checkpoints: the coordinator's protocol (a state machine driven by inputs
//! and a clock), each shard's part of a checkpoint, the link that writes an
//! operator's state at a barrier, the driver that runs it all for an
//! embedded job (storage, commits), and restore.
//!
//! The driver's concerns, a file each: `driver` (the trigger loop and the
//! coordinator's actions), `restore`, `task_entry` (what a manifest records
//! per shard), `channel_file` (records in flight), `native_upload` (RocksDB
//! parts) and `error`.

mod barrier_aligner;
#[cfg(test)]
mod barrier_aligner_sim;
mod channel_file;
mod coordinator;
mod driver;
mod error;
mod input_aligner;
mod leader;
mod native_upload;
mod part_writer;
mod restart;
mod restore;
pub mod savepoint;
mod shard;
#[cfg(test)]
mod sim_rng;
mod snapshot_at_barrier;
mod task_entry;

pub use sluice_state::checkpoint_store::StorageLocation;

pub use barrier_aligner::{AlignerAction, AlignerEvent, BarrierAligner};
pub use coordinator::{
    CheckpointAction, CheckpointCoordinator, CheckpointId, CheckpointInput, CheckpointStats,
    CheckpointTiming, TaskId,
};
pub use driver::{
    CheckpointDriver, Committers, CompletedCheckpoint, LeaderLink, PartEvents, FINAL_CHECKPOINT,
};
pub use error::CheckpointError;
pub use input_aligner::{AlignedInput, InputAligner};
pub use leader::CheckpointLeader;
pub use part_writer::{PartCommand, PartCost, PartEvent};
pub use restart::RestartStrategy;
pub use restore::{first_checkpoint_id, restore, Restored};
pub use shard::{
    position_key, ChannelStates, CheckpointSignals, ParticipantKind, ShardCheckpointing,
    ShardCheckpoints, ShardReport, SourcePositions,
};
pub use snapshot_at_barrier::SnapshotAtBarrier;
pub use task_entry::ShardAck;

/// How input gates treat checkpoint barriers (`checkpoint.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BarrierAlignment {
    /// Inputs that delivered the barrier wait for the others.
    #[default]
    Aligned,
    /// The first barrier goes on at once; records still arriving on other
    /// inputs before their barrier are kept as channel state.
    Unaligned,
    /// Aligned, switching to unaligned when alignment takes longer than this.
    AlignedWithTimeout(std::time::Duration),
}

/// Which checkpoint a job resumes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreFrom {
    /// The newest usable one (or a fresh start when there is none).
    Latest,
    /// This one.
    Checkpoint(CheckpointId),
}

/// How a job checkpoints (`[checkpoint]` in the job file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// Where checkpoints are stored (a directory or S3).
    pub storage: StorageLocation,
    pub timing: CheckpointTiming,
    /// How many completed checkpoints to keep (at least 1).
    pub retain: usize,
    pub restore: Option<RestoreFrom>,
    /// Where the checkpoint to restore is read from, when not `storage`
    /// (a savepoint, or another job's storage).
    pub restore_storage: Option<StorageLocation>,
    /// The job's name, written into manifests.
    pub job_name: String,
    /// Incremental checkpoints: each shard writes only what changed since its
    /// previous part, and everything at least every `full_every` checkpoints
    /// (`None`: everything every time).
    pub full_every: Option<u32>,
    pub alignment: BarrierAlignment,
}

/// Commits what an exactly-once sink pre-committed for a checkpoint, once the
/// checkpoint is complete. Called from the driver's thread.
///
/// Some sinks also decide something for the whole job once every shard has
/// committed (the partitioned file sink marks a bucket complete, as Flink's
/// single partition committer does). That decision is taken where shard 0
/// runs; on a cluster the committers of other processes leave
/// [`CommitNote`]s, which the checkpoint leader hands to every process.
pub trait Committer: Send {
    /// Commits everything pre-committed for checkpoints up to `checkpoint`.
    fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), String>;

    /// Notes for the process that decides for the job, left by commits here.
    fn take_notes(&mut self) -> Vec<CommitNote> {
        Vec::new()
    }

    /// A note another process's committer left; one meant for another sink,
    /// or arriving where nothing is decided, is ignored.
    fn receive_note(&mut self, _note: &CommitNote) -> Result<(), String> {
        Ok(())
    }

    /// Whether this process decides for the job and waits for notes of the
    /// final checkpoint from other processes.
    fn awaiting_final_notes(&self) -> bool {
        false
    }
}

/// What a sink's committer in one process tells the sink's deciding
/// committer (where shard 0 runs) after a commit. `sink` names the sink
/// (the same in every process of a job); `body` is the sink's own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitNote {
    pub sink: String,
    pub body: serde_json::Value,
}

#[cfg(test)]
mod tests;
