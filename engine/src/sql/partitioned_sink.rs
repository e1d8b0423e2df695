//! A `PARTITIONED BY` file sink table's rows: which partition each row goes
//! to, and when a partition is complete (Flink's filesystem sink with the
//! `partition-time` commit trigger).
//!
//! A partition is a directory `col=value/…` under the sink's path, the
//! values escaped as Flink escapes them (`hm=22%3A13`); its files hold the
//! other columns only, as Flink's do. The partition's time comes from its
//! values: `partition.time-extractor.timestamp-pattern` with each `$col`
//! replaced by the column's value is read as `yyyy-MM-dd HH:mm:ss` (or
//! `yyyy-MM-dd`); without a pattern, the first partition column's value is.
//! The partition commits when the watermark passes that time plus the
//! commit delay.
//!
//! The time-partitioned file sink keys partitions by their time, so two
//! partitions whose values give the same time cannot both be written: the
//! second fails the job by name. [`PartitionedRows::prepare`] runs in the
//! chain before the sink on every shard; the paths it registers are shared
//! by the shards of the process.

use std::collections::HashMap;
use std::sync::Mutex;

use super::functions::{parse_timestamp, to_text};
use super::sql_type::SqlType;
use super::value::{Row, Value};

/// How a partitioned sink's rows are split into their files' columns and
/// their partition.
#[derive(Debug)]
pub struct PartitionedRows {
    /// The sink row's columns in written order: the others, then the
    /// partition columns (in `PARTITIONED BY` order).
    order: Vec<usize>,
    /// How many of `order` are written into the files.
    written: usize,
    /// The partition columns' names and types.
    partition: Vec<(String, SqlType)>,
    pattern: Vec<PatternPiece>,
    /// The text of the pattern, for errors.
    pattern_text: String,
    /// Each partition time's directory, as registered.
    paths: Mutex<HashMap<i64, String>>,
}

#[derive(Debug, Clone, PartialEq)]
enum PatternPiece {
    Text(String),
    /// A partition column, by its place in `PARTITIONED BY`.
    Column(usize),
}

/// The partition time and directory a row gave last, on one shard.
#[derive(Default)]
pub struct LastPartition(Mutex<Option<(Vec<Value>, i64)>>);

impl Clone for LastPartition {
    /// Each shard remembers its own.
    fn clone(&self) -> Self {
        LastPartition::default()
    }
}

impl PartitionedRows {
    /// The rows of a sink table of `columns` (name, type), partitioned by
    /// `partition_by`, its partition time read with `pattern` (`None`: the
    /// first partition column's value).
    pub fn new(
        columns: &[(String, SqlType)],
        partition_by: &[String],
        pattern: Option<&str>,
    ) -> Result<PartitionedRows, String> {
        let position = |name: &str| columns.iter().position(|(c, _)| c == name);
        let mut order: Vec<usize> = (0..columns.len())
            .filter(|&i| !partition_by.contains(&columns[i].0))
            .collect();
        let written = order.len();
        let mut partition = Vec::new();
        for name in partition_by {
            let at = position(name).ok_or_else(|| format!("`{name}` is not a column"))?;
            order.push(at);
            partition.push(columns[at].clone());
        }
        let pattern_text = match pattern {
            Some(p) => p.to_owned(),
            None => format!("${}", partition_by.first().ok_or("no partition column")?),
        };
        let pieces = parse_pattern(&pattern_text, partition_by)?;
        Ok(PartitionedRows {
            order,
            written,
            partition,
            pattern: pieces,
            pattern_text,
            paths: Mutex::default(),
        })
    }

    /// How many leading columns of a prepared row the files hold.
    pub fn written_columns(&self) -> usize {
        self.written
    }

    /// The sink table's columns the files hold, in order.
    pub fn written(&self) -> &[usize] {
        &self.order[..self.written]
    }

