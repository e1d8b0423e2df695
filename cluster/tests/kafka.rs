//! The Kafka connectors end to end: `sluice run` against a real Kafka-API
//! broker (tansu) on 127.0.0.1, results checked against the same records
//! read from a file or against plain computations done here.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::kafka::{committed_view, Broker};
use support::{assert_committed_as_reference, committed_lines};

/// The tumbling windows of the tests' `windowed_aggregation` jobs.
const WINDOWS: &str = "[params]\nwindow = \"tumbling\"\nsize_ms = 1000\n";

fn sluice_run(job: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(job)
        .output()
        .unwrap()
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

/// Writes `events` to `<dir>/events.jsonl` and their windows, computed from
/// that file on one shard, into `<dir>/reference`; returns the windows.
fn file_windows(dir: &Path, events: &[String]) -> Vec<String> {
    std::fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let job = dir.join("reference.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"windowed_aggregation\"\nshards = 1\n[source]\nconnector = \"file\"\npaths = [\"events.jsonl\"]\nformat = \"jsonl\"\n\
             [sink]\nconnector = \"file\"\npath = \"reference\"\n{WINDOWS}"
        ),
    )
    .unwrap();
    run_ok(&job);
    committed_lines(&dir.join("reference"))
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
    let expected = file_windows(dir.path(), &events);
    assert!(expected.len() > 1000, "{}", expected.len());
    for shards in [1, 2, 4] {
        let job = dir.path().join(format!("kafka-{shards}.toml"));
        std::fs::write(
            &job,
            format!(
                "job = \"windowed_aggregation\"\nshards = {shards}\n[source]\nconnector = \"kafka\"\nbootstrap_servers = \"{}\"\n\
                 topics = [\"events\"]\nformat = \"jsonl\"\nstop = \"latest\"\n\
                 [sink]\nconnector = \"file\"\npath = \"out-{shards}\"\n{WINDOWS}",
                broker.bootstrap()
            ),
        )
        .unwrap();
        let stderr = run_ok(&job);
        assert!(stderr.contains("records in"), "{stderr}");
        let got = committed_lines(&dir.path().join(format!("out-{shards}")));
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
    let expected = file_windows(dir.path(), &events);
    let job = dir.path().join("kafka.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"windowed_aggregation\"\nshards = 2\n[source]\nconnector = \"kafka\"\nbootstrap_servers = \"{0}\"\n\
             topics = [\"in\"]\nstop = \"latest\"\n\
             [sink]\nconnector = \"kafka\"\nbootstrap_servers = \"{0}\"\ntopic = \"out\"\nkey_fields = [\"key\"]\n\
             delivery = \"at-least-once\"\n{WINDOWS}",
            broker.bootstrap()
        ),
    )
    .unwrap();
    run_ok(&job);
    let records = broker.read_all("out");
    let mut got: Vec<String> = records.iter().map(|(_, _, v)| v.clone()).collect();
    got.sort();
    assert_eq!(got, expected);
    partitions_by_key(&records);
}

/// Asserts that the records (JSON values with a `key`) of each key went to
/// one partition; returns how many keys there are.
fn partitions_by_key(records: &[(i32, i64, String)]) -> usize {
    let mut partition_of_key = std::collections::BTreeMap::new();
    for (partition, _, value) in records {
        let v: serde_json::Value = serde_json::from_str(value).unwrap();
        let previous = partition_of_key.insert(v["key"].as_u64().unwrap(), *partition);
        assert!(previous.is_none_or(|p| p == *partition), "{value}");
    }
    partition_of_key.len()
}

fn spawn(job: &Path, restore: Option<&str>) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.arg("run").arg(job);
    if let Some(from) = restore {
        command.arg("--restore").arg(from);
    }
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn windowed_from_kafka(servers: &str, topic: &str, shards: u32, stop: &str) -> String {
    format!(
        "job = \"windowed_aggregation\"\nshards = {shards}\nprogress = false\n\
         [source]\nconnector = \"kafka\"\nbootstrap_servers = \"{servers}\"\ntopics = [\"{topic}\"]\nstop = \"{stop}\"\n\
         discovery_interval_ms = 200\n\
         [sink]\nconnector = \"file\"\npath = \"out\"\n[checkpoint]\ninterval_ms = 100\n{WINDOWS}"
    )
}

