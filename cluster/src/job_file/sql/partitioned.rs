//! A sink table `PARTITIONED BY (…)`: Flink's filesystem sink options for
//! partitions, checked and taken out of the table's options before the
//! rest are read as a `[sink]` section.
//!
//! Sluice commits a partition by its time, as Flink's `partition-time`
//! trigger does, with the `success-file` policy: both are required by name
//! (Flink's defaults, a processing-time trigger and no policy, are not
//! what a partitioned log wants and are not supported). The rolling
//! options are checked as durations; Sluice's part files roll at every
//! checkpoint and partition commit, so they bound nothing more.

use std::sync::Arc;

use sluice_engine::sql::catalog::Table;
use sluice_engine::sql::partitioned_sink::PartitionedRows;
use sluice_engine::sql::SqlType;

use super::{refused_at_option, ScriptOrigin};
use crate::job_file::JobFileError;

/// How a partitioned sink table's rows are written and committed.
#[derive(Debug, Clone)]
pub struct SqlPartitioning {
    pub rows: Arc<PartitionedRows>,
    /// How long after its time a partition is committed (event time).
    pub commit_delay_ms: i64,
}

const TRIGGER: &str = "sink.partition-commit.trigger";
const DELAY: &str = "sink.partition-commit.delay";
const POLICY: &str = "sink.partition-commit.policy.kind";
const PATTERN: &str = "partition.time-extractor.timestamp-pattern";
const ROLLING: [&str; 2] = [
    "sink.rolling-policy.rollover-interval",
    "sink.rolling-policy.check-interval",
];

/// The partitioning of `table` (written with `columns`), its options
/// removed from `options`; `None` without `PARTITIONED BY`, whose options
/// are then refused.
pub(super) fn partitioning(
    origin: &ScriptOrigin,
    table: &Table,
    columns: &[(String, SqlType)],
    options: &mut toml::Table,
) -> Result<Option<SqlPartitioning>, JobFileError> {
    let refused = |key: &str, message: &str| refused_at_option(origin, table, key, message);
    let mut text = |key: &str| {
        options.remove(key).map(|_| {
            table
                .option(key)
                .map(|o| o.node.1.clone())
                .unwrap_or_default()
        })
    };
    let (trigger, delay, policy, pattern) =
        (text(TRIGGER), text(DELAY), text(POLICY), text(PATTERN));
    let rolling: Vec<(&str, String)> = ROLLING
        .iter()
        .filter_map(|&k| text(k).map(|v| (k, v)))
        .collect();
    if table.partitioned_by.is_empty() {
        if let Some(key) = [TRIGGER, DELAY, POLICY, PATTERN]
            .into_iter()
            .find(|k| table.option(k).is_some())
        {
            return Err(refused(
                key,
                &format!("option '{key}' applies to a table PARTITIONED BY columns"),
            ));
        }
        return Ok(None);
    }
    for (key, value) in &rolling {
        duration_ms(value).map_err(|m| refused(key, &format!("option '{key}' {m}")))?;
    }
    match trigger.as_deref() {
        Some("partition-time") => {}
        Some(other) => {
            return Err(refused(TRIGGER, &format!("option '{TRIGGER}' is '{other}': Sluice commits partitions by their time, 'partition-time'")))
        }
        None => {
            return Err(refused(TRIGGER, &format!("a PARTITIONED BY table needs '{TRIGGER}' = 'partition-time' (Sluice commits partitions when the watermark passes their time)")))
        }
    }
    match policy.as_deref() {
        Some("success-file") => {}
        Some(other) => {
            return Err(refused(POLICY, &format!("option '{POLICY}' is '{other}': Sluice marks a committed partition with a _SUCCESS file, 'success-file'")))
        }
        None => {
            return Err(refused(POLICY, &format!("a PARTITIONED BY table needs '{POLICY}' = 'success-file' (the marker Sluice writes)")))
        }
    }
    let commit_delay_ms = match &delay {
        Some(d) => duration_ms(d).map_err(|m| refused(DELAY, &format!("option '{DELAY}' {m}")))?,
        None => 0,
    };
    let rows = PartitionedRows::new(columns, &table.partitioned_by, pattern.as_deref())
        .map_err(|m| refused(PATTERN, &format!("option '{PATTERN}': {m}")))?;
    Ok(Some(SqlPartitioning {
        rows: Arc::new(rows),
        commit_delay_ms,
    }))
}

/// A duration as Flink writes one (`1 min`, `10s`, `500 ms`, a bare number
/// of milliseconds), in milliseconds.
pub(super) fn duration_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("is '{text}', expected a duration such as '1 min' or '10 s'"))?;
    let unit_ms = match unit.trim() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "min" | "m" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        other => {
            return Err(format!(
                "is '{text}': unknown unit '{other}' (ms, s, min, h, d)"
            ))
        }
    };
    number
        .checked_mul(unit_ms)
        .ok_or_else(|| format!("is '{text}', too long"))
}

#[cfg(test)]
mod tests {
    use super::duration_ms;

    #[test]
    fn durations_read_as_flink_writes_them() {
        assert_eq!(duration_ms("1 min"), Ok(60_000));
        assert_eq!(duration_ms("1min"), Ok(60_000));
        assert_eq!(duration_ms("10 s"), Ok(10_000));
        assert_eq!(duration_ms("250"), Ok(250));
        assert_eq!(duration_ms("2 h"), Ok(7_200_000));
        assert!(duration_ms("soon")
            .unwrap_err()
            .contains("expected a duration"));
        assert!(duration_ms("3 weeks")
            .unwrap_err()
            .contains("unknown unit 'weeks'"));
    }
}
