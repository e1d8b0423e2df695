//! SQL jobs through `sluice run`: the Nexmark queries of
//! `examples/nexmark-sql` against the hand-written jobs on the same
//! generated events (1 and 3 shards), and malformed SQL job files, each
//! refused with exit code 2, its message at its line and column, and
//! nothing started; file tables (JSON lines and CSV) read into rows.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod support;

use support::{read_lines, run, sluice_succeeds, sorted, EVENTS, SEED};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nexmark-sql")
}

/// `examples/nexmark-sql/nexmark.sql` with the tests' events and seed,
/// at `rate` events per second of event time (the generator's default if
/// `None`).
fn nexmark_ddl(rate: Option<u64>) -> String {
    let text = std::fs::read_to_string(examples().join("nexmark.sql")).unwrap();
    let events = "'events' = '1000000'";
    assert!(text.contains(events));
    let rate = rate.map_or(String::new(), |r| format!(", 'events_per_second' = '{r}'"));
    text.replace(
        events,
        &format!("'events' = '{EVENTS}', 'seed' = '{SEED}'{rate}"),
    )
}

/// Runs `examples/nexmark-sql/<query>.sql` on `shards` shards into files;
/// returns the output lines, sorted.
fn run_sql(query: &str, shards: u32, rate: Option<u64>) -> Vec<Value> {
    sorted(run_sql_in_order(query, shards, rate))
}

/// The same, the lines in file order (per shard file).
fn run_sql_in_order(query: &str, shards: u32, rate: Option<u64>) -> Vec<Value> {
    let text = std::fs::read_to_string(examples().join(format!("{query}.sql"))).unwrap();
    run_sql_text_in_order(query, &text, shards, rate)
}

/// Runs the SQL `text` (over nexmark.sql's tables, writing to a
/// blackhole) as `<query>.sql` on `shards` shards into files; returns the
/// output lines in file order.
fn run_sql_text_in_order(query: &str, text: &str, shards: u32, rate: Option<u64>) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let blackhole = "'connector' = 'blackhole'";
    assert!(
        text.contains(blackhole),
        "{query}.sql writes to a blackhole"
    );
    let text = text.replace(
        blackhole,
        "'connector' = 'filesystem', 'path' = 'out', 'format' = 'jsonl'",
    );
    std::fs::write(dir.path().join("nexmark.sql"), nexmark_ddl(rate)).unwrap();
    std::fs::write(dir.path().join(format!("{query}.sql")), text).unwrap();
    // q13's lookup table, next to the script as in the examples.
    std::fs::copy(
        examples().join("side_input.csv"),
        dir.path().join("side_input.csv"),
    )
    .unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!("shards = {shards}\nsql_file = [\"nexmark.sql\", \"{query}.sql\"]\n"),
    )
    .unwrap();
    sluice_succeeds("run", &job);
    read_lines(&dir.path().join("out"))
}

/// The SQL query's output equals the hand-written job's, row for row.
fn assert_sql_matches_hand_written(query: &str, min_rows: usize) {
    assert_sql_matches_hand_written_at(query, min_rows, None)
}

/// The same at `rate` events per second of event time (more windows).
fn assert_sql_matches_hand_written_at(query: &str, min_rows: usize, rate: Option<u64>) {
    for shards in [1, 3] {
        let source = rate.map_or(String::new(), |r| format!("events_per_second = {r}"));
        let want = sorted(read_lines(
            &support::run_job(query, shards, &source, "")
                .path()
                .join("out"),
        ));
        assert!(want.len() >= min_rows, "{query}: {} rows", want.len());
        let got = run_sql(query, shards, rate);
        assert_eq!(got.len(), want.len(), "{query} on {shards} shard(s)");
        if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
            panic!("{query} on {shards} shard(s): SQL gave {g}, the hand-written job {w}");
        }
    }
}

#[test]
fn q0_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written("q0", 90_000);
}

#[test]
fn q1_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written("q1", 90_000);
}

#[test]
fn q2_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written("q2", 100);
}

#[test]
fn q3_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written("q3", 100);
}

#[test]
fn q5_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written_at("q5", 50, Some(1_000));
}

#[test]
fn q7_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written_at("q7", 10, Some(1_000));
}

#[test]
fn q8_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written("q8", 10);
}

#[test]
fn q11_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written("q11", 1_000);
}

/// q13's lookup join against the hand-written job's side input, the same
/// file. The SQL sink's `customTime` (the repository's name) is the bid's
/// `dateTime`, as the hand-written job names it.
#[test]
fn q13_in_sql_equals_the_hand_written_job() {
    let side_input = examples().join("side_input.csv");
    let params = format!("side_input = {:?}", side_input.to_str().unwrap());
    for shards in [1, 3] {
        let want = sorted(read_lines(
            &support::run_job("q13", shards, "", &params)
                .path()
                .join("out"),
        ));
        assert!(want.len() >= 10_000, "q13: {} rows", want.len());
        let got = sorted(
            run_sql_in_order("q13", shards, None)
                .into_iter()
                .map(|mut row| {
                    let object = row.as_object_mut().unwrap();
                    let time = object.remove("customTime").unwrap();
                    object.insert("dateTime".into(), time);
                    row
                })
                .collect(),
        );
        assert_eq!(got.len(), want.len(), "q13 on {shards} shard(s)");
        if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
            panic!("q13 on {shards} shard(s): SQL gave {g}, the hand-written job {w}");
        }
    }
}

