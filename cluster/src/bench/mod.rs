//! The benchmark harness behind `sluice bench`: Nexmark runs ([`nexmark`]),
//! the same queries on local worker processes against one process
//! ([`cluster`]), the Kafka connectors against librdkafka alone ([`kafka`]),
//! their latency measurement ([`latency_sink`]), suites that rewrite
//! `bench/RESULTS.md` ([`suite`]) and plots ([`plot`]).
//!
//! Runs on the thread that starts the job, like `sluice run`. It lives here,
//! in `cluster`, and not in the `bench` crate with the criterion benches and
//! peers, because it runs the jobs registered in this crate from job files
//! (`crate::jobs`, `crate::job_file`) and is a subcommand of the one binary
//! this crate builds: in `bench` it would need `bench` → `cluster` for the
//! jobs and `cluster` → `bench` for the subcommand, a cycle. The `bench`
//! crate holds what needs only the engine.

pub mod cluster;
pub mod kafka;
pub mod latency_sink;
pub mod nexmark;
pub mod nexmark_sql;
pub mod plot;
pub mod suite;
