//! The figures of running jobs, as Prometheus metric families: per operator
//! and shard records in and out; per shard records, bytes exchanged, busy /
//! backpressured / idle time, watermark and its lag; per job restarts,
//! uptime and the latest completed checkpoint (duration, size, synchronous
//! part, in-flight data kept by unaligned barriers); per exchange its input
//! and output queues; per shard its sinks' latency histogram.
//!
//! [`ExportedJobs`] is the set a process exports (one job for `sluice run`,
//! the running tasks of a worker); each scrape takes one
//! [`MetricsSnapshot`] per job and encodes it.

use std::fmt;
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use sluice_engine::metrics::{JobMetrics, MetricsSnapshot, ShardSnapshot};

/// A job's metrics and the labels that name it.
#[derive(Clone)]
pub struct JobFigures {
    /// `job` (its name), and in a cluster `job_id` and `attempt`.
    pub labels: Vec<(String, String)>,
    pub metrics: Arc<JobMetrics>,
}

/// The jobs a process exports now; a collector of them all.
#[derive(Clone, Default)]
pub struct ExportedJobs {
    jobs: Arc<Mutex<Vec<JobFigures>>>,
}

impl fmt::Debug for ExportedJobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedJobs").finish_non_exhaustive()
    }
}

impl ExportedJobs {
    /// Exports `job` until [`remove`](Self::remove) is called with the same
    /// metrics.
    pub fn add(&self, job: JobFigures) {
        self.lock().push(job);
    }

