//! `[source] connector = "kafka"`: the partitions of Kafka topics.
//!
//! ```toml
//! [source]
//! connector = "kafka"
//! bootstrap_servers = "127.0.0.1:9092"
//! topics = ["bids"]            # or topic_pattern = "bids-.*"
//! format = "jsonl"             # csv, text, raw, nexmark (the Nexmark events as JSON)
//! start = "earliest"           # latest, timestamp:<ms>, group-offsets
//! stop = "never"               # latest: read up to the end offsets at start, then end
//! timestamps = "field"         # record: the Kafka record's timestamp is its event time
//! [source.properties]          # passed to librdkafka
//! "fetch.max.bytes" = "52428800"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sluice_engine::connectors::RecordFormat;

use super::super::{FileContext, JobFileError};
use super::bad_record_policy::bad_record_policy;
use super::SourceSpec;
use crate::kafka::{KafkaConnection, KafkaSourceConfig, PayloadFormat, StartFrom, TopicSelection};

/// Partition discovery's default interval.
const DISCOVERY_INTERVAL_DEFAULT_MS: u64 = 30_000;
/// Requests to the brokers fail after this by default.
const REQUEST_TIMEOUT_DEFAULT_MS: u64 = 10_000;

/// The Kafka source's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKafkaSource {
    bootstrap_servers: Option<String>,
    topics: Option<Vec<String>>,
    topic_pattern: Option<String>,
    format: Option<String>,
    start: Option<String>,
    stop: Option<String>,
    group_id: Option<String>,
    /// 0: no discovery.
    discovery_interval_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    /// "field" (the job's event-time field, default) or "record".
    timestamps: Option<String>,
    on_bad_record: Option<String>,
    dead_letter_path: Option<PathBuf>,
    properties: Option<toml::Table>,
}

/// A job file's Kafka source: what to build when the job starts.
#[derive(Debug, Clone)]
pub struct KafkaSourceSpec {
    pub config: KafkaSourceConfig,
    /// The Kafka record's timestamp is the event time (else the job's own
    /// event-time field).
    pub record_timestamps: bool,
    /// `format = "nexmark"`: Nexmark events (as JSON).
    pub nexmark: bool,
}

/// `[sink.properties]` / `[source.properties]`: librdkafka settings, as
/// strings (numbers and booleans written as they read).
pub(crate) fn kafka_properties(
    file: &FileContext,
    section: &str,
    table: Option<toml::Table>,
) -> Result<BTreeMap<String, String>, JobFileError> {
    let mut properties = BTreeMap::new();
    for (key, value) in table.unwrap_or_default() {
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(file.invalid(
                    &format!("{section}.properties.{key}"),
                    format!("is a {}, expected a string", other.type_str()),
                ))
            }
        };
        properties.insert(key, value);
    }
    Ok(properties)
}

/// The connection fields every Kafka section has.
pub(crate) fn kafka_connection(
    file: &FileContext,
    section: &str,
    bootstrap_servers: Option<String>,
    request_timeout_ms: Option<u64>,
    properties: Option<toml::Table>,
) -> Result<KafkaConnection, JobFileError> {
    let servers = bootstrap_servers.ok_or_else(|| {
        file.invalid(
            &format!("{section}.bootstrap_servers"),
            "is missing: the Kafka connector needs the brokers (\"host:port,…\")",
        )
    })?;
    if servers.trim().is_empty() {
        return Err(file.invalid(&format!("{section}.bootstrap_servers"), "is empty"));
    }
    let timeout_ms = request_timeout_ms.unwrap_or(REQUEST_TIMEOUT_DEFAULT_MS);
    if timeout_ms == 0 {
        return Err(file.invalid(
            &format!("{section}.request_timeout_ms"),
            "is 0, expected at least 1",
        ));
    }
    let mut connection = KafkaConnection::new(&servers);
    connection.request_timeout = Duration::from_millis(timeout_ms);
    connection.properties = kafka_properties(file, section, properties)?;
    if let Some(key) = connection.reserved_property() {
        return Err(file.invalid(
            &format!("{section}.properties.{key}"),
            "is set by Sluice (see the connector's fields)",
        ));
    }
    Ok(connection)
}

