//! The `sluice` command line and what it needs: job files and the jobs
//! registered in the binary.
//!
//! This is where production parts are wired together: a job file
//! ([`job_file::JobFile`]) is parsed and validated completely before anything
//! starts, then the registered job it names ([`jobs`]) builds its pipeline on a
//! [`StreamEnv`](sluice_engine::StreamEnv) and runs it — in this process, or
//! on a cluster: a [`coordinator`] places it on [`worker`]s, which talk over
//! the [`control`] plane; the CLI reaches the coordinator's HTTP API through
//! [`client`].

pub mod bench;
pub mod client;
pub mod control;
pub mod coordinator;
pub mod dashboard;
pub mod failpoint;
pub mod job_file;
pub mod jobs;
pub mod kafka;
pub mod logging;
pub mod metrics;
pub mod nexmark_generate;
pub mod run;
pub mod worker;
