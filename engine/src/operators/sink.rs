//! The end of a chain: hands batches to a sink writer and counts them. At a
//! checkpoint barrier the writer pre-commits, then the sink counts as done
//! for that checkpoint on its shard.
//!
//! Once the job aborts (cancelled, replaced by a newer attempt, another
//! shard or link failed) the sink writes nothing more and does not finish:
//! the attempt commits nothing after that, and a newer attempt may already
//! be writing in the same place.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::checkpoint::{ShardCheckpoints, SourcePositions};
use crate::connectors::SinkWriter;
use crate::metrics::ShardMetrics;
use crate::push::{Control, EdgeId, Push};
use crate::runtime::AbortSignal;
use crate::{EngineError, Rec};

/// The wall clock in milliseconds since the epoch.
fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub struct SinkOperator<T> {
    writer: Box<dyn SinkWriter<T>>,
    metrics: Arc<ShardMetrics>,
    errors: Arc<Mutex<Vec<EngineError>>>,
    failed: bool,
    checkpoints: Option<(Rc<ShardCheckpoints>, usize)>,
    abort: AbortSignal,
}

impl<T> SinkOperator<T> {
    pub(crate) fn new(
        writer: Box<dyn SinkWriter<T>>,
        metrics: Arc<ShardMetrics>,
        errors: Arc<Mutex<Vec<EngineError>>>,
        checkpoints: Option<(Rc<ShardCheckpoints>, usize)>,
        abort: AbortSignal,
    ) -> Self {
        SinkOperator {
            writer,
            metrics,
            errors,
            failed: false,
            checkpoints,
            abort,
        }
    }

    fn fail(&mut self, error: String) {
        if !self.failed {
            self.failed = true;
            self.errors
                .lock()
                .expect("errors lock")
                .push(EngineError::Sink(error));
        }
    }
}

impl<T> Push<T> for SinkOperator<T> {
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        if !self.failed && !batch.is_empty() && !self.abort.is_set() {
            ShardMetrics::add(&self.metrics.records_out, batch.len() as u64);
            if let Some(last) = batch.last() {
                self.metrics.record_sink_latency(unix_millis(), last.ts);
            }
            if let Err(e) = self.writer.write(batch) {
                self.fail(e);
            }
        }
        batch.clear();
    }

    fn control(&mut self, event: Control) {
        if self.abort.is_set() {
            return;
        }
        match event {
            Control::Watermark(wm) => {
                self.metrics.watermark.store(wm, Ordering::Relaxed);
                self.writer.watermark(wm);
            }
            Control::End => {
                if let Err(e) = self.writer.finish() {
                    self.fail(e);
                }
                if let Some((checkpoints, participant)) = &self.checkpoints {
                    checkpoints.ended(*participant, SourcePositions::new());
                }
            }
            Control::Barrier(barrier) => {
                if let Err(e) = self.writer.pre_commit(barrier.id) {
                    // The sink fails the job: no checkpoint may count output
                    // that was not made durable.
                    self.fail(format!("pre-committing checkpoint {}: {e}", barrier.id));
                    return;
                }
                if let Some((checkpoints, participant)) = &self.checkpoints {
                    checkpoints.at_barrier(*participant, barrier.id, SourcePositions::new());
                }
            }
            Control::Status(_) => {}
        }
    }

    fn reachable_edges(&self, _out: &mut Vec<EdgeId>) {}
}
