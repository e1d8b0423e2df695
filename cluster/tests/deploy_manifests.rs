//! The deployment files under `deploy/` stay usable: the Kubernetes
//! manifests pass the API's schema (kubernetes-validate, strict, with the
//! schemas it ships: nothing is fetched), the job file and coordinator
//! settings in their ConfigMaps are accepted by `sluice`, and every
//! command line the manifests, the systemd units and the container recipe
//! give `sluice` parses.
//!
//! The validator lives in a Python virtual environment that `scripts/test`
//! installs once (`$SLUICE_K8S_TOOLS`, default
//! `/var/cache/sluice-tools/k8s-validate`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod support;
use sluice_tests::etcd_server::EtcdTestServer;
use support::cluster::sluice;
use support::kafka::Broker;

/// The Kafka bootstrap servers the example job files name.
const KAFKA_IN_THE_MANIFESTS: &str = "kafka-bootstrap.kafka:9092";

/// The etcd endpoint the coordinators' settings name.
const ETCD_IN_THE_MANIFESTS: &str = "etcd-client.etcd:2379";

/// The oldest and newest Kubernetes the manifests are checked against.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.33.0"];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn manifests() -> Vec<PathBuf> {
    let dir = repository().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = (std::fs::read_dir(&dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "manifests in {}: {files:?}",
        dir.display()
    );
    files
}

/// The virtual environment with kubernetes-validate (and PyYAML).
fn tools() -> PathBuf {
    let dir = std::env::var_os("SLUICE_K8S_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/sluice-tools/k8s-validate"));
    assert!(
        dir.join("bin/kubernetes-validate").exists(),
        "kubernetes-validate is not installed in {}: scripts/test installs it \
         (python3 -m venv DIR && DIR/bin/pip install kubernetes-validate==1.37.0), \
         or set SLUICE_K8S_TOOLS",
        dir.display()
    );
    dir
}

fn validate(files: &[PathBuf], version: &str) -> Output {
    Command::new(tools().join("bin/kubernetes-validate"))
        .args(["--strict", "--quiet", "-k", version])
        .args(files)
        .output()
        .unwrap()
}

/// Every document of a YAML file, as JSON.
fn documents(file: &Path) -> Vec<Value> {
    let output = Command::new(tools().join("bin/python"))
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{file:?}: {output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn all_documents() -> Vec<Value> {
    manifests().iter().flat_map(|f| documents(f)).collect()
}

fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    (documents.iter())
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"))
}

/// The containers' `args` of a workload, with `$(VAR)` replaced as the
/// kubelet would from `values`.
fn container_args(workload: &Value, values: &[(&str, &str)]) -> Vec<String> {
    let containers = workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{workload}");
    (containers[0]["args"].as_array().unwrap().iter())
        .map(|a| {
            let mut arg = a.as_str().unwrap().to_owned();
            for (name, value) in values {
                arg = arg.replace(&format!("$({name})"), value);
            }
            assert!(!arg.contains("$("), "an unknown variable in {arg}");
            arg
        })
        .collect()
}

/// Runs `sluice args…` and asserts that the command line parsed: whatever
/// failed afterwards (nothing to connect to here), it was not a usage
/// error (status 2 with clap's message).
fn assert_parses(args: &[String], what: &str) -> Output {
    let output = sluice().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("unexpected argument")
            && !stderr.contains("Usage:")
            && !stderr.contains("invalid value"),
        "{what}: `sluice {}` is not a valid command line: {stderr}",
        args.join(" ")
    );
    output
}

/// Runs a worker's command line with its addresses and secret replaced by
/// ones of this machine: it parses, starts and gives up on the coordinator
/// it cannot reach (rather than on its arguments or secret).
fn assert_worker_runs(mut args: Vec<String>, secret: &Path, what: &str) {
    assert_eq!(args[0], "worker", "{what}");
    for (flag, value) in [
        ("--coordinator", "127.0.0.1:9"),
        ("--data-address", "127.0.0.1:0"),
        ("--metrics-addr", "127.0.0.1:0"),
        ("--secret-file", secret.to_str().unwrap()),
    ] {
        if let Some(at) = args.iter().position(|a| a == flag) {
            args[at + 1] = value.to_owned();
        }
    }
    args.extend(["--connect-timeout-s".into(), "0".into()]);
    let output = assert_parses(&args, what);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("127.0.0.1:9 is unreachable"),
        "{what}: {stderr}"
    );
}

