//! `[source] connector = "nexmark"`: the Nexmark benchmark's events.

use serde::Deserialize;
use sluice_engine::connectors::nexmark::NexmarkConfig;

use super::super::{FileContext, JobFileError};
use super::SourceSpec;

/// The Nexmark source's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNexmarkSource {
    seed: Option<u64>,
    events: Option<u64>,
    partitions: Option<u32>,
    events_per_second: Option<u64>,
    rate: Option<u64>,
    /// Event time starts here (unix ms).
    base_time_ms: Option<i64>,
    /// Offer each event when the wall clock reaches its event time (1 ms
    /// ticks), in order (no delayed events): an open-loop schedule of
    /// `events_per_second` from `base_time_ms`, which every worker must share
    /// (for latency measurements, `[sink] connector = "latency"`).
    offer_at_event_time: Option<bool>,
}

impl RawNexmarkSource {
    pub(super) fn spec(self, file: &FileContext, shards: u32) -> Result<SourceSpec, JobFileError> {
        let d = NexmarkConfig::default();
        let offer_at_event_time = self.offer_at_event_time.unwrap_or(false);
        if offer_at_event_time && self.base_time_ms.is_none() {
            return Err(file.invalid(
                "source.base_time_ms",
                "is missing: offer_at_event_time needs the schedule's start (unix ms), \
                 the same on every worker",
            ));
        }
        if offer_at_event_time && self.rate.is_some() {
            return Err(file.invalid(
                "source.rate",
                "does not apply with offer_at_event_time (events_per_second sets the schedule)",
            ));
        }
        let n = NexmarkConfig {
            seed: self.seed.unwrap_or(d.seed),
            events: self.events.or(d.events),
            partitions: self.partitions.unwrap_or(shards.max(d.partitions)),
            first_event_rate: self.events_per_second.unwrap_or(d.first_event_rate),
            rate: self.rate,
            base_time_ms: self.base_time_ms.unwrap_or(d.base_time_ms),
            release_at_event_time: offer_at_event_time,
            prob_delayed_event: match offer_at_event_time {
                true => 0.0,
                false => d.prob_delayed_event,
            },
            ..d
        };
        if let Err(message) = n.validate() {
            return Err(file.invalid("source", message));
        }
        Ok(SourceSpec::Nexmark(n))
    }
}
