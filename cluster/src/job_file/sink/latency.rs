//! `[sink] connector = "latency"`: measures each result's latency against the
//! wall-clock schedule of a Nexmark source that offers events at their event
//! time (`offer_at_event_time`), as `sluice bench nexmark --rate` does in
//! process; each shard writes its histogram to `latency-<shard>.json` under
//! `path` when its input ends (see `bench::latency_sink`). For benchmarks
//! on clusters, where shards run in other processes.

use std::path::PathBuf;

use serde::Deserialize;

use super::super::{FileContext, JobFileError, SourceSpec};
use super::{sink_directory, SinkSpec};
use crate::bench::latency_sink::LatencySink;

/// The latency sink's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLatencySink {
    path: Option<PathBuf>,
    /// A result at time `t` depends on the event offered at `t` plus this
    /// (1 for results fired by the watermark: windows, timers).
    dependency_offset_ms: Option<i64>,
    /// Results depending on the schedule's first `warmup_ms` stay out of the
    /// percentiles (default 1000).
    warmup_ms: Option<u64>,
}

/// The most a job may ask to wait for warm-up.
const WARMUP_MAX_MS: u64 = 3_600_000;

impl RawLatencySink {
    pub(super) fn spec(
        self,
        file: &FileContext,
        source: Option<&SourceSpec>,
    ) -> Result<SinkSpec, JobFileError> {
        let directory = sink_directory(
            file,
            self.path,
            "the latency sink needs a directory for its reports",
        )?;
        let nexmark = match source {
            Some(SourceSpec::Nexmark(n)) if n.release_at_event_time => n,
            _ => {
                return Err(file.invalid(
                    "sink.connector",
                    "\"latency\" measures against a schedule: it needs a nexmark source \
                     with offer_at_event_time = true",
                ))
            }
        };
        let offset = self.dependency_offset_ms.unwrap_or(0);
        if !(0..=1_000).contains(&offset) {
            return Err(file.invalid(
                "sink.dependency_offset_ms",
                format!("is {offset}, expected 0..=1000"),
            ));
        }
        let warmup_ms = self.warmup_ms.unwrap_or(1_000);
        if warmup_ms > WARMUP_MAX_MS {
            return Err(file.invalid(
                "sink.warmup_ms",
                format!("is {warmup_ms}, expected at most {WARMUP_MAX_MS}"),
            ));
        }
        let last_event_ms = match nexmark.events {
            Some(events) => nexmark.timestamp_for_event(events.saturating_sub(1)),
            None => i64::MAX,
        };
        let sink = LatencySink::new(
            offset,
            nexmark.base_time_ms.saturating_add(warmup_ms as i64),
            last_event_ms,
        )
        .reporting_to(directory);
        Ok(SinkSpec::Latency(sink))
    }
}
