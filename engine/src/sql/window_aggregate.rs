//! Windowed aggregation: `GROUP BY window_start, window_end` over a window
//! table function (`TUMBLE`, `HOP`, `CUMULATE`), and the group windows
//! `GROUP BY TUMBLE(…)`, `HOP(…)` and `SESSION(…)`, on the window operator.
//!
//! Runs on the shard that owns the group's key group, after a `key_by` on
//! the grouping columns that are not window bounds. A `TUMBLE` aggregation
//! without `DISTINCT` runs in two phases, as Flink plans it: each shard
//! first folds its rows into partial accumulators per group and window
//! ([`TwoPhaseCalls`]), and the owner merges them. Its input rows are those
//! key columns first, then the columns its [`AggregateCall`]s read; each
//! record's event time places it in windows (the time attribute named by
//! `DESCRIPTOR`, which the source set as the record's timestamp). The
//! window operator keeps, per key and window (or pane: `HOP` and
//! `CUMULATE` windows share step-long panes), one [`Accumulator`] per call
//! and the values `DISTINCT` calls took. When the watermark passes a
//! window's end, it emits one row: the keys, `window_start`,
//! `window_end`, `window_time` (the end's last millisecond, the row's event
//! time), then one result per call. The output is append-only: a window's
//! row is final (late rows are dropped, as Flink drops them).

use std::fmt;
use std::sync::Arc;

use rkyv::{Archive, Deserialize, Serialize};

use super::aggregate::{Accumulator, AggregateCall};
use super::value::{Row, Value};
use crate::window::{
    AggregateFunction, CumulatingWindows, SessionWindows, SlidingWindows, TimeWindow,
    TumblingWindows, WindowAssigner, WindowLogic, WindowsEndingAt,
};
use crate::{Rec, Stream};

/// Which windows a windowed aggregation computes (all times in ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlWindow {
    Tumble {
        size: i64,
        offset: i64,
    },
    Hop {
        slide: i64,
        size: i64,
        offset: i64,
    },
    Cumulate {
        step: i64,
        size: i64,
        offset: i64,
    },
    Session {
        gap: i64,
    },
    /// Rows that are already one `size`-long window's result each, with
    /// the window's last millisecond as event time: a windowed aggregation
    /// of a `TUMBLE` or `HOP` aggregation's output, grouped by its windows.
    Assigned {
        size: i64,
    },
}

impl fmt::Display for SqlWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = |offset: i64| {
            if offset == 0 {
                String::new()
            } else {
                format!(", offset {offset} ms")
            }
        };
        match *self {
            SqlWindow::Tumble { size, offset: o } => {
                write!(f, "TUMBLE(size {size} ms{})", offset(o))
            }
            SqlWindow::Hop {
                slide,
                size,
                offset: o,
            } => write!(f, "HOP(slide {slide} ms, size {size} ms{})", offset(o)),
            SqlWindow::Cumulate {
                step,
                size,
                offset: o,
            } => write!(f, "CUMULATE(step {step} ms, size {size} ms{})", offset(o)),
            SqlWindow::Session { gap } => write!(f, "SESSION(gap {gap} ms)"),
            SqlWindow::Assigned { size } => {
                write!(f, "the input's windows (size {size} ms)")
            }
        }
    }
}

/// One window's (or pane's) state: an accumulator per call, and the values
/// `DISTINCT` calls took, as (call, value), sorted.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct WindowAccumulators {
    pub accumulators: Vec<Accumulator>,
    pub distinct: Vec<(u32, Value)>,
}

/// The window operator's logic for the calls of one windowed aggregation.
#[derive(Clone)]
pub struct SqlWindowLogic {
    calls: Arc<[AggregateCall]>,
}

