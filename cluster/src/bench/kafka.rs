//! `sluice bench kafka`: the Kafka connectors against librdkafka alone, on
//! the same broker, alternating, so that the ratio says what the connector
//! costs over the client library it is built on.
//!
//! Each round writes `events` Nexmark events (JSON, ~280 bytes each) into a
//! fresh topic of `partitions` partitions with a bare librdkafka producer
//! (the producer's ceiling), reads them back on one thread with bare
//! consumers, one per partition as the source has, polled in turn, parsing
//! each value as an event (the consumer's ceiling: the same work the source
//! does; timed from before the consumers connect, as a job's readers are),
//! then runs on one shard:
//! Nexmark q0 reading that topic up to its end into a blackhole (the
//! source), and q0 over the built-in generator writing its bids to another
//! topic at least once, then to a third exactly once with a checkpoint every
//! second (the sink; its time includes the last transaction's commit). Odd
//! rounds run Sluice first. Medians go into the table.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice_engine::connectors::nexmark::Event;

use crate::kafka::KafkaConnection;

/// What to measure.
#[derive(Debug, Clone)]
pub struct KafkaBenchSpec {
    pub bootstrap: String,
    pub events: u64,
    pub partitions: i32,
    pub rounds: u32,
    pub seed: u64,
}

/// One measured run: records and bytes per second.
#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    records_per_s: f64,
    mb_per_s: f64,
}

fn rate(records: u64, bytes: u64, elapsed: Duration) -> Rate {
    let s = elapsed.as_secs_f64().max(1e-9);
    Rate {
        records_per_s: records as f64 / s,
        mb_per_s: bytes as f64 / s / 1e6,
    }
}

