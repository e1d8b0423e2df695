//! `union`: several streams of one type become one. Records pass through;
//! the watermark is the minimum over the inputs and `End` comes after every
//! input has ended.

use std::cell::RefCell;
use std::rc::Rc;

use sluice_network::WatermarkStatus;

use crate::push::{Control, EdgeId, Push};
use crate::watermark::WatermarkCombiner;
use crate::Rec;

pub struct Union<T> {
    combiner: WatermarkCombiner,
    status: WatermarkStatus,
    next: Box<dyn Push<T>>,
}

impl<T> Union<T> {
    pub fn new(inputs: usize, next: Box<dyn Push<T>>) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Union {
            combiner: WatermarkCombiner::new(inputs),
            status: WatermarkStatus::Active,
            next,
        }))
    }

    fn input_control(&mut self, input: usize, event: Control) {
        let advanced = match event {
            Control::Watermark(wm) => self.combiner.update(input, wm),
            Control::Status(status) => self
                .combiner
                .set_idle(input, status == WatermarkStatus::Idle),
            Control::Barrier(_) => None,
            Control::End => self.combiner.end(input),
        };
        if let Some(wm) = advanced {
            self.next.control(Control::Watermark(wm));
        }
        if let Control::Barrier(b) = event {
            self.next.control(Control::Barrier(b));
        }
        if self.combiner.all_ended() {
            if matches!(event, Control::End) {
                self.next.control(Control::End);
            }
        } else if self.combiner.status() != self.status {
            self.status = self.combiner.status();
            self.next.control(Control::Status(self.status));
        }
    }
}

/// One input of a [`Union`].
pub struct UnionInput<T> {
    pub union: Rc<RefCell<Union<T>>>,
    pub input: usize,
}

impl<T> Push<T> for UnionInput<T> {
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        self.union.borrow_mut().next.push(batch);
    }
    fn control(&mut self, event: Control) {
        self.union.borrow_mut().input_control(self.input, event);
    }
    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.union.borrow().next.reachable_edges(out);
    }
}
