//! Unbounded group aggregation (`GROUP BY` without a window): an upsert
//! stream keyed by the group.
//!
//! Runs as a keyed `process` on the shard that owns the group's key group,
//! after a `key_by` on the grouping columns. Its input rows are the group's
//! key columns first, then the columns its [`AggregateCall`]s read
//! (arguments and filters). Per group it keeps one [`Accumulator`] per call
//! in keyed state and, for `DISTINCT` calls, the values seen: per value a
//! bit mask of the distinct calls that took it (Flink's distinct state), so
//! `COUNT(DISTINCT bidder) FILTER (WHERE …)` over several filters shares one
//! entry per bidder.
//!
//! Each input row updates its group and emits the group's new row (key
//! columns, then one result per call), unless no result changed (Flink does
//! not emit an update equal to the previous row). The last row emitted for a
//! group is its current result: a sink writes the stream as upserts, never a
//! retraction, since no operator in a SQL job consumes an updating stream.

use std::sync::Arc;

use sluice_state::StateBackend;

use super::aggregate::{Accumulator, AggregateCall};
use super::value::{Row, Value};
use crate::keyed_state::{MapState, ValueState};
use crate::operators::{KeyedProcess, ProcessContext};

/// The aggregation of one `GROUP BY`, on one shard.
pub struct GroupAggregate {
    keys: usize,
    calls: Arc<[AggregateCall]>,
    /// Per distinct call, its bit in the seen-values mask.
    distinct_bit: Vec<Option<u32>>,
    accumulators: ValueState<Row, Vec<Accumulator>>,
    /// (argument column, value) → the distinct calls that have taken it.
    seen: MapState<Row, (u32, Value), u64>,
}

/// Distinct calls a group aggregation can hold (one bit each).
pub const MAX_DISTINCT_CALLS: usize = 64;

/// Calls a group aggregation can hold (one bit each per row).
pub const MAX_CALLS: usize = 128;

impl GroupAggregate {
    /// The operator over rows whose first `keys` columns are the group, its
    /// state created in `state`. At most [`MAX_DISTINCT_CALLS`] calls may be
    /// distinct (the planner refuses more).
    pub fn new(keys: usize, calls: Arc<[AggregateCall]>, state: &mut StateBackend) -> Self {
        let mut next_bit = 0;
        let distinct_bit = calls
            .iter()
            .map(|c| {
                c.distinct.then(|| {
                    next_bit += 1;
                    next_bit - 1
                })
            })
            .collect();
        GroupAggregate {
            keys,
            calls,
            distinct_bit,
            accumulators: ValueState::new(state, "sql-group-aggregate/accumulators"),
            seen: MapState::new(state, "sql-group-aggregate/distinct-values"),
        }
    }
}

impl KeyedProcess<Row, Row, Row> for GroupAggregate {
    fn process_element(&mut self, row: Row, ctx: &mut ProcessContext<'_, Row, Row>) {
        // Which calls take a value from this row (DISTINCT ones only once
        // per value), decided before the accumulators are touched.
        let mut takes = 0u128;
        for (i, call) in self.calls.iter().enumerate() {
            let Some(value) = call.input(&row.0) else {
                continue;
            };
            if let (Some(bit), Some(column)) = (self.distinct_bit[i], call.arg) {
                let entry = (column as u32, value.clone());
                let mask = self.seen.get(ctx, &entry).unwrap_or(0);
                if mask & (1 << bit) != 0 {
                    continue;
                }
                self.seen.put(ctx, entry, mask | (1 << bit));
            }
            takes |= 1 << i;
        }
        let calls = &self.calls;
        let changed = self.accumulators.modify(ctx, |accumulators| {
            // A new group (no accumulators yet) always emits its first row.
            let mut changed = accumulators.is_empty();
            accumulators.resize(calls.len(), Accumulator::default());
            for (i, (call, acc)) in calls.iter().zip(accumulators.iter_mut()).enumerate() {
                if takes & (1 << i) == 0 {
                    continue;
                }
                let value = call.input(&row.0).expect("taken above");
                let before = call.result(acc);
                call.accumulate(acc, value);
                changed |= call.result(acc) != before;
            }
            changed.then(|| {
                calls
                    .iter()
                    .zip(accumulators.iter())
                    .map(|(call, acc)| call.result(acc))
                    .collect::<Vec<Value>>()
            })
        });
        // Flink does not emit an update equal to the previous row.
        let Some(results) = changed else {
            return;
        };
        let mut out = row.0;
        out.truncate(self.keys);
        out.extend(results);
        ctx.collect(Row(out));
    }
}

#[cfg(test)]
pub(crate) mod tests;
