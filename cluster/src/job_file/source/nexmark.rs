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
}

impl RawNexmarkSource {
    pub(super) fn spec(self, file: &FileContext, shards: u32) -> Result<SourceSpec, JobFileError> {
        let d = NexmarkConfig::default();
        let n = NexmarkConfig {
            seed: self.seed.unwrap_or(d.seed),
            events: self.events.or(d.events),
            partitions: self.partitions.unwrap_or(shards.max(d.partitions)),
            first_event_rate: self.events_per_second.unwrap_or(d.first_event_rate),
            rate: self.rate,
            ..d
        };
        if let Err(message) = n.validate() {
            return Err(file.invalid("source", message));
        }
        Ok(SourceSpec::Nexmark(n))
    }
}
