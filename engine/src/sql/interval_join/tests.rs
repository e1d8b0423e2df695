//! Interval and window joins run as jobs (two shards, both key_by exchanges, keyed
//! state, cleanup timers, events out of order within the watermark's
//! delay) against a nested-loop model: BETWEEN, strict and mirrored
//! bounds, a NULL-able key, a condition on one side, and a single bound
//! (a regular join filtering its output). The events span several cleanup
//! periods and the source reads a few rows at a time, so rows are dropped
//! while the job runs: dropping one too early loses pairs the model has.

use proptest::prelude::*;

use crate::connectors::GeneratorSource;
use crate::sql::group_aggregate::tests::{events, run_over_in_batches, source_row, Source};
use crate::sql::join::tests::{b, s, sorted, PairModel};
use crate::sql::value::{Row, Value};
use crate::sql::window_aggregate::tests::{windows_of, TestWindow};
use crate::WatermarkStrategy;

/// The generator delays events by up to this; the watermark trails by it.
const MAX_DELAY_MS: i64 = 80;

const TABLE: &str = "CREATE TABLE t (g BIGINT, b BIGINT, s VARCHAR, ts TIMESTAMP(3), \
     WATERMARK FOR ts AS ts - INTERVAL '80' MILLISECOND) WITH ('connector' = 'generator')";

const QUERIES: [(&str, PairModel); 6] = [
    (
        "SELECT l.g, l.b, r.b FROM t l JOIN t r ON l.g = r.g \
         AND l.ts BETWEEN r.ts - INTERVAL '200' MILLISECOND AND r.ts + INTERVAL '300' MILLISECOND",
        |l, r| {
            (l.g == r.g && l.ts >= r.ts - 200 && l.ts <= r.ts + 300)
                .then(|| vec![Value::Int(l.g), b(l), b(r)])
        },
    ),
    (
        "SELECT l.g, r.s FROM t l, t r WHERE l.g = r.g AND l.ts > r.ts \
         AND l.ts < r.ts + INTERVAL '1' SECOND AND l.s = 'x'",
        |l, r| {
            (l.g == r.g && l.ts > r.ts && l.ts < r.ts + 1000 && l.s.as_deref() == Some("x"))
                .then(|| vec![Value::Int(l.g), s(r)])
        },
    ),
    (
        "SELECT l.b, r.b FROM t l JOIN t r ON r.g = l.g \
         AND r.ts >= l.ts - INTERVAL '150' MILLISECOND AND r.ts <= l.ts",
        |l, r| (l.g == r.g && r.ts >= l.ts - 150 && r.ts <= l.ts).then(|| vec![b(l), b(r)]),
    ),
    (
        "SELECT l.g, r.g FROM t l JOIN t r ON l.b = r.b \
         AND l.ts BETWEEN r.ts AND r.ts + INTERVAL '2' SECOND",
        |l, r| {
            (l.b.is_some() && l.b == r.b && l.ts >= r.ts && l.ts <= r.ts + 2000)
                .then(|| vec![Value::Int(l.g), Value::Int(r.g)])
        },
    ),
    (
        "SELECT l.g, r.b FROM t l JOIN t r ON l.g = r.g \
         AND INTERVAL '100' MILLISECOND + r.ts > l.ts AND l.ts - INTERVAL '100' MILLISECOND >= r.ts - INTERVAL '400' MILLISECOND \
         WHERE r.s IS NOT NULL",
        |l, r| {
            (l.g == r.g && r.ts + 100 > l.ts && l.ts - 100 >= r.ts - 400 && r.s.is_some())
                .then(|| vec![Value::Int(l.g), b(r)])
        },
    ),
    (
        "SELECT l.g, r.g FROM t l JOIN t r ON l.g = r.g AND l.ts >= r.ts + INTERVAL '500' MILLISECOND",
        |l, r| (l.g == r.g && l.ts >= r.ts + 500).then(|| vec![Value::Int(l.g), Value::Int(r.g)]),
    ),
];

