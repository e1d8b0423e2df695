//! Starting the shards of a job and waiting for them.

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::os::fd::{FromRawFd, IntoRawFd};

use futures_lite::FutureExt;
use glommio::sync::Semaphore;
use glommio::{LocalExecutorBuilder, Placement};
use sluice_network::link::{open_link, Link, LinkConfig};
use sluice_network::{
    BatchError, ChannelReceiver, CreditGrantor, ExchangeMessage, LocalMesh, RecordBatch,
    ShardChannelEnds,
};

use super::abort::AbortWatch;
use super::builder::{Outboxes, RootBuilder, ShardBuilder};
use super::job_part::{JobCancel, JobPart, RemoteLink, PART_PROGRESS_INTERVAL};
use super::local_directory::LocalDirectory;
use super::progress::{ProgressReporter, ProgressSample};
use super::AbortSignal;
use crate::checkpoint::{
    self, CheckpointDriver, CheckpointId, CheckpointSignals, Committers, CompletedCheckpoint,
    LeaderLink, RestoreFrom, Restored, ShardCheckpointing,
};
use crate::config::allowed_cpu_ids;
use crate::exchange::{EdgeOutbox, GateInput, GateStep};
use crate::metrics::{
    sample_shard_time, take_busy_time, totals, JobMetrics, JobTotals, ShardFigures, ShardMetrics,
};
use crate::{EngineError, JobConfig};

/// How often the waiting thread drives checkpoints and progress.
const DRIVER_TICK: Duration = Duration::from_millis(5);

/// What a shard gets from the job beyond the plan.
pub(crate) struct ShardContext {
    pub restored: Arc<Restored>,
    pub committers: Committers,
    /// How the shard takes part in checkpoints (if the job takes them).
    pub checkpointing: Option<ShardCheckpointing>,
    /// Where the shard keeps state on local disk.
    pub local_directory: std::path::PathBuf,
    /// Shard 0 runs in this process.
    pub decides_for_job: bool,
}

/// How often a shard looks for states to write while no checkpoint is
/// being written, and, while RocksDB flushes the memtables a barrier
/// switched, whether it is done.
const SNAPSHOT_POLL: Duration = Duration::from_millis(1);
/// The snapshot task queue's shares (the shard's default queue has 1,000).
const SNAPSHOT_SHARES: usize = 100;
/// The pause after a turn of snapshot steps: long enough to leave the task
/// queues idle, so that glommio polls timers and channels.
const SNAPSHOT_PAUSE: Duration = Duration::from_micros(1);
/// A turn of snapshot steps may last the time since the last turn divided
/// by this.
const SNAPSHOT_CATCH_UP_DIVISOR: u32 = 4;

/// How often processing-time timers are checked.
const PROCESSING_TIME_TICK: Duration = Duration::from_millis(1);

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct JobReport {
    pub shards: u32,
    pub pinned: bool,
    pub elapsed: Duration,
    pub totals: JobTotals,
    /// The totals at every progress interval (empty without one).
    pub progress: Vec<ProgressSample>,
    /// How often the job was restarted after a failure.
    pub restarts: u32,
    /// The checkpoints the (last) run completed.
    pub checkpoints: Vec<CompletedCheckpoint>,
    /// How long reading the restored checkpoint took, if one was restored.
    pub restore_ms: Option<f64>,
    /// The job stopped with this savepoint (instead of running to its end).
    pub stopped_with: Option<crate::checkpoint::StorageLocation>,
}

