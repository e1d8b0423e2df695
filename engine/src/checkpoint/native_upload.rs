//! Uploading a shard's RocksDB parts of a checkpoint.
//!
//! Runs on the checkpoint driver's thread. A part is a local directory of
//! hard links that RocksDB wrote at the barrier. Each SST file is uploaded
//! once per instance and referred to by every later checkpoint until
//! retention deletes it ([`UploadedFiles`]); the small metadata files are
//! uploaded with every checkpoint; files the instance inherited from the
//! checkpoint it was restored from are referred to, not uploaded again.
//! Invariant: a part's local directory is removed once it was handled,
//! uploaded or not.

use std::collections::BTreeMap;

use sluice_state::checkpoint_store::FileInfo;
use sluice_state::rocks_backend::{native::is_sst, NativeHandle, NativePart};

use super::{CheckpointError, CheckpointId};

/// SST files the storage holds (shared name → what the manifest records).
pub(super) type UploadedFiles = BTreeMap<String, FileInfo>;

/// What uploading a shard's parts gave.
pub(super) struct NativeUpload {
    /// One per instance, for the manifest.
    pub handles: Vec<NativeHandle>,
    /// Every shared file the parts consist of.
    pub files: Vec<(String, FileInfo)>,
    /// Bytes uploaded now.
    pub bytes: u64,
}

/// Uploads the files of `parts` the storage does not hold yet with `write`
/// (name, bytes), noting new SST files in `uploaded`; then removes the
/// parts' local directories.
pub(super) fn upload_native(
    checkpoint: CheckpointId,
    parts: Vec<NativePart>,
    uploaded: &mut UploadedFiles,
    mut write: impl FnMut(&str, &[u8]) -> Result<FileInfo, CheckpointError>,
) -> Result<NativeUpload, CheckpointError> {
    let mut upload = || {
        let mut result = NativeUpload {
            handles: Vec::new(),
            files: Vec::new(),
            bytes: 0,
        };
        for part in &parts {
            let mut handle = NativeHandle {
                node: part.node,
                instance: part.instance.clone(),
                groups: [part.groups.start, part.groups.end],
                files: BTreeMap::new(),
            };
            for file in &part.files {
                let (shared, info) = match &file.inherited {
                    Some(inherited) => (inherited.name.clone(), inherited.info.clone()),
                    None => {
                        let shared = part.shared_name(checkpoint, &file.name);
                        match uploaded.get(&shared) {
                            Some(info) => (shared, info.clone()),
                            None => {
                                let path = part.directory.join(&file.name);
                                let bytes = std::fs::read(&path).map_err(|source| {
                                    CheckpointError::LocalFile {
                                        what: "reading",
                                        path: path.clone(),
                                        source,
                                    }
                                })?;
                                result.bytes += bytes.len() as u64;
                                let info = write(&shared, &bytes)?;
                                if is_sst(&file.name) {
                                    uploaded.insert(shared.clone(), info.clone());
                                }
                                (shared, info)
                            }
                        }
                    }
                };
                handle.files.insert(file.name.clone(), shared.clone());
                result.files.push((shared, info));
            }
            result.handles.push(handle);
        }
        Ok(result)
    };
    let result = upload();
    for part in &parts {
        if let Err(e) = std::fs::remove_dir_all(&part.directory) {
            // Disk space until the job's local directory is cleared, no more.
            tracing::warn!(
                "removing the uploaded RocksDB part {}: {e}",
                part.directory.display()
            );
        }
    }
    result
}