impl SqlWindowLogic {
    /// Takes `value` into call `i` of `acc` (once per value if DISTINCT).
    fn take(&self, acc: &mut WindowAccumulators, i: usize, value: &Value) {
        let call = &self.calls[i];
        if call.distinct {
            let entry = (i as u32, value.clone());
            match acc.distinct.binary_search(&entry) {
                Ok(_) => return,
                Err(at) => acc.distinct.insert(at, entry),
            }
        }
        call.accumulate(&mut acc.accumulators[i], value);
    }
}

impl WindowLogic<Row, Row, TimeWindow> for SqlWindowLogic {
    type Acc = WindowAccumulators;
    type Out = Row;

    fn create(&self) -> WindowAccumulators {
        WindowAccumulators {
            accumulators: vec![Accumulator::default(); self.calls.len()],
            distinct: Vec::new(),
        }
    }

    fn add(&self, acc: &mut WindowAccumulators, row: &Row) {
        for (i, call) in self.calls.iter().enumerate() {
            if let Some(value) = call.input(&row.0) {
                self.take(acc, i, value);
            }
        }
    }

    fn merge(&self, mut a: WindowAccumulators, b: WindowAccumulators) -> WindowAccumulators {
        for (i, call) in self.calls.iter().enumerate() {
            if !call.distinct {
                call.merge(&mut a.accumulators[i], &b.accumulators[i]);
            }
        }
        // A DISTINCT call takes the other side's values it has not seen.
        for (call, value) in &b.distinct {
            self.take(&mut a, *call as usize, value);
        }
        a
    }

    fn emit(
        &self,
        key: &Row,
        window: &TimeWindow,
        acc: &WindowAccumulators,
        ts: i64,
        out: &mut Vec<Rec<Row>>,
    ) {
        out.push(Rec {
            ts,
            value: window_row(key, window, self.results(acc)),
        });
    }
}

impl SqlWindowLogic {
    /// The calls' results, in order.
    fn results<'a>(
        &'a self,
        acc: &'a WindowAccumulators,
    ) -> impl ExactSizeIterator<Item = Value> + 'a {
        self.calls
            .iter()
            .zip(&acc.accumulators)
            .map(|(call, acc)| call.result(acc))
    }
}

/// A window's output row: the keys, `window_start`, `window_end`,
/// `window_time`, then the calls' results.
fn window_row(
    key: &Row,
    window: &TimeWindow,
    results: impl ExactSizeIterator<Item = Value>,
) -> Row {
    let mut row = Vec::with_capacity(key.0.len() + 3 + results.len());
    row.extend_from_slice(&key.0);
    row.push(Value::Timestamp(window.start));
    row.push(Value::Timestamp(window.end));
    row.push(Value::Timestamp(window.end - 1));
    row.extend(results);
    Row(row)
}

/// How many (group, window) partials a shard holds before it sends them on
/// in a two-phase windowed aggregation.
const MAX_PARTIALS: usize = 4096;

/// The calls of a windowed aggregation as an [`AggregateFunction`], for
/// its two-phase form: each shard folds its rows into partial accumulators
/// before the key exchange and the group's owner merges them (Flink's
/// local-global aggregation, which its planner picks when every call
/// merges and none is `DISTINCT`). A group of few keys — `GROUP BY` the
/// window alone is one key — then no longer sends every row to one shard.
#[derive(Clone)]
struct TwoPhaseCalls(SqlWindowLogic);

impl AggregateFunction<Row> for TwoPhaseCalls {
    type Acc = WindowAccumulators;
    type Out = Vec<Value>;

    fn create_accumulator(&self) -> WindowAccumulators {
        WindowLogic::<Row, Row, TimeWindow>::create(&self.0)
    }

    fn add(&self, row: &Row, acc: &mut WindowAccumulators) {
        WindowLogic::<Row, Row, TimeWindow>::add(&self.0, acc, row)
    }

    fn get_result(&self, acc: &WindowAccumulators) -> Vec<Value> {
        self.0.results(acc).collect()
    }

