//! `sluice run`: load a job file, build its job, run it, report.

use std::path::{Path, PathBuf};

use sluice_engine::checkpoint::{RestoreFrom, StorageLocation};

use sluice_engine::runtime::JobReport;
use sluice_engine::{EngineError, StreamEnv};

use crate::job_file::{JobFile, JobFileError, Program};
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
    /// A savepoint asked of a running job was not taken (the job goes on):
    /// exit code 1.
    #[error("savepoint failed: {0}")]
    Savepoint(String),
    /// The metrics endpoint asked for cannot be served (nothing started):
    /// exit code 1.
    #[error("{0}")]
    Metrics(String),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::JobFile(_) => 2,
            RunError::Engine(_) | RunError::Savepoint(_) | RunError::Metrics(_) => 1,
        }
    }
}

/// What `--restore` names: `latest`, a checkpoint id, a checkpoint's
/// location (`<storage>/checkpoints/<id>`, a path or an `s3://` URL) or its
/// `MANIFEST`, or a savepoint (`…/savepoint-<id>`); with the storage to read
/// it from, if not the job's own.
pub fn parse_restore(
    file: &JobFile,
    given: &str,
) -> Result<(RestoreFrom, Option<StorageLocation>), JobFileError> {
    if given == "latest" {
        return Ok((RestoreFrom::Latest, None));
    }
    if let Ok(id) = given.parse::<u64>() {
        return Ok((RestoreFrom::Checkpoint(id), None));
    }
    let like = (file.config.checkpoint.as_ref())
        .map(|c| c.storage.clone())
        .unwrap_or(StorageLocation::Directory(PathBuf::new()));
    let bad = |why: String| file.invalid("--restore", why);
    let trimmed = given.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/MANIFEST").unwrap_or(trimmed);
    // `<storage>/checkpoints/<id>`: that checkpoint of that storage.
    let parts: Vec<&str> = trimmed.rsplitn(3, '/').collect();
    if let [id, "checkpoints", ..] = parts[..] {
        let root = parts.get(2).copied().unwrap_or(".");
        if let Ok(id) = id.parse::<u64>() {
            let root = StorageLocation::resolve(root, &like).map_err(bad)?;
            return Ok((RestoreFrom::Checkpoint(id), Some(root)));
        }
    }
    let location = StorageLocation::resolve(trimmed, &like).map_err(bad)?;
    match &location {
        StorageLocation::Directory(path) if !path.join("checkpoints").is_dir() => Err(bad(format!(
            "`{given}` is not `latest`, a checkpoint id, a savepoint, or a location like <storage>/checkpoints/<id>"
        ))),
        // A savepoint (or another job's storage): its newest checkpoint.
        _ => Ok((RestoreFrom::Latest, Some(location))),
    }
}

/// Validates `path` completely and builds its pipeline, without running it.
pub fn prepare(path: &Path) -> Result<(JobFile, StreamEnv), RunError> {
    prepare_restoring(path, None)
}

/// Like [`prepare`], resuming from the checkpoint `restore` names.
pub fn prepare_restoring(
    path: &Path,
    restore: Option<&str>,
) -> Result<(JobFile, StreamEnv), RunError> {
    let mut file = JobFile::load(path)?;
    if let Some(given) = restore {
        apply_restore(&mut file, given)?;
    }
    let env = build_job(&file)?;
    Ok((file, env))
}

/// Makes `file` resume from what `--restore given` names.
pub fn apply_restore(file: &mut JobFile, given: &str) -> Result<(), JobFileError> {
    let (from, root) = parse_restore(file, given)?;
    let Some(checkpoint) = file.config.checkpoint.as_mut() else {
        return Err(file.invalid(
            "checkpoint",
            "is missing: `--restore` needs the job's [checkpoint] section",
        ));
    };
    checkpoint.restore = Some(from);
    checkpoint.restore_storage = root;
    Ok(())
}

/// Builds the job of `file` (a registered job or SQL) on a new environment
/// with the file's settings.
pub fn build_job(file: &JobFile) -> Result<StreamEnv, JobFileError> {
    let env = StreamEnv::new(file.config.clone());
    build_on(file, &env)?;
    Ok(env)
}

/// Builds the job of `file` on `env`.
pub fn build_on(file: &JobFile, env: &StreamEnv) -> Result<(), JobFileError> {
    let io = match &file.program {
        Program::Registered(io) => io,
        Program::Sql(sql) => return jobs::sql::build(sql, &file.path, env),
    };
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
    build(&io.view(file), env)
}

