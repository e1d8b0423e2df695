//! The interval join: an inner join of two append-only inputs on key
//! equalities whose event-time attributes are bounded against each other,
//! `l.rt BETWEEN r.rt - INTERVAL '1' MINUTE AND r.rt + INTERVAL '2' SECOND`
//! (or the same with `>`, `>=`, `<`, `<=`): Flink's time-windowed join.
//!
//! Runs as a keyed two-input `process` on the shard that owns the join
//! key's key group, after a `key_by` of each input on its side of the
//! equalities. A pair (l, r) with equal keys joins when `l.rt - r.rt` lies
//! in `[lower, upper]` (milliseconds, both ends included). A row that
//! arrives is joined with the rows of the other input stored under its key
//! whose time is in its range, then stored — by its time, in keyed map
//! state — only while a row of the other input yet to come can still match
//! it: a row of the other input that is not late has a time above the
//! watermark, so a left row is kept until the watermark reaches
//! `l.rt - lower` and a right row until it reaches `r.rt + upper`. Event
//! timers (rounded up to [`CLEANUP_EVERY_MS`], so a key has at most one per
//! second of event time) drop the rows that expired. Unlike the regular
//! join, state stays bounded by the interval and the input rate.
//!
//! A window join — both inputs windowed (window aggregations, as in
//! Nexmark q5 and q8, or window table functions whose windows a stateless
//! step assigns to each row), joined on equal `window_start` and
//! `window_end` — is this join with the
//! keys including the window and the times being both `window_end`s,
//! bounded by `[0, 0]`: a window's rows are kept until the watermark passes
//! its end, when no row of that window can come from either side (Flink
//! emits a window join's pairs at the window's end; here each pair is
//! emitted when its second row arrives, which for windowed inputs is at
//! that end too).
//!
//! As in Flink, a late row (at or below the watermark) is still joined with
//! what is stored, but is not stored itself; with no late rows the output is
//! every matching pair, once. A NULL key or time never matches. The output
//! is left columns then right columns, with no event-time attribute (as the
//! regular join's).

use std::sync::Arc;

use sluice_state::StateBackend;

use super::join::{has_null, joined};
use super::value::{Row, Value};
use crate::keyed_state::MapState;
use crate::operators::{KeyedCoProcess, ProcessContext, TimeDomain};
use crate::Stream;

/// Cleanup timers fire at multiples of this (ms): rows are dropped at most
/// this much event time after they expired.
pub const CLEANUP_EVERY_MS: i64 = 1_000;

/// How the two inputs' times must relate: `lower <= l.rt - r.rt <= upper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeBounds {
    /// The left row's time column, among the left input's columns.
    pub left_time: usize,
    /// The right row's time column, among the right input's columns.
    pub right_time: usize,
    pub lower: i64,
    pub upper: i64,
}

/// An interval join's time condition: its bounds, and the conjuncts that
/// gave them as written (for EXPLAIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeCondition {
    pub bounds: TimeBounds,
    pub texts: Vec<String>,
    /// A window join: the times are both sides' `window_end`, which the
    /// keys also equate (the bounds are `[0, 0]`), so a window's rows are
    /// dropped once the watermark passes its end.
    pub window: bool,
}

/// The join of one pair of inputs, on one shard.
pub struct IntervalJoin {
    bounds: TimeBounds,
    /// Per key: left rows by their time.
    left_rows: MapState<Row, i64, Vec<Row>>,
    /// Per key: right rows by their time.
    right_rows: MapState<Row, i64, Vec<Row>>,
}

impl IntervalJoin {
    pub fn new(state: &mut StateBackend, bounds: TimeBounds) -> Self {
        IntervalJoin {
            bounds,
            left_rows: MapState::new(state, "sql-interval-join/left-rows"),
            right_rows: MapState::new(state, "sql-interval-join/right-rows"),
        }
    }
}

/// The time in column `column` of `row`, if it has one.
fn time_of(row: &Row, column: usize) -> Option<i64> {
    match row.0.get(column) {
        Some(Value::Timestamp(ms)) => Some(*ms),
        _ => None,
    }
}