/// q12's windows are of processing time: the SQL job counts every bid of
/// each bidder once, as the hand-written job does, in 10-second windows
/// aligned to the epoch that lie within the wall-clock time of the run.
#[test]
fn q12_in_sql_counts_every_bid_once_in_windows_of_the_processing_time() {
    let per_bidder = |rows: Vec<Value>| {
        let mut counts = std::collections::BTreeMap::<i64, u64>::new();
        for row in rows {
            *counts.entry(row["bidder"].as_i64().unwrap()).or_default() +=
                row["bid_count"].as_u64().unwrap();
        }
        counts
    };
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    for shards in [1, 3] {
        let want = per_bidder(read_lines(
            &support::run_job("q12", shards, "", "").path().join("out"),
        ));
        assert!(want.len() >= 1_000, "q12: {} bidders", want.len());
        let started = now_ms();
        let rows = run_sql_in_order("q12", shards, None);
        let ended = now_ms();
        for row in &rows {
            let (start, end) = (
                row["starttime"].as_i64().unwrap(),
                row["endtime"].as_i64().unwrap(),
            );
            assert_eq!((end - start, start % 10_000), (10_000, 0), "{row}");
            assert!(
                end > started && start <= ended,
                "{row} outside {started}..{ended}"
            );
        }
        assert_eq!(per_bidder(rows), want, "q12 on {shards} shard(s)");
    }
}

/// Per partition directory under `root` (relative, its escapes undone):
/// its rows, sorted (without `dropped` fields), and whether its `_SUCCESS`
/// marker is there.
fn partitions(
    root: &Path,
    dropped: &[&str],
) -> std::collections::BTreeMap<String, (Vec<Value>, bool)> {
    support::committed_buckets(root)
        .into_iter()
        .map(|(partition, (lines, marked))| {
            let rows = lines
                .iter()
                .map(|line| {
                    let mut row: Value = serde_json::from_str(line).unwrap();
                    for field in dropped {
                        row.as_object_mut().unwrap().remove(*field);
                    }
                    row
                })
                .collect();
            (partition.replace("%3A", ":"), (sorted(rows), marked))
        })
        .collect()
}

/// q10 in SQL writes what the hand-written job writes, in Flink's layout:
/// a directory per minute (`hm=22%3A13`, escaped as Flink escapes it), rows
/// without the partition columns, every partition marked `_SUCCESS` by the
/// end; on 1 shard without checkpoints and on 3 with (exactly-once parts).
#[test]
fn q10_in_sql_writes_the_hand_written_jobs_partitions_in_flinks_layout() {
    let text = std::fs::read_to_string(examples().join("q10.sql")).unwrap();
    let (path, format) = ("'path' = '/tmp/sluice-nexmark/q10/bid'", "'format' = 'csv'");
    assert!(text.contains(path) && text.contains(format));
    let text = text
        .replace(path, "'path' = 'out'")
        .replace(format, "'format' = 'json'");
    for (shards, checkpoint) in [(1, ""), (3, "[checkpoint]\ninterval_ms = 200\n")] {
        let hand = support::run_job("q10", shards, "events_per_second = 200", "");
        let want = partitions(&hand.path().join("out"), &["dt", "hm"]);
        assert!(want.len() >= 5, "q10: {} partitions", want.len());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nexmark.sql"), nexmark_ddl(Some(200))).unwrap();
        std::fs::write(dir.path().join("q10.sql"), &text).unwrap();
        let job = dir.path().join("job.toml");
        std::fs::write(
            &job,
            format!("shards = {shards}\nsql_file = [\"nexmark.sql\", \"q10.sql\"]\n{checkpoint}"),
        )
        .unwrap();
        sluice_succeeds("run", &job);
        let got = partitions(&dir.path().join("out"), &[]);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "q10 partitions on {shards} shard(s)"
        );
        for (partition, (rows, marked)) in &got {
            assert!(*marked, "{partition} has no _SUCCESS");
            assert!(
                want[partition] == (rows.clone(), true),
                "{partition} on {shards} shard(s) differs"
            );
        }
    }
}

/// q11 with Flink's SESSION table function (partitioned by bidder) in
/// place of the group window: the same sessions.
#[test]
fn q11_with_the_session_table_function_equals_the_hand_written_job() {
    let text = std::fs::read_to_string(examples().join("q11.sql")).unwrap();
    let group_window = "    SESSION_START(B.dateTime, INTERVAL '10' SECOND) as starttime,\n    SESSION_END(B.dateTime, INTERVAL '10' SECOND) as endtime\nFROM bid B\nGROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND);";
    assert!(text.contains(group_window));
    let text = text.replace(
        group_window,
        "    window_start as starttime,\n    window_end as endtime\nFROM TABLE(SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) B\nGROUP BY B.bidder, window_start, window_end;",
    );
    for shards in [1, 3] {
        let want = sorted(read_lines(
            &support::run_job("q11", shards, "", "").path().join("out"),
        ));
        assert!(want.len() >= 1_000, "q11: {} rows", want.len());
        let got = sorted(run_sql_text_in_order("q11", &text, shards, None));
        assert_eq!(got.len(), want.len(), "q11 on {shards} shard(s)");
        if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
            panic!("q11 on {shards} shard(s): SQL gave {g}, the hand-written job {w}");
        }
    }
}

#[test]
fn q14_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written("q14", 1_000);
}

#[test]
fn q20_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written("q20", 1_000);
}

#[test]
fn q21_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written("q21", 1_000);
}

#[test]
fn q22_in_sql_equals_the_hand_written_job() {
    assert_sql_matches_hand_written("q22", 90_000);
}

/// The last row of every key of an upsert stream, in file order (a key's
/// rows come from one shard, in the order it emitted them).
fn last_rows(rows: &[Value], key: &[&str]) -> std::collections::BTreeMap<String, Value> {
    let mut last = std::collections::BTreeMap::new();
    for row in rows {
        let k: Vec<String> = key.iter().map(|k| row[*k].to_string()).collect();
        last.insert(k.join("|"), row.clone());
    }
    last
}