/// Counts finished shards, also when a shard's thread unwinds.
struct FinishedGuard(Arc<AtomicU32>);
impl Drop for FinishedGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Runs a job: one executor per shard, until every shard has finished. A job
/// that takes checkpoints and fails while running is restarted from its last
/// completed checkpoint as its restart strategy allows.
pub fn execute(
    mut config: JobConfig,
    roots: Vec<RootBuilder>,
    edges: u32,
    job_metrics: Arc<JobMetrics>,
) -> Result<JobReport, EngineError> {
    let mut failures = 0;
    loop {
        let mut last_completed = None;
        let error = match execute_once(
            config.clone(),
            roots.clone(),
            edges,
            &job_metrics,
            &mut last_completed,
            None,
        ) {
            Ok(mut report) => {
                report.restarts = failures;
                return Ok(report);
            }
            Err(e) => e,
        };
        let Some(checkpoint) = config.checkpoint.as_mut() else {
            return Err(error);
        };
        if !error.is_failure_while_running() {
            return Err(error);
        }
        failures += 1;
        let Some(delay) = config.restart.delay_before(failures) else {
            return Err(error);
        };
        job_metrics.count_restart();
        // Resume from this attempt's last completed checkpoint, or from
        // where this attempt itself started.
        if let Some(id) = last_completed {
            checkpoint.restore = Some(RestoreFrom::Checkpoint(id));
        }
        tracing::warn!(
            "the job failed ({error}); restart {failures} in {} ms from {}",
            delay.as_millis(),
            match checkpoint.restore {
                Some(RestoreFrom::Checkpoint(id)) => format!("checkpoint {id}"),
                Some(RestoreFrom::Latest) => "the latest checkpoint".into(),
                None => "the beginning".into(),
            }
        );
        std::thread::sleep(delay);
    }
}

/// Runs the shards of a job that `part` places in this process, connected
/// to the others by its links, until they finish or `cancel` stops them.
/// One attempt: restarts are the coordinator's.
pub fn execute_part(
    config: JobConfig,
    roots: Vec<RootBuilder>,
    edges: u32,
    job_metrics: Arc<JobMetrics>,
    part: JobPart,
    cancel: JobCancel,
) -> Result<JobReport, EngineError> {
    let mut config = config;
    match (&mut config.checkpoint, &part.checkpoints) {
        (Some(_), None) => {
            return Err(EngineError::Config(
                "the job checkpoints, but its part has no link to a checkpoint leader".into(),
            ))
        }
        (Some(checkpoint), Some(link)) => {
            if let Some(id) = link.restore {
                checkpoint.restore = Some(RestoreFrom::Checkpoint(id));
                checkpoint.restore_storage = None;
            }
        }
        (None, _) => {}
    }
    execute_once(
        config,
        roots,
        edges,
        &job_metrics,
        &mut None,
        Some((part, cancel)),
    )
}

