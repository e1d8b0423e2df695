//! Side outputs of an operator: extra, typed output streams named by tags.
//!
//! Lives on its shard's core. The shard builder keeps one [`SideOutputs`]
//! registry per operator node; consumers of `stream.side_output(&tag)` attach to
//! the tag's [`FanOut`] while the pipeline is built, in any order relative to
//! the operator. At run time the operator's user code emits into a tag's buffer
//! (`ProcessContext::output`); the operator flushes the buffers after each batch
//! and forwards control events (watermarks, end) to every side output, so side
//! streams see the same event time as the main one. A tag nobody consumes
//! drops its records.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

use super::FanOut;
use crate::push::{Control, EdgeId, Push};
use crate::{Data, Rec};

/// One side output, type-erased.
trait SideChannel {
    fn flush(&mut self);
    fn control(&mut self, event: Control);
    fn reachable_edges(&self, out: &mut Vec<EdgeId>);
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

struct SideBuffer<T> {
    buffer: Vec<Rec<T>>,
    fan: FanOut<T>,
}

impl<T: Data> SideChannel for SideBuffer<T> {
    fn flush(&mut self) {
        if !self.buffer.is_empty() {
            self.fan.push(&mut self.buffer);
        }
    }
    fn control(&mut self, event: Control) {
        self.flush();
        self.fan.control(event);
    }
    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.fan.reachable_edges(out);
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Side outputs by tag name (few per operator: a list beats a map).
type Channels = Rc<RefCell<Vec<(String, Box<dyn SideChannel>)>>>;

/// The side outputs of one operator on one shard, by tag name.
#[derive(Clone, Default)]
pub struct SideOutputs {
    channels: Channels,
}

impl SideOutputs {
    /// The fan-out of tag `name`, created on first use.
    pub(crate) fn fan_out<T: Data>(&self, name: &str) -> FanOut<T> {
        let mut channels = self.channels.borrow_mut();
        if let Some((_, channel)) = channels.iter_mut().find(|(n, _)| n == name) {
            let buffer = channel
                .as_any_mut()
                .downcast_mut::<SideBuffer<T>>()
                .unwrap_or_else(|| panic!("side output `{name}` used with two element types"));
            return buffer.fan.clone();
        }
        let fan = FanOut::new();
        channels.push((
            name.to_owned(),
            Box::new(SideBuffer {
                buffer: Vec::new(),
                fan: fan.clone(),
            }),
        ));
        fan
    }

    /// Appends a record to tag `name` (dropped if nobody consumes the tag).
    pub(crate) fn emit<T: Data>(&self, name: &str, record: Rec<T>) {
        let mut channels = self.channels.borrow_mut();
        if let Some((_, channel)) = channels.iter_mut().find(|(n, _)| n == name) {
            match channel.as_any_mut().downcast_mut::<SideBuffer<T>>() {
                Some(buffer) => buffer.buffer.push(record),
                None => panic!("side output `{name}` used with two element types"),
            }
        }
    }

    pub(crate) fn flush(&self) {
        for (_, channel) in self.channels.borrow_mut().iter_mut() {
            channel.flush();
        }
    }

    pub(crate) fn control(&self, event: Control) {
        for (_, channel) in self.channels.borrow_mut().iter_mut() {
            channel.control(event);
        }
    }

    pub(crate) fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        for (_, channel) in self.channels.borrow().iter() {
            channel.reachable_edges(out);
        }
    }
}
