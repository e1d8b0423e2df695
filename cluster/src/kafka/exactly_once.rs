//! The exactly-once Kafka sink: each checkpoint interval's records reach
//! the topic in one Kafka transaction, committed once the checkpoint that
//! covers them has completed, with a `kill -9` at any moment neither losing
//! nor duplicating a record.
//!
//! # The gap this design closes
//!
//! Flink's Kafka sink writes records into a transaction as they come,
//! pre-commits (flushes) at the barrier and commits when the checkpoint
//! completes; after a crash between those two steps it resumes the open
//! transaction from the checkpoint (the producer id and epoch, set into the
//! Java client by reflection) and commits it. librdkafka cannot resume
//! another producer's transaction: a new producer with the same
//! transactional id *aborts* it. A sink that follows Flink's order with
//! librdkafka loses the records of that transaction (Arroyo's rdkafka sink
//! does, ArroyoSystems/arroyo#224).
//!
//! # The design
//!
//! - **Stage, then send.** A shard's writer encodes records (key, value,
//!   timestamp) into a buffer. At the barrier of checkpoint `n` it puts the
//!   buffer into the staging store — a place under the job's checkpoint
//!   storage, so every worker that may take the shard over reads it — as
//!   `shard-<s>/<n>` ([`super::staged_records`] is the layout), before the
//!   shard acknowledges the checkpoint. A completed checkpoint therefore
//!   always has its records durable, and Kafka has seen none of them yet.
//! - **Commit when complete.** When checkpoint `n` completes, the shard's
//!   committer (on the checkpoint driver's thread, off the record path)
//!   opens a transaction with transactional id `<prefix>-<s>`, sends every
//!   staged record of checkpoints up to `n`, adds an *epoch marker* to the
//!   same transaction — `send_offsets_to_transaction` of offset `n` on
//!   partition 0 of the sink's topic for the consumer group `<prefix>-<s>`
//!   — and commits. The marker is committed atomically with the records: the
//!   group's committed offset says which checkpoint's records Kafka holds.
//!   Then the staged objects are deleted.
//! - **Recover by the marker.** A writer that opens after a restore from
//!   checkpoint `r` first calls `init_transactions` for its id, which fences
//!   every earlier producer with that id (a zombie of a previous attempt)
//!   and aborts the transaction it left open. It reads the marker `m`:
//!   staged checkpoints up to `m` were committed (their objects are
//!   deleted), staged checkpoints in `(m, r]` were not and are sent again in
//!   one transaction, staged checkpoints after `r` never completed and are
//!   deleted (the restored job makes those records again).
//! - **Rescaling.** A shard `s` that no longer exists (the job restores on
//!   fewer shards) may have staged checkpoints or a transaction left open:
//!   shard `s % shards` recovers id `<prefix>-<s>` as its own, found by
//!   listing the staging store. Ids with nothing staged have nothing open:
//!   a transaction is only open while staged objects exist.
//! - **Markers belong to one lineage.** A marker above the restored
//!   checkpoint (a restore from an older checkpoint, or a run of an earlier
//!   job under the same prefix) says nothing about this run's checkpoints:
//!   it is reset to the restored checkpoint (a fresh start resets it to 0)
//!   in an offsets-only transaction, since checkpoint ids only grow above the
//!   restored one.
//!
//! # Failure cases
//!
//! | `kill -9` … | the restore finds | and does |
//! |---|---|---|
//! | before checkpoint `n`'s staged put | `n` not complete; nothing staged for it | the records are made again |
//! | after the put, before `n` completes | `n` staged, `r < n` | deletes it; the records are made again |
//! | after `n` completes, before the Kafka commit | `n` staged, marker `< n`, the transaction open | `init_transactions` aborts it; sends `n` again, once |
//! | after the commit, before the staged delete | `n` staged, marker `≥ n` | deletes it; sends nothing |
//! | a zombie of an earlier attempt still running | — | fenced by `init_transactions`: its commit fails |
//!
//! # Costs and limits
//!
//! Output is visible to `read_committed` consumers one checkpoint interval
//! after it is made (as with Flink's exactly-once sink), and a shard holds
//! one interval of encoded output in memory. The staged put is synchronous
//! at the barrier (the exactly-once file sink syncs its part there too).
//! A transaction is open only while a committer sends, so
//! `transaction.timeout.ms` (set to six request timeouts, at least a
//! minute and at most 15, and overridable in `properties`) need not cover the checkpoint
//! interval, and stays under a default broker's 15-minute maximum: Flink's
//! one-hour default, which such a broker refuses, is not needed here. A
//! commit that fails (brokers away) leaves the checkpoints staged: the next
//! completed checkpoint commits them with its own; a producer that was
//! fenced, or three commits failing in a row, fail the next checkpoint and
//! so the job, which restarts as its restart strategy says.
//!
//! Each record carries two headers for lineage: `sluice-checkpoint` (the
//! checkpoint that covered it) and `sluice-commit` (`<id>/<unix ms>-<pid>-
//! <attempt>`, one per commit attempt).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use sluice_engine::checkpoint::{Committer, StorageLocation, FINAL_CHECKPOINT};
use sluice_engine::connectors::{SinkContext, SinkWriter};
use sluice_engine::record::NO_TIMESTAMP;
use sluice_engine::Rec;
use sluice_state::checkpoint_store::ObjectStore;

