//! One output consumed by several downstream chains (a stream used twice, or a
//! side output). With one consumer, batches pass through; with several, each but
//! the last gets a copy. With none, records are dropped.

use std::cell::RefCell;
use std::rc::Rc;

use crate::push::{Control, EdgeId, Push};
use crate::{Data, Rec};

pub struct FanOut<T> {
    consumers: Rc<RefCell<Vec<Box<dyn Push<T>>>>>,
}

impl<T> Clone for FanOut<T> {
    fn clone(&self) -> Self {
        FanOut {
            consumers: self.consumers.clone(),
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
            consumers: Rc::new(RefCell::new(Vec::new())),
        }
    }

    pub fn add(&self, consumer: Box<dyn Push<T>>) {
        self.consumers.borrow_mut().push(consumer);
    }

    pub fn has_consumers(&self) -> bool {
        !self.consumers.borrow().is_empty()
    }
}

impl<T: Data> Push<T> for FanOut<T> {
    #[inline]
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        let mut consumers = self.consumers.borrow_mut();
        match consumers.len() {
            0 => batch.clear(),
            1 => consumers[0].push(batch),
            n => {
                for consumer in consumers[..n - 1].iter_mut() {
                    let mut copy = batch.clone();
                    consumer.push(&mut copy);
                }
                consumers[n - 1].push(batch);
            }
        }
    }

    fn control(&mut self, event: Control) {
        for consumer in self.consumers.borrow_mut().iter_mut() {
            consumer.control(event);
        }
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        for consumer in self.consumers.borrow().iter() {
            consumer.reachable_edges(out);
        }
    }
}
