//! Kafka consumer lag: per topic and partition a Kafka source reads, the
//! records the partition holds past the reader's position (its high
//! watermark minus the next offset to read), for `/metrics`.
//!
//! Each partition reader updates its entry at most every
//! [`LAG_UPDATE_EVERY`] from librdkafka's cached high watermark (the last
//! fetch response's: no request to the broker) and removes it when dropped.
//! The readers run on their shards; the table is read when `/metrics` is
//! scraped, under a lock held only to copy or set one entry.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How often a reader looks at its lag, at most.
pub(crate) const LAG_UPDATE_EVERY: Duration = Duration::from_millis(500);

/// Topic and partition → records behind the high watermark.
static LAGS: Mutex<BTreeMap<(String, i32), i64>> = Mutex::new(BTreeMap::new());

fn lags() -> std::sync::MutexGuard<'static, BTreeMap<(String, i32), i64>> {
    LAGS.lock().unwrap_or_else(|p| p.into_inner())
}

/// One partition reader's entry.
pub(crate) struct PartitionLag {
    topic: String,
    /// The topic as librdkafka takes it.
    topic_c: Option<CString>,
    partition: i32,
    last_update: Option<Instant>,
}

impl PartitionLag {
    pub fn new(topic: &str, partition: i32) -> Self {
        PartitionLag {
            topic: topic.to_owned(),
            topic_c: CString::new(topic).ok(),
            partition,
            last_update: None,
        }
    }

    /// Updates the entry from `consumer`'s cached high watermark, if it is
    /// time and librdkafka knows one.
    pub fn update(&mut self, consumer: &BaseConsumer, next_offset: i64) {
        if self
            .last_update
            .is_some_and(|at| at.elapsed() < LAG_UPDATE_EVERY)
        {
            return;
        }
        self.last_update = Some(Instant::now());
        let Some(topic) = &self.topic_c else { return };
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client pointer is alive while `consumer` is; the topic
        // is a NUL-terminated string; low and high are written by the call
        // (librdkafka's cached values: no request is made).
        let error = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                consumer.client().native_ptr(),
                topic.as_ptr(),
                self.partition,
                &mut low,
                &mut high,
            )
        };
        if error != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || high < 0 {
            return;
        }
        let lag = (high - next_offset).max(0);
        lags().insert((self.topic.clone(), self.partition), lag);
    }
}

impl Drop for PartitionLag {
    fn drop(&mut self) {
        lags().remove(&(self.topic.clone(), self.partition));
    }
}

/// The collector of every reader's lag in this process.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsumerLagFigures;

impl Collector for ConsumerLagFigures {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let entries: Vec<((String, i32), i64)> =
            lags().iter().map(|(k, v)| (k.clone(), *v)).collect();
        if entries.is_empty() {
            return Ok(());
        }
        let mut metric = encoder.encode_descriptor(
            "sluice_kafka_consumer_lag_records",
            "Records a Kafka partition holds past the source's position (high watermark minus next offset).",
            None,
            MetricType::Gauge,
        )?;
        for ((topic, partition), lag) in entries {
            let labels = [("topic", topic), ("partition", partition.to_string())];
            ConstGauge::new(lag).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
