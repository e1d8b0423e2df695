//! Runtime settings of one job: how many shards, how batches are cut.
//!
//! The job file (in `cluster`) is parsed and validated into this; the engine
//! re-checks the invariants with [`JobConfig::validate`] before starting anything.

use std::time::Duration;

use sluice_state::{StateBackendKind, DEFAULT_MAX_PARALLELISM, MAX_PARALLELISM_LIMIT};

/// Most shards one process runs.
pub const SHARDS_MAX: u32 = 1024;
/// Most records a source may read per batch.
pub const SOURCE_BATCH_RECORDS_MAX: usize = sluice_network::BATCH_RECORDS_MAX;
/// Largest batch byte limit.
pub const BATCH_BYTES_LIMIT_MAX: usize = 64 << 20;
/// Most credits (batches in flight) one shard-to-shard channel may have.
pub const CHANNEL_BATCHES_MAX: usize = 4096;

#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Number of shards (executors); defaults to the available CPUs.
    pub shards: u32,
    /// Number of key groups.
    pub max_parallelism: u32,
    /// A batch bound for another shard is sent once it holds this many bytes.
    pub batch_bytes_limit: usize,
    /// ... or once its first record has waited this long. Zero: at the end of
    /// every input batch (lowest latency).
    pub flush_timeout: Duration,
    /// Capacity, in batches, of each shard-to-shard channel (a channel to a
    /// shard of another worker: its exclusive credits).
    pub channel_batches: usize,
    /// Floating credits, in batches, of each link from a shard of another
    /// worker, shared by the link's channels: a busy channel whose sender
    /// announces a backlog gets them on top of its own.
    pub link_floating_batches: usize,
    /// Records a source reads per batch.
    pub source_batch_records: usize,
    /// Pin shard `i` to CPU `i` when there are at least as many CPUs as shards.
    pub pin_cpus: bool,
    /// Busy-poll this long before parking an idle executor (lower latency, burns
    /// a core). Off by default.
    pub spin_before_park: Option<Duration>,
    pub state_backend: StateBackendKind,
    /// Where shards keep state on local disk (RocksDB) and a restore stages
    /// downloaded files: a directory of its own per run is made under it and
    /// removed at the end. Default: the system's temporary directory.
    pub state_directory: Option<std::path::PathBuf>,
    /// Print progress to stderr every this often (None: quiet).
    pub progress_interval: Option<Duration>,
    /// How many records the sources will read, when known: progress is then
    /// drawn as a bar on a terminal.
    pub expected_records_in: Option<u64>,
    /// Checkpoints, if the job takes them.
    pub checkpoint: Option<crate::checkpoint::CheckpointConfig>,
    /// What happens when a checkpointed job fails while running.
    pub restart: crate::checkpoint::RestartStrategy,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            shards: available_cpus(),
            max_parallelism: DEFAULT_MAX_PARALLELISM,
            batch_bytes_limit: 32 * 1024,
            flush_timeout: Duration::from_millis(5),
            channel_batches: 16,
            link_floating_batches: 16,
            source_batch_records: 1024,
            pin_cpus: true,
            spin_before_park: None,
            state_backend: StateBackendKind::Memory,
            state_directory: None,
            progress_interval: None,
            expected_records_in: None,
            checkpoint: None,
            restart: Default::default(),
        }
    }
}

/// The CPUs this process may run on.
pub fn available_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// The ids of the CPUs this process may run on (its affinity mask, from
/// `Cpus_allowed_list` in `/proc/self/status`), in increasing order; shard `i`
/// is pinned to the `i`-th. Falls back to `0..available_cpus()`.
pub fn allowed_cpu_ids() -> Vec<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let list = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            parse_cpu_list(list.trim())
        })
        .unwrap_or_else(|| (0..available_cpus() as usize).collect())
}

/// Parses a kernel CPU list such as `0-3,8,10-11`.
fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                cpus.extend(a.trim().parse::<usize>().ok()?..=b.trim().parse::<usize>().ok()?)
            }
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

impl JobConfig {
    /// Checks the invariants; the message names the setting and what is expected.
    pub fn validate(&self) -> Result<(), String> {
        if self.shards == 0 || self.shards > SHARDS_MAX {
            return Err(format!(
                "shards is {}, expected 1..={SHARDS_MAX}",
                self.shards
            ));
        }
        if self.max_parallelism < self.shards || self.max_parallelism > MAX_PARALLELISM_LIMIT {
            return Err(format!(
                "max_parallelism is {}, expected at least shards ({}) and at most {MAX_PARALLELISM_LIMIT}",
                self.max_parallelism, self.shards
            ));
        }
        if self.batch_bytes_limit == 0 || self.batch_bytes_limit > BATCH_BYTES_LIMIT_MAX {
            return Err(format!(
                "batch_bytes is {}, expected 1..={BATCH_BYTES_LIMIT_MAX}",
                self.batch_bytes_limit
            ));
        }
        if self.channel_batches == 0 || self.channel_batches > CHANNEL_BATCHES_MAX {
            return Err(format!(
                "channel_batches is {}, expected 1..={CHANNEL_BATCHES_MAX}",
                self.channel_batches
            ));
        }
        if self.link_floating_batches > CHANNEL_BATCHES_MAX {
            return Err(format!(
                "floating_batches is {}, expected 0..={CHANNEL_BATCHES_MAX}",
                self.link_floating_batches
            ));
        }
        if self.source_batch_records == 0
            || self.source_batch_records > sluice_network::BATCH_RECORDS_MAX
        {
            return Err(format!(
                "source batch_records is {}, expected 1..={}",
                self.source_batch_records,
                sluice_network::BATCH_RECORDS_MAX
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(
            parse_cpu_list("0-2,8,10-11"),
            Some(vec![0, 1, 2, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(parse_cpu_list(""), None);
    }
}
