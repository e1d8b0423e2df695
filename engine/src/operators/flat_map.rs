//! `flat_map`: each record becomes zero or more records with its timestamp.
//!
//! Output is handed on in slices of at most `OUTPUT_RECORDS_MAX`, so one input
//! record that explodes cannot grow the output buffer without bound.

use crate::push::{Control, EdgeId, Push};
use crate::Rec;

const OUTPUT_RECORDS_MAX: usize = 8192;

pub struct FlatMap<U, F> {
    f: F,
    output: Vec<Rec<U>>,
    next: Box<dyn Push<U>>,
}

impl<U, F> FlatMap<U, F> {
    pub fn new(f: F, next: Box<dyn Push<U>>) -> Self {
        FlatMap {
            f,
            output: Vec::new(),
            next,
        }
    }
}

impl<T, U, I: IntoIterator<Item = U>, F: FnMut(T) -> I> Push<T> for FlatMap<U, F> {
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        for r in batch.drain(..) {
            for value in (self.f)(r.value) {
                self.output.push(Rec { ts: r.ts, value });
                if self.output.len() >= OUTPUT_RECORDS_MAX {
                    self.next.push(&mut self.output);
                }
            }
        }
        self.next.push(&mut self.output);
    }
    fn control(&mut self, event: Control) {
        self.next.control(event);
    }
    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.next.reachable_edges(out);
    }
}
