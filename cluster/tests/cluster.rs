//! A cluster of real processes on 127.0.0.1: `sluice coordinator`, `sluice
//! worker`s and `sluice submit`. A job spread over workers writes what
//! `sluice run` writes; a checkpointed job whose worker is killed with
//! SIGKILL restarts from its last checkpoint on the workers left and a new
//! one, and commits exactly the clean run's output; a bad job file is
//! refused before anything is sent; a wrong secret is refused by both the
//! HTTP API and the worker port.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::cluster::{sluice, TestCluster};
use support::{assert_committed_as_reference, windowed_job, EVENTS, SEED};

fn run_alone(job: &Path) {
    let output = sluice().arg("run").arg(job).output().unwrap();
    assert!(output.status.success(), "{output:?}");
}

/// A job file of `query` (`windowed_aggregation` or a Nexmark query) on
/// `shards` shards writing into `<dir>/out-<name>`, with `extra` appended.
fn query_job(dir: &Path, name: &str, query: &str, shards: u32, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = match query {
        "windowed_aggregation" => format!(
            "job = \"windowed_aggregation\"\nshards = {shards}\nprogress = false\n\
             [source]\nconnector = \"generator\"\nevents = 1_000_000\nkeys = 5_000\nseed = 5\n\
             [params]\nwindow = \"sliding\"\nsize_ms = 2_000\nslide_ms = 500\n"
        ),
        // q10 writes a partition per minute of event time: a slow clock.
        "q10" => format!(
            "job = \"nexmark.q10\"\nshards = {shards}\nprogress = false\n\
             [source]\nconnector = \"nexmark\"\nevents = {EVENTS}\nseed = {SEED}\nevents_per_second = 100\n\
             [checkpoint]\ninterval_ms = 100\n"
        ),
        _ => format!(
            "job = \"nexmark.{query}\"\nshards = {shards}\nprogress = false\n\
             [source]\nconnector = \"nexmark\"\nevents = {EVENTS}\nseed = {SEED}\n"
        ),
    };
    std::fs::write(
        &path,
        format!("{text}[sink]\nconnector = \"file\"\npath = \"out-{name}\"\n{extra}"),
    )
    .unwrap();
    path
}

/// Every committed line under `out` (recursively: partitioned sinks) with
/// the directory it is in relative to `out`, and every `_SUCCESS` marker,
/// sorted; hidden (uncommitted) files are not output.
fn output_tree(out: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, into: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let at = dir.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                walk(root, &path, into);
            } else if name == "_SUCCESS" {
                into.push(format!("{at}: committed"));
            } else if !name.starts_with('.') {
                let text = std::fs::read_to_string(&path).unwrap();
                into.extend(text.lines().map(|line| format!("{at}: {line}")));
            }
        }
    }
    let mut lines = Vec::new();
    walk(out, out, &mut lines);
    lines.sort();
    lines
}

/// q18's final row per (auction, bidder): its latest bid's time (bids of
/// the same time tie, and either may be kept).
fn last_bid_per_key(lines: &[String]) -> BTreeMap<(i64, i64), i64> {
    let mut last = BTreeMap::new();
    for line in lines {
        let (_, json) = line.split_once(": ").unwrap();
        let row: serde_json::Value = serde_json::from_str(json).unwrap();
        let field = |name: &str| {
            row[name]
                .as_i64()
                .unwrap_or_else(|| panic!("{name} in {line}"))
        };
        let key = (field("auction"), field("bidder"));
        let value = field("dateTime");
        let kept = last.entry(key).or_insert(value);
        *kept = (*kept).max(value);
    }
    last
}