fn parse_start(value: &str) -> Result<StartFrom, String> {
    match value {
        "earliest" => Ok(StartFrom::Earliest),
        "latest" => Ok(StartFrom::Latest),
        "group-offsets" => Ok(StartFrom::GroupOffsets),
        other => match other.strip_prefix("timestamp:").map(str::parse::<i64>) {
            Some(Ok(ms)) if ms >= 0 => Ok(StartFrom::Timestamp(ms)),
            _ => Err(format!(
                "is \"{other}\", expected \"earliest\", \"latest\", \"group-offsets\" or \"timestamp:<ms since the epoch>\""
            )),
        },
    }
}

impl RawKafkaSource {
    pub(super) fn spec(self, file: &FileContext) -> Result<SourceSpec, JobFileError> {
        let connection = kafka_connection(
            file,
            "source",
            self.bootstrap_servers,
            self.request_timeout_ms,
            self.properties,
        )?;
        let topics = match (self.topics, self.topic_pattern) {
            (Some(topics), None) => {
                if topics.is_empty() {
                    return Err(file.invalid("source.topics", "is empty, expected a topic"));
                }
                if let Some(bad) = topics.iter().find(|t| t.is_empty() || t.contains(':')) {
                    return Err(
                        file.invalid("source.topics", format!("\"{bad}\" is not a topic name"))
                    );
                }
                TopicSelection::Topics(topics)
            }
            (None, Some(pattern)) => TopicSelection::Pattern(
                regex::Regex::new(&pattern)
                    .map_err(|e| file.invalid("source.topic_pattern", e.to_string()))?,
            ),
            (None, None) => {
                return Err(file.invalid(
                    "source.topics",
                    "is missing: name the topics (or give topic_pattern)",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(file.invalid(
                    "source.topic_pattern",
                    "and `topics` exclude each other: give one",
                ))
            }
        };
        let format_name = self.format.unwrap_or_else(|| "jsonl".into());
        let format = match format_name.as_str() {
            "jsonl" | "json" | "nexmark" => PayloadFormat::Text(RecordFormat::JsonLines),
            "csv" => PayloadFormat::Text(RecordFormat::Csv),
            "text" => PayloadFormat::Text(RecordFormat::Text),
            "raw" => PayloadFormat::Raw,
            other => {
                return Err(file.invalid(
                    "source.format",
                    format!(
                    "is \"{other}\", expected \"jsonl\", \"csv\", \"text\", \"raw\" or \"nexmark\""
                ),
                ))
            }
        };
        let start = parse_start(self.start.as_deref().unwrap_or("earliest"))
            .map_err(|m| file.invalid("source.start", m))?;
        let stop_at_latest = match self.stop.as_deref() {
            None | Some("never") => false,
            Some("latest") => true,
            Some(other) => {
                return Err(file.invalid(
                    "source.stop",
                    format!("is \"{other}\", expected \"never\" or \"latest\""),
                ))
            }
        };
        let discovery_ms = self
            .discovery_interval_ms
            .unwrap_or(DISCOVERY_INTERVAL_DEFAULT_MS);
        let record_timestamps = match self.timestamps.as_deref() {
            None | Some("field") => false,
            Some("record") => true,
            Some(other) => {
                return Err(file.invalid(
                    "source.timestamps",
                    format!("is \"{other}\", expected \"field\" or \"record\""),
                ))
            }
        };
        let bad_records =
            bad_record_policy(file, self.on_bad_record.as_deref(), self.dead_letter_path)?;
        Ok(SourceSpec::Kafka(KafkaSourceSpec {
            config: KafkaSourceConfig {
                connection,
                topics,
                format,
                start,
                stop_at_latest,
                discovery_interval: (discovery_ms > 0).then(|| Duration::from_millis(discovery_ms)),
                group_id: self.group_id.unwrap_or_else(|| "sluice".into()),
                bad_records,
            },
            record_timestamps,
            nexmark: format_name == "nexmark",
        }))
    }
}
