//! Checkpoint storage: an object store (a directory or S3) and the
//! catalog of a job's checkpoints in it — shared files, manifests as commit
//! points, restore from the newest usable checkpoint, retention that never
//! deletes a file a kept checkpoint needs. Blocking I/O: used from an I/O
//! thread, off every shard's record path.

mod catalog;
mod direct_file;
mod location;
mod manifest;
mod object_store;
mod s3_store;
// The end-to-end tests' S3 server (they use all of it; these tests, part).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../../tests/src/s3_server.rs"]
mod s3_test_server;

pub use catalog::{CheckpointCatalog, Retained, SharedUpload, Unusable};
pub use location::StorageLocation;
pub use manifest::{FileInfo, Manifest};
pub use object_store::{check_key, FileStore, ObjectStore, PendingPut, StoreError};
pub use s3_store::{S3Settings, S3Store, MULTIPART_PART_BYTES};

#[cfg(test)]
mod tests;
