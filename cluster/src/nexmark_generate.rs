//! `sluice nexmark generate`: writes the Nexmark events the `nexmark` source
//! produces, so that any other tool can recompute a query's results.
//!
//! JSON lines: `events.jsonl`, one event per line in event-number order, tagged
//! with `"type": "person" | "auction" | "bid"` and the reference field names.
//! CSV: `person.csv`, `auction.csv` and `bid.csv` with a header line, each in
//! event-number order.
//!
//! Kafka ([`generate_to_kafka`]): the JSON events into a topic (created with
//! the partitions asked for if it does not exist), event `n` to partition
//! `n % partitions` with its event time as the record's timestamp, so the
//! Nexmark queries can read them with `[source] connector = "kafka"` and
//! `format = "nexmark"`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sluice_engine::connectors::nexmark::{Event, NexmarkConfig, NexmarkGenerator};

use crate::kafka::{admin, KafkaConnection, KafkaError};

/// Output format of `generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerateFormat {
    Jsonl,
    Csv,
}

/// Why generation failed (names the file).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct GenerateError {
    pub path: PathBuf,
    pub message: String,
}

fn create(dir: &Path, name: &str) -> Result<(PathBuf, BufWriter<File>), GenerateError> {
    let path = dir.join(name);
    let file = File::create(&path).map_err(|e| GenerateError {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok((path, BufWriter::with_capacity(1 << 20, file)))
}

/// Writes events `0..events` of `seed` into `topic`, spread over its
/// `partitions` (see the module docs); waits until the brokers have them
/// all. Returns the bytes written.
pub fn generate_to_kafka(
    events: u64,
    seed: u64,
    connection: &KafkaConnection,
    topic: &str,
    partitions: i32,
) -> Result<u64, KafkaError> {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    admin::create_topic(connection, topic, partitions)?;
    let existing = admin::partition_count(connection, topic)? as i32;
    if existing < partitions {
        return Err(connection.error(
            format!("writing to topic `{topic}`"),
            format!("it has {existing} partitions, fewer than the {partitions} asked for"),
        ));
    }
    let producer: BaseProducer = connection
        .client_config(&[("linger.ms", "20")])
        .create()
        .map_err(|e| connection.error("creating a producer", e))?;
    let mut generator = NexmarkGenerator::new(NexmarkConfig {
        seed,
        events: Some(events),
        ..Default::default()
    });
    let mut value = Vec::new();
    let mut bytes = 0;
    for n in 0..events {
        let event = generator.event(n);
        value.clear();
        serde_json::to_writer(&mut value, &event)
            .map_err(|e| connection.error("encoding an event", e))?;
        bytes += value.len() as u64;
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .payload(&value[..])
            .partition((n % partitions as u64) as i32)
            .timestamp(event.date_time());
        let mut full_since: Option<std::time::Instant> = None;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back)) => {
                    let since = *full_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() > connection.request_timeout {
                        return Err(connection.error(format!("writing event {n} to `{topic}`"), e));
                    }
                    producer.poll(std::time::Duration::from_millis(5));
                    record = back;
                }
            }
        }
        producer.poll(std::time::Duration::ZERO);
    }
    producer
        .flush(connection.request_timeout * 6)
        .map_err(|e| connection.error(format!("flushing the events to `{topic}`"), e))?;
    Ok(bytes)
}

/// Writes events `0..events` of `seed` into `out` (created if missing).
pub fn generate(
    events: u64,
    seed: u64,
    format: GenerateFormat,
    out: &Path,
) -> Result<(), GenerateError> {
    std::fs::create_dir_all(out).map_err(|e| GenerateError {
        path: out.to_owned(),
        message: e.to_string(),
    })?;
    let mut generator = NexmarkGenerator::new(NexmarkConfig {
        seed,
        events: Some(events),
        ..Default::default()
    });
    let fail = |path: &Path, e: &dyn std::fmt::Display| GenerateError {
        path: path.to_owned(),
        message: e.to_string(),
    };
    match format {
        GenerateFormat::Jsonl => {
            let (path, mut w) = create(out, "events.jsonl")?;
            for n in 0..events {
                serde_json::to_writer(&mut w, &generator.event(n)).map_err(|e| fail(&path, &e))?;
                w.write_all(b"\n").map_err(|e| fail(&path, &e))?;
            }
            w.flush().map_err(|e| fail(&path, &e))?;
        }
        GenerateFormat::Csv => {
            let mut writers = Vec::new();
            for name in ["person.csv", "auction.csv", "bid.csv"] {
                let (path, w) = create(out, name)?;
                writers.push((path, csv::Writer::from_writer(w)));
            }
            for n in 0..events {
                let (index, result) = match generator.event(n) {
                    Event::Person(p) => (0, writers[0].1.serialize(p)),
                    Event::Auction(a) => (1, writers[1].1.serialize(a)),
                    Event::Bid(b) => (2, writers[2].1.serialize(b)),
                };
                result.map_err(|e| fail(&writers[index].0, &e))?;
            }
            for (path, w) in &mut writers {
                w.flush().map_err(|e| fail(path, &e))?;
            }
        }
    }
    Ok(())
}
