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
//! Layers (each its own module): [`runtime`] (the only code that touches the
//! executor), [`exchange`] (batches between shards), [`operators`] (the fused
//! chain), [`window`], [`connectors`], and the API in [`stream`].

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
pub mod stream;
pub mod time;
pub mod timer;
pub mod watermark;
pub mod window;

pub use config::JobConfig;
pub use error::{EngineError, SourceError};
pub use push::{Control, Push};
pub use record::{Data, ExchangeData, Rec};
pub use stream::{KeyedStream, OutputTag, Stream, StreamEnv};
pub use watermark::WatermarkStrategy;

pub use sluice_state::{StableKey, StateBackendKind};
