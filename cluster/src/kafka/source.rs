//! The Kafka source: the partitions of some topics, spread over the shards.
//!
//! Built once per process: it asks the brokers for the topics' partitions
//! and resolves each partition's start offset (`earliest`, `latest`, the
//! first at a timestamp, or the group's committed offset) to a number, so
//! that a checkpoint taken before a partition's first record still names
//! where to read on. Partition `topic:p` is read by shard
//! `(h(topic) + p) % shards` (Flink's assignment: a topic's partitions go
//! round robin from a start that depends on the topic), on a consumer of
//! its own that is assigned that one partition (no group rebalancing), so
//! its records, end and watermark are the partition's alone. The consumer is
//! created off the shard's core (see [`unpinned`]).
//!
//! Positions in checkpoints are the next offset to read, under the key
//! `<topic>:<partition>`: a restore reads on exactly after them, on any
//! number of shards. A discovery thread (not in bounded mode) lists the
//! topics every `discovery_interval` and adds the partitions that appeared
//! (a topic grown, a new topic matching the pattern), read from their
//! earliest offset; the shards pick them up at their next look. In bounded
//! mode (`stop_at_latest`) each partition is read up to the end offset it
//! had when the source was built, then ends.
//!
//! A record that does not parse is handled as the source's bad-record
//! policy says, named by topic, partition and offset. Errors the brokers
//! report while reading are retried by librdkafka and logged (at most every
//! ten seconds per partition), except those that cannot heal (authorization,
//! a partition that no longer exists), which fail the job.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::consumer_lag::PartitionLag;
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use sluice_engine::connectors::{BadRecordPolicy, BadRecords, Source, SourcePoll, SourceReader};
use sluice_engine::record::NO_TIMESTAMP;
use sluice_engine::{Rec, SourceError};

use super::unpinned::unpinned;
use super::{KafkaConnection, KafkaError, PayloadFormat};

/// Which topics to read.
#[derive(Debug, Clone)]
pub enum TopicSelection {
    Topics(Vec<String>),
    /// Every topic whose whole name matches.
    Pattern(regex::Regex),
}

/// Where a partition is read from when no checkpoint says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Earliest,
    Latest,
    /// The first record whose timestamp is at least this (ms); the end
    /// when there is none.
    Timestamp(i64),
    /// The offset the consumer group committed; the earliest without one.
    GroupOffsets,
}

/// What the source reads, and how.
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    pub connection: KafkaConnection,
    pub topics: TopicSelection,
    pub format: PayloadFormat,
    pub start: StartFrom,
    /// Read up to the end offsets seen when the source is built, then end.
    pub stop_at_latest: bool,
    /// How often to look for new partitions (`None`: never).
    pub discovery_interval: Option<Duration>,
    /// The consumers' `group.id` (the offsets `GroupOffsets` starts from).
    pub group_id: String,
    pub bad_records: BadRecordPolicy,
}

/// One partition and the offsets it is read between.
#[derive(Debug, Clone)]
struct KafkaPartition {
    topic: String,
    partition: i32,
    /// The first offset to read without a checkpoint.
    start: i64,
    /// Bounded mode: the offset it ends at.
    end: Option<i64>,
}

/// Reads one record from a message value.
pub type ParseValue<T> = Arc<dyn Fn(&[u8]) -> Result<T, String> + Send + Sync>;

/// See the module docs.
pub struct KafkaSource<T> {
    config: Arc<KafkaSourceConfig>,
    /// Partition `i` of this process's numbering: only grows.
    partitions: Arc<Mutex<Vec<KafkaPartition>>>,
    parse: ParseValue<T>,
    _discovery: Option<DiscoveryThread>,
}

