//! The shard runtime: the only module that knows the executor (glommio).
//!
//! [`execute`] creates the shard-to-shard channels, starts one executor per shard
//! (pinned to CPU `i` when there are enough CPUs), and on each one builds the
//! pipeline from the plan ([`ShardBuilder`]), connects the channels and runs the
//! shard's tasks: one per source, one per incoming channel, and a flusher. Every
//! other module sees only [`ShardBuilder`] and plain Rust traits, so the executor
//! can be replaced without touching operators.

mod abort;
mod builder;
mod channels;
mod execute;
mod local_directory;
mod progress;
mod source_task;

pub(crate) use abort::AbortSignal;
pub use builder::ShardBuilder;
pub(crate) use builder::{reachable_outboxes, RootBuilder, Tick};
pub use execute::{execute, JobReport};
pub use progress::ProgressSample;
pub(crate) use source_task::{run_source, SourceCheckpointing, SourceTask};
