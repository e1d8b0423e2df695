//! The task that drives one source on one shard.
//!
//! Reads the shard's partitions round-robin, a batch at a time; assigns
//! timestamps; keeps a watermark per partition (bounded out-of-orderness) and
//! emits the minimum over non-idle partitions into the chain; after each batch
//! waits for the outboxes the chain reaches (backpressure). When every partition
//! has ended it emits the final watermark and `End`. When the job takes
//! checkpoints, it checks before each round whether a new one was triggered;
//! if so it records every partition's position and emits the barrier. After
//! the barrier of a stop-with-savepoint it reads nothing more until the job
//! stops (or the savepoint fails and it reads on).
//!
//! A source whose partitions grow (Kafka) is looked at every discovery
//! interval; the shard's new partitions join the round, their watermark
//! starting at the bottom (the combined watermark waits for them, or for
//! their idle timeout). Such a shard does not end while it has no partition
//! of its own: a placeholder input, idle for good, keeps it waiting for
//! partitions to come without holding back time.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_network::{CheckpointBarrier, WatermarkStatus};

use crate::checkpoint::{ShardCheckpoints, SourcePositions};

use crate::connectors::{SourcePoll, SourceReader};
use crate::exchange::EdgeOutbox;
use crate::metrics::ShardMetrics;
use crate::push::{Control, Push};
use crate::runtime::AbortSignal;
use crate::time::Clock;
use crate::watermark::{PartitionWatermark, WatermarkCombiner, WatermarkStrategy};
use crate::SourceError;
use crate::{EngineError, Rec};

/// Longest pause when every partition is pending.
const PENDING_PAUSE_MAX: Duration = Duration::from_millis(10);

struct Partition<T> {
    /// Its position's name in checkpoints.
    key: String,
    reader: Box<dyn SourceReader<T>>,
    watermark: PartitionWatermark,
    last_record: Instant,
    idle: bool,
    ended: bool,
}

/// Opens the partitions that appeared since the last look and that this
/// shard reads, at their restored positions: each with its position key.
pub(crate) type DiscoverPartitions<T> =
    Box<dyn FnMut() -> Result<Vec<(String, Box<dyn SourceReader<T>>)>, SourceError>>;

/// A growing source's discovery, on one shard.
pub(crate) struct PartitionDiscovery<T> {
    pub interval: Duration,
    pub discover: DiscoverPartitions<T>,
}

pub(crate) struct SourceTask<T> {
    /// The shard's partitions: position keys and readers.
    pub readers: Vec<(String, Box<dyn SourceReader<T>>)>,
    pub discovery: Option<PartitionDiscovery<T>>,
    pub strategy: WatermarkStrategy<T>,
    pub chain: Box<dyn Push<T>>,
    pub outboxes: Vec<Rc<EdgeOutbox>>,
    pub metrics: Arc<ShardMetrics>,
    pub batch_records: usize,
    pub errors: Arc<std::sync::Mutex<Vec<EngineError>>>,
    pub clock: Rc<dyn Clock>,
    pub abort: AbortSignal,
    pub checkpointing: Option<SourceCheckpointing>,
}

/// A source's part in checkpoints.
pub(crate) struct SourceCheckpointing {
    pub checkpoints: Rc<ShardCheckpoints>,
    pub participant: usize,
}

impl SourceCheckpointing {
    fn positions<T>(&self, partitions: &[Partition<T>]) -> SourcePositions {
        partitions
            .iter()
            .map(|p| (p.key.clone(), p.reader.position()))
            .collect()
    }
}

fn partition<T>(key: String, reader: Box<dyn SourceReader<T>>, bound: i64) -> Partition<T> {
    Partition {
        key,
        reader,
        watermark: PartitionWatermark::new(bound),
        last_record: Instant::now(),
        idle: false,
        ended: false,
    }
}

async fn drain(outboxes: &[Rc<EdgeOutbox>]) {
    for outbox in outboxes {
        outbox.drain().await;
    }
}

/// How often a source blocked by backpressure looks for a checkpoint trigger.
const TRIGGER_CHECK: Duration = Duration::from_millis(1);

/// How often a source stopped at a stop-with-savepoint's barrier looks
/// whether the job stops or reads on.
const STOPPED_PAUSE: Duration = Duration::from_millis(2);

