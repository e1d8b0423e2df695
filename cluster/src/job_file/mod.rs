//! Job files: TOML that names a registered job with its source and sink, or
//! carries a SQL script whose tables are its sources and sinks; and the
//! settings every job has.
//!
//! Parsing is strict: unknown fields, wrong types, missing files and impossible
//! values are errors that name the file, the field and what is expected, and
//! nothing starts. Relative paths are relative to the job file's directory.
//! Every field except `job` (or `sql`, `sql_file`) has a default; see
//! README.md for the reference.
//!
//! One file per section: [`exchange`], [`state`], [`checkpoint`], [`restart`],
//! [`cluster`],
//! [`source`] and [`sink`] (a file per connector below those two); this
//! module reads the top level and puts the sections together.

mod checkpoint;
mod cluster;
mod exchange;
mod fields;
mod restart;
mod sink;
mod source;
mod sql;
mod state;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sluice_engine::checkpoint::RestartStrategy;
use sluice_engine::config::{available_cpus, SHARDS_MAX};
use sluice_engine::connectors::RecordFormat;
use sluice_engine::JobConfig;
use sluice_state::{DEFAULT_MAX_PARALLELISM, MAX_PARALLELISM_LIMIT};

pub use cluster::ClusterSpec;
pub use sink::SinkSpec;
pub use source::{EventTimeSpec, KafkaSourceSpec, SourceSpec};
pub use sql::{SqlJob, SqlSink, SqlSource, TableConnector};

/// A job file that cannot be used; the message names file, field and expectation.
#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    #[error("{file}: cannot read the job file: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: PathBuf, message: String },
    /// An error in the job's SQL, at a line and column of `file`.
    #[error("{file}:{line}:{column}: {message}")]
    Sql {
        file: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{file}: field `{field}`: {message}")]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
}

/// The top level of a job file; sections are read by their own modules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobFile {
    /// A registered job's name; or `sql`, or `sql_file`.
    job: Option<String>,
    sql: Option<toml::Spanned<String>>,
    sql_file: Option<sql::SqlFiles>,
    shards: Option<u32>,
    max_parallelism: Option<u32>,
    #[serde(default)]
    progress: Option<bool>,
    #[serde(default)]
    exchange: exchange::RawExchange,
    #[serde(default)]
    state: state::RawState,
    checkpoint: Option<checkpoint::RawCheckpoint>,
    restart: Option<restart::RawRestart>,
    #[serde(default)]
    cluster: cluster::RawCluster,
    /// Read by `source` (its fields depend on its connector).
    source: Option<toml::Table>,
    /// Read by `sink` (its fields depend on its connector).
    sink: Option<toml::Table>,
    params: Option<toml::Table>,
}

/// What the job runs.
#[derive(Debug, Clone)]
pub enum Program {
    /// A job compiled into the binary, with the file's `[source]`, `[sink]`
    /// and `[params]`.
    Registered(Box<RegisteredIo>),
    /// A SQL script, with its tables' connectors.
    Sql(Box<SqlJob>),
}

/// A registered job's source, sink and parameters.
#[derive(Debug, Clone)]
pub struct RegisteredIo {
    pub source: SourceSpec,
    pub event_time: EventTimeSpec,
    pub sink: SinkSpec,
    pub params: toml::Table,
}

/// The file being read: for messages and relative paths.
pub(crate) struct FileContext {
    path: PathBuf,
    /// The file's directory.
    base: PathBuf,
}

impl FileContext {
    fn of(path: &Path) -> Self {
        FileContext {
            path: path.to_owned(),
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        }
    }

    /// An error about field `field` of this file.
    fn invalid(&self, field: &str, message: impl Into<String>) -> JobFileError {
        JobFileError::Invalid {
            file: self.path.clone(),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// `path` as given in this file: relative to the file's directory.
    fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base.join(path)
        }
    }
}

/// A parsed, validated job file.
#[derive(Debug, Clone)]
pub struct JobFile {
    pub path: PathBuf,
    /// The registered job's name; a SQL job's is its file's stem.
    pub job: String,
    pub config: JobConfig,
    /// How the job runs on a cluster (`sluice submit`).
    pub cluster: ClusterSpec,
    pub program: Program,
}

