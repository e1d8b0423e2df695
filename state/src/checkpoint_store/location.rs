//! Where a job's checkpoints, or a savepoint, are kept: a local directory
//! (`file:///path`) or an S3 bucket and prefix (`s3://bucket/prefix`).

use std::path::PathBuf;
use std::sync::Arc;

use super::object_store::{FileStore, ObjectStore};
use super::s3_store::{S3Settings, S3Store};

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    Directory(PathBuf),
    S3(S3Settings),
}

impl StorageLocation {
    /// Opens the store (an S3 store makes no request until used).
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>, String> {
        Ok(match self {
            StorageLocation::Directory(path) => Arc::new(FileStore::new(path)),
            StorageLocation::S3(settings) => Arc::new(S3Store::new(settings.clone())?),
        })
    }

    /// `file:///path` or `s3://bucket/prefix`.
    pub fn describe(&self) -> String {
        match self {
            StorageLocation::Directory(path) => format!("file://{}", path.display()),
            StorageLocation::S3(settings) => settings.url(),
        }
    }

    /// Reads a location given as text: `s3://bucket/prefix` (reached like
    /// `like` when that is in S3: same endpoint, region, credentials), or
    /// a local path.
    pub fn resolve(text: &str, like: &StorageLocation) -> Result<StorageLocation, String> {
        if text.starts_with("s3://") {
            let at = S3Settings::from_url(text)?;
            let settings = match like {
                StorageLocation::S3(like) => S3Settings {
                    bucket: at.bucket,
                    prefix: at.prefix,
                    ..like.clone()
                },
                StorageLocation::Directory(_) => at,
            };
            return Ok(StorageLocation::S3(settings));
        }
        if let Some(path) = text.strip_prefix("file://") {
            return Ok(StorageLocation::Directory(PathBuf::from(path)));
        }
        Ok(StorageLocation::Directory(PathBuf::from(text)))
    }

    /// The location `sub` inside this one.
    pub fn join(&self, sub: &str) -> StorageLocation {
        match self {
            StorageLocation::Directory(path) => StorageLocation::Directory(path.join(sub)),
            StorageLocation::S3(settings) => StorageLocation::S3(settings.under(sub)),
        }
    }
}

/// As a user writes it: a plain path, or `s3://bucket/prefix` (what
/// [`resolve`](StorageLocation::resolve) reads back).
impl std::fmt::Display for StorageLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageLocation::Directory(path) => write!(f, "{}", path.display()),
            StorageLocation::S3(settings) => f.write_str(&settings.url()),
        }
    }
}