use super::sink::{send_waiting, DeliveryReports, RecordEncoder};
use super::staged_records::{read_staged, StagedRecord, StagedRecords};
use super::{Delivery, KafkaSink};

/// `delivery = "exactly-once"`: where transactions are named and records
/// staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactlyOnce {
    /// Shard `s` commits with transactional id `<prefix>-<s>`; the prefix
    /// must be this job's alone (two jobs sharing it fence each other).
    pub transactional_id_prefix: String,
    /// Where records wait between their checkpoint's barrier and their
    /// commit: a place every worker of the job reaches.
    pub staging: StorageLocation,
}

/// A default broker's `transaction.max.timeout.ms`: a producer asking for
/// more is refused.
const BROKER_TRANSACTION_TIMEOUT_MAX: Duration = Duration::from_secs(15 * 60);

/// Commits failing in a row before the sink fails the job.
const FAILED_COMMITS_MAX: u32 = 3;

/// The staged object of shard `shard`'s checkpoint `checkpoint`.
fn staged_key(shard: u32, checkpoint: u64) -> String {
    format!("shard-{shard}/{checkpoint:020}")
}

/// `(shard, checkpoint)` of a staged object's key.
fn parse_staged_key(key: &str) -> Option<(u32, u64)> {
    let (shard, checkpoint) = key.strip_prefix("shard-")?.split_once('/')?;
    Some((shard.parse().ok()?, checkpoint.parse().ok()?))
}

/// One checkpoint's records waiting for their commit.
struct Staged {
    checkpoint: u64,
    /// Its object in the staging store (none: a job without checkpoints).
    key: Option<String>,
    bytes: Vec<u8>,
}

/// A transactional id's producer and epoch marker: commits what its shard
/// staged. Shared by the shard's writer and the checkpoint driver.
struct ShardTransactions {
    sink: KafkaSink,
    /// The shard whose id this is.
    owner: u32,
    transactional_id: String,
    producer: BaseProducer<DeliveryReports>,
    marker: BaseConsumer,
    group: ConsumerGroupMetadata,
    store: Arc<dyn ObjectStore>,
    pending: Vec<Staged>,
    attempts: u64,
    failed_commits: u32,
    last_error: Option<String>,
    /// Fenced or otherwise unusable: every later commit fails with this.
    broken: Option<String>,
}