/// Offsets are in checkpoints and savepoints: a job reading a topic is
/// killed (2 shards), restored from its latest checkpoint on 3 shards while
/// more records arrive, stopped with a savepoint, and resumed from it on 1
/// shard up to the topic's end. What the exactly-once file sink committed
/// equals the windows of all the records read from a file: nothing lost,
/// nothing twice.
#[test]
fn offsets_restore_from_checkpoints_and_savepoints_on_other_shard_counts() {
    let broker = Broker::start();
    let servers = broker.bootstrap();
    let all = events(6_000);
    let (first, second) = all.split_at(3_000);
    broker.create_topic("events", 8);
    // One record per batch: tansu skips the rest of a batch a consumer
    // resumes in.
    broker.produce("events", first, |i| (i % 8) as i32, None);
    let dir = tempfile::tempdir().unwrap();
    file_windows(dir.path(), &all);

    let job = dir.path().join("job.toml");
    std::fs::write(&job, windowed_from_kafka(&servers, "events", 2, "never")).unwrap();
    let mut child = spawn(&job, None);
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    std::fs::write(&job, windowed_from_kafka(&servers, "events", 3, "never")).unwrap();
    let child = spawn(&job, Some("latest"));
    // Records written while the job runs (the partition of record i is the
    // same as in the first half's round robin).
    broker.produce("events", second, |i| ((i + first.len()) % 8) as i32, None);
    std::thread::sleep(std::time::Duration::from_millis(1_000));
    let savepoint = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("savepoint")
        .arg(&job)
        .arg("--dir")
        .arg(dir.path().join("savepoints"))
        .args(["--stop", "--timeout-s", "30"])
        .output()
        .unwrap();
    assert!(
        savepoint.status.success(),
        "{}",
        String::from_utf8_lossy(&savepoint.stderr)
    );
    let path = String::from_utf8_lossy(&savepoint.stdout).trim().to_owned();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("restoring from checkpoint"), "{stderr}");

    std::fs::write(&job, windowed_from_kafka(&servers, "events", 1, "latest")).unwrap();
    let output = spawn(&job, Some(&path)).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_committed_as_reference(dir.path(), 100, "the restored job");
}

/// Partitions that appear while the job runs are read (discovery), and a
/// quiet partition does not hold back the windows after its idle timeout:
/// with records in partition 0 only, windows still fire while the job runs.
///
/// tansu does not implement CreatePartitions (the admin request fails with
/// a transport error), so the new partition comes with a new topic that
/// matches the job's pattern: discovery sees both the same way, as a
/// (topic, partition) it did not know.
#[test]
fn new_partitions_are_read_and_quiet_ones_do_not_hold_back_windows() {
    let broker = Broker::start();
    let servers = broker.bootstrap();
    broker.create_topic("growing-a", 2);
    let first = events(500);
    broker.produce("growing-a", &first, |_| 0, None);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"windowed_aggregation\"\nshards = 2\nprogress = false\n\
             [source]\nconnector = \"kafka\"\nbootstrap_servers = \"{servers}\"\ntopic_pattern = \"growing-.*\"\n\
             discovery_interval_ms = 200\nidle_timeout_ms = 300\n\
             [sink]\nconnector = \"stdout\"\n[params]\nwindow = \"tumbling\"\nsize_ms = 100\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(&job)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Partition 1 never gets a record: once idle, the windows of
    // partition 0 fire (all but the last: nothing after it).
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    broker.create_topic("growing-b", 1);
    // Later events, into the new partition only.
    let later: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "{{\"seq\":{},\"key\":999,\"value\":1,\"ts\":{}}}",
                10_000 + i,
                1_010_000 + i * 10
            )
        })
        .collect();
    broker.produce("growing-b", &later, |_| 0, None);
    std::thread::sleep(std::time::Duration::from_millis(3_000));
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let windows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The first 500 events span 1 000 000..1 001 497: the windows up to
    // 1 001 400 hold 467 of them, and fired although partition 1 had
    // nothing.
    let early = windows
        .iter()
        .filter(|w| w["window_end"].as_i64().unwrap() <= 1_001_400)
        .map(|w| w["count"].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(early, 467, "{stderr}");
    // Key 999 only exists in the new partition: its windows fired.
    assert!(
        windows.iter().any(|w| w["key"] == 999),
        "no window of the new partition: {stderr}"
    );
    assert!(
        stderr.contains("discovered partition growing-b:0"),
        "{stderr}"
    );
}