/// Records the partitions' positions and emits the barrier of a newly
/// triggered checkpoint, if there is one.
fn emit_barrier_if_triggered<T>(
    c: &SourceCheckpointing,
    chain: &mut Box<dyn Push<T>>,
    last_barrier: &mut u64,
    partitions: &[Partition<T>],
    clock: &Rc<dyn Clock>,
) -> bool {
    let triggered = c.checkpoints.triggered();
    if triggered <= *last_barrier {
        return false;
    }
    *last_barrier = triggered;
    c.checkpoints
        .at_barrier(c.participant, triggered, c.positions(partitions));
    chain.control(Control::Barrier(CheckpointBarrier {
        id: triggered,
        timestamp_ms: clock.now_ms(),
    }));
    true
}

/// Waits for the outboxes to drain (backpressure); a checkpoint triggered
/// meanwhile gets its barrier at once — queued behind what this source
/// already sent — so a blocked source does not hold checkpoints back.
async fn drain_watching_triggers<T>(
    outboxes: &[Rc<EdgeOutbox>],
    chain: &mut Box<dyn Push<T>>,
    checkpointing: &Option<SourceCheckpointing>,
    last_barrier: &mut u64,
    partitions: &[Partition<T>],
    clock: &Rc<dyn Clock>,
) {
    let Some(c) = checkpointing else {
        return drain(outboxes).await;
    };
    if outboxes.iter().all(|o| o.is_empty()) {
        return;
    }
    let mut pending = Box::pin(drain(outboxes));
    loop {
        let drained = futures_lite::future::or(
            async {
                (&mut pending).await;
                true
            },
            async {
                glommio::timer::sleep(TRIGGER_CHECK).await;
                false
            },
        )
        .await;
        if drained {
            return;
        }
        emit_barrier_if_triggered(c, chain, last_barrier, partitions, clock);
    }
}