impl ShardTransactions {
    /// Creates the id's producer and fences every earlier one (aborting
    /// the transaction it left open).
    fn open(sink: &KafkaSink, owner: u32, store: Arc<dyn ObjectStore>) -> Result<Self, String> {
        let Delivery::ExactlyOnce(exactly) = &sink.delivery else {
            unreachable!("an exactly-once sink");
        };
        let transactional_id = format!("{}-{owner}", exactly.transactional_id_prefix);
        let request_timeout = sink.connection.request_timeout;
        let transaction_timeout = (request_timeout * 6)
            .clamp(Duration::from_secs(60), BROKER_TRANSACTION_TIMEOUT_MAX)
            .as_millis()
            .to_string();
        let message_timeout = (request_timeout * 3).as_millis().to_string();
        let producer_config = sink.connection.client_config(&[
            ("transactional.id", &transactional_id),
            ("transaction.timeout.ms", &transaction_timeout),
            ("message.timeout.ms", &message_timeout),
            ("linger.ms", "5"),
        ]);
        let marker_config = sink.connection.client_config(&[
            ("group.id", &transactional_id),
            ("enable.auto.commit", "false"),
        ]);
        let error = |what: &str, e: &dyn std::fmt::Display| {
            sink.error(owner, &format!("{what} for `{transactional_id}`"), e)
        };
        // Off the shard's core: librdkafka's threads inherit its CPU set.
        let (producer, marker) = super::unpinned::unpinned(|| {
            let producer: BaseProducer<DeliveryReports> = producer_config
                .create_with_context(DeliveryReports::default())
                .map_err(|e| error("creating a transactional producer", &e))?;
            let marker: BaseConsumer = marker_config
                .create()
                .map_err(|e| error("creating the marker's reader", &e))?;
            Ok::<_, String>((producer, marker))
        })?;
        producer
            .init_transactions(request_timeout)
            .map_err(|e| error("initializing transactions (fencing earlier producers)", &e))?;
        let group = marker
            .group_metadata()
            .ok_or_else(|| error("reading group metadata", &"none"))?;
        Ok(ShardTransactions {
            sink: sink.clone(),
            owner,
            transactional_id,
            producer,
            marker,
            group,
            store,
            pending: Vec::new(),
            attempts: 0,
            failed_commits: 0,
            last_error: None,
            broken: None,
        })
    }

    fn error(&self, what: &str, reason: impl std::fmt::Display) -> String {
        self.sink.error(
            self.owner,
            &format!("{what} (transactional id `{}`)", self.transactional_id),
            reason,
        )
    }