fn windowed_to_kafka(sink: &str, checkpoint: &str, rate: &str) -> String {
    windowed_to_kafka_on(2, sink, checkpoint, rate)
}

fn windowed_to_kafka_on(shards: u32, sink: &str, checkpoint: &str, rate: &str) -> String {
    format!(
        "job = \"windowed_aggregation\"\nshards = {shards}\nprogress = false\n\
         [source]\nconnector = \"generator\"\nevents = 1_000_000\nkeys = 500\nseed = 5\n{rate}\n\
         {sink}{checkpoint}\
         [params]\nwindow = \"tumbling\"\nsize_ms = 1_000\n"
    )
}

/// The windows of the `windowed_to_kafka` jobs, from a clean run to files.
fn reference_windows(dir: &Path) -> Vec<String> {
    let reference = dir.join("reference.toml");
    std::fs::write(
        &reference,
        windowed_to_kafka(
            "[sink]\nconnector = \"file\"\npath = \"reference\"\n",
            "",
            "",
        ),
    )
    .unwrap();
    run_ok(&reference);
    let expected = committed_lines(&dir.join("reference"));
    assert!(expected.len() > 1_000, "{}", expected.len());
    expected
}

/// Runs `job` `kills` times (restoring the latest checkpoint), each killed
/// at a moment drawn from `seed`, then once to its end; returns how many
/// runs restored a checkpoint.
fn kill_and_restore(job: &Path, mut seed: u64, kills: usize) -> usize {
    let mut restored = 0;
    for _ in 0..kills {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = 300 + (seed >> 33) % 500;
        let mut child = spawn(job, Some("latest"));
        std::thread::sleep(std::time::Duration::from_millis(wait));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended before its kill"
        );
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        restored +=
            String::from_utf8_lossy(&output.stderr).contains("restoring from checkpoint") as usize;
    }
    let output = spawn(job, Some("latest")).wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    restored
}

/// At least once: a job writing windows to a topic is killed ten times at
/// seeded moments and restored each time; every window of a clean run is
/// in the topic (some more than once).
#[test]
fn at_least_once_output_survives_kills_with_every_record() {
    let broker = Broker::start();
    let servers = broker.bootstrap();
    broker.create_topic("windows", 2);
    let dir = tempfile::tempdir().unwrap();
    let expected = reference_windows(dir.path());
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        windowed_to_kafka(
            &format!(
                "[sink]\nconnector = \"kafka\"\nbootstrap_servers = \"{servers}\"\ntopic = \"windows\"\ndelivery = \"at-least-once\"\n"
            ),
            "[checkpoint]\ninterval_ms = 100\n",
            "rate = 200_000",
        ),
    )
    .unwrap();
    let restored = kill_and_restore(&job, 17, 10);
    assert!(restored >= 6, "only {restored} runs restored a checkpoint");
    let written: std::collections::BTreeSet<String> = broker
        .read_all("windows")
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    let missing: Vec<&String> = expected.iter().filter(|w| !written.contains(*w)).collect();
    assert!(
        missing.is_empty(),
        "{} windows missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert_eq!(
        written.len(),
        expected.len(),
        "windows that no clean run makes"
    );
}

