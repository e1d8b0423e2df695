//! The barrier's view of a RocksDB instance, held while its memtables flush
//! in the background.
//!
//! A native checkpoint must list files that hold exactly the writes before
//! the barrier. Flushing the memtables at the barrier gives that, but the
//! flush (hundreds of milliseconds for 64 MB memtables) then runs on the
//! shard's core while records wait. Instead, at the barrier the instance
//! switches its memtables (the flush is only requested: RocksDB's
//! background threads write it) and records the barrier's sequence number
//! `S`; writes go on into new memtables, with numbers above `S`. Once no
//! switched memtable is left unflushed, every write up to `S` is in table
//! files, and the checkpoint links the live files without flushing. It is
//! consistent only if none of those files holds a write above `S` (a
//! memtable filled after the barrier may have been flushed meanwhile): the
//! files' largest sequence numbers are checked against `S`.
//!
//! Compaction to the bottom level sets sequence numbers older than the
//! oldest snapshot to zero, which would hide a later write from that check:
//! a [`PendingNative`](super::PendingNative) therefore holds a RocksDB
//! snapshot at `S` until the files are listed, so later writes keep their
//! numbers (and earlier versions their place).
//!
//! Lives on its shard's core, beside the instance it views.

use std::collections::BTreeMap;
use std::ffi::CStr;

use rocksdb::{AsRawPtr, DB};

/// A RocksDB snapshot at the barrier, released on drop. The instance that
/// took it must outlive it (the [`PendingNative`](super::PendingNative)
/// holding it holds the instance).
pub(super) struct HeldSnapshot {
    db: *mut librocksdb_sys::rocksdb_t,
    snapshot: *const librocksdb_sys::rocksdb_snapshot_t,
}

impl HeldSnapshot {
    /// Takes a snapshot of `db` now.
    pub(super) fn take(db: &DB) -> Self {
        // SAFETY: `db` is open; the snapshot is released by `drop` while the
        // database is still open (the owner of this value keeps it so).
        unsafe {
            let raw = db.as_raw_ptr();
            HeldSnapshot {
                db: raw,
                snapshot: librocksdb_sys::rocksdb_create_snapshot(raw),
            }
        }
    }
}

impl Drop for HeldSnapshot {
    fn drop(&mut self) {
        // SAFETY: taken from this open database by `take`, released once.
        unsafe { librocksdb_sys::rocksdb_release_snapshot(self.db, self.snapshot) }
    }
}

/// The largest sequence number of every live table file of `db`, by file
/// name (`000012.sst`).
pub(super) fn live_file_sequence_numbers(db: &DB) -> BTreeMap<String, u64> {
    let mut files = BTreeMap::new();
    // SAFETY: `db` is open for the whole call; the list is read within its
    // count and destroyed once; names are NUL-terminated C strings owned by
    // the list, copied before it is destroyed.
    unsafe {
        let list = librocksdb_sys::rocksdb_livefiles(db.as_raw_ptr());
        if list.is_null() {
            return files;
        }
        for index in 0..librocksdb_sys::rocksdb_livefiles_count(list) {
            let name = librocksdb_sys::rocksdb_livefiles_name(list, index);
            if name.is_null() {
                continue;
            }
            let name = CStr::from_ptr(name).to_string_lossy();
            let largest = librocksdb_sys::rocksdb_livefiles_largest_seqno(list, index);
            files.insert(name.trim_start_matches('/').to_owned(), largest);
        }
        librocksdb_sys::rocksdb_livefiles_destroy(list);
    }
    files
}

/// Why the files linked for a checkpoint are not the barrier's view.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ViewCheck {
    /// Every table file holds only writes up to the barrier.
    Consistent,
    /// A file came and went while the files were linked: its numbers are
    /// unknown (list again).
    Unknown(String),
    /// A file holds writes after the barrier: this checkpoint cannot be
    /// taken from the files any more.
    After { file: String, largest: u64 },
}

/// Checks the table files `linked` (names) against the barrier's sequence
/// number, with their numbers from lists taken before and after linking.
pub(super) fn check_view<'a>(
    barrier: u64,
    linked: impl IntoIterator<Item = &'a str>,
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> ViewCheck {
    for name in linked {
        match before.get(name).or_else(|| after.get(name)) {
            None => return ViewCheck::Unknown(name.to_owned()),
            Some(&largest) if largest > barrier => {
                return ViewCheck::After {
                    file: name.to_owned(),
                    largest,
                }
            }
            Some(_) => {}
        }
    }
    ViewCheck::Consistent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_later_writes_or_unknown_numbers_fails_the_check() {
        let before: BTreeMap<String, u64> = [("1.sst".to_owned(), 10), ("2.sst".to_owned(), 20)]
            .into_iter()
            .collect();
        let after: BTreeMap<String, u64> = [("3.sst".to_owned(), 25)].into_iter().collect();
        assert_eq!(
            check_view(20, ["1.sst", "2.sst"], &before, &after),
            ViewCheck::Consistent
        );
        assert_eq!(
            check_view(20, ["1.sst", "3.sst"], &before, &after),
            ViewCheck::After {
                file: "3.sst".into(),
                largest: 25
            }
        );
        assert_eq!(
            check_view(30, ["1.sst", "4.sst"], &before, &after),
            ViewCheck::Unknown("4.sst".into())
        );
    }
}
