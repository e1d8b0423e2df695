//! Prometheus metrics of every `sluice` process: `sluice run
//! --metrics-addr`, workers and the coordinator serve `GET /metrics` in the
//! Prometheus text format (OpenMetrics 1.0, which Prometheus scrapes).
//!
//! The figures are read when scraped, from counters the shards keep anyway
//! ([`sluice_engine::metrics`]): serving metrics adds nothing to the record
//! path. The HTTP endpoint runs on a thread of its own; it needs no secret,
//! and what it shows carries none (job names, operator kinds, counts, times).

pub(crate) mod coordinator_figures;
mod job_figures;
mod server;

pub use coordinator_figures::CoordinatorFigures;
pub use job_figures::{ExportedJobs, JobFigures};
pub use server::{metrics_answer, serve, MetricsEndpoint};
