//! Job files: TOML that names a registered job, its sources, sinks and settings.
//!
//! Parsing is strict: unknown fields, wrong types, missing files and impossible
//! values are errors that name the file, the field and what is expected, and
//! nothing starts. Relative paths are relative to the job file's directory.
//! Every field except `job` has a default; see README.md for the reference.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sluice_bench::nexmark::NexmarkConfig;
use sluice_engine::checkpoint::{
    BarrierAlignment, CheckpointConfig, CheckpointTiming, RestartStrategy,
};
use sluice_engine::config::{
    available_cpus, BATCH_BYTES_LIMIT_MAX, SHARDS_MAX, SOURCE_BATCH_RECORDS_MAX,
};
use sluice_engine::connectors::{GeneratorSource, RecordFormat, SPLIT_BYTES_DEFAULT};
use sluice_engine::JobConfig;
use sluice_state::checkpoint_store::{S3Settings, StorageLocation};
use sluice_state::{StateBackendKind, DEFAULT_MAX_PARALLELISM, MAX_PARALLELISM_LIMIT};

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobFile {
    job: String,
    shards: Option<u32>,
    max_parallelism: Option<u32>,
    #[serde(default)]
    progress: Option<bool>,
    #[serde(default)]
    exchange: RawExchange,
    #[serde(default)]
    state: RawState,
    checkpoint: Option<RawCheckpoint>,
    restart: Option<RawRestart>,
    source: RawSource,
    sink: RawSink,
    #[serde(default)]
    params: toml::Table,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExchange {
    batch_bytes: Option<usize>,
    flush_timeout_ms: Option<u64>,
    channel_batches: Option<usize>,
    spin_before_park_us: Option<u64>,
    pin_cpus: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    backend: Option<String>,
    directory: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpoint {
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    min_pause_ms: Option<u64>,
    retain: Option<usize>,
    storage: Option<String>,
    mode: Option<String>,
    alignment_timeout_ms: Option<u64>,
    incremental: Option<bool>,
    full_every: Option<u32>,
    s3: Option<RawS3>,
}

/// `[checkpoint.s3]`: how to reach S3 storage (each unset field comes from
/// the standard AWS environment).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    path_style: Option<bool>,
}

impl std::fmt::Debug for RawS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("RawS3")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRestart {
    strategy: String,
    attempts: Option<u32>,
    delay_ms: Option<u64>,
    initial_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    connector: String,
    // file
    paths: Option<Vec<PathBuf>>,
    format: Option<String>,
    split_bytes: Option<u64>,
    // generator
    seed: Option<u64>,
    events: Option<u64>,
    keys: Option<u64>,
    partitions: Option<u32>,
    start_ts_ms: Option<i64>,
    events_per_second: Option<u64>,
    delayed_percent: Option<u8>,
    max_delay_ms: Option<i64>,
    rate: Option<u64>,
    // time
    time: Option<String>,
    out_of_orderness_ms: Option<i64>,
    idle_timeout_ms: Option<u64>,
    batch_records: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    connector: String,
    format: Option<String>,
    path: Option<PathBuf>,
}

/// Where records come from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// Nexmark events (persons, auctions, bids).
    Nexmark(NexmarkConfig),
    File {
        paths: Vec<PathBuf>,
        format: RecordFormat,
        split_bytes: u64,
    },
    Generator(GeneratorSource),
}

/// Time settings of the source.
#[derive(Debug, Clone)]
pub struct EventTimeSpec {
    /// Processing time: records stamped with the clock when read.
    pub processing_time: bool,
    pub out_of_orderness_ms: i64,
    pub idle_timeout: Option<Duration>,
}

impl EventTimeSpec {
    /// The watermark strategy the job file asks for: processing time, or event
    /// time trailing by `out_of_orderness_ms`; idle partitions after
    /// `idle_timeout` if given.
    pub fn strategy<T>(&self) -> sluice_engine::WatermarkStrategy<T> {
        let strategy = if self.processing_time {
            sluice_engine::WatermarkStrategy::processing_time()
        } else {
            sluice_engine::WatermarkStrategy::bounded_out_of_orderness(self.out_of_orderness_ms)
        };
        match self.idle_timeout {
            Some(t) => strategy.with_idleness(t),
            None => strategy,
        }
    }
}

