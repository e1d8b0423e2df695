//! The coordinator's figures, as Prometheus metric families: workers and
//! their shards; per job its state, attempt, restarts, latest completed
//! checkpoint (duration, size, synchronous part, in-flight data) and the
//! records its tasks last reported in and out, per worker.
//!
//! Read from the coordinator's state when scraped, under its lock (briefly:
//! the figures are copied out, then encoded).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use sluice_engine::checkpoint::CompletedCheckpoint;

use super::family::Family;
use crate::coordinator::Shared;

/// Each job's completed checkpoints as its leader counted them: how many,
/// and the latest.
pub(crate) type CheckpointFigures = Mutex<HashMap<String, (u64, CompletedCheckpoint)>>;

/// A collector of the coordinator's state.
pub struct CoordinatorFigures {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for CoordinatorFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoordinatorFigures").finish_non_exhaustive()
    }
}

/// One family of the coordinator's figures.
type Samples = Family<Vec<(&'static str, String)>, f64>;

impl Collector for CoordinatorFigures {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let mut workers = Samples::new(
            "sluice_coordinator_worker_alive",
            "1 for a registered worker that is heard from, 0 for one lost.",
            Gauge,
        );
        let mut worker_shards = Samples::new(
            "sluice_coordinator_worker_shards",
            "Shards a registered worker offers.",
            Gauge,
        );
        let mut state = Samples::new(
            "sluice_job_state",
            "1 for the state a job is in (label `state`).",
            Gauge,
        );
        let mut attempt = Samples::new(
            "sluice_job_attempt",
            "The attempt of a job running or last run.",
            Gauge,
        );
        let mut restarts = Samples::new(
            "sluice_job_restarts",
            "Attempts of a job that failed (restarts taken).",
            Counter,
        );
        let mut task_in = Samples::new(
            "sluice_task_records_in",
            "Records a job's task on a worker read, as it last reported.",
            Counter,
        );
        let mut task_out = Samples::new(
            "sluice_task_records_out",
            "Records a job's task on a worker wrote, as it last reported.",
            Counter,
        );
        let mut completed = Samples::new(
            "sluice_job_checkpoints_completed",
            "Checkpoints of a job its leader completed (since the coordinator started).",
            Counter,
        );
        let mut duration = Samples::new(
            "sluice_checkpoint_last_duration_seconds",
            "The latest completed checkpoint: from trigger to manifest written.",
            Gauge,
        );
        let mut size = Samples::new(
            "sluice_checkpoint_last_size_bytes",
            "The latest completed checkpoint: bytes written for it.",
            Gauge,
        );
        let mut sync = Samples::new(
            "sluice_checkpoint_last_sync_seconds",
            "The latest completed checkpoint: longest synchronous part on a shard.",
            Gauge,
        );
        let mut alignment = Samples::new(
            "sluice_checkpoint_last_alignment_seconds",
            "The latest completed checkpoint: longest a barrier waited for alignment at an input.",
            Gauge,
        );
        let mut in_flight = Samples::new(
            "sluice_checkpoint_last_in_flight_bytes",
            "The latest completed checkpoint: records in flight kept by unaligned barriers.",
            Gauge,
        );
        let mut last_id = Samples::new(
            "sluice_checkpoint_last_id",
            "The id of the latest completed checkpoint.",
            Gauge,
        );
        {
            let cluster = self
                .shared
                .cluster
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for worker in cluster.workers.values() {
                let labels = vec![("worker", worker.name.clone())];
                let alive = if worker.alive { 1.0 } else { 0.0 };
                workers.samples.push((labels.clone(), alive));
                worker_shards.samples.push((labels, worker.shards as f64));
            }
            for job in cluster.jobs.values() {
                let labels = vec![("job", job.name.clone()), ("job_id", job.id.clone())];
                let mut with_state = labels.clone();
                with_state.push(("state", format!("{:?}", job.state).to_lowercase()));
                state.samples.push((with_state, 1.0));
                attempt.samples.push((labels.clone(), job.attempt as f64));
                restarts.samples.push((labels.clone(), job.failures as f64));
                for (worker, task) in &job.tasks {
                    let mut labels = labels.clone();
                    labels.push(("worker", worker.clone()));
                    (task_in.samples).push((labels.clone(), task.totals.records_in as f64));
                    (task_out.samples).push((labels, task.totals.records_out as f64));
                }
            }
        }
        {
            let figures =
                (self.shared.checkpoint_figures.lock()).unwrap_or_else(|p| p.into_inner());
            for (job_id, (count, last)) in figures.iter() {
                let labels = vec![("job_id", job_id.clone())];
                completed.samples.push((labels.clone(), *count as f64));
                duration
                    .samples
                    .push((labels.clone(), last.duration_ms / 1e3));
                size.samples.push((labels.clone(), last.bytes as f64));
                sync.samples.push((labels.clone(), last.sync_max_ms / 1e3));
                (alignment.samples).push((labels.clone(), last.alignment_max_ms / 1e3));
                let kept = last.in_flight_received_bytes + last.in_flight_sent_bytes;
                in_flight.samples.push((labels.clone(), kept as f64));
                last_id.samples.push((labels, last.id as f64));
            }
        }
        for samples in [
            &workers,
            &worker_shards,
            &state,
            &attempt,
            &restarts,
            &task_in,
            &task_out,
            &completed,
            &duration,
            &size,
            &sync,
            &alignment,
            &in_flight,
            &last_id,
        ] {
            samples.encode(&mut encoder)?;
        }
        Ok(())
    }
}
