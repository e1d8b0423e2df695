//! `process` on a keyed stream: user code with keyed state and per-key timers
//! (Flink's `KeyedProcessFunction`).
//!
//! Lives on its shard's core. Event-time timers fire when the watermark reaches
//! them, before the watermark is forwarded; processing-time timers fire from the
//! shard's ticker. Invariant: user code only ever sees keys of this shard's key
//! groups, and every state access is scoped to the current key.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

use sluice_state::{StableKey, StateKey};

use super::process_context::{KeyedHost, ProcessContext, TimeDomain};
use crate::push::{Control, EdgeId, Push};
use crate::runtime::Tick;
use crate::{Data, Rec};

/// User logic of a keyed `process`. One instance per shard, built on the shard
/// by the factory given to `KeyedStream::process` (which also creates its state).
pub trait KeyedProcess<K, I, O>: 'static {
    fn process_element(&mut self, value: I, ctx: &mut ProcessContext<'_, K, O>);
    fn on_timer(&mut self, _time: i64, _domain: TimeDomain, _ctx: &mut ProcessContext<'_, K, O>) {}
}

pub(crate) struct ProcessState<K, O, KF, P> {
    key_of: KF,
    function: P,
    host: KeyedHost<K, O>,
}

/// The operator's state, shared between the chain and the shard's ticker.
pub(crate) type SharedProcessState<K, O, KF, P> = Rc<RefCell<ProcessState<K, O, KF, P>>>;

/// The chain-facing handle; the shard's ticker holds another.
pub struct KeyedProcessOperator<K, O, KF, P> {
    state: SharedProcessState<K, O, KF, P>,
}

impl<K: StateKey + StableKey, O: Data, KF, P> KeyedProcessOperator<K, O, KF, P> {
    pub(crate) fn new(
        key_of: KF,
        function: P,
        host: KeyedHost<K, O>,
    ) -> (Self, SharedProcessState<K, O, KF, P>) {
        let state = Rc::new(RefCell::new(ProcessState {
            key_of,
            function,
            host,
        }));
        (
            KeyedProcessOperator {
                state: state.clone(),
            },
            state,
        )
    }
}

/// The ticker's handle, typed by the input so `Tick` can call the function.
pub(crate) struct TickFor<I, K, O, KF, P>(
    pub SharedProcessState<K, O, KF, P>,
    pub PhantomData<fn(I)>,
);

impl<I, K, O, KF, P> Tick for TickFor<I, K, O, KF, P>
where
    K: StateKey + StableKey,
    O: Data,
    P: KeyedProcess<K, I, O>,
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
        for r in batch.drain(..) {
            let key = (s.key_of)(&r.value);
            let function = &mut s.function;
            s.host
                .with_key(&key, r.ts, |ctx| function.process_element(r.value, ctx));
        }
        s.host.flush();
    }

    fn control(&mut self, event: Control) {
        let mut guard = self.state.borrow_mut();
        let s = &mut *guard;
        if let Control::Watermark(wm) = event {
            s.host.set_watermark(wm);
            let function = &mut s.function;
            s.host.fire(TimeDomain::EventTime, wm, |time, ctx| {
                function.on_timer(time, TimeDomain::EventTime, ctx)
            });
        }
        s.host.forward(event);
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.state.borrow().host.reachable_edges(out);
    }
}
