//! Failures of a checkpointed job on a cluster of real processes: a worker
//! killed (SIGKILL) at seeded moments, a worker frozen (SIGSTOP) past the
//! heartbeat timeout and woken, the coordinator killed and restarted, the
//! links between workers delayed, stalled and cut by a proxy. Each
//! time the job recovers from its last completed checkpoint and commits
//! exactly what a failure-free run writes.

use std::path::Path;
use std::time::{Duration, Instant};

mod support;
use support::cluster::{sluice, TestCluster};
use support::proxy::{FaultProxy, Tamper};
use support::{committed_lines, windowed_job};

const CHECKPOINTED: &str = "rate = 1_000_000\n[checkpoint]\ninterval_ms = 200\n\
    [restart]\nstrategy = \"fixed-delay\"\nattempts = 5\ndelay_ms = 100\n\
    [cluster]\nshards = 2\n";

/// The failure-free run's committed lines (one process, no checkpoints).
fn reference(dir: &Path, events: u64) -> Vec<String> {
    let job = dir.join("reference.toml");
    std::fs::write(&job, windowed_job(events, "reference", "")).unwrap();
    let output = sluice().arg("run").arg(&job).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let lines = committed_lines(&dir.join("reference"));
    assert!(lines.len() > 1_000, "{} lines", lines.len());
    lines
}

fn assert_exactly(got: Vec<String>, expected: &[String], what: &str) {
    assert_eq!(got.len(), expected.len(), "lines committed by {what}");
    assert!(
        got == expected,
        "{what} committed other lines than the clean run"
    );
}

/// Waits (bounded) until job `id` is running; returns when it started.
fn wait_running(cluster: &TestCluster, id: &str) -> Instant {
    cluster.wait_for(id, &["running"], Duration::from_secs(30));
    Instant::now()
}

/// A seeded sequence (splitmix64): the same moments on every run.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    }
}

#[test]
fn a_worker_killed_at_ten_seeded_moments_costs_nothing() {
    const EVENTS: u64 = 3_000_000;
    let dir = tempfile::tempdir().unwrap();
    let expected = reference(dir.path(), EVENTS);
    let mut cluster = TestCluster::start();
    let mut live = vec!["w0".to_owned(), "w1".to_owned()];
    for name in &live {
        cluster.add_worker(name, 1);
    }
    let mut seeded = Seeded(16);
    for round in 0..10 {
        let sink = format!("out-{round}");
        let job = dir.path().join(format!("job-{round}.toml"));
        std::fs::write(&job, windowed_job(EVENTS, &sink, CHECKPOINTED)).unwrap();
        let id = cluster.submit(&job);
        // Anywhere from the first records to near the end of the input.
        let moment = Duration::from_millis(seeded.below(2_500));
        let started = wait_running(&cluster, &id);
        std::thread::sleep(moment.saturating_sub(started.elapsed()));
        let victim = live.remove(seeded.below(2) as usize);
        cluster.kill_worker(&victim);
        let replacement = format!("w{}", round + 2);
        cluster.add_worker(&replacement, 1);
        live.push(replacement);
        let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(60));
        let what = format!("round {round} (worker {victim} killed {moment:?} after start)");
        assert_eq!(status["state"], "finished", "{what}: {status}");
        assert_exactly(committed_lines(&dir.path().join(&sink)), &expected, &what);
    }
}

/// Workers a and b (1 shard each) running a checkpointed job of 4M events
/// into `<dir>/out`, with the failure-free run's lines: (dir, lines,
/// cluster, job id).
fn checkpointed_job_on_workers_a_and_b() -> (tempfile::TempDir, Vec<String>, TestCluster, String) {
    const EVENTS: u64 = 4_000_000;
    let dir = tempfile::tempdir().unwrap();
    let expected = reference(dir.path(), EVENTS);
    let mut cluster = TestCluster::start();
    cluster.add_worker("a", 1);
    cluster.add_worker("b", 1);
    let job = dir.path().join("job.toml");
    std::fs::write(&job, windowed_job(EVENTS, "out", CHECKPOINTED)).unwrap();
    let id = cluster.submit(&job);
    wait_running(&cluster, &id);
    (dir, expected, cluster, id)
}

