//! The window operator: keyed window contents, triggers, timers, lateness.
//!
//! Lives on its shard's core, after a key exchange. State per (key, window) is
//! the window function's accumulator plus the trigger's `u64`, in a table of the
//! shard's state backend (namespace = window). Session windows also keep, per
//! key, the list of its live windows, and merge state and timers when a new
//! element bridges windows. Invariants: a window's state exists only between its
//! first element and its cleanup time (`max_timestamp + allowed_lateness`);
//! results are emitted before the watermark that caused them is forwarded.
//!
//! Sliding windows with the event-time trigger are kept as panes: each
//! element updates the one pane (a slide-long slice) it falls in, not the
//! `size / slide` windows that hold it; a window's result combines its panes
//! when it fires. A pane lives until the last window holding it is cleaned up.
//! Results are the same as window by window.

use std::sync::Arc;

use sluice_state::{
    CodecError, KeyGroups, KeyedTable, PartReader, PartWriter, Slot, SlotAction, StableKey,
    StateBackend, StateCodec, StateKey, StateValue, StateVec,
};

use super::{Trigger, TriggerContext, TriggerResult, Window, WindowAssigner, WindowLogic};
use crate::metrics::ShardMetrics;
use crate::operators::FanOut;
use crate::push::{Control, EdgeId, Push};
use crate::{Data, Rec};

/// How a keyed stream is windowed.
#[derive(Clone)]
pub struct WindowSpec<A, Tr> {
    pub assigner: A,
    pub trigger: Tr,
    pub allowed_lateness_ms: i64,
}

/// One window's state: the contents and the trigger's state (zero-sized for
/// the event-time trigger, so a count window costs one counter per key).
pub struct WindowSlot<Acc, S> {
    acc: Acc,
    trigger_state: S,
}

impl<Acc: StateValue, S: StateValue> StateCodec for WindowSlot<Acc, S> {
    fn encode_state(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut parts = PartWriter::new(out);
        parts.part(&self.acc)?;
        parts.part(&self.trigger_state)
    }
    fn decode_state(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut parts = PartReader::new(bytes);
        let slot = WindowSlot {
            acc: parts.part()?,
            trigger_state: parts.part()?,
        };
        parts.finish()?;
        Ok(slot)
    }
}

/// Window contents by key and window.
type Contents<K, W, Acc, S> = Box<dyn KeyedTable<K, W, WindowSlot<Acc, S>>>;
/// The live windows of each key (merging assigners only).
type Sessions<K, W> = Box<dyn KeyedTable<K, (), StateVec<W>>>;

pub struct WindowOperator<
    K,
    T,
    KF,
    A: WindowAssigner,
    Tr: Trigger<T, A::W>,
    L: WindowLogic<K, T, A::W>,
> {
    key_of: KF,
    groups: KeyGroups,
    spec: WindowSpec<A, Tr>,
    logic: L,
    contents: Contents<K, A::W, L::Acc, Tr::State>,
    sessions: Option<Sessions<K, A::W>>,
    timers: crate::timer::TimerService<K, A::W>,
    /// Kept as panes (see the module docs): `contents` holds panes, `timers`
    /// fire windows and `pane_cleanups` drop panes.
    sliced: bool,
    pane_cleanups: crate::timer::TimerService<K, A::W>,
    panes: Vec<A::W>,
    /// The pane whose windows `windows` holds, and its cleanup time.
    pane_windows: Option<(A::W, i64)>,
    watermark: i64,
    windows: Vec<A::W>,
    merged_from: Vec<A::W>,
    due: Vec<(i64, K, A::W)>,
    ctx: TriggerContext,
    output: Vec<Rec<L::Out>>,
    late_output: Vec<Rec<T>>,
    next: Box<dyn Push<L::Out>>,
    late: Option<FanOut<T>>,
    metrics: Arc<ShardMetrics>,
}

