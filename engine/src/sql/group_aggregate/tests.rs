//! Grouped queries run as jobs (two shards, the key_by exchange, keyed
//! state) against a brute-force model: random GROUP BY keys and aggregate
//! lists (DISTINCT, FILTER, NULL arguments) over random rows; the last row
//! each group emitted equals the model's aggregate of all its rows.
//!
//! The table, its rows, the keys and the aggregates with their models are
//! shared with the windowed aggregation's tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::connectors::{CollectSink, GeneratedEvent, GeneratorSource};
use crate::sql::catalog::Catalog;
use crate::sql::physical::{lower, JobTables};
use crate::sql::plan::plan_query;
use crate::sql::row_source::RowSource;
use crate::sql::scan::source_layout;
use crate::sql::script::{parse_script, Statement};
use crate::{JobConfig, StreamEnv, WatermarkStrategy};

const TABLE: &str =
    "CREATE TABLE t (g BIGINT, b BIGINT, s VARCHAR, ts TIMESTAMP(3)) WITH ('connector' = 'generator')";

/// A row of `t`, derived from a generated event: `b` is NULL for every
/// fifth event, `s` for every seventh; `ts` is the event's time.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub g: i64,
    pub b: Option<i64>,
    pub s: Option<String>,
    pub ts: i64,
}

pub(crate) fn source_row(event: &GeneratedEvent) -> Source {
    Source {
        g: event.key as i64,
        b: (!event.seq.is_multiple_of(5)).then(|| event.value.rem_euclid(101) - 50),
        s: (!event.seq.is_multiple_of(7))
            .then(|| ["x", "y", "zz"][event.value.rem_euclid(3) as usize].into()),
        ts: event.ts,
    }
}

fn values(row: &Source) -> [Value; 4] {
    [
        Value::Int(row.g),
        row.b.map_or(Value::Null, Value::Int),
        row.s.clone().map_or(Value::Null, Value::Str),
        Value::Timestamp(row.ts),
    ]
}

/// A model of a key: the key of a row.
pub(crate) type KeyOf = fn(&Source) -> Value;

/// The GROUP BY keys: SQL, and the model's key of a row.
pub(crate) const KEYS: [(&str, KeyOf); 3] = [
    ("g", |r| Value::Int(r.g)),
    ("MOD(g, 3)", |r| Value::Int(r.g % 3)),
    ("s", |r| r.s.clone().map_or(Value::Null, Value::Str)),
];

/// A model of an aggregate: its result over a group's rows.
pub(crate) type Model = fn(&[&Source]) -> Value;

fn ints(rows: &[&Source], keep: impl Fn(&Source) -> bool) -> Vec<i64> {
    rows.iter()
        .filter(|r| keep(r))
        .filter_map(|r| r.b)
        .collect()
}

fn null_if_empty(values: &[i64], f: impl Fn(&[i64]) -> i64) -> Value {
    if values.is_empty() {
        Value::Null
    } else {
        Value::Int(f(values))
    }
}

