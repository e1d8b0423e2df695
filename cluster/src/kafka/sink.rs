//! The Kafka sink: each shard's records to one topic, with no guarantee, at
//! least once, or exactly once (that one in [`super::exactly_once`]).
//!
//! Each shard has a producer of its own. `write` hands records to
//! librdkafka's queue without blocking; when the queue is full (the brokers
//! are slower than the job) it waits for room, polling delivery reports,
//! for at most the request timeout — that wait is the job's backpressure.
//! Delivery reports are served after every batch: a record the brokers
//! refused fails the job, naming the topic and the reason.
//!
//! - `none`: records are sent as they come; the end of the input flushes.
//! - `at-least-once`: at each checkpoint's barrier the producer is flushed —
//!   every record written before it acknowledged by the brokers — before the
//!   shard acknowledges the checkpoint, so a completed checkpoint never
//!   covers a record the brokers might not have. A flush that does not end
//!   within the request timeout fails that checkpoint (the brokers are
//!   unreachable), never hangs the job. After a restore, records between
//!   the checkpoint and the failure are written again: at least once. The
//!   producer is idempotent, so the brokers' own retries add no duplicates.
//!
//! - `exactly-once`: records of a checkpoint interval are staged with the
//!   checkpoint and sent in one Kafka transaction once it completes (see
//!   [`super::exactly_once`]).
//!
//! A record's key is the JSON object of its `key_fields` (Flink's JSON key
//! format), so records of one key go to one partition in order; without key
//! fields records have no key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError as RdError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use serde::Serialize;
use sluice_engine::connectors::{Sink, SinkContext, SinkWriter};
use sluice_engine::record::NO_TIMESTAMP;
use sluice_engine::Rec;

use super::exactly_once::ExactlyOnce;
use super::{KafkaConnection, PayloadFormat};

/// What the sink guarantees (`delivery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    None,
    AtLeastOnce,
    ExactlyOnce(ExactlyOnce),
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct KafkaSink {
    pub connection: KafkaConnection,
    pub topic: String,
    /// The record's fields that make its key (none: no key).
    pub key_fields: Vec<String>,
    pub format: PayloadFormat,
    pub delivery: Delivery,
}

/// Counts what the brokers refused; keeps the first reason.
#[derive(Default)]
pub(super) struct DeliveryReports {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryReports {}

impl ProducerContext for DeliveryReports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first_error.lock().expect("delivery report lock");
            first.get_or_insert_with(|| error.to_string());
        }
    }
}

impl DeliveryReports {
    /// How many records the brokers refused so far, and the first reason.
    pub(super) fn failures(&self) -> Option<(u64, String)> {
        let failed = self.failed.load(Ordering::Relaxed);
        (failed > 0).then(|| {
            let first = self.first_error.lock().expect("delivery report lock");
            (failed, first.clone().unwrap_or_else(|| "unknown".into()))
        })
    }
}

impl KafkaSink {
    /// An error of shard `shard`'s part of this sink.
    pub(super) fn error(&self, shard: u32, what: &str, reason: impl std::fmt::Display) -> String {
        format!(
            "kafka sink of shard {shard} to topic `{}` at {}: {what}: {reason}",
            self.topic, self.connection.bootstrap_servers
        )
    }
}

/// Turns records into Kafka keys and values, reusing its buffers.
pub(super) struct RecordEncoder {
    format: PayloadFormat,
    key_fields: Vec<String>,
    pub(super) value: Vec<u8>,
    pub(super) key: Vec<u8>,
}

impl RecordEncoder {
    pub(super) fn new(sink: &KafkaSink) -> Self {
        RecordEncoder {
            format: sink.format,
            key_fields: sink.key_fields.clone(),
            value: Vec::new(),
            key: Vec::new(),
        }
    }

    /// Encodes `value` into `self.value`, and its key into `self.key`;
    /// says whether the record has a key.
    pub(super) fn encode<T: Serialize>(&mut self, value: &T) -> Result<bool, String> {
        self.format
            .write(value, &mut self.value)
            .map_err(|e| format!("encoding a record: {e}"))?;
        if self.key_fields.is_empty() {
            return Ok(false);
        }
        self.key.clear();
        let json = serde_json::to_value(value).map_err(|e| format!("encoding a key: {e}"))?;
        let mut key = serde_json::Map::new();
        for field in &self.key_fields {
            let Some(v) = json.get(field) else {
                return Err(format!("encoding a key: the record has no field `{field}`"));
            };
            key.insert(field.clone(), v.clone());
        }
        serde_json::to_writer(&mut self.key, &key).map_err(|e| format!("encoding a key: {e}"))?;
        Ok(true)
    }
}