impl<K, T, KF, A, Tr, L> WindowOperator<K, T, KF, A, Tr, L>
where
    K: StateKey + StableKey,
    T: Data,
    KF: Fn(&T) -> K + 'static,
    A: WindowAssigner,
    Tr: Trigger<T, A::W>,
    L: WindowLogic<K, T, A::W>,
{
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        key_of: KF,
        groups: KeyGroups,
        spec: WindowSpec<A, Tr>,
        logic: L,
        backend: &mut StateBackend,
        next: Box<dyn Push<L::Out>>,
        late: Option<FanOut<T>>,
        metrics: Arc<ShardMetrics>,
    ) -> Self {
        assert!(
            spec.allowed_lateness_ms >= 0,
            "allowed lateness must not be negative"
        );
        let sessions = spec
            .assigner
            .is_merging()
            .then(|| backend.table(&format!("{name}/sessions")));
        WindowOperator {
            key_of,
            groups,
            // Fixed windows are shared by all keys: store each window once.
            // Session windows belong to one key each: key-major is better.
            contents: if spec.assigner.is_merging() {
                backend.table(&format!("{name}/contents"))
            } else {
                backend.namespaced_table(&format!("{name}/contents"))
            },
            sessions,
            sliced: spec.assigner.pane_of(0).is_some() && spec.trigger.fires_at_window_end(),
            spec,
            logic,
            timers: crate::timer::TimerService::registered(
                backend,
                &format!("{name}/timers"),
                groups,
            ),
            pane_cleanups: crate::timer::TimerService::registered(
                backend,
                &format!("{name}/pane-cleanups"),
                groups,
            ),
            panes: Vec::new(),
            pane_windows: None,
            watermark: i64::MIN,
            windows: Vec::new(),
            merged_from: Vec::new(),
            due: Vec::new(),
            ctx: TriggerContext::default(),
            output: Vec::new(),
            late_output: Vec::new(),
            next,
            late,
            metrics,
        }
    }

    #[inline]
    fn cleanup_time(lateness: i64, window: &A::W) -> i64 {
        let max = window.max_timestamp();
        if max == i64::MAX {
            i64::MAX
        } else {
            max.saturating_add(lateness)
        }
    }

    fn late_element(&mut self, record: Rec<T>) {
        if record.ts.saturating_add(self.spec.allowed_lateness_ms) <= self.watermark {
            if self.late.is_some() {
                self.late_output.push(record);
            } else {
                ShardMetrics::add(&self.metrics.late_records_dropped, 1);
            }
        }
    }

    /// Emits `window` of `key` from its panes (nothing if it has none).
    fn fire_from_panes(&mut self, group: sluice_state::KeyGroup, key: &K, window: &A::W) {
        self.panes.clear();
        self.spec.assigner.panes_of_window(window, &mut self.panes);
        let mut acc: Option<L::Acc> = None;
        let logic = &self.logic;
        for pane in &self.panes {
            self.contents.read(group, key, pane, &mut |slot| {
                if let Some(state) = slot {
                    acc = Some(match acc.take() {
                        None => state.acc.clone(),
                        Some(a) => logic.merge(a, state.acc.clone()),
                    });
                }
            });
        }
        if let Some(acc) = acc {
            self.logic
                .emit(key, window, &acc, window.max_timestamp(), &mut self.output);
        }
    }

    fn process_sliced(&mut self, record: Rec<T>) {
        let key = (self.key_of)(&record.value);
        let group = self.groups.key_group_of_hash(key.stable_hash());
        let pane = self
            .spec
            .assigner
            .pane_of(record.ts)
            .expect("a sliced operator's assigner gives panes");
        let lateness = self.spec.allowed_lateness_ms;
        // The windows holding the element are those holding its pane: worked
        // out once per pane, not per element (elements come mostly in order).
        let pane_cleanup = match self.pane_windows {
            Some((cached, cleanup)) if cached == pane => cleanup,
            _ => {
                self.windows.clear();
                self.spec.assigner.assign(record.ts, &mut self.windows);
                let cleanup = self
                    .windows
                    .iter()
                    .map(|w| Self::cleanup_time(lateness, w))
                    .max()
                    .unwrap_or(i64::MIN);
                self.pane_windows = Some((pane, cleanup));
                cleanup
            }
        };
        if pane_cleanup <= self.watermark {
            return self.late_element(record);
        }
        let mut created = false;
        let logic = &self.logic;
        self.contents
            .update(group, &key, &pane, &mut |slot| match slot {
                Slot::Present(state) => {
                    logic.add(&mut state.acc, &record.value);
                    SlotAction::Keep
                }
                Slot::Absent => {
                    created = true;
                    let mut acc = logic.create();
                    logic.add(&mut acc, &record.value);
                    SlotAction::Put(WindowSlot {
                        acc,
                        trigger_state: Default::default(),
                    })
                }
            });
        if created {
            for window in &self.windows {
                if window.max_timestamp() > self.watermark {
                    self.timers
                        .register(window.max_timestamp(), key.clone(), *window);
                }
            }
            if pane_cleanup != i64::MAX {
                self.pane_cleanups.register(pane_cleanup, key.clone(), pane);
            }
        }
        // Windows that already fired but are within their allowed lateness
        // fire again with the late element, as the event-time trigger does.
        let windows = std::mem::take(&mut self.windows);
        for window in &windows {
            if window.max_timestamp() <= self.watermark
                && Self::cleanup_time(lateness, window) > self.watermark
            {
                self.fire_from_panes(group, &key, window);
            }
        }
        self.windows = windows;
    }

    fn advance_sliced(&mut self, watermark: i64) {
        self.watermark = watermark;
        let mut due = std::mem::take(&mut self.due);
        self.timers.pop_due(watermark, &mut due);
        for (_, key, window) in due.drain(..) {
            let group = self.groups.key_group_of_hash(key.stable_hash());
            self.fire_from_panes(group, &key, &window);
            self.emit_if_full();
        }
        // After the fires: a pane's cleanup is the last cleanup of its windows.
        self.pane_cleanups.pop_due(watermark, &mut due);
        for (_, key, pane) in due.drain(..) {
            let group = self.groups.key_group_of_hash(key.stable_hash());
            self.contents.remove(group, &key, &pane);
        }
        self.due = due;
    }

    fn process_element(&mut self, record: Rec<T>) {
        if self.sliced {
            return self.process_sliced(record);
        }
        if self.sessions.is_some() {
            return self.process_merging(record);
        }
        let key = (self.key_of)(&record.value);
        let group = self.groups.key_group_of_hash(key.stable_hash());
        self.windows.clear();
        self.spec.assigner.assign(record.ts, &mut self.windows);
        let lateness = self.spec.allowed_lateness_ms;
        let mut skipped = true;
        let Self {
            windows,
            contents,
            logic,
            spec,
            ctx,
            output,
            timers,
            watermark,
            ..
        } = self;
        for window in windows.iter() {
            if Self::cleanup_time(lateness, window) <= *watermark {
                continue;
            }
            skipped = false;
            ctx.watermark = *watermark;
            ctx.event_timers.clear();
            let mut created = false;
            let mut fresh = None;
            contents.update(group, &key, window, &mut |slot| {
                let (state, new_window) = match slot {
                    Slot::Present(state) => (state, false),
                    Slot::Absent => {
                        created = true;
                        fresh = Some(WindowSlot {
                            acc: logic.create(),
                            trigger_state: Default::default(),
                        });
                        (fresh.as_mut().expect("just created"), true)
                    }
                };
                logic.add(&mut state.acc, &record.value);
                ctx.new_window = new_window;
                let result = spec.trigger.on_element(
                    &record.value,
                    record.ts,
                    window,
                    &mut state.trigger_state,
                    ctx,
                );
                if result.fires() {
                    logic.emit(&key, window, &state.acc, window.max_timestamp(), output);
                }
                match (result.purges(), fresh.take()) {
                    (true, None) => SlotAction::Remove,
                    (true, Some(_)) | (false, None) => SlotAction::Keep,
                    (false, Some(state)) => SlotAction::Put(state),
                }
            });
            for &time in &ctx.event_timers {
                timers.register(time, key.clone(), *window);
            }
            if created {
                let cleanup = Self::cleanup_time(lateness, window);
                // Without lateness the trigger's timer is the cleanup's:
                // registered once, not looked up again.
                if cleanup != i64::MAX && !ctx.event_timers.contains(&cleanup) {
                    timers.register(cleanup, key.clone(), *window);
                }
            }
        }
        if skipped {
            self.late_element(record);
        }
    }

    fn process_merging(&mut self, record: Rec<T>) {
        let key = (self.key_of)(&record.value);
        let group = self.groups.key_group_of_hash(key.stable_hash());
        self.windows.clear();
        self.spec.assigner.assign(record.ts, &mut self.windows);
        assert_eq!(
            self.windows.len(),
            1,
            "bug: a merging assigner gives one window per element"
        );
        let lateness = self.spec.allowed_lateness_ms;
        let sessions_table = self
            .sessions
            .as_mut()
            .expect("merging operator has sessions");
        let StateVec(mut sessions) = sessions_table.remove(group, &key, &()).unwrap_or_default();
        let mut merged = self.windows[0];
        self.merged_from.clear();
        for live in &sessions {
            if let Some(cover) = self.spec.assigner.merge(&merged, live) {
                merged = cover;
                self.merged_from.push(*live);
            }
        }
        if Self::cleanup_time(lateness, &merged) <= self.watermark {
            if !sessions.is_empty() {
                sessions_table.put(group, &key, &(), StateVec(sessions));
            }
            return self.late_element(record);
        }
        let existed = self.merged_from.contains(&merged);
        sessions.retain(|w| !self.merged_from.contains(w));
        sessions.push(merged);
        sessions_table.put(group, &key, &(), StateVec(sessions));

        let mut state: Option<WindowSlot<L::Acc, Tr::State>> = None;
        for old in &self.merged_from {
            if let Some(old_state) = self.contents.remove(group, &key, old) {
                state = Some(match state {
                    None => old_state,
                    Some(s) => WindowSlot {
                        acc: self.logic.merge(s.acc, old_state.acc),
                        trigger_state: self
                            .spec
                            .trigger
                            .merge_states(s.trigger_state, old_state.trigger_state),
                    },
                });
            }
            if *old != merged {
                self.timers.delete(old.max_timestamp(), &key, old);
                self.timers
                    .delete(Self::cleanup_time(lateness, old), &key, old);
            }
        }
        let mut state = state.unwrap_or_else(|| WindowSlot {
            acc: self.logic.create(),
            trigger_state: Default::default(),
        });
        self.logic.add(&mut state.acc, &record.value);
        self.ctx.watermark = self.watermark;
        self.ctx.new_window = !existed;
        self.ctx.event_timers.clear();
        let result: TriggerResult = self.spec.trigger.on_element(
            &record.value,
            record.ts,
            &merged,
            &mut state.trigger_state,
            &mut self.ctx,
        );
        if result.fires() {
            self.logic.emit(
                &key,
                &merged,
                &state.acc,
                merged.max_timestamp(),
                &mut self.output,
            );
        }
        if !result.purges() {
            self.contents.put(group, &key, &merged, state);
        }
        for &time in &self.ctx.event_timers {
            self.timers.register(time, key.clone(), merged);
        }
        if !existed {
            let cleanup = Self::cleanup_time(lateness, &merged);
            if cleanup != i64::MAX {
                self.timers.register(cleanup, key.clone(), merged);
            }
        }
    }

    fn advance_watermark(&mut self, watermark: i64) {
        if self.sliced {
            return self.advance_sliced(watermark);
        }
        self.watermark = watermark;
        let mut due = std::mem::take(&mut self.due);
        self.timers.pop_due(watermark, &mut due);
        let lateness = self.spec.allowed_lateness_ms;
        for (time, key, window) in due.drain(..) {
            let group = self.groups.key_group_of_hash(key.stable_hash());
            let cleanup = time == Self::cleanup_time(lateness, &window);
            let Self {
                contents,
                logic,
                spec,
                ctx,
                output,
                ..
            } = self;
            ctx.watermark = watermark;
            ctx.new_window = false;
            ctx.event_timers.clear();
            contents.update(group, &key, &window, &mut |slot| match slot {
                Slot::Absent => SlotAction::Keep,
                Slot::Present(state) => {
                    let result =
                        spec.trigger
                            .on_event_time(time, &window, &mut state.trigger_state, ctx);
                    if result.fires() {
                        logic.emit(&key, &window, &state.acc, window.max_timestamp(), output);
                    }
                    if cleanup || result.purges() {
                        SlotAction::Remove
                    } else {
                        SlotAction::Keep
                    }
                }
            });
            for &t in &self.ctx.event_timers {
                if t > watermark {
                    self.timers.register(t, key.clone(), window);
                }
            }
            self.emit_if_full();
            if cleanup {
                if let Some(sessions) = self.sessions.as_mut() {
                    sessions.update(group, &key, &(), &mut |slot| match slot {
                        Slot::Present(StateVec(list)) => {
                            list.retain(|w| *w != window);
                            if list.is_empty() {
                                SlotAction::Remove
                            } else {
                                SlotAction::Keep
                            }
                        }
                        Slot::Absent => SlotAction::Keep,
                    });
                }
            }
        }
        self.due = due;
    }

    /// Many windows firing at once: hands results on as they come instead of
    /// all at the end (the first result waits less, memory stays bounded).
    #[inline]
    fn emit_if_full(&mut self) {
        if self.output.len() >= crate::operators::EMIT_BATCH_RECORDS {
            self.next.push(&mut self.output);
        }
    }

    fn flush_outputs(&mut self) {
        self.next.push(&mut self.output);
        if let Some(late) = self.late.as_mut() {
            if !self.late_output.is_empty() {
                late.push(&mut self.late_output);
            }
        }
    }
}

impl<K, T, KF, A, Tr, L> Push<T> for WindowOperator<K, T, KF, A, Tr, L>
where
    K: StateKey + StableKey,
    T: Data,
    KF: Fn(&T) -> K + 'static,
    A: WindowAssigner,
    Tr: Trigger<T, A::W>,
    L: WindowLogic<K, T, A::W>,
{
    fn push(&mut self, batch: &mut Vec<Rec<T>>) {
        for record in batch.drain(..) {
            self.process_element(record);
        }
        self.flush_outputs();
    }

    fn control(&mut self, event: Control) {
        if let Control::Watermark(wm) = event {
            self.advance_watermark(wm);
            self.flush_outputs();
        }
        self.next.control(event);
        if let Some(late) = self.late.as_mut() {
            late.control(event);
        }
    }

    fn reachable_edges(&self, out: &mut Vec<EdgeId>) {
        self.next.reachable_edges(out);
        if let Some(late) = &self.late {
            late.reachable_edges(out);
        }
    }
}