/// Brokers that stop answering make the at-least-once sink's flush at the
/// barrier fail within the request timeout: the checkpoint fails and, as a
/// Flink task whose flush fails, the job ends (or restarts, as its restart
/// strategy says) with an error naming the sink's topic; nothing hangs.
#[test]
fn an_unreachable_broker_fails_checkpoints_not_hangs_the_job() {
    let mut broker = Broker::start();
    let servers = broker.bootstrap();
    broker.create_topic("windows", 1);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        windowed_to_kafka(
            &format!(
                "[sink]\nconnector = \"kafka\"\nbootstrap_servers = \"{servers}\"\ntopic = \"windows\"\n\
                 delivery = \"at-least-once\"\nrequest_timeout_ms = 1000\n"
            ),
            "[checkpoint]\ninterval_ms = 200\n",
            "rate = 50_000",
        ),
    )
    .unwrap();
    let child = spawn(&job, None);
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    broker.broker.stop();
    let started = std::time::Instant::now();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert!(stderr.contains("to topic `windows`"), "{stderr}");
    assert!(
        stderr.contains("failed: flushing") && stderr.contains("records within 1000 ms"),
        "{stderr}"
    );
}

fn exactly_once_sink(servers: &str, topic: &str) -> String {
    format!(
        "[sink]\nconnector = \"kafka\"\nbootstrap_servers = \"{servers}\"\ntopic = \"{topic}\"\n\
         delivery = \"exactly-once\"\n"
    )
}

/// Exactly once: a job writing windows to a topic through transactions is
/// killed ten times at seeded moments and restored each time; what a
/// `read_committed` consumer sees (see `committed_view`) is every window
/// of a clean run, once.
#[test]
fn exactly_once_output_survives_kills_with_every_record_once() {
    let broker = Broker::start();
    let servers = broker.bootstrap();
    broker.create_topic("windows", 2);
    let dir = tempfile::tempdir().unwrap();
    let expected = reference_windows(dir.path());
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        windowed_to_kafka(
            &exactly_once_sink(&servers, "windows"),
            "[checkpoint]\ninterval_ms = 100\n",
            "rate = 100_000",
        ),
    )
    .unwrap();
    let kills = 10;
    let restored = kill_and_restore(&job, 29, kills);
    assert!(restored >= 6, "only {restored} runs restored a checkpoint");
    let (committed, resent) = committed_view(&broker.read_all_headed("windows"));
    assert_committed_once(&committed, &expected);
    // Only a kill inside a transaction makes a checkpoint's records be sent
    // twice, and a process has at most one transaction per shard open.
    assert!(resent <= kills * 2, "{resent} checkpoints sent again");
}

/// `committed` holds every window of `expected` once and nothing else.
fn assert_committed_once(committed: &[String], expected: &[String]) {
    let mut sorted_expected = expected.to_vec();
    sorted_expected.sort();
    let missing = sorted_expected
        .iter()
        .filter(|w| committed.binary_search(w).is_err())
        .count();
    let mut twice = committed.to_vec();
    twice.dedup();
    assert_eq!(missing, 0, "{missing} windows missing");
    assert_eq!(
        committed.len() - twice.len(),
        0,
        "windows committed more than once"
    );
    assert_eq!(committed, sorted_expected);
}

/// Runs `job` with failpoint `failpoint` armed: the process must die there.
fn run_to_failpoint(job: &Path, failpoint: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(job)
        .env("SLUICE_FAILPOINT", failpoint)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("failpoint"),
        "the job did not die at {failpoint}: {stderr}"
    );
}