/// One attempt at running the job (the shards `part` places here, or all);
/// `last_completed` is set to the last checkpoint it completed.
fn execute_once(
    config: JobConfig,
    roots: Vec<RootBuilder>,
    edges: u32,
    job_metrics: &JobMetrics,
    last_completed: &mut Option<CheckpointId>,
    part: Option<(JobPart, JobCancel)>,
) -> Result<JobReport, EngineError> {
    config.validate().map_err(EngineError::Config)?;
    let shards = config.shards;
    let (here, mut links, abort, leader, mut part_progress) = match part {
        Some((part, cancel)) => {
            part.validate(shards).map_err(EngineError::Config)?;
            let mut by_shard: HashMap<u32, Vec<RemoteLink>> = HashMap::new();
            for link in part.links {
                by_shard.entry(link.local).or_default().push(link);
            }
            let leader = part.checkpoints.map(|c| LeaderLink::Remote {
                events: c.events,
                commands: c.commands,
                final_tag: c.final_tag,
            });
            (part.here, by_shard, cancel.abort, leader, part.progress)
        }
        None => (
            (0..shards).collect::<Vec<u32>>(),
            HashMap::new(),
            AbortSignal::default(),
            Some(LeaderLink::Local { shards }),
            None,
        ),
    };
    let config = Arc::new(config);
    let roots = Arc::new(roots);
    let errors: Arc<Mutex<Vec<EngineError>>> = Arc::default();
    let node_slots = job_metrics.node_slots();
    let metrics: Vec<Arc<ShardMetrics>> = (0..shards)
        .map(|_| Arc::new(ShardMetrics::for_plan(node_slots, edges as usize)))
        .collect();
    job_metrics.begin_attempt(
        (here.iter())
            .map(|&shard| (shard, metrics[shard as usize].clone()))
            .collect(),
    );
    let finished = Arc::new(AtomicU32::new(0));
    let layout = sluice_state::KeyGroups::new(config.max_parallelism, shards);
    let local =
        LocalDirectory::create(config.state_directory.as_deref()).map_err(EngineError::Config)?;
    let restore_started = Instant::now();
    let restored = match &config.checkpoint {
        Some(checkpoint) => checkpoint::restore(checkpoint, layout, shards, &local.restore())
            .map_err(|e| EngineError::Restore(e.to_string()))?,
        None => Restored::default(),
    };
    for skipped in &restored.skipped {
        tracing::warn!("{skipped}");
    }
    let restore_ms = restored
        .checkpoint
        .map(|_| restore_started.elapsed().as_secs_f64() * 1e3);
    if let Some((id, _)) = restored.checkpoint {
        tracing::info!(
            "restoring from checkpoint {id} (read in {:.1} ms)",
            restore_ms.unwrap_or(0.0)
        );
    }
    let restored = Arc::new(restored);
    let committers = Committers::default();
    let signals = CheckpointSignals::default();
    let (reports, reports_in) = std::sync::mpsc::channel();
    let mut driver = (config.checkpoint.clone())
        .zip(leader)
        .map(|(checkpoint, leader)| {
            CheckpointDriver::new(
                checkpoint,
                here.len(),
                &restored,
                reports_in,
                signals.clone(),
                committers.clone(),
                leader,
            )
        })
        .transpose()
        .map_err(EngineError::Checkpoint)?;
    let cpus = allowed_cpu_ids();
    let pinned = config.pin_cpus && cpus.len() >= here.len();
    let job_span = tracing::Span::current();
    tracing::info!(
        "starting shard(s) {here:?} of {shards}{}",
        if pinned { ", pinned to CPUs" } else { "" }
    );
    let started = Instant::now();

    let mut handles = Vec::with_capacity(here.len());
    // At most CHANNEL_BATCHES_MAX (validated above).
    let credits = config.channel_batches as u32;
    let meshes = LocalMesh::create_among(edges, shards, &here, credits);
    for (position, (&shard, endpoints)) in here.iter().zip(meshes).enumerate() {
        let remote = links.remove(&shard).unwrap_or_default();
        let placement = if pinned {
            Placement::Fixed(cpus[position])
        } else {
            Placement::Unbound
        };
        let mut builder =
            LocalExecutorBuilder::new(placement).name(&format!("sluice-shard-{shard}"));
        if let Some(spin) = config.spin_before_park {
            builder = builder.spin_before_park(spin);
        }
        let (config, roots, errors, metrics, finished, abort) = (
            config.clone(),
            roots.clone(),
            errors.clone(),
            metrics[shard as usize].clone(),
            finished.clone(),
            abort.clone(),
        );
        let context = ShardContext {
            restored: restored.clone(),
            committers: committers.clone(),
            checkpointing: config.checkpoint.as_ref().map(|c| ShardCheckpointing {
                reports: reports.clone(),
                signals: signals.clone(),
                full_every: c.full_every,
            }),
            local_directory: local.shard(shard),
            decides_for_job: here.contains(&0),
        };
        // Lines logged on the shard's thread name it, within the job's span.
        let span = tracing::info_span!(parent: &job_span, "shard", shard);
        let handle = builder
            .spawn(move || async move {
                let _finished = FinishedGuard(finished);
                // Every task of this thread is this shard's: the span stays
                // entered while the executor runs.
                let _in_shard = span.enter();
                run_shard(
                    shard, config, &roots, endpoints, remote, metrics, errors, abort, context,
                )
                .await;
            })
            .map_err(|e| EngineError::Startup {
                shard,
                reason: e.to_string(),
            })?;
        handles.push(handle);
    }

    // The shards of other processes have no figures here (their watermark
    // would hold the totals' back for good).
    let metrics_here: Vec<Arc<ShardMetrics>> = (here.iter())
        .map(|&shard| metrics[shard as usize].clone())
        .collect();
    let mut part_reported = Instant::now();
    let mut progress = config
        .progress_interval
        .map(|interval| ProgressReporter::new(interval, config.expected_records_in));
    while finished.load(Ordering::Acquire) < here.len() as u32 {
        std::thread::sleep(DRIVER_TICK);
        // A failing job acknowledges nothing more: what its shards do while
        // they wind down is not a checkpoint's. What the leader completed
        // before is still committed.
        if let Some(driver) = driver.as_mut() {
            if abort.is_set() {
                driver.apply_commands();
            } else {
                driver.poll();
                for checkpoint in driver.newly_completed() {
                    job_metrics.checkpoint_completed(checkpoint);
                }
                if driver.stopped_with.is_some() {
                    // Stop with savepoint: end the streams now; nothing
                    // after the savepoint is committed.
                    abort.set();
                }
            }
        }
        if let Some(progress) = &mut progress {
            progress.tick(started.elapsed(), || totals(&metrics_here));
        }
        if let Some(report) = &mut part_progress {
            if part_reported.elapsed() >= PART_PROGRESS_INTERVAL {
                part_reported = Instant::now();
                report(&figures_here(&here, &metrics));
            }
        }
    }
    if let Some(report) = &mut part_progress {
        report(&figures_here(&here, &metrics));
    }
    if let Some(driver) = driver.as_mut().filter(|_| abort.is_set()) {
        driver.apply_commands();
    }
    let progress = progress.map(ProgressReporter::finish).unwrap_or_default();
    let mut panicked = Vec::new();
    for (&shard, handle) in here.iter().zip(handles) {
        if let Err(e) = handle.join() {
            panicked.push(EngineError::ShardPanicked {
                shard,
                reason: e.to_string(),
            });
        }
    }
    let elapsed = started.elapsed();
    let mut errors = std::mem::take(&mut *errors.lock().expect("errors lock"));
    errors.extend(panicked);
    *last_completed = driver.as_ref().and_then(|d| d.last_completed());
    let stopped_with = driver.as_ref().and_then(|d| d.stopped_with.clone());
    if let Some(driver) = &mut driver {
        // Only a job that ran to its end without errors commits its final output.
        if errors.is_empty() && stopped_with.is_none() {
            if let Err(e) = driver.finish(&|| abort.is_set()) {
                errors.push(EngineError::Checkpoint(e));
            }
        }
    }
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    Ok(JobReport {
        shards,
        pinned,
        elapsed,
        totals: totals(&metrics_here),
        progress,
        restarts: 0,
        checkpoints: driver.map(|d| d.completed()).unwrap_or_default(),
        restore_ms,
        stopped_with,
    })
}

