//! `sluice coordinator`: the process that knows the cluster's workers and
//! jobs, places jobs on workers, watches heartbeats and serves the HTTP API.
//!
//! Threads, none on a shard's core: the accept loop for workers (the
//! calling thread), one reader per worker connection, the ticker (heartbeats
//! out, silent workers declared lost, waiting jobs placed, job records
//! written), and the HTTP API's ([`http`]). All share one [`Cluster`] behind
//! a mutex; messages to workers are sent after it is released, each through
//! its connection's one writer ([`worker_writer`]: whole frames, never
//! interleaved) and bounded by a timeout, so a frozen worker holds up at
//! most the messages to itself.
//!
//! Invariants: a worker connection proves the cluster secret before its
//! first message is read; the job records in storage ([`job_record`]) are
//! written after every change of a job's state, before the change is acted
//! on by anyone else — a restarted coordinator finds every job again.

mod board;
mod checkpoints;
mod config;
mod http;
mod job_record;
pub mod leadership;
mod placement;
mod state;
mod worker_writer;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_network::auth::server_handshake;

use crate::control::{
    read_message, write_message, MessageError, ToCoordinator, ToWorker, CONTROL_CONTEXT,
};
pub use config::{CoordinatorConfig, HaConfig};
use job_record::JobRecords;
use state::{Cluster, Outgoing};
pub use state::{Job, JobState};
use worker_writer::WorkerWriter;

/// How long a worker may take to prove the secret and register.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the dashboard's series take a point.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// How long one message to a worker may take to write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// A worker's connection, for writing.
struct Connection {
    writer: Arc<WorkerWriter>,
    /// Tells a late reader thread of an earlier connection of the same
    /// worker that it is no longer current.
    generation: u64,
}

/// What the coordinator's threads share.
pub(crate) struct Shared {
    pub cluster: Mutex<Cluster>,
    connections: Mutex<HashMap<String, Connection>>,
    records: Arc<JobRecords>,
    pub config: CoordinatorConfig,
    next_generation: Mutex<u64>,
    /// Each running job's checkpoint leader.
    leaders: checkpoints::Leaders,
    /// Each job's attempt and state as last logged.
    logged: Mutex<HashMap<String, (u32, JobState)>>,
    /// Each job's completed checkpoints, for `/metrics`.
    pub checkpoint_figures: crate::metrics::coordinator_figures::CheckpointFigures,
    /// The dashboard's series and checkpoint histories.
    pub(crate) board: board::Board,
}

impl Shared {
    /// Runs `change` on the cluster, writes the records it dirtied, then
    /// sends the messages it produced.
    pub fn act<T>(&self, change: impl FnOnce(&mut Cluster) -> (T, Outgoing)) -> T {
        let (result, outgoing) = {
            let mut cluster = self.cluster.lock().expect("cluster lock");
            let (result, outgoing) = change(&mut cluster);
            for id in std::mem::take(&mut cluster.dirty) {
                if let Some(job) = cluster.jobs.get(&id) {
                    if let Err(e) = self.records.write(job) {
                        tracing::error!("{e}");
                    }
                    self.log_transition(job);
                }
            }
            (result, outgoing)
        };
        for (worker, message) in outgoing {
            self.send(&worker, &message);
        }
        result
    }

    /// One log line per change of a job's state or attempt.
    fn log_transition(&self, job: &Job) {
        let now = (job.attempt, job.state);
        let before = self
            .logged
            .lock()
            .expect("logged lock")
            .insert(job.id.clone(), now);
        if before == Some(now) {
            return;
        }
        let error = job
            .error
            .as_deref()
            .map_or(String::new(), |e| format!(": {e}"));
        tracing::info!(
            "job {} ({}) attempt {}: {:?}{error}",
            job.id,
            job.name,
            job.attempt,
            job.state
        );
    }

    fn send(&self, worker: &str, message: &ToWorker) {
        let writer = {
            let connections = self.connections.lock().expect("connections lock");
            connections.get(worker).map(|c| c.writer.clone())
        };
        let Some(writer) = writer else { return };
        if let Err(e) = writer.send(message) {
            // The writer shut the socket: the reader thread sees it and
            // declares the worker lost.
            tracing::warn!("sending to worker {worker} failed: {e}");
        }
    }
}

/// The line a coordinator prints on stdout once it listens (scripts and
/// tests read its addresses from it).
pub fn announcement(workers: &impl std::fmt::Display, http: &impl std::fmt::Display) -> String {
    format!("sluice coordinator: workers {workers}, http http://{http}")
}

/// The workers' address and the HTTP URL of an [`announcement`] line.
pub fn parse_announcement(line: &str) -> Option<(String, String)> {
    let rest = line.trim().strip_prefix("sluice coordinator: workers ")?;
    let (workers, http) = rest.split_once(", http ")?;
    Some((workers.to_owned(), http.to_owned()))
}

