//! `[cluster]`: how a job runs on a cluster (`sluice submit`); `sluice run`
//! ignores it.
//!
//! ```toml
//! [cluster]
//! shards = 6   # wait for 6 free shards; default: every free shard
//! ```

use serde::Deserialize;
use sluice_engine::JobConfig;

use super::{FileContext, JobFileError};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    shards: Option<u32>,
}

/// The `[cluster]` section, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The shards the job waits for; `None`: every free shard when placed.
    pub shards: Option<u32>,
}

impl RawCluster {
    pub(super) fn apply(
        &self,
        file: &FileContext,
        config: &JobConfig,
    ) -> Result<ClusterSpec, JobFileError> {
        if let Some(shards) = self.shards {
            if shards == 0 || shards > config.max_parallelism {
                return Err(file.invalid(
                    "cluster.shards",
                    format!(
                        "is {shards}, expected 1..={} (the job's max_parallelism)",
                        config.max_parallelism
                    ),
                ));
            }
        }
        Ok(ClusterSpec {
            shards: self.shards,
        })
    }
}
