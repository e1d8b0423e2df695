//! Exactly-once recovery: a checkpointed job writing exactly-once files is
//! killed with SIGKILL at seeded random moments and restarted with
//! `--restore latest` each time; what it finally commits equals a
//! failure-free run's output exactly (nothing lost, nothing twice). Also: a
//! damaged newest checkpoint is skipped with a message naming it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use sluice_tests::s3_server::S3TestServer;
use support::{assert_committed_as_reference, committed_lines, nexmark_sql_job};

/// A small deterministic generator for the kill moments (splitmix64).
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, min: u64, max: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        min + (z ^ (z >> 31)) % (max - min)
    }
}

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

/// Starts `sluice run --restore latest job`, stderr captured.
fn spawn_restoring(job: &Path) -> std::process::Child {
    sluice()
        .args(["run", "--restore", "latest"])
        .arg(job)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn write_job(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// Runs `job` to completion (restoring the latest checkpoint); returns stderr.
fn run_to_end(job: &Path) -> String {
    let output = sluice()
        .args(["run", "--restore", "latest"])
        .arg(job)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

/// Kills the checkpointed `job` `kills` times at seeded moments, then lets it
/// finish; returns how many runs restored a checkpoint.
fn kill_and_recover(job: &Path, kills: usize, seed: u64, window_ms: (u64, u64)) -> usize {
    let mut moments = Moments(seed);
    let mut restored = 0;
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while killed < kills {
        assert!(Instant::now() < deadline, "the kill loop took too long");
        let mut child = spawn_restoring(job);
        std::thread::sleep(Duration::from_millis(
            moments.next_ms(window_ms.0, window_ms.1),
        ));
        let finished_already = child.try_wait().unwrap().is_some();
        if !finished_already {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        restored += stderr.contains("restoring from checkpoint") as usize;
        if finished_already {
            assert!(output.status.success(), "{stderr}");
            panic!("the job finished after {killed} kills; give it more work");
        }
    }
    restored + run_to_end(job).contains("restoring from checkpoint") as usize
}

const CHECKPOINT: &str = "[checkpoint]\ninterval_ms = 100\nretain = 2\n";

/// A job file's text for a sink directory, a `[checkpoint]` section and a
/// source rate line.
type JobText = fn(&str, &str, &str) -> String;

/// Runs `job` once cleanly (no checkpoints, no pacing) as the reference,
/// then checkpointed and paced at `rate`, killed ten times at moments from
/// `seed`; asserts the committed output equals the reference exactly.
fn assert_exactly_once_under_kills(
    job: JobText,
    checkpoint: &str,
    rate: &str,
    seed: u64,
    min_lines: usize,
) {
    assert_exactly_once_under_kills_within(job, checkpoint, rate, seed, min_lines, (250, 650));
}

/// The same, killing each run between `window_ms` after its start.
fn assert_exactly_once_under_kills_within(
    job: JobText,
    checkpoint: &str,
    rate: &str,
    seed: u64,
    min_lines: usize,
    window_ms: (u64, u64),
) {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_job(dir.path(), "reference.toml", &job("reference", "", ""));
    run_to_end_plain(&reference);
    let killed = write_job(dir.path(), "job.toml", &job("out", checkpoint, rate));
    let restored = kill_and_recover(&killed, 10, seed, window_ms);
    assert!(restored >= 5, "only {restored} runs restored a checkpoint");
    assert_committed_as_reference(dir.path(), min_lines, "the job killed ten times");
}

fn windowed_aggregation(sink: &str, checkpoint: &str, rate: &str) -> String {
    format!(
        "job = \"windowed_aggregation\"\nshards = 2\nprogress = false\n\
         [source]\nconnector = \"generator\"\nevents = 1_500_000\nkeys = 2_000\nseed = 11\n{rate}\n\
         [sink]\nconnector = \"file\"\npath = \"{sink}\"\n{checkpoint}\
         [params]\nwindow = \"sliding\"\nsize_ms = 2_000\nslide_ms = 500\n"
    )
}

#[test]
fn windowed_aggregation_killed_ten_times_commits_exactly_the_clean_output() {
    assert_exactly_once_under_kills(
        windowed_aggregation,
        CHECKPOINT,
        "rate = 250_000",
        0x5eed_0001,
        100_000,
    );
}

/// State in RocksDB: native checkpoints (SST files uploaded once, shared by
/// later checkpoints), restored by linking the files back into place.
#[test]
fn rocksdb_windowed_aggregation_killed_ten_times_commits_exactly_the_clean_output() {
    let rocksdb = format!("[state]\nbackend = \"rocksdb\"\n{CHECKPOINT}");
    assert_exactly_once_under_kills(
        windowed_aggregation,
        &rocksdb,
        "rate = 250_000",
        0x5eed_0db1,
        100_000,
    );
}

/// Checkpoints in S3 (a real S3-compatible server on 127.0.0.1): every
/// restore reads the newest complete checkpoint back from the bucket.
#[test]
fn checkpoints_in_s3_killed_ten_times_commit_exactly_the_clean_output() {
    let server = S3TestServer::start().unwrap();
    server.create_bucket("checkpoints").unwrap();
    let s3 = format!(
        "{CHECKPOINT}{}",
        server.job_file_lines("checkpoints", "windowed")
    );
    // Each run reads its checkpoint back from S3 before it starts, and its
    // first checkpoint goes there too: later kills, so that most runs have
    // one to restore even when the machine is busy with other tests.
    assert_exactly_once_under_kills_within(
        windowed_aggregation,
        &s3,
        "rate = 250_000",
        0x5eed_0053,
        100_000,
        (400, 900),
    );
}

/// The S3 server goes away for a while: checkpoints in that time fail and
/// are aborted, the job keeps running, a later checkpoint completes, and the
/// committed output is still exactly the clean run's. State in RocksDB, so
/// SST files go to S3 too.
#[test]
fn checkpoints_fail_while_s3_is_down_and_complete_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_job(
        dir.path(),
        "reference.toml",
        &windowed_aggregation("reference", "", ""),
    );
    run_to_end_plain(&reference);
    let mut server = S3TestServer::start().unwrap();
    server.create_bucket("checkpoints").unwrap();
    let checkpoint = format!(
        "[state]\nbackend = \"rocksdb\"\n[checkpoint]\ninterval_ms = 200\n{}",
        server.job_file_lines("checkpoints", "outage")
    );
    let job = write_job(
        dir.path(),
        "job.toml",
        &windowed_aggregation("out", &checkpoint, "rate = 150_000"),
    );
    let child = sluice()
        .arg("run")
        .arg(&job)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2_000));
    server.stop();
    std::thread::sleep(Duration::from_millis(2_500));
    server.resume().unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("aborted"), "no checkpoint failed: {stderr}");
    assert!(
        stderr.contains("completed, after"),
        "no checkpoint completed after the outage: {stderr}"
    );
    assert!(!stderr.contains("restart"), "{stderr}");
    assert_committed_as_reference(dir.path(), 0, "the job through the outage");
}