/// Stops and joins the discovery thread when the source is dropped.
struct DiscoveryThread {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for DiscoveryThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A stable hash of a topic's name (FNV-1a), the same in every process.
fn topic_hash(topic: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in topic.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

fn metadata_consumer(config: &KafkaSourceConfig) -> Result<BaseConsumer, KafkaError> {
    config
        .connection
        .client_config(&[
            ("group.id", &config.group_id),
            ("enable.auto.commit", "false"),
        ])
        .create()
        .map_err(|e| config.connection.error("creating a client", e))
}

/// The topics' partitions, sorted.
fn list_partitions(
    consumer: &BaseConsumer,
    config: &KafkaSourceConfig,
) -> Result<Vec<(String, i32)>, KafkaError> {
    let connection = &config.connection;
    let timeout = connection.request_timeout;
    let mut found = Vec::new();
    match &config.topics {
        TopicSelection::Topics(topics) => {
            for topic in topics {
                let metadata = consumer
                    .fetch_metadata(Some(topic), timeout)
                    .map_err(|e| connection.error(format!("reading topic `{topic}`"), e))?;
                let Some(entry) = metadata.topics().iter().find(|t| t.name() == topic) else {
                    return Err(connection.error(
                        format!("reading topic `{topic}`"),
                        "the brokers did not describe it",
                    ));
                };
                if let Some(error) = entry.error() {
                    let code = RDKafkaErrorCode::from(error);
                    let reason = match code {
                        RDKafkaErrorCode::UnknownTopicOrPartition => "no such topic".to_string(),
                        other => other.to_string(),
                    };
                    return Err(connection.error(format!("reading topic `{topic}`"), reason));
                }
                if entry.partitions().is_empty() {
                    return Err(connection
                        .error(format!("reading topic `{topic}`"), "it has no partitions"));
                }
                found.extend(entry.partitions().iter().map(|p| (topic.clone(), p.id())));
            }
        }
        TopicSelection::Pattern(pattern) => {
            let metadata = consumer
                .fetch_metadata(None, timeout)
                .map_err(|e| connection.error("listing topics", e))?;
            for entry in metadata.topics() {
                let whole_name = pattern
                    .find(entry.name())
                    .is_some_and(|m| m.start() == 0 && m.end() == entry.name().len());
                if whole_name && entry.error().is_none() {
                    found.extend(
                        (entry.partitions().iter()).map(|p| (entry.name().to_owned(), p.id())),
                    );
                }
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// Resolves where each partition starts (and, bounded, ends).
fn resolve(
    consumer: &BaseConsumer,
    config: &KafkaSourceConfig,
    partitions: &[(String, i32)],
    start: StartFrom,
) -> Result<Vec<KafkaPartition>, KafkaError> {
    let connection = &config.connection;
    let timeout = connection.request_timeout;
    let mut watermarks = Vec::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *partition, timeout)
            .map_err(|e| {
                connection.error(format!("reading the offsets of {topic}:{partition}"), e)
            })?;
        watermarks.push((low, high));
    }
    let mut asked = TopicPartitionList::new();
    let answer = match start {
        StartFrom::Timestamp(ms) => {
            for (topic, partition) in partitions {
                asked
                    .add_partition_offset(topic, *partition, Offset::Offset(ms))
                    .map_err(|e| connection.error("asking offsets for a time", e))?;
            }
            Some(
                consumer
                    .offsets_for_times(asked, timeout)
                    .map_err(|e| connection.error(format!("finding the offsets at {ms} ms"), e))?,
            )
        }
        StartFrom::GroupOffsets => {
            for (topic, partition) in partitions {
                asked.add_partition(topic, *partition);
            }
            Some(consumer.committed_offsets(asked, timeout).map_err(|e| {
                connection.error(
                    format!(
                        "reading the committed offsets of group `{}`",
                        config.group_id
                    ),
                    e,
                )
            })?)
        }
        StartFrom::Earliest | StartFrom::Latest => None,
    };
    let mut resolved = Vec::with_capacity(partitions.len());
    for ((topic, partition), (low, high)) in partitions.iter().zip(watermarks) {
        let answered = answer
            .as_ref()
            .and_then(|list| list.find_partition(topic, *partition))
            .map(|entry| entry.offset());
        let start = match (start, answered) {
            (StartFrom::Earliest, _) => low,
            (StartFrom::Latest, _) => high,
            (_, Some(Offset::Offset(offset))) => offset.clamp(low, high),
            // No record at or after the time: the end. No committed
            // offset: the earliest.
            (StartFrom::Timestamp(_), _) => high,
            (_, _) => low,
        };
        resolved.push(KafkaPartition {
            topic: topic.clone(),
            partition: *partition,
            start,
            end: config.stop_at_latest.then_some(high),
        });
    }
    Ok(resolved)
}

impl<T: DeserializeOwned + 'static> KafkaSource<T> {
    /// Lists the topics' partitions and resolves where each starts; starts
    /// the discovery thread. Fails, naming the brokers and the topic, when
    /// the brokers cannot be reached in time or a listed topic does not
    /// exist. Values are read as the config's format says.
    pub fn new(config: KafkaSourceConfig) -> Result<Self, KafkaError> {
        let format = config.format;
        KafkaSource::parsed_by(config, Arc::new(move |value| format.parse::<T>(value)))
    }
}

impl<T: 'static> KafkaSource<T> {
    /// As [`KafkaSource::new`], each message value read by `parse` (the
    /// config's format is not used).
    pub fn parsed_by(config: KafkaSourceConfig, parse: ParseValue<T>) -> Result<Self, KafkaError> {
        let consumer = metadata_consumer(&config)?;
        let listed = list_partitions(&consumer, &config)?;
        let partitions = resolve(&consumer, &config, &listed, config.start)?;
        let partitions = Arc::new(Mutex::new(partitions));
        let config = Arc::new(config);
        let discovery = match config.discovery_interval {
            Some(interval) if !config.stop_at_latest => {
                let (stop, stopped) = mpsc::channel::<()>();
                let (config, partitions) = (config.clone(), partitions.clone());
                let thread = std::thread::Builder::new()
                    .name("kafka-discovery".into())
                    .spawn(move || discover(consumer, &config, &partitions, interval, stopped))
                    .map_err(|e| KafkaError {
                        servers: String::new(),
                        what: "starting the partition discovery thread".into(),
                        reason: e.to_string(),
                    })?;
                Some(DiscoveryThread {
                    stop: Some(stop),
                    thread: Some(thread),
                })
            }
            _ => None,
        };
        Ok(KafkaSource {
            config,
            partitions,
            parse,
            _discovery: discovery,
        })
    }

    /// The partitions known so far, as `topic:partition`.
    pub fn partition_names(&self) -> Vec<String> {
        let partitions = self.partitions.lock().expect("partitions lock");
        partitions
            .iter()
            .map(|p| format!("{}:{}", p.topic, p.partition))
            .collect()
    }
}

/// The discovery thread: every `interval`, adds the partitions that
/// appeared, read from their earliest offset, until the source is dropped.
fn discover(
    consumer: BaseConsumer,
    config: &KafkaSourceConfig,
    partitions: &Mutex<Vec<KafkaPartition>>,
    interval: Duration,
    stopped: mpsc::Receiver<()>,
) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        let listed = match list_partitions(&consumer, config) {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!("partition discovery: {e}");
                continue;
            }
        };
        let new: Vec<(String, i32)> = {
            let known = partitions.lock().expect("partitions lock");
            listed
                .into_iter()
                .filter(|(topic, partition)| {
                    !known
                        .iter()
                        .any(|k| &k.topic == topic && k.partition == *partition)
                })
                .collect()
        };
        if new.is_empty() {
            continue;
        }
        match resolve(&consumer, config, &new, StartFrom::Earliest) {
            Ok(found) => {
                for p in &found {
                    tracing::info!("discovered partition {}:{}", p.topic, p.partition);
                }
                partitions.lock().expect("partitions lock").extend(found);
            }
            Err(e) => tracing::warn!("partition discovery: {e}"),
        }
    }
}