/// A worker frozen past the heartbeat timeout is lost: the job restarts on
/// the others. When it wakes it finds its coordinator connection gone,
/// cancels its stale task (fenced: it commits nothing) and registers again.
#[test]
fn a_frozen_worker_is_replaced_and_fenced_when_it_wakes() {
    let (dir, expected, mut cluster, id) = checkpointed_job_on_workers_a_and_b();
    cluster.wait_checkpoint(&id, 2);
    cluster.signal_worker("b", "STOP");
    cluster.add_worker("c", 1);
    // Lost after the 1 s heartbeat timeout; restarted on a and c.
    let replaced = "redeployed without the frozen worker";
    cluster.wait_until(&id, replaced, Duration::from_secs(30), |status| {
        status["attempt"].as_u64().unwrap_or(0) >= 2
    });
    std::thread::sleep(Duration::from_millis(500));
    cluster.signal_worker("b", "CONT");
    let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(60));
    assert_eq!(status["state"], "finished", "{status}");
    assert_eq!(status["attempt"], 2, "{status}");
    let workers: Vec<&str> = (status["placement"].as_array().unwrap().iter())
        .map(|p| p["worker"].as_str().unwrap())
        .collect();
    assert!(!workers.contains(&"b"), "{status}");
    assert_exactly(
        committed_lines(&dir.path().join("out")),
        &expected,
        "the job whose worker froze",
    );
    // b woke, was fenced and is back: registered again, usable later.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = cluster.worker_log("b");
        if log.matches("registered with the coordinator").count() >= 2 {
            assert!(log.contains("was lost"), "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "b did not register again: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The coordinator killed mid-job and started again finds the job in its
/// record, redeploys it from the last completed checkpoint onto the workers
/// that register again, and the job commits exactly the clean output.
#[test]
fn a_restarted_coordinator_resumes_its_job_exactly_once() {
    let (dir, expected, mut cluster, id) = checkpointed_job_on_workers_a_and_b();
    cluster.wait_checkpoint(&id, 3);
    cluster.restart_coordinator();
    let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(60));
    assert_eq!(status["state"], "finished", "{status}");
    assert!(status["attempt"].as_u64().unwrap() >= 2, "{status}");
    assert_exactly(
        committed_lines(&dir.path().join("out")),
        &expected,
        "the job whose coordinator was restarted",
    );
    assert!(cluster
        .worker_log("a")
        .contains("restoring from checkpoint"));
}

/// Workers a and b (1 shard each), each dialled through a proxy of its
/// own: it advertises the proxy's address, and the proxy forwards to where
/// its data plane listens (read from its log).
fn workers_behind_proxies(cluster: &mut TestCluster) -> Vec<FaultProxy> {
    let mut proxies = Vec::new();
    for name in ["a", "b"] {
        let proxy = FaultProxy::start();
        let advertised = proxy.address().to_string();
        let args = [
            "--data-address",
            "127.0.0.1:0",
            "--advertise-address",
            &advertised,
        ];
        cluster.add_worker_with(name, 1, &args);
        proxy.set_target(cluster.worker_data_address(name));
        proxies.push(proxy);
    }
    proxies
}

/// Every link between workers a and b passes a fault-injecting proxy (each
/// worker advertises its proxy as its data address): 5 ms of delay each
/// way, then a 400 ms stall of all forwarding, then every connection cut.
/// The stall only slows the job; the cut fails its links, the job restarts
/// from its last checkpoint over new connections, and commits exactly the
/// clean output.
#[test]
fn links_delayed_stalled_and_cut_by_a_proxy_cost_nothing() {
    const EVENTS: u64 = 4_000_000;
    let dir = tempfile::tempdir().unwrap();
    let expected = reference(dir.path(), EVENTS);
    let mut cluster = TestCluster::start();
    let proxies = workers_behind_proxies(&mut cluster);
    for proxy in &proxies {
        proxy.set_delay(Duration::from_millis(5));
    }
    let job = dir.path().join("job.toml");
    std::fs::write(&job, windowed_job(EVENTS, "out", CHECKPOINTED)).unwrap();
    let id = cluster.submit(&job);
    wait_running(&cluster, &id);
    let before = cluster.wait_checkpoint(&id, 2);
    let placement = before["placement"].to_string();
    for proxy in &proxies {
        assert!(
            placement.contains(&proxy.address().to_string()),
            "workers are dialled at their proxies: {placement}"
        );
    }
    for proxy in &proxies {
        proxy.set_stalled(true);
    }
    std::thread::sleep(Duration::from_millis(400));
    for proxy in &proxies {
        proxy.set_stalled(false);
    }
    let stalled_at = before["last_checkpoint"].as_u64().unwrap();
    cluster.wait_checkpoint(&id, stalled_at + 1);
    assert_eq!(cluster.status(&id)["attempt"], 1, "a stall fails nothing");
    let connections: u64 = proxies.iter().map(FaultProxy::connections).sum();
    for proxy in &proxies {
        proxy.cut();
    }
    let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(60));
    assert_eq!(status["state"], "finished", "{status}");
    assert!(status["attempt"].as_u64().unwrap() >= 2, "{status}");
    let reconnected: u64 = proxies.iter().map(FaultProxy::connections).sum();
    assert!(
        reconnected > connections && connections > 0,
        "links reconnected through the proxies: {connections} then {reconnected}"
    );
    // One link between the two shards, dialled by one of them: through
    // the other's proxy.
    let forwarded: u64 = proxies.iter().map(FaultProxy::bytes).sum();
    assert!(
        forwarded > 1_000_000,
        "{forwarded} bytes through the proxies"
    );
    let logs = cluster.worker_log("a") + &cluster.worker_log("b");
    assert!(
        logs.contains("failed: link to worker"),
        "the cut is logged as a failed link: {logs}"
    );
    assert_exactly(
        committed_lines(&dir.path().join("out")),
        &expected,
        "the job whose links were cut",
    );
}