/// `sluice savepoint`: asks the job running with the job file at `path` for
/// a savepoint in `target` (a path or an `s3://` URL; default: the
/// checkpoint storage's `savepoints`), and to stop, with `stop`; returns
/// where the savepoint is.
pub fn savepoint(
    path: &Path,
    stop: bool,
    target: Option<&str>,
    timeout: std::time::Duration,
) -> Result<String, RunError> {
    let file = JobFile::load(path)?;
    let Some(checkpoint) = &file.config.checkpoint else {
        return Err(file
            .invalid(
                "checkpoint",
                "is missing: savepoints are taken through the job's checkpoint storage",
            )
            .into());
    };
    let target = match target {
        None => checkpoint.storage.join("savepoints"),
        Some(text) => match StorageLocation::resolve(text, &checkpoint.storage) {
            Ok(StorageLocation::Directory(dir)) => {
                StorageLocation::Directory(std::path::absolute(&dir).unwrap_or(dir))
            }
            Ok(location) => location,
            Err(e) => return Err(file.invalid("--dir", e).into()),
        },
    };
    sluice_engine::checkpoint::savepoint::request_savepoint(
        &checkpoint.storage,
        &target,
        stop,
        timeout,
    )
    .map_err(RunError::Savepoint)
}

/// What `sluice explain` prints for the job file at `path`.
pub fn explain(path: &Path) -> Result<String, RunError> {
    let file = JobFile::load(path)?;
    let settings = format!(
        "job `{}` on {} shard(s), {:?} state backend, checkpoints {}\n",
        file.job,
        file.config.shards,
        file.config.state_backend,
        match &file.config.checkpoint {
            Some(c) => format!("every {} ms", c.timing.interval_ms),
            None => "off".into(),
        }
    );
    Ok(match &file.program {
        Program::Sql(sql) => {
            let mut text = settings + &sql.program.explain();
            for explained in &sql.program.explains {
                text.push_str(explained);
            }
            text
        }
        Program::Registered(io) => format!(
            "{settings}registered job `{}` (built in Rust): reads {:?}, writes {:?}\n",
            file.job, io.source, io.sink
        ),
    })
}

/// Runs the job file at `path` to completion (resuming from `restore`, if
/// given), serving its metrics at `metrics_address` and its dashboard (and
/// metrics) at `ui_address`, if given.
pub fn run(
    path: &Path,
    restore: Option<&str>,
    metrics_address: Option<std::net::SocketAddr>,
    ui_address: Option<std::net::SocketAddr>,
) -> Result<(JobFile, JobReport), RunError> {
    let (file, env) = prepare_restoring(path, restore)?;
    let registry = || {
        let exported = crate::metrics::ExportedJobs::default();
        exported.add(crate::metrics::JobFigures {
            labels: vec![("job".into(), file.job.clone())],
            metrics: env.metrics(),
        });
        crate::metrics::jobs_registry(exported)
    };
    if let Some(address) = metrics_address {
        let endpoint = crate::metrics::serve(address, registry()).map_err(RunError::Metrics)?;
        eprintln!("metrics at http://{}/metrics", endpoint.address);
    }
    if let Some(address) = ui_address {
        let board = crate::dashboard::local::LocalBoard::start(file.job.clone(), env.metrics())
            .map_err(RunError::Metrics)?;
        let endpoint = crate::metrics::serve_with_board(address, registry(), Some(board))
            .map_err(RunError::Metrics)?;
        eprintln!("dashboard at http://{}/ui/", endpoint.address);
    }
    if let Program::Sql(sql) = &file.program {
        // A script's EXPLAIN statements print their plans; its INSERTs run.
        for explained in &sql.program.explains {
            print!("{explained}");
        }
    }
    let span = tracing::info_span!("job", job = %file.job);
    let report = span.in_scope(|| env.execute())?;
    Ok((file, report))
}

/// The one-paragraph summary printed when a job ends.
pub fn summary(file: &JobFile, report: &JobReport) -> String {
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    let t = &report.totals;
    let stopped = report
        .stopped_with
        .as_ref()
        .map(|location| format!(" (stopped with savepoint {location})"))
        .unwrap_or_default();
    let restarts = match report.restarts {
        0 => String::new(),
        n => format!(" after {n} restart(s)"),
    };
    format!(
        "job `{}`{stopped} finished{restarts} in {:.3} s on {} shard(s){}: {} records in ({:.0}/s, {:.0}/s per shard), {} records out, {} MiB exchanged in {} batches, {} late records dropped",
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
