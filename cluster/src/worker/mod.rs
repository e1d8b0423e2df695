//! `sluice worker`: a process that offers shards to a coordinator and runs
//! the tasks it is given.
//!
//! Threads: the control thread (connects to the coordinator, proves the
//! cluster secret, registers, then reads its messages), a heartbeat thread
//! per connection, the data plane's accept thread ([`data_plane`]), and one
//! thread per task ([`task`]) whose shard executors are pinned like
//! `sluice run`'s. Nothing here runs on a shard's core.
//!
//! Stopping ([`stop_signal`]): on SIGTERM the worker tells the coordinator
//! it is draining; the coordinator places nothing new on it and moves each
//! checkpointing job off it after a checkpoint taken then; the worker exits
//! (status 0) once it runs no task, or cancels what is left after its drain
//! timeout.
//!
//! Invariants: a task runs under its job's attempt number and is replaced
//! only by a newer attempt; when the coordinator is lost (its connection
//! breaks, or nothing came from it for the heartbeat timeout) every task is
//! cancelled before the worker registers again — a worker that was frozen
//! and wakes up late commits nothing and serves no stale attempt.

pub mod data_plane;
pub mod stop_signal;
mod task;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sluice_engine::checkpoint::PartCommand;
use sluice_engine::runtime::JobCancel;
use sluice_network::auth::{client_handshake, ClusterSecret};

use crate::control::CONTROL_CONTEXT;
use crate::control::{read_message, write_message, MessageError, ToCoordinator, ToWorker};
use crate::metrics::ExportedJobs;
use data_plane::DataPlane;
pub use stop_signal::StopSignal;
use task::{run_task, Deployment};

/// How a worker is started.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The coordinator's address for workers (`HOST:PORT`), or several,
    /// comma-separated: the coordinators of a highly available cluster, of
    /// which only the leader listens.
    pub coordinator: String,
    pub shards: u32,
    /// A name (default: `<host address>:<data port>`).
    pub name: Option<String>,
    /// Where the data plane listens; default: the address this host reaches
    /// the coordinator from, any port.
    pub data_bind: Option<SocketAddr>,
    /// The data-plane address other workers are told to dial (`HOST:PORT`),
    /// when it is not where the data plane listens: behind NAT, a port
    /// forward or a proxy. Default: the address it listens on.
    pub data_advertise: Option<String>,
    pub pin_cpus: bool,
    /// Give up after the coordinator was unreachable this long.
    pub connect_timeout: Duration,
    pub secret: ClusterSecret,
    /// Where `/metrics` is served (none: not served).
    pub metrics_address: Option<SocketAddr>,
    /// The jobs whose metrics it serves: each task adds itself while it
    /// runs.
    pub exported: ExportedJobs,
    /// Set when the worker must stop (SIGTERM): it drains, then returns.
    pub stop: StopSignal,
    /// How long a drain waits for the coordinator to move every task off
    /// before the worker cancels what is left and stops.
    pub drain_timeout: Duration,
}

/// A running task.
struct Task {
    attempt: u32,
    cancel: JobCancel,
    thread: JoinHandle<()>,
    /// The checkpoint leader's commands, to the task.
    commands: std::sync::mpsc::Sender<PartCommand>,
}

/// The connection to the coordinator: messages out go through here, from
/// any thread.
type Outbox = Arc<Mutex<Option<TcpStream>>>;

/// Sends what a task of `job` under `attempt` reports, as `message` makes it.
fn task_reporter<T: 'static>(
    outbox: &Outbox,
    job: &str,
    attempt: u32,
    message: fn(String, u32, T) -> ToCoordinator,
) -> Box<dyn FnMut(T) + Send> {
    let (outbox, job) = (outbox.clone(), job.to_owned());
    Box::new(move |report| send(&outbox, &message(job.clone(), attempt, report)))
}

fn send(outbox: &Outbox, message: &ToCoordinator) {
    let mut out = outbox.lock().expect("outbox lock");
    if let Some(stream) = out.as_mut() {
        if let Err(e) = write_message(stream, message) {
            tracing::warn!("sending to the coordinator failed: {e}");
            let _ = stream.shutdown(std::net::Shutdown::Both);
            *out = None;
        }
    }
}

