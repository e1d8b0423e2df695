//! Where checkpoints are kept: a flat namespace of objects addressed by
//! `/`-separated keys, with the operations S3 offers (put whole, get, list by
//! prefix, delete) and no rename, so the file and S3 stores behave alike.
//! A put is atomic: a reader sees the old object, none, or the whole new one.
//! A put may also be streamed ([`ObjectStore::begin_put`]): the object is
//! written piece by piece as its bytes are produced, and appears whole at
//! the end, or not at all if the put is aborted.
//!
//! Calls block: they run on an I/O thread, never on a shard's core.

use std::any::Any;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::direct_file::DirectFile;

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

/// A put in progress ([`ObjectStore::begin_put`]): the object's key and the
/// store's state of the upload (a temporary file, a multipart upload, or the
/// bytes so far for stores that put whole).
pub struct PendingPut {
    key: String,
    state: Box<dyn Any + Send>,
}

impl PendingPut {
    pub fn new(key: &str, state: impl Any + Send) -> Self {
        PendingPut {
            key: key.to_owned(),
            state: Box::new(state),
        }
    }

    /// The key of the object being put.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The store's state; a store is only ever handed its own puts.
    pub fn state_mut<T: Any>(&mut self) -> &mut T {
        self.state
            .downcast_mut()
            .expect("bug: a put handed to another kind of store")
    }

    pub fn into_state<T: Any>(self) -> T {
        *self
            .state
            .downcast()
            .expect("bug: a put handed to another kind of store")
    }
}

impl std::fmt::Debug for PendingPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPut")
            .field("key", &self.key)
            .finish()
    }
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
    /// Starts a streamed put of `key`. By default the bytes are kept and
    /// put whole at the end.
    fn begin_put(&self, key: &str) -> Result<PendingPut, StoreError> {
        check_key(key)?;
        Ok(PendingPut::new(key, Vec::<u8>::new()))
    }
    /// Appends bytes to a streamed put. After an error the put is aborted
    /// (nothing of it stays); finishing it fails.
    fn append_put(&self, put: &mut PendingPut, bytes: &[u8]) -> Result<(), StoreError> {
        put.state_mut::<Vec<u8>>().extend_from_slice(bytes);
        Ok(())
    }
    /// Makes the object of a streamed put appear, whole.
    fn finish_put(&self, put: PendingPut) -> Result<(), StoreError> {
        let key = put.key.clone();
        self.put(&key, &put.into_state::<Vec<u8>>())
    }
    /// Drops a streamed put: nothing of it stays.
    fn abort_put(&self, put: PendingPut) {
        drop(put);
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
    fn begin_put(&self, key: &str) -> Result<PendingPut, StoreError> {
        (**self).begin_put(key)
    }
    fn append_put(&self, put: &mut PendingPut, bytes: &[u8]) -> Result<(), StoreError> {
        (**self).append_put(put, bytes)
    }
    fn finish_put(&self, put: PendingPut) -> Result<(), StoreError> {
        (**self).finish_put(put)
    }
    fn abort_put(&self, put: PendingPut) {
        (**self).abort_put(put)
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

/// Puts `chunks` as one object through a streamed put (for stores whose
/// streamed put is their real one).
pub(super) fn put_streamed(
    store: &(impl ObjectStore + ?Sized),
    key: &str,
    chunks: &[&[u8]],
) -> Result<(), StoreError> {
    let mut put = store.begin_put(key)?;
    for chunk in chunks {
        store.append_put(&mut put, chunk)?;
    }
    store.finish_put(put)
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

/// A [`FileStore`] put in progress: its temporary file (`None` once a write
/// failed and the file was removed), written around the page cache where
/// the file system allows it.
struct FilePut {
    file: Option<DirectFile>,
    tmp: PathBuf,
    path: PathBuf,
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
        put_streamed(self, key, chunks)
    }

    /// Writes a temporary file next to the object's place.
    fn begin_put(&self, key: &str) -> Result<PendingPut, StoreError> {
        let path = self.path(key)?;
        let dir = path.parent().expect("a key has a parent: the root");
        std::fs::create_dir_all(dir).map_err(Self::io("creating", dir))?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .expect("a checked key names a file")
                .to_string_lossy()
        ));
        let file = DirectFile::create(&tmp).map_err(Self::io("creating", &tmp))?;
        Ok(PendingPut::new(
            key,
            FilePut {
                file: Some(file),
                tmp,
                path,
            },
        ))
    }

    fn append_put(&self, put: &mut PendingPut, bytes: &[u8]) -> Result<(), StoreError> {
        let put = put.state_mut::<FilePut>();
        let Some(file) = put.file.as_mut() else {
            return Err(StoreError::Io {
                what: "writing",
                path: put.tmp.clone(),
                source: std::io::Error::other("an earlier write failed"),
            });
        };
        let written = file.write(bytes).map_err(Self::io("writing", &put.tmp));
        if written.is_err() {
            put.file = None;
            let _ = std::fs::remove_file(&put.tmp);
        }
        written
    }

    /// Syncs the file, renames it into place and syncs the directory.
    fn finish_put(&self, put: PendingPut) -> Result<(), StoreError> {
        let FilePut { file, tmp, path } = put.into_state::<FilePut>();
        let Some(file) = file else {
            return Err(StoreError::Io {
                what: "writing",
                path: tmp,
                source: std::io::Error::other("an earlier write failed"),
            });
        };
        let direct = file.is_direct();
        let synced = (file.finish().map_err(Self::io("writing", &tmp))).and_then(|file| {
            file.sync_all()
                .map(|()| file)
                .map_err(Self::io("syncing", &tmp))
        });
        let file = match synced {
            Ok(file) => file,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if !direct {
            drop_cached_pages(&file);
        }
        drop(file);
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Self::io("renaming into place", &path)(e));
        }
        let dir = path.parent().expect("a key has a parent: the root");
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Self::io("syncing", dir))
    }

    fn abort_put(&self, put: PendingPut) {
        let put = put.into_state::<FilePut>();
        drop(put.file);
        let _ = std::fs::remove_file(&put.tmp);
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
    fn a_streamed_put_appears_whole_at_its_end_and_an_aborted_one_never() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store.put("shared/a", b"old").unwrap();
        let mut put = store.begin_put("shared/a").unwrap();
        store.append_put(&mut put, b"new ").unwrap();
        store.append_put(&mut put, b"bytes").unwrap();
        assert_eq!(store.get("shared/a").unwrap(), b"old", "not before the end");
        store.finish_put(put).unwrap();
        assert_eq!(store.get("shared/a").unwrap(), b"new bytes");
        let mut aborted = store.begin_put("shared/b").unwrap();
        store.append_put(&mut aborted, b"half").unwrap();
        store.abort_put(aborted);
        assert_eq!(store.list("").unwrap(), ["shared/a"]);
        // No temporary file either.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("shared"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a"]);
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
