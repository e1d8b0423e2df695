//! When a window fires and when its contents are purged.
//!
//! A trigger is code plus a small `State` per (key, window) that the operator
//! stores beside the window's contents (`()` for triggers that need none, so
//! they cost no memory; a count for count triggers). Timers a trigger asks for
//! are registered by the operator for the current key and window.

use sluice_state::StateValue;

use super::Window;

/// What a trigger decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerResult {
    Continue,
    Fire,
    Purge,
    FireAndPurge,
}

impl TriggerResult {
    pub fn fires(self) -> bool {
        matches!(self, TriggerResult::Fire | TriggerResult::FireAndPurge)
    }
    pub fn purges(self) -> bool {
        matches!(self, TriggerResult::Purge | TriggerResult::FireAndPurge)
    }
}

/// What a trigger may see and ask for.
#[derive(Debug, Default)]
pub struct TriggerContext {
    pub watermark: i64,
    /// True when this element created the window's state (or a merge produced a
    /// new window).
    pub new_window: bool,
    pub(crate) event_timers: Vec<i64>,
}

impl TriggerContext {
    pub fn register_event_timer(&mut self, time: i64) {
        self.event_timers.push(time);
    }
}

/// Decides when windows fire. One value is shared by all keys of a shard.
pub trait Trigger<T, W>: Clone + Send + Sync + 'static {
    /// Per (key, window) state.
    /// Kept in state, so checkpoints encode it.
    type State: Default + Clone + StateValue;
    fn on_element(
        &self,
        value: &T,
        ts: i64,
        window: &W,
        state: &mut Self::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult;
    fn on_event_time(
        &self,
        time: i64,
        window: &W,
        state: &mut Self::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult;
    /// Combines the states of session windows that merge.
    fn merge_states(&self, a: Self::State, b: Self::State) -> Self::State {
        let _ = b;
        a
    }
    /// True only for a trigger that acts exactly as [`EventTimeTrigger`]: it
    /// fires when the watermark passes a window's `max_timestamp` and for every
    /// element that arrives after that within the allowed lateness, keeps no
    /// state and never purges. The operator may then keep overlapping windows
    /// as shared panes.
    fn fires_at_window_end(&self) -> bool {
        false
    }
}

/// Fires once the watermark passes the window's end, and again for every late
/// element within the allowed lateness (Flink's `EventTimeTrigger`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventTimeTrigger;

impl<T, W: Window> Trigger<T, W> for EventTimeTrigger {
    type State = ();
    fn fires_at_window_end(&self) -> bool {
        true
    }
    #[inline]
    fn on_element(
        &self,
        _value: &T,
        _ts: i64,
        window: &W,
        _state: &mut (),
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if window.max_timestamp() <= ctx.watermark {
            TriggerResult::Fire
        } else {
            if ctx.new_window {
                ctx.register_event_timer(window.max_timestamp());
            }
            TriggerResult::Continue
        }
    }
    fn on_event_time(
        &self,
        time: i64,
        window: &W,
        _state: &mut (),
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if time == window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }
}

/// Fires every `count` elements (with [`PurgingTrigger`]: count windows).
#[derive(Debug, Clone, Copy)]
pub struct CountTrigger {
    pub count: u64,
}

impl CountTrigger {
    pub fn of(count: u64) -> Self {
        assert!(count > 0, "count trigger needs a positive count");
        CountTrigger { count }
    }
}

impl<T, W> Trigger<T, W> for CountTrigger {
    type State = u64;
    #[inline]
    fn on_element(
        &self,
        _value: &T,
        _ts: i64,
        _window: &W,
        state: &mut u64,
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        *state += 1;
        if *state >= self.count {
            *state = 0;
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }
    fn on_event_time(
        &self,
        _time: i64,
        _window: &W,
        _state: &mut u64,
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
    fn merge_states(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// Turns every fire of the inner trigger into fire-and-purge.
#[derive(Debug, Clone, Copy, Default)]
pub struct PurgingTrigger<Tr>(pub Tr);

fn purging(result: TriggerResult) -> TriggerResult {
    match result {
        TriggerResult::Fire => TriggerResult::FireAndPurge,
        other => other,
    }
}

impl<T, W, Tr: Trigger<T, W>> Trigger<T, W> for PurgingTrigger<Tr> {
    type State = Tr::State;
    #[inline]
    fn on_element(
        &self,
        value: &T,
        ts: i64,
        window: &W,
        state: &mut Tr::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        purging(self.0.on_element(value, ts, window, state, ctx))
    }
    fn on_event_time(
        &self,
        time: i64,
        window: &W,
        state: &mut Tr::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        purging(self.0.on_event_time(time, window, state, ctx))
    }
    fn merge_states(&self, a: Tr::State, b: Tr::State) -> Tr::State {
        self.0.merge_states(a, b)
    }
}

/// Never fires (the default of global windows).
#[derive(Debug, Clone, Copy, Default)]
pub struct NeverTrigger;

impl<T, W> Trigger<T, W> for NeverTrigger {
    type State = ();
    fn on_element(
        &self,
        _value: &T,
        _ts: i64,
        _window: &W,
        _state: &mut (),
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
    fn on_event_time(
        &self,
        _time: i64,
        _window: &W,
        _state: &mut (),
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
}
