//! The local directory of one run of a job: RocksDB instances
//! (`shard-<i>/…`) and the files a restore downloads (`restore/…`).
//!
//! Created by the thread that runs the job, before the shards start, under
//! `state.directory` (default: the system's temporary directory) with a name
//! no other run uses; removed when the run ends, however it ends. Nothing in
//! it must outlive the run: checkpoints hold what must. A process killed
//! outright leaves its directory behind; the next run under the same base
//! removes directories of processes that no longer exist.

use std::path::{Path, PathBuf};

/// See the module docs.
pub struct LocalDirectory {
    path: PathBuf,
}

impl LocalDirectory {
    pub fn create(base: Option<&Path>) -> Result<Self, String> {
        let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        remove_abandoned(&base);
        let path = base.join(format!("sluice-state-{}-{stamp:x}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| {
            format!(
                "creating the local state directory {} (state.directory): {e}",
                path.display()
            )
        })?;
        Ok(LocalDirectory { path })
    }

    /// Where shard `shard` keeps its RocksDB instances.
    pub fn shard(&self, shard: u32) -> PathBuf {
        self.path.join(format!("shard-{shard}"))
    }

    /// Where a restore puts the files it downloads.
    pub fn restore(&self) -> PathBuf {
        self.path.join("restore")
    }
}

/// Removes `sluice-state-<pid>-…` directories under `base` whose process is gone.
fn remove_abandoned(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("sluice-state-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive && entry.path().is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for LocalDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
