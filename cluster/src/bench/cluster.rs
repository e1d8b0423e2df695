//! `sluice bench cluster`: Nexmark queries on N local worker processes of one
//! shard each against one process of N shards, in one run, with the
//! machine's raw loopback TCP throughput as the limit of what crosses
//! processes.
//!
//! Runs on the calling thread; the coordinator and workers are child
//! processes of this binary (`sluice coordinator`, `sluice worker`) in a
//! temporary directory, each worker pinned to a CPU of its own with
//! `taskset` when the machine has one per worker. Rounds alternate the two
//! sides query by query, so that both see the same moments of a noisy
//! machine. The cluster's throughput counts from the moment every link was
//! up to the last task's end (the tasks' own clocks), as the in-process
//! figure counts from its shards' start; deploying (placement, link set-up)
//! is reported apart.
//!
//! Then, unless `--latency-seconds 0`, latency at half load: each query is
//! offered on a wall-clock schedule (events released at their event time) at
//! half the best throughput one process reached, for that many seconds, on
//! both sides; the cluster's shards report their histograms through the
//! job file's latency sink. The p99 difference is what crossing processes
//! adds.
//!
//! With `--recovery`, a checkpointed job on two of three workers loses one
//! to SIGKILL mid-run; the figure is the time from the kill to the job
//! running again on the spare, split into detection (the attempt failed)
//! and redeployment with state restore.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};
use sluice_network::auth::ClusterSecret;

use super::latency_sink::read_reports;
use super::nexmark::{self, BenchSpec, LatencyFigures};
use crate::client::Client;

/// What to run.
#[derive(Debug, Clone)]
pub struct ClusterBenchSpec {
    pub queries: Vec<String>,
    pub events: u64,
    /// Worker processes (one shard each) and shards of the single process.
    pub workers: u32,
    pub rounds: u32,
    pub seed: u64,
    /// Also measure recovery after a worker is killed.
    pub recovery: bool,
    /// Seconds of each latency run at half load (0: none).
    pub latency_seconds: u64,
    /// Appends the table to this file.
    pub report: Option<PathBuf>,
}

/// How long a heartbeat may be missing before a worker is lost.
const HEARTBEAT_TIMEOUT_MS: u64 = 1_000;
/// How long any one job of the benchmark may take.
const JOB_TIMEOUT: Duration = Duration::from_secs(600);

/// A coordinator and its workers on this machine, killed when dropped.
struct LocalCluster {
    dir: tempfile::TempDir,
    coordinator: Child,
    workers: Vec<(String, Child)>,
    workers_address: String,
    client: Client,
}