    pub fn remove(&self, metrics: &Arc<JobMetrics>) {
        self.lock().retain(|j| !Arc::ptr_eq(&j.metrics, metrics));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<JobFigures>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type Labels = Vec<(String, String)>;

type Family<V> = super::family::Family<Labels, V>;

/// The upper bounds (seconds) of the sink latency histogram's buckets.
const LATENCY_BOUNDS_S: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A histogram in µs as Prometheus buckets in seconds: the count within
/// each bound (not cumulative: the encoder adds them up), then the rest.
fn latency_buckets(histogram: &Histogram<u64>) -> Vec<(f64, u64)> {
    let mut buckets = Vec::with_capacity(LATENCY_BOUNDS_S.len() + 1);
    let mut below = 0;
    for bound in LATENCY_BOUNDS_S {
        let upto = histogram.count_between(0, (bound * 1e6) as u64);
        buckets.push((bound, upto - below));
        below = upto;
    }
    buckets.push((f64::MAX, histogram.len() - below));
    buckets
}

fn encode_latencies(
    encoder: &mut DescriptorEncoder<'_>,
    histograms: &[(Labels, Histogram<u64>)],
) -> fmt::Result {
    if histograms.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(
        "sluice_sink_latency_seconds",
        "Per batch a sink took: wall clock minus the event time of its last record \
         (end-to-end latency where event time is ingestion time: Kafka timestamps, paced sources).",
        None,
        MetricType::Histogram,
    )?;
    for (labels, histogram) in histograms {
        let sum_s = histogram.mean() * histogram.len() as f64 / 1e6;
        let buckets = latency_buckets(histogram);
        let mut family = metric.encode_family(labels)?;
        family.encode_histogram::<NoLabelSet>(sum_s, histogram.len(), &buckets, None)?;
    }
    Ok(())
}

fn with(labels: &Labels, more: &[(&str, String)]) -> Labels {
    let mut all = labels.clone();
    all.extend(more.iter().map(|(k, v)| (k.to_string(), v.clone())));
    all
}

/// Every family of the exported jobs, filled from their snapshots.
struct Families {
    operator_in: Family<u64>,
    operator_out: Family<u64>,
    operator_backpressured_ms: Family<u64>,
    shard_in: Family<u64>,
    shard_out: Family<u64>,
    exchanged_records: Family<u64>,
    exchanged_bytes: Family<u64>,
    wire_bytes: Family<u64>,
    late_dropped: Family<u64>,
    busy_ms: Family<u64>,
    backpressured_ms: Family<u64>,
    restarts: Family<u64>,
    checkpoints: Family<u64>,
    busy_per_s: Family<f64>,
    backpressured_per_s: Family<f64>,
    idle_per_s: Family<f64>,
    watermark: Family<f64>,
    watermark_lag: Family<f64>,
    uptime: Family<f64>,
    checkpoint_duration: Family<f64>,
    checkpoint_size: Family<f64>,
    checkpoint_full_size: Family<f64>,
    checkpoint_sync: Family<f64>,
    checkpoint_alignment: Family<f64>,
    checkpoint_in_flight: Family<f64>,
    checkpoint_id: Family<f64>,
    input_queue: Family<f64>,
    input_fill: Family<f64>,
    output_queue: Family<f64>,
    state_entries: Family<f64>,
    alignment: Family<f64>,
    /// Per shard: labels and its sinks' latency histogram (µs).
    sink_latency: Vec<(Labels, Histogram<u64>)>,
}

impl Families {
    fn new() -> Self {
        use MetricType::{Counter, Gauge};
        Families {
            operator_in: Family::new(
                "sluice_operator_records_in",
                "Records an operator took in, per shard.",
                Counter,
            ),
            operator_out: Family::new(
                "sluice_operator_records_out",
                "Records an operator put out, per shard.",
                Counter,
            ),
            operator_backpressured_ms: Family::new(
                "sluice_operator_backpressured_milliseconds",
                "Milliseconds an exchange (and the operators chained before it) waited for credit, per shard.",
                Counter,
            ),
            shard_in: Family::new(
                "sluice_shard_records_in",
                "Records the shard's sources read.",
                Counter,
            ),
            shard_out: Family::new(
                "sluice_shard_records_out",
                "Records the shard's sinks wrote.",
                Counter,
            ),
            exchanged_records: Family::new(
                "sluice_shard_exchanged_records",
                "Records the shard serialized for another shard.",
                Counter,
            ),
            exchanged_bytes: Family::new(
                "sluice_shard_exchanged_bytes",
                "Bytes of the records the shard serialized for another shard.",
                Counter,
            ),
            wire_bytes: Family::new(
                "sluice_shard_wire_bytes_sent",
                "Bytes the shard wrote to links to other processes (frames and headers).",
                Counter,
            ),
            late_dropped: Family::new(
                "sluice_shard_late_records_dropped",
                "Records dropped as late by the shard's windows.",
                Counter,
            ),
            busy_ms: Family::new(
                "sluice_shard_busy_milliseconds",
                "Milliseconds the shard's executor spent running tasks.",
                Counter,
            ),
            backpressured_ms: Family::new(
                "sluice_shard_backpressured_milliseconds",
                "Milliseconds the shard's outboxes waited for credit (summed over its exchanges).",
                Counter,
            ),
            restarts: Family::new(
                "sluice_job_restarts",
                "Times the job was restarted after a failure.",
                Counter,
            ),
            checkpoints: Family::new(
                "sluice_job_checkpoints_completed",
                "Checkpoints the job completed (in the process that leads them).",
                Counter,
            ),
            busy_per_s: Family::new(
                "sluice_shard_busy_time_ms_per_second",
                "Over the last second: milliseconds busy (Flink's busyTimeMsPerSecond).",
                Gauge,
            ),
            backpressured_per_s: Family::new(
                "sluice_shard_backpressured_time_ms_per_second",
                "Over the last second: milliseconds waiting for credit, beyond busy time.",
                Gauge,
            ),
            idle_per_s: Family::new(
                "sluice_shard_idle_time_ms_per_second",
                "Over the last second: milliseconds neither busy nor backpressured.",
                Gauge,
            ),
            watermark: Family::new(
                "sluice_shard_watermark_ms",
                "Event time (ms since the epoch) at the shard's sinks.",
                Gauge,
            ),
            watermark_lag: Family::new(
                "sluice_shard_watermark_lag_ms",
                "Wall clock minus the watermark at the shard's sinks.",
                Gauge,
            ),
            uptime: Family::new(
                "sluice_job_uptime_seconds",
                "Seconds since the job's current attempt started.",
                Gauge,
            ),
            checkpoint_duration: Family::new(
                "sluice_checkpoint_last_duration_seconds",
                "The latest completed checkpoint: from trigger to manifest written.",
                Gauge,
            ),
            checkpoint_size: Family::new(
                "sluice_checkpoint_last_size_bytes",
                "The latest completed checkpoint: bytes written for it.",
                Gauge,
            ),
            checkpoint_full_size: Family::new(
                "sluice_checkpoint_last_full_size_bytes",
                "The latest completed checkpoint: bytes of every file it consists of.",
                Gauge,
            ),
            checkpoint_sync: Family::new(
                "sluice_checkpoint_last_sync_seconds",
                "The latest completed checkpoint: longest synchronous part on a shard.",
                Gauge,
            ),
            checkpoint_alignment: Family::new(
                "sluice_checkpoint_last_alignment_seconds",
                "The latest completed checkpoint: longest a barrier waited for alignment at an input.",
                Gauge,
            ),
            checkpoint_in_flight: Family::new(
                "sluice_checkpoint_last_in_flight_bytes",
                "The latest completed checkpoint: records in flight kept by unaligned barriers.",
                Gauge,
            ),
            checkpoint_id: Family::new(
                "sluice_checkpoint_last_id",
                "The id of the latest completed checkpoint.",
                Gauge,
            ),
            input_queue: Family::new(
                "sluice_operator_input_queue_length",
                "Messages an exchange's gate read and has not processed yet, per shard.",
                Gauge,
            ),
            input_fill: Family::new(
                "sluice_operator_input_queue_fill",
                "An exchange's input queue over the credits of its inputs, 0 to 1 (Flink's inPoolUsage).",
                Gauge,
            ),
            output_queue: Family::new(
                "sluice_operator_output_queue_length",
                "Messages an exchange's outbox holds and has not sent yet, per shard.",
                Gauge,
            ),
            state_entries: Family::new(
                "sluice_operator_state_entries",
                "Entries of the keyed state and timers an operator holds on a shard (sampled each second; RocksDB's estimate).",
                Gauge,
            ),
            alignment: Family::new(
                "sluice_operator_last_alignment_seconds",
                "How long the last checkpoint barrier through an exchange waited for it from the other inputs (aligned checkpoints; 0 unaligned).",
                Gauge,
            ),
            sink_latency: Vec::new(),
        }
    }

    fn add_job(&mut self, labels: &Labels, snapshot: &MetricsSnapshot) {
        for shard in &snapshot.shards {
            self.add_shard(labels, snapshot, shard);
        }
        self.restarts
            .samples
            .push((labels.clone(), snapshot.restarts));
        if let Some(uptime) = snapshot.uptime {
            (self.uptime.samples).push((labels.clone(), uptime.as_secs_f64()));
        }
        self.checkpoints
            .samples
            .push((labels.clone(), snapshot.checkpoints_completed));
        if let Some(last) = snapshot.recent_checkpoints.last() {
            let gauges = [
                (&mut self.checkpoint_duration, last.duration_ms / 1e3),
                (&mut self.checkpoint_size, last.bytes as f64),
                (&mut self.checkpoint_full_size, last.total_bytes as f64),
                (&mut self.checkpoint_sync, last.sync_max_ms / 1e3),
                (&mut self.checkpoint_alignment, last.alignment_max_ms / 1e3),
                (
                    &mut self.checkpoint_in_flight,
                    (last.in_flight_received_bytes + last.in_flight_sent_bytes) as f64,
                ),
                (&mut self.checkpoint_id, last.id as f64),
            ];
            for (family, value) in gauges {
                family.samples.push((labels.clone(), value));
            }
        }
    }

    fn add_shard(&mut self, labels: &Labels, snapshot: &MetricsSnapshot, shard: &ShardSnapshot) {
        let labels = with(labels, &[("shard", shard.shard.to_string())]);
        for node in &snapshot.nodes {
            let labels = with(&labels, &[("operator", node.label())]);
            let (records_in, records_out) = (
                snapshot.node_records_in(shard, node),
                snapshot.node_records_out(shard, node),
            );
            self.operator_in.samples.push((labels.clone(), records_in));
            if let Some(&entries) = shard.node_state_entries.get(node.id as usize) {
                if entries > 0 {
                    (self.state_entries.samples).push((labels.clone(), entries as f64));
                }
            }
            if let Some(edge) = snapshot.node_edge(shard, node) {
                (self.operator_backpressured_ms.samples)
                    .push((labels.clone(), edge.backpressured_ns / 1_000_000));
                let queued = edge.input_queued as f64;
                self.input_queue.samples.push((labels.clone(), queued));
                let fill = (queued / edge.input_capacity.max(1) as f64).min(1.0);
                self.input_fill.samples.push((labels.clone(), fill));
                (self.output_queue.samples).push((labels.clone(), edge.output_queued as f64));
                let aligned_s = edge.last_alignment_us as f64 / 1e6;
                self.alignment.samples.push((labels.clone(), aligned_s));
            }
            self.operator_out.samples.push((labels, records_out));
        }
        let counters = [
            (&mut self.shard_in, shard.records_in),
            (&mut self.shard_out, shard.records_out),
            (&mut self.exchanged_records, shard.records_exchanged),
            (&mut self.exchanged_bytes, shard.bytes_exchanged),
            (&mut self.wire_bytes, shard.wire_bytes_sent),
            (&mut self.late_dropped, shard.late_records_dropped),
            (&mut self.busy_ms, shard.busy_ns / 1_000_000),
            (
                &mut self.backpressured_ms,
                shard.backpressured_ns / 1_000_000,
            ),
        ];
        for (family, value) in counters {
            family.samples.push((labels.clone(), value));
        }
        let gauges = [
            (&mut self.busy_per_s, shard.busy_ms_per_s as f64),
            (
                &mut self.backpressured_per_s,
                shard.backpressured_ms_per_s as f64,
            ),
            (&mut self.idle_per_s, shard.idle_ms_per_s as f64),
        ];
        for (family, value) in gauges {
            family.samples.push((labels.clone(), value));
        }
        if shard.watermark != i64::MIN && shard.watermark != i64::MAX {
            (self.watermark.samples).push((labels.clone(), shard.watermark as f64));
        }
        if let Some(lag) = snapshot.watermark_lag_ms(shard) {
            self.watermark_lag
                .samples
                .push((labels.clone(), lag as f64));
        }
        if !shard.sink_latency_us.is_empty() {
            (self.sink_latency).push((labels, shard.sink_latency_us.clone()));
        }
    }

    fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        for family in [
            &self.operator_in,
            &self.operator_out,
            &self.operator_backpressured_ms,
            &self.shard_in,
            &self.shard_out,
            &self.exchanged_records,
            &self.exchanged_bytes,
            &self.wire_bytes,
            &self.late_dropped,
            &self.busy_ms,
            &self.backpressured_ms,
            &self.restarts,
            &self.checkpoints,
        ] {
            family.encode(encoder)?;
        }
        for family in [
            &self.busy_per_s,
            &self.backpressured_per_s,
            &self.idle_per_s,
            &self.watermark,
            &self.watermark_lag,
            &self.uptime,
            &self.checkpoint_duration,
            &self.checkpoint_size,
            &self.checkpoint_full_size,
            &self.checkpoint_sync,
            &self.checkpoint_alignment,
            &self.checkpoint_in_flight,
            &self.checkpoint_id,
            &self.input_queue,
            &self.input_fill,
            &self.output_queue,
            &self.state_entries,
            &self.alignment,
        ] {
            family.encode(encoder)?;
        }
        encode_latencies(encoder, &self.sink_latency)
    }
}

impl Collector for ExportedJobs {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let jobs = self.lock().clone();
        let mut families = Families::new();
        for job in &jobs {
            families.add_job(&job.labels, &job.metrics.snapshot());
        }
        families.encode(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_count_each_sample_once() {
        let mut histogram = sluice_engine::metrics::sink_latency_histogram();
        for micros in [500, 900, 3_000, 40_000, 2_000_000, 3_000_000_000] {
            histogram.record(micros).unwrap();
        }
        let buckets = latency_buckets(&histogram);
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 6);
        let count_at = |bound: f64| buckets.iter().find(|b| b.0 == bound).unwrap().1;
        assert_eq!(count_at(0.001), 2);
        assert_eq!(count_at(0.005), 1);
        assert_eq!(count_at(0.05), 1);
        assert_eq!(count_at(2.5), 1);
        assert_eq!(buckets.last().unwrap(), &(f64::MAX, 1));
    }
}