/// A Top-N or deduplication's upsert stream against the hand-written
/// job's: row for row on one shard, and as the final table keyed by `key`
/// on three (both break ties in the same total order, so the final tables
/// are equal on any number of shards).
fn assert_sql_final_table_matches_hand_written(query: &str, key: &[&str], min_keys: usize) {
    assert_sql_final_table_matches(query, key, min_keys, true)
}

/// The same, without comparing the streams when the hand-written job
/// emits only final rows (`same_stream` false: q9 writes an auction once,
/// when it expires; the SQL job each time its winner changes).
fn assert_sql_final_table_matches(query: &str, key: &[&str], min_keys: usize, same_stream: bool) {
    for shards in [1, 3] {
        let want_stream = support::run_in_order(query, shards, "");
        let got_stream = run_sql_in_order(query, shards, None);
        // On one shard the rows arrive in one order: the streams are equal.
        if shards == 1 && same_stream {
            assert_eq!(got_stream.len(), want_stream.len(), "{query} on 1 shard");
            if let Some((g, w)) = got_stream.iter().zip(&want_stream).find(|(g, w)| g != w) {
                panic!("{query} on 1 shard: SQL gave {g}, the hand-written job {w}");
            }
        }
        let want = last_rows(&want_stream, key);
        let got = last_rows(&got_stream, key);
        assert!(want.len() >= min_keys, "{query}: {} keys", want.len());
        assert_eq!(got.len(), want.len(), "{query} on {shards} shard(s)");
        if let Some(((k, g), (_, w))) = got.iter().zip(&want).find(|(g, w)| g != w) {
            panic!("{query} on {shards} shard(s), key {k}: SQL ends with {g}, the hand-written job with {w}");
        }
    }
}

/// An aggregation over another's upserts: the SQL job updates a category
/// each time one of its auctions' highest bid rises (retracting the old
/// price), the hand-written job once per auction, when it closes; the
/// final averages agree.
#[test]
fn q4_in_sql_ends_with_the_hand_written_jobs_table() {
    assert_sql_final_table_matches("q4", &["id"], 5, false);
}

#[test]
fn q9_in_sql_ends_with_the_hand_written_jobs_table() {
    assert_sql_final_table_matches("q9", &["id"], 1_000, false);
}

#[test]
fn q18_in_sql_ends_with_the_hand_written_jobs_table() {
    assert_sql_final_table_matches_hand_written("q18", &["bidder", "auction"], 10_000);
}

#[test]
fn q19_in_sql_ends_with_the_hand_written_jobs_table() {
    assert_sql_final_table_matches_hand_written("q19", &["auction", "rank_number"], 10_000);
}

/// The final row of every group of an upsert stream keyed by `key`: the
/// one with the most `total_bids` (which grows by one with every update of
/// q15–q17's groups).
fn final_rows(rows: &[Value], key: &[&str]) -> std::collections::BTreeMap<String, Value> {
    let mut last = std::collections::BTreeMap::<String, Value>::new();
    for row in rows {
        let k: Vec<String> = key.iter().map(|f| row[*f].to_string()).collect();
        let entry = last.entry(k.join("|")).or_insert_with(|| row.clone());
        if row["total_bids"].as_u64() > entry["total_bids"].as_u64() {
            *entry = row.clone();
        }
    }
    last
}

/// An unbounded GROUP BY's upsert stream against the hand-written job's:
/// every bid changes its group's `total_bids`, so both emit an update per
/// bid (Flink too). On one shard the bids reach the aggregation in one
/// order and the streams are equal row for row; on three, bids of a group
/// from different sources interleave differently from run to run, so only
/// the final row of each group is compared.
fn assert_sql_upserts_match_hand_written(query: &str, key: &[&str], min_groups: usize) {
    for shards in [1, 3] {
        let want = run(query, shards, "");
        let got = run_sql(query, shards, None);
        assert_eq!(got.len(), want.len(), "{query} on {shards} shard(s)");
        if shards == 1 {
            if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
                panic!("{query} on 1 shard: SQL gave {g}, the hand-written job {w}");
            }
        }
        let (got, want) = (final_rows(&got, key), final_rows(&want, key));
        assert!(want.len() >= min_groups, "{query}: {} groups", want.len());
        assert_eq!(got.len(), want.len(), "{query} groups on {shards} shard(s)");
        for (k, w) in &want {
            assert_eq!(
                got.get(k),
                Some(w),
                "{query} group {k} on {shards} shard(s)"
            );
        }
    }
}

#[test]
fn q15_in_sql_equals_the_hand_written_job() {
    assert_sql_upserts_match_hand_written("q15", &["day"], 1);
}

#[test]
fn q16_in_sql_equals_the_hand_written_job() {
    assert_sql_upserts_match_hand_written("q16", &["channel", "day"], 4);
}

#[test]
fn q17_in_sql_equals_the_hand_written_job() {
    assert_sql_upserts_match_hand_written("q17", &["auction", "day"], 1_000);
}

/// A generator table with a stdout sink, then `query` (one line per statement).
const GENERATOR_TABLE: &str = "CREATE TABLE events (seq BIGINT, `key` BIGINT, `value` BIGINT, ts TIMESTAMP(3),\n    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND\n) WITH ('connector' = 'generator', 'events' = '100');\nCREATE TABLE out (k BIGINT, v BIGINT) WITH ('connector' = 'filesystem', 'path' = 'out');\n";