/// On 3 workers × 1 shard and on 2 workers × 2 shards, each query writes
/// what one process writes: keyed windows, q5 (hot items), q8 (a windowed
/// join), q18 (deduplication) and q10 (an exactly-once partitioned sink).
#[test]
fn queries_on_three_by_one_and_two_by_two_write_what_one_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let queries = ["windowed_aggregation", "q5", "q8", "q18", "q10"];
    let mut expected = Vec::new();
    for query in queries {
        let alone = query_job(dir.path(), &format!("{query}-alone"), query, 2, "");
        run_alone(&alone);
        let lines = output_tree(&dir.path().join(format!("out-{query}-alone")));
        assert!(lines.len() >= 5, "{query} wrote {} lines", lines.len());
        if query == "q10" {
            let markers = lines.iter().filter(|l| l.ends_with(": committed")).count();
            assert!(markers >= 2, "q10 marked {markers} buckets");
        }
        expected.push(lines);
    }
    for shape in [&[1, 1, 1][..], &[2, 2]] {
        let mut cluster = TestCluster::start();
        for (i, shards) in shape.iter().enumerate() {
            cluster.add_worker(&format!("w{i}"), *shards);
        }
        let total: u32 = shape.iter().sum();
        for (query, expected) in queries.iter().zip(&expected) {
            let name = format!("{query}-{}-workers", shape.len());
            let cluster_section = format!("[cluster]\nshards = {total}\n");
            let spread = query_job(dir.path(), &name, query, total, &cluster_section);
            let id = cluster.submit(&spread);
            let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(60));
            assert_eq!(status["state"], "finished", "{query}: {status}");
            let workers: std::collections::BTreeSet<&str> =
                (status["placement"].as_array().unwrap().iter())
                    .map(|p| p["worker"].as_str().unwrap())
                    .collect();
            assert_eq!(workers.len(), shape.len(), "{status}");
            let got = output_tree(&dir.path().join(format!("out-{name}")));
            if *query == "q18" {
                // An upsert stream: how many updates a key gets depends on
                // how the sources' partitions interleave (in one process
                // too); the row each key ends with does not.
                assert!(
                    last_bid_per_key(&got) == last_bid_per_key(expected),
                    "q18 on workers of {shape:?} shards ends with other rows than one process"
                );
                continue;
            }
            // q10's buckets carry their `_SUCCESS` markers, decided where
            // shard 0 runs from every worker's commits.
            assert_eq!(got.len(), expected.len(), "{query} on {shape:?}");
            assert!(
                got == *expected,
                "{query} on workers of {shape:?} shards differs from one process"
            );
        }
    }
}

/// A latency job spread over two workers (Nexmark offered at event time,
/// the latency sink): every shard reports its histogram, and every result
/// the job wrote is counted in the merged report exactly once.
#[test]
fn a_latency_sink_on_two_workers_accounts_for_every_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = TestCluster::start();
    cluster.add_worker("w0", 1);
    cluster.add_worker("w1", 1);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let job = dir.path().join("latency.toml");
    std::fs::write(
        &job,
        format!(
            "job = \"nexmark.q0\"\nshards = 2\nprogress = false\n\
             [source]\nconnector = \"nexmark\"\nevents = 100_000\nseed = {SEED}\n\
             events_per_second = 50_000\nbase_time_ms = {}\noffer_at_event_time = true\n\
             [sink]\nconnector = \"latency\"\npath = \"reports\"\n\
             [cluster]\nshards = 2\n",
            now_ms + 1_500
        ),
    )
    .unwrap();
    let id = cluster.submit(&job);
    let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(60));
    assert_eq!(status["state"], "finished", "{status}");
    let written: u64 = (status["tasks"].as_object().unwrap().values())
        .map(|task| task["totals"]["records_out"].as_u64().unwrap())
        .sum();
    let record =
        sluice_cluster::bench::latency_sink::read_reports(&dir.path().join("reports"), 2).unwrap();
    let counted = record.latency_us.len() + record.warmup + record.at_input_end;
    assert_eq!(counted, written, "{status}");
    assert!(
        written > 80_000,
        "q0 wrote {written} bids of 100,000 events"
    );
    assert_eq!(record.early, 0, "no result before the event it depends on");
    // The schedule lasts 2 s; its first second is warm-up.
    assert!(record.warmup > 30_000 && record.latency_us.len() > 30_000);
}

/// The cluster tests' windowed job over 6M events into `sink`.
fn windowed(sink: &str, extra: &str) -> String {
    windowed_job(6_000_000, sink, extra)
}

/// Runs the windowed job alone into `<dir>/reference`, and writes the same
/// job into `<dir>/out` with `extra` (pacing and sections) as
/// `<dir>/job.toml`, which it returns.
fn reference_and_job(dir: &Path, extra: &str) -> PathBuf {
    let reference = dir.join("reference.toml");
    std::fs::write(&reference, windowed("reference", "")).unwrap();
    run_alone(&reference);
    let job = dir.join("job.toml");
    std::fs::write(&job, windowed("out", extra)).unwrap();
    job
}

