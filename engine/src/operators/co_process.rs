//! `connect(..).process(..)`: two keyed streams into one function with shared
//! keyed state and timers (Flink's `KeyedCoProcessFunction`).
//!
//! Lives on its shard's core. Both inputs are keyed by the same key type and
//! partitioned by the same key groups, so a key's records from either input
//! meet on one shard. The watermark is the minimum of the two inputs'; the
//! output ends when both inputs have ended.

use std::cell::RefCell;
use std::rc::Rc;

use sluice_network::WatermarkStatus;
use sluice_state::{StableKey, StateKey};

use super::process_context::{KeyedHost, ProcessContext, TimeDomain};
use crate::push::{Control, EdgeId, Push};
use crate::runtime::Tick;
use crate::watermark::WatermarkCombiner;
use crate::{Data, Rec};

/// User logic of a keyed two-input `process`.
pub trait KeyedCoProcess<K, A, B, O>: 'static {
    fn process_first(&mut self, value: A, ctx: &mut ProcessContext<'_, K, O>);
    fn process_second(&mut self, value: B, ctx: &mut ProcessContext<'_, K, O>);
    fn on_timer(&mut self, _time: i64, _domain: TimeDomain, _ctx: &mut ProcessContext<'_, K, O>) {}
}

pub(crate) struct CoProcessState<K, O, FA, FB, P> {
    key_of_first: FA,
    key_of_second: FB,
    function: P,
    host: KeyedHost<K, O>,
    combiner: WatermarkCombiner,
    status: WatermarkStatus,
}

pub(crate) type SharedCoProcess<K, O, FA, FB, P> = Rc<RefCell<CoProcessState<K, O, FA, FB, P>>>;

pub(crate) fn co_process<K, O, FA, FB, P>(
    key_of_first: FA,
    key_of_second: FB,
    function: P,
    host: KeyedHost<K, O>,
) -> SharedCoProcess<K, O, FA, FB, P> {
    Rc::new(RefCell::new(CoProcessState {
        key_of_first,
        key_of_second,
        function,
        host,
        combiner: WatermarkCombiner::new(2),
        status: WatermarkStatus::Active,
    }))
}

impl<K: StateKey + StableKey, O: Data, FA, FB, P> CoProcessState<K, O, FA, FB, P> {
    fn input_control<A, B>(&mut self, input: usize, event: Control)
    where
        P: KeyedCoProcess<K, A, B, O>,
    {
        let advanced = match event {
            Control::Watermark(wm) => self.combiner.update(input, wm),
            Control::Status(status) => self
                .combiner
                .set_idle(input, status == WatermarkStatus::Idle),
            Control::End => self.combiner.end(input),
            Control::Barrier(b) => {
                self.host.forward(Control::Barrier(b));
                None
            }
        };
        if let Some(wm) = advanced {
            self.host.set_watermark(wm);
            let function = &mut self.function;
            self.host.fire(TimeDomain::EventTime, wm, |time, ctx| {
                function.on_timer(time, TimeDomain::EventTime, ctx)
            });
            self.host.forward(Control::Watermark(wm));
        }
        if self.combiner.all_ended() {
            if event == Control::End {
                self.host.forward(Control::End);
            }
        } else if self.combiner.status() != self.status {
            self.status = self.combiner.status();
            self.host.forward(Control::Status(self.status));
        }
    }
}

/// The first input of a co-process operator (typed by the second's `B`, which
/// the function needs).
pub struct FirstInput<K, B, O, FA, FB, P> {
    pub(crate) state: SharedCoProcess<K, O, FA, FB, P>,
    pub(crate) _second: std::marker::PhantomData<fn(B)>,
}

impl<K, A, B, O, FA, FB, P> Push<A> for FirstInput<K, B, O, FA, FB, P>
where
    K: StateKey + StableKey,
    A: Data,
    O: Data,
    FA: Fn(&A) -> K,
    P: KeyedCoProcess<K, A, B, O>,
{
    fn push(&mut self, batch: &mut Vec<Rec<A>>) {
        let mut guard = self.state.borrow_mut();
        let s = &mut *guard;
        for r in batch.drain(..) {
            let key = (s.key_of_first)(&r.value);
            let function = &mut s.function;
            s.host
                .with_key(&key, r.ts, |ctx| function.process_first(r.value, ctx));
        }
        s.host.flush();
    }
    fn control(&mut self, event: Control) {
        self.state.borrow_mut().input_control::<A, B>(0, event);
    }
    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.state.borrow().host.reachable_edges(out);
    }
}

/// The second input of a co-process operator (typed by the first's `A`).
pub struct SecondInput<K, A, O, FA, FB, P> {
    pub(crate) state: SharedCoProcess<K, O, FA, FB, P>,
    pub(crate) _first: std::marker::PhantomData<fn(A)>,
}

impl<K, A, B, O, FA, FB, P> Push<B> for SecondInput<K, A, O, FA, FB, P>
where
    K: StateKey + StableKey,
    B: Data,
    O: Data,
    FB: Fn(&B) -> K,
    P: KeyedCoProcess<K, A, B, O>,
{
    fn push(&mut self, batch: &mut Vec<Rec<B>>) {
        let mut guard = self.state.borrow_mut();
        let s = &mut *guard;
        for r in batch.drain(..) {
            let key = (s.key_of_second)(&r.value);
            let function = &mut s.function;
            s.host
                .with_key(&key, r.ts, |ctx| function.process_second(r.value, ctx));
        }
        s.host.flush();
    }
    fn control(&mut self, event: Control) {
        self.state.borrow_mut().input_control::<A, B>(1, event);
    }
    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.state.borrow().host.reachable_edges(out);
    }
}

/// The ticker's handle.
pub(crate) struct CoTick<K, A, B, O, FA, FB, P>(
    pub SharedCoProcess<K, O, FA, FB, P>,
    pub std::marker::PhantomData<fn(A, B)>,
);

impl<K, A, B, O, FA, FB, P> Tick for CoTick<K, A, B, O, FA, FB, P>
where
    K: StateKey + StableKey,
    O: Data,
    P: KeyedCoProcess<K, A, B, O>,
{
    fn tick(&mut self) {
        let mut guard = self.0.borrow_mut();
        let s = &mut *guard;
        let function = &mut s.function;
        s.host
            .tick(|time, ctx| function.on_timer(time, TimeDomain::ProcessingTime, ctx));
    }
    fn is_ended(&self) -> bool {
        self.0.borrow().host.ended
    }
}