    /// `row` (the sink table's columns) reordered for writing, with its
    /// partition time appended; its partition registered. Fails on a
    /// partition whose time cannot be read, or whose time another
    /// partition already has.
    pub fn prepare(&self, row: Row, last: &LastPartition) -> Result<Row, String> {
        let mut values = row.0;
        let written = self.written;
        let mut out: Vec<Value> = Vec::with_capacity(self.order.len() + 1);
        out.extend(self.order.iter().map(|&i| std::mem::take(&mut values[i])));
        let partition_values = &out[written..];
        let mut last = last.0.lock().expect("last partition lock");
        let time = match &*last {
            Some((values, time)) if values.as_slice() == partition_values => *time,
            _ => {
                let time = self.time_of(partition_values)?;
                self.register(time, partition_values)?;
                *last = Some((partition_values.to_vec(), time));
                time
            }
        };
        out.push(Value::Timestamp(time));
        Ok(Row(out))
    }

    /// The partition time of a prepared row.
    pub fn time_of_prepared(row: &Row) -> i64 {
        row.0.last().and_then(Value::as_i64).unwrap_or(i64::MIN)
    }

    /// The directory of the partition of time `time` (registered by
    /// [`PartitionedRows::prepare`] before any row of it reaches the sink).
    pub fn path(&self, time: i64) -> String {
        let paths = self.paths.lock().expect("partition paths lock");
        paths
            .get(&time)
            .cloned()
            .unwrap_or_else(|| format!("partition-time={time}"))
    }

    fn time_of(&self, values: &[Value]) -> Result<i64, String> {
        let mut text = String::new();
        for piece in &self.pattern {
            match piece {
                PatternPiece::Text(t) => text.push_str(t),
                PatternPiece::Column(c) => {
                    let (name, ty) = &self.partition[*c];
                    if values[*c].is_null() {
                        return Err(format!(
                            "partition column `{name}` is NULL: a partition's time needs its value"
                        ));
                    }
                    text.push_str(&to_text(&values[*c], ty));
                }
            }
        }
        parse_timestamp(&text).ok_or_else(|| {
            format!(
                "partition time '{text}' (from 'partition.time-extractor.timestamp-pattern' '{}') is not a timestamp 'yyyy-MM-dd HH:mm:ss' or a date 'yyyy-MM-dd'",
                self.pattern_text
            )
        })
    }

    fn register(&self, time: i64, values: &[Value]) -> Result<(), String> {
        let path = (self.partition.iter().zip(values))
            .map(|((name, ty), value)| {
                let text = if value.is_null() {
                    "__DEFAULT_PARTITION__".to_owned()
                } else {
                    escape_path_name(&to_text(value, ty))
                };
                format!("{}={text}", escape_path_name(name))
            })
            .collect::<Vec<_>>()
            .join("/");
        let mut paths = self.paths.lock().expect("partition paths lock");
        match paths.get(&time) {
            Some(known) if *known != path => Err(format!(
                "partitions {known} and {path} have the same partition time (by '{}'): Sluice's partitioned file sink keeps one partition per time",
                self.pattern_text
            )),
            Some(_) => Ok(()),
            None => {
                paths.insert(time, path);
                Ok(())
            }
        }
    }
}

/// `pattern`'s pieces: text, and `$col` (or `${col}`) for each partition
/// column it names.
fn parse_pattern(pattern: &str, partition_by: &[String]) -> Result<Vec<PatternPiece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = pattern;
    while let Some(at) = rest.find('$') {
        text.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, next) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced
                    .find('}')
                    .ok_or_else(|| format!("`${{` without `}}` in '{pattern}'"))?;
                (&braced[..end], &braced[end + 1..])
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        let column = partition_by.iter().position(|p| p == name).ok_or_else(|| {
            format!(
                "'{pattern}' names `${name}`, which is not a partition column (they are {})",
                partition_by.join(", ")
            )
        })?;
        if !text.is_empty() {
            pieces.push(PatternPiece::Text(std::mem::take(&mut text)));
        }
        pieces.push(PatternPiece::Column(column));
        rest = next;
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(PatternPiece::Text(text));
    }
    Ok(pieces)
}

/// `name` with the characters Flink escapes in partition paths as `%XX`.
pub fn escape_path_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let escaped = c < ' '
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\x7f'
                    | '{'
                    | '['
                    | ']'
                    | '^'
            );
        if escaped {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
