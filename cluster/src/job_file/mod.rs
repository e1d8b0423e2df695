//! Job files: TOML that names a registered job, its sources, sinks and settings.
//!
//! Parsing is strict: unknown fields, wrong types, missing files and impossible
//! values are errors that name the file, the field and what is expected, and
//! nothing starts. Relative paths are relative to the job file's directory.
//! Every field except `job` has a default; see README.md for the reference.
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
    job: String,
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
    source: toml::Table,
    /// Read by `sink` (its fields depend on its connector).
    sink: toml::Table,
    #[serde(default)]
    params: toml::Table,
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
    pub job: String,
    pub config: JobConfig,
    pub source: SourceSpec,
    pub event_time: EventTimeSpec,
    pub sink: SinkSpec,
    /// How the job runs on a cluster (`sluice submit`).
    pub cluster: ClusterSpec,
    pub params: toml::Table,
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
            config.checkpoint = Some(checkpoint::checkpoint_config(
                c, &file.base, &raw.job, invalid,
            )?);
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
        let (source, event_time) = source::parse_source(&file, raw.source, &mut config)?;
        let sink = sink::parse_sink(&file, raw.sink, &source, config.checkpoint.as_ref())?;
        let cluster = raw.cluster.apply(&file, &config)?;
        config.validate().map_err(|m| invalid("job", m))?;
        Ok(JobFile {
            path: path.to_owned(),
            job: raw.job,
            config,
            source,
            event_time,
            sink,
            cluster,
            params: raw.params,
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

    /// The job's `[params]` as `T` (which should deny unknown fields).
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobFileError> {
        toml::Value::Table(self.params.clone())
            .try_into()
            .map_err(|e: toml::de::Error| JobFileError::Invalid {
                file: self.path.clone(),
                field: "params".into(),
                message: e.message().trim_end().to_owned(),
            })
    }
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