impl RegisteredIo {
    /// What the registered job of `file` (whose program this is) sees.
    pub fn view<'a>(&'a self, file: &'a JobFile) -> RegisteredJob<'a> {
        RegisteredJob {
            path: &file.path,
            config: &file.config,
            source: &self.source,
            event_time: &self.event_time,
            sink: &self.sink,
            params: &self.params,
        }
    }
}

/// What a registered job's builder sees of its job file.
pub struct RegisteredJob<'a> {
    pub path: &'a Path,
    pub config: &'a JobConfig,
    pub source: &'a SourceSpec,
    pub event_time: &'a EventTimeSpec,
    pub sink: &'a SinkSpec,
    params: &'a toml::Table,
}

impl RegisteredJob<'_> {
    /// An error about this file's field `field`.
    pub fn invalid(&self, field: &str, message: impl Into<String>) -> JobFileError {
        FileContext::of(self.path).invalid(field, message)
    }

    /// `path` as given in this file: relative paths are relative to the file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        FileContext::of(self.path).resolve(path)
    }

    /// The job's `[params]` as `T` (which should deny unknown fields).
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobFileError> {
        toml::Value::Table(self.params.clone())
            .try_into()
            .map_err(|e: toml::de::Error| JobFileError::Invalid {
                file: self.path.to_owned(),
                field: "params".into(),
                message: e.message().trim_end().to_owned(),
            })
    }
}

impl JobFile {
    pub fn load(path: &Path) -> Result<JobFile, JobFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| JobFileError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the job file at `path` (for relative paths and messages).
    pub fn parse(path: &Path, text: &str) -> Result<JobFile, JobFileError> {
        let raw: RawJobFile = toml::from_str(text).map_err(|e| JobFileError::Syntax {
            file: path.to_owned(),
            message: plain_type_names(e.to_string().trim_end()),
        })?;
        let file = FileContext::of(path);
        let invalid = |field: &str, message: String| file.invalid(field, message);
        let job = job_name(&file, &raw)?;

        let mut config = JobConfig::default();
        if let Some(shards) = raw.shards {
            if shards == 0 || shards > SHARDS_MAX {
                return Err(invalid(
                    "shards",
                    format!(
                        "is {shards}, expected 1..={SHARDS_MAX} (default: the {} available CPUs)",
                        available_cpus()
                    ),
                ));
            }
            config.shards = shards;
        }
        config.max_parallelism = raw
            .max_parallelism
            .unwrap_or(DEFAULT_MAX_PARALLELISM.max(config.shards));
        if config.max_parallelism < config.shards || config.max_parallelism > MAX_PARALLELISM_LIMIT
        {
            return Err(invalid(
                "max_parallelism",
                format!(
                    "is {}, expected at least `shards` ({}) and at most {MAX_PARALLELISM_LIMIT}",
                    config.max_parallelism, config.shards
                ),
            ));
        }
        raw.exchange.apply(&file, &mut config)?;
        raw.state.apply(&file, &mut config)?;
        if let Some(c) = &raw.checkpoint {
            config.checkpoint = Some(checkpoint::checkpoint_config(c, &file.base, &job, invalid)?);
        }
        if let Some(r) = &raw.restart {
            config.restart = restart::restart_strategy(r, invalid)?;
            if config.restart != RestartStrategy::None && config.checkpoint.is_none() {
                return Err(invalid(
                    "restart",
                    "restarts resume from checkpoints: add a [checkpoint] section".into(),
                ));
            }
        }
        if raw.progress.unwrap_or(true) {
            config.progress_interval = Some(Duration::from_secs(1));
        }
        let program = if raw.job.is_some() {
            let missing = |section: &str| {
                file.invalid(
                    section,
                    format!("is missing: a registered job reads its [{section}] section"),
                )
            };
            let source = raw.source.ok_or_else(|| missing("source"))?;
            let sink = raw.sink.ok_or_else(|| missing("sink"))?;
            let (source, event_time) = source::parse_source(&file, source, &mut config)?;
            let sink = sink::parse_sink(&file, sink, Some(&source), config.checkpoint.as_ref())?;
            Program::Registered(Box::new(RegisteredIo {
                source,
                event_time,
                sink,
                params: raw.params.unwrap_or_default(),
            }))
        } else {
            for (section, given) in [
                ("source", raw.source.is_some()),
                ("sink", raw.sink.is_some()),
                ("params", raw.params.is_some()),
            ] {
                if given {
                    return Err(invalid(
                        section,
                        "does not apply to a SQL job: its tables say where rows come from and go \
                         (CREATE TABLE … WITH ('connector' = …))"
                            .into(),
                    ));
                }
            }
            let (origin, script) = match (&raw.sql, &raw.sql_file) {
                (Some(sql), _) => (
                    sql::ScriptOrigin::inline(text, sql, path),
                    sql.get_ref().clone(),
                ),
                (None, Some(sql_files)) => sql::read_scripts(&file, sql_files)?,
                (None, None) => return Err(invalid("sql", "is missing".into())),
            };
            Program::Sql(Box::new(SqlJob::compile(
                &file,
                &origin,
                &script,
                &mut config,
            )?))
        };
        let cluster = raw.cluster.apply(&file, &config)?;
        config.validate().map_err(|m| invalid("job", m))?;
        Ok(JobFile {
            path: path.to_owned(),
            job,
            config,
            cluster,
            program,
        })
    }