/// The aggregates: SQL, and the model over a group's rows.
pub(crate) const CALLS: [(&str, Model); 12] = [
    ("COUNT(*)", |rows| Value::Int(rows.len() as i64)),
    ("COUNT(b)", |rows| {
        Value::Int(ints(rows, |_| true).len() as i64)
    }),
    ("COUNT(DISTINCT b)", |rows| {
        Value::Int(
            ints(rows, |_| true)
                .into_iter()
                .collect::<BTreeSet<_>>()
                .len() as i64,
        )
    }),
    ("SUM(b)", |rows| {
        null_if_empty(&ints(rows, |_| true), |v| v.iter().sum())
    }),
    ("SUM(DISTINCT b)", |rows| {
        let set: Vec<i64> = ints(rows, |_| true)
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        null_if_empty(&set, |v| v.iter().sum())
    }),
    ("MIN(b)", |rows| {
        null_if_empty(&ints(rows, |_| true), |v| *v.iter().min().unwrap())
    }),
    ("MAX(b) FILTER (WHERE s = 'x')", |rows| {
        null_if_empty(&ints(rows, |r| r.s.as_deref() == Some("x")), |v| {
            *v.iter().max().unwrap()
        })
    }),
    ("AVG(b)", |rows| {
        null_if_empty(&ints(rows, |_| true), |v| {
            v.iter().sum::<i64>() / v.len() as i64
        })
    }),
    ("MAX(s)", |rows| {
        rows.iter()
            .filter_map(|r| r.s.clone())
            .max()
            .map_or(Value::Null, Value::Str)
    }),
    ("COUNT(*) FILTER (WHERE b > 0)", |rows| {
        Value::Int(rows.iter().filter(|r| r.b.is_some_and(|b| b > 0)).count() as i64)
    }),
    ("COUNT(DISTINCT s) FILTER (WHERE b < 0)", |rows| {
        let set: BTreeSet<&String> = rows
            .iter()
            .filter(|r| r.b.is_some_and(|b| b < 0))
            .filter_map(|r| r.s.as_ref())
            .collect();
        Value::Int(set.len() as i64)
    }),
    ("COUNT(DISTINCT b) FILTER (WHERE s = 'x')", |rows| {
        let set: BTreeSet<i64> = ints(rows, |r| r.s.as_deref() == Some("x"))
            .into_iter()
            .collect();
        Value::Int(set.len() as i64)
    }),
];

/// Runs `query` over the generator's rows on two shards: every row emitted.
fn run(query: &str, generator: &GeneratorSource) -> Vec<Row> {
    run_over(TABLE, query, generator, WatermarkStrategy::no_watermarks())
}

/// Runs `query` over the generator's rows as table `t` (created by
/// `table`), on two shards, with `watermarks`: every row emitted.
pub(crate) fn run_over(
    table: &str,
    query: &str,
    generator: &GeneratorSource,
    watermarks: WatermarkStrategy<Row>,
) -> Vec<Row> {
    run_over_in_batches(table, query, generator, watermarks, None)
}

/// As [`run_over`], the source reading at most `source_batch_records` rows
/// of a partition at a time and every exchange batch sent at once (so the
/// watermark rises while the job runs).
pub(crate) fn run_over_in_batches(
    table: &str,
    query: &str,
    generator: &GeneratorSource,
    watermarks: WatermarkStrategy<Row>,
    source_batch_records: Option<usize>,
) -> Vec<Row> {
    let mut catalog = Catalog::default();
    for statement in parse_script(table).unwrap() {
        catalog.apply(&statement, &[]).unwrap();
    }
    let statements = parse_script(query).unwrap();
    let Statement::Query(parsed) = &statements[0].node else {
        panic!("not a query: {query}");
    };
    let plan = plan_query(parsed, &catalog).unwrap();
    let mut physical = lower(&plan);
    let mut read = HashMap::new();
    physical.tables_read(&mut read);
    let layout = source_layout(catalog.table("t").unwrap(), &read["t"]);
    physical.narrow(&HashMap::from([("t".to_owned(), layout.clone())]));
    let defaults = JobConfig::default();
    let env = StreamEnv::new(JobConfig {
        shards: 2,
        source_batch_records: source_batch_records.unwrap_or(defaults.source_batch_records),
        flush_timeout: match source_batch_records {
            Some(_) => std::time::Duration::ZERO,
            None => defaults.flush_timeout,
        },
        ..defaults
    });
    let rows = env.source(
        RowSource {
            inner: generator.clone(),
            make_row: Arc::new(move |event: GeneratedEvent| {
                let all = values(&source_row(&event));
                Ok(Row(layout.iter().map(|&c| all[c].clone()).collect()))
            }),
            table: "t".into(),
        },
        watermarks,
    );
    let (sink, collected) = CollectSink::new();
    physical
        .build(
            &JobTables {
                streams: HashMap::from([("t".to_owned(), rows)]),
                lookups: HashMap::new(),
            },
            &mut HashMap::new(),
        )
        .sink(sink);
    env.execute().unwrap();
    let rows = collected.lock().unwrap();
    rows.iter().map(|r| r.value.clone()).collect()
}

