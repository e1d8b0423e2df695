//! Per-operator figures for the dashboard: what each node of a job's plan
//! took in and put out, how long it waited for credit and how much state it
//! holds, over the shards of one process, sampled from its
//! [`MetricsSnapshot`]s. A worker sends them to the coordinator with its
//! task's progress; the coordinator adds up its workers' ([`merge`]).
//!
//! Runs on the thread that reports progress (about once a second), never on
//! a shard's core.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_engine::metrics::MetricsSnapshot;

/// One node of a job's plan, over some shards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorProgress {
    pub id: u64,
    /// `source`, `map`, `window`, `exchange`, `sink`, …
    pub kind: String,
    /// The nodes whose output it reads.
    pub inputs: Vec<u64>,
    pub records_in: u64,
    pub records_out: u64,
    /// An exchange's credit waits: the most any of its shards waited per
    /// second over the last interval (Flink's backPressuredTimeMsPerSecond,
    /// at most 1000); `None` for nodes that do not send across shards.
    pub backpressured_ms_per_s: Option<u64>,
    /// Entries of the state it owns.
    pub state_entries: u64,
}

/// What one sample adds to a process's progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub operators: Vec<OperatorProgress>,
    /// The 99th percentile of sink latency over the interval, in
    /// microseconds (none when no sink wrote in it).
    pub sink_latency_p99_us: Option<u64>,
}

/// Turns successive snapshots of one process into samples: waits and
/// latencies are per interval, counts are totals.
#[derive(Debug, Default)]
pub struct OperatorSampler {
    previous: Option<MetricsSnapshot>,
}

impl OperatorSampler {
    pub fn sample(&mut self, now: MetricsSnapshot) -> Sample {
        let interval_ms = (self.previous.as_ref())
            .map(|p| now.taken_at_ms.saturating_sub(p.taken_at_ms))
            .filter(|&ms| ms > 0);
        let operators = (now.nodes.iter())
            .map(|node| {
                let mut figures = OperatorProgress {
                    id: node.id,
                    kind: node.kind.to_owned(),
                    inputs: node.inputs.clone(),
                    ..OperatorProgress::default()
                };
                for shard in &now.shards {
                    figures.records_in += now.node_records_in(shard, node);
                    figures.records_out += now.node_records_out(shard, node);
                    figures.state_entries += (shard.node_state_entries)
                        .get(node.id as usize)
                        .copied()
                        .unwrap_or(0);
                    let Some(waited_ns) = now.node_backpressured_ns(shard, node) else {
                        continue;
                    };
                    let before = (self.previous.as_ref())
                        .and_then(|p| {
                            let same = p.shards.iter().find(|s| s.shard == shard.shard)?;
                            p.node_backpressured_ns(same, node)
                        })
                        .unwrap_or(waited_ns);
                    let per_s = match interval_ms {
                        Some(ms) => {
                            (waited_ns.saturating_sub(before) / 1_000 / ms as u64).min(1000)
                        }
                        None => 0,
                    };
                    let most = figures.backpressured_ms_per_s.get_or_insert(0);
                    *most = (*most).max(per_s);
                }
                figures
            })
            .collect();
        let sink_latency_p99_us = self.latency_p99_since_previous(&now);
        self.previous = Some(now);
        Sample {
            operators,
            sink_latency_p99_us,
        }
    }

    /// The 99th percentile of the latencies recorded since the previous
    /// snapshot, over every shard.
    fn latency_p99_since_previous(&self, now: &MetricsSnapshot) -> Option<u64> {
        let mut recent = sluice_engine::metrics::sink_latency_histogram();
        for shard in &now.shards {
            let mut added = shard.sink_latency_us.clone();
            let before = (self.previous.as_ref())
                .and_then(|p| p.shards.iter().find(|s| s.shard == shard.shard));
            if let Some(before) = before {
                // Recorded counts only grow: what was there is subtracted.
                if added.subtract(&before.sink_latency_us).is_err() {
                    continue;
                }
            }
            let _ = recent.add(&added);
        }
        (!recent.is_empty()).then(|| recent.value_at_quantile(0.99))
    }
}

