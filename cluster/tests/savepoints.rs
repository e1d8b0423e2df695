//! Savepoints: `sluice savepoint` against a running job, stop-with-savepoint,
//! and restoring a self-contained savepoint on 1 → 2 → 4 shards; the
//! committed output equals a failure-free run's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;
use support::{assert_committed_as_reference, committed_lines, nexmark_sql_job};

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

fn job(shards: u32, sink: &str, checkpoint: &str, rate: &str) -> String {
    format!(
        "job = \"windowed_aggregation\"\nshards = {shards}\nprogress = false\n\
         [source]\nconnector = \"generator\"\nevents = 1_500_000\nkeys = 2_000\nseed = 3\npartitions = 4\n{rate}\n\
         [sink]\nconnector = \"file\"\npath = \"{sink}\"\n{checkpoint}\
         [params]\nwindow = \"tumbling\"\nsize_ms = 1_000\n"
    )
}

const CHECKPOINT: &str = "[checkpoint]\ninterval_ms = 200\n";
const RATE: &str = "rate = 300_000";

fn start(job: &Path, restore: Option<&Path>) -> Child {
    let mut command = sluice();
    command.arg("run").arg(job);
    if let Some(path) = restore {
        command.arg("--restore").arg(path);
    }
    command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Asks the running job for a savepoint into `dir`; returns its path.
fn savepoint(job: &Path, dir: &Path, stop: bool) -> PathBuf {
    let mut command = sluice();
    command.arg("savepoint").arg(job).arg("--dir").arg(dir);
    if stop {
        command.arg("--stop");
    }
    let output = command.arg("--timeout-s").arg("30").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sluice savepoint: {stderr}");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// A job file's text for a shard count, a sink directory, checkpoint
/// sections and a source rate.
type JobText = fn(u32, &str, &str, &str) -> String;

/// Runs the job without checkpoints into `<dir>/reference`.
fn run_reference(dir: &Path, job: JobText) {
    let reference = dir.join("reference.toml");
    std::fs::write(&reference, job(2, "reference", "", "")).unwrap();
    let output = sluice().arg("run").arg(&reference).output().unwrap();
    assert!(output.status.success());
}

fn finish(child: Child) -> String {
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

/// The checkpoint settings with state in `backend`.
fn on(backend: &str) -> String {
    format!("[state]\nbackend = \"{backend}\"\n{CHECKPOINT}")
}

#[test]
fn stop_with_savepoint_and_resume_on_one_two_four_shards() {
    stop_and_resume_on_more_shards(job, RATE, [(1, "memory"), (2, "memory"), (4, "memory")], 0);
}

/// Savepoints are the same on every backend: memory → RocksDB → memory and
/// back, while the shard count changes.
#[test]
fn savepoints_move_between_memory_and_rocksdb() {
    stop_and_resume_on_more_shards(job, RATE, [(1, "memory"), (2, "rocksdb"), (4, "memory")], 0);
    stop_and_resume_on_more_shards(
        job,
        RATE,
        [(1, "rocksdb"), (2, "memory"), (4, "rocksdb")],
        0,
    );
}

/// Nexmark q8 in SQL (two window aggregations joined), its text planned
/// again by every run: the same SQL gives the same operators, so the window
/// panes and both join sides are found in the savepoint on another shard
/// count and backend.
#[test]
fn a_sql_job_resumes_from_savepoints_on_other_shard_counts_and_backends() {
    fn q8_in_sql(shards: u32, sink: &str, checkpoint: &str, rate: &str) -> String {
        nexmark_sql_job("q8", shards, sink, checkpoint, rate)
    }
    let steps = [(1, "memory"), (2, "rocksdb"), (3, "memory")];
    stop_and_resume_on_more_shards(q8_in_sql, ", 'rate' = '100000'", steps, 200);
}

/// Runs `steps[0]` (shards, backend), stops with a savepoint, resumes as
/// `steps[1]`, again, and runs to the end as `steps[2]`; the committed
/// output (more than `min_lines`) equals a clean run's.
fn stop_and_resume_on_more_shards(
    job: JobText,
    rate: &str,
    steps: [(u32, &str); 3],
    min_lines: usize,
) {
    let dir = tempfile::tempdir().unwrap();
    run_reference(dir.path(), job);

    let job_file = dir.path().join("job.toml");
    let savepoints = dir.path().join("savepoints");
    let mut restore: Option<PathBuf> = None;
    for (shards, backend) in &steps[..2] {
        std::fs::write(&job_file, job(*shards, "out", &on(backend), rate)).unwrap();
        let child = start(&job_file, restore.as_deref());
        std::thread::sleep(Duration::from_millis(1_200));
        let path = savepoint(&job_file, &savepoints, true);
        let stderr = finish(child);
        assert!(stderr.contains("stopped with savepoint"), "{stderr}");
        assert!(path.join("checkpoints").is_dir(), "{}", path.display());
        // Self-contained: the job's own checkpoints may go.
        std::fs::remove_dir_all(dir.path().join("checkpoints")).unwrap();
        restore = Some(path);
    }
    let (shards, backend) = steps[2];
    std::fs::write(&job_file, job(shards, "out", &on(backend), rate)).unwrap();
    let stderr = finish(start(&job_file, restore.as_deref()));
    assert!(stderr.contains("restoring from checkpoint"), "{stderr}");
    assert_committed_as_reference(dir.path(), min_lines, "the job resumed from savepoints");
}

/// As Flink's stop-with-savepoint: the sources read nothing after the
/// savepoint's barrier, so what the job read is exactly what the
/// savepoint's positions account for (a sink that commits nothing, such as
/// a print or an at-least-once Kafka sink, sees no record twice).
#[test]
fn stop_with_savepoint_reads_nothing_after_its_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let job_file = dir.path().join("job.toml");
    std::fs::write(&job_file, job(2, "out", CHECKPOINT, RATE)).unwrap();
    let child = start(&job_file, None);
    std::thread::sleep(Duration::from_millis(1_000));
    let path = savepoint(&job_file, &dir.path().join("sp"), true);
    let stderr = finish(child);
    let read: u64 = stderr
        .split(" records in")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of records read in: {stderr}"));

    let checkpoints: Vec<_> = std::fs::read_dir(path.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    let manifest = std::fs::read_to_string(checkpoints[0].join("MANIFEST")).unwrap();
    let (_, body) = manifest.split_once('\n').unwrap();
    let manifest: serde_json::Value = serde_json::from_str(body).unwrap();
    let positions: u64 = (manifest["tasks"].as_object().unwrap().values())
        .flat_map(|task| task["sources"].as_object().unwrap().values())
        .map(|position| position.as_u64().unwrap())
        .sum();
    assert!(positions > 0 && positions < 1_500_000, "{positions}");
    assert_eq!(
        read, positions,
        "records read against the savepoint's positions"
    );
}

#[test]
fn a_savepoint_leaves_the_job_running() {
    let dir = tempfile::tempdir().unwrap();
    let job_file = dir.path().join("job.toml");
    std::fs::write(&job_file, job(2, "out", CHECKPOINT, "rate = 600_000")).unwrap();
    let child = start(&job_file, None);
    std::thread::sleep(Duration::from_millis(700));
    let path = savepoint(&job_file, &dir.path().join("sp"), false);
    assert!(
        path.starts_with(dir.path().join("sp")),
        "{}",
        path.display()
    );
    let stderr = finish(child);
    assert!(!stderr.contains("stopped with savepoint"), "{stderr}");
    // The job ran to its end: every key of every window is there.
    run_reference(dir.path(), job);
    assert!(
        committed_lines(&dir.path().join("out")) == committed_lines(&dir.path().join("reference"))
    );
}

/// A stop-with-savepoint that cannot be written (its target is under a
/// file) fails, and the job goes on at once: its sources read on to the
/// end (no other checkpoint is due that would move them past the barrier).
#[test]
fn a_failed_stop_with_savepoint_leaves_the_job_running() {
    let dir = tempfile::tempdir().unwrap();
    let job_file = dir.path().join("job.toml");
    let rare_checkpoints = "[checkpoint]\ninterval_ms = 600_000\n";
    std::fs::write(&job_file, job(2, "out", rare_checkpoints, "rate = 600_000")).unwrap();
    let mut child = start(&job_file, None);
    std::thread::sleep(Duration::from_millis(700));
    let not_a_directory = dir.path().join("a-file");
    std::fs::write(&not_a_directory, b"").unwrap();
    let output = sluice()
        .arg("savepoint")
        .arg(&job_file)
        .arg("--stop")
        .arg("--dir")
        .arg(not_a_directory.join("sp"))
        .args(["--timeout-s", "30"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("savepoint failed") && stderr.contains("a-file"),
        "{stderr}"
    );
    assert!(!stderr.contains("job failed"), "{stderr}");
    // Sources left at the barrier would not end the job: bounded wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the job did not go on after its savepoint failed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = finish(child);
    assert!(!stderr.contains("stopped with savepoint"), "{stderr}");
    run_reference(dir.path(), job);
    assert_committed_as_reference(dir.path(), 0, "the job whose savepoint failed");
}

#[test]
fn savepoint_without_a_running_job_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let job_file = dir.path().join("job.toml");
    std::fs::write(&job_file, job(2, "out", CHECKPOINT, "")).unwrap();
    let output = sluice()
        .arg("savepoint")
        .arg(&job_file)
        .args(["--timeout-s", "1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no running job answered"), "{stderr}");
}

/// Checkpoints and the savepoint in S3 (a real S3-compatible server on
/// 127.0.0.1): `--restore s3://…/savepoint-<id>` on another shard count.
#[test]
fn a_savepoint_in_s3_restores_on_another_shard_count() {
    use sluice_tests::s3_server::S3TestServer;
    let server = S3TestServer::start().unwrap();
    server.create_bucket("jobs").unwrap();
    let dir = tempfile::tempdir().unwrap();
    run_reference(dir.path(), job);

    let s3 = format!("{CHECKPOINT}{}", server.job_file_lines("jobs", "windowed"));
    let job_file = dir.path().join("job.toml");
    std::fs::write(&job_file, job(1, "out", &s3, RATE)).unwrap();
    let child = start(&job_file, None);
    std::thread::sleep(Duration::from_millis(1_200));
    let location = savepoint(&job_file, Path::new("s3://jobs/savepoints"), true);
    finish(child);
    let location = location.to_string_lossy().into_owned();
    assert!(
        location.starts_with("s3://jobs/savepoints/savepoint-"),
        "{location}"
    );
    std::fs::write(&job_file, job(2, "out", &s3, RATE)).unwrap();
    let stderr = finish(start(&job_file, Some(Path::new(&location))));
    assert!(stderr.contains("restoring from checkpoint"), "{stderr}");
    assert_committed_as_reference(dir.path(), 0, "the job resumed from an S3 savepoint");
}
