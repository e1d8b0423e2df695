//! `[sink]`: where records go.
//!
//! A connector is a variant of [`RawSinkConnector`], tagged by the section's
//! `connector` field, with its fields and validation in a file of its own;
//! [`CONNECTORS`] lists the variants by name.

mod blackhole;
mod file;
mod kafka;
mod latency;
mod stdout;

use std::path::PathBuf;

use serde::Deserialize;
use sluice_engine::connectors::RecordFormat;

use super::fields::{connector_of, rest, struct_fields, Connector, ConnectorSection};
use super::{FileContext, JobFileError};
use blackhole::RawBlackholeSink;
use file::RawFileSink;
use kafka::RawKafkaSink;
use latency::RawLatencySink;
use stdout::RawStdoutSink;

/// Where records go.
#[derive(Debug, Clone)]
pub enum SinkSpec {
    Stdout {
        format: RecordFormat,
    },
    File {
        directory: PathBuf,
        format: RecordFormat,
    },
    Blackhole {
        /// At most this many records per second per shard.
        records_per_second: Option<u64>,
    },
    /// Measures each result's latency (`sluice bench nexmark --rate`, and
    /// `connector = "latency"` behind a Nexmark source offering events at
    /// their event time).
    Latency(crate::bench::latency_sink::LatencySink),
    Kafka(Box<crate::kafka::KafkaSink>),
}

/// A sink connector and its own fields, tagged by `connector`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "connector", rename_all = "lowercase")]
pub(crate) enum RawSinkConnector {
    Stdout(RawStdoutSink),
    File(RawFileSink),
    Blackhole(RawBlackholeSink),
    Latency(RawLatencySink),
    Kafka(RawKafkaSink),
}

/// Every sink connector by name, with the fields it takes.
const CONNECTORS: [Connector; 5] = [
    ("stdout", struct_fields::<RawStdoutSink>),
    ("file", struct_fields::<RawFileSink>),
    ("blackhole", struct_fields::<RawBlackholeSink>),
    ("latency", struct_fields::<RawLatencySink>),
    ("kafka", struct_fields::<RawKafkaSink>),
];

/// `sink.path`, resolved against the job file: a directory (or nothing yet).
/// `missing` says why the sink needs it.
fn sink_directory(
    file: &FileContext,
    path: Option<PathBuf>,
    missing: &str,
) -> Result<PathBuf, JobFileError> {
    let path = path.ok_or_else(|| file.invalid("sink.path", format!("is missing: {missing}")))?;
    let directory = file.resolve(&path);
    if directory.is_file() {
        return Err(file.invalid(
            "sink.path",
            format!("`{}` is a file, expected a directory", directory.display()),
        ));
    }
    Ok(directory)
}

/// Reads `[sink]` (as a table), behind `source`.
pub(in crate::job_file) fn parse_sink(
    file: &FileContext,
    mut section: toml::Table,
    source: Option<&super::SourceSpec>,
    checkpoint: Option<&sluice_engine::checkpoint::CheckpointConfig>,
) -> Result<SinkSpec, JobFileError> {
    let ConnectorSection {
        name: connector,
        fields: own_fields,
        ..
    } = connector_of(file, &mut section, "sink", &["connector"], &CONNECTORS)?;
    if connector == "blackhole" && section.keys().any(|k| k == "path" || k == "format") {
        return Err(file.invalid("sink", "the blackhole sink takes no `path` or `format`"));
    }
    if let Some(field) = section.keys().find(|k| !own_fields.contains(&k.as_str())) {
        return Err(file.invalid(
            &format!("sink.{field}"),
            format!("does not apply to connector \"{connector}\""),
        ));
    }
    section.insert("connector".into(), toml::Value::String(connector));
    let sink = match rest::<RawSinkConnector>(file, section, "sink")? {
        RawSinkConnector::Stdout(raw) => raw.spec(file)?,
        RawSinkConnector::File(raw) => raw.spec(file)?,
        RawSinkConnector::Blackhole(raw) => raw.spec(file)?,
        RawSinkConnector::Latency(raw) => raw.spec(file, source)?,
        RawSinkConnector::Kafka(raw) => raw.spec(file, checkpoint)?,
    };
    if let SinkSpec::Stdout {
        format: RecordFormat::Text,
    }
    | SinkSpec::File {
        format: RecordFormat::Text,
        ..
    } = sink
    {
        return Err(file.invalid(
            "sink.format",
            "is \"text\", expected \"jsonl\" or \"csv\" for output",
        ));
    }
    Ok(sink)
}
