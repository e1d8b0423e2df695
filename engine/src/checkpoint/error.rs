//! What can go wrong with a checkpoint, grouped by who must act.

use std::path::PathBuf;

use sluice_state::checkpoint_store::StoreError;

use super::CheckpointId;

/// A checkpoint could not be written, completed or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint storage failed a request: it is unreachable, full or
    /// misconfigured (retry later, or fix the storage settings).
    #[error("{context}: {source}")]
    Storage { context: String, source: StoreError },
    /// The storage could not be opened with the job's settings (fix the
    /// storage settings).
    #[error("opening checkpoint storage {location}: {reason}")]
    Open { location: String, reason: String },
    /// The storage answered, but what it holds cannot be used: a missing,
    /// damaged or inconsistent manifest or file (restore another checkpoint).
    #[error("{0}")]
    Unusable(String),
    /// Checkpoint `checkpoint` cannot be restored where it was asked for.
    #[error("checkpoint {checkpoint} in {location}: {reason}")]
    Restore {
        checkpoint: CheckpointId,
        location: String,
        reason: Box<CheckpointError>,
    },
    /// What a shard reported could not be encoded into a checkpoint file
    /// (a record in flight over the format's 4 GiB limit).
    #[error("encoding {file}: {source}")]
    Encode {
        file: String,
        source: sluice_state::CodecError,
    },
    /// A local file of a checkpoint (a RocksDB part, its staging copy) could
    /// not be read or written (the machine's disk).
    #[error("{what} {}: {source}", path.display())]
    LocalFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A shard could not write the state it ended with: the job's final
    /// checkpoint cannot be taken (the job fails and recovers from its last
    /// complete checkpoint).
    #[error("shard {shard} could not write its final state: {reason}")]
    FinalState { shard: u32, reason: String },
    /// Every shard of this worker ended, but the job's final checkpoint was
    /// not completed by the coordinator (the job recovers from its last
    /// complete checkpoint).
    #[error("the job's final checkpoint was not completed: {0}")]
    FinalNotCompleted(String),
}

impl CheckpointError {
    /// A storage failure while doing `context`.
    pub(crate) fn storage(context: impl Into<String>) -> impl FnOnce(StoreError) -> Self {
        let context = context.into();
        move |source| CheckpointError::Storage { context, source }
    }
}