#[test]
fn a_killed_worker_is_replaced_and_the_job_commits_exactly_once() {
    let mut cluster = TestCluster::start();
    cluster.add_worker("a", 1);
    cluster.add_worker("b", 1);
    let dir = tempfile::tempdir().unwrap();
    let job = reference_and_job(
        dir.path(),
        "rate = 1_000_000\n[checkpoint]\ninterval_ms = 200\nstorage = \"file://checkpoints\"\n\
         [restart]\nstrategy = \"fixed-delay\"\nattempts = 3\ndelay_ms = 100\n\
         [cluster]\nshards = 2\n",
    );
    let id = cluster.submit(&job);
    // Killed once it has completed a checkpoint, well before its end.
    cluster.wait_checkpoint(&id, 3);
    cluster.kill_worker("b");
    cluster.add_worker("c", 1);
    let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(60));
    assert_eq!(status["state"], "finished", "{status}");
    assert_eq!(status["attempt"], 2, "{status}");
    assert_eq!(status["failures"], 1, "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("worker b was lost"),
        "{status}"
    );
    assert_committed_as_reference(dir.path(), 10_000, "the job whose worker was killed");
    let log = std::fs::read_to_string(cluster.dir.path().join("c.log")).unwrap();
    assert!(log.contains("restoring from checkpoint"), "{log}");
}

#[test]
fn a_worker_stopped_with_sigterm_hands_its_job_over_after_a_checkpoint() {
    let mut cluster = TestCluster::start();
    cluster.add_worker("a", 1);
    cluster.add_worker("b", 1);
    let dir = tempfile::tempdir().unwrap();
    // The clock takes checkpoint 1 at the start and no other for an hour;
    // no restart is allowed: a failure would fail the job.
    let job = reference_and_job(
        dir.path(),
        "rate = 1_000_000\n[checkpoint]\ninterval_ms = 3_600_000\nstorage = \"file://checkpoints\"\n\
         [cluster]\nshards = 2\n",
    );
    let id = cluster.submit(&job);
    cluster.wait_checkpoint(&id, 1);
    cluster.wait_until(&id, "running", Duration::from_secs(30), |s| {
        s["state"] == "running"
    });
    cluster.add_worker("c", 1);
    let signalled = Instant::now();
    cluster.signal_worker("b", "TERM");
    let exit = cluster.wait_worker_exit("b", Duration::from_secs(30));
    let exited_after = signalled.elapsed();
    assert!(exit.success(), "{exit:?}: {}", cluster.worker_log("b"));
    let moved = cluster.wait_until(&id, "moved", Duration::from_secs(30), |s| {
        s["attempt"] == 2 && s["state"] != "deploying" && s["state"] != "waiting"
    });
    eprintln!(
        "SIGTERM to worker exit {:?}, to the job running again {:?} ({})",
        exited_after,
        signalled.elapsed(),
        moved["state"]
    );
    let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(60));
    assert_eq!(status["state"], "finished", "{status}");
    assert_eq!(status["attempt"], 2, "{status}");
    assert_eq!(status["failures"], 0, "{status}");
    assert_committed_as_reference(dir.path(), 10_000, "the job whose worker was stopped");
    let b = cluster.worker_log("b");
    assert!(
        b.contains("draining 1 task(s)") && b.contains("drained"),
        "{b}"
    );
    // The second attempt restored the checkpoint the drain took.
    let c = cluster.worker_log("c");
    assert!(c.contains("restoring from checkpoint 2 "), "{c}");
    let coordinator = std::fs::read_to_string(cluster.dir.path().join("coordinator.log")).unwrap();
    assert!(
        coordinator.contains("checkpoint 2 taken for the drain"),
        "{coordinator}"
    );
}