impl LocalCluster {
    fn start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("a directory for the cluster: {e}"))?;
        let secret = format!("bench-secret-{}-{}", std::process::id(), nanos());
        std::fs::write(dir.path().join("secret"), &secret).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.path().join("cluster.toml"),
            format!(
                "listen = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nstorage = \"state\"\n\
                 secret_file = \"secret\"\nheartbeat_interval_ms = 100\n\
                 heartbeat_timeout_ms = {HEARTBEAT_TIMEOUT_MS}\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("coordinator.log")).map_err(|e| e.to_string())?;
        let mut coordinator = Command::new(current_exe()?)
            .args(["coordinator", "--config"])
            .arg(dir.path().join("cluster.toml"))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting the coordinator: {e}"))?;
        let mut line = String::new();
        let stdout = coordinator.stdout.take().ok_or("no coordinator stdout")?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let (workers_address, http) = crate::coordinator::parse_announcement(&line)
            .ok_or_else(|| format!("the coordinator said {line:?}"))?;
        let client = Client::new(&http, &ClusterSecret::new(&secret)?)?;
        Ok(LocalCluster {
            dir,
            coordinator,
            workers: Vec::new(),
            workers_address,
            client,
        })
    }

    /// Starts worker `name` with one shard, on CPU `cpu` if given.
    fn add_worker(&mut self, name: &str, cpu: Option<usize>) -> Result<(), String> {
        let exe = current_exe()?;
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string()]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        command
            .args(["worker", "--coordinator", &self.workers_address])
            .args(["--name", name, "--shards", "1", "--secret-file"])
            .arg(self.dir.path().join("secret"));
        if cpu.is_none() {
            command.arg("--no-pin");
        }
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log")))
            .map_err(|e| e.to_string())?;
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting worker {name}: {e}"))?;
        self.workers.push((name.to_owned(), child));
        Ok(())
    }

    fn kill_worker(&mut self, name: &str) {
        if let Some(at) = self.workers.iter().position(|(n, _)| n == name) {
            let (_, mut child) = self.workers.remove(at);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until `n` workers are registered and alive.
    fn wait_workers(&self, n: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = self.request(Method::GET, "/workers", None)?;
            let alive = (answer["workers"].as_array().into_iter().flatten())
                .filter(|w| w["alive"] == true)
                .count();
            if alive >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{alive} of {n} workers registered within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn request(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.client
            .request(method, path, body)
            .map_err(|e| e.to_string())
    }

    /// Submits the job file text (as if at `<dir>/<name>.toml`); its id.
    fn submit(&self, name: &str, text: &str) -> Result<String, String> {
        let path = self.dir.path().join(format!("{name}.toml"));
        let body = json!({ "path": path.display().to_string(), "text": text });
        let answer = self.request(Method::POST, "/jobs", Some(body))?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no job id in {answer}"))
    }

    /// Polls job `id` until `done` says so; its last status.
    fn wait(&self, id: &str, done: impl Fn(&Value) -> bool) -> Result<Value, String> {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let status = self.request(Method::GET, &format!("/jobs/{id}"), None)?;
            if done(&status) {
                return Ok(status);
            }
            if status["state"] == "failed" || status["state"] == "cancelled" {
                return Err(format!("job {id} {}: {}", status["state"], status["error"]));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "job {id} not done within {JOB_TIMEOUT:?}: {status}"
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.workers {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.coordinator.kill();
        let _ = self.coordinator.wait();
    }
}

fn current_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The raw throughput of one TCP connection over 127.0.0.1 on this machine:
/// bytes/s written by one thread and read by another for about `for_how_long`.
pub fn loopback_bytes_per_s(for_how_long: Duration) -> Result<f64, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let reader = std::thread::spawn(move || -> Result<u64, String> {
        let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut buffer = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n as u64,
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    let chunk = vec![7u8; 1 << 20];
    let started = Instant::now();
    while started.elapsed() < for_how_long {
        stream.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    drop(stream);
    let total = reader.join().map_err(|_| "the reader panicked")??;
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// One query's figures, over the rounds (best of each side).
#[derive(Debug, Clone, Default)]
struct QueryFigures {
    in_process: Vec<f64>,
    cluster: Vec<f64>,
    deploy_ms: Vec<f64>,
    wire_bytes_per_event: f64,
    /// At half load: the offered rate and each round's figures per side.
    offered: u64,
    latency_in_process: Vec<LatencyFigures>,
    latency_cluster: Vec<LatencyFigures>,
}

/// The round with the lowest p99 (the least disturbed by the machine).
fn least_p99(rounds: &[LatencyFigures]) -> Option<&LatencyFigures> {
    rounds.iter().min_by_key(|l| l.p99_us)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The in-process run of `query` (throughput mode without `rate`).
fn in_process_spec(
    query: &str,
    events: u64,
    spec: &ClusterBenchSpec,
    rate: Option<u64>,
) -> BenchSpec {
    BenchSpec {
        query: query.to_owned(),
        events,
        shards: Some(spec.workers),
        seed: spec.seed,
        rate,
        params: Default::default(),
        flush_timeout_ms: None,
        checkpoint_interval_ms: None,
        checkpoint_full_every: None,
        checkpoint_alignment: Default::default(),
        state_backend: Default::default(),
        sql: false,
        events_file: None,
        spin_before_park: None,
    }
}

/// Runs `query` on the cluster offered `rate` events/s on a wall-clock
/// schedule for `events` events; its latency figures.
fn latency_on_cluster(
    cluster: &LocalCluster,
    query: &str,
    spec: &ClusterBenchSpec,
    rate: u64,
    events: u64,
    run: usize,
) -> Result<LatencyFigures, String> {
    // Starts on a whole second plus a half, far enough ahead for deploying.
    let now_ms = (nanos() / 1_000_000) as i64;
    let base_time_ms = (now_ms / 1000 + 2) * 1000 + 500;
    let reports = cluster.dir.path().join(format!("latency-{query}-{run}"));
    let text = format!(
        "job = \"nexmark.{query}\"\nshards = {shards}\nprogress = false\n\
         [source]\nconnector = \"nexmark\"\nevents = {events}\nseed = {seed}\npartitions = {partitions}\n\
         events_per_second = {rate}\nbase_time_ms = {base_time_ms}\noffer_at_event_time = true\n\
         [sink]\nconnector = \"latency\"\npath = \"{path}\"\ndependency_offset_ms = {offset}\n\
         [cluster]\nshards = {shards}\n",
        shards = spec.workers,
        seed = spec.seed,
        partitions = spec.workers.max(8),
        path = reports.display(),
        offset = i64::from(nexmark::fired_by_watermark(query)),
    );
    let id = cluster.submit(&format!("latency-{query}"), &text)?;
    cluster.wait(&id, |s| s["state"] == "finished")?;
    let record = read_reports(&reports, spec.workers)?;
    Ok(nexmark::latency_figures(
        &record,
        events as f64 / rate as f64,
    ))
}

fn best(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// The job file of `query` on the cluster: the benchmark's source into a
/// blackhole, on every worker's shard.
fn cluster_job(query: &str, events: u64, seed: u64, shards: u32) -> String {
    format!(
        "job = \"nexmark.{query}\"\nshards = {shards}\nprogress = false\n\
         [source]\nconnector = \"nexmark\"\nevents = {events}\nseed = {seed}\npartitions = {partitions}\n\
         [sink]\nconnector = \"blackhole\"\n[cluster]\nshards = {shards}\n",
        partitions = shards.max(8),
    )
}

/// Runs `query` once on the cluster: events/s over the tasks' own time,
/// the deploy time, and the bytes written to links.
fn run_on_cluster(
    cluster: &LocalCluster,
    query: &str,
    spec: &ClusterBenchSpec,
) -> Result<(f64, f64, u64), String> {
    let submitted = Instant::now();
    let text = cluster_job(query, spec.events, spec.seed, spec.workers);
    let id = cluster.submit(query, &text)?;
    let status = cluster.wait(&id, |s| s["state"] == "finished")?;
    let wall = submitted.elapsed().as_secs_f64();
    let tasks = status["tasks"]
        .as_object()
        .ok_or("no tasks in the status")?;
    let mut ran_ms = 0u64;
    let mut wire = 0u64;
    let mut records_in = 0u64;
    for task in tasks.values() {
        let totals = &task["totals"];
        ran_ms = ran_ms.max(totals["elapsed_ms"].as_u64().unwrap_or(0));
        wire += totals["wire_bytes_sent"].as_u64().unwrap_or(0);
        records_in += totals["records_in"].as_u64().unwrap_or(0);
    }
    if records_in != spec.events {
        return Err(format!(
            "{query} on the cluster read {records_in} events, expected {}",
            spec.events
        ));
    }
    let ran = (ran_ms as f64 / 1000.0).max(1e-3);
    Ok((
        spec.events as f64 / ran,
        (wall - ran).max(0.0) * 1000.0,
        wire,
    ))
}

/// Kills one of the two workers of a checkpointed job mid-run with a spare
/// registered; (detection, redeployment) in ms.
fn measure_recovery(
    cluster: &mut LocalCluster,
    spec: &ClusterBenchSpec,
) -> Result<(f64, f64), String> {
    let text = format!(
        "job = \"nexmark.q5\"\nshards = 2\nprogress = false\n\
         [source]\nconnector = \"nexmark\"\nevents = 100_000_000\nseed = {}\nrate = 1_000_000\n\
         [sink]\nconnector = \"blackhole\"\n\
         [checkpoint]\ninterval_ms = 1_000\nstorage = \"file://checkpoints\"\n\
         [restart]\nstrategy = \"fixed-delay\"\nattempts = 1\ndelay_ms = 0\n\
         [cluster]\nshards = 2\n",
        spec.seed
    );
    let id = cluster.submit("recovery", &text)?;
    cluster.wait(&id, |s| {
        s["state"] == "running" && s["last_checkpoint"].as_u64() >= Some(2)
    })?;
    let status = cluster.request(Method::GET, &format!("/jobs/{id}"), None)?;
    let victim = status["placement"][0]["worker"]
        .as_str()
        .ok_or("no placement")?
        .to_owned();
    let killed = Instant::now();
    cluster.kill_worker(&victim);
    cluster.wait(&id, |s| s["failures"].as_u64() >= Some(1))?;
    let detected = killed.elapsed();
    cluster.wait(&id, |s| {
        s["attempt"].as_u64() >= Some(2) && s["state"] == "running"
    })?;
    let running = killed.elapsed();
    let _ = cluster.request(Method::POST, &format!("/jobs/{id}/cancel"), None);
    Ok((
        detected.as_secs_f64() * 1000.0,
        (running - detected).as_secs_f64() * 1000.0,
    ))
}

/// Runs the benchmark; returns its report (a Markdown table).
pub fn run(spec: &ClusterBenchSpec) -> Result<String, String> {
    if spec.workers < 2 {
        return Err("--workers must be at least 2".into());
    }
    let cpus = sluice_engine::config::available_cpus() as usize;
    let pin = cpus >= spec.workers as usize && Path::new("/usr/bin/taskset").exists();
    let mut cluster = LocalCluster::start()?;
    for w in 0..spec.workers {
        cluster.add_worker(&format!("w{w}"), pin.then_some(w as usize))?;
    }
    cluster.wait_workers(spec.workers as usize)?;
    let mut loopback = Vec::new();
    let mut figures: Vec<QueryFigures> = vec![QueryFigures::default(); spec.queries.len()];
    for round in 0..spec.rounds {
        loopback.push(loopback_bytes_per_s(Duration::from_secs(1))?);
        for (query, f) in spec.queries.iter().zip(&mut figures) {
            let alone = nexmark::run(&in_process_spec(query, spec.events, spec, None))?;
            let (spread, deploy_ms, wire) = run_on_cluster(&cluster, query, spec)?;
            eprintln!(
                "round {round} {query}: one process {:.2} M/s, {} workers {:.2} M/s",
                alone.events_per_s / 1e6,
                spec.workers,
                spread / 1e6
            );
            f.in_process.push(alone.events_per_s);
            f.cluster.push(spread);
            f.deploy_ms.push(deploy_ms);
            f.wire_bytes_per_event = wire as f64 / spec.events as f64;
        }
    }
    if spec.latency_seconds > 0 {
        for round in 0..spec.rounds {
            for (query, f) in spec.queries.iter().zip(&mut figures) {
                // Half of the best one process reached, in whole thousands.
                let rate = ((best(&f.in_process) / 2.0 / 1000.0).floor() as u64).max(1) * 1000;
                let events = rate.saturating_mul(spec.latency_seconds);
                f.offered = rate;
                let alone = nexmark::run(&in_process_spec(query, events, spec, Some(rate)))?;
                let alone = alone
                    .latency
                    .ok_or("a latency run without latency figures")?;
                let run = (round as usize) * spec.queries.len() + f.latency_cluster.len();
                let spread = latency_on_cluster(&cluster, query, spec, rate, events, run)?;
                eprintln!(
                    "round {round} {query} at {:.2} M/s: p99 one process {:.2} ms, {} workers {:.2} ms",
                    rate as f64 / 1e6,
                    ms(alone.p99_us),
                    spec.workers,
                    ms(spread.p99_us)
                );
                f.latency_in_process.push(alone);
                f.latency_cluster.push(spread);
            }
        }
    }
    let recovery = match spec.recovery {
        true => {
            cluster.add_worker("spare", None)?;
            cluster.wait_workers(spec.workers as usize + 1)?;
            Some(measure_recovery(&mut cluster, spec)?)
        }
        false => None,
    };
    let mut out = format!(
        "`sluice bench cluster --queries {} --events {} --workers {} --rounds {}{} --latency-seconds {}` \
         (commit {}, {cpus} CPUs, workers {}): best of {} rounds; raw loopback TCP {:.0} MiB/s (best; {:.0}–{:.0})\n\n\
         | query | 1 process × {w} shards (M events/s) | {w} workers × 1 shard (M events/s) | ratio | deploy (ms) | bytes on the wire per event |\n\
         |---|---|---|---|---|---|\n",
        spec.queries.join(","),
        spec.events,
        spec.workers,
        spec.rounds,
        if spec.recovery { " --recovery" } else { "" },
        spec.latency_seconds,
        nexmark::git_commit(),
        if pin { "pinned one CPU each with taskset" } else { "unpinned" },
        spec.rounds,
        best(&loopback) / (1 << 20) as f64,
        loopback.iter().copied().fold(f64::MAX, f64::min) / (1 << 20) as f64,
        best(&loopback) / (1 << 20) as f64,
        w = spec.workers,
    );
    for (query, f) in spec.queries.iter().zip(&figures) {
        let (alone, spread) = (best(&f.in_process), best(&f.cluster));
        let mut deploy = f.deploy_ms.clone();
        deploy.sort_by(f64::total_cmp);
        out.push_str(&format!(
            "| {query} | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} |\n",
            alone / 1e6,
            spread / 1e6,
            spread / alone.max(1e-9),
            deploy[deploy.len() / 2],
            f.wire_bytes_per_event,
        ));
    }
    if spec.latency_seconds > 0 {
        out.push_str(&format!(
            "\nLatency at half load (half the best one-process throughput above, offered on a wall-clock \
             schedule for {s} s, the first second warm-up; the round with the lower p99 of {r} per side), ms:\n\n\
             | query | offered (M events/s) | 1 process p50 / p99 / p99.99 | {w} workers p50 / p99 / p99.99 | p99 added | results (1 process / {w} workers) |\n\
             |---|---|---|---|---|---|\n",
            s = spec.latency_seconds,
            r = spec.rounds,
            w = spec.workers,
        ));
        for (query, f) in spec.queries.iter().zip(&figures) {
            let (Some(alone), Some(spread)) = (
                least_p99(&f.latency_in_process),
                least_p99(&f.latency_cluster),
            ) else {
                continue;
            };
            out.push_str(&format!(
                "| {query} | {:.2} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} / {:.2} | {:+.2} | {} / {} |\n",
                f.offered as f64 / 1e6,
                ms(alone.p50_us),
                ms(alone.p99_us),
                ms(alone.p99_99_us),
                ms(spread.p50_us),
                ms(spread.p99_us),
                ms(spread.p99_99_us),
                ms(spread.p99_us) - ms(alone.p99_us),
                alone.results,
                spread.results,
            ));
        }
    }
    if let Some((detected, redeployed)) = recovery {
        out.push_str(&format!(
            "\nRecovery (q5 at 1M events/s, checkpoints every 1 s, one of 2 workers SIGKILLed, a spare registered): \
             the attempt failed {detected:.0} ms after the kill (the worker's connection closed; a frozen or cut-off worker \
             is found by the heartbeat timeout, {HEARTBEAT_TIMEOUT_MS} ms here), running again {redeployed:.0} ms later \
             (placement, links, state restore); {:.0} ms from the kill.\n",
            detected + redeployed
        ));
    }
    if let Some(path) = &spec.report {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(file, "{out}").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(out)
}
