//! Counters a job exposes while it runs: records in and out (per shard and
//! per plan node), time busy, idle and backpressured, watermark.
//!
//! Written by shards once per batch (relaxed atomics, no lock), read by the
//! thread that reports progress and by whoever scrapes [`JobMetrics`]. One
//! [`ShardMetrics`] per shard; its per-node counters have one writer, the
//! shard's core ([`ShardCounter`]).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

mod job;
mod shard_time;

pub use job::{EdgeSnapshot, JobMetrics, MetricsSnapshot, NodeInfo, ShardSnapshot};
pub(crate) use shard_time::{sample_shard_time, take_busy_time};

/// A counter with one writer (a shard's core) and any number of readers:
/// an add is a plain load and store, no locked instruction.
#[derive(Debug, Default)]
pub struct ShardCounter(AtomicU64);

impl ShardCounter {
    /// Adds `n`. Only the counter's one writer may call this (two writers
    /// would lose adds).
    #[inline]
    pub fn add(&self, n: u64) {
        let now = self.0.load(Ordering::Relaxed);
        self.0.store(now.wrapping_add(n), Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value with one writer (a shard's core) that goes up and down.
#[derive(Debug, Default)]
pub struct ShardGauge(AtomicU64);

impl ShardGauge {
    #[inline]
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One exchange's figures on one shard.
#[derive(Debug, Default)]
pub struct EdgeMetrics {
    /// Nanoseconds its outbox waited for credit.
    pub backpressured_ns: ShardCounter,
    /// Messages its gate read and has not processed yet, over its inputs.
    pub input_queued: ShardGauge,
    /// What its gate's queues hold at most in batches: the credits of its
    /// inputs.
    pub input_capacity: ShardGauge,
    /// Messages its outbox holds that are not sent yet.
    pub output_queued: ShardGauge,
    /// How long the last barrier through its gate waited for the same
    /// barrier from its other inputs (µs; 0 when it overtook or had none
    /// to wait for).
    pub last_alignment_us: ShardGauge,
}

/// Sink latencies are recorded in microseconds, up to an hour (longer ones
/// count as an hour), to two significant digits.
const SINK_LATENCY_MAX_US: u64 = 3_600_000_000;

/// A histogram of sink latencies (microseconds).
pub fn sink_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, SINK_LATENCY_MAX_US, 2).expect("valid histogram bounds")
}

#[derive(Debug)]
pub struct ShardMetrics {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Records serialized for another shard, and their bytes.
    pub records_exchanged: AtomicU64,
    pub bytes_exchanged: AtomicU64,
    pub batches_exchanged: AtomicU64,
    /// Bytes written to the sockets of links to other processes (frames
    /// with their headers).
    pub wire_bytes_sent: Arc<AtomicU64>,
    pub late_records_dropped: AtomicU64,
    /// The watermark at the shard's sinks.
    pub watermark: AtomicI64,
    /// Time the shard's outboxes waited for credit (backpressure), summed
    /// over its edges.
    pub backpressured_ns: AtomicU64,
    /// Records each plan node put out on this shard, by node id (see
    /// [`NodeInfo`]); empty for metrics made without a plan.
    pub node_records_out: Box<[ShardCounter]>,
    /// Each exchange's figures, by edge id.
    pub edges: Box<[EdgeMetrics]>,
    /// Entries of the states each plan node owns on this shard, by node id
    /// (sampled every second).
    pub node_state_entries: Box<[ShardGauge]>,
    /// Per batch a sink took, wall clock minus the event time of its last
    /// record, in µs (taken with `try_lock`: a reader never holds the shard
    /// up; a batch that finds it held is not counted).
    pub sink_latency_us: Mutex<Histogram<u64>>,
    /// Time the shard's executor spent running tasks (sampled).
    pub busy_ns: AtomicU64,
    /// Over the last whole second sampled: milliseconds busy, backpressured
    /// and idle (as Flink's `busyTimeMsPerSecond` family; they add up to
    /// about 1,000).
    pub busy_ms_per_s: AtomicU64,
    pub backpressured_ms_per_s: AtomicU64,
    pub idle_ms_per_s: AtomicU64,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            records_exchanged: AtomicU64::new(0),
            bytes_exchanged: AtomicU64::new(0),
            batches_exchanged: AtomicU64::new(0),
            wire_bytes_sent: Arc::default(),
            late_records_dropped: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            backpressured_ns: AtomicU64::new(0),
            node_records_out: Box::default(),
            edges: Box::default(),
            node_state_entries: Box::default(),
            sink_latency_us: Mutex::new(sink_latency_histogram()),
            busy_ns: AtomicU64::new(0),
            busy_ms_per_s: AtomicU64::new(0),
            backpressured_ms_per_s: AtomicU64::new(0),
            idle_ms_per_s: AtomicU64::new(0),
        }
    }
}

impl ShardMetrics {
    /// Metrics for a shard of a plan whose node ids are below `nodes` and
    /// edge ids below `edges`.
    pub fn for_plan(nodes: usize, edges: usize) -> Self {
        ShardMetrics {
            node_records_out: (0..nodes).map(|_| ShardCounter::default()).collect(),
            edges: (0..edges).map(|_| EdgeMetrics::default()).collect(),
            node_state_entries: (0..nodes).map(|_| ShardGauge::default()).collect(),
            ..Default::default()
        }
    }

