//! Checkpoint storage: an object store (file system now, S3 later) and the
//! catalog of a job's checkpoints in it — shared files, manifests as commit
//! points, restore from the newest usable checkpoint, retention that never
//! deletes a file a kept checkpoint needs. Blocking I/O: used from an I/O
//! thread, off every shard's record path.

mod catalog;
mod manifest;
mod object_store;

pub use catalog::{CheckpointCatalog, Retained, Unusable};
pub use manifest::{FileInfo, Manifest};
pub use object_store::{check_key, FileStore, ObjectStore, StoreError};

#[cfg(test)]
mod tests;
