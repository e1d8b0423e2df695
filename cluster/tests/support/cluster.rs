//! A cluster of real `sluice` processes on 127.0.0.1 for the tests: a
//! coordinator (that can be killed and restarted on the same ports) and
//! workers that can be killed, frozen and woken.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sluice_cluster::coordinator::parse_announcement;

pub fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

/// A coordinator and its workers, killed when dropped.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    coordinator: Child,
    workers: Vec<(String, Child)>,
    pub workers_address: String,
    pub http: String,
}

impl TestCluster {
    /// A coordinator (heartbeats every 100 ms, a worker lost after 1 s of
    /// silence) on ports of its own, with no worker yet.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "a-cluster-secret-for-tests-only").unwrap();
        std::fs::write(
            dir.path().join("cluster.toml"),
            config("127.0.0.1:0", "127.0.0.1:0"),
        )
        .unwrap();
        let (coordinator, workers_address, http) = spawn_coordinator(dir.path());
        // A restarted coordinator listens where this one does.
        let http_address = http.strip_prefix("http://").unwrap_or(&http);
        std::fs::write(
            dir.path().join("cluster.toml"),
            config(&workers_address, http_address),
        )
        .unwrap();
        TestCluster {
            dir,
            coordinator,
            workers: Vec::new(),
            workers_address,
            http,
        }
    }

    /// Kills the coordinator (SIGKILL) and starts it again on the same
    /// ports and storage.
    pub fn restart_coordinator(&mut self) {
        self.coordinator.kill().unwrap();
        self.coordinator.wait().unwrap();
        let (coordinator, workers_address, _) = spawn_coordinator(self.dir.path());
        assert_eq!(workers_address, self.workers_address);
        self.coordinator = coordinator;
    }

    /// Sends `signal` (`STOP`, `CONT`) to worker `name`.
    pub fn signal_worker(&self, name: &str, signal: &str) {
        let (_, child) = self.workers.iter().find(|(n, _)| n == name).unwrap();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The peak resident memory of worker `name` so far, in bytes.
    pub fn worker_peak_rss(&self, name: &str) -> u64 {
        let (_, child) = self.workers.iter().find(|(n, _)| n == name).unwrap();
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let kib: u64 = (status.lines())
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in {status}"));
        kib * 1024
    }

    /// Whether worker `name`'s process is still running.
    pub fn worker_alive(&mut self, name: &str) -> bool {
        let (_, child) = self.workers.iter_mut().find(|(n, _)| n == name).unwrap();
        child.try_wait().unwrap().is_none()
    }

    /// Waits (bounded) for worker `name`'s process to exit; its status.
    pub fn wait_worker_exit(&mut self, name: &str, within: Duration) -> std::process::ExitStatus {
        let (_, child) = self.workers.iter_mut().find(|(n, _)| n == name).unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "worker {name} still runs after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What worker `name` logged.
    pub fn worker_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap()
    }

    /// Where worker `name`'s data plane listens, from its log (waits,
    /// bounded, for the worker to start).
    pub fn worker_data_address(&self, name: &str) -> std::net::SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.worker_log(name);
            let address = (log.split("data plane on ").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.parse().ok());
            if let Some(address) = address {
                return address;
            }
            assert!(
                Instant::now() < deadline,
                "worker {name} did not start: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn secret(&self) -> PathBuf {
        self.dir.path().join("secret")
    }

    pub fn add_worker(&mut self, name: &str, shards: u32) {
        self.add_worker_with(name, shards, &[]);
    }

    /// A worker started with `extra` arguments.
    pub fn add_worker_with(&mut self, name: &str, shards: u32, extra: &[&str]) {
        let log = (std::fs::OpenOptions::new().create(true).append(true))
            .open(self.dir.path().join(format!("{name}.log")))
            .unwrap();
        let child = sluice()
            .args([
                "worker",
                "--coordinator",
                &self.workers_address,
                "--name",
                name,
            ])
            .args(["--shards", &shards.to_string(), "--no-pin", "--secret-file"])
            .arg(self.secret())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.workers.push((name.to_owned(), child));
    }

    pub fn kill_worker(&mut self, name: &str) {
        let at = self.workers.iter().position(|(n, _)| n == name).unwrap();
        let (_, mut child) = self.workers.remove(at);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    /// `sluice <command> … --coordinator URL --secret-file S`.
    pub fn command(&self, args: &[&str]) -> Output {
        sluice()
            .args(args)
            .args(["--coordinator", &self.http, "--secret-file"])
            .arg(self.secret())
            .output()
            .unwrap()
    }

    pub fn submit(&self, job: &Path) -> String {
        let output = self.command(&["submit", job.to_str().unwrap()]);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    pub fn status(&self, id: &str) -> serde_json::Value {
        let output = self.command(&["status", id]);
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Waits (bounded) until job `id` is in one of `states`; returns its status.
    pub fn wait_for(&self, id: &str, states: &[&str], within: Duration) -> serde_json::Value {
        self.wait_until(id, &format!("{states:?}"), within, |status| {
            states.iter().any(|s| status["state"] == *s)
        })
    }

    /// Waits (bounded) until job `id` has completed checkpoint `n`.
    pub fn wait_checkpoint(&self, id: &str, n: u64) -> serde_json::Value {
        let what = format!("past checkpoint {n}");
        self.wait_until(id, &what, Duration::from_secs(30), |status| {
            status["last_checkpoint"].as_u64().unwrap_or(0) >= n
        })
    }

    /// Waits (bounded) until job `id`'s status is `what` `done` checks;
    /// returns that status.
    pub fn wait_until(
        &self,
        id: &str,
        what: &str,
        within: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(id);
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} not {what} within {within:?}: {status}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of every process's log, for a failure's message.
    pub fn logs(&self) -> String {
        let mut names = vec!["coordinator".to_owned()];
        names.extend(self.workers.iter().map(|(name, _)| name.clone()));
        let mut all = String::new();
        for name in names {
            let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            all.push_str(&format!("--- {name}.log (last 30 lines)\n{tail}\n"));
        }
        all
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.workers {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.coordinator.kill();
        let _ = self.coordinator.wait();
    }
}

fn config(workers: &str, http: &str) -> String {
    format!(
        "listen = \"{workers}\"\nhttp = \"{http}\"\nstorage = \"state\"\n\
         secret_file = \"secret\"\nheartbeat_interval_ms = 100\nheartbeat_timeout_ms = 1000\n"
    )
}

/// Starts `sluice coordinator` with `<dir>/cluster.toml`, logging to
/// `<dir>/coordinator.log`; its process, workers' address and HTTP URL.
fn spawn_coordinator(dir: &Path) -> (Child, String, String) {
    let log = (std::fs::OpenOptions::new().create(true).append(true))
        .open(dir.join("coordinator.log"))
        .unwrap();
    let mut coordinator = sluice()
        .args(["coordinator", "--config"])
        .arg(dir.join("cluster.toml"))
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(coordinator.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (workers_address, http) =
        parse_announcement(&line).unwrap_or_else(|| panic!("no addresses in {line:?}"));
    (coordinator, workers_address, http)
}
