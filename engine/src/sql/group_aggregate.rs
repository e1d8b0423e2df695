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
//! group is its current result: a sink writes the stream as upserts.
//!
//! Over an updating input (another unbounded aggregation's upserts, as in
//! Nexmark q4) each input row replaces the row that came before with the
//! same upstream key, whose columns the rows carry last. The operator keeps
//! that row per upstream key, retracts it from the accumulators and takes
//! the new one, then emits once: Flink's retraction of the old row and
//! addition of the new, without a changelog between the operators. The
//! planner only allows this when the group is made of upstream key columns
//! (so an upstream key stays in one group and a group never empties) and
//! every call retracts ([`AggregateCall::retracts`]).

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
    /// Over an updating input: how rows replace earlier ones.
    replacing: Option<Replacing>,
}

/// How an aggregation over an updating input finds the row a row replaces.
struct Replacing {
    /// The columns of the upstream key.
    upstream_key: Arc<[usize]>,
    /// Per upstream key, the row it last contributed.
    previous_rows: MapState<Row, Row, Row>,
}

/// Distinct calls a group aggregation can hold (one bit each).
pub const MAX_DISTINCT_CALLS: usize = 64;

/// Calls a group aggregation can hold (one bit each per row).
pub const MAX_CALLS: usize = 128;

impl GroupAggregate {
    /// The operator over rows whose first `keys` columns are the group, its
    /// state created in `state`. At most [`MAX_DISTINCT_CALLS`] calls may be
    /// distinct (the planner refuses more).
    ///
    /// With `upstream_key`, the input is updating: a row replaces the one
    /// before it with equal values in those columns (see the module docs);
    /// every call must retract.
    pub fn new(
        keys: usize,
        calls: Arc<[AggregateCall]>,
        upstream_key: Option<Arc<[usize]>>,
        state: &mut StateBackend,
    ) -> Self {
        debug_assert!(upstream_key.is_none() || calls.iter().all(AggregateCall::retracts));
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
            replacing: upstream_key.map(|upstream_key| Replacing {
                upstream_key,
                previous_rows: MapState::new(state, "sql-group-aggregate/previous-rows"),
            }),
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
        // Over an updating input: the row this one replaces.
        let previous = self.replacing.as_mut().and_then(|r| {
            let upstream_key = row.select(&r.upstream_key);
            let before = r.previous_rows.get(ctx, &upstream_key);
            r.previous_rows.put(ctx, upstream_key, row.clone());
            before
        });
        let calls = &self.calls;
        let changed = self.accumulators.modify(ctx, |accumulators| {
            // A new group (no accumulators yet) always emits its first row.
            let mut changed = accumulators.is_empty();
            accumulators.resize(calls.len(), Accumulator::default());
            for (i, (call, acc)) in calls.iter().zip(accumulators.iter_mut()).enumerate() {
                let retracted = previous.as_ref().and_then(|p| call.input(&p.0));
                if takes & (1 << i) == 0 && retracted.is_none() {
                    continue;
                }
                let before = call.result(acc);
                if let Some(value) = retracted {
                    call.retract(acc, value);
                }
                if takes & (1 << i) != 0 {
                    call.accumulate(acc, call.input(&row.0).expect("taken above"));
                }
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
