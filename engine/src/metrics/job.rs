//! [`JobMetrics`]: what a running job shows to whoever asks — its plan's
//! nodes, the counters of its shards in this process, its restarts and its
//! completed checkpoints.
//!
//! The plan registers its nodes while it is built; each attempt installs
//! its shards' [`ShardMetrics`] when it starts (a restart replaces them:
//! counters start again at zero, as Flink's do for a new attempt); the
//! thread that drives checkpoints adds those it completes. Readers (an HTTP
//! endpoint, a dashboard) take a [`MetricsSnapshot`] at any time from any
//! thread; nothing here is on the record path.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::{sink_latency_histogram, ShardMetrics};
use crate::checkpoint::CompletedCheckpoint;

/// How many completed checkpoints are kept for readers.
const CHECKPOINTS_KEPT: usize = 100;

/// One node of a job's plan: an operator, a source, an exchange or a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: u64,
    /// What it is: `source`, `map`, `filter`, `key_by`, `window`, `sink`, …
    pub kind: &'static str,
    /// The nodes whose output it reads.
    pub inputs: Vec<u64>,
    /// For an exchange, its edge: records cross shards there, and the
    /// operators before it wait there for credit (backpressure).
    pub edge: Option<u32>,
}

impl NodeInfo {
    /// The name metrics carry: kind and id (`3_map`).
    pub fn label(&self) -> String {
        format!("{}_{}", self.id, self.kind)
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct JobMetrics {
    nodes: Mutex<Vec<NodeInfo>>,
    attempt: Mutex<Attempt>,
    restarts: AtomicU64,
    checkpoints: Mutex<Checkpoints>,
}

#[derive(Debug, Default)]
struct Attempt {
    shards: Vec<(u32, Arc<ShardMetrics>)>,
    started: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct Checkpoints {
    completed: u64,
    recent: VecDeque<CompletedCheckpoint>,
}

/// One shard's counters at a moment.
#[derive(Debug, Clone)]
pub struct ShardSnapshot {
    pub shard: u32,
    pub records_in: u64,
    pub records_out: u64,
    pub records_exchanged: u64,
    pub bytes_exchanged: u64,
    pub batches_exchanged: u64,
    pub wire_bytes_sent: u64,
    pub late_records_dropped: u64,
    /// At the shard's sinks (`i64::MIN`: none yet).
    pub watermark: i64,
    pub busy_ns: u64,
    pub backpressured_ns: u64,
    pub busy_ms_per_s: u64,
    pub backpressured_ms_per_s: u64,
    pub idle_ms_per_s: u64,
    /// Records each node put out on this shard, by node id.
    pub node_records_out: Vec<u64>,
    /// Each exchange's figures, by edge id.
    pub edges: Vec<EdgeSnapshot>,
    /// Entries of the states each node owns, by node id.
    pub node_state_entries: Vec<u64>,
    /// Sink latencies (µs): wall clock minus event time, one per batch.
    pub sink_latency_us: Histogram<u64>,
}

impl Default for ShardSnapshot {
    fn default() -> Self {
        ShardSnapshot {
            shard: 0,
            records_in: 0,
            records_out: 0,
            records_exchanged: 0,
            bytes_exchanged: 0,
            batches_exchanged: 0,
            wire_bytes_sent: 0,
            late_records_dropped: 0,
            watermark: i64::MIN,
            busy_ns: 0,
            backpressured_ns: 0,
            busy_ms_per_s: 0,
            backpressured_ms_per_s: 0,
            idle_ms_per_s: 0,
            node_records_out: Vec::new(),
            edges: Vec::new(),
            node_state_entries: Vec::new(),
            sink_latency_us: sink_latency_histogram(),
        }
    }
}

/// One exchange's figures on one shard at a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeSnapshot {
    pub backpressured_ns: u64,
    pub input_queued: u64,
    pub input_capacity: u64,
    pub output_queued: u64,
    pub last_alignment_us: u64,
}

impl ShardSnapshot {
    fn of(shard: u32, m: &ShardMetrics) -> Self {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ShardSnapshot {
            shard,
            records_in: load(&m.records_in),
            records_out: load(&m.records_out),
            records_exchanged: load(&m.records_exchanged),
            bytes_exchanged: load(&m.bytes_exchanged),
            batches_exchanged: load(&m.batches_exchanged),
            wire_bytes_sent: load(&m.wire_bytes_sent),
            late_records_dropped: load(&m.late_records_dropped),
            watermark: m.watermark.load(Ordering::Relaxed),
            busy_ns: load(&m.busy_ns),
            backpressured_ns: load(&m.backpressured_ns),
            busy_ms_per_s: load(&m.busy_ms_per_s),
            backpressured_ms_per_s: load(&m.backpressured_ms_per_s),
            idle_ms_per_s: load(&m.idle_ms_per_s),
            node_records_out: m.node_records_out.iter().map(|c| c.get()).collect(),
            edges: (m.edges.iter())
                .map(|e| EdgeSnapshot {
                    backpressured_ns: e.backpressured_ns.get(),
                    input_queued: e.input_queued.get(),
                    input_capacity: e.input_capacity.get(),
                    output_queued: e.output_queued.get(),
                    last_alignment_us: e.last_alignment_us.get(),
                })
                .collect(),
            node_state_entries: m.node_state_entries.iter().map(|g| g.get()).collect(),
            sink_latency_us: (m.sink_latency_us.lock())
                .map(|h| h.clone())
                .unwrap_or_else(|p| p.into_inner().clone()),
        }
    }
}

/// A job's metrics at a moment.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    pub nodes: Vec<NodeInfo>,
    /// The shards of this process, by shard id.
    pub shards: Vec<ShardSnapshot>,
    pub restarts: u64,
    /// Since the attempt started (none before it did).
    pub uptime: Option<Duration>,
    pub checkpoints_completed: u64,
    /// The latest completed checkpoints, oldest first.
    pub recent_checkpoints: Vec<CompletedCheckpoint>,
    /// When the snapshot was taken, in milliseconds since the epoch.
    pub taken_at_ms: i64,
}

impl MetricsSnapshot {
    /// Records node `node` put out on `shard`. A sink puts out what it
    /// takes in.
    pub fn node_records_out(&self, shard: &ShardSnapshot, node: &NodeInfo) -> u64 {
        if node.kind == "sink" {
            return Self::out_of_inputs(shard, node);
        }
        Self::counted_out(shard, node.id)
    }