/// `sluice run <job>`: its exit code and standard error.
fn sluice_run(job: &Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(job)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

/// Runs `sluice run` on a job file whose `sql` is `script`; expects exit
/// code 2, no output, and a message `job.toml:<line>:<column>: …` that
/// contains `message` (else says what it got).
fn check_refused(script: &str, line: u64, column: u64, message: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    // The script starts on the job file's line 3.
    std::fs::write(&job, format!("shards = 1\nsql = \"\"\"\n{script}\"\"\"\n")).unwrap();
    let (code, stderr) = sluice_run(&job);
    let at = format!("job.toml:{}:{column}: ", line + 2);
    if code != Some(2)
        || dir.path().join("out").exists()
        || !stderr.contains(&at)
        || !stderr.contains(message)
    {
        return Err(format!(
            "expected exit 2, no output and `{at}… {message}…` for\n{script}got {:?}: {stderr}",
            code
        ));
    }
    Ok(())
}

#[test]
fn malformed_sql_jobs_are_refused_at_their_line_and_column() {
    let g = GENERATOR_TABLE;
    // (script, line in the script, column, message)
    let mut cases: Vec<(String, u64, u64, &str)> = vec![
        // Syntax.
        (format!("{g}INSERT INTO out SELEC `key`, `value` FROM events;\n"), 5, 17, "SELEC"),
        (format!("{g}INSERT INTO out SELECT `key`, FROM events;\n"), 5, 31, "FROM"),
        (format!("{g}INSERT INTO out SELECT (`key`, `value` FROM events;\n"), 5, 40, "Expected: ), found: FROM"),
        ("CREATE TABLE t (a BIGINT,) WITH ('connector' = 'generator');\n".into(), 1, 26, ")"),
        ("CREATE TABLE t (a BIGNUM) WITH ('connector' = 'generator');\n".into(), 1, 19, "BIGNUM"),
        // Names.
        (format!("{g}INSERT INTO out SELECT `key`, valu FROM events;\n"), 5, 31, "valu"),
        (format!("{g}INSERT INTO out SELECT `key`, `value` FROM evnts;\n"), 5, 44, "evnts"),
        (format!("{g}INSERT INTO outt SELECT `key`, `value` FROM events;\n"), 5, 1, "unknown table `outt`"),
        (format!("{g}INSERT INTO out SELECT `key`, frobnicate(`value`) FROM events;\n"), 5, 31, "frobnicate"),
        (format!("{g}INSERT INTO out SELECT e.`key`, x.`value` FROM events e;\n"), 5, 33, "unknown column `x.value`"),
        ("CREATE FUNCTION f AS 'com.example.Nope';\n".into(), 1, 1, "no function of that name"),
        // Types.
        (format!("{g}INSERT INTO out SELECT `key`, `value` FROM events WHERE `key` + 1;\n"), 5, 57, "WHERE needs a BOOLEAN condition, found BIGINT"),
        (format!("{g}INSERT INTO out SELECT `key`, UPPER(`value`) FROM events;\n"), 5, 37, "found BIGINT"),
        (format!("{g}INSERT INTO out SELECT `key`, 'seven' FROM events;\n"), 5, 1, "column `v` is BIGINT"),
        (format!("{g}INSERT INTO out SELECT `key` FROM events;\n"), 5, 1, "yields 1 column(s)"),
        (format!("{g}INSERT INTO out SELECT `key`, `value` FROM events WHERE ts > 5;\n"), 5, 57, "cannot compare TIMESTAMP(3) with INT"),
        // Unsupported or not allowed.
        (format!("{g}INSERT INTO out SELECT `key`, `value` FROM events GROUP BY `key`;\n"), 5, 31, "expression `value` is not being grouped"),
        (format!("{g}INSERT INTO out SELECT `key`, COUNT(DISTINCT *) FROM events GROUP BY `key`;\n"), 5, 31, "COUNT(DISTINCT *) is not SQL"),
        (format!("{g}INSERT INTO out SELECT `key`, SUM(ts) FROM events GROUP BY `key`;\n"), 5, 31, "SUM takes a number, found TIMESTAMP(3)"),
        (format!("{g}INSERT INTO out SELECT `key`, `value` FROM events WHERE COUNT(*) > 1;\n"), 5, 57, "aggregate function COUNT is not allowed here"),
        (format!("{g}INSERT INTO out SELECT `key`, COUNT(*) FROM events GROUP BY `key` HAVING COUNT(*) > 1;\n"), 5, 74, "HAVING on an unbounded GROUP BY"),
        (format!("{g}INSERT INTO out SELECT k, c FROM (SELECT `key` AS k, COUNT(*) AS c FROM events GROUP BY `key`) WHERE c > 1;\n"), 5, 17, "WHERE over an updating table"),
        (format!("{g}INSERT INTO out SELECT k, MAX(c) FROM (SELECT `key` AS k, COUNT(*) AS c FROM events GROUP BY `key`) GROUP BY k;\n"), 5, 17, "`MAX(c)` over the result of an unbounded GROUP BY (an updating table): only COUNT, SUM and AVG"),
        (format!("{g}INSERT INTO out SELECT c, COUNT(*) FROM (SELECT `key` AS k, COUNT(*) AS c FROM events GROUP BY `key`) GROUP BY c;\n"), 5, 17, "GROUP BY `c` over the result of an unbounded GROUP BY (an updating table) that is not grouped by it: group by columns of its key (key)"),
        (format!("{g}INSERT INTO out SELECT `key`, `value` FROM events ORDER BY `key`;\n"), 5, 17, "ORDER BY"),
        (format!("{g}INSERT INTO out SELECT `key`, COUNT(*) FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '3' SECOND, INTERVAL '10' SECOND)) GROUP BY `key`, window_start, window_end;\n"), 5, 51, "HOP needs a size that is a whole multiple of the slide"),
        (format!("{g}INSERT INTO out SELECT `key`, COUNT(*) FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY `key`, window_start;\n"), 5, 120, "must group by both window_start and window_end"),
        (format!("{g}INSERT INTO out SELECT `key`, COUNT(*) FROM events GROUP BY `key`, TUMBLE(`value`, INTERVAL '10' SECOND);\n"), 5, 75, "TUMBLE's first argument `value` must be the event-time attribute"),
        (format!("{g}INSERT INTO out SELECT a.`key`, b.`value` FROM events a LEFT JOIN events b ON a.seq = b.seq;\n"), 5, 67, "LEFT JOIN (an outer join) is not supported yet"),
        (format!("{g}INSERT INTO out SELECT a.`key`, b.`value` FROM events a, events b WHERE a.seq < b.seq;\n"), 5, 58, "a join without an equality between a column of each side"),
        (format!("{g}INSERT INTO out SELECT `key`, `value` FROM (SELECT `key`, `value`, ROW_NUMBER() OVER (PARTITION BY `key` ORDER BY `value`) AS rn FROM events);\n"), 5, 68, "ROW_NUMBER() without a bound on it"),
        // Lookup joins (FOR SYSTEM_TIME AS OF).
        (format!("{g}INSERT INTO out SELECT e.`key`, l.`value` FROM events e JOIN events FOR SYSTEM_TIME AS OF e.ts AS l ON e.seq = l.seq;\n"), 5, 91, "FOR SYSTEM_TIME AS OF an event-time attribute (a temporal join against a versioned table"),
        (format!("{g}INSERT INTO out SELECT e.`key`, l.`value` FROM events e JOIN events FOR SYSTEM_TIME AS OF e.seq AS l ON e.seq = l.seq;\n"), 5, 91, "needs a processing-time attribute (a column defined as PROCTIME()), and `seq` is not one"),
        (format!("{g}INSERT INTO out SELECT e.`key`, l.`value` FROM (SELECT *, PROCTIME() AS pt FROM events) e JOIN events FOR SYSTEM_TIME AS OF e.pt AS l ON e.seq < l.seq;\n"), 5, 96, "a lookup join needs an equality between a column of `events`"),
        (format!("{g}INSERT INTO out SELECT e.`key`, l.`value` FROM (SELECT *, PROCTIME() AS pt FROM events) e JOIN events FOR SYSTEM_TIME AS OF e.pt AS l ON e.seq = l.seq;\n"), 3, 9, "a lookup table is a 'filesystem' table, read whole when the job starts (connector 'generator' is a stream)"),
        (format!("{g}INSERT INTO out SELECT l.`key`, l.`value` FROM events FOR SYSTEM_TIME AS OF ts AS l;\n"), 5, 48, "FOR SYSTEM_TIME AS OF outside JOIN … ON"),
        // Partitioned file sinks.
        (format!("{g}CREATE TABLE p (k BIGINT, d STRING) PARTITIONED BY (d) WITH ('connector' = 'filesystem', 'path' = 'out', 'sink.partition-commit.trigger' = 'process-time', 'sink.partition-commit.policy.kind' = 'success-file');\nINSERT INTO p SELECT seq, DATE_FORMAT(ts, 'yyyy-MM-dd') FROM events;\n"), 5, 106, "option 'sink.partition-commit.trigger' is 'process-time'"),
        (format!("{g}CREATE TABLE p (k BIGINT, d STRING) PARTITIONED BY (d) WITH ('connector' = 'filesystem', 'path' = 'out', 'sink.partition-commit.trigger' = 'partition-time', 'partition.time-extractor.timestamp-pattern' = '$day 00:00:00', 'sink.partition-commit.policy.kind' = 'success-file');\nINSERT INTO p SELECT seq, DATE_FORMAT(ts, 'yyyy-MM-dd') FROM events;\n"), 5, 158, "names `$day`, which is not a partition column (they are d)"),
        (format!("{g}CREATE TABLE p (k BIGINT, d STRING) WITH ('connector' = 'filesystem', 'path' = 'out', 'sink.partition-commit.delay' = '1 min');\nINSERT INTO p SELECT seq, DATE_FORMAT(ts, 'yyyy-MM-dd') FROM events;\n"), 5, 87, "option 'sink.partition-commit.delay' applies to a table PARTITIONED BY columns"),
        (format!("{g}CREATE TABLE p (k BIGINT, d STRING) PARTITIONED BY (d) WITH ('connector' = 'blackhole', 'sink.partition-commit.trigger' = 'partition-time', 'sink.partition-commit.policy.kind' = 'success-file');\nINSERT INTO p SELECT seq, DATE_FORMAT(ts, 'yyyy-MM-dd') FROM events;\n"), 5, 62, "PARTITIONED BY applies to 'filesystem' sink tables"),
        (format!("{g}CREATE TABLE p (k BIGINT, d STRING) PARTITIONED BY (d) WITH ('connector' = 'filesystem', 'path' = 'out', 'sink.partition-commit.trigger' = 'partition-time', 'sink.partition-commit.policy.kind' = 'success-file', 'sink.partition-commit.delay' = 'soon');\nINSERT INTO p SELECT seq, DATE_FORMAT(ts, 'yyyy-MM-dd') FROM events;\n"), 5, 212, "option 'sink.partition-commit.delay' is 'soon', expected a duration"),
        // Windows of the processing time.
        (format!("{g}CREATE VIEW p AS SELECT *, PROCTIME() AS pt FROM events;\nINSERT INTO out SELECT `key`, COUNT(*) FROM TABLE(TUMBLE(TABLE p, DESCRIPTOR(pt), INTERVAL '1' SECOND)) GROUP BY `key`, window_start, window_end;\nINSERT INTO out SELECT `key`, COUNT(*) FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY `key`, window_start, window_end;\n"), 7, 1, "table `events` is windowed by its processing time (PROCTIME()) and by its event time in this job"),
        (format!("{g}SELECT `key`, `value` FROM events;\n"), 5, 1, "INSERT INTO sink_table"),
        (format!("{g}INSERT INTO events SELECT seq, `key`, `value`, ts FROM events;\n"), 5, 1, "both read and written"),
        (g.to_owned(), 1, 1, "no INSERT INTO"),
        // Connector options.
        ("CREATE TABLE e (seq BIGINT) WITH ('connector' = 'generator', 'events' = 'many');\nCREATE TABLE out (seq BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT seq FROM e;\n".into(), 1, 62, "option 'events'"),
        ("CREATE TABLE e (seq BIGINT) WITH ('connector' = 'generator', 'evnts' = '5');\nCREATE TABLE out (seq BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT seq FROM e;\n".into(), 1, 62, "unknown field `evnts`"),
        ("CREATE TABLE e (seq BIGINT) WITH ('connector' = 'pulsar');\nCREATE TABLE out (seq BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT seq FROM e;\n".into(), 1, 35, "\"pulsar\""),
        ("CREATE TABLE e (sequence BIGINT) WITH ('connector' = 'generator');\nCREATE TABLE out (seq BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT sequence FROM e;\n".into(), 1, 17, "connector 'generator' has no column `sequence`"),
        ("CREATE TABLE e (seq INT) WITH ('connector' = 'generator');\nCREATE TABLE out (seq BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT seq FROM e;\n".into(), 1, 17, "is BIGINT, not INT"),
        ("CREATE TABLE e (seq BIGINT) WITH ('connector' = 'generator');\nCREATE TABLE out (seq BIGINT) WITH ('connector' = 'filesystem');\nINSERT INTO out SELECT seq FROM e;\n".into(), 2, 1, "option 'path' is missing"),
        ("CREATE TABLE e (seq BIGINT) WITH ('connector' = 'filesystem', 'path' = 'job.toml', 'format' = 'text');\nCREATE TABLE out (seq BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT seq FROM e;\n".into(), 1, 84, "'json' or 'csv'"),
        ("CREATE TABLE e (seq BIGINT) WITH ('connector' = 'filesystem', 'path' = 'nowhere.csv', 'format' = 'csv');\nCREATE TABLE out (seq BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT seq FROM e;\n".into(), 1, 63, "option 'path'"),
        ("CREATE TABLE e (seq BIGINT) WITH ('connector' = 'generator', 'out_of_orderness_ms' = '5');\nCREATE TABLE out (seq BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT seq FROM e;\n".into(), 1, 62, "WATERMARK"),
    ];
    // Kafka tables, in Flink's option names (nothing is connected to).
    let column_of = |script: &str, line: usize, option: &str| {
        let text = script.lines().nth(line - 1).unwrap();
        text.find(option)
            .unwrap_or_else(|| panic!("{option} in {text}")) as u64
            + 1
    };
    let kafka_source = |options: &str| {
        format!(
            "CREATE TABLE k (seq BIGINT) WITH ('connector' = 'kafka', 'topic' = 'in', 'properties.bootstrap.servers' = '127.0.0.1:1'{options});\n\
             CREATE TABLE out (seq BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT seq FROM k;\n"
        )
    };
    for (options, at, message) in [
        (", 'scan.startup.mode' = 'specific-offsets'", "'scan.startup.mode'", "option 'scan.startup.mode' is 'specific-offsets', expected 'earliest-offset', 'latest-offset', 'group-offsets' or 'timestamp'"),
        (", 'scan.startup.mode' = 'timestamp'", "'scan.startup.mode'", "option 'scan.startup.mode' is 'timestamp': give 'scan.startup.timestamp-millis'"),
        (", 'scan.bounded.mode' = 'group-offsets'", "'scan.bounded.mode'", "expected 'unbounded' or 'latest-offset'"),
        (", 'topics' = '[\"in\"]'", "'topic'", "option 'topic' and option 'topics' say the same: give one"),
        (", 'value.format' = 'raw'", "'value.format'", "option 'value.format' of a SQL table is 'json' or 'csv'"),
        (", 'format' = 'avro'", "'format'", "option 'format' is \"avro\", expected \"jsonl\", \"csv\""),
        (", 'timestamps' = 'record'", "'timestamps'", "option 'timestamps' does not apply to SQL tables"),
        (", 'key.fields' = 'seq'", "'key.fields'", "a source table's columns are read from the message value"),
        (", 'scan.topic-partition-discovery.interval' = 'often'", "'scan.topic-partition-discovery.interval'", "is 'often', expected a duration"),
        (", 'json.ignore-parse-errors' = 'maybe'", "'json.ignore-parse-errors'", "is 'maybe', expected 'true' or 'false'"),
    ] {
        let script = kafka_source(options);
        let column = column_of(&script, 1, at);
        cases.push((script, 1, column, message));
    }
    cases.push((
        "CREATE TABLE k (seq BIGINT) WITH ('connector' = 'kafka', 'topic' = 'in');\nCREATE TABLE out (seq BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT seq FROM k;\n".into(),
        1,
        1,
        "option 'properties.bootstrap.servers' (or 'bootstrap_servers') is missing",
    ));
    let kafka_sink = |options: &str| {
        format!(
            "CREATE TABLE e (seq BIGINT) WITH ('connector' = 'generator');\n\
             CREATE TABLE out (seq BIGINT) WITH ('connector' = 'kafka', 'topic' = 'out', 'properties.bootstrap.servers' = '127.0.0.1:1'{options});\n\
             INSERT INTO out SELECT seq FROM e;\n"
        )
    };
    for (options, at, message) in [
        (", 'key.fields' = 'sq'", "'key.fields'", "option 'key.fields' names `sq`, which is not a column the table is written with (seq)"),
        (", 'key.format' = 'csv', 'key.fields' = 'seq'", "'key.format'", "option 'key.format' is 'csv'"),
        (", 'sink.delivery-guarantee' = 'exactly-once'", "'sink.delivery-guarantee'", "option 'sink.delivery-guarantee' is \"exactly-once\", which commits records when checkpoints complete"),
        (", 'scan.startup.mode' = 'earliest-offset'", "'scan.startup.mode'", "option 'scan.startup.mode' applies to tables the job reads"),
    ] {
        let script = kafka_sink(options);
        let column = column_of(&script, 2, at);
        cases.push((script, 2, column, message));
    }
    assert!(cases.len() >= 20);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(script, line, column, message)| {
            check_refused(script, *line, *column, message).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `examples/sql_generator.toml` (the README's SQL example) prints exactly
/// the generated events its WHERE keeps, projected.
#[test]
fn the_readme_sql_example_prints_what_its_query_selects() {
    use sluice_engine::connectors::GeneratorSource;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sql_generator.toml");
    let output = sluice_succeeds("run", &example);
    let got = sorted(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    );
    let generator = GeneratorSource {
        seed: 7,
        events: Some(100_000),
        keys: 100,
        ..Default::default()
    };
    let want = sorted(
        (0..100_000)
            .map(|i| generator.event(i))
            .filter(|e| e.value > 900)
            .map(|e| serde_json::json!({"key": e.key, "doubled": 2 * e.value}))
            .collect(),
    );
    assert!(want.len() > 1_000, "{} rows", want.len());
    assert_eq!(got, want);
}

/// q6 averages over an OVER window of Top-1 rows, an updating table, which
/// Flink's OVER aggregation does not read (the Nexmark repository marks it
/// unsupported): Sluice refuses it by name at the OVER aggregate, exit 2.
#[test]
fn q6_in_sql_is_refused_as_flink_refuses_it() {
    let job = examples().join("q6.toml");
    let (code, stderr) = sluice_run(&job);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("q6.sql:31:5: AVG(…) OVER (an OVER aggregation) over an updating table (the result of an unbounded GROUP BY or a Top-N) is not supported: an OVER aggregation reads append-only rows, and Flink refuses it too"),
        "{stderr}"
    );
}

/// Every example Nexmark SQL job compiles, and `sluice explain` shows its
/// fused stateless step over the one source.
#[test]
fn every_example_sql_job_explains() {
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        // q6 is refused, as Flink refuses it (its own test below).
        if path.extension().is_some_and(|e| e == "toml") && !path.ends_with("q6.toml") {
            let output = sluice_succeeds("explain", &path);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                // q12 keeps the reference's `discard_sink`.
                (stdout.contains("Sink nexmark_q") || stdout.contains("Sink discard_sink"))
                    && stdout.contains("Source datagen reads ["),
                "{}: {stdout}",
                path.display()
            );
            // A grouped query shows its exchange on the keys and its state.
            if path.ends_with("q17.toml") {
                assert!(
                    stdout
                        .contains("Exchange key_by [auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd')]")
                        && stdout.contains("GroupAggregate [count(*), ")
                        && stdout.contains("keyed state: accumulators per group; emits upserts"),
                    "{stdout}"
                );
            }
            // A join shows both exchanges; q5's second count of the same
            // windows is the first one, reused.
            if path.ends_with("q5.toml") {
                assert!(
                    stdout.contains("Join inner on [AuctionBids.starttime = MaxBids.starttime, AuctionBids.endtime = MaxBids.endtime]")
                        && stdout.contains("Exchange key_by [MaxBids.starttime, MaxBids.endtime]")
                        && stdout.matches("[count(*)] (keyed state").count() == 1
                        && stdout.contains("Reused: the same WindowAggregate HOP(slide 2000 ms, size 10000 ms) by [auction] [count(*)] as above"),
                    "{stdout}"
                );
            }
        }
    }
}

/// Orders as a JSON table reads them and as a CSV table does: `(id, name,
/// amount, ts)`, names and amounts sometimes missing.
fn orders(count: u64) -> Vec<(u64, Option<String>, Option<f64>, String)> {
    (0..count)
        .map(|id| {
            let name = (id % 7 != 0).then(|| format!("name, {}", id % 13));
            let amount = (id % 11 != 0).then(|| (id * 37 % 100) as f64 + 0.5);
            let ts = format!(
                "2024-01-02 03:{:02}:{:02}.{:03}",
                id / 60 % 60,
                id % 60,
                id % 1000
            );
            (id, name, amount, ts)
        })
        .collect()
}

/// A JSON lines table (nested field, watermark, several splits) and a CSV
/// table feed one sink on 3 shards: the output is exactly the rows the
/// WHERE keeps, projected, with NULLs where fields are missing or empty.
#[test]
fn json_and_csv_file_tables_are_read_by_their_columns() {
    let dir = tempfile::tempdir().unwrap();
    let all = orders(3_000);
    let (json_orders, csv_orders) = all.split_at(1_500);
    let mut json = String::new();
    for (id, name, amount, ts) in json_orders {
        let mut line = serde_json::json!({"id": id, "customer": {"name": name}, "ts": ts});
        if let Some(amount) = amount {
            // Numbers as JSON numbers and as text, as Flink's JSON format reads both.
            line["amount"] = if id % 2 == 0 {
                serde_json::json!(amount)
            } else {
                serde_json::json!(amount.to_string())
            };
        }
        json.push_str(&format!("{line}\n"));
    }
    let mut csv = String::new();
    for (id, name, amount, ts) in csv_orders {
        let name = name
            .as_deref()
            .map_or(String::new(), |n| format!("\"{n}\""));
        let amount = amount.map_or(String::new(), |a| a.to_string());
        csv.push_str(&format!("{id},{name},{amount},{ts}\n"));
    }
    std::fs::write(dir.path().join("orders.jsonl"), json).unwrap();
    std::fs::write(dir.path().join("orders.csv"), csv).unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        r#"shards = 3
sql = """
CREATE TABLE j (id BIGINT, customer ROW<name VARCHAR>, amount DOUBLE, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'filesystem', 'path' = 'orders.jsonl', 'format' = 'json', 'split_bytes' = '9000');
CREATE TABLE c (id BIGINT, name VARCHAR, amount DOUBLE, ts TIMESTAMP(3))
  WITH ('connector' = 'filesystem', 'path' = 'orders.csv', 'format' = 'csv', 'split_bytes' = '9000');
CREATE TABLE out (id BIGINT, name VARCHAR, doubled DOUBLE, at_ms BIGINT)
  WITH ('connector' = 'filesystem', 'path' = 'out', 'format' = 'json');
INSERT INTO out SELECT id, customer.name, amount * 2, EXTRACT(SECOND FROM ts) FROM j WHERE amount > 40 OR customer.name IS NULL;
INSERT INTO out SELECT id, name, amount * 2, EXTRACT(SECOND FROM ts) FROM c WHERE amount > 40 OR name IS NULL;
"""
"#,
    )
    .unwrap();
    sluice_succeeds("run", &job);
    let got = sorted(read_lines(&dir.path().join("out")));
    // An empty CSV field is an empty VARCHAR (NULL for other types).
    let csv_read = csv_orders.iter().map(|(id, name, amount, ts)| {
        (
            *id,
            Some(name.clone().unwrap_or_default()),
            *amount,
            ts.clone(),
        )
    });
    let want = sorted(
        (json_orders.iter().cloned().chain(csv_read))
            .filter(|(_, name, amount, _)| amount.is_some_and(|a| a > 40.0) || name.is_none())
            .map(|(id, name, amount, _)| {
                serde_json::json!({"id": id, "name": name, "doubled": amount.map(|a| a * 2.0), "at_ms": id % 60})
            })
            .collect(),
    );
    assert!(want.len() > 1_000, "{} rows", want.len());
    assert_eq!(got.len(), want.len());
    if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
        panic!("read {g}, expected {w}");
    }
}

