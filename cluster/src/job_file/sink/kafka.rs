//! `[sink] connector = "kafka"`: records to a Kafka topic.
//!
//! ```toml
//! [sink]
//! connector = "kafka"
//! bootstrap_servers = "127.0.0.1:9092"
//! topic = "results"
//! key_fields = ["auction"]     # the key: a JSON object of these fields (default: none)
//! format = "jsonl"             # or csv
//! delivery = "at-least-once"   # none
//! [sink.properties]            # passed to librdkafka
//! "linger.ms" = "20"
//! ```

use serde::Deserialize;
use sluice_engine::connectors::RecordFormat;

use super::super::source::kafka_connection;
use super::super::{FileContext, JobFileError};
use super::SinkSpec;
use crate::kafka::{Delivery, KafkaSink, PayloadFormat};

/// The Kafka sink's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKafkaSink {
    bootstrap_servers: Option<String>,
    topic: Option<String>,
    key_fields: Option<Vec<String>>,
    format: Option<String>,
    delivery: Option<String>,
    request_timeout_ms: Option<u64>,
    properties: Option<toml::Table>,
}

impl RawKafkaSink {
    pub(super) fn spec(self, file: &FileContext) -> Result<SinkSpec, JobFileError> {
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
            other => {
                return Err(file.invalid(
                    "sink.delivery",
                    format!("is \"{other}\", expected \"none\" or \"at-least-once\""),
                ))
            }
        };
        let key_fields = self.key_fields.unwrap_or_default();
        if let Some(bad) = key_fields.iter().find(|f| f.is_empty()) {
            return Err(file.invalid("sink.key_fields", format!("\"{bad}\" is not a field name")));
        }
        Ok(SinkSpec::Kafka(KafkaSink {
            connection,
            topic,
            key_fields,
            format,
            delivery,
        }))
    }
}
