//! Kafka in and out, through librdkafka (the `rdkafka` crate).
//!
//! - [`KafkaSource`]: a topic's partitions spread over the shards like any
//!   source's partitions (explicit assignment, no consumer-group
//!   rebalancing), offsets in checkpoints, partitions discovered while
//!   running, a bounded mode.
//! - [`KafkaSink`]: records to a topic with no guarantee, at least once
//!   (every record acknowledged before the checkpoint that covers it
//!   completes) or exactly once ([`exactly_once`]: Kafka transactions
//!   committed when checkpoints complete, their records staged with the
//!   checkpoint until then).
//! - [`admin`]: topics created and inspected (tests, `sluice nexmark
//!   generate --kafka`).
//!
//! librdkafka runs threads of its own; its calls can block. Shards only poll
//! without blocking (a consumer's queue, a producer's delivery reports), or
//! block with a bound where blocking is the point (a producer's full queue is
//! backpressure; the flush at a barrier is what at-least-once means). What
//! needs the broker's answer before records flow — metadata, offsets for a
//! start mode — is asked when the source is built and on the source's
//! discovery thread, never on a shard.
//!
//! It lives in the cluster crate, beside the job files that configure it,
//! so that the engine and its tests do not build or link librdkafka.

pub mod admin;
mod connection;
mod consumer_lag;
pub mod exactly_once;
mod payload;
mod sink;
mod source;
mod staged_records;
mod unpinned;

pub use connection::{KafkaConnection, KafkaError};
pub use consumer_lag::ConsumerLagFigures;
pub use exactly_once::ExactlyOnce;
pub use payload::PayloadFormat;
pub use sink::{Delivery, KafkaSink};
pub use source::{KafkaSource, KafkaSourceConfig, ParseValue, StartFrom, TopicSelection};
