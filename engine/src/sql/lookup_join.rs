//! The lookup join of a stream with a bounded table (`JOIN t FOR SYSTEM_TIME
//! AS OF a.proc_time ON …`): each row joined with every table row whose key
//! columns equal its key, in the table's order; a row without a match is
//! dropped (an inner join), and a key with a NULL matches nothing (SQL's
//! `=`).
//!
//! The table is read whole when the job is built and never changes, so the
//! join keeps no state and needs no exchange: it is a `flat_map` in its
//! input's chain on every shard. [`LookupIndex`] is built once, where the
//! job is built, and shared read-only by every shard. Rows keep their
//! event time.

use std::ops::Range;
use std::sync::Arc;

use sluice_state::FastHashMap;

use super::value::{Row, Value};

/// A table's rows grouped by the join's key columns.
#[derive(Debug)]
pub struct LookupIndex {
    /// The rows, each key's contiguous and in table order; the columns no
    /// one reads are NULL.
    rows: Vec<Row>,
    keys: KeyMap,
}

#[derive(Debug)]
enum KeyMap {
    /// One key column: looked up by the value itself.
    One(FastHashMap<Value, Range<usize>>),
    Many(FastHashMap<Vec<Value>, Range<usize>>),
}

impl LookupIndex {
    /// Indexes `table` by its `key_columns`, keeping the `needed` columns.
    pub fn new(table: &[Row], key_columns: &[usize], needed: &[bool]) -> LookupIndex {
        let mut keyed: Vec<(Vec<Value>, &Row)> = table
            .iter()
            .map(|row| (row.select(key_columns).0, row))
            .filter(|(key, _)| !key.iter().any(Value::is_null))
            .collect();
        // Stable: a key's rows stay in table order.
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut rows = Vec::with_capacity(keyed.len());
        let mut groups: Vec<(Vec<Value>, Range<usize>)> = Vec::new();
        for (key, row) in keyed {
            match groups.last_mut() {
                Some((last, range)) if *last == key => range.end += 1,
                _ => groups.push((key, rows.len()..rows.len() + 1)),
            }
            let kept = (row.0.iter().zip(needed))
                .map(|(v, &n)| if n { v.clone() } else { Value::Null })
                .collect();
            rows.push(Row(kept));
        }
        let keys = if key_columns.len() == 1 {
            KeyMap::One(
                (groups.into_iter())
                    .map(|(mut key, range)| (key.pop().expect("one key column"), range))
                    .collect(),
            )
        } else {
            KeyMap::Many(groups.into_iter().collect())
        };
        LookupIndex { rows, keys }
    }

    /// The rows `row` joins with: its first `left_width` columns, then a
    /// matching table row's; its key is in its `key_columns`.
    pub fn lookup(
        self: &Arc<Self>,
        mut row: Row,
        left_width: usize,
        key_columns: &[usize],
    ) -> Matches {
        let range = match &self.keys {
            KeyMap::One(map) => map.get(&row.0[key_columns[0]]),
            KeyMap::Many(map) => map.get(&row.select(key_columns).0),
        };
        let range = range.cloned().unwrap_or(0..0);
        row.0.truncate(left_width);
        Matches {
            index: self.clone(),
            left: (!range.is_empty()).then_some(row),
            next: range.start,
            end: range.end,
        }
    }
}

/// The joined rows of one input row.
pub struct Matches {
    index: Arc<LookupIndex>,
    left: Option<Row>,
    next: usize,
    end: usize,
}

impl Iterator for Matches {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        if self.next >= self.end {
            return None;
        }
        let right = &self.index.rows[self.next].0;
        self.next += 1;
        // The last match takes the input row; the others copy it.
        let left = if self.next == self.end {
            self.left.take()?
        } else {
            self.left.clone()?
        };
        let mut values = left.0;
        values.reserve_exact(right.len());
        values.extend_from_slice(right);
        Some(Row(values))
    }
}

#[cfg(test)]
mod tests;
