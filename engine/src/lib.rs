//! The Sluice engine: shards, the dataflow API, operators, event time, windows and
//! connectors.
//!
//! A job is described once with the [`StreamEnv`] API (sources, transformations,
//! keyed state, windows, sinks). [`StreamEnv::execute`] starts one shard per core;
//! every shard builds its own instance of the whole pipeline on its own thread
//! and runs it for its partitions of the sources and its key groups. Records that
//! change shard (after `key_by`, `rebalance`, `broadcast`) cross in rkyv batches;
//! everything between two exchanges runs fused, batch at a time, on one core.
//!
//! Layers (each its own module): [`runtime`] (the executors and a shard's
//! tasks), [`exchange`] (batches between shards, over `sluice_network`'s
//! channels), [`operators`] (the fused chain), [`window`], [`checkpoint`],
//! [`connectors`], and the API in [`stream`].
//!
//! A job, end to end — a rolling count per key over generated events, on two
//! shards:
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use sluice_engine::connectors::{CollectSink, GeneratorSource};
//! use sluice_engine::{JobConfig, StreamEnv, WatermarkStrategy};
//!
//! let env = StreamEnv::new(JobConfig {
//!     shards: 2,
//!     ..JobConfig::default()
//! });
//! let events = GeneratorSource {
//!     events: Some(10_000),
//!     keys: 10,
//!     ..GeneratorSource::default()
//! };
//! let (sink, collected) = CollectSink::new();
//! env.source(events, WatermarkStrategy::bounded_out_of_orderness(500))
//!     .map(|event| (event.key, 1u64))
//!     .key_by(|(key, _): &(u64, u64)| *key)
//!     .reduce(|(key, a), (_, b)| (*key, a + b))
//!     .sink(sink);
//! let report = env.execute().expect("the job runs to its end");
//! assert_eq!(report.shards, 2);
//!
//! // Every event counted once: the last count of each key adds up to all.
//! let mut counts = BTreeMap::new();
//! for record in collected.lock().unwrap().iter() {
//!     let (key, count) = record.value;
//!     let latest = counts.entry(key).or_insert(0);
//!     *latest = count.max(*latest);
//! }
//! assert_eq!(counts.len(), 10);
//! assert_eq!(counts.values().sum::<u64>(), 10_000);
//! ```

pub mod checkpoint;
pub mod config;
pub mod connectors;
pub mod error;
pub mod exchange;
pub mod keyed_state;
pub mod metrics;
pub mod operators;
pub mod push;
pub mod record;
pub mod runtime;
pub mod shared_str;
pub mod sql;
pub mod stream;
pub mod time;
pub mod timer;
pub mod watermark;
pub mod window;

pub use config::JobConfig;
pub use error::{EngineError, SourceError};
pub use push::{Control, Push};
pub use record::{Data, ExchangeData, Rec};
pub use shared_str::SharedStr;
pub use stream::{KeyedStream, OutputTag, Stream, StreamEnv};
pub use watermark::WatermarkStrategy;

pub use sluice_state::{StableKey, StateBackendKind};