    /// Records node `node` took in on `shard`: what its inputs put out
    /// there (every consumer of a node sees all of its output). A source
    /// takes in what it puts out.
    pub fn node_records_in(&self, shard: &ShardSnapshot, node: &NodeInfo) -> u64 {
        if node.inputs.is_empty() {
            return Self::counted_out(shard, node.id);
        }
        Self::out_of_inputs(shard, node)
    }

    fn counted_out(shard: &ShardSnapshot, node: u64) -> u64 {
        (shard.node_records_out)
            .get(node as usize)
            .copied()
            .unwrap_or(0)
    }

    fn out_of_inputs(shard: &ShardSnapshot, node: &NodeInfo) -> u64 {
        let inputs = node.inputs.iter();
        inputs.map(|&input| Self::counted_out(shard, input)).sum()
    }

    /// Nanoseconds node `node` waited on `shard` for credit to send on (an
    /// exchange's; none for other nodes).
    pub fn node_backpressured_ns(&self, shard: &ShardSnapshot, node: &NodeInfo) -> Option<u64> {
        Some(self.node_edge(shard, node)?.backpressured_ns)
    }

    /// The figures of node `node`'s exchange on `shard` (none for a node
    /// that is not an exchange).
    pub fn node_edge<'s>(
        &self,
        shard: &'s ShardSnapshot,
        node: &NodeInfo,
    ) -> Option<&'s EdgeSnapshot> {
        shard.edges.get(node.edge? as usize)
    }

    /// How far event time at `shard`'s sinks is behind the snapshot's
    /// wall clock, in milliseconds (none before a first watermark and
    /// after the last).
    pub fn watermark_lag_ms(&self, shard: &ShardSnapshot) -> Option<i64> {
        (shard.watermark != i64::MIN && shard.watermark != i64::MAX)
            .then(|| self.taken_at_ms.saturating_sub(shard.watermark))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl JobMetrics {
    /// Registers a node of the plan (while the plan is built).
    pub(crate) fn add_node(&self, id: u64, kind: &'static str, inputs: &[u64]) {
        lock(&self.nodes).push(NodeInfo {
            id,
            kind,
            inputs: inputs.to_vec(),
            edge: None,
        });
    }

    /// Node `node` is the exchange of edge `edge`.
    pub(crate) fn set_node_edge(&self, node: u64, edge: u32) {
        if let Some(info) = lock(&self.nodes).iter_mut().find(|n| n.id == node) {
            info.edge = Some(edge);
        }
    }

    /// One more than the highest node id (the size of per-node counters).
    pub(crate) fn node_slots(&self) -> usize {
        lock(&self.nodes)
            .iter()
            .map(|n| n.id as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The plan's nodes, in the order they were added.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        lock(&self.nodes).clone()
    }

    /// A new attempt runs `shards` (id and counters) in this process.
    pub(crate) fn begin_attempt(&self, shards: Vec<(u32, Arc<ShardMetrics>)>) {
        *lock(&self.attempt) = Attempt {
            shards,
            started: Some(SystemTime::now()),
        };
    }

    pub(crate) fn count_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn checkpoint_completed(&self, checkpoint: CompletedCheckpoint) {
        let mut checkpoints = lock(&self.checkpoints);
        checkpoints.completed += 1;
        if checkpoints.recent.len() == CHECKPOINTS_KEPT {
            checkpoints.recent.pop_front();
        }
        checkpoints.recent.push_back(checkpoint);
    }

    /// Everything now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let now = SystemTime::now();
        let (shards, started) = {
            let attempt = lock(&self.attempt);
            let shards = (attempt.shards.iter())
                .map(|(shard, m)| ShardSnapshot::of(*shard, m))
                .collect();
            (shards, attempt.started)
        };
        let checkpoints = lock(&self.checkpoints);
        MetricsSnapshot {
            nodes: self.nodes(),
            shards,
            restarts: self.restarts.load(Ordering::Relaxed),
            uptime: started.and_then(|s| now.duration_since(s).ok()),
            checkpoints_completed: checkpoints.completed,
            recent_checkpoints: checkpoints.recent.iter().cloned().collect(),
            taken_at_ms: now
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> JobMetrics {
        let job = JobMetrics::default();
        job.add_node(1, "source", &[]);
        job.add_node(2, "map", &[1]);
        job.add_node(3, "filter", &[1]);
        job.add_node(4, "union", &[2, 3]);
        job.add_node(5, "sink", &[4]);
        job
    }

    #[test]
    fn records_in_are_what_the_inputs_put_out() {
        let job = graph();
        let shard = Arc::new(ShardMetrics::for_plan(job.node_slots(), 0));
        for (node, n) in [(1, 100), (2, 100), (3, 40), (4, 140)] {
            shard.node_out(node).expect("a node of the plan").add(n);
        }
        job.begin_attempt(vec![(0, shard)]);
        let snapshot = job.snapshot();
        let s = &snapshot.shards[0];
        let by_id = |id: u64| snapshot.nodes.iter().find(|n| n.id == id).unwrap();
        let io = |id| {
            (
                snapshot.node_records_in(s, by_id(id)),
                snapshot.node_records_out(s, by_id(id)),
            )
        };
        assert_eq!(io(1), (100, 100));
        assert_eq!(io(2), (100, 100));
        assert_eq!(io(3), (100, 40));
        assert_eq!(io(4), (140, 140));
        assert_eq!(io(5), (140, 140));
        assert_eq!(by_id(4).label(), "4_union");
    }

    #[test]
    fn a_new_attempt_replaces_the_counters_and_checkpoints_are_bounded() {
        let job = graph();
        let first = Arc::new(ShardMetrics::for_plan(6, 0));
        first.node_out(1).unwrap().add(7);
        job.begin_attempt(vec![(0, first)]);
        job.count_restart();
        job.begin_attempt(vec![(0, Arc::new(ShardMetrics::for_plan(6, 0)))]);
        for id in 1..=150 {
            job.checkpoint_completed(CompletedCheckpoint {
                id,
                duration_ms: 1.0,
                bytes: 10,
                total_bytes: 10,
                sync_max_ms: 0.1,
                alignment_max_ms: 0.0,
                in_flight_received_bytes: 0,
                in_flight_sent_bytes: 0,
            });
        }
        let snapshot = job.snapshot();
        assert_eq!(snapshot.shards[0].node_records_out[1], 0);
        assert_eq!(snapshot.restarts, 1);
        assert_eq!(snapshot.checkpoints_completed, 150);
        assert_eq!(snapshot.recent_checkpoints.len(), CHECKPOINTS_KEPT);
        assert_eq!(snapshot.recent_checkpoints[0].id, 51);
        assert!(snapshot.uptime.is_some());
    }

    #[test]
    fn watermark_lag_is_against_the_wall_clock() {
        let snapshot = MetricsSnapshot {
            taken_at_ms: 10_000,
            ..Default::default()
        };
        let mut shard = ShardSnapshot {
            watermark: 7_500,
            ..Default::default()
        };
        assert_eq!(snapshot.watermark_lag_ms(&shard), Some(2_500));
        shard.watermark = i64::MIN;
        assert_eq!(snapshot.watermark_lag_ms(&shard), None);
        shard.watermark = i64::MAX;
        assert_eq!(snapshot.watermark_lag_ms(&shard), None);
    }
}
