//! Windowed queries run as jobs (two shards, the key_by exchange, the
//! window operator, watermarks from out-of-order partitions) against a
//! brute-force model: random keys, aggregate lists and windows — the
//! `TUMBLE`, `HOP` and `CUMULATE` table functions and the group windows
//! `TUMBLE`, `HOP` and `SESSION` — over random rows. Every window's row
//! equals the model's aggregate of the rows in that window, once; no other
//! rows are emitted.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::connectors::GeneratorSource;
use crate::sql::group_aggregate::tests::{
    events, run_over, source_row, KeyOf, Source, CALLS, KEYS,
};
use crate::sql::value::{Row, Value};
use crate::WatermarkStrategy;

/// The generator delays events by up to this; the watermark trails by it.
const MAX_DELAY_MS: i64 = 80;

const TABLE: &str = "CREATE TABLE t (g BIGINT, b BIGINT, s VARCHAR, ts TIMESTAMP(3), \
     WATERMARK FOR ts AS ts - INTERVAL '80' MILLISECOND) WITH ('connector' = 'generator')";

/// A window of the test, in the model's terms (ms).
#[derive(Debug, Clone, Copy)]
pub(crate) enum TestWindow {
    Tumble(i64),
    Hop { slide: i64, size: i64 },
    Cumulate { step: i64, size: i64 },
    Session(i64),
}

/// The windows (start, end) that contain `ts` (not for sessions).
pub(crate) fn windows_of(window: TestWindow, ts: i64) -> Vec<(i64, i64)> {
    match window {
        TestWindow::Tumble(size) => {
            let start = ts - ts.rem_euclid(size);
            vec![(start, start + size)]
        }
        TestWindow::Hop { slide, size } => {
            let mut start = ts - ts.rem_euclid(slide);
            let mut all = Vec::new();
            while start > ts - size {
                all.push((start, start + size));
                start -= slide;
            }
            all
        }
        TestWindow::Cumulate { step, size } => {
            let start = ts - ts.rem_euclid(size);
            (1..=size / step)
                .map(|i| (start, start + i * step))
                .filter(|&(_, end)| end > ts)
                .collect()
        }
        TestWindow::Session(_) => unreachable!("sessions depend on the other rows"),
    }
}

/// Each key's sessions: rows sorted by time, a row joining the session
/// whose window `[first, last + gap)` it touches (Flink merges touching
/// session windows).
fn sessions<'a>(rows: &[&'a Source], gap: i64) -> Vec<((i64, i64), Vec<&'a Source>)> {
    let mut sorted = rows.to_vec();
    sorted.sort_by_key(|r| r.ts);
    let mut all: Vec<((i64, i64), Vec<&Source>)> = Vec::new();
    for row in sorted {
        match all.last_mut() {
            Some(((_, end), members)) if row.ts <= *end => {
                *end = (*end).max(row.ts + gap);
                members.push(row);
            }
            _ => all.push(((row.ts, row.ts + gap), vec![row])),
        }
    }
    all
}

/// The query: TVF syntax (`GROUP BY window_start, window_end`) or the
/// group window functions.
fn query(window: TestWindow, tvf: bool, with_time: bool, key: &str, calls: &str) -> String {
    let ms = |v: i64| format!("INTERVAL '{v}' MILLISECOND");
    if tvf {
        let function = match window {
            TestWindow::Tumble(size) => format!("TUMBLE(TABLE t, DESCRIPTOR(ts), {})", ms(size)),
            TestWindow::Hop { slide, size } => {
                format!("HOP(TABLE t, DESCRIPTOR(ts), {}, {})", ms(slide), ms(size))
            }
            TestWindow::Cumulate { step, size } => {
                format!(
                    "CUMULATE(TABLE t, DESCRIPTOR(ts), {}, {})",
                    ms(step),
                    ms(size)
                )
            }
            TestWindow::Session(gap) => {
                format!(
                    "SESSION(TABLE t PARTITION BY {key}, DESCRIPTOR(ts), {})",
                    ms(gap)
                )
            }
        };
        let time = if with_time { ", window_time" } else { "" };
        format!(
            "SELECT {key}, window_start, window_end{time}, {calls} FROM TABLE({function}) \
             GROUP BY {key}, window_start, window_end{time}"
        )
    } else {
        let (name, arguments) = match window {
            TestWindow::Tumble(size) => ("TUMBLE", ms(size)),
            TestWindow::Hop { slide, size } => ("HOP", format!("{}, {}", ms(slide), ms(size))),
            TestWindow::Session(gap) => ("SESSION", ms(gap)),
            TestWindow::Cumulate { .. } => unreachable!("no CUMULATE group window"),
        };
        let time = if with_time {
            format!(", {name}_ROWTIME(ts, {arguments})")
        } else {
            String::new()
        };
        format!(
            "SELECT {key}, {name}_START(ts, {arguments}), {name}_END(ts, {arguments}){time}, {calls} \
             FROM t GROUP BY {key}, {name}(ts, {arguments})"
        )
    }
}

