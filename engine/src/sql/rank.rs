//! Top-N and deduplication: `ROW_NUMBER() OVER (PARTITION BY … ORDER BY
//! …)` filtered by `rn <= N` (or `rn = 1`, `rn < N`) in the enclosing query.
//!
//! Runs as a keyed `process` on the shard that owns the partition's key
//! group, after a `key_by` on the partition columns. Per partition it keeps
//! the best `N` rows so far, in rank order, in keyed state. A row that ranks
//! within the top `N` is inserted (the row it pushes out of the top `N` is
//! dropped), and the rows at its rank and below are emitted again, each with
//! its new row number as last column: an upsert stream keyed by (partition,
//! row number), as Flink's rank operator updates it. With `N = 1` and the
//! number not selected, it is Flink's deduplication: a row each time a
//! partition's first row changes, keyed by the partition.
//!
//! Flink orders rows the `ORDER BY` leaves tied by their arrival, which
//! depends on how shards interleave. Here the order is total, so the result
//! is the same on any number of shards: for a deduplication that keeps the
//! last row (`ORDER BY` the event-time attribute `DESC`, what Flink keeps
//! is the latest arrival), the greater row by its columns in order wins; for
//! every other ranking the earlier row by event time ranks first (the
//! earlier arrival, in Flink), then the smaller by its columns in order.

use std::cmp::Ordering;
use std::sync::Arc;

use sluice_state::StateBackend;

use super::value::{Row, Value};
use crate::keyed_state::ValueState;
use crate::operators::{KeyedProcess, ProcessContext};

/// How rows that the `ORDER BY` leaves tied are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ties {
    /// Earlier event time first (when the rows have one), then the smaller
    /// row: the stand-in for Flink's earlier arrival.
    EarlierFirst { rowtime: Option<usize> },
    /// The greater row first: a deduplication keeping the last row.
    GreaterFirst,
}

/// The order in which rows of a partition rank.
#[derive(Debug, Clone)]
pub struct RankOrder {
    /// `(column, descending)` for each `ORDER BY` key.
    pub keys: Arc<[(usize, bool)]>,
    pub ties: Ties,
}

impl RankOrder {
    /// `Less` when `a` ranks before `b`.
    pub fn compare(&self, a: &Row, b: &Row) -> Ordering {
        for &(column, descending) in self.keys.iter() {
            let order = a.0[column].cmp(&b.0[column]);
            let order = if descending { order.reverse() } else { order };
            if order.is_ne() {
                return order;
            }
        }
        match self.ties {
            Ties::EarlierFirst { rowtime } => rowtime
                .map_or(Ordering::Equal, |t| a.0[t].cmp(&b.0[t]))
                .then_with(|| a.0.cmp(&b.0)),
            Ties::GreaterFirst => b.0.cmp(&a.0),
        }
    }
}

/// The top `limit` rows of each partition, on one shard.
pub struct TopN {
    order: RankOrder,
    limit: usize,
    top: ValueState<Row, Vec<Row>>,
}

impl TopN {
    pub fn new(order: RankOrder, limit: usize, state: &mut StateBackend) -> Self {
        TopN {
            order,
            limit,
            top: ValueState::new(state, "sql-rank/top-rows"),
        }
    }
}

impl KeyedProcess<Row, Row, Row> for TopN {
    fn process_element(&mut self, row: Row, ctx: &mut ProcessContext<'_, Row, Row>) {
        let (order, limit) = (&self.order, self.limit);
        let changed = self.top.modify(ctx, |top| {
            // After every row that ranks before it or ties with it entirely.
            let at = top.partition_point(|r| order.compare(r, &row).is_le());
            if at >= limit {
                return Vec::new();
            }
            top.insert(at, row);
            top.truncate(limit);
            top[at..]
                .iter()
                .enumerate()
                .map(|(i, r)| (at + i + 1, r.clone()))
                .collect()
        });
        for (number, Row(mut values)) in changed {
            values.push(Value::Int(number as i64));
            ctx.collect(Row(values));
        }
    }
}

#[cfg(test)]
mod tests;
