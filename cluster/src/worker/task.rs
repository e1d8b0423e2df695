//! One task: the shards of one attempt of a job that the coordinator placed
//! on this worker. Runs on a thread of its own, which the engine's shard
//! executors join while the task runs.
//!
//! The task builds the job from the submitted file exactly as `sluice run`
//! does, with the job's shard count set to the placement's, connects every
//! link to the shards elsewhere (dialing peers of higher index, taking what
//! peers of lower index dialed), then runs its shards until they finish, fail
//! or are cancelled. Everything it reports names its job and attempt.

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_engine::checkpoint::{CheckpointId, PartCommand, PartEvents};
use sluice_engine::metrics::{JobMetrics, ShardFigures};
use sluice_engine::runtime::{JobCancel, JobPart, PartCheckpoints, RemoteLink};
use sluice_engine::StreamEnv;

use super::data_plane::{DataPlane, LinkKey};
use crate::control::{ShardPlacement, ShardProgress, TaskTotals, ToCoordinator};
use crate::dashboard::operators::OperatorSampler;
use crate::job_file::JobFile;
use crate::metrics::{ExportedJobs, JobFigures};
use crate::run::build_job;

/// How long a task waits for all its links.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// What the coordinator asked this worker to run.
pub struct Deployment {
    pub job: String,
    pub attempt: u32,
    pub path: String,
    pub text: String,
    pub placement: Vec<ShardPlacement>,
    /// The checkpoint to restore (see `ToWorker::Deploy`).
    pub restore: Option<CheckpointId>,
    /// Without `restore`: what the job was submitted to restore.
    pub restore_from: Option<String>,
    /// Pin the shards to CPUs as `sluice run` does.
    pub pin_cpus: bool,
    /// The checkpoint leader's commands for this attempt.
    pub commands: Receiver<PartCommand>,
    /// Where this part's checkpoint events go.
    pub events: PartEvents,
    /// Where the task's progress goes, every second while it runs.
    pub progress: Box<dyn FnMut(TaskTotals) + Send>,
    /// The worker's exported jobs: the task's metrics are among them while
    /// it runs.
    pub metrics: ExportedJobs,
    /// This worker's name (a label of the task's metrics).
    pub worker: String,
}

/// Runs `deployment`'s shards that `me` holds; reports through `report`.
pub fn run_task(
    mut deployment: Deployment,
    me: &str,
    data: &Arc<DataPlane>,
    cancel: JobCancel,
    report: &dyn Fn(ToCoordinator),
) {
    let (job, attempt) = (deployment.job.clone(), deployment.attempt);
    // Every line about this task (and its shards') names the job and attempt.
    let span = tracing::info_span!("job", job_id = %job, attempt);
    let _in_job = span.enter();
    let mine: Vec<u32> = (deployment.placement.iter())
        .filter(|p| p.worker == me)
        .map(|p| p.shard)
        .collect();
    tracing::info!(
        "task {job}#{attempt}: shards {mine:?} of {}",
        deployment.placement.len()
    );
    let result = build_and_run(&mut deployment, me, data, cancel.clone(), &|| {
        report(ToCoordinator::TaskRunning {
            job: job.clone(),
            attempt,
        })
    });
    data.forget_before(&job, attempt + 1);
    match result {
        Ok(totals) => {
            tracing::info!(
                "task {job}#{attempt} finished: {} records in, {} out",
                totals.records_in,
                totals.records_out
            );
            report(ToCoordinator::TaskFinished {
                job,
                attempt,
                totals,
            })
        }
        Err(error) => {
            if cancel.is_cancelled() {
                tracing::info!("task {job}#{attempt} cancelled");
            } else {
                tracing::warn!("task {job}#{attempt} failed: {error}");
            }
            report(ToCoordinator::TaskFailed {
                job,
                attempt,
                error,
            })
        }
    }
}

fn build_and_run(
    deployment: &mut Deployment,
    me: &str,
    data: &Arc<DataPlane>,
    cancel: JobCancel,
    running: &dyn Fn(),
) -> Result<TaskTotals, String> {
    let (env, mut part, name) = prepare(deployment, me, data, &cancel)?;
    running();
    let job_metrics = env.metrics();
    let last_report = part_progress(&mut part, &mut deployment.progress, job_metrics.clone());
    deployment.metrics.add(JobFigures {
        labels: vec![
            ("job".into(), name),
            ("job_id".into(), deployment.job.clone()),
            ("attempt".into(), deployment.attempt.to_string()),
            ("worker".into(), deployment.worker.clone()),
        ],
        metrics: job_metrics.clone(),
    });
    let report = env.execute_part(part, cancel);
    deployment.metrics.remove(&job_metrics);
    let report = report.map_err(|e| e.to_string())?;
    let t = report.totals;
    let last = std::mem::take(&mut *last_report.lock().expect("progress lock"));
    Ok(TaskTotals {
        records_in: t.records_in,
        records_out: t.records_out,
        bytes_exchanged: t.bytes_exchanged,
        wire_bytes_sent: t.wire_bytes_sent,
        late_records_dropped: t.late_records_dropped,
        elapsed_ms: report.elapsed.as_millis() as u64,
        shards: last.shards,
        operators: last.operators,
        sink_latency_p99_us: None,
    })
}

