//! `sluice run`: load a job file, build its job, run it, report.

use std::path::Path;

use sluice_engine::runtime::JobReport;
use sluice_engine::{EngineError, StreamEnv};

use crate::job_file::{JobFile, JobFileError};
use crate::jobs;

/// Why `sluice run` failed, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The job file is unusable: exit code 2, nothing started.
    #[error(transparent)]
    JobFile(#[from] JobFileError),
    /// The job failed while running: exit code 1.
    #[error("job failed: {0}")]
    Engine(#[from] EngineError),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::JobFile(_) => 2,
            RunError::Engine(_) => 1,
        }
    }
}

/// Validates `path` completely and builds its pipeline, without running it.
pub fn prepare(path: &Path) -> Result<(JobFile, StreamEnv), RunError> {
    let file = JobFile::load(path)?;
    let build = jobs::find(&file.job).ok_or_else(|| {
        let names: Vec<&str> = jobs::REGISTRY.iter().map(|(n, _, _)| *n).collect();
        file.invalid(
            "job",
            format!(
                "\"{}\" is not a registered job; expected one of: {}",
                file.job,
                names.join(", ")
            ),
        )
    })?;
    let env = StreamEnv::new(file.config.clone());
    build(&file, &env)?;
    Ok((file, env))
}

/// Runs the job file at `path` to completion.
pub fn run(path: &Path) -> Result<(JobFile, JobReport), RunError> {
    let (file, env) = prepare(path)?;
    let report = env.execute()?;
    Ok((file, report))
}

/// The one-paragraph summary printed when a job ends.
pub fn summary(file: &JobFile, report: &JobReport) -> String {
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    let t = &report.totals;
    format!(
        "job `{}` finished in {:.3} s on {} shard(s){}: {} records in ({:.0}/s, {:.0}/s per shard), {} records out, {} MiB exchanged in {} batches, {} late records dropped",
        file.job,
        secs,
        report.shards,
        if report.pinned { " pinned to CPUs" } else { "" },
        t.records_in,
        t.records_in as f64 / secs,
        t.records_in as f64 / secs / report.shards as f64,
        t.records_out,
        t.bytes_exchanged >> 20,
        t.batches_exchanged,
        t.late_records_dropped,
    )
}
