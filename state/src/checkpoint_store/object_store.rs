//! Where checkpoints are kept: a flat namespace of objects addressed by
//! `/`-separated keys, with the operations S3 offers (put whole, get, list by
//! prefix, delete) and no rename, so the file and S3 stores behave alike.
//! A put is atomic: a reader sees the old object, none, or the whole new one.
//!
//! Calls block: they run on an I/O thread, never on a shard's core.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An object store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key}: no such object in {store}")]
    NotFound { store: String, key: String },
    #[error("{key}: not a valid object key ({why})")]
    BadKey { key: String, why: &'static str },
    #[error("{what} {location}: {message}")]
    Remote {
        what: &'static str,
        location: String,
        message: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// See the module docs.
pub trait ObjectStore: Send + Sync {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Puts the object made of `chunks` in order (a state file built from
    /// moved buffers). By default, one copy of them, put whole.
    fn put_chunks(&self, key: &str, chunks: &[&[u8]]) -> Result<(), StoreError> {
        match chunks {
            [one] => self.put(key, one),
            _ => self.put(key, &chunks.concat()),
        }
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// The keys that start with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Deleting a missing object is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Names the store in messages (`file:///…`, `s3://…`).
    fn describe(&self) -> String;
}

impl<T: ObjectStore + ?Sized> ObjectStore for std::sync::Arc<T> {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        (**self).put(key, bytes)
    }
    fn put_chunks(&self, key: &str, chunks: &[&[u8]]) -> Result<(), StoreError> {
        (**self).put_chunks(key, chunks)
    }
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        (**self).get(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        (**self).list(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        (**self).delete(key)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Checks that `key` is relative, `/`-separated and stays inside the store.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let bad = |why| {
        Err(StoreError::BadKey {
            key: key.to_owned(),
            why,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return bad("starts or ends with '/'");
    }
    if key
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return bad("has an empty, '.' or '..' part");
    }
    if key.contains('\\') || key.contains('\0') {
        return bad("has a backslash or NUL");
    }
    Ok(())
}

/// Objects as files under a directory (`file:///path`). Puts write a
/// temporary file, sync it and rename it into place, then sync the directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileStore { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn io<'a>(
        what: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
        move |source| StoreError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}

/// Asks the kernel to drop a synced file's pages from its cache: a
/// checkpoint's files are read back only to restore, and gigabytes of them
/// cached crowd out the state they were written from (the kernel must then
/// reclaim them while the shards allocate). Advice only: errors are ignored.
fn drop_cached_pages(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: advice on an open file descriptor we own; no memory involved.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

impl ObjectStore for FileStore {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put_chunks(key, &[bytes])
    }

    fn put_chunks(&self, key: &str, chunks: &[&[u8]]) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let dir = path.parent().expect("a key has a parent: the root");
        std::fs::create_dir_all(dir).map_err(Self::io("creating", dir))?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .expect("a checked key names a file")
                .to_string_lossy()
        ));
        let mut file = File::create(&tmp).map_err(Self::io("creating", &tmp))?;
        for chunk in chunks {
            file.write_all(chunk).map_err(Self::io("writing", &tmp))?;
        }
        file.sync_all().map_err(Self::io("syncing", &tmp))?;
        drop_cached_pages(&file);
        drop(file);
        std::fs::rename(&tmp, &path).map_err(Self::io("renaming into place", &path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Self::io("syncing", dir))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path(key)?;
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound {
                store: self.describe(),
                key: key.to_owned(),
            },
            _ => StoreError::Io {
                what: "reading",
                path,
                source: e,
            },
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(StoreError::Io {
                        what: "listing",
                        path: dir,
                        source: e,
                    })
                }
            };
            for entry in entries {
                let entry = entry.map_err(Self::io("listing", &dir))?;
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry
                    .file_type()
                    .map_err(Self::io("listing", &path))?
                    .is_dir()
                {
                    stack.push(path);
                } else if !name.starts_with('.') {
                    let key = path
                        .strip_prefix(&self.root)
                        .expect("listed under the root")
                        .to_string_lossy()
                        .replace(std::path::MAIN_SEPARATOR, "/");
                    if key.starts_with(prefix) {
                        keys.push(key);
                    }
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {
                // Drop directories the delete left empty (a checkpoint's own
                // directory), up to the root; one still in use stays.
                let mut dir = path.parent();
                while let Some(d) = dir.filter(|d| *d != self.root) {
                    if std::fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io {
                what: "deleting",
                path,
                source: e,
            }),
        }
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_gets_lists_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store.put("shared/a", b"one").unwrap();
        store.put("shared/b", b"two").unwrap();
        store.put("checkpoints/1/MANIFEST", b"m").unwrap();
        store.put("shared/a", b"three").unwrap();
        assert_eq!(store.get("shared/a").unwrap(), b"three");
        assert_eq!(store.list("shared/").unwrap(), ["shared/a", "shared/b"]);
        assert_eq!(store.list("").unwrap().len(), 3);
        store.delete("shared/a").unwrap();
        store.delete("shared/a").unwrap();
        assert!(matches!(
            store.get("shared/a"),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn keys_stay_inside_the_store() {
        for key in ["", "/abs", "a/../b", "a//b", "a/", "./a", "a\\b"] {
            assert!(check_key(key).is_err(), "{key:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let err = FileStore::new(dir.path()).put("../x", b"").unwrap_err();
        assert!(err.to_string().contains("../x"), "{err}");
    }
}
