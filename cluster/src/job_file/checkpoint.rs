//! `[checkpoint]` and `[checkpoint.s3]`: how often, how aligned, how
//! incremental, and where checkpoints are stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sluice_engine::checkpoint::{BarrierAlignment, CheckpointConfig, CheckpointTiming};
use sluice_state::checkpoint_store::{S3Settings, StorageLocation};

use super::JobFileError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheckpoint {
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

/// Checkpoint defaults: every 10 s, 10 min timeout, no pause, keep 3.
const CHECKPOINT_INTERVAL_MS_DEFAULT: u64 = 10_000;
const CHECKPOINT_TIMEOUT_MS_DEFAULT: u64 = 600_000;
const CHECKPOINT_RETAIN_DEFAULT: usize = 3;
/// Incremental checkpoints write everything at least this often.
const CHECKPOINT_FULL_EVERY_DEFAULT: u32 = 10;

/// The `[checkpoint]` section, validated.
pub(super) fn checkpoint_config(
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
