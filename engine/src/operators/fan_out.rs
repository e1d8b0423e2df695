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
use std::sync::Arc;

use crate::metrics::ShardMetrics;
use crate::push::{Control, EdgeId, Push};
use crate::{Data, Rec};

pub struct FanOut<T> {
    inner: Rc<RefCell<Consumers<T>>>,
}

struct Consumers<T> {
    consumers: Vec<Box<dyn Push<T>>>,
    /// Where copies are made; empty between pushes.
    scratch: Vec<Rec<T>>,
    /// The shard's counters and the plan node whose output this is (its
    /// records out are counted here, once per batch).
    counted_as: Option<(Arc<ShardMetrics>, u64)>,
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
                counted_as: None,
            })),
        }
    }

    /// The output of plan node `node`, whose records are counted in
    /// `metrics` as that node's records out.
    pub(crate) fn counting(metrics: Arc<ShardMetrics>, node: u64) -> Self {
        let fan = Self::new();
        if metrics.node_out(node).is_some() {
            fan.inner.borrow_mut().counted_as = Some((metrics, node));
        }
        fan
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
        let Consumers {
            consumers,
            scratch,
            counted_as,
        } = &mut *inner;
        if let Some((metrics, node)) = counted_as {
            if let Some(counter) = metrics.node_out(*node) {
                counter.add(batch.len() as u64);
            }
        }
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
