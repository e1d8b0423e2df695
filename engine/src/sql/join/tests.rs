//! Joins run as jobs (two shards, both key_by exchanges, keyed state)
//! against a nested-loop model: self-joins of the shared test table with
//! keys that are NULL now and then, several keys, a subquery's computed
//! column as key, conditions pushed to one side or left for after the join,
//! and a join of three; the job emits exactly the model's bag of rows.

use proptest::prelude::*;

use crate::sql::group_aggregate::tests::{events, generator, run_over, source_row, Source};
use crate::sql::value::{Row, Value};
use crate::WatermarkStrategy;

const TABLE: &str =
    "CREATE TABLE t (g BIGINT, b BIGINT, s VARCHAR, ts TIMESTAMP(3)) WITH ('connector' = 'generator')";

pub(crate) fn b(row: &Source) -> Value {
    row.b.map_or(Value::Null, Value::Int)
}

pub(crate) fn s(row: &Source) -> Value {
    row.s.clone().map_or(Value::Null, Value::Str)
}

/// SQL `=` of two nullable values: true only when both are present and equal.
fn equal<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
    a.is_some() && a == b
}

/// A model of a two-way join: the output row of a pair, if it is joined.
pub(crate) type PairModel = fn(&Source, &Source) -> Option<Vec<Value>>;

const TWO_WAY: [(&str, PairModel); 6] = [
    (
        "SELECT l.g, l.b, r.b FROM t l JOIN t r ON l.g = r.g",
        |l, r| (l.g == r.g).then(|| vec![Value::Int(l.g), b(l), b(r)]),
    ),
    (
        "SELECT l.s, r.g FROM t l, t r WHERE l.s = r.s AND l.b > r.b",
        |l, r| {
            (equal(&l.s, &r.s) && matches!((l.b, r.b), (Some(x), Some(y)) if x > y))
                .then(|| vec![s(l), Value::Int(r.g)])
        },
    ),
    (
        "SELECT l.g, r.s FROM t l INNER JOIN t r ON l.b = r.b AND l.s = 'x' WHERE r.g < 3",
        |l, r| {
            (equal(&l.b, &r.b) && l.s.as_deref() == Some("x") && r.g < 3)
                .then(|| vec![Value::Int(l.g), s(r)])
        },
    ),
    (
        "SELECT l.g, r.g, r.s FROM t l JOIN t r ON l.g = r.g AND r.s = l.s",
        |l, r| {
            (l.g == r.g && equal(&l.s, &r.s)).then(|| vec![Value::Int(l.g), Value::Int(r.g), s(r)])
        },
    ),
    (
        "SELECT m, r.b FROM (SELECT MOD(g, 3) AS m, b FROM t) l JOIN t r ON l.m = r.g",
        |l, r| (l.g % 3 == r.g).then(|| vec![Value::Int(l.g % 3), b(r)]),
    ),
    (
        "SELECT l.b, r.b FROM t l CROSS JOIN t r WHERE l.g = r.g AND (l.b = r.b OR l.s IS NULL)",
        |l, r| (l.g == r.g && (equal(&l.b, &r.b) || l.s.is_none())).then(|| vec![b(l), b(r)]),
    ),
];

pub(crate) fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_join_emits_every_matching_pair_once(
        seed in 0u64..1_000,
        events_count in 0u64..150,
        keys in 1u64..10,
        query in 0usize..TWO_WAY.len(),
    ) {
        let generator = generator(seed, events_count, keys);
        let (sql, model) = TWO_WAY[query];
        let got = run_over(TABLE, sql, &generator, WatermarkStrategy::no_watermarks());
        let sources: Vec<Source> = events(&generator).iter().map(source_row).collect();
        let mut want = Vec::new();
        for l in &sources {
            for r in &sources {
                want.extend(model(l, r).map(Row));
            }
        }
        prop_assert_eq!(sorted(got), sorted(want), "{}", sql);
    }

    #[test]
    fn a_join_of_three_emits_every_matching_triple_once(
        seed in 0u64..1_000,
        events_count in 0u64..50,
        keys in 1u64..6,
    ) {
        let generator = generator(seed, events_count, keys);
        let sql = "SELECT a.g, c.b, c.s FROM t a JOIN t m ON a.g = m.g JOIN t c ON m.b = c.b WHERE a.s = 'x'";
        let got = run_over(TABLE, sql, &generator, WatermarkStrategy::no_watermarks());
        let sources: Vec<Source> = events(&generator).iter().map(source_row).collect();
        let mut want = Vec::new();
        for a in &sources {
            for m in &sources {
                for c in &sources {
                    if a.g == m.g && equal(&m.b, &c.b) && a.s.as_deref() == Some("x") {
                        want.push(Row(vec![Value::Int(a.g), b(c), s(c)]));
                    }
                }
            }
        }
        prop_assert_eq!(sorted(got), sorted(want), "{}", sql);
    }
}
