//! The in-memory collector, for tests: every shard appends its output to one
//! shared list when its stream ends.

use std::sync::{Arc, Mutex};

use super::{Sink, SinkWriter};
use crate::Rec;

/// The shared result of a [`CollectSink`].
pub type Collected<T> = Arc<Mutex<Vec<Rec<T>>>>;

pub struct CollectSink<T> {
    collected: Collected<T>,
}

impl<T> CollectSink<T> {
    /// A sink and the handle its results land in.
    pub fn new() -> (Self, Collected<T>) {
        let collected: Collected<T> = Arc::default();
        (
            CollectSink {
                collected: collected.clone(),
            },
            collected,
        )
    }
}

struct CollectWriter<T> {
    local: Vec<Rec<T>>,
    collected: Collected<T>,
}

impl<T: Clone> SinkWriter<T> for CollectWriter<T> {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        self.local.extend_from_slice(batch);
        Ok(())
    }
    fn finish(&mut self) -> Result<(), String> {
        self.collected
            .lock()
            .map_err(|_| "collector poisoned".to_string())?
            .append(&mut self.local);
        Ok(())
    }
}

impl<T: Clone + Send + 'static> Sink<T> for CollectSink<T> {
    fn open(&self, _shard: u32, _shards: u32) -> Result<Box<dyn SinkWriter<T>>, String> {
        Ok(Box::new(CollectWriter {
            local: Vec::new(),
            collected: self.collected.clone(),
        }))
    }
}
