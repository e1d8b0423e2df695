//! `[source] connector = "generator"`: seeded keyed events with delays.

use serde::Deserialize;
use sluice_engine::connectors::GeneratorSource;

use super::super::{FileContext, JobFileError};
use super::SourceSpec;

/// The generator's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGeneratorSource {
    seed: Option<u64>,
    events: Option<u64>,
    keys: Option<u64>,
    partitions: Option<u32>,
    start_ts_ms: Option<i64>,
    events_per_second: Option<u64>,
    delayed_percent: Option<u8>,
    max_delay_ms: Option<i64>,
    rate: Option<u64>,
}

impl RawGeneratorSource {
    pub(super) fn spec(self, file: &FileContext, shards: u32) -> Result<SourceSpec, JobFileError> {
        let d = GeneratorSource::default();
        let g = GeneratorSource {
            seed: self.seed.unwrap_or(d.seed),
            events: self.events.or(d.events),
            keys: self.keys.unwrap_or(d.keys),
            partitions: self.partitions.unwrap_or(shards.max(d.partitions)),
            start_ts_ms: self.start_ts_ms.unwrap_or(d.start_ts_ms),
            events_per_second: self.events_per_second.unwrap_or(d.events_per_second),
            delayed_percent: self.delayed_percent.unwrap_or(d.delayed_percent),
            max_delay_ms: self.max_delay_ms.unwrap_or(d.max_delay_ms),
            rate: self.rate,
        };
        if let Err(message) = g.validate() {
            // The generator's messages begin with the field they are about.
            let field = message.split_whitespace().next().unwrap_or("").to_owned();
            return Err(file.invalid(
                &format!("source.{field}"),
                message[field.len()..].trim().to_owned(),
            ));
        }
        Ok(SourceSpec::Generator(g))
    }
}