    /// The marker's partition with offset `checkpoint`.
    fn marker_list(&self, checkpoint: Option<u64>) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        match checkpoint {
            Some(checkpoint) => {
                let offset = i64::try_from(checkpoint).unwrap_or(i64::MAX);
                list.add_partition_offset(&self.sink.topic, 0, Offset::Offset(offset))
                    .expect("a valid offset");
            }
            None => {
                list.add_partition(&self.sink.topic, 0);
            }
        }
        list
    }

    /// The checkpoint whose records Kafka last committed for this id, if any.
    fn committed_marker(&self) -> Result<Option<u64>, String> {
        let committed = self
            .marker
            .committed_offsets(self.marker_list(None), self.sink.connection.request_timeout)
            .map_err(|e| self.error("reading the epoch marker", e))?;
        Ok(committed.elements().first().and_then(|e| match e.offset() {
            Offset::Offset(n) if n > 0 => Some(n as u64),
            _ => None,
        }))
    }

    /// Puts the id's staged checkpoints in order after a restore from
    /// `restored` (none: a fresh start): see the module docs.
    fn recover(&mut self, staged: &[(u64, String)], restored: Option<u64>) -> Result<(), String> {
        let marker = self.committed_marker()?;
        let restored_at = restored.unwrap_or(0);
        // A marker above the restored checkpoint is of another lineage.
        let committed = marker.filter(|m| *m <= restored_at);
        for (checkpoint, key) in staged {
            if committed.is_some_and(|m| *checkpoint <= m) || *checkpoint > restored_at {
                self.delete_staged(key);
                continue;
            }
            let bytes = self
                .store
                .get(key)
                .map_err(|e| self.error("reading staged records", e))?;
            self.pending.push(Staged {
                checkpoint: *checkpoint,
                key: Some(key.clone()),
                bytes,
            });
        }
        if !self.pending.is_empty() {
            tracing::info!(
                "{}: committing {} staged checkpoints the previous attempt did not",
                self.transactional_id,
                self.pending.len()
            );
            return self.commit_upto(restored_at);
        }
        if marker.is_some_and(|m| m > restored_at) {
            self.reset_marker(restored_at)?;
        }
        Ok(())
    }

    /// Sets the marker to `checkpoint` in a transaction of its own.
    fn reset_marker(&mut self, checkpoint: u64) -> Result<(), String> {
        let timeout = self.sink.connection.request_timeout;
        self.producer
            .begin_transaction()
            .map_err(|e| self.error("beginning a transaction", e))?;
        let result = self
            .producer
            .send_offsets_to_transaction(&self.marker_list(Some(checkpoint)), &self.group, timeout)
            .and_then(|()| self.producer.commit_transaction(timeout));
        result.map_err(|e| {
            let message = self.error("resetting the epoch marker", &e);
            self.abandon_transaction(&e);
            message
        })
    }

    /// Stages `records` as checkpoint `checkpoint`'s (durable in the store
    /// when `durable`).
    fn stage(&mut self, checkpoint: u64, records: Vec<u8>, durable: bool) -> Result<(), String> {
        let key = durable.then(|| staged_key(self.owner, checkpoint));
        if let Some(key) = &key {
            self.store.put(key, &records).map_err(|e| {
                self.error(
                    &format!("checkpoint {checkpoint} failed: staging records"),
                    e,
                )
            })?;
        }
        self.pending.push(Staged {
            checkpoint,
            key,
            bytes: records,
        });
        Ok(())
    }

    /// Why the next checkpoint must fail, if it must.
    fn unusable(&self) -> Option<String> {
        if let Some(broken) = &self.broken {
            return Some(broken.clone());
        }
        (self.failed_commits >= FAILED_COMMITS_MAX).then(|| {
            format!(
                "{} commits failed in a row, the last: {}",
                self.failed_commits,
                self.last_error.as_deref().unwrap_or("unknown")
            )
        })
    }

    /// Commits every staged checkpoint up to `checkpoint` in one
    /// transaction with the marker.
    fn commit_upto(&mut self, checkpoint: u64) -> Result<(), String> {
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        let ready: Vec<usize> = (0..self.pending.len())
            .filter(|&i| self.pending[i].checkpoint <= checkpoint)
            .collect();
        let Some(marker) = ready.iter().map(|&i| self.pending[i].checkpoint).max() else {
            return Ok(());
        };
        self.attempts += 1;
        match self.send_and_commit(&ready, marker) {
            Ok(()) => {
                self.failed_commits = 0;
                let committed: BTreeSet<usize> = ready.into_iter().collect();
                let mut index = 0;
                let mut done = Vec::new();
                self.pending.retain_mut(|staged| {
                    let keep = !committed.contains(&index);
                    index += 1;
                    if !keep {
                        done.extend(staged.key.take());
                    }
                    keep
                });
                for key in &done {
                    self.delete_staged(key);
                }
                Ok(())
            }
            Err(message) => {
                self.failed_commits += 1;
                self.last_error = Some(message.clone());
                Err(message)
            }
        }
    }

    fn send_and_commit(&mut self, ready: &[usize], marker: u64) -> Result<(), String> {
        let timeout = self.sink.connection.request_timeout;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let commit_tag = format!(
            "{}/{started}-{}-{}",
            self.transactional_id,
            std::process::id(),
            self.attempts
        );
        self.producer
            .begin_transaction()
            .map_err(|e| self.error("beginning a transaction", e))?;
        let sent = self.send_staged(ready, &commit_tag);
        let result = match sent {
            Err(message) => {
                // Not an rdkafka error: abort what was sent.
                let _ = self.producer.abort_transaction(timeout);
                return Err(message);
            }
            // The commit would flush too; flushed first, a kill before the
            // commit leaves the whole transaction at the brokers, open.
            Ok(()) => self
                .producer
                .flush(timeout)
                .and_then(|()| {
                    self.producer.send_offsets_to_transaction(
                        &self.marker_list(Some(marker)),
                        &self.group,
                        timeout,
                    )
                })
                .and_then(|()| {
                    crate::failpoint::reach("kafka-sink-before-commit", marker);
                    self.producer.commit_transaction(timeout)
                }),
        };
        match result {
            Ok(()) => {
                crate::failpoint::reach("kafka-sink-after-commit", marker);
                Ok(())
            }
            Err(e) => {
                let message = self.error(&format!("committing checkpoint {marker}"), &e);
                self.abandon_transaction(&e);
                Err(message)
            }
        }
    }

    /// Hands the staged records at `ready` to the producer.
    fn send_staged(&self, ready: &[usize], commit_tag: &str) -> Result<(), String> {
        let bound = self.sink.connection.request_timeout;
        for &i in ready {
            let staged = &self.pending[i];
            let what = staged
                .key
                .as_deref()
                .unwrap_or("records of the last interval");
            let records = read_staged(&staged.bytes)
                .map_err(|e| self.error(&format!("reading staged `{what}`"), e))?;
            let checkpoint = staged.checkpoint.to_string();
            for record in records {
                let headers = OwnedHeaders::new_with_capacity(2)
                    .insert(Header {
                        key: "sluice-checkpoint",
                        value: Some(checkpoint.as_str()),
                    })
                    .insert(Header {
                        key: "sluice-commit",
                        value: Some(commit_tag),
                    });
                let mut message = BaseRecord::to(&self.sink.topic)
                    .payload(record.value)
                    .headers(headers);
                if let Some(key) = record.key {
                    message = message.key(key);
                }
                if let Some(ts) = record.timestamp {
                    message = message.timestamp(ts);
                }
                send_waiting(&self.producer, message, bound)
                    .map_err(|e| self.error("sending staged records", e))?;
            }
            self.producer.poll(Duration::ZERO);
        }
        Ok(())
    }

    /// After a failed transactional call: aborts what can be aborted, or
    /// marks the producer unusable (fenced, or a fatal error).
    fn abandon_transaction(&mut self, error: &RdError) {
        let fatal = match error {
            RdError::Transaction(e) => e.is_fatal(),
            _ => false,
        };
        if fatal {
            self.broken = Some(self.error("the producer was fenced or failed for good", error));
            return;
        }
        if let Err(e) = self
            .producer
            .abort_transaction(self.sink.connection.request_timeout)
        {
            self.broken = Some(self.error("aborting a failed transaction", e));
        }
    }

    fn delete_staged(&self, key: &str) {
        if let Err(e) = self.store.delete(key) {
            // The marker covers it: the next recovery deletes it.
            tracing::warn!("{}: deleting staged {key}: {e}", self.transactional_id);
        }
    }
}

