//! The regular inner join of two append-only inputs: `a JOIN b ON a.x = b.y`
//! (and the comma join `FROM a, b WHERE a.x = b.y`), Flink's streaming join
//! without a time bound.
//!
//! Runs as a keyed two-input `process` on the shard that owns the join key's
//! key group, after a `key_by` of each input on its side of the equalities.
//! Per key it keeps every row of both inputs in keyed state, forever (as
//! Flink does without a state TTL): a row that arrives is joined with every
//! row the other input has stored under its key, in the order they came, and
//! then stored itself. So each pair of rows with equal keys is emitted once,
//! when its later row arrives, whichever input that is, and the output is
//! append-only: left columns, then right columns. A key with a NULL never
//! matches (SQL's `=`): such rows are neither joined nor stored. Conditions
//! that are not key equalities are applied by the filter the planner puts
//! after the join; rows out of the join carry no event time attribute.

use std::sync::Arc;

use sluice_state::StateBackend;

use super::value::{Row, Value};
use crate::keyed_state::ListState;
use crate::operators::{KeyedCoProcess, ProcessContext};
use crate::Stream;

/// The join of one pair of inputs, on one shard.
pub struct RegularJoin {
    left_rows: ListState<Row, Row>,
    right_rows: ListState<Row, Row>,
}

impl RegularJoin {
    pub fn new(state: &mut StateBackend) -> Self {
        RegularJoin {
            left_rows: ListState::new(state, "sql-join/left-rows"),
            right_rows: ListState::new(state, "sql-join/right-rows"),
        }
    }
}

/// `left` then `right`, as one row.
pub(super) fn joined(left: &Row, right: &Row) -> Row {
    let mut values = Vec::with_capacity(left.0.len() + right.0.len());
    values.extend_from_slice(&left.0);
    values.extend_from_slice(&right.0);
    Row(values)
}

pub(super) fn has_null(key: &Row) -> bool {
    key.0.iter().any(Value::is_null)
}

impl KeyedCoProcess<Row, Row, Row, Row> for RegularJoin {
    fn process_first(&mut self, row: Row, ctx: &mut ProcessContext<'_, Row, Row>) {
        if has_null(ctx.key()) {
            return;
        }
        for right in self.right_rows.get(ctx) {
            ctx.collect(joined(&row, &right));
        }
        self.left_rows.add(ctx, row);
    }

    fn process_second(&mut self, row: Row, ctx: &mut ProcessContext<'_, Row, Row>) {
        if has_null(ctx.key()) {
            return;
        }
        for left in self.left_rows.get(ctx) {
            ctx.collect(joined(&left, &row));
        }
        self.right_rows.add(ctx, row);
    }
}

/// `left` joined with `right` where `left_keys` of a left row equal
/// `right_keys` of a right row (as many of each, of the same types).
pub fn regular_join(
    left: &Stream<Row>,
    right: &Stream<Row>,
    left_keys: Arc<[usize]>,
    right_keys: Arc<[usize]>,
) -> Stream<Row> {
    let right = right.key_by(move |row: &Row| row.select(&right_keys));
    left.key_by(move |row: &Row| row.select(&left_keys))
        .connect(&right)
        .process(RegularJoin::new)
}

#[cfg(test)]
pub(crate) mod tests;