/// Runs the worker until the coordinator stays unreachable for
/// `connect_timeout` (an error), or until it was asked to stop and has
/// drained.
pub fn run_worker(options: WorkerOptions) -> Result<(), String> {
    let coordinator = resolve(&options.coordinator)?;
    // The data plane listens where this host reaches the coordinator from,
    // unless told otherwise.
    let first = connect(&coordinator, options.connect_timeout)?;
    let bind = options.data_bind.unwrap_or_else(|| {
        let ip = first
            .local_addr()
            .map(|a| a.ip())
            .unwrap_or([127, 0, 0, 1].into());
        SocketAddr::new(ip, 0)
    });
    let mut first = Some(first);
    let data = DataPlane::start(bind, options.secret.clone())
        .map_err(|e| format!("the data plane cannot listen on {bind}: {e}"))?;
    let advertised = (options.data_advertise.clone()).unwrap_or_else(|| data.address().to_string());
    let name = options.name.clone().unwrap_or_else(|| advertised.clone());
    tracing::info!(
        "worker {name}: {} shard(s), data plane on {} (dialled at {advertised})",
        options.shards,
        data.address()
    );
    if let Some(address) = options.metrics_address {
        let registry = crate::metrics::jobs_registry(options.exported.clone());
        let endpoint = crate::metrics::serve(address, registry)?;
        tracing::info!(
            "worker {name}: metrics on http://{}/metrics",
            endpoint.address
        );
    }
    let tasks: Arc<Mutex<HashMap<String, Task>>> = Arc::default();
    // When this worker was last registered with the coordinator (or started).
    let mut registered_at = Instant::now();
    loop {
        let stream = match first.take() {
            Some(stream) => stream,
            None => connect(&coordinator, options.connect_timeout)?,
        };
        let registration = Registration {
            name: &name,
            data_address: &advertised,
        };
        match serve(
            &options,
            registration,
            &data,
            &tasks,
            stream,
            &mut registered_at,
        ) {
            Ok(()) => return Ok(()),
            Err(e) => tracing::warn!("the coordinator at {coordinator} was lost: {e}"),
        }
        // Fencing: nothing of this worker acts for an attempt the
        // coordinator may have replaced meanwhile.
        cancel_all(&tasks);
        if options.stop.requested() {
            tracing::info!("worker {name}: stopping (asked to) without a coordinator");
            return Ok(());
        }
        // A coordinator that answers but never accepts (a wrong secret, a
        // name in use) is given up like an unreachable one.
        if registered_at.elapsed() > options.connect_timeout {
            return Err(format!(
                "the coordinator at {coordinator} has not accepted this worker for {} s",
                options.connect_timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The coordinators' addresses, resolved.
struct Coordinators(Vec<SocketAddr>);

impl std::fmt::Display for Coordinators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.0.iter().map(SocketAddr::to_string).collect();
        f.write_str(&names.join(", "))
    }
}

fn resolve(addresses: &str) -> Result<Coordinators, String> {
    let mut resolved = Vec::new();
    for address in addresses
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        resolved.push(
            address
                .to_socket_addrs()
                .map_err(|e| format!("the coordinator address `{address}`: {e}"))?
                .next()
                .ok_or_else(|| {
                    format!("the coordinator address `{address}` resolves to nothing")
                })?,
        );
    }
    if resolved.is_empty() {
        return Err(format!("no coordinator address in `{addresses}`"));
    }
    Ok(Coordinators(resolved))
}

/// Connects to the first coordinator that answers (the leader, when
/// several are given), trying them in turn for at most `timeout`.
fn connect(coordinators: &Coordinators, timeout: Duration) -> Result<TcpStream, String> {
    let deadline = Instant::now() + timeout;
    let each = if coordinators.0.len() == 1 {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(1)
    };
    loop {
        let mut last = None;
        for address in &coordinators.0 {
            match TcpStream::connect_timeout(address, each) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        if Instant::now() >= deadline {
            let e = last.map_or_else(String::new, |e| e.to_string());
            return Err(format!(
                "the coordinator at {coordinators} is unreachable: {e}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn cancel_all(tasks: &Mutex<HashMap<String, Task>>) {
    let drained: Vec<(String, Task)> = tasks.lock().expect("tasks lock").drain().collect();
    for (job, task) in drained {
        task.cancel.cancel();
        if task.thread.join().is_err() {
            tracing::warn!("the task of {job} panicked");
        }
    }
}

/// Registers and serves one connection to the coordinator until it is
/// lost (an error).
/// What a worker registers as.
#[derive(Clone, Copy)]
struct Registration<'a> {
    name: &'a str,
    /// Where other workers dial its data plane.
    data_address: &'a str,
}

fn serve(
    options: &WorkerOptions,
    registration: Registration<'_>,
    data: &Arc<DataPlane>,
    tasks: &Arc<Mutex<HashMap<String, Task>>>,
    mut stream: TcpStream,
    registered_at: &mut Instant,
) -> Result<(), String> {
    let name = registration.name;
    let handshake_timeout = Some(Duration::from_secs(10));
    stream
        .set_read_timeout(handshake_timeout)
        .and_then(|()| stream.set_write_timeout(handshake_timeout))
        .map_err(|e| e.to_string())?;
    client_handshake(&mut stream, &options.secret, CONTROL_CONTEXT)
        .map_err(|e| format!("the cluster secret was not accepted: {e}"))?;
    write_message(
        &mut stream,
        &ToCoordinator::Register {
            name: registration.name.to_owned(),
            data_address: registration.data_address.to_owned(),
            shards: options.shards,
        },
    )
    .map_err(|e| e.to_string())?;
    let (interval, timeout) = match read_message(&mut stream).map_err(|e| e.to_string())? {
        ToWorker::Registered {
            heartbeat_interval_ms,
            heartbeat_timeout_ms,
        } => (
            Duration::from_millis(heartbeat_interval_ms.max(1)),
            Duration::from_millis(heartbeat_timeout_ms.max(1)),
        ),
        other => return Err(format!("expected `registered`, got {other:?}")),
    };
    tracing::info!("registered with the coordinator as {name}");
    *registered_at = Instant::now();
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let outbox: Outbox = Arc::new(Mutex::new(Some(
        stream.try_clone().map_err(|e| e.to_string())?,
    )));
    let beating = {
        let outbox = outbox.clone();
        std::thread::Builder::new()
            .name("sluice-heartbeat".into())
            .spawn(move || loop {
                std::thread::sleep(interval);
                if outbox.lock().expect("outbox lock").is_none() {
                    break;
                }
                send(&outbox, &ToCoordinator::Heartbeat);
            })
            .map_err(|e| e.to_string())?
    };
    let result = read_loop(options, name, data, tasks, &outbox, &mut stream);
    // Registered until now: the time to give up counts from here.
    *registered_at = Instant::now();
    if let Some(stream) = outbox.lock().expect("outbox lock").take() {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    let _ = beating.join();
    result
}

/// Starts a drain when a stop was asked for, and says whether it is over:
/// no task left, or the drain timeout passed (what is left is cancelled).
fn drained(
    options: &WorkerOptions,
    tasks: &Mutex<HashMap<String, Task>>,
    outbox: &Outbox,
    deadline: &mut Option<Instant>,
) -> bool {
    if !options.stop.requested() {
        return false;
    }
    let mut running = tasks.lock().expect("tasks lock");
    running.retain(|_, task| !task.thread.is_finished());
    let left = running.len();
    drop(running);
    let deadline = match deadline {
        Some(deadline) => *deadline,
        None => {
            tracing::info!(
                "stop asked for: draining {left} task(s); the coordinator moves them \
                 after a checkpoint (waiting at most {} s)",
                options.drain_timeout.as_secs()
            );
            send(outbox, &ToCoordinator::Draining);
            *deadline.insert(Instant::now() + options.drain_timeout)
        }
    };
    if left == 0 {
        tracing::info!("drained: no task runs here; stopping");
        return true;
    }
    if Instant::now() >= deadline {
        tracing::warn!(
            "{left} task(s) still here after the drain timeout of {} s: cancelled; stopping",
            options.drain_timeout.as_secs()
        );
        cancel_all(tasks);
        return true;
    }
    false
}

fn read_loop(
    options: &WorkerOptions,
    name: &str,
    data: &Arc<DataPlane>,
    tasks: &Arc<Mutex<HashMap<String, Task>>>,
    outbox: &Outbox,
    stream: &mut TcpStream,
) -> Result<(), String> {
    let mut drain_deadline: Option<Instant> = None;
    loop {
        if drained(options, tasks, outbox, &mut drain_deadline) {
            return Ok(());
        }
        let message = match read_message::<ToWorker, _>(stream) {
            Ok(message) => message,
            Err(MessageError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("no heartbeat within the timeout".into())
            }
            Err(e) => return Err(e.to_string()),
        };
        // Tasks that ended are forgotten (their threads are done).
        tasks
            .lock()
            .expect("tasks lock")
            .retain(|_, task| !task.thread.is_finished());
        match message {
            ToWorker::Heartbeat | ToWorker::Registered { .. } => {}
            ToWorker::Checkpoint {
                job,
                attempt,
                command,
            } => {
                let tasks = tasks.lock().expect("tasks lock");
                if let Some(task) = tasks.get(&job).filter(|t| t.attempt == attempt) {
                    // A task that ended has no use for it.
                    let _ = task.commands.send(command);
                }
            }
            ToWorker::Cancel { job, attempt } => {
                let task = {
                    let mut tasks = tasks.lock().expect("tasks lock");
                    match tasks.get(&job) {
                        Some(task) if task.attempt <= attempt => tasks.remove(&job),
                        _ => None,
                    }
                };
                if let Some(task) = task {
                    task.cancel.cancel();
                    if drain_deadline.is_some() {
                        // Stopping: the process must not exit before it.
                        let _ = task.thread.join();
                    } else {
                        // Joined off this thread: heartbeats go on meanwhile.
                        std::thread::spawn(move || task.thread.join());
                    }
                }
            }
            ToWorker::Deploy {
                job,
                attempt,
                path,
                text,
                placement,
                restore,
                restore_from,
            } => {
                // A newer attempt replaces the old one, which must stop first.
                let old = tasks.lock().expect("tasks lock").remove(&job);
                if let Some(old) = old {
                    old.cancel.cancel();
                    let _ = old.thread.join();
                }
                let cancel = JobCancel::default();
                let (commands, commands_in) = std::sync::mpsc::channel();
                let events = task_reporter(outbox, &job, attempt, |job, attempt, event| {
                    ToCoordinator::Checkpoint {
                        job,
                        attempt,
                        event,
                    }
                });
                let progress = task_reporter(outbox, &job, attempt, |job, attempt, totals| {
                    ToCoordinator::TaskProgress {
                        job,
                        attempt,
                        totals,
                    }
                });
                let deployment = Deployment {
                    job: job.clone(),
                    attempt,
                    path,
                    text,
                    placement,
                    restore,
                    restore_from,
                    pin_cpus: options.pin_cpus,
                    commands: commands_in,
                    events,
                    progress,
                    metrics: options.exported.clone(),
                    worker: name.to_owned(),
                };
                let (me, data, report_to, task_cancel) = (
                    name.to_owned(),
                    data.clone(),
                    outbox.clone(),
                    cancel.clone(),
                );
                let thread = std::thread::Builder::new()
                    .name(format!("sluice-task-{job}"))
                    .spawn(move || {
                        run_task(deployment, &me, &data, task_cancel, &|message| {
                            send(&report_to, &message)
                        })
                    })
                    .map_err(|e| e.to_string())?;
                tasks.lock().expect("tasks lock").insert(
                    job,
                    Task {
                        attempt,
                        cancel,
                        thread,
                        commands,
                    },
                );
            }
        }
    }
}