/// The operators of several processes (a job's tasks) as one: counts and
/// state added up, the largest wait kept.
pub fn merge<'a>(parts: impl IntoIterator<Item = &'a [OperatorProgress]>) -> Vec<OperatorProgress> {
    let mut merged: BTreeMap<u64, OperatorProgress> = BTreeMap::new();
    for part in parts {
        for operator in part {
            let into = merged
                .entry(operator.id)
                .or_insert_with(|| OperatorProgress {
                    records_in: 0,
                    records_out: 0,
                    backpressured_ms_per_s: None,
                    state_entries: 0,
                    ..operator.clone()
                });
            into.records_in += operator.records_in;
            into.records_out += operator.records_out;
            into.state_entries += operator.state_entries;
            if let Some(waited) = operator.backpressured_ms_per_s {
                let most = into.backpressured_ms_per_s.get_or_insert(0);
                *most = (*most).max(waited);
            }
        }
    }
    merged.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(id: u64, records: u64, waited: Option<u64>) -> OperatorProgress {
        OperatorProgress {
            id,
            kind: if waited.is_some() { "exchange" } else { "map" }.into(),
            inputs: id.checked_sub(1).into_iter().collect(),
            records_in: records,
            records_out: records,
            backpressured_ms_per_s: waited,
            state_entries: records / 2,
        }
    }

    #[test]
    fn merging_adds_counts_and_keeps_the_longest_wait() {
        let a = [operator(0, 10, None), operator(1, 10, Some(300))];
        let b = [operator(1, 6, Some(700)), operator(0, 6, None)];
        let merged = merge([&a[..], &b[..]]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].records_out, 16);
        assert_eq!(merged[0].backpressured_ms_per_s, None);
        assert_eq!(merged[1].records_in, 16);
        assert_eq!(merged[1].state_entries, 5 + 3);
        assert_eq!(merged[1].backpressured_ms_per_s, Some(700));
        assert_eq!(merged[1].inputs, [0]);
    }

    /// A source, an exchange and a sink on one shard, at `at_ms`: `records`
    /// through each, the exchange waited `waited_ms` in all, and the sink's
    /// latencies so far.
    fn snapshot(
        at_ms: i64,
        records: u64,
        waited_ms: u64,
        latencies_us: &[(u64, u64)],
    ) -> MetricsSnapshot {
        use sluice_engine::metrics::{EdgeSnapshot, NodeInfo, ShardSnapshot};
        let node = |id: u64, kind: &'static str, edge: Option<u32>| NodeInfo {
            id,
            kind,
            inputs: id.checked_sub(1).into_iter().collect(),
            edge,
        };
        let mut shard = ShardSnapshot {
            shard: 3,
            node_records_out: vec![records, records],
            edges: vec![EdgeSnapshot {
                backpressured_ns: waited_ms * 1_000_000,
                ..EdgeSnapshot::default()
            }],
            node_state_entries: vec![0, 0, 0],
            ..ShardSnapshot::default()
        };
        for &(value, count) in latencies_us {
            shard.sink_latency_us.record_n(value, count).unwrap();
        }
        MetricsSnapshot {
            nodes: vec![
                node(0, "source", None),
                node(1, "exchange", Some(0)),
                node(2, "sink", None),
            ],
            shards: vec![shard],
            taken_at_ms: at_ms,
            ..MetricsSnapshot::default()
        }
    }

    #[test]
    fn waits_and_latencies_are_of_the_last_interval_and_counts_are_totals() {
        let mut sampler = OperatorSampler::default();
        let first = sampler.sample(snapshot(10_000, 10, 900, &[(1_000, 100)]));
        assert_eq!(
            first.operators[1].backpressured_ms_per_s,
            Some(0),
            "no interval yet"
        );
        assert_eq!(
            first.operators[0].backpressured_ms_per_s, None,
            "not an exchange"
        );
        let p99 = first.sink_latency_p99_us.unwrap();
        assert!((990..=1_010).contains(&p99), "{p99}");
        // A second later: 250 ms more waited, 100 slower batches.
        let second = sampler.sample(snapshot(11_000, 30, 1_150, &[(1_000, 100), (5_000, 100)]));
        assert_eq!(second.operators[1].backpressured_ms_per_s, Some(250));
        assert_eq!(second.operators[2].records_in, 30);
        assert_eq!(second.operators[0].records_out, 30);
        let p99 = second.sink_latency_p99_us.unwrap();
        // (The histogram keeps two significant digits: within 1 %.)
        assert!((4_950..=5_050).contains(&p99), "only the interval's: {p99}");
        // Nothing written since: no latency.
        let third = sampler.sample(snapshot(12_000, 30, 1_150, &[(1_000, 100), (5_000, 100)]));
        assert_eq!(third.sink_latency_p99_us, None);
        assert_eq!(third.operators[1].backpressured_ms_per_s, Some(0));
    }

    #[test]
    fn a_sample_of_no_shards_has_the_plan_and_no_latency() {
        let snapshot = MetricsSnapshot {
            nodes: vec![sluice_engine::metrics::NodeInfo {
                id: 0,
                kind: "source",
                inputs: vec![],
                edge: None,
            }],
            taken_at_ms: 1_000,
            ..MetricsSnapshot::default()
        };
        let mut sampler = OperatorSampler::default();
        let sample = sampler.sample(snapshot);
        assert_eq!(sample.operators.len(), 1);
        assert_eq!(sample.operators[0].kind, "source");
        assert_eq!(sample.sink_latency_p99_us, None);
    }
}