/// The two moments no outside kill hits reliably: a process killed after a
/// checkpoint completed and its transaction was sent but before Kafka
/// committed it (3 shards), restored on 2 shards: the restore aborts the
/// open transaction (shard 2's taken over by shard 0) and commits those
/// records once. Killed after the commit but before the staged records
/// were deleted: the restore sends nothing again — the topic then holds
/// each window exactly once with no aborted transaction to hide.
#[test]
fn a_kill_between_checkpoint_completion_and_kafka_commit_loses_and_repeats_nothing() {
    let broker = Broker::start();
    let servers = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let expected = reference_windows(dir.path());
    for (case, failpoint, shards_after) in [
        ("before", "kafka-sink-before-commit@3", 2),
        ("after", "kafka-sink-after-commit@3", 3),
    ] {
        let topic = format!("windows-{case}");
        broker.create_topic(&topic, 2);
        let case_dir = dir.path().join(case);
        std::fs::create_dir(&case_dir).unwrap();
        let job_on = |shards: u32| {
            let job = case_dir.join(format!("job-{shards}.toml"));
            std::fs::write(
                &job,
                windowed_to_kafka_on(
                    shards,
                    &exactly_once_sink(&servers, &topic),
                    "[checkpoint]\ninterval_ms = 100\n",
                    "rate = 200_000",
                ),
            )
            .unwrap();
            job
        };
        let first = job_on(3);
        run_to_failpoint(&first, failpoint);
        let staged = std::fs::read_dir(case_dir.join("checkpoints/kafka-sink"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(staged > 0, "{case}: nothing staged under the checkpoints");
        let output = spawn(&job_on(shards_after), Some("latest"))
            .wait_with_output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{case}: {stderr}");
        assert!(
            stderr.contains("restoring from checkpoint"),
            "{case}: {stderr}"
        );
        let records = broker.read_all_headed(&topic);
        let (committed, resent) = committed_view(&records);
        assert_committed_once(&committed, &expected);
        if case == "after" {
            let mut raw: Vec<String> = records.into_iter().map(|r| r.value).collect();
            raw.sort();
            assert_committed_once(&raw, &expected);
            assert_eq!(resent, 0, "{case}: committed records were sent again");
        } else {
            assert!(
                stderr.contains("staged checkpoints the previous attempt did not"),
                "{case}: {stderr}"
            );
            assert!(resent >= 1, "{case}: nothing was sent again");
        }
    }
}

/// Kafka in and out on a cluster: a topic of 8 partitions read by two
/// workers of one shard each, windows written exactly once to a topic; one
/// worker is killed after the third checkpoint and the job restarts on the
/// worker left and a new one (fetches of one record each keep the job
/// running that long). What a `read_committed` consumer sees is the
/// windows the same records make from a file, once each.
#[test]
fn kafka_to_kafka_on_a_cluster_survives_a_lost_worker_exactly_once() {
    let broker = Broker::start();
    let servers = broker.bootstrap();
    let events = events(20_000);
    broker.create_topic("events", 8);
    broker.create_topic("windows", 4);
    broker.produce("events", &events, |i| (i % 8) as i32, None);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = file_windows(dir.path(), &events);
    expected.sort();
    let mut cluster = support::cluster::TestCluster::start();
    cluster.add_worker("a", 1);
    cluster.add_worker("b", 1);
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"windowed_aggregation\"\nshards = 2\nprogress = false\n\
             [source]\nconnector = \"kafka\"\nbootstrap_servers = \"{servers}\"\ntopics = [\"events\"]\nstop = \"latest\"\n\
             [source.properties]\n\"max.partition.fetch.bytes\" = \"100\"\n\
             {}[checkpoint]\ninterval_ms = 100\nstorage = \"file://checkpoints\"\n\
             [restart]\nstrategy = \"fixed-delay\"\nattempts = 3\ndelay_ms = 100\n\
             [cluster]\nshards = 2\n{WINDOWS}",
            exactly_once_sink(&servers, "windows")
        ),
    )
    .unwrap();
    let id = cluster.submit(&job);
    cluster.wait_checkpoint(&id, 3);
    cluster.kill_worker("b");
    cluster.add_worker("c", 1);
    let status = cluster.wait_for(
        &id,
        &["finished", "failed"],
        std::time::Duration::from_secs(90),
    );
    assert_eq!(status["state"], "finished", "{status}");
    assert_eq!(
        status["attempt"], 2,
        "the job ended before its worker was lost: {status}"
    );
    let (committed, _) = committed_view(&broker.read_all_headed("windows"));
    assert_committed_once(&committed, &expected);
}