/// An unpaced generator of `events` events over `keys` keys, in 3 partitions.
pub(crate) fn generator(seed: u64, events: u64, keys: u64) -> GeneratorSource {
    GeneratorSource {
        seed,
        events: Some(events),
        keys,
        partitions: 3,
        ..GeneratorSource::default()
    }
}

/// The last row emitted per value of the first column (a group's rows come
/// from one shard, in order: its last is its result).
fn last_per_group(rows: Vec<Row>) -> BTreeMap<Value, Row> {
    rows.into_iter()
        .map(|row| (row.0[0].clone(), row))
        .collect()
}

/// The generator's events, in no particular order.
pub(crate) fn events(generator: &GeneratorSource) -> Vec<GeneratedEvent> {
    let env = StreamEnv::new(JobConfig::default());
    let (sink, collected) = CollectSink::new();
    env.source(generator.clone(), WatermarkStrategy::no_watermarks())
        .sink(sink);
    env.execute().unwrap();
    let events = collected.lock().unwrap();
    events.iter().map(|r| r.value).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn each_groups_last_row_is_the_aggregate_of_all_its_rows(
        seed in 0u64..1_000,
        events_count in 0u64..400,
        keys in 1u64..12,
        key in 0usize..KEYS.len(),
        calls in proptest::collection::vec(0usize..CALLS.len(), 1..5),
    ) {
        let generator = generator(seed, events_count, keys);
        let (key_sql, key_of) = KEYS[key];
        let list: Vec<&str> = calls.iter().map(|&c| CALLS[c].0).collect();
        let query = format!("SELECT {key_sql}, {} FROM t GROUP BY {key_sql}", list.join(", "));
        let got = last_per_group(run(&query, &generator));
        let sources: Vec<Source> = events(&generator).iter().map(source_row).collect();
        let mut groups: BTreeMap<Value, Vec<&Source>> = BTreeMap::new();
        for row in &sources {
            groups.entry(key_of(row)).or_default().push(row);
        }
        let want: BTreeMap<Value, Row> = groups
            .into_iter()
            .map(|(k, rows)| {
                let mut out = vec![k.clone()];
                out.extend(calls.iter().map(|&c| (CALLS[c].1)(&rows)));
                (k, Row(out))
            })
            .collect();
        prop_assert_eq!(got, want, "{}", query);
    }
}

/// Aggregates over the inner aggregation `(g, m, sb, c, mb)` of the
/// updating-input test: SQL, and the model over a group's final inner rows.
type InnerModel = fn(&[&[Value; 5]]) -> Value;