/// Hands `message` to `producer`; while its queue is full (the brokers are
/// slower than the job) serves delivery reports and waits, for at most
/// `bound`.
pub(super) fn send_waiting<C: ProducerContext>(
    producer: &BaseProducer<C>,
    mut message: BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>,
    bound: Duration,
) -> Result<(), String> {
    let mut waiting_since: Option<Instant> = None;
    loop {
        match producer.send(message) {
            Ok(()) => return Ok(()),
            Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                let since = *waiting_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= bound {
                    return Err(format!(
                        "sending: the producer's queue stayed full for {} ms (are the brokers reachable?)",
                        since.elapsed().as_millis()
                    ));
                }
                producer.poll(Duration::from_millis(5));
                message = back;
            }
            Err((e, _)) => return Err(format!("sending: {e}")),
        }
    }
}

struct KafkaSinkWriter {
    producer: BaseProducer<DeliveryReports>,
    sink: KafkaSink,
    shard: u32,
    encoder: RecordEncoder,
}

impl KafkaSinkWriter {
    fn error(&self, what: &str, reason: impl std::fmt::Display) -> String {
        self.sink.error(self.shard, what, reason)
    }

    /// Fails if the brokers refused a record.
    fn check_reports(&self) -> Result<(), String> {
        match self.producer.context().failures() {
            None => Ok(()),
            Some((failed, first)) => {
                Err(self.error(&format!("{failed} records not delivered"), first))
            }
        }
    }

    /// Waits until every record handed over is acknowledged (or refused);
    /// `when` says why (for the error).
    fn flush(&self, when: &str) -> Result<(), String> {
        let timeout = self.sink.connection.request_timeout;
        self.producer.flush(timeout).map_err(|e| {
            self.error(
                &format!(
                    "{when}: flushing {} records within {} ms",
                    self.producer.in_flight_count(),
                    timeout.as_millis()
                ),
                e,
            )
        })?;
        self.check_reports()
    }
}

/// Longest wait for room in a full producer queue before the sink fails.
fn queue_wait_bound(connection: &KafkaConnection) -> Duration {
    connection.request_timeout
}

impl<T: Serialize + 'static> SinkWriter<T> for KafkaSinkWriter {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        for record in batch {
            let keyed = self
                .encoder
                .encode(&record.value)
                .map_err(|e| self.sink.error(self.shard, "writing", e))?;
            let mut message = BaseRecord::to(&self.sink.topic).payload(&self.encoder.value[..]);
            if keyed {
                message = message.key(&self.encoder.key[..]);
            }
            if record.ts != NO_TIMESTAMP {
                message = message.timestamp(record.ts);
            }
            send_waiting(
                &self.producer,
                message,
                queue_wait_bound(&self.sink.connection),
            )
            .map_err(|e| self.sink.error(self.shard, "writing", e))?;
        }
        self.producer.poll(Duration::ZERO);
        self.check_reports()
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<(), String> {
        match self.sink.delivery {
            Delivery::None => Ok(()),
            Delivery::AtLeastOnce => self.flush(&format!("checkpoint {checkpoint} failed")),
            Delivery::ExactlyOnce(_) => unreachable!("exactly once has a writer of its own"),
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        self.flush("at the end of the input")
    }
}

impl<T: Serialize + 'static> Sink<T> for KafkaSink {
    fn open(&self, shard: u32, shards: u32) -> Result<Box<dyn SinkWriter<T>>, String> {
        let message_timeout = (self.connection.request_timeout * 3)
            .as_millis()
            .to_string();
        let idempotent = match self.delivery {
            Delivery::None => "false",
            Delivery::AtLeastOnce => "true",
            Delivery::ExactlyOnce(_) => {
                return super::exactly_once::open_writer(self, shard, shards, None)
            }
        };
        let config = self.connection.client_config(&[
            ("enable.idempotence", idempotent),
            ("message.timeout.ms", &message_timeout),
            ("linger.ms", "5"),
        ]);
        // Off the shard's core: librdkafka's threads inherit its CPU set.
        let producer: BaseProducer<DeliveryReports> =
            super::unpinned::unpinned(|| config.create_with_context(DeliveryReports::default()))
                .map_err(|e| {
                    format!(
                        "kafka sink of shard {shard} to topic `{}` at {}: creating a producer: {e}",
                        self.topic, self.connection.bootstrap_servers
                    )
                })?;
        Ok(Box::new(KafkaSinkWriter {
            producer,
            sink: self.clone(),
            shard,
            encoder: RecordEncoder::new(self),
        }))
    }

    fn open_in(&self, context: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, String> {
        match self.delivery {
            Delivery::ExactlyOnce(_) => {
                super::exactly_once::open_writer(self, context.shard, context.shards, Some(context))
            }
            _ => self.open(context.shard, context.shards),
        }
    }
}