    /// A SQL job of `script` with the settings `config`, without a job file
    /// (benchmarks); `label` stands for the file in messages.
    pub fn from_sql(
        label: &Path,
        script: &str,
        mut config: JobConfig,
    ) -> Result<JobFile, JobFileError> {
        let file = FileContext::of(label);
        let (origin, script) =
            sql::ScriptOrigin::files(vec![(label.to_owned(), script.to_owned())]);
        let sql = SqlJob::compile(&file, &origin, &script, &mut config)?;
        config.validate().map_err(|m| file.invalid("job", m))?;
        Ok(JobFile {
            path: label.to_owned(),
            job: stem(label),
            config,
            cluster: ClusterSpec::default(),
            program: Program::Sql(Box::new(sql)),
        })
    }

    /// An error about this file's field `field`.
    pub fn invalid(&self, field: &str, message: impl Into<String>) -> JobFileError {
        FileContext::of(&self.path).invalid(field, message)
    }

    /// `path` as given in this file: relative paths are relative to the file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        FileContext::of(&self.path).resolve(path)
    }
}

/// The job's name: the registered job's, else the SQL's file stem; exactly
/// one of `job`, `sql` and `sql_file` must be given.
fn job_name(file: &FileContext, raw: &RawJobFile) -> Result<String, JobFileError> {
    let given: Vec<&str> = [
        ("job", raw.job.is_some()),
        ("sql", raw.sql.is_some()),
        ("sql_file", raw.sql_file.is_some()),
    ]
    .iter()
    .filter(|(_, g)| *g)
    .map(|(name, _)| *name)
    .collect();
    match given.as_slice() {
        [] => Err(file.invalid(
            "job",
            "is missing: give `job` (a registered job's name), `sql` (a SQL script) or `sql_file`",
        )),
        [_] => Ok(match (&raw.job, &raw.sql_file) {
            (Some(job), _) => job.clone(),
            (None, Some(sql_files)) => stem(sql_files.last().unwrap_or(&file.path)),
            (None, None) => stem(&file.path),
        }),
        [first, second, ..] => {
            Err(file.invalid(second, format!("and `{first}` are alternatives: give one")))
        }
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sql".into())
}

/// Replaces Rust type names in serde's messages with words a user knows.
fn plain_type_names(message: &str) -> String {
    let mut out = message.to_owned();
    for (rust, plain) in [
        ("expected u8", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected i64", "expected an integer"),
        ("expected a boolean", "expected true or false"),
    ] {
        out = out.replace(rust, plain);
    }
    out
}

fn parse_format(value: &str) -> Result<RecordFormat, String> {
    match value {
        "jsonl" | "json" => Ok(RecordFormat::JsonLines),
        "csv" => Ok(RecordFormat::Csv),
        "text" => Ok(RecordFormat::Text),
        other => Err(format!(
            "is \"{other}\", expected \"jsonl\", \"csv\" or \"text\""
        )),
    }
}
