//! Workers on a real network path: two network namespaces made by the test
//! (each a "machine" with its own stack), joined by a veth pair. The
//! coordinator and worker a live in one, worker b in the other; their
//! links cross the veth, not loopback. A windowed aggregation and a join
//! spread over them write what one process writes.
//!
//! Needs root (`ip netns`); the namespaces and the veth pair are removed
//! when the test ends, passed or not.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{committed_lines, EVENTS, SEED};

fn sluice_path() -> &'static str {
    env!("CARGO_BIN_EXE_sluice")
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("`ip` runs");
    assert!(output.status.success(), "ip {args:?}: {output:?}");
}

/// Two namespaces joined by a veth pair (`10.231.N.1` and `.2`); the
/// processes started in them are killed and the namespaces removed on drop.
struct TwoMachines {
    names: [String; 2],
    addresses: [String; 2],
    processes: Vec<Child>,
}

impl TwoMachines {
    fn new() -> Self {
        let id = std::process::id();
        let names = [format!("sluice-a-{id}"), format!("sluice-b-{id}")];
        let subnet = id % 250;
        let addresses = [format!("10.231.{subnet}.1"), format!("10.231.{subnet}.2")];
        let veth = [format!("sla{id}"), format!("slb{id}")];
        let machines = TwoMachines {
            names: names.clone(),
            addresses: addresses.clone(),
            processes: Vec::new(),
        };
        for name in &names {
            ip(&["netns", "add", name]);
            ip(&["-n", name, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link", "add", &veth[0], "netns", &names[0], "type", "veth", "peer", "name", &veth[1],
            "netns", &names[1],
        ]);
        for i in 0..2 {
            let address = format!("{}/30", addresses[i]);
            ip(&["-n", &names[i], "addr", "add", &address, "dev", &veth[i]]);
            ip(&["-n", &names[i], "link", "set", &veth[i], "up"]);
        }
        machines
    }

    /// `sluice <args>` on machine `i`.
    fn sluice(&self, i: usize) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.names[i], sluice_path()]);
        command
    }
}

impl Drop for TwoMachines {
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = child.kill();
            let _ = child.wait();
        }
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn job(dir: &Path, name: &str, query: &str, cluster: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = match query {
        "windowed_aggregation" => "job = \"windowed_aggregation\"\nshards = 2\nprogress = false\n\
             [source]\nconnector = \"generator\"\nevents = 1_000_000\nkeys = 5_000\nseed = 8\n\
             [params]\nwindow = \"sliding\"\nsize_ms = 2_000\nslide_ms = 500\n"
            .to_owned(),
        _ => format!(
            "job = \"nexmark.{query}\"\nshards = 2\nprogress = false\n\
             [source]\nconnector = \"nexmark\"\nevents = {EVENTS}\nseed = {SEED}\n"
        ),
    };
    std::fs::write(
        &path,
        format!("{text}[sink]\nconnector = \"file\"\npath = \"out-{name}\"\n{cluster}"),
    )
    .unwrap();
    path
}

#[test]
fn workers_in_two_network_namespaces_write_what_one_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "a-cluster-secret-for-tests-only").unwrap();
    let mut machines = TwoMachines::new();
    let [a, b] = machines.addresses.clone();
    std::fs::write(
        dir.path().join("cluster.toml"),
        format!(
            "listen = \"{a}:0\"\nhttp = \"{a}:0\"\nstorage = \"state\"\nsecret_file = \"secret\"\n\
             heartbeat_interval_ms = 100\nheartbeat_timeout_ms = 2000\n"
        ),
    )
    .unwrap();
    let mut coordinator = machines
        .sluice(0)
        .args(["coordinator", "--config"])
        .arg(dir.path().join("cluster.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(coordinator.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    machines.processes.push(coordinator);
    let (workers_address, http) = sluice_cluster::coordinator::parse_announcement(&line)
        .unwrap_or_else(|| panic!("no addresses in {line:?}"));
    assert!(workers_address.starts_with(&a), "{line}");
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
        let worker = machines
            .sluice(i)
            .args(["worker", "--coordinator", &workers_address, "--name", name])
            .args(["--shards", "1", "--no-pin", "--secret-file"])
            .arg(dir.path().join("secret"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        machines.processes.push(worker);
    }
    let command = |args: &[&str]| -> Output {
        machines
            .sluice(0)
            .args(args)
            .args(["--coordinator", &http, "--secret-file"])
            .arg(dir.path().join("secret"))
            .output()
            .unwrap()
    };
    // Worker b's data plane is on its own machine's address.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(dir.path().join("b.log")).unwrap();
        if log.contains("registered with the coordinator") {
            assert!(log.contains(&format!("data plane on {b}:")), "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "b did not register: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for query in ["windowed_aggregation", "q8"] {
        let alone = job(dir.path(), &format!("{query}-alone"), query, "");
        let output = Command::new(sluice_path())
            .arg("run")
            .arg(&alone)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let spread = job(
            dir.path(),
            &format!("{query}-spread"),
            query,
            "[cluster]\nshards = 2\n",
        );
        let submitted = command(&["submit", spread.to_str().unwrap()]);
        assert!(submitted.status.success(), "{submitted:?}");
        let id = String::from_utf8_lossy(&submitted.stdout).trim().to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            let output = command(&["status", &id]);
            assert!(output.status.success(), "{output:?}");
            let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            if status["state"] == "finished" || status["state"] == "failed" {
                break status;
            }
            assert!(Instant::now() < deadline, "{status}");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status["state"], "finished", "{status}");
        let addresses: Vec<&str> = (status["placement"].as_array().unwrap().iter())
            .map(|p| p["data_address"].as_str().unwrap())
            .collect();
        assert!(
            addresses.iter().any(|d| d.starts_with(&a))
                && addresses.iter().any(|d| d.starts_with(&b)),
            "{status}"
        );
        let expected = committed_lines(&dir.path().join(format!("out-{query}-alone")));
        let got = committed_lines(&dir.path().join(format!("out-{query}-spread")));
        assert!(expected.len() > 10, "{query}: {} lines", expected.len());
        assert!(
            got == expected,
            "{query} across namespaces differs from one process"
        );
    }
}
