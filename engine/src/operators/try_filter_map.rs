//! `try_filter_map`: one record in, at most one out, or an error that fails
//! the job (a SQL expression dividing by zero, a cast that cannot be made).
//!
//! Lives on the shard's core like every fused operator. The first error is
//! reported to the job and aborts it; from then on the operator drops what
//! it receives (the attempt commits nothing more), so one bad record yields
//! one error, not one per record behind it.

use std::sync::{Arc, Mutex};

use crate::push::{Control, EdgeId, Push};
use crate::runtime::AbortSignal;
use crate::{EngineError, Rec};

pub struct TryFilterMap<U, F> {
    f: F,
    output: Vec<Rec<U>>,
    next: Box<dyn Push<U>>,
    errors: Arc<Mutex<Vec<EngineError>>>,
    abort: AbortSignal,
    failed: bool,
}

impl<U, F> TryFilterMap<U, F> {
    pub(crate) fn new(
        f: F,
        next: Box<dyn Push<U>>,
        errors: Arc<Mutex<Vec<EngineError>>>,
        abort: AbortSignal,
    ) -> Self {
        TryFilterMap {
            f,
            output: Vec::new(),
            next,
            errors,
            abort,
            failed: false,
        }
    }
}

impl<T, U, F: FnMut(T) -> Result<Option<U>, String>> Push<T> for TryFilterMap<U, F> {
    #[inline]
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        if self.failed {
            batch.clear();
            return;
        }
        for r in batch.drain(..) {
            match (self.f)(r.value) {
                Ok(Some(value)) => self.output.push(Rec { ts: r.ts, value }),
                Ok(None) => {}
                Err(reason) => {
                    self.failed = true;
                    self.output.clear();
                    self.errors
                        .lock()
                        .expect("errors lock")
                        .push(EngineError::Record(reason));
                    self.abort.set();
                    break;
                }
            }
        }
        batch.clear();
        if !self.output.is_empty() {
            self.next.push(&mut self.output);
        }
    }
    fn control(&mut self, event: Control) {
        if !self.failed {
            self.next.control(event);
        }
    }
    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.next.reachable_edges(out);
    }
}