#[test]
fn bad_files_and_wrong_secrets_are_refused() {
    let cluster = TestCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "job = \"windowed_aggregation\"\n[source]\nconnector = \"nowhere\"\n",
    )
    .unwrap();
    let output = cluster.command(&["submit", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
    let jobs = cluster.command(&["jobs"]);
    assert!(jobs.status.success(), "{jobs:?}");
    assert_eq!(
        String::from_utf8_lossy(&jobs.stdout).lines().count(),
        1,
        "only the header: nothing was submitted"
    );

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-cluster-secret-at-all").unwrap();
    let refused = sluice()
        .args(["jobs", "--coordinator", &cluster.http, "--secret-file"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("401") || stderr.contains("token"),
        "{stderr}"
    );

    let worker = sluice()
        .args([
            "worker",
            "--coordinator",
            &cluster.workers_address,
            "--name",
            "intruder",
        ])
        .args([
            "--shards",
            "1",
            "--no-pin",
            "--connect-timeout-s",
            "2",
            "--secret-file",
        ])
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!worker.status.success());
    let stderr = String::from_utf8_lossy(&worker.stderr);
    assert!(stderr.contains("secret was not accepted"), "{stderr}");
}

/// A job stopped with a savepoint in one process resumes on three shards of
/// two workers, is stopped there with a savepoint taken through the
/// coordinator, and runs to its end in one process again: the committed
/// output is the clean run's.
#[test]
fn savepoints_move_between_one_process_and_a_cluster() {
    let mut cluster = TestCluster::start();
    cluster.add_worker("a", 1);
    cluster.add_worker("b", 2);
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.toml");
    std::fs::write(&reference, windowed("reference", "")).unwrap();
    run_alone(&reference);
    let checkpointed = "rate = 1_000_000\n[checkpoint]\ninterval_ms = 200\n";
    let job = dir.path().join("job.toml");
    let savepoints = dir.path().join("savepoints");
    let savepoint_path = |output: Output| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "sluice savepoint: {stderr}");
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    };

    std::fs::write(&job, windowed("out", checkpointed)).unwrap();
    let alone = sluice()
        .arg("run")
        .arg(&job)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_000));
    let first = savepoint_path(
        sluice()
            .arg("savepoint")
            .arg(&job)
            .arg("--stop")
            .arg("--dir")
            .arg(&savepoints)
            .args(["--timeout-s", "30"])
            .output()
            .unwrap(),
    );
    let output = alone.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(first.join("checkpoints").is_dir(), "{}", first.display());

    let spread = format!("{checkpointed}[cluster]\nshards = 3\n");
    std::fs::write(&job, windowed("out", &spread)).unwrap();
    let submitted = sluice()
        .arg("submit")
        .arg(&job)
        .arg("--restore")
        .arg(&first)
        .args(["--coordinator", &cluster.http, "--secret-file"])
        .arg(cluster.secret())
        .output()
        .unwrap();
    assert!(submitted.status.success(), "{submitted:?}");
    let id = String::from_utf8(submitted.stdout)
        .unwrap()
        .trim()
        .to_owned();
    cluster.wait_for(&id, &["running"], Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(800));
    let second = savepoint_path(cluster.command(&[
        "savepoint",
        &id,
        "--stop",
        "--dir",
        savepoints.to_str().unwrap(),
        "--timeout-s",
        "30",
    ]));
    assert_ne!(first, second);
    let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(30));
    assert_eq!(status["state"], "finished", "{status}");
    assert_eq!(
        status["stopped_with"].as_str(),
        Some(second.to_str().unwrap()),
        "{status}"
    );
    for worker in ["a", "b"] {
        let log = std::fs::read_to_string(cluster.dir.path().join(format!("{worker}.log")));
        assert!(log.unwrap().contains("restoring from checkpoint"));
    }

    std::fs::write(&job, windowed("out", checkpointed)).unwrap();
    let output = sluice()
        .arg("run")
        .arg(&job)
        .arg("--restore")
        .arg(&second)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_committed_as_reference(dir.path(), 10_000, "the job moved by savepoints");
}

