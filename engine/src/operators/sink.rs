//! The end of a chain: hands batches to a sink writer and counts them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::connectors::SinkWriter;
use crate::metrics::ShardMetrics;
use crate::push::{Control, EdgeId, Push};
use crate::{EngineError, Rec};

pub struct SinkOperator<T> {
    writer: Box<dyn SinkWriter<T>>,
    metrics: Arc<ShardMetrics>,
    errors: Arc<Mutex<Vec<EngineError>>>,
    failed: bool,
}

impl<T> SinkOperator<T> {
    pub fn new(
        writer: Box<dyn SinkWriter<T>>,
        metrics: Arc<ShardMetrics>,
        errors: Arc<Mutex<Vec<EngineError>>>,
    ) -> Self {
        SinkOperator {
            writer,
            metrics,
            errors,
            failed: false,
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
        if !self.failed && !batch.is_empty() {
            ShardMetrics::add(&self.metrics.records_out, batch.len() as u64);
            if let Err(e) = self.writer.write(batch) {
                self.fail(e);
            }
        }
        batch.clear();
    }

    fn control(&mut self, event: Control) {
        match event {
            Control::Watermark(wm) => {
                self.metrics.watermark.store(wm, Ordering::Relaxed);
                self.writer.watermark(wm);
            }
            Control::End => {
                if let Err(e) = self.writer.finish() {
                    self.fail(e);
                }
            }
            Control::Status(_) | Control::Barrier(_) => {}
        }
    }

    fn reachable_edges(&self, _out: &mut Vec<EdgeId>) {}
}