/// Unaligned: the records in flight at each checkpoint are kept as channel
/// state and replayed on restore.
#[test]
fn unaligned_checkpoints_killed_ten_times_commit_exactly_the_clean_output() {
    let unaligned = format!("{CHECKPOINT}mode = \"unaligned\"\n");
    assert_exactly_once_under_kills(
        windowed_aggregation,
        &unaligned,
        "rate = 250_000",
        0x5eed_00a1,
        100_000,
    );
}

fn nexmark_q5(sink: &str, checkpoint: &str, rate: &str) -> String {
    format!(
        "job = \"nexmark.q5\"\nshards = 2\nprogress = false\n\
         [source]\nconnector = \"nexmark\"\nevents = 600_000\nseed = 5\nevents_per_second = 10_000\n{rate}\n\
         [sink]\nconnector = \"file\"\npath = \"{sink}\"\n{checkpoint}\
         [params]\nwindow_size_ms = 2_000\nwindow_slide_ms = 200\n"
    )
}

#[test]
fn nexmark_q5_killed_ten_times_commits_exactly_the_clean_output() {
    assert_exactly_once_under_kills(nexmark_q5, CHECKPOINT, "rate = 100_000", 0x5eed_0005, 200);
}

fn nexmark_q8(sink: &str, checkpoint: &str, rate: &str) -> String {
    nexmark_q5(sink, checkpoint, rate)
        .replace("nexmark.q5", "nexmark.q8")
        .replace("window_slide_ms = 200\n", "")
}

