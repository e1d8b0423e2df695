//! What the dashboard's page reads: the JSON of `GET /ui/api/overview` (the
//! jobs and workers) and `GET /ui/api/jobs/<id>` (one job's graph, shards,
//! checkpoints and live series). The same shapes whether a coordinator or
//! `sluice run --ui` answers. They carry figures and names only: never a
//! job file's text, a secret or a credential.

use serde::Serialize;
use sluice_engine::checkpoint::CompletedCheckpoint;

use super::operators::OperatorProgress;
use super::series::SeriesView;

/// How many completed checkpoints a job's history keeps.
pub const CHECKPOINTS_SHOWN: usize = 50;

/// `GET /ui/api/overview`.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// `cluster` (a coordinator) or `local` (`sluice run --ui`).
    pub mode: &'static str,
    /// Whether savepoint and cancel are offered (behind the cluster
    /// secret).
    pub actions: bool,
    pub jobs: Vec<JobSummary>,
    pub workers: Vec<WorkerView>,
}

/// A job in the list.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    pub id: String,
    pub name: String,
    pub state: String,
    pub attempt: u32,
    pub restarts: u32,
    pub shards: usize,
    pub records_out: u64,
    /// Over the last second sampled.
    pub records_out_per_s: f64,
    pub error: Option<String>,
}

/// A worker and the shards it runs.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    pub name: String,
    pub data_address: String,
    pub alive: bool,
    pub draining: bool,
    pub shards: u32,
    pub tasks: Vec<WorkerTask>,
}

/// The shards of one job on a worker.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerTask {
    pub job: String,
    pub shards: Vec<u32>,
}

/// `GET /ui/api/jobs/<id>`.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    pub name: String,
    pub state: String,
    pub attempt: u32,
    pub restarts: u32,
    pub error: Option<String>,
    pub last_checkpoint: Option<u64>,
    pub records_in: u64,
    pub records_out: u64,
    /// The plan's nodes with their figures, summed over every shard.
    pub operators: Vec<OperatorProgress>,
    pub shards: Vec<ShardView>,
    /// Newest last.
    pub checkpoints: Vec<CheckpointView>,
    pub series: SeriesView,
    pub actions: bool,
}

/// One shard of a job.
#[derive(Debug, Clone, Serialize)]
pub struct ShardView {
    pub shard: u32,
    /// The worker it runs on (none in one process).
    pub worker: Option<String>,
    pub records_in: u64,
    pub records_out: u64,
    /// At its sinks, in milliseconds since the epoch (none yet).
    pub watermark: Option<i64>,
    /// Wall clock minus the watermark, when the figures were taken.
    pub watermark_lag_ms: Option<i64>,
    pub backpressured_ms_per_s: u64,
}

/// One completed checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointView {
    pub id: u64,
    /// When it was seen complete, in milliseconds since the epoch.
    pub completed_at_ms: i64,
    pub duration_ms: f64,
    /// Bytes written for it.
    pub bytes: u64,
    /// Bytes of every file it consists of (incremental: shared ones too).
    pub total_bytes: u64,
    /// The longest a shard spent on its synchronous part.
    pub sync_ms: f64,
    /// The longest a barrier waited for alignment at an input.
    pub alignment_ms: f64,
    /// Records in flight that unaligned barriers kept, encoded.
    pub in_flight_bytes: u64,
}

impl CheckpointView {
    pub fn of(completed: &CompletedCheckpoint, completed_at_ms: i64) -> Self {
        CheckpointView {
            id: completed.id,
            completed_at_ms,
            duration_ms: completed.duration_ms,
            bytes: completed.bytes,
            total_bytes: completed.total_bytes,
            sync_ms: completed.sync_max_ms,
            alignment_ms: completed.alignment_max_ms,
            in_flight_bytes: completed.in_flight_received_bytes + completed.in_flight_sent_bytes,
        }
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