/// Credit-based flow control across processes: a sink that takes 500k
/// records/s per shard slows the sources of both workers while 10M records
/// cross between them, and no worker buffers what the sink cannot take.
#[test]
fn a_slow_sink_slows_every_worker_with_memory_bounded() {
    let mut cluster = TestCluster::start();
    cluster.add_worker("a", 1);
    cluster.add_worker("b", 1);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("slow.toml");
    // One-millisecond windows over a million keys: nearly every event is a
    // result of its own, so the sink takes about as many records as the
    // sources read, and each is keyed to either worker.
    std::fs::write(
        &job,
        "job = \"windowed_aggregation\"\nshards = 2\nprogress = false\n\
         [source]\nconnector = \"generator\"\nevents = 10_000_000\nkeys = 1_000_000\nseed = 2\n\
         [sink]\nconnector = \"blackhole\"\nrecords_per_second = 500_000\n\
         [params]\nwindow = \"tumbling\"\nsize_ms = 1\n[cluster]\nshards = 2\n",
    )
    .unwrap();
    let started = Instant::now();
    let id = cluster.submit(&job);
    // While it runs, the status shows each shard's progress and how much of
    // each second its output waited for credit.
    let (mut running_reports, mut most_backpressured) = (0, 0);
    let status = loop {
        let status = cluster.status(&id);
        if status["state"] == "finished" || status["state"] == "failed" {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{status}");
        let shards: Vec<&serde_json::Value> = (status["tasks"].as_object().unwrap().values())
            .flat_map(|t| t["totals"]["shards"].as_array().unwrap())
            .collect();
        if shards.len() == 2 && shards.iter().all(|s| s["records_in"].as_u64() > Some(0)) {
            running_reports += 1;
            for shard in shards {
                let ms = shard["backpressured_ms_per_s"].as_u64().unwrap();
                assert!(ms <= 1000, "{status}");
                most_backpressured = most_backpressured.max(ms);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let elapsed = started.elapsed();
    assert_eq!(status["state"], "finished", "{status}");
    assert!(
        running_reports >= 3,
        "{running_reports} reports of progress while running"
    );
    assert!(
        most_backpressured >= 300,
        "a shard behind a slow sink waited {most_backpressured} ms/s at most"
    );
    let totals = |field: &str| -> u64 {
        (status["tasks"].as_object().unwrap().values())
            .map(|t| t["totals"][field].as_u64().unwrap())
            .sum()
    };
    let (read, written, wire) = (
        totals("records_in"),
        totals("records_out"),
        totals("wire_bytes_sent"),
    );
    assert_eq!(read, 10_000_000, "{status}");
    // The sink's pace held the job back: at 2 × 500k/s, the records it
    // took need this long; so the sources read no faster.
    let sink_time = Duration::from_secs_f64(written as f64 / 1_000_000.0);
    assert!(
        written > 5_000_000 && elapsed >= sink_time,
        "{written} results in {elapsed:?}"
    );
    // Half the records crossed the link (keyed over two workers).
    assert!(wire > 10_000_000 * 8, "{wire} bytes on the wire");
    for worker in ["a", "b"] {
        let peak = cluster.worker_peak_rss(worker);
        eprintln!(
            "worker {worker}: peak RSS {} MiB, {elapsed:?}, {written} results",
            peak >> 20
        );
        assert!(
            peak < 400 << 20,
            "worker {worker} peaked at {} MiB",
            peak >> 20
        );
    }
}

/// Peers on a worker's data port that are not its cluster's workers: bytes
/// that are no handshake, a huge context length, a handshake cut short, a
/// wrong secret, and the right secret naming no link. Each is refused with
/// its reason logged against the peer; the worker stays up and runs a job.
#[test]
fn bad_peers_on_the_data_port_are_refused_and_the_worker_stays_up() {
    use sluice_network::auth::{client_handshake, ClusterSecret, MAGIC};
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let mut cluster = TestCluster::start();
    cluster.add_worker("a", 1);
    cluster.add_worker("b", 1);
    let data_address = cluster.worker_data_address("b");
    let send = |bytes: &[u8]| {
        let mut stream = TcpStream::connect(data_address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        // The worker closes the connection: the read ends.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    };
    let mut seeded = 0x5eed_u64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            seeded = seeded
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seeded >> 56) as u8
        })
        .collect();
    send(&random);
    let mut huge = MAGIC.to_vec();
    huge.extend([7; 32]);
    huge.extend(u16::MAX.to_le_bytes());
    send(&huge);
    send(&MAGIC[..5]);
    let handshake = |secret: &str, context: &[u8]| {
        let mut stream = TcpStream::connect(data_address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let secret = ClusterSecret::new(secret).unwrap();
        client_handshake(&mut stream, &secret, context).map_err(|e| e.to_string())?;
        // Accepted: the worker closes a connection that names no link.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        Ok::<(), String>(())
    };
    // The worker proves itself first: a client with another secret sees
    // that proof fail and hangs up before proving anything.
    let refused = handshake("not-the-cluster-secret-at-all", b"job-1/1/0/1");
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("does not know the cluster secret")),
        "{refused:?}"
    );
    handshake("a-cluster-secret-for-tests-only", b"\xff garbage, no link").unwrap();

    let expected = [
        "refused: the peer is not a Sluice process (bad handshake magic)",
        "refused: the handshake context is 65535 bytes, more than the 512 allowed",
        "refused: the handshake failed",
        "refused: it names no link",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = cluster.worker_log("b");
        let missing: Vec<&&str> = expected.iter().filter(|e| !log.contains(**e)).collect();
        // Each connection is refused on a thread of its own: the lines
        // come in any order.
        let refused = log.matches("data connection from 127.0.0.1:").count();
        if missing.is_empty() && refused == 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing:?} not in the log, or {refused} refusals instead of 5: {log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(cluster.worker_alive("b"));
    let dir = tempfile::tempdir().unwrap();
    let job = query_job(dir.path(), "after", "q8", 2, "[cluster]\nshards = 2\n");
    let id = cluster.submit(&job);
    let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(60));
    assert_eq!(status["state"], "finished", "{status}");
}
