//! `sluice run --ui`: the dashboard of the one job this process runs, from
//! its own metrics. A sampler thread takes a snapshot each second (the
//! operators' figures, the series point, new checkpoints); requests read
//! the view it last built.
//!
//! The sampler thread stops when the board is dropped; it never runs on a
//! shard's core. Savepoint and cancel are a coordinator's: this board
//! offers none.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sluice_engine::metrics::JobMetrics;

use super::operators::OperatorSampler;
use super::series::JobSeries;
use super::view::{CheckpointView, JobSummary, JobView, Overview, ShardView, CHECKPOINTS_SHOWN};
use super::BoardSource;

/// The id the one job has in the views.
pub const LOCAL_JOB_ID: &str = "local";

/// How often the sampler looks.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// See the module docs.
pub struct LocalBoard {
    name: String,
    metrics: Arc<JobMetrics>,
    state: Mutex<Sampled>,
}

#[derive(Default)]
struct Sampled {
    sampler: OperatorSampler,
    series: JobSeries,
    checkpoints: VecDeque<CheckpointView>,
    checkpoints_seen: u64,
    view: Option<JobView>,
}

impl LocalBoard {
    /// A board of job `name` whose figures `metrics` holds, sampled from now
    /// on.
    pub fn start(name: String, metrics: Arc<JobMetrics>) -> Result<Arc<Self>, String> {
        let board = Arc::new(LocalBoard {
            name,
            metrics,
            state: Mutex::default(),
        });
        board.sample();
        let weak: Weak<LocalBoard> = Arc::downgrade(&board);
        std::thread::Builder::new()
            .name("sluice-ui-sampler".into())
            .spawn(move || loop {
                std::thread::sleep(SAMPLE_INTERVAL);
                match weak.upgrade() {
                    Some(board) => board.sample(),
                    None => return,
                }
            })
            .map_err(|e| format!("the dashboard's sampler: {e}"))?;
        Ok(board)
    }

    fn sample(&self) {
        let snapshot = self.metrics.snapshot();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let sample = state.sampler.sample(snapshot.clone());
        let records_in = snapshot.shards.iter().map(|s| s.records_in).sum();
        let records_out = snapshot.shards.iter().map(|s| s.records_out).sum();
        let attempt = snapshot.restarts as u32 + 1;
        let at = snapshot.taken_at_ms;
        state
            .series
            .record(at, attempt, records_out, sample.sink_latency_p99_us);
        let new = snapshot
            .checkpoints_completed
            .saturating_sub(state.checkpoints_seen);
        state.checkpoints_seen = snapshot.checkpoints_completed;
        let recent = &snapshot.recent_checkpoints;
        for completed in &recent[recent.len().saturating_sub(new as usize)..] {
            if state.checkpoints.len() == CHECKPOINTS_SHOWN {
                state.checkpoints.pop_front();
            }
            state
                .checkpoints
                .push_back(CheckpointView::of(completed, at));
        }
        let shards = (snapshot.shards.iter())
            .map(|s| {
                let watermark =
                    (s.watermark != i64::MIN && s.watermark != i64::MAX).then_some(s.watermark);
                ShardView {
                    shard: s.shard,
                    worker: None,
                    records_in: s.records_in,
                    records_out: s.records_out,
                    watermark,
                    watermark_lag_ms: watermark.map(|w| at.saturating_sub(w)),
                    backpressured_ms_per_s: s.backpressured_ms_per_s,
                }
            })
            .collect();
        let view = JobView {
            id: LOCAL_JOB_ID.into(),
            name: self.name.clone(),
            state: if snapshot.uptime.is_some() {
                "running"
            } else {
                "deploying"
            }
            .into(),
            attempt,
            restarts: snapshot.restarts as u32,
            error: None,
            last_checkpoint: state.checkpoints.back().map(|c| c.id),
            records_in,
            records_out,
            operators: sample.operators,
            shards,
            checkpoints: state.checkpoints.iter().cloned().collect(),
            series: state.series.view(),
            actions: false,
        };
        state.view = Some(view);
    }
}

impl BoardSource for LocalBoard {
    fn overview(&self) -> Overview {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let jobs = (state.view.iter())
            .map(|v| JobSummary {
                id: v.id.clone(),
                name: v.name.clone(),
                state: v.state.clone(),
                attempt: v.attempt,
                restarts: v.restarts,
                shards: v.shards.len(),
                records_out: v.records_out,
                records_out_per_s: v.series.records_out_per_s.last().copied().unwrap_or(0.0),
                error: None,
            })
            .collect();
        Overview {
            mode: "local",
            actions: false,
            jobs,
            workers: Vec::new(),
        }
    }

    fn job(&self, id: &str) -> Option<JobView> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.view.clone().filter(|_| id == LOCAL_JOB_ID)
    }
}