/// A peer whose link is up sends a spoiled batch frame: a huge length, an
/// unknown kind, record ends past its records, a frame cut short. Each time
/// the receiving worker closes the link with an error naming the peer and
/// the reason, stays up, and the job restarts from its last checkpoint: one
/// spoiled frame per attempt (a proxy between the workers spoils the 200th
/// batch frame of each new link), and the output is exactly the clean run's.
#[test]
fn spoiled_frames_on_a_live_link_close_it_and_cost_nothing() {
    const EVENTS: u64 = 4_000_000;
    let dir = tempfile::tempdir().unwrap();
    let expected = reference(dir.path(), EVENTS);
    let mut cluster = TestCluster::start();
    let proxies = workers_behind_proxies(&mut cluster);
    let tampers = [
        Tamper::HugeLength,
        Tamper::UnknownKind,
        Tamper::BadRecordEnds,
        Tamper::Truncated,
    ];
    for proxy in &proxies {
        proxy.tamper_links(&tampers, 200);
    }
    let job = dir.path().join("job.toml");
    std::fs::write(&job, windowed_job(EVENTS, "out", CHECKPOINTED)).unwrap();
    let id = cluster.submit(&job);
    let status = cluster.wait_for(&id, &["finished", "failed"], Duration::from_secs(90));
    assert_eq!(status["state"], "finished", "{status}");
    assert_eq!(
        status["attempt"], 5,
        "one failed attempt per spoiled frame: {status}"
    );
    let logs = cluster.worker_log("a") + &cluster.worker_log("b");
    for reason in [
        "over the link's limit",
        "unknown frame kind 238",
        "malformed batch",
        "the stream ended",
    ] {
        let closed = logs
            .lines()
            .any(|l| l.contains("failed: link to worker") && l.contains(reason));
        assert!(closed, "no link closed for {reason:?}: {logs}");
    }
    assert!(cluster.worker_alive("a") && cluster.worker_alive("b"));
    assert_exactly(
        committed_lines(&dir.path().join("out")),
        &expected,
        "the job whose links carried spoiled frames",
    );
}