/// A stale attempt is fenced: a second writer for the same shard (the
/// attempt that took the job over) initializes the same transactional id;
/// the first one's next commit then fails within its timeout with an error
/// naming the id, and after that its checkpoints fail instead of staging
/// on — while the new attempt commits.
#[test]
fn a_stale_attempt_is_fenced_by_the_next_one() {
    use sluice_cluster::kafka::{Delivery, ExactlyOnce, KafkaConnection, KafkaSink, PayloadFormat};
    use sluice_engine::checkpoint::{Committers, StorageLocation};
    use sluice_engine::connectors::{RecordFormat, Sink, SinkContext, SinkWriter};
    use sluice_engine::Rec;

    let broker = Broker::start();
    broker.create_topic("fenced", 1);
    let dir = tempfile::tempdir().unwrap();
    let mut connection = KafkaConnection::new(&broker.bootstrap());
    connection.request_timeout = std::time::Duration::from_millis(1_500);
    let sink = KafkaSink {
        connection,
        topic: "fenced".into(),
        key_fields: Vec::new(),
        format: PayloadFormat::Text(RecordFormat::JsonLines),
        delivery: Delivery::ExactlyOnce(ExactlyOnce {
            transactional_id_prefix: "fencing-test".into(),
            staging: StorageLocation::Directory(dir.path().join("staging")),
        }),
    };
    let open = |restored: Option<u64>| {
        let committers = Committers::default();
        let context = SinkContext {
            shard: 0,
            shards: 1,
            checkpointing: true,
            restored,
            committers: committers.clone(),
            decides_for_job: true,
        };
        let writer: Box<dyn SinkWriter<u64>> = sink.open_in(&context).unwrap();
        let committer = committers.lock().unwrap().pop().expect("a committer");
        (writer, committer)
    };
    let records =
        |from: u64| -> Vec<Rec<u64>> { (from..from + 10).map(|i| Rec::new(1, i)).collect() };
    let (mut stale, stale_committer) = open(None);
    stale.write(&records(0)).unwrap();
    stale.pre_commit(1).unwrap();
    stale_committer.lock().unwrap().commit(1).unwrap();
    // The next attempt restores checkpoint 1 and fences the stale one.
    let (mut next, next_committer) = open(Some(1));
    stale.write(&records(100)).unwrap();
    stale.pre_commit(2).unwrap();
    let started = std::time::Instant::now();
    let error = stale_committer.lock().unwrap().commit(2).unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error.contains("transactional id `fencing-test-0`"),
        "{error}"
    );
    assert!(error.contains("committing checkpoint 2"), "{error}");
    assert!(error.contains("fenced"), "{error}");
    next.write(&records(200)).unwrap();
    next.pre_commit(3).unwrap();
    next_committer.lock().unwrap().commit(3).unwrap();
    // The stale attempt cannot go on: within a few checkpoints its
    // barriers fail, naming why.
    let mut failed = None;
    for checkpoint in 4..8 {
        stale.write(&records(300)).unwrap();
        if let Err(e) = stale.pre_commit(checkpoint) {
            failed = Some(e);
            break;
        }
        let _ = stale_committer.lock().unwrap().commit(checkpoint);
    }
    let failed = failed.expect("the stale attempt's checkpoints kept succeeding");
    eprintln!("the stale commit: {error}\nits barrier: {failed}");
    assert!(failed.contains("checkpoint 4 failed"), "{failed}");
    assert!(failed.contains("fenced"), "{failed}");
    let values: Vec<String> = broker
        .read_all_headed("fenced")
        .into_iter()
        .filter(|r| r.headers["sluice-commit"].starts_with("fencing-test-0/"))
        .map(|r| r.value)
        .collect();
    for wanted in ["0", "9", "200", "209"] {
        assert!(
            values.iter().any(|v| v == wanted),
            "{wanted} not in {values:?}"
        );
    }
}

/// A windowed aggregation in SQL whose events table is `source` and whose
/// result table is `sink` (their `WITH` options).
fn sql_windows_job(shards: u32, source: &str, sink: &str, checkpoint: &str) -> String {
    format!(
        "shards = {shards}\nprogress = false\nsql = \"\"\"\n\
         CREATE TABLE events (\n    seq BIGINT, `key` BIGINT, `value` BIGINT, ts BIGINT,\n    \
         rowtime AS TO_TIMESTAMP_LTZ(ts, 3),\n    WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND\n\
         ) WITH ({source});\n\
         CREATE TABLE windows (`key` BIGINT, window_start TIMESTAMP(3), events BIGINT, total BIGINT) WITH ({sink});\n\
         INSERT INTO windows\nSELECT `key`, window_start, COUNT(*), SUM(`value`)\n\
         FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '1' SECOND))\n\
         GROUP BY `key`, window_start, window_end;\n\"\"\"\n{checkpoint}"
    )
}