/// Runs the coordinator until the process is stopped. Prints its
/// addresses once it listens: see [`announcement`].
pub fn run_coordinator(config: CoordinatorConfig) -> Result<(), String> {
    let records = match &config.ha {
        None => JobRecords::open(&config.storage)?,
        Some(ha) => {
            tracing::info!(
                "coordinator {}: campaigning in etcd ({}) under {}",
                ha.name,
                ha.etcd.join(", "),
                ha.prefix
            );
            let leadership = Arc::new(leadership::Leadership::campaign(ha)?);
            tracing::info!(
                "coordinator {} leads (it steps down if its lease goes {:?} unrenewed)",
                ha.name,
                leadership.step_down_after()
            );
            JobRecords::in_etcd(leadership)?
        }
    };
    let mut cluster = Cluster::default();
    let (jobs, problems) = records.read_all()?;
    for problem in problems {
        tracing::error!("{problem} (left out)");
    }
    for job in jobs {
        if !job.state.is_terminal() {
            tracing::info!("resuming job {} ({})", job.id, job.name);
        }
        cluster.recover(job);
    }
    let listener = TcpListener::bind(config.listen)
        .map_err(|e| format!("cannot listen for workers on {}: {e}", config.listen))?;
    let http_listener = std::net::TcpListener::bind(config.http)
        .map_err(|e| format!("cannot listen for HTTP on {}: {e}", config.http))?;
    let workers_address = listener.local_addr().map_err(|e| e.to_string())?;
    let http_address = http_listener.local_addr().map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared {
        cluster: Mutex::new(cluster),
        connections: Mutex::new(HashMap::new()),
        records: Arc::new(records),
        config,
        next_generation: Mutex::new(0),
        logged: Mutex::default(),
        leaders: Default::default(),
        checkpoint_figures: Mutex::default(),
        board: board::Board::default(),
    });
    // The recovered jobs' records say they wait again.
    shared.act(|cluster| {
        cluster.dirty.extend(cluster.jobs.keys().cloned());
        ((), Vec::new())
    });
    http::start(http_listener, shared.clone())?;
    {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("sluice-coordinator-tick".into())
            .spawn(move || tick(&shared))
            .map_err(|e| e.to_string())?;
    }
    {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("sluice-coordinator-heartbeats".into())
            .spawn(move || heartbeats(&shared))
            .map_err(|e| e.to_string())?;
    }
    println!("{}", announcement(&workers_address, &http_address));
    tracing::info!("coordinator: workers on {workers_address}, HTTP API on {http_address}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let shared = shared.clone();
        let _ = std::thread::Builder::new()
            .name("sluice-worker-conn".into())
            .spawn(move || serve_worker(&shared, stream));
    }
    Ok(())
}

/// The leaders to start for the attempts `deployed` starts.
fn leaders_for(cluster: &Cluster, deployed: &Outgoing) -> Vec<checkpoints::LeaderStart> {
    let mut starts: Vec<checkpoints::LeaderStart> = Vec::new();
    for (_, message) in deployed {
        let ToWorker::Deploy {
            job,
            attempt,
            restore,
            placement,
            ..
        } = message
        else {
            continue;
        };
        let config = cluster.jobs.get(job).and_then(|j| j.checkpoints.clone());
        let Some(config) = config else { continue };
        if starts.iter().any(|s| &s.job == job) {
            continue;
        }
        starts.push(checkpoints::LeaderStart {
            job: job.clone(),
            attempt: *attempt,
            shards: placement.len() as u32,
            config,
            restore: *restore,
        });
    }
    starts
}

/// Silent workers lost, waiting jobs placed, the dashboard's series
/// sampled.
fn tick(shared: &Arc<Shared>) {
    let config = &shared.config;
    let mut last_sample = Instant::now();
    loop {
        std::thread::sleep(config.heartbeat_interval.min(Duration::from_millis(200)));
        let now = Instant::now();
        if now.duration_since(last_sample) >= SAMPLE_INTERVAL {
            last_sample = now;
            let cluster = shared.cluster.lock().expect("cluster lock");
            shared
                .board
                .sample(&cluster, crate::dashboard::view::now_ms());
        }
        let (lost, leaders, ended) = shared.act(|cluster| {
            let silent = cluster.silent(now, config.heartbeat_timeout);
            let mut out = Vec::new();
            for name in &silent {
                tracing::warn!(
                    "worker {name}: no heartbeat for {:?}: lost",
                    config.heartbeat_timeout
                );
                out.extend(cluster.worker_lost(name, "no heartbeat within the timeout"));
            }
            let deployed = cluster.schedule(now);
            let leaders = leaders_for(cluster, &deployed);
            out.extend(deployed);
            let ended: Vec<String> = (cluster.jobs.values())
                .filter(|j| j.state.is_terminal())
                .map(|j| j.id.clone())
                .collect();
            ((silent, leaders, ended), out)
        });
        for start in leaders {
            checkpoints::start(shared, start);
        }
        for job in ended {
            shared.leaders.forget(&job);
        }
        for name in lost {
            if let Some(c) = shared
                .connections
                .lock()
                .expect("connections lock")
                .remove(&name)
            {
                c.writer.shut();
            }
        }
    }
}