/// Where records go.
#[derive(Debug, Clone)]
pub enum SinkSpec {
    Stdout {
        format: RecordFormat,
    },
    File {
        directory: PathBuf,
        format: RecordFormat,
    },
    Blackhole,
    /// Measures each result's latency (`sluice bench nexmark --rate`; job
    /// files cannot name it).
    Latency(crate::latency_sink::LatencySink),
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
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let invalid = |field: &str, message: String| JobFileError::Invalid {
            file: path.to_owned(),
            field: field.to_owned(),
            message,
        };

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
        let ex = &raw.exchange;
        if let Some(bytes) = ex.batch_bytes {
            if bytes == 0 || bytes > BATCH_BYTES_LIMIT_MAX {
                return Err(invalid(
                    "exchange.batch_bytes",
                    format!("is {bytes}, expected 1..={BATCH_BYTES_LIMIT_MAX}"),
                ));
            }
            config.batch_bytes_limit = bytes;
        }
        if let Some(ms) = ex.flush_timeout_ms {
            if ms > 60_000 {
                return Err(invalid(
                    "exchange.flush_timeout_ms",
                    format!("is {ms}, expected 0..=60000"),
                ));
            }
            config.flush_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = ex.channel_batches {
            if n == 0 || n > 4096 {
                return Err(invalid(
                    "exchange.channel_batches",
                    format!("is {n}, expected 1..=4096"),
                ));
            }
            config.channel_batches = n;
        }
        config.spin_before_park = ex.spin_before_park_us.map(Duration::from_micros);
        if let Some(pin) = ex.pin_cpus {
            config.pin_cpus = pin;
        }
        config.state_backend = match raw.state.backend.as_deref() {
            None | Some("memory") => StateBackendKind::Memory,
            Some("rocksdb") => StateBackendKind::RocksDb,
            Some(other) => {
                return Err(invalid(
                    "state.backend",
                    format!("is \"{other}\", expected \"memory\" or \"rocksdb\""),
                ))
            }
        };
        if let Some(directory) = &raw.state.directory {
            if directory.is_empty() {
                return Err(invalid(
                    "state.directory",
                    "is empty, expected a local directory".into(),
                ));
            }
            config.state_directory = Some(base.join(directory));
        }
        if let Some(c) = &raw.checkpoint {
            config.checkpoint = Some(checkpoint_config(c, &base, &raw.job, invalid)?);
        }
        if let Some(r) = &raw.restart {
            config.restart = restart_strategy(r, invalid)?;
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

        let s = &raw.source;
        if let Some(n) = s.batch_records {
            if n == 0 || n > SOURCE_BATCH_RECORDS_MAX {
                return Err(invalid(
                    "source.batch_records",
                    format!("is {n}, expected 1..={}", SOURCE_BATCH_RECORDS_MAX),
                ));
            }
            config.source_batch_records = n;
        }
        let only = |allowed: &[&str], connector: &str| -> Result<(), JobFileError> {
            let given: Vec<(&str, bool)> = vec![
                ("paths", s.paths.is_some()),
                ("format", s.format.is_some()),
                ("split_bytes", s.split_bytes.is_some()),
                ("seed", s.seed.is_some()),
                ("events", s.events.is_some()),
                ("keys", s.keys.is_some()),
                ("partitions", s.partitions.is_some()),
                ("start_ts_ms", s.start_ts_ms.is_some()),
                ("events_per_second", s.events_per_second.is_some()),
                ("delayed_percent", s.delayed_percent.is_some()),
                ("max_delay_ms", s.max_delay_ms.is_some()),
                ("rate", s.rate.is_some()),
            ];
            for (name, present) in given {
                if present && !allowed.contains(&name) {
                    return Err(invalid(
                        &format!("source.{name}"),
                        format!(
                            "does not apply to connector \"{connector}\" (its fields: {})",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            Ok(())
        };
        let source = match s.connector.as_str() {
            "file" => {
                only(&["paths", "format", "split_bytes"], "file")?;
                let paths = s.paths.clone().ok_or_else(|| {
                    invalid(
                        "source.paths",
                        "is missing: the file connector needs a list of files".into(),
                    )
                })?;
                if paths.is_empty() {
                    return Err(invalid(
                        "source.paths",
                        "is empty, expected at least one file".into(),
                    ));
                }
                let mut resolved = Vec::new();
                for (i, p) in paths.iter().enumerate() {
                    let full = if p.is_absolute() {
                        p.clone()
                    } else {
                        base.join(p)
                    };
                    match std::fs::metadata(&full) {
                        Ok(m) if m.is_file() => resolved.push(full),
                        Ok(_) => {
                            return Err(invalid(
                                &format!("source.paths[{i}]"),
                                format!("`{}` is not a file", full.display()),
                            ))
                        }
                        Err(e) => {
                            return Err(invalid(
                                &format!("source.paths[{i}]"),
                                format!("`{}`: {e}", full.display()),
                            ))
                        }
                    }
                }
                let format = parse_format(s.format.as_deref().unwrap_or("text"))
                    .map_err(|m| invalid("source.format", m))?;
                let split_bytes = s.split_bytes.unwrap_or(SPLIT_BYTES_DEFAULT);
                if split_bytes == 0 {
                    return Err(invalid(
                        "source.split_bytes",
                        "is 0, expected at least 1".into(),
                    ));
                }
                SourceSpec::File {
                    paths: resolved,
                    format,
                    split_bytes,
                }
            }
            "generator" => {
                only(
                    &[
                        "seed",
                        "events",
                        "keys",
                        "partitions",
                        "start_ts_ms",
                        "events_per_second",
                        "delayed_percent",
                        "max_delay_ms",
                        "rate",
                    ],
                    "generator",
                )?;
                let d = GeneratorSource::default();
                let g = GeneratorSource {
                    seed: s.seed.unwrap_or(d.seed),
                    events: s.events.or(d.events),
                    keys: s.keys.unwrap_or(d.keys),
                    partitions: s.partitions.unwrap_or(config.shards.max(d.partitions)),
                    start_ts_ms: s.start_ts_ms.unwrap_or(d.start_ts_ms),
                    events_per_second: s.events_per_second.unwrap_or(d.events_per_second),
                    delayed_percent: s.delayed_percent.unwrap_or(d.delayed_percent),
                    max_delay_ms: s.max_delay_ms.unwrap_or(d.max_delay_ms),
                    rate: s.rate,
                };
                if let Err(message) = g.validate() {
                    let field = message.split_whitespace().next().unwrap_or("").to_owned();
                    return Err(invalid(
                        &format!("source.{field}"),
                        message[field.len()..].trim().to_owned(),
                    ));
                }
                SourceSpec::Generator(g)
            }
            "nexmark" => {
                only(
                    &["seed", "events", "partitions", "events_per_second", "rate"],
                    "nexmark",
                )?;
                let d = NexmarkConfig::default();
                let n = NexmarkConfig {
                    seed: s.seed.unwrap_or(d.seed),
                    events: s.events.or(d.events),
                    partitions: s.partitions.unwrap_or(config.shards.max(d.partitions)),
                    first_event_rate: s.events_per_second.unwrap_or(d.first_event_rate),
                    rate: s.rate,
                    ..d
                };
                if let Err(message) = n.validate() {
                    return Err(invalid("source", message));
                }
                SourceSpec::Nexmark(n)
            }
            other => {
                return Err(invalid(
                    "source.connector",
                    format!("is \"{other}\", expected \"file\", \"generator\" or \"nexmark\""),
                ))
            }
        };
        let default_bound = match &source {
            SourceSpec::Generator(g) => g.max_delay_ms,
            SourceSpec::Nexmark(n) => n.occasional_delay_ms,
            SourceSpec::File { .. } => 0,
        };
        let out_of_orderness_ms = s.out_of_orderness_ms.unwrap_or(default_bound);
        if out_of_orderness_ms < 0 {
            return Err(invalid(
                "source.out_of_orderness_ms",
                format!("is {out_of_orderness_ms}, expected at least 0"),
            ));
        }
        let processing_time = match s.time.as_deref() {
            None | Some("event") => false,
            Some("processing") => true,
            Some(other) => {
                return Err(invalid(
                    "source.time",
                    format!("is \"{other}\", expected \"event\" or \"processing\""),
                ))
            }
        };
        let event_time = EventTimeSpec {
            processing_time,
            out_of_orderness_ms,
            idle_timeout: s.idle_timeout_ms.map(Duration::from_millis),
        };

        let k = &raw.sink;
        let sink = match k.connector.as_str() {
            "stdout" => {
                if k.path.is_some() {
                    return Err(invalid(
                        "sink.path",
                        "does not apply to connector \"stdout\"".into(),
                    ));
                }
                SinkSpec::Stdout {
                    format: parse_format(k.format.as_deref().unwrap_or("jsonl"))
                        .map_err(|m| invalid("sink.format", m))?,
                }
            }
            "file" => {
                let p = k.path.clone().ok_or_else(|| {
                    invalid(
                        "sink.path",
                        "is missing: the file sink needs an output directory".into(),
                    )
                })?;
                let directory = if p.is_absolute() { p } else { base.join(p) };
                if directory.is_file() {
                    return Err(invalid(
                        "sink.path",
                        format!("`{}` is a file, expected a directory", directory.display()),
                    ));
                }
                SinkSpec::File {
                    directory,
                    format: parse_format(k.format.as_deref().unwrap_or("jsonl"))
                        .map_err(|m| invalid("sink.format", m))?,
                }
            }
            "blackhole" => {
                if k.path.is_some() || k.format.is_some() {
                    return Err(invalid(
                        "sink",
                        "the blackhole sink takes no `path` or `format`".into(),
                    ));
                }
                SinkSpec::Blackhole
            }
            other => {
                return Err(invalid(
                    "sink.connector",
                    format!("is \"{other}\", expected \"stdout\", \"file\" or \"blackhole\""),
                ))
            }
        };
        if let SinkSpec::Stdout {
            format: RecordFormat::Text,
        }
        | SinkSpec::File {
            format: RecordFormat::Text,
            ..
        } = sink
        {
            return Err(invalid(
                "sink.format",
                "is \"text\", expected \"jsonl\" or \"csv\" for output".into(),
            ));
        }
        config.validate().map_err(|m| invalid("job", m))?;
        Ok(JobFile {
            path: path.to_owned(),
            job: raw.job,
            config,
            source,
            event_time,
            sink,
            params: raw.params,
        })
    }

    /// An error about this file's field `field`.
    pub fn invalid(&self, field: &str, message: impl Into<String>) -> JobFileError {
        JobFileError::Invalid {
            file: self.path.clone(),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// `path` as given in this file: relative paths are relative to the file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.path
                .parent()
                .map(|dir| dir.join(path))
                .unwrap_or_else(|| path.to_owned())
        }
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

/// Checkpoint defaults: every 10 s, 10 min timeout, no pause, keep 3.
const CHECKPOINT_INTERVAL_MS_DEFAULT: u64 = 10_000;
const CHECKPOINT_TIMEOUT_MS_DEFAULT: u64 = 600_000;
const CHECKPOINT_RETAIN_DEFAULT: usize = 3;
/// Incremental checkpoints write everything at least this often.
const CHECKPOINT_FULL_EVERY_DEFAULT: u32 = 10;

/// The `[checkpoint]` section, validated.
fn checkpoint_config(
    c: &RawCheckpoint,
    base: &Path,
    job: &str,
    invalid: impl Fn(&str, String) -> JobFileError,
) -> Result<CheckpointConfig, JobFileError> {
    let interval_ms = c.interval_ms.unwrap_or(CHECKPOINT_INTERVAL_MS_DEFAULT);
    if interval_ms == 0 {
        return Err(invalid(
            "checkpoint.interval_ms",
            "is 0, expected at least 1".into(),
        ));
    }
    let timeout_ms = c.timeout_ms.unwrap_or(CHECKPOINT_TIMEOUT_MS_DEFAULT);
    if timeout_ms == 0 {
        return Err(invalid(
            "checkpoint.timeout_ms",
            "is 0, expected at least 1".into(),
        ));
    }
    let retain = c.retain.unwrap_or(CHECKPOINT_RETAIN_DEFAULT);
    if retain == 0 {
        return Err(invalid(
            "checkpoint.retain",
            "is 0, expected at least 1 (the newest complete checkpoint is always kept)".into(),
        ));
    }
    let alignment = match (c.mode.as_deref(), c.alignment_timeout_ms) {
        (None | Some("aligned"), None) => BarrierAlignment::Aligned,
        (None | Some("aligned"), Some(ms)) => {
            BarrierAlignment::AlignedWithTimeout(Duration::from_millis(ms))
        }
        (Some("unaligned"), None) => BarrierAlignment::Unaligned,
        (Some("unaligned"), Some(_)) => {
            return Err(invalid(
                "checkpoint.alignment_timeout_ms",
                "applies to mode \"aligned\" (it switches to unaligned after the timeout)".into(),
            ))
        }
        (Some(other), _) => {
            return Err(invalid(
                "checkpoint.mode",
                format!("is \"{other}\", expected \"aligned\" or \"unaligned\""),
            ))
        }
    };
    let full_every = match (c.incremental.unwrap_or(true), c.full_every) {
        (false, Some(_)) => {
            return Err(invalid(
                "checkpoint.full_every",
                "applies only to incremental checkpoints (incremental = true)".into(),
            ))
        }
        (false, None) => None,
        (true, Some(0)) => {
            return Err(invalid(
                "checkpoint.full_every",
                "is 0, expected at least 1".into(),
            ))
        }
        (true, n) => Some(n.unwrap_or(CHECKPOINT_FULL_EVERY_DEFAULT)),
    };
    let storage = match c.storage.as_deref() {
        None => StorageLocation::Directory(base.join("checkpoints")),
        Some(url) if url.starts_with("s3://") => {
            let mut settings = S3Settings::from_url(url)
                .map_err(|e| invalid("checkpoint.storage", e))?;
            let s3 = c.s3.clone().unwrap_or_default();
            if let Some(endpoint) = &s3.endpoint {
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    return Err(invalid(
                        "checkpoint.s3.endpoint",
                        format!("is \"{endpoint}\", expected http://host:port or https://host"),
                    ));
                }
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                return Err(invalid(
                    "checkpoint.s3",
                    "gives one of access_key_id and secret_access_key: give both, or neither to use the AWS environment's".into(),
                ));
            }
            settings.endpoint = s3.endpoint;
            settings.region = s3.region;
            settings.access_key_id = s3.access_key_id;
            settings.secret_access_key = s3.secret_access_key;
            // S3-compatible servers usually need the bucket in the path.
            settings.path_style = s3.path_style.unwrap_or(settings.endpoint.is_some());
            StorageLocation::S3(settings)
        }
        Some(url) => match url.strip_prefix("file://") {
            Some(path) if !path.is_empty() => {
                let path = PathBuf::from(path);
                StorageLocation::Directory(if path.is_absolute() {
                    path
                } else {
                    base.join(path)
                })
            }
            _ => {
                return Err(invalid(
                    "checkpoint.storage",
                    format!("is \"{url}\", expected file:///path (or file://relative/path) or s3://bucket/prefix"),
                ))
            }
        },
    };
    if c.s3.is_some() && !matches!(storage, StorageLocation::S3(_)) {
        return Err(invalid(
            "checkpoint.s3",
            "applies to s3:// storage only".into(),
        ));
    }
    if let StorageLocation::Directory(directory) = &storage {
        if directory.is_file() {
            return Err(invalid(
                "checkpoint.storage",
                format!("`{}` is a file, expected a directory", directory.display()),
            ));
        }
    }
    Ok(CheckpointConfig {
        storage,
        timing: CheckpointTiming {
            interval_ms,
            timeout_ms,
            min_pause_ms: c.min_pause_ms.unwrap_or(0),
        },
        retain,
        restore: None,
        restore_storage: None,
        job_name: job.to_owned(),
        full_every,
        alignment,
    })
}

/// The `[restart]` section, validated.
fn restart_strategy(
    r: &RawRestart,
    invalid: impl Fn(&str, String) -> JobFileError,
) -> Result<RestartStrategy, JobFileError> {
    let not_for = |field: &str, present: bool| {
        if present {
            Err(invalid(
                &format!("restart.{field}"),
                format!("does not apply to strategy \"{}\"", r.strategy),
            ))
        } else {
            Ok(())
        }
    };
    let attempts = r.attempts.unwrap_or(3);
    Ok(match r.strategy.as_str() {
        "none" => {
            not_for("attempts", r.attempts.is_some())?;
            not_for("delay_ms", r.delay_ms.is_some())?;
            not_for("initial_delay_ms", r.initial_delay_ms.is_some())?;
            not_for("max_delay_ms", r.max_delay_ms.is_some())?;
            RestartStrategy::None
        }
        "fixed-delay" => {
            not_for("initial_delay_ms", r.initial_delay_ms.is_some())?;
            not_for("max_delay_ms", r.max_delay_ms.is_some())?;
            RestartStrategy::FixedDelay {
                attempts,
                delay: Duration::from_millis(r.delay_ms.unwrap_or(1_000)),
            }
        }
        "exponential-backoff" => {
            not_for("delay_ms", r.delay_ms.is_some())?;
            let initial = r.initial_delay_ms.unwrap_or(1_000);
            let max = r.max_delay_ms.unwrap_or(60_000);
            if max < initial {
                return Err(invalid(
                    "restart.max_delay_ms",
                    format!("is {max}, expected at least initial_delay_ms ({initial})"),
                ));
            }
            RestartStrategy::ExponentialBackoff {
                attempts,
                initial: Duration::from_millis(initial),
                max: Duration::from_millis(max),
            }
        }
        other => {
            return Err(invalid(
                "restart.strategy",
                format!(
                    "is \"{other}\", expected \"none\", \"fixed-delay\" or \"exponential-backoff\""
                ),
            ))
        }
    })
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