/// A lookup table read whole: each streamed row joined with every row of
/// its key (a computed key on the stream's side, a PROCTIME() column of
/// the table), rows without a match and NULL keys dropped, a condition on
/// the table's rows applied; a bad line of the file refuses the job,
/// naming file and line, unless the table skips bad records.
#[test]
fn a_lookup_table_is_read_whole_and_its_bad_line_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"id\": 10, \"k\": 0}\n{\"id\": 11, \"k\": 1}\n{\"id\": 12, \"k\": 5}\n{\"id\": 13, \"k\": 2}\n{\"id\": 14, \"k\": null}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("side.csv"),
        "1,one\n2,two\n2,deux\nx,bad\n,no key\n3,skip-me\n",
    )
    .unwrap();
    let job = |policy: &str| {
        format!(
            "shards = 2\nsql = \"\"\"\n\
             CREATE TABLE t (id BIGINT, k BIGINT, pt AS PROCTIME()) WITH ('connector' = 'filesystem', 'path' = 'in.jsonl', 'format' = 'json');\n\
             CREATE TABLE side (`key` BIGINT, name VARCHAR) WITH ('connector' = 'filesystem', 'path' = 'side.csv', 'format' = 'csv'{policy});\n\
             CREATE TABLE out (id BIGINT, name VARCHAR) WITH ('connector' = 'filesystem', 'path' = 'out', 'format' = 'json');\n\
             INSERT INTO out SELECT t.id, s.name FROM t JOIN side FOR SYSTEM_TIME AS OF t.pt AS s\n\
             ON t.k + 1 = s.`key` AND s.name <> 'skip-me';\n\"\"\"\n"
        )
    };
    let path = dir.path().join("job.toml");
    std::fs::write(&path, job("")).unwrap();
    let (code, stderr) = sluice_run(&path);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!dir.path().join("out").exists());
    assert!(
        stderr.contains("job.toml:4:82: table `side`:")
            && stderr.contains("side.csv:4: column `key`: cannot cast 'x' to BIGINT"),
        "{stderr}"
    );
    std::fs::write(&path, job(", 'on_bad_record' = 'skip'")).unwrap();
    sluice_succeeds("run", &path);
    assert_eq!(
        sorted(read_lines(&dir.path().join("out"))),
        sorted(vec![
            serde_json::json!({"id": 10, "name": "one"}),
            serde_json::json!({"id": 11, "name": "two"}),
            serde_json::json!({"id": 11, "name": "deux"}),
        ])
    );
}

/// A line that does not convert fails the job naming file, line and
/// column; `on_bad_record = skip` drops it and keeps the rest.
#[test]
fn a_bad_line_of_a_file_table_is_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"id\": 1}\n{\"id\": \"one\"}\n{\"id\": 3}\n",
    )
    .unwrap();
    let job = |policy: &str| {
        format!(
            "shards = 1\nsql = \"\"\"\nCREATE TABLE t (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 'in.jsonl', 'format' = 'json'{policy});\n\
             CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 'out', 'format' = 'json');\n\
             INSERT INTO out SELECT id FROM t;\n\"\"\"\n"
        )
    };
    let path = dir.path().join("job.toml");
    std::fs::write(&path, job("")).unwrap();
    let (code, stderr) = sluice_run(&path);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("in.jsonl:2: column `id`: cannot cast 'one' to BIGINT"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir.path().join("out")).ok();
    std::fs::write(&path, job(", 'on_bad_record' = 'skip'")).unwrap();
    sluice_succeeds("run", &path);
    assert_eq!(
        sorted(read_lines(&dir.path().join("out"))),
        vec![serde_json::json!({"id": 1}), serde_json::json!({"id": 3})]
    );
}
