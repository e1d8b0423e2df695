//! What keyed user functions see: the current key, time, output, timers and
//! side outputs ([`ProcessContext`]), and the per-operator machinery behind it
//! ([`KeyedHost`]) shared by one- and two-input process operators.
//!
//! Lives on its shard's core. Invariant: a context is scoped to one key; timers
//! it registers are for that key.

use std::rc::Rc;

use sluice_state::{KeyGroup, KeyGroups, StableKey, StateBackend, StateKey};

use super::SideOutputs;
use crate::push::{Control, EdgeId, Push};
use crate::stream::OutputTag;
use crate::time::Clock;
use crate::timer::TimerService;
use crate::{Data, Rec};

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeDomain {
    EventTime,
    ProcessingTime,
}

/// What user code sees while handling one record or timer.
pub struct ProcessContext<'a, K, O> {
    key: &'a K,
    group: KeyGroup,
    timestamp: i64,
    host: &'a mut KeyedHostState<K, O>,
}

impl<K: StateKey, O> ProcessContext<'_, K, O> {
    pub fn key(&self) -> &K {
        self.key
    }
    pub fn key_group(&self) -> KeyGroup {
        self.group
    }
    /// The current record's timestamp (or the firing timer's time).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
    pub fn current_watermark(&self) -> i64 {
        self.host.watermark
    }
    pub fn current_processing_time(&self) -> i64 {
        self.host.clock.now_ms()
    }
    /// Emits a record with the current timestamp.
    pub fn collect(&mut self, value: O) {
        self.host.output.push(Rec {
            ts: self.timestamp,
            value,
        });
    }
    /// Emits a record with an explicit timestamp.
    pub fn collect_at(&mut self, ts: i64, value: O) {
        self.host.output.push(Rec { ts, value });
    }
    /// Emits a record to side output `tag`, with the current timestamp.
    pub fn output<T: Data>(&mut self, tag: &OutputTag<T>, value: T) {
        self.host.side.emit(
            &tag.name,
            Rec {
                ts: self.timestamp,
                value,
            },
        );
    }
    pub fn register_event_timer(&mut self, time: i64) {
        self.host.event_timers.register(time, self.key.clone(), ());
    }
    pub fn delete_event_timer(&mut self, time: i64) {
        self.host.event_timers.delete(time, self.key, &());
    }
    pub fn register_processing_timer(&mut self, time: i64) {
        self.host
            .processing_timers
            .register(time, self.key.clone(), ());
    }
    pub fn delete_processing_timer(&mut self, time: i64) {
        self.host.processing_timers.delete(time, self.key, &());
    }
}

impl<K, O> crate::keyed_state::CurrentKey<K> for ProcessContext<'_, K, O> {
    fn current_key(&self) -> &K {
        self.key
    }
    fn current_group(&self) -> KeyGroup {
        self.group
    }
}

/// Everything of a keyed process operator except the user function.
pub(crate) struct KeyedHostState<K, O> {
    groups: KeyGroups,
    watermark: i64,
    event_timers: TimerService<K, ()>,
    processing_timers: TimerService<K, ()>,
    clock: Rc<dyn Clock>,
    output: Vec<Rec<O>>,
    side: SideOutputs,
}

pub(crate) struct KeyedHost<K, O> {
    state: KeyedHostState<K, O>,
    due: Vec<(i64, K, ())>,
    next: Box<dyn Push<O>>,
    pub ended: bool,
}

impl<K: StateKey + StableKey, O: Data> KeyedHost<K, O> {
    pub fn new(
        groups: KeyGroups,
        clock: Rc<dyn Clock>,
        side: SideOutputs,
        next: Box<dyn Push<O>>,
        backend: &mut StateBackend,
        node: u64,
    ) -> Self {
        KeyedHost {
            state: KeyedHostState {
                groups,
                watermark: i64::MIN,
                event_timers: TimerService::registered(
                    backend,
                    &format!("process-{node}/event-timers"),
                    groups,
                ),
                processing_timers: TimerService::registered(
                    backend,
                    &format!("process-{node}/processing-timers"),
                    groups,
                ),
                clock,
                output: Vec::new(),
                side,
            },
            due: Vec::new(),
            next,
            ended: false,
        }
    }

    /// Runs `f` with a context for `key` at time `ts`.
    #[inline]
    pub fn with_key<R>(
        &mut self,
        key: &K,
        ts: i64,
        f: impl FnOnce(&mut ProcessContext<'_, K, O>) -> R,
    ) -> R {
        let group = self.state.groups.key_group_of_hash(key.stable_hash());
        let mut ctx = ProcessContext {
            key,
            group,
            timestamp: ts,
            host: &mut self.state,
        };
        f(&mut ctx)
    }

    /// Fires the timers of `domain` due at `up_to`, calling `on_timer` for each.
    pub fn fire(
        &mut self,
        domain: TimeDomain,
        up_to: i64,
        mut on_timer: impl FnMut(i64, &mut ProcessContext<'_, K, O>),
    ) {
        let mut due = std::mem::take(&mut self.due);
        match domain {
            TimeDomain::EventTime => self.state.event_timers.pop_due(up_to, &mut due),
            TimeDomain::ProcessingTime => self.state.processing_timers.pop_due(up_to, &mut due),
        }
        for (time, key, ()) in due.drain(..) {
            self.with_key(&key, time, |ctx| on_timer(time, ctx));
            // Many timers due at once (a window's end): hand results on as
            // they come instead of all at the end.
            if self.state.output.len() >= crate::operators::EMIT_BATCH_RECORDS {
                self.next.push(&mut self.state.output);
            }
        }
        self.due = due;
    }

    /// Fires the processing-time timers due now (the shard's ticker calls this).
    pub fn tick(&mut self, mut on_timer: impl FnMut(i64, &mut ProcessContext<'_, K, O>)) {
        if self.ended || self.state.processing_timers.is_empty() {
            return;
        }
        let now = self.state.clock.now_ms();
        self.fire(TimeDomain::ProcessingTime, now, |time, ctx| {
            on_timer(time, ctx)
        });
        self.flush();
    }

    /// Hands the output produced so far downstream.
    pub fn flush(&mut self) {
        self.next.push(&mut self.state.output);
        self.state.side.flush();
    }

    /// The watermark advanced: the caller fires event timers (`fire`) in between.
    pub fn set_watermark(&mut self, watermark: i64) {
        self.state.watermark = watermark;
    }

    /// Forwards a control event to the main and side outputs.
    pub fn forward(&mut self, event: Control) {
        self.flush();
        if event == Control::End {
            self.ended = true;
        }
        self.next.control(event);
        self.state.side.control(event);
    }

    pub fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.next.reachable_edges(out);
        self.state.side.reachable_edges(out);
    }
}
