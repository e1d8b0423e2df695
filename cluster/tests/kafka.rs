//! The Kafka connectors end to end: `sluice run` against a real Kafka-API
//! broker (tansu) on 127.0.0.1, results checked against the same records
//! read from a file or against plain computations done here.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::kafka::Broker;

fn sluice_run(job: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(job)
        .output()
        .unwrap()
}

fn read_parts(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        lines.extend(text.lines().map(str::to_owned));
    }
    lines.sort();
    lines
}

/// `n` events of the `windowed_aggregation` job as JSON lines: 40 keys,
/// times rising by 3 ms from 1 000 000 (so each of 8 round-robin partitions
/// is in time order).
fn events(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{{\"seq\":{i},\"key\":{},\"value\":{},\"ts\":{}}}",
                (i * 7) % 40,
                (i % 100) as i64 - 20,
                1_000_000 + 3 * i as i64
            )
        })
        .collect()
}

fn run_ok(job: &Path) -> String {
    let output = sluice_run(job);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{}: {stderr}", job.display());
    stderr
}

/// The same records from a topic of 8 partitions, read by 1, 2 and 4
/// shards up to the end offsets at start, make the same windows as from a
/// file.
#[test]
fn a_topic_read_by_1_2_and_4_shards_makes_the_windows_a_file_makes() {
    let broker = Broker::start();
    let events = events(20_000);
    broker.create_topic("events", 8);
    broker.produce("events", &events, |i| (i % 8) as i32, None);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let params = "[params]\nwindow = \"tumbling\"\nsize_ms = 1000\n";
    let file_job = dir.path().join("file.toml");
    std::fs::write(
        &file_job,
        format!(
            "job = \"windowed_aggregation\"\nshards = 1\n[source]\nconnector = \"file\"\npaths = [\"events.jsonl\"]\nformat = \"jsonl\"\n\
             [sink]\nconnector = \"file\"\npath = \"out-file\"\n{params}"
        ),
    )
    .unwrap();
    run_ok(&file_job);
    let expected = read_parts(&dir.path().join("out-file"));
    assert!(expected.len() > 1000, "{}", expected.len());
    for shards in [1, 2, 4] {
        let job = dir.path().join(format!("kafka-{shards}.toml"));
        std::fs::write(
            &job,
            format!(
                "job = \"windowed_aggregation\"\nshards = {shards}\n[source]\nconnector = \"kafka\"\nbootstrap_servers = \"{}\"\n\
                 topics = [\"events\"]\nformat = \"jsonl\"\nstop = \"latest\"\n\
                 [sink]\nconnector = \"file\"\npath = \"out-{shards}\"\n{params}",
                broker.bootstrap()
            ),
        )
        .unwrap();
        let stderr = run_ok(&job);
        assert!(stderr.contains("records in"), "{stderr}");
        let got = read_parts(&dir.path().join(format!("out-{shards}")));
        assert_eq!(got.len(), expected.len(), "{shards} shards");
        assert!(
            got == expected,
            "{shards} shards: windows differ from the file's"
        );
    }
}

/// A malformed record fails the job naming topic, partition and offset;
/// with `on_bad_record = "skip"` the job reads on.
#[test]
fn a_malformed_record_is_named_by_topic_partition_and_offset() {
    let broker = Broker::start();
    broker.create_topic("words", 2);
    let mut values: Vec<String> = events(10);
    values[5] = "{\"seq\": oops".into();
    // Record 5 is the third of partition 1: offset 2.
    broker.produce("words", &values, |i| (i % 2) as i32, None);
    let dir = tempfile::tempdir().unwrap();
    for policy in ["fail", "skip"] {
        let job = dir.path().join(format!("{policy}.toml"));
        std::fs::write(
            &job,
            format!(
                "job = \"windowed_aggregation\"\nshards = 2\n[source]\nconnector = \"kafka\"\nbootstrap_servers = \"{}\"\n\
                 topics = [\"words\"]\nstop = \"latest\"\non_bad_record = \"{policy}\"\n\
                 [sink]\nconnector = \"file\"\npath = \"out-{policy}\"\n",
                broker.bootstrap()
            ),
        )
        .unwrap();
        let output = sluice_run(&job);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("kafka topic `words` partition 1 offset 2"),
            "{policy}: {stderr}"
        );
        assert_eq!(
            output.status.success(),
            policy == "skip",
            "{policy}: {stderr}"
        );
    }
}

/// A topic that does not exist, and brokers that do not answer, are named
/// within the request timeout.
#[test]
fn a_missing_topic_and_an_unreachable_broker_are_clear_errors() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = unused.local_addr().unwrap().to_string();
    drop(unused);
    for (servers, expected) in [
        (
            broker.bootstrap(),
            "reading topic `absent`: no such topic".to_string(),
        ),
        (nobody.clone(), format!("kafka at {nobody}")),
    ] {
        let job = dir.path().join("job.toml");
        std::fs::write(
            &job,
            format!(
                "job = \"windowed_aggregation\"\n[source]\nconnector = \"kafka\"\nbootstrap_servers = \"{servers}\"\n\
                 topics = [\"absent\"]\nrequest_timeout_ms = 2000\n[sink]\nconnector = \"stdout\"\n"
            ),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let output = sluice_run(&job);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains(&expected), "{servers}: {stderr}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}

/// Kafka in and out: records a job writes to a topic at least once are all
/// there, keyed by the key fields.
#[test]
fn kafka_to_sluice_to_kafka_delivers_every_window() {
    let broker = Broker::start();
    let events = events(6_000);
    broker.create_topic("in", 4);
    broker.create_topic("out", 3);
    broker.produce("in", &events, |i| (i % 4) as i32, None);
    let dir = tempfile::tempdir().unwrap();
    let params = "[params]\nwindow = \"tumbling\"\nsize_ms = 1000\n";
    let file_job = dir.path().join("file.toml");
    std::fs::write(dir.path().join("events.jsonl"), events.join("\n") + "\n").unwrap();
    std::fs::write(
        &file_job,
        format!(
            "job = \"windowed_aggregation\"\nshards = 1\n[source]\nconnector = \"file\"\npaths = [\"events.jsonl\"]\nformat = \"jsonl\"\n\
             [sink]\nconnector = \"file\"\npath = \"out-file\"\n{params}"
        ),
    )
    .unwrap();
    run_ok(&file_job);
    let expected = read_parts(&dir.path().join("out-file"));
    let job = dir.path().join("kafka.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"windowed_aggregation\"\nshards = 2\n[source]\nconnector = \"kafka\"\nbootstrap_servers = \"{0}\"\n\
             topics = [\"in\"]\nstop = \"latest\"\n\
             [sink]\nconnector = \"kafka\"\nbootstrap_servers = \"{0}\"\ntopic = \"out\"\nkey_fields = [\"key\"]\n\
             delivery = \"at-least-once\"\n{params}",
            broker.bootstrap()
        ),
    )
    .unwrap();
    run_ok(&job);
    let records = broker.read_all("out");
    let mut got: Vec<String> = records.iter().map(|(_, _, v)| v.clone()).collect();
    got.sort();
    assert_eq!(got, expected);
    // One key, one partition.
    let mut partition_of_key = std::collections::BTreeMap::new();
    for (partition, _, value) in &records {
        let v: serde_json::Value = serde_json::from_str(value).unwrap();
        let previous = partition_of_key.insert(v["key"].as_u64().unwrap(), *partition);
        assert!(previous.is_none_or(|p| p == *partition), "{value}");
    }
}