/// How long a shard whose partitions had nothing waits before polling them
/// again (instead of the source task's back-off up to 10 ms): records that
/// arrive meanwhile wait at most this long in librdkafka's queue.
const EMPTY_POLL_PAUSE: Duration = Duration::from_micros(500);

/// How often a reader logs errors the brokers report, at most.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// Reads one partition on its shard, on a consumer of its own.
struct KafkaPartitionReader<T> {
    consumer: BaseConsumer,
    topic: String,
    partition: i32,
    /// The next offset to read: the position in checkpoints.
    next_offset: i64,
    end: Option<i64>,
    parse: ParseValue<T>,
    bad_records: BadRecords,
    connection: KafkaConnection,
    last_error_logged: Option<Instant>,
    /// Its entry in the process's consumer lag figures.
    lag: PartitionLag,
}

impl<T> KafkaPartitionReader<T> {
    fn name(&self) -> String {
        format!("kafka topic `{}` partition {}", self.topic, self.partition)
    }

    fn failed(&self, what: &str, reason: impl std::fmt::Display) -> SourceError {
        SourceError::BadRecord {
            location: format!("{} at {}", self.name(), self.connection.bootstrap_servers),
            reason: format!("{what}: {reason}"),
        }
    }

    fn assign(&self, offset: i64) -> Result<(), SourceError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, self.partition, Offset::Offset(offset))
            .and_then(|()| self.consumer.assign(&list))
            .map_err(|e| self.failed("assigning the partition", e))
    }

    fn ended(&self) -> bool {
        self.end.is_some_and(|end| self.next_offset >= end)
    }
}

/// Errors that retrying does not heal.
fn is_fatal(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::UnknownPartition
            | RDKafkaErrorCode::Fatal
    )
}

