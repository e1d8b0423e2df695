//! Prometheus metrics of every `sluice` process: `sluice run
//! --metrics-addr`, workers and the coordinator serve `GET /metrics` in the
//! Prometheus text format (OpenMetrics 1.0, which Prometheus scrapes).
//!
//! The figures are read when scraped, from counters the shards keep anyway
//! ([`sluice_engine::metrics`]): serving metrics adds nothing to the record
//! path. The HTTP endpoint runs on a thread of its own; it needs no secret,
//! and what it shows carries none (job names, operator kinds, counts, times).

pub(crate) mod coordinator_figures;
mod family;
mod job_figures;
mod server;

pub use coordinator_figures::CoordinatorFigures;
pub use job_figures::{ExportedJobs, JobFigures};
pub use server::{metrics_answer, serve, serve_with_board, MetricsEndpoint};

/// The registry of a process that runs jobs (`sluice run`, a worker): the
/// figures of `jobs` and of the Kafka sources' consumer lag.
pub fn jobs_registry(jobs: ExportedJobs) -> prometheus_client::registry::Registry {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(jobs));
    registry.register_collector(Box::new(crate::kafka::ConsumerLagFigures));
    registry
}