impl Committer for ShardTransactions {
    fn commit(&mut self, checkpoint: u64) -> Result<(), String> {
        self.commit_upto(checkpoint)
    }
}

/// A shard's writer: encodes records into the interval's buffer; stages
/// it at the barrier.
struct TransactionalWriter {
    transactions: Arc<Mutex<ShardTransactions>>,
    encoder: RecordEncoder,
    interval: StagedRecords,
    sink: KafkaSink,
    shard: u32,
    checkpointing: bool,
}

impl TransactionalWriter {
    fn transactions(&self) -> std::sync::MutexGuard<'_, ShardTransactions> {
        self.transactions.lock().expect("transactions lock")
    }
}

impl<T: Serialize + 'static> SinkWriter<T> for TransactionalWriter {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        for record in batch {
            let keyed = self
                .encoder
                .encode(&record.value)
                .map_err(|e| self.sink.error(self.shard, "writing", e))?;
            self.interval
                .push(StagedRecord {
                    timestamp: (record.ts != NO_TIMESTAMP).then_some(record.ts),
                    key: keyed.then_some(&self.encoder.key[..]),
                    value: &self.encoder.value,
                })
                .map_err(|e| self.sink.error(self.shard, "writing", e))?;
        }
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<(), String> {
        let records = (self.interval.records() > 0).then(|| self.interval.take());
        let mut transactions = self.transactions();
        if let Some(why) = transactions.unusable() {
            return Err(format!("checkpoint {checkpoint} failed: {why}"));
        }
        if let Some(records) = records {
            transactions.stage(checkpoint, records, true)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        if self.checkpointing {
            // The final checkpoint commits the rest.
            return SinkWriter::<T>::pre_commit(self, FINAL_CHECKPOINT);
        }
        let records = self.interval.take();
        let mut transactions = self.transactions();
        transactions.stage(FINAL_CHECKPOINT, records, false)?;
        transactions.commit_upto(FINAL_CHECKPOINT)
    }
}

