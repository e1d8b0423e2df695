//! `sluice nexmark generate` writes exactly the events the generator produces.

use std::process::Command;

use sluice_engine::connectors::nexmark::{Bid, Event, NexmarkConfig, NexmarkGenerator};

mod support;

use support::{read_lines, sluice_succeeds, sorted};

fn generate(format: &str, events: u64, seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "nexmark",
            "generate",
            "--events",
            &events.to_string(),
            "--seed",
            &seed.to_string(),
            "--format",
            format,
            "--out",
        ])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

#[test]
fn jsonl_holds_every_event_in_order() {
    let dir = generate("jsonl", 5_000, 3);
    let text = std::fs::read_to_string(dir.path().join("out/events.jsonl")).unwrap();
    let got: Vec<Event> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut generator = NexmarkGenerator::new(NexmarkConfig {
        seed: 3,
        ..Default::default()
    });
    let want: Vec<Event> = (0..5_000).map(|n| generator.event(n)).collect();
    assert_eq!(got, want);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "person");
    assert!(
        first.get("emailAddress").is_some() && first.get("dateTime").is_some(),
        "{first}"
    );
}

#[test]
fn csv_has_one_file_per_kind_with_headers() {
    let dir = generate("csv", 5_000, 4);
    let count = |name: &str| {
        std::fs::read_to_string(dir.path().join("out").join(name))
            .unwrap()
            .lines()
            .count()
            - 1
    };
    assert_eq!(
        (count("person.csv"), count("auction.csv"), count("bid.csv")),
        (100, 300, 4_600)
    );
    let mut reader = csv::Reader::from_path(dir.path().join("out/bid.csv")).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["auction", "bidder", "price", "channel", "url", "dateTime", "extra"]
    );
    let bids: Vec<Bid> = reader.deserialize().map(|r| r.unwrap()).collect();
    let mut generator = NexmarkGenerator::new(NexmarkConfig {
        seed: 4,
        ..Default::default()
    });
    let want: Vec<Bid> = (0..5_000)
        .filter_map(|n| {
            if let Event::Bid(b) = generator.event(n) {
                Some(b)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(bids, want);
}

/// Runs the job file `text` in `dir` and returns its `out-<name>` lines, sorted.
fn run_job_in(dir: &std::path::Path, name: &str, text: &str) -> Vec<serde_json::Value> {
    let job = dir.join(format!("{name}.toml"));
    std::fs::write(&job, text).unwrap();
    sluice_succeeds("run", &job);
    sorted(read_lines(&dir.join(format!("out-{name}"))))
}

const FILE_EVENTS: u64 = 100_000;
const FILE_SEED: u64 = 8;

/// The hand-written queries read the generated file (`format = "nexmark"`)
/// and give what they give on the generator's events: a join (q3), sliding
/// windows (q5), a window join (q8), on one and two shards.
#[test]
fn hand_written_queries_over_the_generated_file_equal_the_generator() {
    let dir = generate("jsonl", FILE_EVENTS, FILE_SEED);
    let file = dir.path().join("out/events.jsonl");
    for (query, min_rows) in [("q3", 100), ("q5", 5), ("q8", 10)] {
        for shards in [1, 2] {
            let sink =
                |name: &str| format!("[sink]\nconnector = \"file\"\npath = \"out-{name}\"\n");
            let generated = format!("{query}-{shards}-generator");
            let want = run_job_in(
                dir.path(),
                &generated,
                &format!(
                    "job = \"nexmark.{query}\"\nshards = {shards}\n[source]\nconnector = \"nexmark\"\nevents = {FILE_EVENTS}\nseed = {FILE_SEED}\n{}",
                    sink(&generated)
                ),
            );
            let from_file = format!("{query}-{shards}-file");
            let got = run_job_in(
                dir.path(),
                &from_file,
                &format!(
                    "job = \"nexmark.{query}\"\nshards = {shards}\n[source]\nconnector = \"file\"\nformat = \"nexmark\"\npaths = [{:?}]\n{}",
                    file.display().to_string(),
                    sink(&from_file)
                ),
            );
            assert!(want.len() >= min_rows, "{query}: {} rows", want.len());
            assert_eq!(got, want, "{query} on {shards} shard(s)");
        }
    }
}

/// A SQL events table of connector 'filesystem' and format 'nexmark' has
/// the `nexmark` connector's columns and gives the same rows: q5 (windows
/// over event time) and q3 (a join) of examples/nexmark-sql.
#[test]
fn sql_over_the_generated_file_equals_the_nexmark_connector() {
    let dir = generate("jsonl", FILE_EVENTS, FILE_SEED);
    let file = dir.path().join("out/events.jsonl");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nexmark-sql");
    let ddl = std::fs::read_to_string(examples.join("nexmark.sql")).unwrap();
    let (connector, options) = ("'connector' = 'nexmark'", "'events' = '1000000'");
    assert!(ddl.contains(connector) && ddl.contains(options));
    let generated = ddl.replace(
        options,
        &format!("'events' = '{FILE_EVENTS}', 'seed' = '{FILE_SEED}'"),
    );
    let from_file = ddl
        .replace(connector, "'connector' = 'filesystem'")
        .replace(
            options,
            &format!("'format' = 'nexmark', 'path' = '{}'", file.display()),
        );
    for (query, min_rows) in [("q3", 100), ("q5", 5)] {
        let text = std::fs::read_to_string(examples.join(format!("{query}.sql"))).unwrap();
        let mut outputs = Vec::new();
        for (name, ddl) in [("generator", &generated), ("file", &from_file)] {
            let name = format!("sql-{query}-{name}");
            let sink =
                format!("'connector' = 'filesystem', 'path' = 'out-{name}', 'format' = 'jsonl'");
            let script = format!(
                "{ddl}\n{}",
                text.replace("'connector' = 'blackhole'", &sink)
            );
            std::fs::write(dir.path().join(format!("{name}.sql")), script).unwrap();
            outputs.push(run_job_in(
                dir.path(),
                &name,
                &format!("shards = 2\nsql_file = \"{name}.sql\"\n"),
            ));
        }
        assert!(
            outputs[0].len() >= min_rows,
            "{query}: {} rows",
            outputs[0].len()
        );
        assert_eq!(outputs[1], outputs[0], "{query} in SQL");
    }
}

/// A line of the events file that is no Nexmark event stops the job with
/// an error naming the file and line (the default `on_bad_record = "fail"`).
#[test]
fn a_bad_line_in_the_events_file_is_named() {
    let dir = generate("jsonl", 1_000, 1);
    let file = dir.path().join("out/events.jsonl");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("{\"type\": \"bid\", \"auction\": \"many\"}\n");
    std::fs::write(&file, text).unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"nexmark.q0\"\n[source]\nconnector = \"file\"\nformat = \"nexmark\"\npaths = [{:?}]\n[sink]\nconnector = \"blackhole\"\n",
            file.display().to_string()
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(&job)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("events.jsonl") && stderr.contains("1001"),
        "{stderr}"
    );
}