    /// The figures of exchange `edge` (none for metrics made without a
    /// plan).
    pub fn edge(&self, edge: u32) -> Option<&EdgeMetrics> {
        self.edges.get(edge as usize)
    }

    /// Records a sink batch whose last record has event time `event_ms`,
    /// taken at `now_ms` (wall clock, ms since the epoch).
    #[inline]
    pub fn record_sink_latency(&self, now_ms: i64, event_ms: i64) {
        if let Ok(mut histogram) = self.sink_latency_us.try_lock() {
            let micros = now_ms.saturating_sub(event_ms).max(0) as u64 * 1000;
            histogram.saturating_record(micros.clamp(1, SINK_LATENCY_MAX_US));
        }
    }

    /// The out counter of node `node` (none for a node outside the plan
    /// these metrics were made for).
    pub fn node_out(&self, node: u64) -> Option<&ShardCounter> {
        self.node_records_out.get(usize::try_from(node).ok()?)
    }

    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The figures of shard `shard` now.
    pub fn figures(&self, shard: u32) -> ShardFigures {
        ShardFigures {
            shard,
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            watermark: self.watermark.load(Ordering::Relaxed),
            backpressured_ns: self.backpressured_ns.load(Ordering::Relaxed),
        }
    }
}

/// One shard's figures at a moment (a running job's progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardFigures {
    pub shard: u32,
    pub records_in: u64,
    pub records_out: u64,
    /// At its sinks (`i64::MIN`: none yet).
    pub watermark: i64,
    /// Time its outboxes waited for credit since it started.
    pub backpressured_ns: u64,
}

/// Totals over all shards of a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobTotals {
    pub records_in: u64,
    pub records_out: u64,
    pub records_exchanged: u64,
    pub bytes_exchanged: u64,
    pub batches_exchanged: u64,
    pub wire_bytes_sent: u64,
    pub late_records_dropped: u64,
    /// Minimum of the shards' sink watermarks.
    pub watermark: i64,
}

pub fn totals(shards: &[Arc<ShardMetrics>]) -> JobTotals {
    let mut t = JobTotals {
        watermark: i64::MAX,
        ..Default::default()
    };
    for m in shards {
        t.records_in += m.records_in.load(Ordering::Relaxed);
        t.records_out += m.records_out.load(Ordering::Relaxed);
        t.records_exchanged += m.records_exchanged.load(Ordering::Relaxed);
        t.bytes_exchanged += m.bytes_exchanged.load(Ordering::Relaxed);
        t.batches_exchanged += m.batches_exchanged.load(Ordering::Relaxed);
        t.wire_bytes_sent += m.wire_bytes_sent.load(Ordering::Relaxed);
        t.late_records_dropped += m.late_records_dropped.load(Ordering::Relaxed);
        t.watermark = t.watermark.min(m.watermark.load(Ordering::Relaxed));
    }
    if shards.is_empty() {
        t.watermark = i64::MIN;
    }
    t
}