impl<T: 'static> SourceReader<T> for KafkaPartitionReader<T> {
    fn poll(&mut self, out: &mut Vec<Rec<T>>, max: usize) -> Result<SourcePoll, SourceError> {
        let mut produced = 0;
        while produced < max {
            if self.ended() {
                return Ok(SourcePoll::End);
            }
            let Some(polled) = self.consumer.poll(Duration::ZERO) else {
                break;
            };
            let message = match polled {
                Ok(message) => message,
                Err(RdError::PartitionEOF(_)) => {
                    // Control records (transaction markers) take offsets no
                    // record has: the consumer's position passes them.
                    if let Ok(list) = self.consumer.position() {
                        if let Some(Offset::Offset(position)) = list
                            .find_partition(&self.topic, self.partition)
                            .map(|p| p.offset())
                        {
                            self.next_offset = self.next_offset.max(position);
                        }
                    }
                    break;
                }
                Err(e) => {
                    let code = e.rdkafka_error_code();
                    if code.is_some_and(is_fatal) {
                        return Err(self.failed("reading", e));
                    }
                    if self
                        .last_error_logged
                        .is_none_or(|at| at.elapsed() >= ERROR_LOG_EVERY)
                    {
                        tracing::warn!("{}: {e} (retrying)", self.name());
                        self.last_error_logged = Some(Instant::now());
                    }
                    break;
                }
            };
            let offset = message.offset();
            if self.end.is_some_and(|end| offset >= end) {
                self.next_offset = self.end.unwrap_or(offset);
                return Ok(SourcePoll::End);
            }
            self.next_offset = offset + 1;
            let ts = message.timestamp().to_millis().unwrap_or(NO_TIMESTAMP);
            let parsed = match message.payload() {
                Some(value) => (self.parse)(value).map_err(|reason| (reason, value)),
                None => Err(("the message has no value".to_string(), &[][..])),
            };
            match parsed {
                Ok(value) => {
                    out.push(Rec { ts, value });
                    produced += 1;
                }
                Err((reason, value)) => {
                    let location = format!("{} offset {offset}", self.name());
                    let raw = String::from_utf8_lossy(value).into_owned();
                    self.bad_records.handle(location, reason, &raw)?;
                }
            }
        }
        self.lag.update(&self.consumer, self.next_offset);
        if self.ended() {
            return Ok(SourcePoll::End);
        }
        Ok(if produced > 0 {
            SourcePoll::Ready
        } else {
            SourcePoll::Pending
        })
    }

    fn position(&self) -> u64 {
        self.next_offset as u64
    }

    fn ready_at(&self) -> Option<Instant> {
        Some(Instant::now() + EMPTY_POLL_PAUSE)
    }

    fn seek(&mut self, position: u64) -> Result<(), SourceError> {
        let offset = i64::try_from(position)
            .map_err(|_| self.failed("restoring", format!("offset {position} out of range")))?;
        self.assign(offset)?;
        self.next_offset = offset;
        Ok(())
    }
}

impl<T: 'static> Source<T> for KafkaSource<T> {
    fn partitions(&self) -> u32 {
        self.partitions.lock().expect("partitions lock").len() as u32
    }

    fn open(&self, partition: u32) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let p = self.partitions.lock().expect("partitions lock")[partition as usize].clone();
        let connection = &self.config.connection;
        let config = connection.client_config(&[
            ("group.id", &self.config.group_id),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            // An offset the log no longer has (retention): read what is left.
            ("auto.offset.reset", "earliest"),
            ("fetch.wait.max.ms", "100"),
        ]);
        let consumer: BaseConsumer =
            unpinned(|| config.create()).map_err(|e| SourceError::BadRecord {
                location: format!("kafka topic `{}` partition {}", p.topic, p.partition),
                reason: format!("creating a consumer: {e}"),
            })?;
        let reader = KafkaPartitionReader {
            consumer,
            bad_records: BadRecords::named(
                &self.config.bad_records,
                format!("{}-{}", p.topic, p.partition),
            ),
            lag: PartitionLag::new(&p.topic, p.partition),
            topic: p.topic,
            partition: p.partition,
            next_offset: p.start,
            end: p.end,
            parse: self.parse.clone(),
            connection: connection.clone(),
            last_error_logged: None,
        };
        reader.assign(p.start)?;
        Ok(Box::new(reader))
    }

    fn partition_name(&self, partition: u32) -> String {
        let partitions = self.partitions.lock().expect("partitions lock");
        let p = &partitions[partition as usize];
        format!("{}:{}", p.topic, p.partition)
    }

    fn shard_of(&self, partition: u32, shards: u32) -> u32 {
        let partitions = self.partitions.lock().expect("partitions lock");
        let p = &partitions[partition as usize];
        let start = topic_hash(&p.topic) % shards;
        (start + p.partition as u32 % shards) % shards
    }

    fn discovery_interval(&self) -> Option<Duration> {
        self._discovery.as_ref().and(self.config.discovery_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topics_partitions_go_round_robin_from_a_start_of_its_own() {
        let shards = 4;
        let owners: Vec<u32> = (0..8)
            .map(|p| (topic_hash("bids") % shards + p % shards) % shards)
            .collect();
        for shard in 0..shards {
            assert_eq!(owners.iter().filter(|&&o| o == shard).count(), 2);
        }
        // Stable across processes and versions.
        assert_eq!(topic_hash("bids"), topic_hash("bids"));
        assert_ne!(topic_hash("bids"), topic_hash("asks"));
    }
}