/// A two-input operator (the join of persons and auctions): barriers are
/// aligned across both inputs and the join's state is written once.
#[test]
fn nexmark_q8_join_killed_ten_times_commits_exactly_the_clean_output() {
    assert_exactly_once_under_kills(nexmark_q8, CHECKPOINT, "rate = 100_000", 0x5eed_0008, 200);
}

/// Nexmark q8 as SQL (`examples/nexmark-sql`): two window aggregations
/// joined, planned from the text. `rate` is an extra source option
/// (`, 'rate' = '…'`) or empty.
fn nexmark_q8_sql(sink: &str, checkpoint: &str, rate: &str) -> String {
    nexmark_sql_job("q8", 2, sink, checkpoint, rate)
}

/// The same join of window aggregations written in SQL: the planned
/// operators' state (window panes, both join sides) is checkpointed and
/// restored like a hand-written job's.
#[test]
fn nexmark_q8_in_sql_killed_ten_times_commits_exactly_the_clean_output() {
    assert_exactly_once_under_kills(
        nexmark_q8_sql,
        CHECKPOINT,
        ", 'rate' = '100000'",
        0x5eed_5018,
        200,
    );
}

fn nexmark_q10(sink: &str, checkpoint: &str, rate: &str) -> String {
    format!(
        "job = \"nexmark.q10\"\nshards = 2\nprogress = false\n\
         [source]\nconnector = \"nexmark\"\nevents = 600_000\nseed = 10\nevents_per_second = 2_000\n{rate}\n\
         [sink]\nconnector = \"file\"\npath = \"{sink}\"\n{checkpoint}\
         [params]\ncommit_delay_ms = 0\n"
    )
}

/// Nexmark q10 writes into a directory per minute of event time, marking
/// each complete with `_SUCCESS`: killed ten times, every bucket holds
/// exactly the clean run's lines and is marked.
#[test]
fn nexmark_q10_partitioned_sink_killed_ten_times_commits_exactly_the_clean_output() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_job(
        dir.path(),
        "reference.toml",
        &nexmark_q10("reference", "", ""),
    );
    run_to_end_plain(&reference);
    let expected = support::committed_buckets(&dir.path().join("reference"));
    assert!(expected.len() >= 4, "{} buckets", expected.len());
    assert!(expected
        .values()
        .all(|(lines, marked)| *marked && !lines.is_empty()));
    let job = write_job(
        dir.path(),
        "job.toml",
        &nexmark_q10("out", CHECKPOINT, "rate = 100_000"),
    );
    let restored = kill_and_recover(&job, 10, 0x5eed_0010, (250, 650));
    assert!(restored >= 5, "only {restored} runs restored a checkpoint");
    let got = support::committed_buckets(&dir.path().join("out"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "bucket directories"
    );
    for (bucket, (lines, marked)) in &got {
        assert!(*marked, "bucket {bucket} has no _SUCCESS");
        assert_eq!(
            lines.len(),
            expected[bucket].0.len(),
            "lines of bucket {bucket}"
        );
        assert!(
            *lines == expected[bucket].0,
            "bucket {bucket} differs from the clean run"
        );
    }
}

