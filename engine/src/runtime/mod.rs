//! The shard runtime: starting executors and running a shard's tasks.
//!
//! [`execute`] creates the shard-to-shard channels (`sluice_network`'s
//! [`LocalMesh`](sluice_network::LocalMesh)), starts one glommio executor per
//! shard (pinned to CPU `i` when there are enough CPUs), and on each one builds
//! the pipeline from the plan ([`ShardBuilder`]), connects the channels and runs
//! the shard's tasks: one per source, two per incoming channel (read, process),
//! a flusher, a ticker and the snapshot steps. Operators see only
//! [`ShardBuilder`] and plain Rust traits. [`execute_part`] runs the shards a
//! [`JobPart`] places in this process, the others reached by links over TCP.
//! Besides this module, only the
//! exchange's outbox (its drain waits on a glommio semaphore and timer) and
//! `sluice_network`'s local channels touch glommio.

mod abort;
mod builder;
mod execute;
mod job_part;
mod local_directory;
mod progress;
mod source_task;

pub(crate) use abort::AbortSignal;
pub use builder::ShardBuilder;
pub(crate) use builder::{reachable_outboxes, RootBuilder, Tick};
pub use execute::{execute, execute_part, JobReport};
pub use job_part::{JobCancel, JobPart, PartCheckpoints, PartProgress, RemoteLink};
pub use progress::ProgressSample;
pub(crate) use source_task::{run_source, PartitionDiscovery, SourceCheckpointing, SourceTask};
