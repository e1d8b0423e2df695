//! Coordinators on etcd (a real etcd on 127.0.0.1): three coordinators, one
//! leads; a checkpointed job on two workers writes exactly-once files.
//! Killing the leader (SIGKILL) at seeded moments hands the job to a
//! standby, which restores it from its last checkpoint: the output equals
//! the failure-free run's, and the time from the kill to the job running
//! again is printed. etcd frozen for less than the lease: the job runs on
//! under the same leader; frozen for longer: the leader steps down, nobody
//! is elected while etcd is away, and a standby takes over once it is back.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use sluice_tests::etcd_server::EtcdTestServer;
use support::cluster::sluice;
use support::{assert_committed_as_reference, lines_of, windowed_job};

/// A coordinator process and the lines it printed on stdout.
struct Coordinator {
    name: String,
    child: Child,
    announced: Receiver<String>,
    http: Option<String>,
}

/// Three coordinators on etcd, two workers of one shard each.
struct HaCluster {
    dir: tempfile::TempDir,
    coordinators: Vec<Coordinator>,
    workers: Vec<Child>,
    /// Every coordinator's HTTP API, comma-separated (as an operator gives
    /// them to the commands).
    every_http: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl HaCluster {
    fn start(etcd: &EtcdTestServer, lease_ttl_s: u64) -> HaCluster {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "a-cluster-secret-for-tests-only").unwrap();
        let (mut worker_ports, mut http_urls) = (Vec::new(), Vec::new());
        for i in 1..=3 {
            let (workers, http) = (free_port(), free_port());
            worker_ports.push(format!("127.0.0.1:{workers}"));
            http_urls.push(format!("http://127.0.0.1:{http}"));
            std::fs::write(
                dir.path().join(format!("c{i}.toml")),
                format!(
                    "listen = \"127.0.0.1:{workers}\"\nhttp = \"127.0.0.1:{http}\"\nstorage = \"state-{i}\"\n\
                     secret_file = \"secret\"\nheartbeat_interval_ms = 100\nheartbeat_timeout_ms = 1000\n\
                     [ha]\netcd = [\"{}\"]\nname = \"c{i}\"\nprefix = \"/sluice/test\"\nlease_ttl_s = {lease_ttl_s}\n",
                    etcd.endpoint()
                ),
            )
            .unwrap();
        }
        let mut cluster = HaCluster {
            dir,
            coordinators: Vec::new(),
            workers: Vec::new(),
            every_http: http_urls.join(","),
        };
        for i in 1..=3 {
            cluster.start_coordinator(&format!("c{i}"));
        }
        let coordinators = worker_ports.join(",");
        for name in ["a", "b"] {
            let log =
                std::fs::File::create(cluster.dir.path().join(format!("{name}.log"))).unwrap();
            let worker = sluice()
                .args(["worker", "--coordinator", &coordinators, "--name", name])
                .args(["--shards", "1", "--no-pin", "--connect-timeout-s", "120"])
                .arg("--secret-file")
                .arg(cluster.dir.path().join("secret"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            cluster.workers.push(worker);
        }
        cluster
    }

    fn start_coordinator(&mut self, name: &str) {
        let log = (std::fs::OpenOptions::new().create(true).append(true))
            .open(self.dir.path().join(format!("{name}.log")))
            .unwrap();
        let mut child = sluice()
            .args(["coordinator", "--config"])
            .arg(self.dir.path().join(format!("{name}.toml")))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let announced = lines_of(child.stdout.take().unwrap());
        let started = Coordinator {
            name: name.to_owned(),
            child,
            announced,
            http: None,
        };
        // In its old place: the indices the test holds stay right.
        match self.coordinators.iter().position(|c| c.name == name) {
            Some(at) => self.coordinators[at] = started,
            None => self.coordinators.push(started),
        }
    }

    /// Waits (bounded) until exactly one live coordinator announces that it
    /// listens (it leads); its index.
    fn wait_leader(&mut self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            for (i, c) in self.coordinators.iter_mut().enumerate() {
                if let Ok(line) = c.announced.try_recv() {
                    let (_, http) = sluice_cluster::coordinator::parse_announcement(&line)
                        .unwrap_or_else(|| panic!("{}: {line}", c.name));
                    c.http = Some(http);
                    return i;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no coordinator leads after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// No coordinator but `leader` announced anything meanwhile.
    fn assert_no_other_leader(&mut self, leader: usize) {
        for (i, c) in self.coordinators.iter_mut().enumerate() {
            if i != leader {
                assert!(c.announced.try_recv().is_err(), "{} leads too", c.name);
            }
        }
    }

    fn cli(&self, leader: usize, args: &[&str]) -> std::process::Output {
        self.cli_at(self.coordinators[leader].http.as_deref().unwrap(), args)
    }

    fn cli_at(&self, coordinator: &str, args: &[&str]) -> std::process::Output {
        sluice()
            .args(args)
            .args(["--coordinator", coordinator, "--secret-file"])
            .arg(self.dir.path().join("secret"))
            .output()
            .unwrap()
    }

    fn status(&self, leader: usize, id: &str) -> Value {
        let output = self.cli(leader, &["status", id]);
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Waits (bounded) until `done` holds for job `id` as `leader` reports it.
    fn wait_status(
        &self,
        leader: usize,
        id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let status = self.status(leader, id);
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "job {id} not {what}: {status}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self, i: usize) {
        let _ = self.coordinators[i].child.kill();
        let _ = self.coordinators[i].child.wait();
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl Drop for HaCluster {
    fn drop(&mut self) {
        for child in
            (self.workers.iter_mut()).chain(self.coordinators.iter_mut().map(|c| &mut c.child))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const CHECKPOINTED: &str = "rate = 1_000_000\n[checkpoint]\ninterval_ms = 200\n\
    storage = \"file://checkpoints\"\n\
    [restart]\nstrategy = \"fixed-delay\"\nattempts = 5\ndelay_ms = 100\n\
    [cluster]\nshards = 2\n";

/// The failure-free run into `<dir>/reference`, and the job file of the
/// same job into `<dir>/out`.
fn reference_and_job(dir: &Path, events: u64) -> PathBuf {
    let reference = dir.join("reference.toml");
    std::fs::write(&reference, windowed_job(events, "reference", "")).unwrap();
    let output = sluice().arg("run").arg(&reference).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let job = dir.join("job.toml");
    std::fs::write(&job, windowed_job(events, "out", CHECKPOINTED)).unwrap();
    job
}

fn submit(cluster: &HaCluster, leader: usize, job: &Path) -> String {
    let output = cluster.cli(leader, &["submit", job.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A tiny deterministic generator for the kill moments.
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn killing_the_leader_hands_the_job_to_a_standby_exactly_once() {
    let mut seed: u64 = std::env::var("SLUICE_HA_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_207);
    eprintln!("seed {seed} (SLUICE_HA_SEED)");
    let etcd = EtcdTestServer::start().unwrap();
    let mut cluster = HaCluster::start(&etcd, 2);
    let mut leader = cluster.wait_leader(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    cluster.assert_no_other_leader(leader);
    let dir = tempfile::tempdir().unwrap();
    let job = reference_and_job(dir.path(), 8_000_000);
    let id = submit(&cluster, leader, &job);
    let mut attempt = 0;
    for kill in 0..2 {
        // Killed once it completed a seeded number of checkpoints more.
        let status = cluster.wait_status(leader, &id, "running", |s| s["state"] == "running");
        attempt = status["attempt"].as_u64().unwrap();
        let from = status["last_checkpoint"].as_u64().unwrap_or(0);
        let more = 1 + next(&mut seed) % 6;
        cluster.wait_status(leader, &id, "checkpointed", |s| {
            s["last_checkpoint"].as_u64().unwrap_or(0) >= from + more
        });
        let killed = Instant::now();
        let name = cluster.coordinators[leader].name.clone();
        cluster.kill(leader);
        let next_leader = cluster.wait_leader(Duration::from_secs(30));
        let elected = killed.elapsed();
        assert_ne!(next_leader, leader);
        leader = next_leader;
        let running = cluster.wait_status(leader, &id, "running again", |s| {
            s["state"] == "running" && s["attempt"].as_u64().unwrap() > attempt
        });
        eprintln!(
            "kill {kill} of {name} after {more} more checkpoint(s): {} elected after {elected:?}, \
             the job running again (attempt {}) after {:?}",
            cluster.coordinators[leader].name,
            running["attempt"],
            killed.elapsed()
        );
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "failover within 10 s"
        );
        // The killed one comes back as a standby (as systemd would restart it).
        cluster.start_coordinator(&name);
    }
    let status = cluster.wait_status(leader, &id, "finished", |s| {
        s["state"] == "finished" || s["state"] == "failed"
    });
    assert_eq!(status["state"], "finished", "{status}");
    assert!(status["attempt"].as_u64().unwrap() > attempt, "{status}");
    cluster.assert_no_other_leader(leader);
    // Given every coordinator, a command finds the leader (the standbys do
    // not listen).
    let output = cluster.cli_at(&cluster.every_http, &["status", &id]);
    assert!(output.status.success(), "{output:?}");
    let through_all: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(through_all["state"], "finished", "{through_all}");
    assert_eq!(through_all["attempt"], status["attempt"], "{through_all}");
    assert_committed_as_reference(dir.path(), 10_000, "the job whose leader was killed twice");
}

#[test]
fn a_frozen_etcd_keeps_the_job_running_and_elects_nobody_wrongly() {
    let etcd = EtcdTestServer::start().unwrap();
    let mut cluster = HaCluster::start(&etcd, 6);
    let first = cluster.wait_leader(Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let job = reference_and_job(dir.path(), 12_000_000);
    let id = submit(&cluster, first, &job);
    cluster.wait_status(first, &id, "checkpointed", |s| {
        s["state"] == "running" && s["last_checkpoint"].as_u64().unwrap_or(0) >= 2
    });

    // Away for less than the lease (6 s; the leader steps down 4.5 s after
    // its last renewal, sent every 1.5 s): the job runs on, same leader,
    // same attempt.
    let before = cluster.status(first, &id);
    etcd.signal("STOP");
    std::thread::sleep(Duration::from_millis(1_500));
    let during = cluster.status(first, &id);
    etcd.signal("CONT");
    assert_eq!(during["attempt"], before["attempt"], "{during}");
    assert_eq!(during["state"], "running", "{during}");
    assert!(
        during["tasks"]["a"]["totals"]["records_in"].as_u64()
            > before["tasks"]["a"]["totals"]["records_in"].as_u64(),
        "records flowed while etcd was away: {before} then {during}"
    );
    let after = cluster.wait_status(first, &id, "checkpointing again", |s| {
        s["last_checkpoint"].as_u64() > during["last_checkpoint"].as_u64()
    });
    assert_eq!(after["attempt"], before["attempt"], "{after}");
    cluster.assert_no_other_leader(first);

    // Away for longer than the lease: the leader steps down; nobody can be
    // elected while etcd is away; a standby leads once it is back.
    etcd.signal("STOP");
    let frozen = Instant::now();
    let status = loop {
        if let Some(status) = cluster.coordinators[first].child.try_wait().unwrap() {
            break status;
        }
        assert!(
            frozen.elapsed() < Duration::from_secs(15),
            "the leader did not step down"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stepped_down = frozen.elapsed();
    assert_eq!(
        status.code(),
        Some(3),
        "{}",
        cluster.log(&cluster.coordinators[first].name)
    );
    std::thread::sleep(Duration::from_secs(2));
    cluster.assert_no_other_leader(first);
    etcd.signal("CONT");
    let second = cluster.wait_leader(Duration::from_secs(30));
    assert_ne!(second, first);
    eprintln!(
        "etcd frozen: {} stepped down after {stepped_down:?}; {} leads {:?} after the freeze began",
        cluster.coordinators[first].name,
        cluster.coordinators[second].name,
        frozen.elapsed()
    );
    let status = cluster.wait_status(second, &id, "finished", |s| {
        s["state"] == "finished" || s["state"] == "failed"
    });
    assert_eq!(status["state"], "finished", "{status}");
    assert_committed_as_reference(dir.path(), 10_000, "the job whose etcd froze");
}
