//! Bad job files: each gets exit code 2, a message naming the file, the field
//! and what is expected, and nothing starts (no output is written); `sluice
//! submit` of each fails the same way without contacting the coordinator.

use std::path::Path;
use std::process::Command;

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

const GOOD_SOURCE: &str = "[source]\nconnector = \"generator\"\nevents = 1000\n";
const GOOD_SINK: &str = "[sink]\nconnector = \"file\"\npath = \"out\"\n";

/// Runs `sluice run` on `text` and returns (exit code, stderr); checks that no
/// output directory was created.
fn run_bad(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("words.txt"), "some words\n").unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(&job, text).unwrap();
    let output = sluice().arg("run").arg(&job).output().unwrap();
    assert!(
        !Path::new(&dir.path().join("out")).exists(),
        "output was written for a bad job file"
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr.contains("job.toml"),
        "message does not name the file: {stderr}"
    );
    let code = output.status.code().unwrap_or(-1);
    assert_submit_refuses(dir.path(), &job, code, &stderr);
    (code, stderr)
}

/// `sluice submit` of the same file fails the same way, and sends nothing:
/// the coordinator address it is given (a listener of this test) sees no
/// connection.
fn assert_submit_refuses(dir: &Path, job: &Path, code: i32, stderr: &str) {
    let coordinator = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    coordinator.set_nonblocking(true).unwrap();
    std::fs::write(dir.join("secret"), "a-cluster-secret-for-tests-only").unwrap();
    let output = sluice()
        .arg("submit")
        .arg(job)
        .arg("--coordinator")
        .arg(format!("http://{}", coordinator.local_addr().unwrap()))
        .arg("--secret-file")
        .arg(dir.join("secret"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(code),
        "sluice submit: {output:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        stderr,
        "sluice submit"
    );
    assert!(
        matches!(coordinator.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "sluice submit of a bad file connected to the coordinator"
    );
}

fn assert_bad(text: &str, expected: &[&str]) {
    let (code, stderr) = run_bad(text);
    assert_eq!(code, 2, "exit code for:\n{text}\nstderr: {stderr}");
    for part in expected {
        assert!(stderr.contains(part), "expected {part:?} in: {stderr}");
    }
}

fn windowed(extra_top: &str, source: &str, sink: &str, params: &str) -> String {
    format!("job = \"windowed_aggregation\"\n{extra_top}\n{source}\n{sink}\n[params]\n{params}\n")
}

#[test]
fn unknown_top_level_field() {
    assert_bad(
        &windowed("shardz = 2", GOOD_SOURCE, GOOD_SINK, ""),
        &["unknown field `shardz`", "shards"],
    );
}

#[test]
fn wrong_type() {
    assert_bad(
        &windowed("shards = \"two\"", GOOD_SOURCE, GOOD_SINK, ""),
        &[
            "shards = \"two\"",
            "line 2",
            "expected a non-negative integer",
        ],
    );
}

#[test]
fn zero_shards() {
    assert_bad(
        &windowed("shards = 0", GOOD_SOURCE, GOOD_SINK, ""),
        &["field `shards`", "expected 1..="],
    );
}

#[test]
fn max_parallelism_below_shards() {
    assert_bad(
        &windowed(
            "shards = 4\nmax_parallelism = 2",
            GOOD_SOURCE,
            GOOD_SINK,
            "",
        ),
        &["field `max_parallelism`", "at least `shards`"],
    );
}

#[test]
fn unknown_job() {
    assert_bad(
        &format!("job = \"wordcounts\"\n{GOOD_SOURCE}\n{GOOD_SINK}"),
        &[
            "field `job`",
            "\"wordcounts\" is not a registered job",
            "wordcount, windowed_aggregation",
        ],
    );
}

#[test]
fn missing_input_file() {
    let text = format!("job = \"wordcount\"\n[source]\nconnector = \"file\"\npaths = [\"words.txt\", \"nope.txt\"]\n{GOOD_SINK}");
    assert_bad(
        &text,
        &["field `source.paths[1]`", "nope.txt", "No such file"],
    );
}

#[test]
fn unknown_source_connector() {
    assert_bad(
        &windowed("", "[source]\nconnector = \"pulsar\"\n", GOOD_SINK, ""),
        &[
            "field `source.connector`",
            "\"pulsar\"",
            "\"file\", \"generator\", \"kafka\" or \"nexmark\"",
        ],
    );
}

#[test]
fn kafka_sections_are_checked_before_any_broker_is_asked() {
    let source = |fields: &str| {
        format!("[source]\nconnector = \"kafka\"\nbootstrap_servers = \"127.0.0.1:1\"\n{fields}")
    };
    let sink = |fields: &str| {
        format!("[sink]\nconnector = \"kafka\"\nbootstrap_servers = \"127.0.0.1:1\"\n{fields}")
    };
    let cases: [(String, String, &[&str]); 10] = [
        (
            "[source]\nconnector = \"kafka\"\ntopics = [\"t\"]\n".into(),
            GOOD_SINK.into(),
            &["field `source.bootstrap_servers`", "is missing"],
        ),
        (
            source("topics = [\"t\"]\ntopic_pattern = \"t.*\"\n"),
            GOOD_SINK.into(),
            &["field `source.topic_pattern`", "exclude each other"],
        ),
        (
            source("topics = [\"t\"]\nstart = \"yesterday\"\n"),
            GOOD_SINK.into(),
            &["field `source.start`", "timestamp:<ms"],
        ),
        (
            source("topics = [\"t\"]\n[source.properties]\n\"enable.auto.commit\" = \"true\"\n"),
            GOOD_SINK.into(),
            &[
                "field `source.properties.enable.auto.commit`",
                "set by Sluice",
            ],
        ),
        (
            source("topic_pattern = \"(\"\n"),
            GOOD_SINK.into(),
            &["field `source.topic_pattern`"],
        ),
        (
            GOOD_SOURCE.into(),
            sink("topic = \"out\"\ndelivery = \"twice\"\n"),
            &[
                "field `sink.delivery`",
                "\"none\", \"at-least-once\" or \"exactly-once\"",
            ],
        ),
        (
            GOOD_SOURCE.into(),
            sink("topic = \"out\"\ndelivery = \"exactly-once\"\n"),
            &[
                "field `sink.delivery`",
                "when checkpoints complete: add a [checkpoint] section",
            ],
        ),
        (
            GOOD_SOURCE.into(),
            sink("topic = \"out\"\ntransactional_id_prefix = \"job\"\n"),
            &[
                "field `sink.transactional_id_prefix`",
                "applies to delivery = \"exactly-once\" only",
            ],
        ),
        (
            GOOD_SOURCE.into(),
            sink(
                "topic = \"out\"\ndelivery = \"exactly-once\"\ntransactional_id_prefix = \"a b\"\n[checkpoint]\ninterval_ms = 100\n",
            ),
            &["field `sink.transactional_id_prefix`", "\"a b\""],
        ),
        (
            GOOD_SOURCE.into(),
            sink("delivery = \"none\"\n"),
            &["field `sink.topic`", "is missing"],
        ),
    ];
    for (source, sink, expected) in cases {
        assert_bad(&windowed("", &source, &sink, ""), expected);
    }
}

#[test]
fn field_of_another_connector() {
    assert_bad(
        &windowed(
            "",
            "[source]\nconnector = \"generator\"\npaths = [\"words.txt\"]\n",
            GOOD_SINK,
            "",
        ),
        &[
            "field `source.paths`",
            "does not apply to connector \"generator\"",
        ],
    );
}

#[test]
fn unknown_sink_format() {
    assert_bad(
        &windowed(
            "",
            GOOD_SOURCE,
            "[sink]\nconnector = \"stdout\"\nformat = \"xml\"\n",
            "",
        ),
        &["field `sink.format`", "\"xml\"", "\"jsonl\""],
    );
}

#[test]
fn missing_sink_path() {
    assert_bad(
        &windowed("", GOOD_SOURCE, "[sink]\nconnector = \"file\"\n", ""),
        &["field `sink.path`", "missing"],
    );
}

#[test]
fn zero_batch_bytes() {
    assert_bad(
        &windowed("[exchange]\nbatch_bytes = 0", GOOD_SOURCE, GOOD_SINK, ""),
        &["field `exchange.batch_bytes`", "expected 1..="],
    );
}

#[test]
fn negative_window_size() {
    assert_bad(
        &windowed("", GOOD_SOURCE, GOOD_SINK, "size_ms = -5"),
        &["field `params.size_ms`", "positive"],
    );
}

#[test]
fn unknown_param() {
    assert_bad(
        &windowed("", GOOD_SOURCE, GOOD_SINK, "size = 5"),
        &["field `params`", "unknown field `size`"],
    );
}

#[test]
fn sliding_without_slide() {
    assert_bad(
        &windowed("", GOOD_SOURCE, GOOD_SINK, "window = \"sliding\""),
        &["field `params.slide_ms`", "missing"],
    );
}

#[test]
fn generator_with_zero_keys() {
    assert_bad(
        &windowed(
            "",
            "[source]\nconnector = \"generator\"\nkeys = 0\n",
            GOOD_SINK,
            "",
        ),
        &["field `source.keys`", "expected at least 1"],
    );
}

#[test]
fn latency_sink_without_a_schedule() {
    let nexmark = "job = \"nexmark.q0\"\n[source]\nconnector = \"nexmark\"\nevents = 10\n";
    assert_bad(
        &format!("{nexmark}[sink]\nconnector = \"latency\"\npath = \"reports\"\n"),
        &["field `sink.connector`", "offer_at_event_time = true"],
    );
    assert_bad(
        &format!("{nexmark}offer_at_event_time = true\n[sink]\nconnector = \"blackhole\"\n"),
        &["field `source.base_time_ms`", "the same on every worker"],
    );
    assert_bad(
        &format!(
            "{nexmark}offer_at_event_time = true\nbase_time_ms = 0\n\
             [sink]\nconnector = \"latency\"\npath = \"reports\"\ndependency_offset_ms = -1\n"
        ),
        &[
            "field `sink.dependency_offset_ms`",
            "is -1, expected 0..=1000",
        ],
    );
}

#[test]
fn bad_record_policies_are_checked() {
    let file = "[source]\nconnector = \"file\"\npaths = [\"words.txt\"]\nformat = \"jsonl\"\n";
    assert_bad(
        &windowed(
            "",
            &format!("{file}on_bad_record = \"ignore\"\n"),
            GOOD_SINK,
            "",
        ),
        &[
            "field `source.on_bad_record`",
            "expected \"fail\", \"skip\" or \"side-output\"",
        ],
    );
    assert_bad(
        &windowed(
            "",
            &format!("{file}on_bad_record = \"side-output\"\n"),
            GOOD_SINK,
            "",
        ),
        &["field `source.dead_letter_path`", "is missing"],
    );
    assert_bad(
        &windowed(
            "",
            &format!("{file}dead_letter_path = \"bad\"\n"),
            GOOD_SINK,
            "",
        ),
        &["field `source.dead_letter_path`", "only with on_bad_record"],
    );
}

#[test]
fn wordcount_on_generator() {
    assert_bad(
        &format!("job = \"wordcount\"\n{GOOD_SOURCE}\n{GOOD_SINK}"),
        &[
            "field `source.connector`",
            "reads text: expected \"file\" or \"kafka\"",
        ],
    );
}

#[test]
fn unknown_time_characteristic() {
    assert_bad(
        &windowed(
            "",
            "[source]\nconnector = \"generator\"\ntime = \"ingestion\"\n",
            GOOD_SINK,
            "",
        ),
        &["field `source.time`", "\"event\" or \"processing\""],
    );
}

#[test]
fn invalid_toml_syntax() {
    assert_bad("job = \"wordcount\n[source]\n", &["job.toml", "line 1"]);
}

#[test]
fn missing_required_section() {
    assert_bad("job = \"wordcount\"\n", &["field `source`", "is missing"]);
}

#[test]
fn missing_job_file() {
    let output = sluice()
        .args(["run", "/nonexistent/job.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/job.toml") && stderr.contains("cannot read"),
        "{stderr}"
    );
}

#[test]
fn bad_state_and_checkpoint_storage_settings_are_named() {
    let with = |extra: &str| {
        windowed("", GOOD_SOURCE, GOOD_SINK, "")
            .replace("\n[params]", &format!("\n{extra}\n[params]"))
    };
    assert_bad(
        &with("[state]\nbackend = \"leveldb\""),
        &["state.backend", "\"leveldb\"", "\"rocksdb\""],
    );
    assert_bad(
        &with("[checkpoint]\nstorage = \"s3://Bad_Bucket/x\""),
        &["checkpoint.storage", "not a valid S3 bucket name"],
    );
    assert_bad(
        &with("[checkpoint]\nstorage = \"s3://bucket/x\"\n[checkpoint.s3]\naccess_key_id = \"a\""),
        &["checkpoint.s3", "give both"],
    );
    assert_bad(
        &with("[checkpoint]\nstorage = \"s3://bucket/x\"\n[checkpoint.s3]\nendpoint = \"localhost:9000\""),
        &["checkpoint.s3.endpoint", "http://host:port"],
    );
    assert_bad(
        &with("[checkpoint]\n[checkpoint.s3]\nregion = \"eu-west-1\""),
        &["checkpoint.s3", "s3:// storage only"],
    );
    assert_bad(
        &with("[checkpoint]\nstorage = \"ftp://host/x\""),
        &["checkpoint.storage", "s3://bucket/prefix"],
    );
}