/// The model's rows: per key and window, the key, the bounds, the window
/// time if asked, and each call's result.
fn model(
    sources: &[Source],
    key_of: KeyOf,
    window: TestWindow,
    with_time: bool,
    calls: &[usize],
) -> Vec<Row> {
    let mut by_key: BTreeMap<Value, Vec<&Source>> = BTreeMap::new();
    for row in sources {
        by_key.entry(key_of(row)).or_default().push(row);
    }
    let mut windows: Vec<(Value, (i64, i64), Vec<&Source>)> = Vec::new();
    for (key, rows) in by_key {
        if let TestWindow::Session(gap) = window {
            for (bounds, members) in sessions(&rows, gap) {
                windows.push((key.clone(), bounds, members));
            }
            continue;
        }
        let mut of_key: BTreeMap<(i64, i64), Vec<&Source>> = BTreeMap::new();
        for row in rows {
            for bounds in windows_of(window, row.ts) {
                of_key.entry(bounds).or_default().push(row);
            }
        }
        for (bounds, members) in of_key {
            windows.push((key.clone(), bounds, members));
        }
    }
    let mut rows: Vec<Row> = windows
        .into_iter()
        .map(|(key, (start, end), members)| {
            let mut row = vec![key, Value::Timestamp(start), Value::Timestamp(end)];
            if with_time {
                row.push(Value::Timestamp(end - 1));
            }
            row.extend(calls.iter().map(|&c| (CALLS[c].1)(&members)));
            Row(row)
        })
        .collect();
    rows.sort();
    rows
}

fn test_window() -> impl Strategy<Value = TestWindow> {
    prop_oneof![
        prop_oneof![Just(100i64), Just(250), Just(400)].prop_map(TestWindow::Tumble),
        (prop_oneof![Just(50i64), Just(100)], 2i64..5).prop_map(|(slide, n)| TestWindow::Hop {
            slide,
            size: slide * n
        }),
        (prop_oneof![Just(50i64), Just(100)], 2i64..6).prop_map(|(step, n)| TestWindow::Cumulate {
            step,
            size: step * n
        }),
        prop_oneof![Just(20i64), Just(60), Just(150)].prop_map(TestWindow::Session),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn each_window_emits_the_aggregate_of_its_rows_once(
        seed in 0u64..1_000,
        events_count in 0u64..300,
        keys in 1u64..6,
        shift in 0i64..1_000,
        key in 0usize..KEYS.len(),
        calls in proptest::collection::vec(0usize..CALLS.len(), 1..4),
        window in test_window(),
        tvf in any::<bool>(),
        with_time in any::<bool>(),
    ) {
        let (key_sql, key_of) = KEYS[key];
        // CUMULATE exists only as a table function; SESSION's partitions
        // are columns (`MOD(g, 3)` groups only a group window).
        let tvf = match window {
            TestWindow::Session(_) => tvf && !key_sql.contains('('),
            TestWindow::Cumulate { .. } => true,
            _ => tvf,
        };
        let generator = GeneratorSource {
            seed,
            events: Some(events_count),
            keys,
            partitions: 3,
            start_ts_ms: 1_700_000_000_000 + shift,
            events_per_second: 200,
            delayed_percent: 30,
            max_delay_ms: MAX_DELAY_MS,
            ..GeneratorSource::default()
        };
        let list: Vec<&str> = calls.iter().map(|&c| CALLS[c].0).collect();
        let sql = query(window, tvf, with_time, key_sql, &list.join(", "));
        let mut got = run_over(
            TABLE,
            &sql,
            &generator,
            WatermarkStrategy::bounded_out_of_orderness(MAX_DELAY_MS),
        );
        got.sort();
        let sources: Vec<Source> = events(&generator).iter().map(source_row).collect();
        let want = model(&sources, key_of, window, with_time, &calls);
        prop_assert_eq!(got, want, "{}", sql);
    }
}

#[test]
fn the_models_windows_follow_flinks_definitions() {
    let hop = TestWindow::Hop {
        slide: 50,
        size: 150,
    };
    assert_eq!(windows_of(hop, 120), vec![(100, 250), (50, 200), (0, 150)]);
    assert_eq!(windows_of(hop, -1), vec![(-50, 100), (-100, 50), (-150, 0)]);
    let cumulate = TestWindow::Cumulate {
        step: 50,
        size: 200,
    };
    assert_eq!(
        windows_of(cumulate, 260),
        vec![(200, 300), (200, 350), (200, 400)]
    );
    let a = Source {
        g: 0,
        b: None,
        s: None,
        ts: 10,
    };
    let b = Source {
        ts: 30,
        ..a.clone()
    };
    let c = Source {
        ts: 31,
        ..a.clone()
    };
    let bounds: Vec<(i64, i64)> = sessions(&[&c, &a, &b], 20)
        .into_iter()
        .map(|(bounds, _)| bounds)
        .collect();
    // 30 touches [10, 30): one session; 31 extends it.
    assert_eq!(bounds, vec![(10, 51)]);
}