    fn merge(&self, a: WindowAccumulators, b: WindowAccumulators) -> WindowAccumulators {
        WindowLogic::<Row, Row, TimeWindow>::merge(&self.0, a, b)
    }
}

/// The windowed aggregation of `input` (rows whose first `keys` columns
/// are the group): a key exchange, then the window operator.
pub fn window_aggregate(
    input: &Stream<Row>,
    keys: usize,
    calls: Arc<[AggregateCall]>,
    window: SqlWindow,
) -> Stream<Row> {
    let keyed = input.key_by(move |row: &Row| Row(row.0[..keys].to_vec()));
    let two_phase = calls.iter().all(|call| !call.distinct);
    let logic = move || SqlWindowLogic {
        calls: calls.clone(),
    };
    match window {
        // HOP stays in one phase: there the window operator adds each row
        // to one pane, where the local phase would add it to every window.
        SqlWindow::Tumble { size, offset } if two_phase => keyed
            .window(TumblingWindows::of(size).with_offset(offset))
            .aggregate_two_phase(
                TwoPhaseCalls(logic()),
                MAX_PARTIALS,
                |key: &Row, window: &TimeWindow, results: Vec<Value>| {
                    window_row(key, window, results.into_iter())
                },
            ),
        SqlWindow::Tumble { size, offset } => keyed
            .window(TumblingWindows::of(size).with_offset(offset))
            .apply(logic),
        SqlWindow::Hop {
            slide,
            size,
            offset,
        } => {
            let mut windows = SlidingWindows::of(size, slide);
            windows.offset_ms = offset.rem_euclid(slide);
            keyed.window(windows).apply(logic)
        }
        SqlWindow::Cumulate { step, size, offset } => keyed
            .window(CumulatingWindows::of(step, size).with_offset(offset))
            .apply(logic),
        SqlWindow::Session { gap } => keyed.window(SessionWindows::with_gap(gap)).apply(logic),
        SqlWindow::Assigned { size } => {
            keyed.window(WindowsEndingAt { size_ms: size }).apply(logic)
        }
    }
}

/// The rows of a window table function outside an aggregation (a window
/// join's input): each row once per window that holds its event time in
/// column `time_column` (TUMBLE: one, HOP: size / slide, CUMULATE: the
/// windows up to the end of its period), with `window_start`,
/// `window_end` and `window_time` (the window's last millisecond)
/// appended, as Flink's table functions make them. Stateless. A row with a
/// NULL time is in no window.
pub fn assign_windows(input: &Stream<Row>, window: SqlWindow, time_column: usize) -> Stream<Row> {
    input.flat_map(move |row: Row| {
        let mut windows = Vec::new();
        if let Value::Timestamp(ts) = row.0[time_column] {
            match window {
                SqlWindow::Tumble { size, offset } => TumblingWindows::of(size)
                    .with_offset(offset)
                    .assign(ts, &mut windows),
                SqlWindow::Hop {
                    slide,
                    size,
                    offset,
                } => {
                    let mut assigner = SlidingWindows::of(size, slide);
                    assigner.offset_ms = offset.rem_euclid(slide);
                    assigner.assign(ts, &mut windows)
                }
                SqlWindow::Cumulate { step, size, offset } => CumulatingWindows::of(step, size)
                    .with_offset(offset)
                    .assign(ts, &mut windows),
                SqlWindow::Session { .. } | SqlWindow::Assigned { .. } => {
                    unreachable!("planning assigns only TUMBLE, HOP and CUMULATE windows to rows")
                }
            }
        }
        let mut rows = Vec::with_capacity(windows.len());
        for TimeWindow { start, end } in windows {
            let mut values = Vec::with_capacity(row.0.len() + 3);
            values.extend_from_slice(&row.0);
            values.extend([
                Value::Timestamp(start),
                Value::Timestamp(end),
                Value::Timestamp(end - 1),
            ]);
            rows.push(Row(values));
        }
        rows
    })
}

#[cfg(test)]
pub(crate) mod tests;