/// The figures of the shards `here`.
fn figures_here(here: &[u32], metrics: &[Arc<ShardMetrics>]) -> Vec<ShardFigures> {
    (here.iter())
        .map(|&shard| metrics[shard as usize].figures(shard))
        .collect()
}

pub fn format_watermark(wm: i64) -> String {
    match wm {
        i64::MIN => "none".into(),
        i64::MAX => "end".into(),
        wm => wm.to_string(),
    }
}

/// A connected channel from another shard.
struct IncomingChannel {
    edge: u32,
    source: u32,
    receiver: Box<dyn ChannelReceiver>,
    grantor: Box<dyn CreditGrantor>,
}

/// The largest frame a remote shard may send: a batch is cut at the job's
/// batch size, plus one record; records of more than this fail their link.
const REMOTE_FRAME_MIN: u32 = 64 << 20;

/// Opens the link to each shard of another process over its connection, on
/// this core: every edge has a channel each way. Returns the driver tasks;
/// a link that fails records its error and aborts the job (its receivers
/// end without `End`: the gates take the inputs for broken, not ended).
fn open_links(
    shard: u32,
    edges: u32,
    remote: Vec<RemoteLink>,
    builder: &mut ShardBuilder,
    all_outboxes: &mut Outboxes,
    receivers: &mut Vec<IncomingChannel>,
) -> Vec<glommio::Task<()>> {
    let credits = builder.config.channel_batches as u32;
    let floating = builder.config.link_floating_batches as u32;
    let max_payload =
        REMOTE_FRAME_MIN.max(builder.config.batch_bytes_limit.saturating_mul(4) as u32);
    let mut drivers = Vec::new();
    for link in remote {
        debug_assert_eq!(link.local, shard);
        let outboxes: Vec<Rc<EdgeOutbox>> = (0..edges).map(|edge| builder.outbox(edge)).collect();
        for (edge, outbox) in outboxes.iter().enumerate() {
            all_outboxes.insert(edge as u32, outbox.clone());
        }
        let incoming = (0..edges)
            .map(|edge| {
                let validator = builder.validators.get(&edge).copied();
                // An edge without a gate here (its build failed) is only
                // drained: nothing reads its batches.
                (credits, validator.unwrap_or(accept_unread))
            })
            .collect();
        let config = LinkConfig {
            peer: link.peer.clone(),
            outgoing_credits: vec![credits; edges as usize],
            peer_floating: floating,
            incoming,
            floating,
            max_payload,
            bytes_sent: builder.metrics.wire_bytes_sent.clone(),
        };
        let _ = link.stream.set_nodelay(true);
        // SAFETY: the descriptor is taken from an owned, connected stream and
        // owned by the new one alone.
        let stream = unsafe { glommio::net::TcpStream::from_raw_fd(link.stream.into_raw_fd()) };
        let granted = outboxes.iter().map(|outbox| outbox.granted()).collect();
        let Link {
            senders,
            receivers: incoming,
            driver,
        } = open_link(stream, config, granted);
        for (outbox, sender) in outboxes.iter().zip(senders) {
            outbox.connect(link.remote, Rc::new(sender));
        }
        for (edge, (receiver, grantor)) in incoming.into_iter().enumerate() {
            receivers.push(IncomingChannel {
                edge: edge as u32,
                source: link.remote,
                receiver: Box::new(receiver),
                grantor: Box::new(grantor),
            });
        }
        let (errors, abort) = (builder.errors(), builder.abort.clone());
        drivers.push(glommio::spawn_local(async move {
            let result = futures_lite::future::or(async { Some(driver.await) }, async {
                abort.wait().await;
                None
            })
            .await;
            if let Some(Err(e)) = result {
                errors
                    .lock()
                    .expect("errors lock")
                    .push(EngineError::Link(e.to_string()));
                abort.set();
            }
        }));
    }
    drivers
}

