//! `[sink] connector = "kafka"`: records to a Kafka topic.
//!
//! ```toml
//! [sink]
//! connector = "kafka"
//! bootstrap_servers = "127.0.0.1:9092"
//! topic = "results"
//! key_fields = ["auction"]     # the key: a JSON object of these fields (default: none)
//! format = "jsonl"             # or csv
//! delivery = "at-least-once"   # none, or exactly-once (needs [checkpoint])
//! transactional_id_prefix = "orders-job"   # exactly-once only; default from
//!                                          # the checkpoint storage and topic
//! [sink.properties]            # passed to librdkafka
//! "linger.ms" = "20"
//! ```
//!
//! Exactly once stages each checkpoint's records under the checkpoint
//! storage (`<storage>/kafka-sink/<prefix>/`) until their transaction is
//! committed: see [`crate::kafka::exactly_once`].

use serde::Deserialize;
use sluice_engine::checkpoint::CheckpointConfig;
use sluice_engine::connectors::RecordFormat;
use sluice_state::StableKey;

use super::super::source::kafka_connection;
use super::super::{FileContext, JobFileError};
use super::SinkSpec;
use crate::kafka::{Delivery, ExactlyOnce, KafkaSink, PayloadFormat};

/// The Kafka sink's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKafkaSink {
    bootstrap_servers: Option<String>,
    topic: Option<String>,
    key_fields: Option<Vec<String>>,
    format: Option<String>,
    delivery: Option<String>,
    transactional_id_prefix: Option<String>,
    request_timeout_ms: Option<u64>,
    properties: Option<toml::Table>,
}

impl RawKafkaSink {
    /// The sink of a job that checkpoints as `checkpoint` says (none: no
    /// checkpoints).
    pub(super) fn spec(
        mut self,
        file: &FileContext,
        checkpoint: Option<&CheckpointConfig>,
    ) -> Result<SinkSpec, JobFileError> {
        let connection = kafka_connection(
            file,
            "sink",
            self.bootstrap_servers,
            self.request_timeout_ms,
            self.properties,
        )?;
        let topic = self.topic.ok_or_else(|| {
            file.invalid(
                "sink.topic",
                "is missing: the Kafka sink writes to one topic",
            )
        })?;
        if topic.is_empty() {
            return Err(file.invalid("sink.topic", "is empty"));
        }
        let format = match self.format.as_deref().unwrap_or("jsonl") {
            "jsonl" | "json" => PayloadFormat::Text(RecordFormat::JsonLines),
            "csv" => PayloadFormat::Text(RecordFormat::Csv),
            other => {
                return Err(file.invalid(
                    "sink.format",
                    format!("is \"{other}\", expected \"jsonl\" or \"csv\""),
                ))
            }
        };
        let delivery = match self.delivery.as_deref().unwrap_or("at-least-once") {
            "none" => Delivery::None,
            "at-least-once" => Delivery::AtLeastOnce,
            "exactly-once" => {
                let Some(checkpoint) = checkpoint else {
                    return Err(file.invalid(
                        "sink.delivery",
                        "is \"exactly-once\", which commits records when checkpoints complete: add a [checkpoint] section",
                    ));
                };
                Delivery::ExactlyOnce(exactly_once(
                    file,
                    self.transactional_id_prefix.take(),
                    checkpoint,
                    &topic,
                )?)
            }
            other => {
                return Err(file.invalid(
                    "sink.delivery",
                    format!(
                        "is \"{other}\", expected \"none\", \"at-least-once\" or \"exactly-once\""
                    ),
                ))
            }
        };
        if self.transactional_id_prefix.is_some() {
            return Err(file.invalid(
                "sink.transactional_id_prefix",
                "applies to delivery = \"exactly-once\" only",
            ));
        }
        let key_fields = self.key_fields.unwrap_or_default();
        if let Some(bad) = key_fields.iter().find(|f| f.is_empty()) {
            return Err(file.invalid("sink.key_fields", format!("\"{bad}\" is not a field name")));
        }
        Ok(SinkSpec::Kafka(Box::new(KafkaSink {
            connection,
            topic,
            key_fields,
            format,
            delivery,
        })))
    }
}

/// Where an exactly-once sink's transactions are named and its records
/// staged: the prefix given, or one made from the checkpoint storage and the
/// topic (the same in every run of the job, another for another job).
fn exactly_once(
    file: &FileContext,
    prefix: Option<String>,
    checkpoint: &CheckpointConfig,
    topic: &str,
) -> Result<ExactlyOnce, JobFileError> {
    let prefix = match prefix {
        Some(prefix) => prefix,
        None => format!(
            "sluice-{:016x}",
            format!("{}|{topic}", checkpoint.storage)
                .as_str()
                .stable_hash()
        ),
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if prefix.is_empty() || !prefix.chars().all(allowed) {
        return Err(file.invalid(
            "sink.transactional_id_prefix",
            format!("is \"{prefix}\", expected letters, digits, `-`, `_` and `.`"),
        ));
    }
    Ok(ExactlyOnce {
        staging: checkpoint.storage.join(&format!("kafka-sink/{prefix}")),
        transactional_id_prefix: prefix,
    })
}