pub(crate) async fn run_source<T: 'static>(task: SourceTask<T>) {
    let SourceTask {
        readers,
        mut discovery,
        strategy,
        mut chain,
        outboxes,
        metrics,
        batch_records,
        errors,
        clock,
        abort,
        checkpointing,
    } = task;
    // Checkpoints may have been triggered before this task started: it owes
    // a barrier for the newest one above the checkpoint the job resumed from.
    let mut last_barrier = checkpointing
        .as_ref()
        .map_or(0, |c| c.checkpoints.resumed_from());
    let bound = strategy.out_of_orderness_ms;
    let mut partitions: Vec<Partition<T>> = readers
        .into_iter()
        .map(|(key, reader)| partition(key, reader, bound.unwrap_or(0)))
        .collect();
    // Input i of the combiner is partition i; a growing source has one more,
    // idle for good, after the first ones (new partitions come after it).
    let placeholder = discovery.as_ref().map(|_| partitions.len());
    let mut combiner = WatermarkCombiner::new(partitions.len() + 1);
    match placeholder {
        Some(input) => {
            combiner.set_idle(input, true);
        }
        None => {
            combiner.end(partitions.len());
        }
    }
    let input_of = move |index: usize| match placeholder {
        Some(p) if index >= p => index + 1,
        _ => index,
    };
    let mut next_discovery =
        Instant::now() + discovery.as_ref().map_or(Duration::ZERO, |d| d.interval);
    let mut status = WatermarkStatus::Active;
    let mut batch: Vec<Rec<T>> = Vec::with_capacity(batch_records);
    let mut pause = Duration::from_micros(100);
    let mut failed = false;

    let mut aborted = false;
    while !combiner.all_ended() {
        // The job aborts (another shard or a link failed, or it is
        // cancelled): stop reading and end the stream, without the final
        // watermark — no window fires for an attempt that commits nothing
        // more.
        aborted |= abort.is_set();
        failed |= aborted;
        if let Some(c) = checkpointing.as_ref().filter(|_| !failed) {
            if emit_barrier_if_triggered(c, &mut chain, &mut last_barrier, &partitions, &clock) {
                drain(&outboxes).await;
            }
            if c.checkpoints.sources_stopped_at(last_barrier) {
                // Stopping with a savepoint: nothing is read after its
                // barrier. The job stops when it completes (the abort
                // signal), or reads on if it fails.
                glommio::timer::sleep(STOPPED_PAUSE).await;
                continue;
            }
        }
        if let Some(d) = discovery.as_mut().filter(|_| !failed) {
            if Instant::now() >= next_discovery {
                next_discovery = Instant::now() + d.interval;
                match (d.discover)() {
                    Ok(found) => {
                        for (key, reader) in found {
                            tracing::info!(partition = %key, "reading a new partition");
                            partitions.push(partition(key, reader, bound.unwrap_or(0)));
                            combiner.add_input();
                        }
                    }
                    Err(e) => {
                        errors
                            .lock()
                            .expect("errors lock")
                            .push(EngineError::Source(e));
                        failed = true;
                    }
                }
            }
        }
        let mut progressed = false;
        for index in 0..partitions.len() {
            // A barrier emitted while this round waited on backpressure may
            // be a stop-with-savepoint's: the round ends there.
            if (checkpointing.as_ref())
                .is_some_and(|c| c.checkpoints.sources_stopped_at(last_barrier))
            {
                break;
            }
            let partition = &mut partitions[index];
            if partition.ended || failed {
                continue;
            }
            let polled = partition.reader.poll(&mut batch, batch_records);
            let produced = batch.len();
            let now_ms = if strategy.processing_time {
                clock.now_ms()
            } else {
                0
            };
            if produced > 0 {
                if strategy.processing_time {
                    for record in batch.iter_mut() {
                        record.ts = now_ms;
                    }
                } else if let Some(assign) = &strategy.timestamps {
                    for record in batch.iter_mut() {
                        record.ts = assign(&record.value);
                    }
                }
                if bound.is_some() {
                    for record in batch.iter() {
                        partition.watermark.observe(record.ts);
                    }
                }
                ShardMetrics::add(&metrics.records_in, produced as u64);
                chain.push(&mut batch);
                partition.last_record = Instant::now();
                progressed = true;
                if partition.idle {
                    partition.idle = false;
                    combiner.set_idle(input_of(index), false);
                }
            }
            let advanced = match polled {
                Ok(SourcePoll::End) => {
                    partition.ended = true;
                    combiner.end(input_of(index))
                }
                Ok(_) if strategy.processing_time => combiner.update(input_of(index), now_ms - 1),
                Ok(_) if bound.is_some() && produced > 0 => {
                    combiner.update(input_of(index), partition.watermark.current())
                }
                Ok(SourcePoll::Pending) => match strategy.idle_timeout {
                    Some(timeout)
                        if !partition.idle && partition.last_record.elapsed() >= timeout =>
                    {
                        partition.idle = true;
                        combiner.set_idle(input_of(index), true)
                    }
                    _ => None,
                },
                Ok(SourcePoll::Ready) => None,
                Err(e) => {
                    // Bad input ends the job with an error naming where; what was
                    // read before it still flows to the sinks.
                    errors
                        .lock()
                        .expect("errors lock")
                        .push(EngineError::Source(e));
                    failed = true;
                    None
                }
            };
            // Without a watermark strategy only the final watermark is emitted.
            if let Some(wm) = advanced {
                if bound.is_some() || wm == i64::MAX {
                    chain.control(Control::Watermark(wm));
                }
            }
            if failed {
                break;
            }
            drain_watching_triggers(
                &outboxes,
                &mut chain,
                &checkpointing,
                &mut last_barrier,
                &partitions,
                &clock,
            )
            .await;
        }
        if failed {
            for (index, partition) in partitions.iter_mut().enumerate() {
                if !partition.ended {
                    partition.ended = true;
                    match combiner.end(input_of(index)) {
                        Some(wm) if !aborted => chain.control(Control::Watermark(wm)),
                        _ => {}
                    }
                }
            }
            break;
        }
        let now_status = combiner.status();
        if now_status != status {
            status = now_status;
            chain.control(Control::Status(status));
            drain(&outboxes).await;
        }
        if progressed {
            pause = Duration::from_micros(100);
            // Give the rest of the shard a turn after every round of batches:
            // yielding the task queue (not just this task) makes the executor
            // poll its channels, so batches other shards sent are received now
            // instead of at the next preemption (100 ms), which would leave
            // those shards blocked on full channels meanwhile.
            glommio::executor().yield_task_queue_now().await;
        } else if !combiner.all_ended() {
            // A paced reader says when its next records are due: wake then.
            let now = Instant::now();
            let due = partitions
                .iter()
                .filter(|p| !p.ended)
                .filter_map(|p| p.reader.ready_at())
                .min()
                .map(|at| at.saturating_duration_since(now));
            match due {
                Some(wait) if wait <= pause => glommio::timer::sleep(wait).await,
                _ => {
                    glommio::timer::sleep(pause).await;
                    pause = (pause * 2).min(PENDING_PAUSE_MAX);
                }
            }
        }
    }
    if combiner.current() != i64::MAX {
        chain.control(Control::Watermark(i64::MAX));
    }
    chain.control(Control::End);
    drain(&outboxes).await;
    if let Some(c) = &checkpointing {
        c.checkpoints.ended(c.participant, c.positions(&partitions));
    }
}
