//! `filter`: keeps the records the predicate accepts, in place.

use crate::push::{Control, EdgeId, Push};
use crate::Rec;

pub struct Filter<T, F> {
    f: F,
    next: Box<dyn Push<T>>,
}

impl<T, F> Filter<T, F> {
    pub fn new(f: F, next: Box<dyn Push<T>>) -> Self {
        Filter { f, next }
    }
}

impl<T, F: FnMut(&T) -> bool> Push<T> for Filter<T, F> {
    #[inline]
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        batch.retain(|r| (self.f)(&r.value));
        self.next.push(batch);
    }
    fn control(&mut self, event: Control) {
        self.next.control(event);
    }
    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.next.reachable_edges(out);
    }
}