const OUTER_CALLS: [(&str, InnerModel); 6] = [
    ("COUNT(*)", |rows| Value::Int(rows.len() as i64)),
    ("COUNT(mb)", |rows| {
        Value::Int(rows.iter().filter(|r| !r[4].is_null()).count() as i64)
    }),
    ("SUM(sb)", |rows| {
        let v: Vec<i64> = rows.iter().filter_map(|r| r[2].as_i64()).collect();
        null_if_empty(&v, |v| v.iter().sum())
    }),
    ("AVG(mb)", |rows| {
        let v: Vec<i64> = rows.iter().filter_map(|r| r[4].as_i64()).collect();
        null_if_empty(&v, |v| v.iter().sum::<i64>() / v.len() as i64)
    }),
    ("SUM(c) FILTER (WHERE sb > 0)", |rows| {
        let v: Vec<i64> = rows
            .iter()
            .filter(|r| r[2].as_i64().is_some_and(|s| s > 0))
            .filter_map(|r| r[3].as_i64())
            .collect();
        null_if_empty(&v, |v| v.iter().sum())
    }),
    ("AVG(sb + c)", |rows| {
        let v: Vec<i64> = rows
            .iter()
            .filter_map(|r| Some(r[2].as_i64()? + r[3].as_i64()?))
            .collect();
        null_if_empty(&v, |v| v.iter().sum::<i64>() / v.len() as i64)
    }),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// An aggregation over another's upserts: each inner update replaces
    /// its group's previous row in the outer accumulators, so each outer
    /// group ends as the aggregate of the inner groups' final rows.
    #[test]
    fn an_aggregation_over_upserts_ends_as_the_aggregate_of_the_final_rows(
        seed in 0u64..1_000,
        events_count in 0u64..400,
        keys in 1u64..12,
        calls in proptest::collection::vec(0usize..OUTER_CALLS.len(), 1..4),
    ) {
        let generator = generator(seed, events_count, keys);
        let list: Vec<&str> = calls.iter().map(|&c| OUTER_CALLS[c].0).collect();
        let query = format!(
            "SELECT m, {} FROM (SELECT g, MOD(g, 3) AS m, SUM(b) AS sb, COUNT(*) AS c, MAX(b) AS mb FROM t GROUP BY g, MOD(g, 3)) GROUP BY m",
            list.join(", ")
        );
        let got = last_per_group(run(&query, &generator));
        let sources: Vec<Source> = events(&generator).iter().map(source_row).collect();
        let mut inner: BTreeMap<i64, Vec<&Source>> = BTreeMap::new();
        for row in &sources {
            inner.entry(row.g).or_default().push(row);
        }
        let finals: Vec<[Value; 5]> = inner
            .iter()
            .map(|(g, rows)| {
                let b = ints(rows, |_| true);
                [
                    Value::Int(*g),
                    Value::Int(g % 3),
                    null_if_empty(&b, |v| v.iter().sum()),
                    Value::Int(rows.len() as i64),
                    null_if_empty(&b, |v| *v.iter().max().unwrap()),
                ]
            })
            .collect();
        let mut outer: BTreeMap<Value, Vec<&[Value; 5]>> = BTreeMap::new();
        for row in &finals {
            outer.entry(row[1].clone()).or_default().push(row);
        }
        let want: BTreeMap<Value, Row> = outer
            .into_iter()
            .map(|(m, rows)| {
                let mut out = vec![m.clone()];
                out.extend(calls.iter().map(|&c| (OUTER_CALLS[c].1)(&rows)));
                (m, Row(out))
            })
            .collect();
        prop_assert_eq!(got, want, "{}", query);
    }
}

/// What aggregating an updating table refuses, by name.
#[test]
fn aggregations_over_upserts_that_cannot_take_a_row_back_are_refused() {
    let mut catalog = Catalog::default();
    for statement in parse_script(TABLE).unwrap() {
        catalog.apply(&statement, &[]).unwrap();
    }
    let inner = "(SELECT g, MOD(g, 3) AS m, SUM(b) AS sb FROM t GROUP BY g, MOD(g, 3))";
    for (outer, message) in [
        ("SELECT m, MAX(sb) FROM {inner} GROUP BY m", "`MAX(sb)` over the result of an unbounded GROUP BY"),
        ("SELECT m, COUNT(DISTINCT sb) FROM {inner} GROUP BY m", "`COUNT(DISTINCT sb)` over the result"),
        ("SELECT sb, COUNT(*) FROM {inner} GROUP BY sb", "GROUP BY `sb` over the result of an unbounded GROUP BY (an updating table) that is not grouped by it: group by columns of its key (g, MOD(g, 3))"),
        ("SELECT m, COUNT(*) FROM {inner} WHERE sb > 0 GROUP BY m", "WHERE over an updating table"),
    ] {
        let query = outer.replace("{inner}", inner);
        let statements = parse_script(&query).unwrap();
        let Statement::Query(parsed) = &statements[0].node else {
            panic!("not a query: {query}");
        };
        let error = plan_query(parsed, &catalog).unwrap_err().to_string();
        assert!(error.contains(message), "{query}: {error}");
    }
}
