//! Helpers of the Nexmark query tests: the generator's events and running a
//! query through the `sluice` binary.

#![allow(dead_code)] // each test file uses a different part

pub mod browser;
pub mod cluster;
pub mod kafka;
pub mod proxy;
pub mod scrape;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::{channel, Receiver};

use serde_json::Value;
use sluice_engine::connectors::nexmark::{Bid, Event, NexmarkConfig, NexmarkGenerator};

pub const EVENTS: u64 = 100_000;
pub const SEED: u64 = 21;

/// The bids of the query tests' source.
pub fn bids() -> Vec<Bid> {
    bids_of(&all_events())
}

/// Runs `query` on `shards` shards and returns its output lines as JSON values, sorted.
pub fn run(query: &str, shards: u32, params: &str) -> Vec<Value> {
    sorted(run_in_order(query, shards, params))
}

/// Runs `query` and returns its output lines in file order (per shard file).
pub fn run_in_order(query: &str, shards: u32, params: &str) -> Vec<Value> {
    read_lines(&run_job(query, shards, "", params).path().join("out"))
}

/// Runs `query` with `events_per_second` of event time; output lines in file order.
pub fn run_at_rate(query: &str, shards: u32, events_per_second: u64, params: &str) -> Vec<Value> {
    let source = format!("events_per_second = {events_per_second}");
    read_lines(&run_job(query, shards, &source, params).path().join("out"))
}

/// Writes a job file for `query` (with `source` added to the source table) and
/// runs it; returns the directory with the job file and its `out` directory.
pub fn run_job(query: &str, shards: u32, source: &str, params: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"nexmark.{query}\"\nshards = {shards}\n[source]\nconnector = \"nexmark\"\nevents = {EVENTS}\nseed = {SEED}\n{source}\n\
             [sink]\nconnector = \"file\"\npath = \"out\"\n[params]\n{params}\n"
        ),
    )
    .unwrap();
    sluice_succeeds("run", &job);
    dir
}

/// Runs `sluice <command> <path>`, requires it to succeed, and returns its output.
pub fn sluice_succeeds(command: &str, path: &Path) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg(command)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "sluice {command} {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn read_lines(dir: &Path) -> Vec<Value> {
    let mut values = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        values.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    values
}

pub fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(|v| v.to_string());
    values
}

/// The events of the query tests' source.
pub fn all_events() -> Vec<Event> {
    events_at_rate(NexmarkConfig::default().first_event_rate)
}

/// The events of the query tests' source with `events_per_second` of event time.
pub fn events_at_rate(events_per_second: u64) -> Vec<Event> {
    let mut generator = NexmarkGenerator::new(NexmarkConfig {
        seed: SEED,
        first_event_rate: events_per_second,
        ..Default::default()
    });
    (0..EVENTS).map(|n| generator.event(n)).collect()
}

/// The bids among `events`.
pub fn bids_of(events: &[Event]) -> Vec<Bid> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Bid(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

/// The committed output lines of an exactly-once file sink's directory
/// (visible part files only; hidden pending and in-progress parts are not
/// output), sorted.
pub fn committed_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
            let text = std::fs::read_to_string(&path).unwrap();
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    lines.sort();
    lines
}

/// A job file of the cluster tests: a windowed aggregation (2 shards,
/// sliding 2 s windows every 0.5 s) over `events` generated events (seed
/// 11, 2,000 keys) into the exactly-once files of `sink`; `extra` goes at
/// the end of `[source]` (a `rate`, then sections of its own).
pub fn windowed_job(events: u64, sink: &str, extra: &str) -> String {
    format!(
        "job = \"windowed_aggregation\"\nshards = 2\nprogress = false\n\
         [source]\nconnector = \"generator\"\nevents = {events}\nkeys = 2_000\nseed = 11\n{extra}\n\
         [sink]\nconnector = \"file\"\npath = \"{sink}\"\n\
         [params]\nwindow = \"sliding\"\nsize_ms = 2_000\nslide_ms = 500\n"
    )
}

/// Asserts that `<dir>/out` committed exactly the lines of the clean run in
/// `<dir>/reference` (at least `min_lines` of them): nothing lost, nothing
/// twice. `what` names the run in the message.
pub fn assert_committed_as_reference(dir: &Path, min_lines: usize, what: &str) {
    let expected = committed_lines(&dir.join("reference"));
    assert!(expected.len() > min_lines, "{} lines", expected.len());
    let got = committed_lines(&dir.join("out"));
    assert_eq!(
        got.len(),
        expected.len(),
        "lines committed by {what} vs clean run"
    );
    assert!(
        got == expected,
        "{what} committed output that differs from the clean run"
    );
}

/// A job file running `examples/nexmark-sql/<query>.sql` on `shards` shards:
/// 600 000 events of seed 8 at 10 000 events per second of event time (plus
/// `source_options`, such as `, 'rate' = '100000'`), its blackhole sink
/// replaced by exactly-once files in `sink`, then the `checkpoint` sections.
pub fn nexmark_sql_job(
    query: &str,
    shards: u32,
    sink: &str,
    checkpoint: &str,
    source_options: &str,
) -> String {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nexmark-sql");
    let read = |name: &str| std::fs::read_to_string(examples.join(name)).unwrap();
    let events = "'events' = '1000000'";
    let ddl = read("nexmark.sql");
    assert!(ddl.contains(events));
    let ddl = ddl.replace(
        events,
        &format!(
            "'events' = '600000', 'seed' = '8', 'events_per_second' = '10000'{source_options}"
        ),
    );
    let blackhole = "'connector' = 'blackhole'";
    let text = read(&format!("{query}.sql"));
    assert!(
        text.contains(blackhole),
        "{query}.sql writes to a blackhole"
    );
    let text = text.replace(
        blackhole,
        &format!("'connector' = 'filesystem', 'path' = '{sink}', 'format' = 'jsonl'"),
    );
    format!(
        "shards = {shards}\nprogress = false\nsql = \"\"\"\n{ddl}\n{text}\n\"\"\"\n{checkpoint}"
    )
}

/// Per bucket directory under `root` (by path relative to it): its committed
/// lines, sorted, and whether its `_SUCCESS` marker is there. Hidden files
/// (parts pending or in progress) are not output.
pub fn committed_buckets(root: &Path) -> std::collections::BTreeMap<String, (Vec<String>, bool)> {
    let mut buckets = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let mut lines = Vec::new();
        let mut marked = false;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else if name == "_SUCCESS" {
                marked = true;
            } else if !name.starts_with('.') {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                lines.extend(text.lines().map(str::to_owned));
            }
        }
        if marked || !lines.is_empty() {
            lines.sort();
            let relative = dir.strip_prefix(root).unwrap().display().to_string();
            buckets.insert(relative, (lines, marked));
        }
    }
    buckets
}

/// The lines a child process writes to `output` (its stdout or stderr), as
/// they come, read on a thread of their own until it closes.
pub fn lines_of(output: impl Read + Send + 'static) -> Receiver<String> {
    let (lines, received) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}