/// Has `part` report its shards' figures through `progress` (as task
/// totals, with backpressure per second since the previous report, and the
/// plan's operators from `metrics`); the last report is kept in what this
/// returns.
fn part_progress(
    part: &mut JobPart,
    progress: &mut Box<dyn FnMut(TaskTotals) + Send>,
    metrics: Arc<JobMetrics>,
) -> Arc<Mutex<TaskTotals>> {
    let last: Arc<Mutex<TaskTotals>> = Arc::default();
    let mut send = std::mem::replace(progress, Box::new(|_| {}));
    let kept = last.clone();
    let mut previous: Option<(Instant, Vec<ShardFigures>)> = None;
    let mut sampler = OperatorSampler::default();
    part.progress = Some(Box::new(move |now: &[ShardFigures]| {
        let at = Instant::now();
        let shards: Vec<ShardProgress> = (now.iter().enumerate())
            .map(|(i, f)| {
                let before = previous.as_ref().and_then(|(when, figures)| {
                    let same = figures.get(i).filter(|p| p.shard == f.shard)?;
                    Some((at.duration_since(*when), same.backpressured_ns))
                });
                let backpressured_ms_per_s = match before {
                    Some((interval, ns)) if !interval.is_zero() => {
                        let waited = f.backpressured_ns.saturating_sub(ns) as f64;
                        ((waited / interval.as_nanos() as f64) * 1000.0).min(1000.0) as u64
                    }
                    _ => 0,
                };
                ShardProgress {
                    shard: f.shard,
                    records_in: f.records_in,
                    records_out: f.records_out,
                    watermark: (f.watermark != i64::MIN).then_some(f.watermark),
                    backpressured_ms_per_s,
                }
            })
            .collect();
        previous = Some((at, now.to_vec()));
        let sample = sampler.sample(metrics.snapshot());
        let report = TaskTotals {
            records_in: shards.iter().map(|s| s.records_in).sum(),
            records_out: shards.iter().map(|s| s.records_out).sum(),
            shards,
            operators: sample.operators,
            sink_latency_p99_us: sample.sink_latency_p99_us,
            ..TaskTotals::default()
        };
        send(report.clone());
        *kept.lock().expect("progress lock") = report;
    }));
    last
}

/// Builds the job and connects the links of this worker's shards.
fn prepare(
    deployment: &mut Deployment,
    me: &str,
    data: &Arc<DataPlane>,
    cancel: &JobCancel,
) -> Result<(StreamEnv, JobPart, String), String> {
    let shards = deployment.placement.len() as u32;
    let mut file =
        JobFile::parse(Path::new(&deployment.path), &deployment.text).map_err(|e| e.to_string())?;
    if let (None, Some(given)) = (deployment.restore, &deployment.restore_from) {
        crate::run::apply_restore(&mut file, given).map_err(|e| e.to_string())?;
    }
    file.config.shards = shards;
    file.config.max_parallelism = file.config.max_parallelism.max(shards);
    file.config.pin_cpus &= deployment.pin_cpus;
    let env = build_job(&file).map_err(|e| e.to_string())?;

    let here: Vec<u32> = (deployment.placement.iter())
        .filter(|p| p.worker == me)
        .map(|p| p.shard)
        .collect();
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let cancelled = || cancel.is_cancelled();
    let mut links = Vec::new();
    for &local in &here {
        for peer in deployment.placement.iter().filter(|p| p.worker != me) {
            let key = LinkKey {
                job: deployment.job.clone(),
                attempt: deployment.attempt,
                local,
                remote: peer.shard,
            };
            let stream = if local < peer.shard {
                data.dial(&peer.data_address, &key, deadline, cancelled)?
            } else {
                data.take(&key, deadline, cancelled)?
            };
            links.push(RemoteLink {
                local,
                remote: peer.shard,
                peer: format!("worker {} ({})", peer.worker, peer.data_address),
                stream,
            });
        }
    }
    let checkpoints = file.config.checkpoint.is_some().then(|| {
        let (_, unused) = std::sync::mpsc::channel();
        PartCheckpoints {
            events: std::mem::replace(&mut deployment.events, Box::new(|_| {})),
            commands: std::mem::replace(&mut deployment.commands, unused),
            restore: deployment.restore,
            final_tag: format!("-a{}", deployment.attempt),
        }
    });
    Ok((
        env,
        JobPart {
            here,
            links,
            checkpoints,
            progress: None,
        },
        file.job,
    ))
}