/// The validator of a channel nothing reads.
fn accept_unread(_: &RecordBatch) -> Result<(), BatchError> {
    Ok(())
}

/// Connects every channel end of this shard. Both ends of a local channel
/// wait for each other, so all connections run concurrently; links to other
/// processes are open at once. Returns the outboxes, the incoming channels
/// and the links' driver tasks.
async fn connect(
    shard: u32,
    endpoints: ShardChannelEnds,
    remote: Vec<RemoteLink>,
    builder: &mut ShardBuilder,
) -> (Outboxes, Vec<IncomingChannel>, Vec<glommio::Task<()>>) {
    let edges = endpoints.senders.len() as u32;
    let mut sends = Vec::new();
    let mut all_outboxes: Outboxes = builder.outboxes.clone();
    for (edge, destinations) in endpoints.senders.into_iter().enumerate() {
        let outbox = builder.outbox(edge as u32);
        all_outboxes.insert(edge as u32, outbox.clone());
        for (destination, end) in destinations.into_iter().enumerate() {
            if let Some(end) = end {
                let outbox = outbox.clone();
                sends.push(glommio::spawn_local(async move {
                    let (sender, listen) = end.connect(outbox.granted()).await;
                    outbox.connect(destination as u32, Rc::new(sender));
                    glommio::spawn_local(listen).detach();
                }));
            }
        }
    }
    let mut receives = Vec::new();
    for (edge, sources) in endpoints.receivers.into_iter().enumerate() {
        for (source, end) in sources.into_iter().enumerate() {
            if let Some(end) = end {
                receives.push(glommio::spawn_local(async move {
                    let (receiver, grantor) = end.connect().await;
                    IncomingChannel {
                        edge: edge as u32,
                        source: source as u32,
                        receiver: Box::new(receiver),
                        grantor: Box::new(grantor),
                    }
                }));
            }
        }
    }
    for task in sends {
        task.await;
    }
    let mut receivers = Vec::new();
    for task in receives {
        receivers.push(task.await);
    }
    let drivers = open_links(
        shard,
        edges,
        remote,
        builder,
        &mut all_outboxes,
        &mut receivers,
    );
    debug_assert!(receivers.iter().all(|channel| channel.source != shard));
    (all_outboxes, receivers, drivers)
}

