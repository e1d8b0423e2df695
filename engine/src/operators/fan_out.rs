//! One output consumed by several downstream chains (a stream used twice, or a
//! side output). With one consumer, batches pass through; with several, each but
//! the last gets a copy. With none, records are dropped.
//!
//! The copies are made in one scratch batch that keeps its allocation: a
//! fresh `Vec` per copy had the kernel zeroing new pages for every large
//! batch (a quarter of q5's time, whose fired windows are copied for its
//! second consumer). The scratch holds the capacity of the largest batch
//! copied so far, and no records between pushes.

use std::cell::RefCell;
use std::rc::Rc;

use crate::push::{Control, EdgeId, Push};
use crate::{Data, Rec};

pub struct FanOut<T> {
    inner: Rc<RefCell<Consumers<T>>>,
}

struct Consumers<T> {
    consumers: Vec<Box<dyn Push<T>>>,
    /// Where copies are made; empty between pushes.
    scratch: Vec<Rec<T>>,
}

impl<T> Clone for FanOut<T> {
    fn clone(&self) -> Self {
        FanOut {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Data> Default for FanOut<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Data> FanOut<T> {
    pub fn new() -> Self {
        FanOut {
            inner: Rc::new(RefCell::new(Consumers {
                consumers: Vec::new(),
                scratch: Vec::new(),
            })),
        }
    }

    pub fn add(&self, consumer: Box<dyn Push<T>>) {
        self.inner.borrow_mut().consumers.push(consumer);
    }

    pub fn has_consumers(&self) -> bool {
        !self.inner.borrow().consumers.is_empty()
    }
}

impl<T: Data> Push<T> for FanOut<T> {
    #[inline]
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        let mut inner = self.inner.borrow_mut();
        let Consumers { consumers, scratch } = &mut *inner;
        match consumers.len() {
            0 => batch.clear(),
            1 => consumers[0].push(batch),
            n => {
                for consumer in consumers[..n - 1].iter_mut() {
                    scratch.clone_from(batch);
                    consumer.push(scratch);
                    scratch.clear();
                }
                consumers[n - 1].push(batch);
            }
        }
    }

    fn control(&mut self, event: Control) {
        for consumer in self.inner.borrow_mut().consumers.iter_mut() {
            consumer.control(event);
        }
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        for consumer in self.inner.borrow().consumers.iter() {
            consumer.reachable_edges(out);
        }
    }
}
