//! `map`: one record in, one record out, timestamp kept.

use crate::push::{Control, EdgeId, Push};
use crate::Rec;

pub struct Map<U, F> {
    f: F,
    output: Vec<Rec<U>>,
    next: Box<dyn Push<U>>,
}

impl<U, F> Map<U, F> {
    pub fn new(f: F, next: Box<dyn Push<U>>) -> Self {
        Map {
            f,
            output: Vec::new(),
            next,
        }
    }
}

impl<T, U, F: FnMut(T) -> U> Push<T> for Map<U, F> {
    #[inline]
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        self.output.extend(batch.drain(..).map(|r| Rec {
            ts: r.ts,
            value: (self.f)(r.value),
        }));
        self.next.push(&mut self.output);
    }
    fn control(&mut self, event: Control) {
        self.next.control(event);
    }
    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.next.reachable_edges(out);
    }
}