/// The first cleanup moment at or after `time`.
fn cleanup_at(time: i64) -> i64 {
    let rest = time.rem_euclid(CLEANUP_EVERY_MS);
    if rest == 0 {
        time
    } else {
        time.saturating_add(CLEANUP_EVERY_MS - rest)
    }
}

/// Stores `row` at `time` in `rows` when it expires after the watermark,
/// with a timer to drop it then.
fn keep_until(
    rows: &mut MapState<Row, i64, Vec<Row>>,
    row: Row,
    time: i64,
    expires: i64,
    ctx: &mut ProcessContext<'_, Row, Row>,
) {
    if expires <= ctx.current_watermark() {
        return;
    }
    rows.modify(ctx, time, |stored| stored.push(row));
    ctx.register_event_timer(cleanup_at(expires));
}

/// Which input a row came from.
#[derive(Clone, Copy)]
enum Side {
    Left,
    Right,
}

impl IntervalJoin {
    /// Joins `row` of `side` with the stored rows of the other side in its
    /// time range, then stores it while a row yet to come can match it.
    fn arrive(&mut self, row: Row, side: Side, ctx: &mut ProcessContext<'_, Row, Row>) {
        let TimeBounds {
            left_time,
            right_time,
            lower,
            upper,
        } = self.bounds;
        let column = match side {
            Side::Left => left_time,
            Side::Right => right_time,
        };
        let Some(time) = time_of(&row, column) else {
            return;
        };
        if has_null(ctx.key()) {
            return;
        }
        // A left row meets right rows of times [t - upper, t - lower], a
        // right row left rows of [t + lower, t + upper]; the range's end is
        // when it stops mattering.
        let (from, to, stored, other) = match side {
            Side::Left => (
                time.saturating_sub(upper),
                time.saturating_sub(lower),
                &mut self.left_rows,
                &self.right_rows,
            ),
            Side::Right => (
                time.saturating_add(lower),
                time.saturating_add(upper),
                &mut self.right_rows,
                &self.left_rows,
            ),
        };
        // Joined in place, emitted after (the state is read under the key).
        let mut pairs = Vec::new();
        other.for_each(ctx, |other_time, others| {
            if (from..=to).contains(other_time) {
                pairs.extend(others.iter().map(|other_row| match side {
                    Side::Left => joined(&row, other_row),
                    Side::Right => joined(other_row, &row),
                }));
            }
        });
        for pair in pairs {
            ctx.collect(pair);
        }
        keep_until(stored, row, time, to, ctx);
    }
}

impl KeyedCoProcess<Row, Row, Row, Row> for IntervalJoin {
    fn process_first(&mut self, row: Row, ctx: &mut ProcessContext<'_, Row, Row>) {
        self.arrive(row, Side::Left, ctx);
    }

    fn process_second(&mut self, row: Row, ctx: &mut ProcessContext<'_, Row, Row>) {
        self.arrive(row, Side::Right, ctx);
    }

    fn on_timer(&mut self, time: i64, _domain: TimeDomain, ctx: &mut ProcessContext<'_, Row, Row>) {
        let TimeBounds { lower, upper, .. } = self.bounds;
        (self.left_rows).retain(ctx, |left_time, _| left_time.saturating_sub(lower) > time);
        (self.right_rows).retain(ctx, |right_time, _| right_time.saturating_add(upper) > time);
    }
}

/// `left` joined with `right` where `left_keys` of a left row equal
/// `right_keys` of a right row and their times are within `bounds`.
pub fn interval_join(
    left: &Stream<Row>,
    right: &Stream<Row>,
    left_keys: Arc<[usize]>,
    right_keys: Arc<[usize]>,
    bounds: TimeBounds,
) -> Stream<Row> {
    let right = right.key_by(move |row: &Row| row.select(&right_keys));
    left.key_by(move |row: &Row| row.select(&left_keys))
        .connect(&right)
        .process(move |state: &mut StateBackend| IntervalJoin::new(state, bounds))
}

#[cfg(test)]
mod tests;
