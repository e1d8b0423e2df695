//! A file written around the page cache (`O_DIRECT`), for the file store's
//! puts: checkpoint files are gigabytes that are read back only to restore,
//! and copying them into the page cache cost the writer a copy per byte and
//! the shards the memory it took (the kernel then reclaims it while they
//! allocate).
//!
//! Direct writes must start at aligned offsets, from aligned memory, in
//! aligned lengths: bytes are gathered in an aligned staging buffer and
//! written a full buffer at a time; the tail is written padded to the
//! alignment and the file cut back to its size. Where the file system
//! refuses `O_DIRECT` (tmpfs), or refuses a direct write, the file is written
//! through the page cache instead, with the same result.
//!
//! Runs on the checkpoint I/O thread. Invariant: in direct mode, everything
//! before the staging buffer is on the file at offsets that are multiples of
//! [`ALIGN`].

use std::alloc::{self, Layout};
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;

/// The alignment of direct writes (offsets, lengths and memory).
const ALIGN: usize = 4096;
/// Bytes gathered before a direct write (a multiple of [`ALIGN`]).
const STAGING_BYTES: usize = if cfg!(test) { 3 * ALIGN } else { 4 << 20 };

/// A zeroed, [`ALIGN`]-aligned buffer of [`STAGING_BYTES`].
struct Staging {
    memory: NonNull<u8>,
    filled: usize,
}

impl Staging {
    fn layout() -> Layout {
        Layout::from_size_align(STAGING_BYTES, ALIGN).expect("a valid layout")
    }

    fn new() -> Option<Self> {
        // SAFETY: the layout has a non-zero size.
        let memory = NonNull::new(unsafe { alloc::alloc_zeroed(Self::layout()) })?;
        Some(Staging { memory, filled: 0 })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `memory` holds STAGING_BYTES initialized (zeroed) bytes.
        unsafe { std::slice::from_raw_parts(self.memory.as_ptr(), STAGING_BYTES) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.memory.as_ptr(), STAGING_BYTES) }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { alloc::dealloc(self.memory.as_ptr(), Self::layout()) };
    }
}

// SAFETY: the buffer is owned memory, used by one thread at a time.
unsafe impl Send for Staging {}

/// See the module docs.
pub(super) struct DirectFile {
    file: File,
    /// `Some` while writing directly.
    staging: Option<Staging>,
    /// Bytes written so far (the file's size once finished).
    size: u64,
}

impl DirectFile {
    /// Creates (or truncates) the file at `path`.
    pub(super) fn create(path: &Path) -> io::Result<DirectFile> {
        let direct = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        let (file, staging) = match direct.map(|file| (file, Staging::new())) {
            Ok((file, Some(staging))) => (file, Some(staging)),
            _ => (File::create(path)?, None),
        };
        Ok(DirectFile {
            file,
            staging,
            size: 0,
        })
    }

    /// Whether the file bypasses the page cache.
    pub(super) fn is_direct(&self) -> bool {
        self.staging.is_some()
    }

    pub(super) fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        self.size += bytes.len() as u64;
        while let Some(staging) = self.staging.as_mut() {
            let room = STAGING_BYTES - staging.filled;
            let taken = room.min(bytes.len());
            let filled = staging.filled;
            staging.bytes_mut()[filled..filled + taken].copy_from_slice(&bytes[..taken]);
            staging.filled += taken;
            bytes = &bytes[taken..];
            if staging.filled < STAGING_BYTES {
                return Ok(());
            }
            self.flush_staging(STAGING_BYTES)?;
        }
        self.file.write_all(bytes)
    }

    /// Writes the staging buffer's first `len` bytes (aligned) directly;
    /// if the file system refuses, writes the rest of what it holds through
    /// the page cache and stays there.
    fn flush_staging(&mut self, len: usize) -> io::Result<()> {
        let staging = self.staging.as_mut().expect("direct mode");
        let filled = staging.filled;
        let mut done = 0;
        while done < len {
            match self.file.write(&staging.bytes()[done..len]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // Refused (or a short write left the offset unaligned).
                    let staging = self.staging.take().expect("direct mode");
                    return self.fall_back(&staging.bytes()[done.min(filled)..filled]);
                }
                Err(e) => return Err(e),
            }
        }
        staging.filled = 0;
        Ok(())
    }

    /// Reopens the file without `O_DIRECT` after the bytes written directly
    /// and appends `pending` (the staged bytes not written) there.
    fn fall_back(&mut self, pending: &[u8]) -> io::Result<()> {
        let at = self.file.stream_position()?;
        let path = format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&self.file)
        );
        let mut buffered = OpenOptions::new().write(true).open(path)?;
        buffered.seek(SeekFrom::Start(at))?;
        buffered.write_all(pending)?;
        self.file = buffered;
        Ok(())
    }

    /// Writes what is left and returns the file, of exactly the bytes
    /// written (not synced).
    pub(super) fn finish(mut self) -> io::Result<File> {
        if let Some(filled) = self.staging.as_ref().map(|s| s.filled) {
            if filled > 0 {
                let padded = filled.div_ceil(ALIGN) * ALIGN;
                let staging = self.staging.as_mut().expect("direct mode");
                staging.bytes_mut()[filled..padded].fill(0);
                self.flush_staging(padded)?;
            }
            self.file.set_len(self.size)?;
        }
        Ok(self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_holds_exactly_the_bytes_written_in_any_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..(2 * STAGING_BYTES + 1234))
            .map(|i| (i * 13 % 251) as u8)
            .collect();
        for piece in [1, 777, ALIGN, STAGING_BYTES, 3 * STAGING_BYTES] {
            let path = dir.path().join(format!("f{piece}"));
            let mut file = DirectFile::create(&path).unwrap();
            for chunk in bytes.chunks(piece) {
                file.write(chunk).unwrap();
            }
            drop(file.finish().unwrap());
            assert!(std::fs::read(&path).unwrap() == bytes, "pieces of {piece}");
        }
        let empty = dir.path().join("empty");
        drop(DirectFile::create(&empty).unwrap().finish().unwrap());
        assert_eq!(std::fs::read(&empty).unwrap().len(), 0);
    }

    #[test]
    fn a_refused_direct_write_falls_back_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = DirectFile::create(&path).unwrap();
        file.write(&[7; ALIGN + 5]).unwrap();
        let pending = file.staging.as_ref().map_or(0, |s| s.filled);
        // As after an EINVAL: the staged bytes go through the page cache.
        if let Some(staging) = file.staging.take() {
            file.fall_back(&staging.bytes()[..pending]).unwrap();
        }
        assert!(!file.is_direct());
        file.write(&[8; 10]).unwrap();
        drop(file.finish().unwrap());
        let mut expected = vec![7; ALIGN + 5];
        expected.extend([8; 10]);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }
}
