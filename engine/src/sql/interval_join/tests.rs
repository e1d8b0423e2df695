//! Interval joins run as jobs (two shards, both key_by exchanges, keyed
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn an_interval_join_emits_every_pair_within_its_bounds_once(
        seed in 0u64..1_000,
        events_count in 0u64..300,
        keys in 1u64..8,
        query in 0usize..QUERIES.len(),
    ) {
        let generator = GeneratorSource {
            seed,
            events: Some(events_count),
            keys,
            partitions: 3,
            start_ts_ms: 1_700_000_000_000 + (seed as i64 % 1000),
            events_per_second: 50,
            delayed_percent: 30,
            max_delay_ms: MAX_DELAY_MS,
            ..GeneratorSource::default()
        };
        let (sql, model) = QUERIES[query];
        // Small source batches: the watermark rises while rows come, so
        // rows expire and are dropped during the run.
        let got = run_over_in_batches(
            TABLE,
            sql,
            &generator,
            WatermarkStrategy::bounded_out_of_orderness(MAX_DELAY_MS),
            Some(4),
        );
        let sources: Vec<Source> = events(&generator).iter().map(source_row).collect();
        let mut want = Vec::new();
        for l in &sources {
            for r in &sources {
                want.extend(model(l, r).map(Row));
            }
        }
        prop_assert_eq!(sorted(got), sorted(want), "{}", sql);
    }
}
