//! Errors of the engine, grouped by who must act.

use std::path::PathBuf;

/// A source could not produce records.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Bad input data: names the file (or partition) and where in it.
    #[error("{location}: {reason}")]
    BadRecord { location: String, reason: String },
    /// The source cannot start from a checkpointed position (a job that
    /// checkpoints cannot use it): the job's configuration must change.
    #[error("{source_name} cannot resume from a checkpointed position")]
    CannotResume { source_name: String },
    /// The input could not be read.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A job failed while running.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("source failed: {0}")]
    Source(#[from] SourceError),
    #[error("sink failed: {0}")]
    Sink(String),
    /// An operator could not compute its result for a record (a SQL
    /// expression that divides by zero, a cast that cannot be made).
    #[error("a record could not be processed: {0}")]
    Record(String),
    #[error("a record could not be serialized for an exchange: {0}")]
    Serialize(String),
    #[error("starting shard {shard}: {reason}")]
    Startup { shard: u32, reason: String },
    #[error("shard {shard} stopped abnormally: {reason} (this is a bug)")]
    ShardPanicked { shard: u32, reason: String },
    #[error("invalid job configuration: {0}")]
    Config(String),
    #[error("cannot restore: {0}")]
    Restore(String),
    #[error("checkpoint failed: {0}")]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A link to a shard of another process failed (the peer went away or
    /// sent what it may not).
    #[error("{0}")]
    Link(String),
}

impl EngineError {
    /// A failure of a running job (as opposed to one that could not start):
    /// what a restart strategy restarts.
    pub fn is_failure_while_running(&self) -> bool {
        match self {
            EngineError::Source(_)
            | EngineError::Sink(_)
            | EngineError::Record(_)
            | EngineError::Serialize(_)
            | EngineError::ShardPanicked { .. }
            | EngineError::Checkpoint(_)
            | EngineError::Link(_) => true,
            EngineError::Startup { .. } | EngineError::Config(_) | EngineError::Restore(_) => false,
        }
    }
}