#[test]
fn the_kubernetes_manifests_pass_the_api_schema() {
    let files = manifests();
    for version in KUBERNETES_VERSIONS {
        let output = validate(&files, version);
        assert!(
            output.status.success(),
            "Kubernetes {version}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_schema_check_refuses_a_broken_manifest() {
    let workers = repository().join("deploy/kubernetes/workers.yaml");
    let text = std::fs::read_to_string(&workers).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (what, from, to) in [
        ("a string for a number", "replicas: 3", "replicas: three"),
        (
            "a misspelt field",
            "terminationGracePeriodSeconds: ",
            "terminationGracePeriodSecond: ",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, text.replacen(from, to, 1)).unwrap();
        let output = validate(&[broken], KUBERNETES_VERSIONS[1]);
        assert!(!output.status.success(), "{what} passed: {output:?}");
    }
}

#[test]
fn the_workers_are_pinned_guaranteed_and_drain_within_their_grace_period() {
    let documents = all_documents();
    let workers = find(&documents, "StatefulSet", "sluice-worker");
    let pod = &workers["spec"]["template"]["spec"];
    let resources = &pod["containers"][0]["resources"];
    // Guaranteed QoS with whole CPUs: the static CPU manager gives
    // exclusive cores.
    assert_eq!(resources["requests"], resources["limits"], "{resources}");
    let cpus = resources["limits"]["cpu"].as_str().unwrap();
    assert!(cpus.parse::<u32>().is_ok(), "whole CPUs, not {cpus}");
    let args = container_args(workers, &[("POD_NAME", "w-0"), ("POD_IP", "10.0.0.7")]);
    let drain: u64 = args[args.iter().position(|a| a == "--drain-timeout-s").unwrap() + 1]
        .parse()
        .unwrap();
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(drain + 10 <= grace, "drain {drain} s, grace {grace} s");
    // The coordinator's Service serves the port the workers dial.
    let service = find(&documents, "Service", "sluice-coordinator");
    let coordinator = &args[args.iter().position(|a| a == "--coordinator").unwrap() + 1];
    let port: u64 = coordinator.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        (service["spec"]["ports"].as_array().unwrap().iter()).any(|p| p["port"] == port),
        "{coordinator} vs {service}"
    );
}

#[test]
fn sluice_accepts_the_command_lines_and_files_of_every_deployment() {
    let documents = all_documents();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("cluster.secret");
    std::fs::write(&secret, "a-cluster-secret-for-tests-only").unwrap();

    // The coordinator's settings, with the secret where this test has it
    // and a real etcd for its election.
    let etcd = EtcdTestServer::start().unwrap();
    let settings = find(&documents, "ConfigMap", "sluice-coordinator")["data"]["cluster.toml"]
        .as_str()
        .unwrap()
        .replace(ETCD_IN_THE_MANIFESTS, &etcd.endpoint())
        .replace(
            "/etc/sluice/secret/cluster.secret",
            secret.to_str().unwrap(),
        )
        .replace(
            "/var/lib/sluice",
            dir.path().join("records").to_str().unwrap(),
        )
        .replace("0.0.0.0:7000", "127.0.0.1:0")
        .replace("0.0.0.0:8080", "127.0.0.1:0");
    let settings_path = dir.path().join("cluster.toml");
    std::fs::write(&settings_path, settings).unwrap();
    let loaded = sluice_cluster::coordinator::CoordinatorConfig::load(&settings_path).unwrap();
    assert!(
        loaded.ha.is_some(),
        "the coordinators stand by for each other"
    );

    // Every job file of the ConfigMap is accepted as `sluice submit`
    // validates it (status 2 would mean refused), its Kafka brokers
    // replaced by a real one on this machine (validation reads the topics'
    // partitions); the submission then fails only for want of a
    // coordinator.
    let broker = Broker::start();
    for topic in ["events", "windows"] {
        broker.create_topic(topic, 2);
    }
    let jobs = find(&documents, "ConfigMap", "sluice-jobs")["data"]
        .as_object()
        .unwrap();
    assert!(!jobs.is_empty());
    for (name, text) in jobs {
        let path = dir.path().join(name);
        let text = (text.as_str().unwrap()).replace(KAFKA_IN_THE_MANIFESTS, &broker.bootstrap());
        std::fs::write(&path, text).unwrap();
        let output = sluice()
            .arg("submit")
            .arg(&path)
            .args(["--coordinator", "http://127.0.0.1:9", "--secret-file"])
            .arg(&secret)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("127.0.0.1:9"), "{name}: {stderr}");
    }
    let submit = find(&documents, "Job", "sluice-submit-windows");
    let args = container_args(submit, &[]);
    let file = args[1].strip_prefix("/etc/sluice/jobs/").unwrap();
    assert!(jobs.contains_key(file), "the Job submits {file}");

    // The workers' and coordinator's command lines, pointed at nothing.
    let workers = find(&documents, "StatefulSet", "sluice-worker");
    let args = container_args(workers, &[("POD_NAME", "w-0"), ("POD_IP", "127.0.0.1")]);
    assert_worker_runs(args, &secret, "the worker StatefulSet");
    let coordinator = find(&documents, "Deployment", "sluice-coordinator");
    let mut args = container_args(coordinator, &[("POD_NAME", "coordinator-0")]);
    let config = args.iter().position(|a| a == "--config").unwrap();
    args[config + 1] = settings_path.to_string_lossy().into_owned();
    assert_eq!(args[0], "coordinator");
    // Runs: parsed, elected, listening; stopped once it announced itself.
    let mut child = sluice()
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        sluice_cluster::coordinator::parse_announcement(&line).is_some(),
        "{line:?}"
    );

    // The systemd units' ExecStart lines.
    for unit in ["sluice-coordinator", "sluice-worker"] {
        let path = repository().join(format!("deploy/systemd/{unit}.service"));
        let text = std::fs::read_to_string(&path).unwrap().replace("\\\n", " ");
        let exec = (text.lines())
            .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/sluice "))
            .unwrap_or_else(|| panic!("{unit}: no ExecStart of /usr/local/bin/sluice"));
        let args: Vec<String> = exec.split_whitespace().map(str::to_owned).collect();
        if args[0] == "worker" {
            assert_worker_runs(args, &secret, unit);
        } else {
            assert_parses(&args, unit);
        }
    }

    // The container recipe runs the binary the manifests expect, as the
    // user their securityContext names.
    let recipe =
        std::fs::read_to_string(repository().join("deploy/container/Containerfile")).unwrap();
    assert!(recipe.contains("ENTRYPOINT [\"/usr/local/bin/sluice\"]"));
    for workload in [workers, coordinator, submit] {
        let user = &workload["spec"]["template"]["spec"]["securityContext"]["runAsUser"];
        assert!(
            recipe.contains(&format!("USER {user}:")),
            "the image's user vs runAsUser {user}"
        );
    }
}