#[allow(clippy::too_many_arguments)]
async fn run_shard(
    shard: u32,
    config: Arc<JobConfig>,
    roots: &[RootBuilder],
    endpoints: ShardChannelEnds,
    remote: Vec<RemoteLink>,
    metrics: Arc<ShardMetrics>,
    errors: Arc<Mutex<Vec<EngineError>>>,
    abort: AbortSignal,
    context: ShardContext,
) {
    let shard_metrics = metrics.clone();
    let mut builder = ShardBuilder::new(
        shard,
        config.clone(),
        metrics,
        errors,
        abort.clone(),
        context,
    );
    for root in roots {
        root(&mut builder);
    }
    let registry = builder.state.registry();
    glommio::spawn_local(sample_shard_time(shard_metrics.clone(), registry)).detach();
    let problems = builder.state.registry().borrow().restore_problems();
    if let Some(problem) = problems.into_iter().next() {
        builder.fail(EngineError::Restore(format!("shard {shard}: {problem}")));
    }
    let (outboxes, receivers, links) = connect(shard, endpoints, remote, &mut builder).await;

    if builder.failed {
        // Tell every peer this shard sends nothing, then stop: peers finish with
        // what they have and the job reports the build error.
        for outbox in outboxes.values() {
            for destination in 0..builder.shards {
                if destination != shard {
                    outbox.enqueue(destination, ExchangeMessage::End);
                }
            }
            outbox.drain().await;
        }
        for link in links {
            link.await;
        }
        return;
    }

    // Every task runs under a panic guard: a panic (a bug, in user code or
    // ours) is reported, and the shard then stops as a whole, dropping its
    // channel ends so that the other shards see it gone instead of waiting.
    let failed = Rc::new(Semaphore::new(0));
    let errors = builder.errors();
    // A task whose panic fails the shard (instead of going unnoticed).
    let guarded = |task: Pin<Box<dyn Future<Output = ()>>>| {
        let (failed, errors, abort) = (failed.clone(), errors.clone(), abort.clone());
        async move {
            if let Err(panic) = AssertUnwindSafe(task).catch_unwind().await {
                let reason = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                errors
                    .lock()
                    .expect("errors lock")
                    .push(EngineError::ShardPanicked { shard, reason });
                abort.set();
                failed.signal(1);
            }
        }
    };
    let spawn = |task: Pin<Box<dyn Future<Output = ()>>>| glommio::spawn_local(guarded(task));
    let mut tasks = Vec::new();
    // An exchange the plan declared but no operator reads (a keyed stream
    // left unused, or replaced as a two-phase aggregation replaces its
    // input's) has no sender here: this shard ends it at once, or its peers
    // would wait for that end forever.
    for (edge, outbox) in &outboxes {
        if builder.gates.contains_key(edge) {
            continue;
        }
        for destination in (0..builder.shards).filter(|d| *d != shard) {
            outbox.enqueue(destination, ExchangeMessage::End);
        }
        let outbox = outbox.clone();
        tasks.push(spawn(Box::pin(async move { outbox.drain().await })));
    }
    let (abort_watch, keep_watch) = AbortWatch::new(abort.clone());
    glommio::spawn_local(keep_watch).detach();
    for IncomingChannel {
        edge,
        source,
        receiver,
        grantor,
    } in receivers
    {
        let Some(gate) = builder.gates.get(&edge).cloned() else {
            tasks.push(spawn(Box::pin(discard(receiver, grantor))));
            continue;
        };
        tasks.push(spawn(Box::pin(read_channel(
            source,
            receiver,
            gate.clone(),
            abort_watch.clone(),
        ))));
        tasks.push(spawn(Box::pin(process_channel(
            source,
            gate,
            grantor,
            outboxes.clone(),
            abort.clone(),
        ))));
    }
    for deferred in std::mem::take(&mut builder.tasks) {
        tasks.push(spawn(deferred(&outboxes)));
    }
    let flushables = std::mem::take(&mut builder.flushables);
    if !flushables.is_empty() {
        let period = (config.flush_timeout / 2).max(Duration::from_micros(50));
        let all: Vec<Rc<EdgeOutbox>> = outboxes.values().cloned().collect();
        let abort = abort.clone();
        tasks.push(spawn(Box::pin(async move {
            loop {
                glommio::timer::sleep(period).await;
                let now = Instant::now();
                let mut all_ended = true;
                for f in &flushables {
                    let mut f = f.borrow_mut();
                    all_ended &= f.is_ended();
                    f.flush_expired(now);
                }
                for outbox in &all {
                    outbox.drain().await;
                }
                // An aborted job's inputs break instead of ending (see
                // `read_channel`), so its operators may never end: nothing
                // they would still send after an abort is needed.
                if all_ended || abort.is_set() {
                    break;
                }
            }
        })));
    }
    if let Some(checkpoints) = builder.checkpoints.clone() {
        // Writes the states of a checkpoint a key group at a time, between
        // the shard's other work (the barrier only captured them).
        //
        // Records come first: the steps run in a task queue of their own
        // with a tenth of the shares, and after each turn the task sleeps
        // (a yield would keep it runnable, and glommio polls timers and
        // channels only when no task is, or at its 100 ms preemption, so
        // a paced source and other shards' batches would wait). A turn
        // runs one step, or more when the shard was busy for long since
        // the last one (a timer fires late on a busy shard): a quarter of
        // that time, so a snapshot still progresses on a saturated shard.
        let abort = abort.clone();
        let queue = glommio::executor().create_task_queue(
            glommio::Shares::Static(SNAPSHOT_SHARES),
            glommio::Latency::NotImportant,
            "sluice-snapshots",
        );
        let snapshots = guarded(Box::pin(async move {
            let mut last_turn = Instant::now();
            loop {
                if checkpoints.has_pending() {
                    let started = Instant::now();
                    let budget = started.duration_since(last_turn) / SNAPSHOT_CATCH_UP_DIVISOR;
                    let waiting = loop {
                        let waiting = !checkpoints.step();
                        if waiting || !checkpoints.has_pending() || started.elapsed() >= budget {
                            break waiting;
                        }
                    };
                    last_turn = Instant::now();
                    // Only RocksDB's background flush left: look again later.
                    let pause = if waiting {
                        SNAPSHOT_POLL
                    } else {
                        SNAPSHOT_PAUSE
                    };
                    glommio::timer::sleep(pause).await;
                } else if checkpoints.is_finished() || abort.is_set() {
                    break;
                } else {
                    glommio::timer::sleep(SNAPSHOT_POLL).await;
                    last_turn = Instant::now();
                }
            }
        }));
        tasks.push(
            glommio::spawn_local_into(snapshots, queue)
                .expect("the snapshot queue was just created"),
        );
    }
    let tickers = std::mem::take(&mut builder.tickers);
    if !tickers.is_empty() {
        let all: Vec<Rc<EdgeOutbox>> = outboxes.values().cloned().collect();
        let abort = abort.clone();
        tasks.push(spawn(Box::pin(async move {
            loop {
                glommio::timer::sleep(PROCESSING_TIME_TICK).await;
                let mut all_ended = true;
                for ticker in &tickers {
                    let mut ticker = ticker.borrow_mut();
                    all_ended &= ticker.is_ended();
                    ticker.tick();
                }
                for outbox in &all {
                    outbox.drain().await;
                }
                // An aborted job's inputs break instead of ending (see
                // `read_channel`), so its operators may never end: nothing
                // they would still send after an abort is needed.
                if all_ended || abort.is_set() {
                    break;
                }
            }
        })));
    }
    let all_done = async move {
        for task in tasks {
            task.await;
        }
        // The links end once both sides sent every channel's end.
        for link in links {
            link.await;
        }
    };
    let failure = async {
        let _ = failed.acquire(1).await;
    };
    // On failure, returning drops (cancels) the remaining tasks.
    futures_lite::future::or(all_done, failure).await;
    take_busy_time(&shard_metrics);
}

