//! Top-N and deduplication queries run as jobs (two shards, the key_by
//! exchange, keyed state) against a model that sorts each partition's rows
//! at once: the last row emitted for each (partition, row number) — or
//! each partition, when the number is not selected — is the model's row at
//! that rank, whatever order the rows arrived in.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::sql::group_aggregate::tests::{events, generator, run_over, source_row, Source};
use crate::sql::value::{Row, Value};
use crate::WatermarkStrategy;

const TABLE: &str = "CREATE TABLE t (g BIGINT, b BIGINT, s VARCHAR, ts TIMESTAMP(3), \
     WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'generator')";

fn values(row: &Source) -> Vec<Value> {
    vec![
        Value::Int(row.g),
        row.b.map_or(Value::Null, Value::Int),
        row.s.clone().map_or(Value::Null, Value::Str),
        Value::Timestamp(row.ts),
    ]
}

/// A ranking: its SQL (`{n}` the limit), the ORDER BY as (column of
/// `values`, descending), and whether it keeps the last row by time.
struct Ranking {
    sql: &'static str,
    order: &'static [(usize, bool)],
    keeps_last: bool,
    /// Whether the row number is selected (else one row per partition).
    numbered: bool,
}

const RANKINGS: [Ranking; 5] = [
    Ranking {
        sql: "SELECT * FROM (SELECT g, b, s, ts, ROW_NUMBER() OVER (PARTITION BY g ORDER BY b DESC) AS rn FROM t) WHERE rn <= {n}",
        order: &[(1, true)],
        keeps_last: false,
        numbered: true,
    },
    Ranking {
        sql: "SELECT g, b, s, ts, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY g ORDER BY s, b DESC) AS rn FROM t) WHERE {n} >= rn",
        order: &[(2, false), (1, true)],
        keeps_last: false,
        numbered: true,
    },
    Ranking {
        sql: "SELECT * FROM (SELECT g, b, s, ts, ROW_NUMBER() OVER (PARTITION BY g ORDER BY ts) AS rn FROM t) WHERE rn < {n} + 1",
        order: &[(3, false)],
        keeps_last: false,
        numbered: true,
    },
    Ranking {
        sql: "SELECT g, b, s, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY g ORDER BY ts DESC) AS rn FROM t) WHERE rn = 1",
        order: &[(3, true)],
        keeps_last: true,
        numbered: false,
    },
    Ranking {
        sql: "SELECT g, b, s, ts FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY g ORDER BY b) AS rn FROM t) WHERE rn <= 1",
        order: &[(1, false)],
        keeps_last: false,
        numbered: false,
    },
];

/// The model's order: the ORDER BY, then ties as the operator breaks them.
fn model_order(ranking: &Ranking, a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    for &(c, descending) in ranking.order {
        let o = a[c].cmp(&b[c]);
        let o = if descending { o.reverse() } else { o };
        if o.is_ne() {
            return o;
        }
    }
    if ranking.keeps_last {
        b.cmp(a)
    } else {
        a[3].cmp(&b[3]).then_with(|| a.cmp(b))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn each_rank_ends_holding_the_partitions_sorted_rows(
        seed in 0u64..1_000,
        events_count in 0u64..300,
        keys in 1u64..8,
        n in 1usize..5,
        which in 0usize..RANKINGS.len(),
    ) {
        let ranking = &RANKINGS[which];
        let sql = ranking.sql.replace("{n}", &n.to_string());
        let n = if ranking.numbered { n } else { 1 };
        let generator = generator(seed, events_count, keys);
        let emitted = run_over(TABLE, &sql, &generator, WatermarkStrategy::no_watermarks());
        // A partition's rows come from one shard, in order: the last row
        // emitted for a rank is the rank's row.
        let mut got = BTreeMap::new();
        for row in emitted {
            let rank = if ranking.numbered { row.0[4].clone() } else { Value::Int(1) };
            got.insert((row.0[0].clone(), rank), row);
        }
        let mut partitions: BTreeMap<Value, Vec<Vec<Value>>> = BTreeMap::new();
        for source in events(&generator).iter().map(source_row) {
            let row = values(&source);
            partitions.entry(row[0].clone()).or_default().push(row);
        }
        let mut want = BTreeMap::new();
        for (g, mut rows) in partitions {
            rows.sort_by(|a, b| model_order(ranking, a, b));
            for (i, mut row) in rows.into_iter().take(n).enumerate() {
                let rank = Value::Int(i as i64 + 1);
                if ranking.numbered {
                    row.push(rank.clone());
                }
                want.insert((g.clone(), rank), Row(row));
            }
        }
        prop_assert_eq!(got, want, "{}", sql);
    }
}