/// Opens shard `shard`'s writer (of `shards`): recovers its id, and the ids
/// of shards beyond `shards` that map to it, from what the staging store
/// holds (see the module docs); registers its committer with a job that
/// takes checkpoints.
pub(super) fn open_writer<T: Serialize + 'static>(
    sink: &KafkaSink,
    shard: u32,
    shards: u32,
    context: Option<&SinkContext>,
) -> Result<Box<dyn SinkWriter<T>>, String> {
    let Delivery::ExactlyOnce(exactly) = &sink.delivery else {
        unreachable!("an exactly-once sink");
    };
    let store = exactly
        .staging
        .open()
        .map_err(|e| sink.error(shard, "opening the staging store", e))?;
    let listed = store
        .list("shard-")
        .map_err(|e| sink.error(shard, "listing staged records", e))?;
    let mut staged: Vec<(u32, u64, String)> = Vec::new();
    for key in listed {
        match parse_staged_key(&key) {
            Some((owner, checkpoint)) => staged.push((owner, checkpoint, key)),
            None => tracing::warn!(
                "ignoring `{key}` in {}: not staged records",
                store.describe()
            ),
        }
    }
    staged.sort();
    let staged_of = |owner: u32| -> Vec<(u64, String)> {
        staged
            .iter()
            .filter(|(o, _, _)| *o == owner)
            .map(|(_, checkpoint, key)| (*checkpoint, key.clone()))
            .collect()
    };
    let restored = context.and_then(|c| c.restored);
    let gone: BTreeSet<u32> = staged
        .iter()
        .map(|(owner, _, _)| *owner)
        .filter(|owner| *owner >= shards && owner % shards == shard)
        .collect();
    for owner in gone {
        let mut transactions = ShardTransactions::open(sink, owner, store.clone())?;
        transactions.recover(&staged_of(owner), restored)?;
    }
    let mut own = ShardTransactions::open(sink, shard, store)?;
    own.recover(&staged_of(shard), restored)?;
    let transactions = Arc::new(Mutex::new(own));
    let checkpointing = context.is_some_and(|c| c.checkpointing);
    if let Some(context) = context.filter(|c| c.checkpointing) {
        context
            .committers
            .lock()
            .expect("committers lock")
            .push(transactions.clone());
    }
    Ok(Box::new(TransactionalWriter {
        transactions,
        encoder: RecordEncoder::new(sink),
        interval: StagedRecords::default(),
        sink: sink.clone(),
        shard,
        checkpointing,
    }))
}