/// Reads and drops a channel whose edge this shard did not build (its build
/// failed), granting credit back so that the sender is not held up.
async fn discard(mut receiver: Box<dyn ChannelReceiver>, mut grantor: Box<dyn CreditGrantor>) {
    while let Some(message) = receiver.recv().await {
        match message {
            ExchangeMessage::End => break,
            ExchangeMessage::Batch(_) => {
                grantor.processed();
                grantor.flush();
            }
            _ => {}
        }
    }
}

/// Reads one channel into its gate as messages come (the credits bound
/// what waits), so that a barrier is seen as soon as it arrives. Only this
/// task polls the channel, and only when it wakes it: glommio keeps a waker
/// for every poll that finds the channel empty.
async fn read_channel(
    source: u32,
    mut receiver: Box<dyn ChannelReceiver>,
    gate: Rc<RefCell<dyn GateInput>>,
    abort: Rc<AbortWatch>,
) {
    loop {
        // A job that aborts breaks this input, as if its sender had failed.
        let message = futures_lite::future::or(receiver.recv(), async {
            abort.wait().await;
            None
        })
        .await;
        let last = !matches!(&message, Some(m) if !matches!(m, ExchangeMessage::End));
        gate.borrow_mut().arrive(source, message);
        if last {
            break;
        }
    }
}