/// `events_count` rows over `keys` keys, 50 per second of event time
/// (several cleanup periods), 30 % of them late by up to the watermark's
/// delay.
fn generator(seed: u64, events_count: u64, keys: u64) -> GeneratorSource {
    GeneratorSource {
        seed,
        events: Some(events_count),
        keys,
        partitions: 3,
        start_ts_ms: 1_700_000_000_000 + (seed as i64 % 1000),
        events_per_second: 50,
        delayed_percent: 30,
        max_delay_ms: MAX_DELAY_MS,
        ..GeneratorSource::default()
    }
}

/// The rows `sql` emits over the generator's, and those rows as the
/// model reads them. Small source batches: the watermark rises while rows
/// come, so rows expire and are dropped during the run.
fn run(sql: &str, generator: &GeneratorSource) -> (Vec<Row>, Vec<Source>) {
    let got = run_over_in_batches(
        TABLE,
        sql,
        generator,
        WatermarkStrategy::bounded_out_of_orderness(MAX_DELAY_MS),
        Some(4),
    );
    (got, events(generator).iter().map(source_row).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn an_interval_join_emits_every_pair_within_its_bounds_once(
        seed in 0u64..1_000,
        events_count in 0u64..300,
        keys in 1u64..8,
        query in 0usize..QUERIES.len(),
    ) {
        let generator = generator(seed, events_count, keys);
        let (sql, model) = QUERIES[query];
        let (got, sources) = run(sql, &generator);
        let mut want = Vec::new();
        for l in &sources {
            for r in &sources {
                want.extend(model(l, r).map(Row));
            }
        }
        prop_assert_eq!(sorted(got), sorted(want), "{}", sql);
    }
}

/// Window joins of two window table functions (windows assigned to each
/// row, no aggregation), on the key and both window bounds: the SQL and the
/// model's windows.
const WINDOW_JOINS: [(&str, TestWindow); 3] = [
    (
        "TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '200' MILLISECOND)",
        TestWindow::Tumble(200),
    ),
    (
        "HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '100' MILLISECOND, INTERVAL '300' MILLISECOND)",
        TestWindow::Hop {
            slide: 100,
            size: 300,
        },
    ),
    (
        "CUMULATE(TABLE t, DESCRIPTOR(ts), INTERVAL '100' MILLISECOND, INTERVAL '300' MILLISECOND)",
        TestWindow::Cumulate {
            step: 100,
            size: 300,
        },
    ),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_window_join_emits_every_pair_sharing_a_window_once(
        seed in 0u64..1_000,
        events_count in 0u64..300,
        keys in 1u64..8,
        which in 0usize..WINDOW_JOINS.len(),
    ) {
        let generator = generator(seed, events_count, keys);
        let (function, window) = WINDOW_JOINS[which];
        let sql = format!(
            "SELECT l.g, l.b, r.b, l.window_start, r.window_end \
             FROM (SELECT * FROM TABLE({function})) l \
             JOIN (SELECT * FROM TABLE({function}) WHERE s IS NOT NULL) r \
             ON l.g = r.g AND l.window_start = r.window_start AND l.window_end = r.window_end"
        );
        let (got, sources) = run(&sql, &generator);
        let mut want = Vec::new();
        for l in &sources {
            for r in sources.iter().filter(|r| r.g == l.g && r.s.is_some()) {
                let right_windows = windows_of(window, r.ts);
                for (start, end) in windows_of(window, l.ts) {
                    if right_windows.contains(&(start, end)) {
                        want.push(Row(vec![
                            Value::Int(l.g),
                            b(l),
                            b(r),
                            Value::Timestamp(start),
                            Value::Timestamp(end),
                        ]));
                    }
                }
            }
        }
        prop_assert_eq!(sorted(got), sorted(want), "{}", sql);
    }
}