/// Heartbeats to every connected worker, on a thread of their own: a tick
/// that waits for the state's lock (a job record being synced to disk)
/// does not hold them back past the workers' timeout.
fn heartbeats(shared: &Arc<Shared>) {
    loop {
        std::thread::sleep(shared.config.heartbeat_interval);
        let names: Vec<String> = shared
            .connections
            .lock()
            .expect("connections lock")
            .keys()
            .cloned()
            .collect();
        for name in names {
            shared.send(&name, &ToWorker::Heartbeat);
        }
    }
}

fn serve_worker(shared: &Shared, mut stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or("an unknown peer".into(), |a| a.to_string());
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
    match server_handshake(&mut stream, &shared.config.secret, 64) {
        Ok(context) if context == CONTROL_CONTEXT => {}
        Ok(_) => {
            tracing::warn!("control connection from {peer} refused: not a control connection");
            return;
        }
        Err(e) => {
            tracing::warn!("control connection from {peer} refused: {e}");
            return;
        }
    }
    let (name, data_address, shards) = match read_message::<ToCoordinator, _>(&mut stream) {
        Ok(ToCoordinator::Register {
            name,
            data_address,
            shards,
        }) => (name, data_address, shards),
        Ok(other) => {
            tracing::warn!("worker at {peer} sent {other:?} before registering");
            return;
        }
        Err(e) => {
            tracing::warn!("worker at {peer}: {e}");
            return;
        }
    };
    let registered = shared.act(|cluster| {
        match cluster.register(&name, &data_address, shards, Instant::now()) {
            Ok(out) => (Ok(()), out),
            Err(e) => (Err(e), Vec::new()),
        }
    });
    if let Err(e) = registered {
        tracing::warn!("worker at {peer} refused: {e}");
        return;
    }
    let timeout = shared.config.heartbeat_timeout;
    let welcome = ToWorker::Registered {
        heartbeat_interval_ms: shared.config.heartbeat_interval.as_millis() as u64,
        heartbeat_timeout_ms: timeout.as_millis() as u64,
    };
    let ready = write_message(&mut stream, &welcome)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            stream
                .set_read_timeout(Some(timeout))
                .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
                .and_then(|()| stream.try_clone())
                .and_then(WorkerWriter::new)
                .map_err(|e| e.to_string())
        });
    let writer = match ready {
        Ok(writer) => writer,
        Err(e) => {
            shared.act(|cluster| ((), cluster.worker_lost(&name, &e)));
            return;
        }
    };
    let generation = {
        let mut next = shared.next_generation.lock().expect("generation lock");
        *next += 1;
        *next
    };
    shared.connections.lock().expect("connections lock").insert(
        name.clone(),
        Connection {
            writer: Arc::new(writer),
            generation,
        },
    );
    tracing::info!(
        "worker {name} registered from {peer}: {shards} shard(s), data plane {data_address}"
    );
    let why = loop {
        match read_message::<ToCoordinator, _>(&mut stream) {
            Ok(ToCoordinator::Checkpoint {
                job,
                attempt,
                event,
            }) => {
                shared
                    .cluster
                    .lock()
                    .expect("cluster lock")
                    .heard(&name, Instant::now());
                shared.leaders.route(&job, attempt, event);
            }
            Ok(ToCoordinator::Draining) => {
                tracing::info!("worker {name} is draining: nothing new goes to it");
                let drain = shared.act(|cluster| {
                    cluster.heard(&name, Instant::now());
                    (cluster.drain(&name), Vec::new())
                });
                for job in &drain.staying {
                    tracing::warn!(
                        "job {job} does not checkpoint: it stays on draining worker {name} \
                         until it ends or the worker stops waiting"
                    );
                }
                for (job, attempt) in drain.moving {
                    shared.leaders.drain(&job, attempt, &name);
                }
            }
            Ok(message) => {
                let now = Instant::now();
                shared.act(|cluster| {
                    cluster.heard(&name, now);
                    ((), cluster.report(&name, message))
                });
            }
            Err(MessageError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break "no heartbeat within the timeout".to_string();
            }
            Err(e) => break e.to_string(),
        }
    };
    let current = {
        let mut connections = shared.connections.lock().expect("connections lock");
        let current = connections
            .get(&name)
            .is_some_and(|c| c.generation == generation);
        if current {
            connections.remove(&name);
        }
        current
    };
    if current {
        tracing::warn!("worker {name} lost: {why}");
        shared.act(|cluster| ((), cluster.worker_lost(&name, &why)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announcement_reads_back() {
        let line = announcement(&"10.0.0.1:7700", &"10.0.0.1:7701");
        assert_eq!(
            parse_announcement(&format!("{line}\n")),
            Some(("10.0.0.1:7700".into(), "http://10.0.0.1:7701".into()))
        );
        assert_eq!(parse_announcement("sluice: something else"), None);
    }
}