/// Reads `topic` to the end offsets it has now, one consumer per
/// partition polled in turn, parsing every value as a Nexmark event.
/// Returns (records, bytes, time from the first poll: the source's
/// consumers are set up before its job's clock starts too).
fn bare_consume(
    connection: &KafkaConnection,
    topic: &str,
    partitions: i32,
) -> Result<(u64, u64, Duration), String> {
    // Timed from before the consumers connect, as a job's time includes
    // its readers connecting: an assigned consumer starts fetching at once.
    let started = Instant::now();
    let mut consumers = Vec::new();
    for p in 0..partitions {
        let consumer: BaseConsumer = connection
            .client_config(&[
                ("group.id", "sluice-bench"),
                ("enable.auto.commit", "false"),
                ("fetch.wait.max.ms", "100"),
            ])
            .create()
            .map_err(|e| e.to_string())?;
        let (_, high) = consumer
            .fetch_watermarks(topic, p, connection.request_timeout)
            .map_err(|e| e.to_string())?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
        consumer.assign(&list).map_err(|e| e.to_string())?;
        consumers.push((consumer, 0i64, high));
    }
    let (mut records, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(600);
    while consumers.iter().any(|(_, next, end)| next < end) {
        if Instant::now() > deadline {
            return Err(format!("reading {topic} took over 10 minutes"));
        }
        let mut polled = false;
        for (consumer, next, end) in consumers.iter_mut().filter(|(_, n, e)| n < e) {
            for _ in 0..1024 {
                match consumer.poll(Duration::ZERO) {
                    Some(Ok(m)) => {
                        let value = m.payload().unwrap_or_default();
                        let event: Event = serde_json::from_slice(value)
                            .map_err(|e| format!("offset {}: {e}", m.offset()))?;
                        std::hint::black_box(event);
                        records += 1;
                        bytes += value.len() as u64;
                        *next = m.offset() + 1;
                        polled = true;
                        if *next >= *end {
                            break;
                        }
                    }
                    Some(Err(RdError::PartitionEOF(_))) | None => break,
                    Some(Err(e)) => return Err(format!("reading {topic}: {e}")),
                }
            }
        }
        if !polled {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    Ok((records, bytes, started.elapsed()))
}

/// What a job run measured.
struct JobRun {
    records_in: u64,
    records_out: u64,
    /// The shards' running time, as the job reports it.
    elapsed: Duration,
    /// Until the job had ended: for a sink, until the last records were
    /// committed (an exactly-once sink commits after the shards end).
    until_committed: Duration,
}

/// Runs a job file's text (written into `dir`).
fn run_job(dir: &Path, name: &str, text: &str) -> Result<JobRun, String> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let (_, env) = crate::run::prepare(&path).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let report = env.execute().map_err(|e| e.to_string())?;
    Ok(JobRun {
        records_in: report.totals.records_in,
        records_out: report.totals.records_out,
        elapsed: report.elapsed,
        until_committed: started.elapsed(),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the rounds; returns the table.
pub fn run(spec: &KafkaBenchSpec) -> Result<String, String> {
    let connection = KafkaConnection::new(&spec.bootstrap);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let id = std::process::id();
    let mut measured: [Vec<Rate>; 5] = Default::default();
    for round in 0..spec.rounds {
        let topic = format!("sluice-bench-{id}-{round}");
        let out = format!("sluice-bench-{id}-{round}-out");
        let exactly_out = format!("sluice-bench-{id}-{round}-exactly");
        for created in [&out, &exactly_out] {
            crate::kafka::admin::create_topic(&connection, created, spec.partitions)
                .map_err(|e| e.to_string())?;
        }
        let started = Instant::now();
        let bytes = crate::nexmark_generate::generate_to_kafka(
            spec.events,
            spec.seed,
            &connection,
            &topic,
            spec.partitions,
        )
        .map_err(|e| e.to_string())?;
        let producer = rate(spec.events, bytes, started.elapsed());
        let bytes_per_event = bytes / spec.events.max(1);
        let source_job = format!(
            "job = \"nexmark.q0\"\nshards = 1\n[source]\nconnector = \"kafka\"\nbootstrap_servers = \"{}\"\n\
             topics = [\"{topic}\"]\nformat = \"nexmark\"\nstop = \"latest\"\n[sink]\nconnector = \"blackhole\"\n",
            spec.bootstrap
        );
        let sink_job = format!(
            "job = \"nexmark.q0\"\nshards = 1\n[source]\nconnector = \"nexmark\"\nevents = {}\nseed = {}\n\
             [sink]\nconnector = \"kafka\"\nbootstrap_servers = \"{}\"\ntopic = \"{out}\"\ndelivery = \"at-least-once\"\n",
            spec.events, spec.seed, spec.bootstrap
        );
        let exactly_once_job = format!(
            "job = \"nexmark.q0\"\nshards = 1\n[source]\nconnector = \"nexmark\"\nevents = {}\nseed = {}\n\
             [sink]\nconnector = \"kafka\"\nbootstrap_servers = \"{}\"\ntopic = \"{exactly_out}\"\n\
             delivery = \"exactly-once\"\ntransactional_id_prefix = \"sluice-bench-{id}-{round}\"\n\
             [checkpoint]\ninterval_ms = 1000\n",
            spec.events, spec.seed, spec.bootstrap
        );
        let sluice_first = round % 2 == 1;
        let mut consumer = Rate::default();
        let mut source = Rate::default();
        for sluice_turn in [sluice_first, !sluice_first] {
            if sluice_turn {
                let run = run_job(dir.path(), "source.toml", &source_job)?;
                source = rate(
                    run.records_in,
                    run.records_in * bytes_per_event,
                    run.elapsed,
                );
            } else {
                let (records, bytes, elapsed) = bare_consume(&connection, &topic, spec.partitions)?;
                consumer = rate(records, bytes, elapsed);
            }
        }
        // q0's bids are smaller than the average event; their bytes are
        // counted as written (one JSON bid is ~200 bytes).
        let sink_rate =
            |run: JobRun| rate(run.records_out, run.records_out * 200, run.until_committed);
        let sink = sink_rate(run_job(dir.path(), "sink.toml", &sink_job)?);
        let exactly_once = sink_rate(run_job(dir.path(), "exactly-once.toml", &exactly_once_job)?);
        eprintln!(
            "round {round}: producer {:.0}/s, sink {:.0}/s, exactly-once sink {:.0}/s, consumer {:.0}/s, source {:.0}/s",
            producer.records_per_s,
            sink.records_per_s,
            exactly_once.records_per_s,
            consumer.records_per_s,
            source.records_per_s
        );
        for (i, r) in [producer, sink, consumer, source, exactly_once]
            .into_iter()
            .enumerate()
        {
            measured[i].push(r);
        }
    }
    let m = |i: usize| -> (f64, f64) {
        (
            median(measured[i].iter().map(|r| r.records_per_s).collect()),
            median(measured[i].iter().map(|r| r.mb_per_s).collect()),
        )
    };
    let mut table =
        String::from("| path | records/s | MB/s | Sluice / librdkafka |\n|---|---:|---:|---:|\n");
    let rows = [
        ("librdkafka producer alone", 0, None),
        ("Sluice Kafka sink (q0, at-least-once, 1 shard)", 1, Some(0)),
        (
            "Sluice Kafka sink (q0, exactly-once, checkpoint every 1 s, 1 shard)",
            4,
            Some(0),
        ),
        ("librdkafka consumer alone (+ JSON parse)", 2, None),
        ("Sluice Kafka source (q0 to blackhole, 1 shard)", 3, Some(2)),
    ];
    for (name, i, against) in rows {
        let (records, mb) = m(i);
        let ratio = against.map_or(String::new(), |a| format!("{:.2}", records / m(a).0));
        table.push_str(&format!("| {name} | {records:.0} | {mb:.1} | {ratio} |\n"));
    }
    Ok(table)
}
