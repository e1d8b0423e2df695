//! The messages of the control plane and their framing: a little-endian
//! `u32` length, then that many bytes of JSON.

use std::io::{self, Read, Write};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sluice_engine::checkpoint::{CheckpointId, PartCommand, PartEvent};

use crate::dashboard::operators::OperatorProgress;

/// The largest message (a job file travels in one).
pub const MESSAGE_MAX_BYTES: u32 = 16 << 20;

/// A worker's shard counts, for the coordinator's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTotals {
    pub records_in: u64,
    pub records_out: u64,
    pub bytes_exchanged: u64,
    /// Bytes this task wrote to links to other workers.
    #[serde(default)]
    pub wire_bytes_sent: u64,
    pub late_records_dropped: u64,
    /// How long the task ran, from its links being up to its end.
    #[serde(default)]
    pub elapsed_ms: u64,
    /// Each shard of the task, as of its last report.
    #[serde(default)]
    pub shards: Vec<ShardProgress>,
    /// The plan's nodes over the task's shards (the dashboard's graph).
    #[serde(default)]
    pub operators: Vec<OperatorProgress>,
    /// The 99th percentile of the task's sink latency since its previous
    /// report, in microseconds.
    #[serde(default)]
    pub sink_latency_p99_us: Option<u64>,
}

/// One shard of a running task, for the coordinator's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardProgress {
    pub shard: u32,
    pub records_in: u64,
    pub records_out: u64,
    /// At its sinks (`None`: no watermark yet).
    pub watermark: Option<i64>,
    /// Of the last second, how many milliseconds its output waited for
    /// credit from the shards it sends to (Flink's
    /// backPressuredTimeMsPerSecond; summed over its edges, at most 1000).
    pub backpressured_ms_per_s: u64,
}

/// Worker → coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToCoordinator {
    /// First message: who the worker is and what it offers.
    Register {
        /// A name for status and errors (default: host and pid).
        name: String,
        /// Where other workers reach its data plane (`HOST:PORT`).
        data_address: String,
        /// How many shards it runs (one per core it may use).
        shards: u32,
    },
    Heartbeat,
    /// The worker was told to stop (SIGTERM): move its tasks elsewhere after
    /// a checkpoint taken now, and place nothing new on it.
    Draining,
    /// A task of `job` under `attempt` runs: every link is connected.
    TaskRunning {
        job: String,
        attempt: u32,
    },
    /// The task's shards finished.
    TaskFinished {
        job: String,
        attempt: u32,
        totals: TaskTotals,
    },
    /// The task failed (or could not start).
    TaskFailed {
        job: String,
        attempt: u32,
        error: String,
    },
    /// Progress of a running task.
    TaskProgress {
        job: String,
        attempt: u32,
        totals: TaskTotals,
    },
    /// A shard's part of a checkpoint, for the job's checkpoint leader.
    Checkpoint {
        job: String,
        attempt: u32,
        event: PartEvent,
    },
}

/// One shard of a deployed job and where it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPlacement {
    pub shard: u32,
    /// The worker's name.
    pub worker: String,
    /// The worker's data-plane address.
    pub data_address: String,
}

/// Coordinator → worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// The answer to `Register`.
    Registered {
        /// How often both sides send heartbeats.
        heartbeat_interval_ms: u64,
        /// After how long without one the other side counts as gone.
        heartbeat_timeout_ms: u64,
    },
    Heartbeat,
    /// Run the shards `here` of attempt `attempt` of `job`.
    Deploy {
        job: String,
        attempt: u32,
        /// The job file as submitted: its path (for relative paths and
        /// messages) and its text.
        path: String,
        text: String,
        /// Every shard of the job, with the worker that runs it.
        placement: Vec<ShardPlacement>,
        /// The checkpoint every shard restores (in the job's checkpoint
        /// storage); `None`: what the job file says.
        #[serde(default)]
        restore: Option<CheckpointId>,
        /// Without `restore`: what the job was submitted to restore
        /// (`sluice submit --restore`, read as `sluice run --restore`).
        #[serde(default)]
        restore_from: Option<String>,
    },
    /// The job's checkpoint leader commands every task of the attempt.
    Checkpoint {
        job: String,
        attempt: u32,
        command: PartCommand,
    },
    /// Stop the task of `job` under `attempt` (cancelled, or replaced).
    Cancel {
        job: String,
        attempt: u32,
    },
}