/// A SQL job's Kafka tables, written with Flink's options: the windows it
/// makes of a topic's records are those it makes of a file of the same
/// records (a malformed one skipped, as 'json.ignore-parse-errors' says),
/// and it writes them to a topic keyed by 'key.fields'.
#[test]
fn a_sql_job_reads_and_writes_kafka_tables_written_with_flinks_options() {
    let broker = Broker::start();
    let servers = broker.bootstrap();
    let events = events(6_000);
    broker.create_topic("sql-in", 4);
    broker.create_topic("sql-out", 3);
    let mut records = events.clone();
    records.insert(1_001, "{\"seq\": 1001, not JSON".to_owned());
    broker.produce("sql-in", &records, |i| (i % 4) as i32, None);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let reference = dir.path().join("reference.toml");
    std::fs::write(
        &reference,
        sql_windows_job(
            1,
            "'connector' = 'filesystem', 'path' = 'events.jsonl', 'format' = 'json'",
            "'connector' = 'filesystem', 'path' = 'reference', 'format' = 'jsonl'",
            "",
        ),
    )
    .unwrap();
    run_ok(&reference);
    let expected = committed_lines(&dir.path().join("reference"));
    // 18 s of events, 40 keys.
    assert_eq!(expected.len(), 18 * 40);

    let job = dir.path().join("kafka.toml");
    std::fs::write(
        &job,
        sql_windows_job(
            2,
            &format!(
                "'connector' = 'kafka', 'topic' = 'sql-in', 'properties.bootstrap.servers' = '{servers}',\n    \
                 'properties.group.id' = 'sql-windows', 'scan.startup.mode' = 'earliest-offset',\n    \
                 'scan.bounded.mode' = 'latest-offset', 'format' = 'json', 'json.ignore-parse-errors' = 'true'"
            ),
            &format!(
                "'connector' = 'kafka', 'topic' = 'sql-out', 'properties.bootstrap.servers' = '{servers}',\n    \
                 'format' = 'json', 'key.format' = 'json', 'key.fields' = 'key',\n    \
                 'sink.delivery-guarantee' = 'at-least-once', 'properties.linger.ms' = '5'"
            ),
            "",
        ),
    )
    .unwrap();
    run_ok(&job);
    let written = broker.read_all("sql-out");
    let mut got: Vec<String> = written.iter().map(|(_, _, v)| v.clone()).collect();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(partitions_by_key(&written), 40);
}