/// Processes what `read_channel` queued from `source`, a message at a time,
/// granting each batch's credit back once processed, until the input ends.
async fn process_channel(
    source: u32,
    gate: Rc<RefCell<dyn GateInput>>,
    mut grantor: Box<dyn CreditGrantor>,
    outboxes: Outboxes,
    abort: AbortSignal,
) {
    let reachable = {
        let mut edges = Vec::new();
        gate.borrow().reachable_edges(&mut edges);
        edges.sort_unstable();
        edges.dedup();
        edges
            .iter()
            .filter_map(|e| outboxes.get(e).cloned())
            .collect::<Vec<_>>()
    };
    loop {
        let step = gate.borrow_mut().process_next(source);
        match step {
            GateStep::Batch | GateStep::Control | GateStep::Ended => {
                if step == GateStep::Batch {
                    grantor.processed();
                }
                // Backpressure: wait for the outboxes the chain reaches.
                for outbox in &reachable {
                    outbox.drain().await;
                }
                if step == GateStep::Ended {
                    break;
                }
                // One message at a time, so that the source and the other
                // channels of this shard take turns (see `source_task`).
                futures_lite::future::yield_now().await;
            }
            GateStep::Idle => {
                // Nothing to process (empty, or blocked for alignment): what
                // is owed goes back, then wait for an arrival, the end of an
                // alignment, or its timeout.
                grantor.flush();
                let wake = gate.borrow().wake();
                let deadline = gate.borrow().policy_deadline();
                let timeout = async {
                    match deadline {
                        Some(at) => {
                            glommio::timer::sleep(at.saturating_duration_since(Instant::now()))
                                .await
                        }
                        None => std::future::pending().await,
                    }
                };
                let waited = abort
                    .unless_aborted(futures_lite::future::or(wake.wait(), timeout))
                    .await;
                if waited.is_none() {
                    break;
                }
                if deadline.is_some_and(|at| Instant::now() >= at) {
                    gate.borrow_mut().check_policy();
                }
            }
        }
    }
}