/// A malformed or failed message.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the connection closed")]
    Closed,
    #[error("a message of {0} bytes, more than the {MESSAGE_MAX_BYTES} allowed")]
    TooLong(u32),
    #[error("a malformed message: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Writes one message.
pub fn write_message<M: Serialize, W: Write>(out: &mut W, message: &M) -> Result<(), MessageError> {
    let bytes = serde_json::to_vec(message).map_err(|e| MessageError::Malformed(e.to_string()))?;
    let length = u32::try_from(bytes.len())
        .ok()
        .filter(|&n| n <= MESSAGE_MAX_BYTES)
        .ok_or(MessageError::TooLong(
            bytes.len().min(u32::MAX as usize) as u32
        ))?;
    let mut frame = Vec::with_capacity(4 + bytes.len());
    frame.extend_from_slice(&length.to_le_bytes());
    frame.extend_from_slice(&bytes);
    out.write_all(&frame)?;
    out.flush()?;
    Ok(())
}

/// Reads one message; `Closed` at a clean end between messages.
pub fn read_message<M: DeserializeOwned, R: Read>(input: &mut R) -> Result<M, MessageError> {
    let mut length = [0; 4];
    match input.read_exact(&mut length) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(MessageError::Closed),
        Err(e) => return Err(e.into()),
    }
    let length = u32::from_le_bytes(length);
    if length > MESSAGE_MAX_BYTES {
        return Err(MessageError::TooLong(length));
    }
    let mut bytes = vec![0; length as usize];
    input.read_exact(&mut bytes)?;
    serde_json::from_slice(&bytes).map_err(|e| MessageError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let messages = vec![
            ToWorker::Registered {
                heartbeat_interval_ms: 500,
                heartbeat_timeout_ms: 3000,
            },
            ToWorker::Deploy {
                job: "job-1".into(),
                attempt: 2,
                path: "/jobs/q5.toml".into(),
                text: "job = \"nexmark.q5\"\n".into(),
                placement: vec![ShardPlacement {
                    shard: 0,
                    worker: "w".into(),
                    data_address: "127.0.0.1:1".into(),
                }],
                restore: Some(7),
                restore_from: Some("/savepoints/savepoint-3".into()),
            },
            ToWorker::Checkpoint {
                job: "job-1".into(),
                attempt: 2,
                command: PartCommand::Completed {
                    // The final checkpoint's id is u64::MAX: JSON keeps it.
                    checkpoint: sluice_engine::checkpoint::FINAL_CHECKPOINT,
                    resume_sources: false,
                },
            },
            ToWorker::Cancel {
                job: "job-1".into(),
                attempt: 2,
            },
        ];
        let mut bytes = Vec::new();
        for m in &messages {
            write_message(&mut bytes, m).unwrap();
        }
        let mut input = &bytes[..];
        for m in &messages {
            assert_eq!(&read_message::<ToWorker, _>(&mut input).unwrap(), m);
        }
        assert!(matches!(
            read_message::<ToWorker, _>(&mut input),
            Err(MessageError::Closed)
        ));
    }

    #[test]
    fn bad_messages_are_errors() {
        let huge = (MESSAGE_MAX_BYTES + 1).to_le_bytes();
        assert!(matches!(
            read_message::<ToWorker, _>(&mut &huge[..]),
            Err(MessageError::TooLong(_))
        ));
        let mut garbage = 5u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(b"{{{{{");
        assert!(matches!(
            read_message::<ToWorker, _>(&mut &garbage[..]),
            Err(MessageError::Malformed(_))
        ));
        let truncated = 50u32.to_le_bytes();
        assert!(matches!(
            read_message::<ToWorker, _>(&mut &truncated[..]),
            Err(MessageError::Io(_))
        ));
    }
}
