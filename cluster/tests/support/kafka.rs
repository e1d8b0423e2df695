//! Kafka helpers of the tests: a broker (tansu, see `sluice_tests::kafka_broker`),
//! topics, records written to chosen partitions and read back whole.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice_cluster::kafka::{admin, KafkaConnection};
pub use sluice_tests::kafka_broker::KafkaTestBroker;

/// A broker and a connection to it.
pub struct Broker {
    pub broker: KafkaTestBroker,
    pub connection: KafkaConnection,
}

impl Broker {
    pub fn start() -> Broker {
        let broker = KafkaTestBroker::start().expect("a Kafka broker for the test");
        let connection = KafkaConnection::new(&broker.bootstrap());
        Broker { broker, connection }
    }

    pub fn bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        admin::create_topic(&self.connection, topic, partitions).expect("topic created");
    }

    /// Writes `values` to `topic`, value `i` to partition `partition_of(i)`,
    /// one record per batch (tansu skips the rest of a batch a consumer
    /// resumes in), with timestamp `timestamp_of(i)` if given.
    pub fn produce(
        &self,
        topic: &str,
        values: &[String],
        partition_of: impl Fn(usize) -> i32,
        timestamp_of: Option<&dyn Fn(usize) -> i64>,
    ) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()
            .expect("a producer");
        for (i, value) in values.iter().enumerate() {
            let mut record = BaseRecord::<(), str>::to(topic)
                .payload(value.as_str())
                .partition(partition_of(i));
            if let Some(ts) = timestamp_of {
                record = record.timestamp(ts(i));
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((e, back)) => {
                        assert!(Instant::now() < deadline, "producing: {e}");
                        producer.poll(Duration::from_millis(10));
                        record = back;
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        // One record per batch to a debug-built broker on a loaded CI
        // machine: 20k records once took over 30 s.
        producer
            .flush(Duration::from_secs(120))
            .expect("records delivered");
    }

    /// Every record of `topic` (values as text), partition by partition, in
    /// offset order; waits (up to 30 s) until each partition's end.
    pub fn read_all(&self, topic: &str) -> Vec<(i32, i64, String)> {
        self.read_all_headed(topic)
            .into_iter()
            .map(|r| (r.partition, r.offset, r.value))
            .collect()
    }

    /// As [`read_all`](Self::read_all), with each record's headers.
    pub fn read_all_headed(&self, topic: &str) -> Vec<ReadRecord> {
        let partitions =
            admin::partition_count(&self.connection, topic).expect("the topic's partitions");
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "sluice-tests-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .expect("a consumer");
        let mut list = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            list.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&list).unwrap();
        let mut at_end = BTreeSet::new();
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while at_end.len() < partitions {
            assert!(
                Instant::now() < deadline,
                "reading {topic} did not reach its end"
            );
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    at_end.remove(&m.partition());
                    let value = String::from_utf8_lossy(m.payload().unwrap_or_default());
                    let headers = m
                        .headers()
                        .map(|headers| {
                            headers
                                .iter()
                                .map(|h| {
                                    let value =
                                        String::from_utf8_lossy(h.value.unwrap_or_default());
                                    (h.key.to_owned(), value.into_owned())
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    records.push(ReadRecord {
                        partition: m.partition(),
                        offset: m.offset(),
                        value: value.into_owned(),
                        headers,
                    });
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        records.sort();
        records
    }
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadRecord {
    pub partition: i32,
    pub offset: i64,
    pub value: String,
    pub headers: BTreeMap<String, String>,
}

/// What a `read_committed` consumer sees of an exactly-once sink's topic.
///
/// tansu does not filter aborted transactions from `read_committed`
/// fetches (its control records are written, the aborted list is not
/// sent), so the tests do: each record names its commit attempt
/// (`sluice-commit`, `<transactional id>/<unix ms>-<pid>-<attempt>`) and
/// checkpoint (`sluice-checkpoint`). A checkpoint's records are sent again
/// only when the attempt before was aborted, and an id's attempts are made
/// one after the other, so of the attempts that sent one id's checkpoint,
/// the last to start committed and the others were aborted. Also returns
/// how many (id, checkpoint)s were sent more than once.
pub fn committed_view(records: &[ReadRecord]) -> (Vec<String>, usize) {
    let attempt_of = |r: &ReadRecord| {
        let commit = r
            .headers
            .get("sluice-commit")
            .expect("a sluice-commit header");
        let checkpoint = r
            .headers
            .get("sluice-checkpoint")
            .expect("a sluice-checkpoint header");
        let (id, attempt) = commit.split_once('/').expect("<id>/<pid>.<attempt>");
        ((id.to_owned(), checkpoint.clone()), attempt.to_owned())
    };
    let started = |attempt: &str| -> (u64, u64) {
        let mut parts = attempt
            .split('-')
            .map(|p| p.parse::<u64>().expect("a number"));
        let millis = parts.next().unwrap();
        (millis, parts.nth(1).expect("<unix ms>-<pid>-<attempt>"))
    };
    // Per (id, checkpoint): the attempts that sent it.
    let mut attempts: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for record in records {
        let (sent, attempt) = attempt_of(record);
        attempts.entry(sent).or_default().insert(attempt);
    }
    let committed: BTreeMap<(String, String), String> = attempts
        .iter()
        .map(|(sent, by_attempt)| {
            let last = by_attempt.iter().max_by_key(|a| started(a)).unwrap();
            (sent.clone(), last.clone())
        })
        .collect();
    let resent = attempts.values().filter(|a| a.len() > 1).count();
    let mut values: Vec<String> = records
        .iter()
        .filter(|r| {
            let (sent, attempt) = attempt_of(r);
            committed[&sent] == attempt
        })
        .map(|r| r.value.clone())
        .collect();
    values.sort();
    (values, resent)
}