fn run_to_end_plain(job: &Path) {
    let output = sluice().arg("run").arg(job).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn damaged_newest_checkpoint_is_skipped_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let job = write_job(
        dir.path(),
        "job.toml",
        &windowed_aggregation("out", CHECKPOINT, "rate = 500_000"),
    );
    // Run about a second, then kill: several checkpoints exist.
    let mut child = sluice()
        .arg("run")
        .arg(&job)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    child.kill().unwrap();
    child.wait().unwrap();
    let checkpoints = dir.path().join("checkpoints/checkpoints");
    // A checkpoint exists once its MANIFEST is written, last: the kill may
    // have left the directory of one in progress without it.
    let mut ids: Vec<String> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|id| checkpoints.join(id).join("MANIFEST").exists())
        .collect();
    ids.sort();
    assert!(ids.len() >= 2, "complete checkpoints: {ids:?}");
    let newest = ids.last().unwrap().clone();
    let manifest = checkpoints.join(&newest).join("MANIFEST");
    let mut bytes = std::fs::read(&manifest).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    std::fs::write(&manifest, bytes).unwrap();

    let stderr = run_to_end(&job);
    let newest_id: u64 = newest.parse().unwrap();
    assert!(
        stderr.contains(&format!("checkpoint {newest_id} skipped")) && stderr.contains("MANIFEST"),
        "{stderr}"
    );
    assert!(stderr.contains("restoring from checkpoint"), "{stderr}");
    // Its parts were committed already, so falling back replays them (as in
    // Flink); nothing is lost.
    let reference = write_job(
        dir.path(),
        "reference.toml",
        &windowed_aggregation("reference", "", ""),
    );
    run_to_end_plain(&reference);
    let got: std::collections::BTreeSet<String> = committed_lines(&dir.path().join("out"))
        .into_iter()
        .collect();
    let missing = committed_lines(&dir.path().join("reference"))
        .into_iter()
        .filter(|line| !got.contains(line))
        .count();
    assert_eq!(
        missing, 0,
        "lines of the clean run missing after the fallback"
    );
}

fn rescaled_job(shards: u32, sink: &str, checkpoint: &str, rate: &str) -> String {
    windowed_aggregation(sink, checkpoint, &format!("partitions = 4\n{rate}"))
        .replace("shards = 2", &format!("shards = {shards}"))
}

/// Runs `job` for `ms` (restoring the latest checkpoint), then kills it.
fn run_then_kill(job: &Path, ms: u64) -> String {
    let mut child = spawn_restoring(job);
    std::thread::sleep(Duration::from_millis(ms));
    assert!(child.try_wait().unwrap().is_none(), "the job ended early");
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_checkpoint_restores_on_more_and_fewer_shards() {
    restores_on_more_and_fewer_shards(CHECKPOINT);
}

/// RocksDB's native checkpoints: on a new shard count each shard copies the
/// key groups it now owns out of the stored instances.
#[test]
fn a_rocksdb_checkpoint_restores_on_more_and_fewer_shards() {
    restores_on_more_and_fewer_shards(&format!("[state]\nbackend = \"rocksdb\"\n{CHECKPOINT}"));
}

fn restores_on_more_and_fewer_shards(checkpoint: &str) {
    let dir = tempfile::tempdir().unwrap();
    let reference = write_job(
        dir.path(),
        "reference.toml",
        &rescaled_job(2, "reference", "", ""),
    );
    run_to_end_plain(&reference);
    let rate = "rate = 400_000";
    let job = dir.path().join("job.toml");
    // 1 shard, then 4, then 2: key groups and sink parts move between shards.
    std::fs::write(&job, rescaled_job(1, "out", checkpoint, rate)).unwrap();
    run_then_kill(&job, 1_200);
    std::fs::write(&job, rescaled_job(4, "out", checkpoint, rate)).unwrap();
    let stderr = run_then_kill(&job, 1_200);
    assert!(stderr.contains("restoring from checkpoint"), "{stderr}");
    std::fs::write(&job, rescaled_job(2, "out", checkpoint, rate)).unwrap();
    let stderr = run_to_end(&job);
    assert!(stderr.contains("restoring from checkpoint"), "{stderr}");
    assert_committed_as_reference(dir.path(), 0, "the rescaled job");
}
