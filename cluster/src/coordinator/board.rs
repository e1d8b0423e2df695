//! The coordinator's side of the dashboard: each job's live series (a point
//! a second from what its tasks last reported) and its recent completed
//! checkpoints, and the views the page reads, built from the cluster's
//! state under its lock.
//!
//! Sampled by the tick thread; checkpoints added by the jobs' leader
//! threads; read by the HTTP thread. Nothing here is on the record path.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sluice_engine::checkpoint::CompletedCheckpoint;

use super::state::{Cluster, Job, JobState};
use crate::dashboard::operators::merge;
use crate::dashboard::series::JobSeries;
use crate::dashboard::view::{
    CheckpointView, JobSummary, JobView, Overview, ShardView, WorkerTask, WorkerView,
    CHECKPOINTS_SHOWN,
};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Board {
    series: Mutex<HashMap<String, JobSeries>>,
    checkpoints: Mutex<HashMap<String, VecDeque<CheckpointView>>>,
}

fn state_name(state: JobState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// What a job's tasks last reported: records in and out, and the worst
/// sink latency of the last interval.
fn reported(job: &Job) -> (u64, u64, Option<u64>) {
    let tasks = job.tasks.values();
    let records_in = tasks.clone().map(|t| t.totals.records_in).sum();
    let records_out = tasks.clone().map(|t| t.totals.records_out).sum();
    let latency = tasks.filter_map(|t| t.totals.sink_latency_p99_us).max();
    (records_in, records_out, latency)
}

impl Board {
    /// One point of every job that runs.
    pub fn sample(&self, cluster: &Cluster, now_ms: i64) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.retain(|id, _| cluster.jobs.contains_key(id));
        for job in cluster.jobs.values() {
            if job.state != JobState::Running {
                continue;
            }
            let (_, records_out, latency) = reported(job);
            (series.entry(job.id.clone()).or_default()).record(
                now_ms,
                job.attempt,
                records_out,
                latency,
            );
        }
    }

    /// Checkpoint `completed` of `job` completed at `at_ms`.
    pub fn checkpoint_completed(&self, job: &str, completed: &CompletedCheckpoint, at_ms: i64) {
        let mut all = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        let history = all.entry(job.to_owned()).or_default();
        if history.len() == CHECKPOINTS_SHOWN {
            history.pop_front();
        }
        history.push_back(CheckpointView::of(completed, at_ms));
    }

    pub fn overview(&self, cluster: &Cluster) -> Overview {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let jobs = (cluster.jobs.values().rev())
            .map(|job| {
                let (_, records_out, _) = reported(job);
                let rate = (series.get(&job.id))
                    .and_then(|s| s.view().records_out_per_s.last().copied())
                    .filter(|_| job.state == JobState::Running)
                    .unwrap_or(0.0);
                JobSummary {
                    id: job.id.clone(),
                    name: job.name.clone(),
                    state: state_name(job.state),
                    attempt: job.attempt,
                    restarts: job.failures,
                    shards: job.placement.len(),
                    records_out,
                    records_out_per_s: rate,
                    error: job.error.clone(),
                }
            })
            .collect();
        let workers = (cluster.workers.values())
            .map(|w| WorkerView {
                name: w.name.clone(),
                data_address: w.data_address.clone(),
                alive: w.alive,
                draining: w.draining,
                shards: w.shards,
                tasks: (cluster.jobs.values())
                    .filter(|j| !j.state.is_terminal())
                    .filter_map(|j| {
                        let task = j.tasks.get(&w.name)?;
                        Some(WorkerTask {
                            job: j.id.clone(),
                            shards: task.shards.clone(),
                        })
                    })
                    .collect(),
            })
            .collect();
        Overview {
            mode: "cluster",
            actions: true,
            jobs,
            workers,
        }
    }

    pub fn job(&self, cluster: &Cluster, id: &str, now_ms: i64) -> Option<JobView> {
        let job = cluster.jobs.get(id)?;
        let (records_in, records_out, _) = reported(job);
        let operators = merge(job.tasks.values().map(|t| t.totals.operators.as_slice()));
        let mut shards: Vec<ShardView> = (job.tasks.iter())
            .flat_map(|(worker, task)| {
                task.totals.shards.iter().map(move |s| ShardView {
                    shard: s.shard,
                    worker: Some(worker.clone()),
                    records_in: s.records_in,
                    records_out: s.records_out,
                    watermark: s.watermark.filter(|&w| w != i64::MAX),
                    watermark_lag_ms: s
                        .watermark
                        .filter(|&w| w != i64::MAX)
                        .map(|w| now_ms.saturating_sub(w)),
                    backpressured_ms_per_s: s.backpressured_ms_per_s,
                })
            })
            .collect();
        shards.sort_by_key(|s| s.shard);
        let series = (self.series.lock().unwrap_or_else(|p| p.into_inner()))
            .get(id)
            .map(JobSeries::view)
            .unwrap_or_default();
        let checkpoints = (self.checkpoints.lock().unwrap_or_else(|p| p.into_inner()))
            .get(id)
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default();
        Some(JobView {
            id: job.id.clone(),
            name: job.name.clone(),
            state: state_name(job.state),
            attempt: job.attempt,
            restarts: job.failures,
            error: job.error.clone(),
            last_checkpoint: job.last_checkpoint,
            records_in,
            records_out,
            operators,
            shards,
            checkpoints,
            series,
            actions: !job.state.is_terminal(),
        })
    }
}
