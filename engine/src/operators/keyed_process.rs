//! `process` on a keyed stream: user code with keyed state and per-key timers
//! (Flink's `KeyedProcessFunction`).
//!
//! Lives on its shard's core. Event-time timers fire when the watermark reaches
//! them, before the watermark is forwarded; processing-time timers fire from the
//! shard's ticker. Invariant: user code only ever sees keys of this shard's key
//! groups, and every state access is scoped to the current key.

use std::cell::RefCell;
use std::rc::Rc;

use sluice_state::{KeyGroup, KeyGroups, StableKey, StateKey};

use crate::push::{Control, EdgeId, Push};
use crate::runtime::Tick;
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
    watermark: i64,
    processing_time: i64,
    output: &'a mut Vec<Rec<O>>,
    event_timers: &'a mut TimerService<K, ()>,
    processing_timers: &'a mut TimerService<K, ()>,
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
        self.watermark
    }
    pub fn current_processing_time(&self) -> i64 {
        self.processing_time
    }
    /// Emits a record with the current timestamp.
    pub fn collect(&mut self, value: O) {
        self.output.push(Rec {
            ts: self.timestamp,
            value,
        });
    }
    /// Emits a record with an explicit timestamp.
    pub fn collect_at(&mut self, ts: i64, value: O) {
        self.output.push(Rec { ts, value });
    }
    pub fn register_event_timer(&mut self, time: i64) {
        self.event_timers.register(time, self.key.clone(), ());
    }
    pub fn delete_event_timer(&mut self, time: i64) {
        self.event_timers.delete(time, self.key, &());
    }
    pub fn register_processing_timer(&mut self, time: i64) {
        self.processing_timers.register(time, self.key.clone(), ());
    }
    pub fn delete_processing_timer(&mut self, time: i64) {
        self.processing_timers.delete(time, self.key, &());
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

/// User logic of a keyed `process`. One instance per shard, built on the shard
/// by the factory given to `KeyedStream::process` (which also creates its state).
pub trait KeyedProcess<K, I, O>: 'static {
    fn process_element(&mut self, value: I, ctx: &mut ProcessContext<'_, K, O>);
    fn on_timer(&mut self, _time: i64, _domain: TimeDomain, _ctx: &mut ProcessContext<'_, K, O>) {}
}

pub(crate) struct ProcessState<K, O, KF, P> {
    key_of: KF,
    groups: KeyGroups,
    function: P,
    watermark: i64,
    event_timers: TimerService<K, ()>,
    processing_timers: TimerService<K, ()>,
    clock: Rc<dyn Clock>,
    output: Vec<Rec<O>>,
    due: Vec<(i64, K, ())>,
    next: Box<dyn Push<O>>,
    ended: bool,
}

/// The operator's state, shared between the chain and the shard's ticker.
pub(crate) type SharedProcessState<K, O, KF, P> = Rc<RefCell<ProcessState<K, O, KF, P>>>;

/// The chain-facing handle; the shard's ticker holds another.
pub struct KeyedProcessOperator<K, O, KF, P> {
    state: Rc<RefCell<ProcessState<K, O, KF, P>>>,
}

impl<K: StateKey + StableKey, O: Data, KF, P> KeyedProcessOperator<K, O, KF, P> {
    pub(crate) fn new(
        key_of: KF,
        groups: KeyGroups,
        function: P,
        clock: Rc<dyn Clock>,
        next: Box<dyn Push<O>>,
    ) -> (Self, SharedProcessState<K, O, KF, P>) {
        let state = Rc::new(RefCell::new(ProcessState {
            key_of,
            groups,
            function,
            watermark: i64::MIN,
            event_timers: TimerService::new(),
            processing_timers: TimerService::new(),
            clock,
            output: Vec::new(),
            due: Vec::new(),
            next,
            ended: false,
        }));
        (
            KeyedProcessOperator {
                state: state.clone(),
            },
            state,
        )
    }
}

fn fire_timers<K, I, O, KF, P>(s: &mut ProcessState<K, O, KF, P>, domain: TimeDomain, up_to: i64)
where
    K: StateKey + StableKey,
    O: Data,
    P: KeyedProcess<K, I, O>,
{
    let mut due = std::mem::take(&mut s.due);
    match domain {
        TimeDomain::EventTime => s.event_timers.pop_due(up_to, &mut due),
        TimeDomain::ProcessingTime => s.processing_timers.pop_due(up_to, &mut due),
    }
    let processing_time = s.clock.now_ms();
    for (time, key, ()) in due.drain(..) {
        let group = s.groups.key_group_of_hash(key.stable_hash());
        let mut ctx = ProcessContext {
            key: &key,
            group,
            timestamp: time,
            watermark: s.watermark,
            processing_time,
            output: &mut s.output,
            event_timers: &mut s.event_timers,
            processing_timers: &mut s.processing_timers,
        };
        s.function.on_timer(time, domain, &mut ctx);
    }
    s.due = due;
    s.next.push(&mut s.output);
}

/// Marker so `Tick` can be implemented per input type.
pub(crate) struct TickFor<I, K, O, KF, P>(
    pub Rc<RefCell<ProcessState<K, O, KF, P>>>,
    pub std::marker::PhantomData<fn(I)>,
);

impl<I, K, O, KF, P> Tick for TickFor<I, K, O, KF, P>
where
    K: StateKey + StableKey,
    O: Data,
    P: KeyedProcess<K, I, O>,
{
    fn tick(&mut self) {
        let mut s = self.0.borrow_mut();
        if s.ended || s.processing_timers.is_empty() {
            return;
        }
        let now = s.clock.now_ms();
        fire_timers::<K, I, O, KF, P>(&mut s, TimeDomain::ProcessingTime, now);
    }
    fn is_ended(&self) -> bool {
        self.0.borrow().ended
    }
}

impl<K, I, O, KF, P> Push<I> for KeyedProcessOperator<K, O, KF, P>
where
    K: StateKey + StableKey,
    I: Data,
    O: Data,
    KF: Fn(&I) -> K,
    P: KeyedProcess<K, I, O>,
{
    fn push(&mut self, batch: &mut Vec<Rec<I>>) {
        let mut guard = self.state.borrow_mut();
        let s = &mut *guard;
        let processing_time = if s.processing_timers.is_empty() {
            0
        } else {
            s.clock.now_ms()
        };
        for r in batch.drain(..) {
            let key = (s.key_of)(&r.value);
            let group = s.groups.key_group_of_hash(key.stable_hash());
            let mut ctx = ProcessContext {
                key: &key,
                group,
                timestamp: r.ts,
                watermark: s.watermark,
                processing_time,
                output: &mut s.output,
                event_timers: &mut s.event_timers,
                processing_timers: &mut s.processing_timers,
            };
            s.function.process_element(r.value, &mut ctx);
        }
        s.next.push(&mut s.output);
    }

    fn control(&mut self, event: Control) {
        let mut guard = self.state.borrow_mut();
        let s = &mut *guard;
        if let Control::Watermark(wm) = event {
            s.watermark = wm;
            fire_timers::<K, I, O, KF, P>(s, TimeDomain::EventTime, wm);
        }
        if let Control::End = event {
            s.ended = true;
        }
        s.next.control(event);
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.state.borrow().next.reachable_edges(out);
    }
}
