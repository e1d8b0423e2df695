//! `[source]`: where records come from, and their event time.
//!
//! A connector is a variant of [`RawSourceConnector`], tagged by the
//! section's `connector` field, with its fields and their validation in a
//! file of its own; [`CONNECTORS`] lists the variants by name. Fields every
//! connector shares (event time, batch size) are read here. A field of
//! another connector is named as such ("does not apply to connector …").

mod bad_record_policy;
mod file;
mod generator;
mod kafka;
mod nexmark;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sluice_engine::config::SOURCE_BATCH_RECORDS_MAX;
use sluice_engine::connectors::nexmark::NexmarkConfig;
use sluice_engine::connectors::{GeneratorSource, RecordFormat};
use sluice_engine::JobConfig;

use super::fields::{connector_of, rest, struct_fields, take, Connector, ConnectorSection};
use super::{FileContext, JobFileError};
use file::RawFileSource;
use generator::RawGeneratorSource;
pub(crate) use kafka::kafka_connection;
pub use kafka::KafkaSourceSpec;
use kafka::RawKafkaSource;
use nexmark::RawNexmarkSource;

/// Where records come from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// Nexmark events (persons, auctions, bids).
    Nexmark(NexmarkConfig),
    File {
        paths: Vec<PathBuf>,
        format: RecordFormat,
        /// `format = "nexmark"`: the lines are Nexmark events (JSON, as
        /// `sluice nexmark generate` writes them); `format` is JSON lines.
        nexmark: bool,
        split_bytes: u64,
        /// What a line that does not parse does.
        bad_records: sluice_engine::connectors::BadRecordPolicy,
    },
    Generator(GeneratorSource),
    Kafka(KafkaSourceSpec),
}

/// Time settings of the source.
#[derive(Debug, Clone)]
pub struct EventTimeSpec {
    /// Processing time: records stamped with the clock when read.
    pub processing_time: bool,
    pub out_of_orderness_ms: i64,
    pub idle_timeout: Option<Duration>,
}

impl EventTimeSpec {
    /// The watermark strategy the job file asks for: processing time, or event
    /// time trailing by `out_of_orderness_ms`; idle partitions after
    /// `idle_timeout` if given.
    pub fn strategy<T>(&self) -> sluice_engine::WatermarkStrategy<T> {
        let strategy = if self.processing_time {
            sluice_engine::WatermarkStrategy::processing_time()
        } else {
            sluice_engine::WatermarkStrategy::bounded_out_of_orderness(self.out_of_orderness_ms)
        };
        match self.idle_timeout {
            Some(t) => strategy.with_idleness(t),
            None => strategy,
        }
    }
}

/// A source connector and its own fields, tagged by `connector`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "connector", rename_all = "lowercase")]
pub(crate) enum RawSourceConnector {
    File(RawFileSource),
    Generator(RawGeneratorSource),
    Kafka(RawKafkaSource),
    Nexmark(RawNexmarkSource),
}

/// Every source connector by name, with the fields it takes.
const CONNECTORS: [Connector; 4] = [
    ("file", struct_fields::<RawFileSource>),
    ("generator", struct_fields::<RawGeneratorSource>),
    ("kafka", struct_fields::<RawKafkaSource>),
    ("nexmark", struct_fields::<RawNexmarkSource>),
];

/// Fields of every connector.
const SHARED_FIELDS: [&str; 5] = [
    "connector",
    "time",
    "out_of_orderness_ms",
    "idle_timeout_ms",
    "batch_records",
];

/// Reads `[source]` (as a table); sets the source's batch size in `config`.
pub(in crate::job_file) fn parse_source(
    file: &FileContext,
    mut section: toml::Table,
    config: &mut JobConfig,
) -> Result<(SourceSpec, EventTimeSpec), JobFileError> {
    let ConnectorSection {
        name: connector,
        fields: own_fields,
        known,
    } = connector_of(file, &mut section, "source", &SHARED_FIELDS, &CONNECTORS)?;

    let time: Option<String> = take(file, &mut section, "source", "time")?;
    let out_of_orderness_ms: Option<i64> =
        take(file, &mut section, "source", "out_of_orderness_ms")?;
    let idle_timeout_ms: Option<u64> = take(file, &mut section, "source", "idle_timeout_ms")?;
    let batch_records: Option<usize> = take(file, &mut section, "source", "batch_records")?;
    if let Some(n) = batch_records {
        if n == 0 || n > SOURCE_BATCH_RECORDS_MAX {
            return Err(file.invalid(
                "source.batch_records",
                format!("is {n}, expected 1..={}", SOURCE_BATCH_RECORDS_MAX),
            ));
        }
        config.source_batch_records = n;
    }
    for field in &known[SHARED_FIELDS.len()..] {
        if section.contains_key(*field) && !own_fields.contains(field) {
            return Err(file.invalid(
                &format!("source.{field}"),
                format!(
                    "does not apply to connector \"{connector}\" (its fields: {})",
                    own_fields.join(", ")
                ),
            ));
        }
    }
    section.insert("connector".into(), toml::Value::String(connector));
    let source = match rest::<RawSourceConnector>(file, section, "source")? {
        RawSourceConnector::File(raw) => raw.spec(file)?,
        RawSourceConnector::Generator(raw) => raw.spec(file, config.shards)?,
        RawSourceConnector::Kafka(raw) => raw.spec(file)?,
        RawSourceConnector::Nexmark(raw) => raw.spec(file, config.shards)?,
    };

    let default_bound = match &source {
        SourceSpec::Generator(g) => g.max_delay_ms,
        SourceSpec::Nexmark(n) if n.release_at_event_time => 0,
        SourceSpec::Nexmark(n) => n.occasional_delay_ms,
        // Events that `sluice nexmark generate` wrote: as late as its
        // generator's delays.
        SourceSpec::Kafka(k) if k.nexmark => NexmarkConfig::default().occasional_delay_ms,
        SourceSpec::File { nexmark: true, .. } => NexmarkConfig::default().occasional_delay_ms,
        SourceSpec::File { .. } | SourceSpec::Kafka(_) => 0,
    };
    let out_of_orderness_ms = out_of_orderness_ms.unwrap_or(default_bound);
    if out_of_orderness_ms < 0 {
        return Err(file.invalid(
            "source.out_of_orderness_ms",
            format!("is {out_of_orderness_ms}, expected at least 0"),
        ));
    }
    let processing_time = match time.as_deref() {
        None | Some("event") => false,
        Some("processing") => true,
        Some(other) => {
            return Err(file.invalid(
                "source.time",
                format!("is \"{other}\", expected \"event\" or \"processing\""),
            ))
        }
    };
    let event_time = EventTimeSpec {
        processing_time,
        out_of_orderness_ms,
        idle_timeout: idle_timeout_ms.map(Duration::from_millis),
    };
    Ok((source, event_time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_connector_is_a_tag_the_enum_accepts() {
        // Every listed name is a tag the enum accepts, with no fields given.
        for (name, _) in CONNECTORS {
            let mut table = toml::Table::new();
            table.insert("connector".into(), toml::Value::String(name.into()));
            let parsed: Result<RawSourceConnector, _> = toml::Value::Table(table).try_into();
            assert!(parsed.is_ok(), "{name}: {parsed:?}");
        }
        assert_eq!(
            struct_fields::<RawFileSource>(),
            [
                "paths",
                "format",
                "split_bytes",
                "on_bad_record",
                "dead_letter_path"
            ]
        );
    }
}