/// Nexmark q8 in SQL (two window aggregations joined) over the Nexmark
/// events in a topic, as `format = 'nexmark'` reads them, written to a topic
/// exactly once: what a `read_committed` consumer sees is the result of
/// the same query over the generator's events.
#[test]
fn nexmark_q8_in_sql_from_a_topic_to_a_topic_exactly_once_equals_it_over_the_generator() {
    use sluice_engine::connectors::nexmark::{NexmarkConfig, NexmarkGenerator};

    const EVENTS: u64 = 20_000;
    let broker = Broker::start();
    let servers = broker.bootstrap();
    broker.create_topic("nexmark", 4);
    broker.create_topic("q8", 2);
    let mut generator = NexmarkGenerator::new(NexmarkConfig {
        seed: 8,
        first_event_rate: 200,
        ..Default::default()
    });
    let events: Vec<String> = (0..EVENTS)
        .map(|n| serde_json::to_string(&generator.event(n)).unwrap())
        .collect();
    broker.produce("nexmark", &events, |i| (i % 4) as i32, None);

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nexmark-sql");
    let read = |name: &str| std::fs::read_to_string(examples.join(name)).unwrap();
    let generator_options = "'connector' = 'nexmark',\n    'events' = '1000000'";
    let ddl = read("nexmark.sql");
    assert!(ddl.contains(generator_options));
    let blackhole = "'connector' = 'blackhole'";
    let query = read("q8.sql");
    assert!(query.contains(blackhole));
    let job_text = |shards: u32, source: &str, sink: &str, checkpoint: &str| {
        format!(
            "shards = {shards}\nprogress = false\nsql = \"\"\"\n{}\n{}\n\"\"\"\n{checkpoint}",
            ddl.replace(generator_options, source),
            query.replace(blackhole, sink)
        )
    };

    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.toml");
    std::fs::write(
        &reference,
        job_text(
            1,
            &format!("'connector' = 'nexmark', 'events' = '{EVENTS}', 'seed' = '8', 'events_per_second' = '200'"),
            "'connector' = 'filesystem', 'path' = 'reference', 'format' = 'jsonl'",
            "",
        ),
    )
    .unwrap();
    run_ok(&reference);
    let expected = committed_lines(&dir.path().join("reference"));
    assert!(expected.len() > 20, "{}", expected.len());

    let job = dir.path().join("kafka.toml");
    std::fs::write(
        &job,
        job_text(
            2,
            &format!(
                "'connector' = 'kafka', 'topic' = 'nexmark', 'properties.bootstrap.servers' = '{servers}',\n    \
                 'scan.bounded.mode' = 'latest-offset', 'format' = 'nexmark'"
            ),
            &format!(
                "'connector' = 'kafka', 'topic' = 'q8', 'properties.bootstrap.servers' = '{servers}',\n    \
                 'format' = 'json', 'sink.delivery-guarantee' = 'exactly-once',\n    \
                 'sink.transactional-id-prefix' = 'nexmark-q8'"
            ),
            "[checkpoint]\ninterval_ms = 100\nstorage = \"file://checkpoints\"\n",
        ),
    )
    .unwrap();
    run_ok(&job);
    let (committed, _) = committed_view(&broker.read_all_headed("q8"));
    assert_committed_once(&committed, &expected);
}

/// Consumer lag on `/metrics`: a job behind 20,000 records of a topic,
/// held back by a slow sink, shows the partition's lag above zero and
/// falling as it reads (the source never stops: the job is killed).
#[test]
fn consumer_lag_shows_while_a_job_catches_up() {
    use support::scrape::{http_get, parse, sum};
    const RECORDS: usize = 20_000;
    let broker = Broker::start();
    broker.create_topic("lagging", 1);
    broker.produce("lagging", &events(RECORDS), |_| 0, None);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    // About 40 windows per 333 events; 200 of them a second: the source
    // reads about 1,700 records a second.
    std::fs::write(
        &job,
        format!(
            "job = \"windowed_aggregation\"\nshards = 1\n[source]\nconnector = \"kafka\"\nbootstrap_servers = \"{}\"\n\
             topics = [\"lagging\"]\nstop = \"never\"\n[sink]\nconnector = \"blackhole\"\nrecords_per_second = 200\n{WINDOWS}",
            broker.bootstrap()
        ),
    )
    .unwrap();
    let metrics = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let log = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            job.to_str().unwrap(),
            "--metrics-addr",
            &metrics.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let partition_0: &dyn Fn(&str) -> bool = &|p| p == "0";
    let mut seen: Vec<f64> = Vec::new();
    // Bounded: 300 scrapes 100 ms apart.
    for _ in 0..300 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if std::net::TcpStream::connect(metrics).is_err() {
            continue; // not listening yet
        }
        let (status, text) = http_get(metrics, "/metrics");
        assert_eq!(status, 200);
        let samples = parse(&text);
        if samples
            .iter()
            .any(|s| s.name == "sluice_kafka_consumer_lag_records")
        {
            let lag = sum(
                &samples,
                "sluice_kafka_consumer_lag_records",
                &[("partition", partition_0)],
            );
            if seen.last() != Some(&lag) {
                seen.push(lag);
            }
            if seen.len() >= 4 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(
        seen.len() >= 2,
        "lag values seen: {seen:?}; the job's stderr:\n{stderr}"
    );
    assert!(
        seen.iter().all(|lag| *lag > 0.0 && *lag <= RECORDS as f64),
        "{seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[1] < w[0]), "falling: {seen:?}");
}
