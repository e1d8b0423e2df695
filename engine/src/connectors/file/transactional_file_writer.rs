//! The exactly-once file sink's files and their life, per shard:
//!
//! 1. records go to an in-progress part file, `.part-<shard>-<seq>.inprogress`;
//! 2. at checkpoint *n*'s barrier ([`TransactionalFileWriter::pre_commit`]) the
//!    part is synced and renamed `.part-<shard>-<seq>.pending-<n>`, and a new
//!    part begins;
//! 3. when checkpoint *n* completes ([`TransactionalFileWriter::commit`]) every
//!    pending part of a checkpoint up to *n* is renamed into place as
//!    `part-<shard>-<seq>.<ext>` (a checkpoint that failed leaves its parts
//!    pending; the next completed one commits them);
//! 4. after a crash ([`TransactionalFileWriter::recover`]) parts pending for
//!    checkpoints up to the one restored are committed, later ones and
//!    in-progress parts deleted: their records are read again from the
//!    restored source positions.
//!
//! Readers see only final parts, each once. Hidden names (leading `.`) keep
//! pending data out of globs. Runs on its shard; every rename is followed by
//! a sync of the directory, so a committed part survives a power cut.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::RecordFormat;
use crate::Rec;

/// One shard's part files (see the module docs).
pub struct TransactionalFileWriter {
    directory: PathBuf,
    format: RecordFormat,
    shard: u32,
    seq: u64,
    current: Option<(PathBuf, BufWriter<File>)>,
    buffer: Vec<u8>,
    /// Parts that [`recover`](Self::recover) committed.
    recovered: usize,
}

/// A part file of this sink, as its name tells.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PartState {
    InProgress,
    Pending(u64),
}

/// `(shard, seq, state)` of a hidden part file of any shard.
fn parse_hidden(name: &str) -> Option<(u32, u64, PartState)> {
    let rest = name.strip_prefix(".part-")?;
    let (shard, rest) = rest.split_once('-')?;
    let shard = shard.parse().ok()?;
    let (seq, state) = rest.split_once('.')?;
    let seq = seq.parse().ok()?;
    let state = match state {
        "inprogress" => PartState::InProgress,
        other => PartState::Pending(other.strip_prefix("pending-")?.parse().ok()?),
    };
    Some((shard, seq, state))
}

fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing", dir, e))
}

impl TransactionalFileWriter {
    /// Opens shard `shard`'s writer (of `shards`) after recovering its files:
    /// parts pending for checkpoints up to `restored` (the checkpoint the job
    /// resumes from; `None` for a fresh start) are committed, the rest
    /// deleted. Files of earlier shards that no longer exist (the job was
    /// restored with fewer shards) are recovered by shard `id % shards`.
    pub fn recover(
        directory: &Path,
        format: RecordFormat,
        shard: u32,
        shards: u32,
        restored: Option<u64>,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(directory).map_err(|e| io("creating", directory, e))?;
        let (mut writer, parts) = Self::scan(directory, format, shard, shards)?;
        for (owner, seq, state, path) in parts {
            match state {
                PartState::Pending(n) if restored.is_some_and(|r| n <= r) => {
                    writer.publish(owner, seq, &path)?;
                    writer.recovered += 1;
                }
                _ => std::fs::remove_file(&path).map_err(|e| io("deleting", &path, e))?,
            }
        }
        sync_dir(directory)?;
        Ok(writer)
    }

    /// Opens shard `shard`'s writer in a directory where it may have written
    /// before in this run (parts of its own may be pending there): nothing
    /// is committed or deleted, and new parts take names not used yet.
    pub fn resume(directory: &Path, format: RecordFormat, shard: u32) -> Result<Self, String> {
        std::fs::create_dir_all(directory).map_err(|e| io("creating", directory, e))?;
        Ok(Self::scan(directory, format, shard, u32::MAX)?.0)
    }

    /// A writer whose next part follows every part of `shard` in
    /// `directory`, and the hidden parts there that shard `shard` of
    /// `shards` recovers.
    #[allow(clippy::type_complexity)]
    fn scan(
        directory: &Path,
        format: RecordFormat,
        shard: u32,
        shards: u32,
    ) -> Result<(Self, Vec<(u32, u64, PartState, PathBuf)>), String> {
        let mut writer = TransactionalFileWriter {
            directory: directory.to_owned(),
            format,
            shard,
            seq: 0,
            current: None,
            buffer: Vec::new(),
            recovered: 0,
        };
        let mut parts = Vec::new();
        for entry in std::fs::read_dir(directory).map_err(|e| io("listing", directory, e))? {
            let entry = entry.map_err(|e| io("listing", directory, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some((owner, seq, state)) = parse_hidden(&name) {
                if owner == shard {
                    writer.seq = writer.seq.max(seq + 1);
                }
                if owner % shards.max(1) == shard {
                    parts.push((owner, seq, state, entry.path()));
                }
            } else if let Some(seq) = name
                .strip_prefix(&format!("part-{shard:05}-"))
                .and_then(|rest| rest.split_once('.'))
                .and_then(|(seq, _)| seq.parse::<u64>().ok())
            {
                writer.seq = writer.seq.max(seq + 1);
            }
        }
        Ok((writer, parts))
    }

    /// How many pending parts [`recover`](Self::recover) committed.
    pub fn recovered_parts(&self) -> usize {
        self.recovered
    }

    /// A part is being written (records since the last pre-commit).
    pub fn has_part_in_progress(&self) -> bool {
        self.current.is_some()
    }

    fn final_path(&self, shard: u32, seq: u64) -> PathBuf {
        self.directory
            .join(format!("part-{shard:05}-{seq}.{}", self.format.extension()))
    }

    fn publish(&self, shard: u32, seq: u64, pending: &Path) -> Result<(), String> {
        let target = self.final_path(shard, seq);
        match std::fs::rename(pending, &target) {
            Ok(()) => Ok(()),
            // Published meanwhile by the attempt it belongs to, winding down.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && target.exists() => Ok(()),
            Err(e) => Err(io("committing", &target, e)),
        }
    }

    /// Creates the next in-progress part, never one that exists: an older
    /// attempt of this shard may still be winding down in this directory,
    /// and its parts must not be truncated; a name taken moves on to the
    /// next sequence number.
    fn create_part(&mut self) -> Result<(PathBuf, File), String> {
        const ATTEMPTS: u32 = 1_000;
        for _ in 0..ATTEMPTS {
            let path = self
                .directory
                .join(format!(".part-{:05}-{}.inprogress", self.shard, self.seq));
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.seq += 1,
                Err(e) => return Err(io("creating", &path, e)),
            }
        }
        Err(format!(
            "no free part name for shard {} in {} after {ATTEMPTS} tries",
            self.shard,
            self.directory.display()
        ))
    }

    /// Appends records to the in-progress part.
    pub fn write<T: Serialize>(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        self.buffer.clear();
        for r in batch {
            self.format
                .write(&r.value, &mut self.buffer)
                .map_err(|e| format!("encoding a record as {:?}: {e}", self.format))?;
        }
        if self.current.is_none() {
            let (path, file) = self.create_part()?;
            self.current = Some((path, BufWriter::with_capacity(1 << 20, file)));
        }
        let (path, file) = self.current.as_mut().expect("opened above");
        file.write_all(&self.buffer)
            .map_err(|e| io("writing", path, e))
    }

    /// Checkpoint `checkpoint`'s barrier: the in-progress part becomes
    /// pending for it (synced first); the next records start a new part.
    pub fn pre_commit(&mut self, checkpoint: u64) -> Result<(), String> {
        let Some((path, file)) = self.current.take() else {
            return Ok(());
        };
        let file = file
            .into_inner()
            .map_err(|e| io("writing", &path, e.into_error()))?;
        file.sync_all().map_err(|e| io("syncing", &path, e))?;
        let pending = self.directory.join(format!(
            ".part-{:05}-{}.pending-{checkpoint}",
            self.shard, self.seq
        ));
        std::fs::rename(&path, &pending).map_err(|e| io("renaming", &pending, e))?;
        self.seq += 1;
        sync_dir(&self.directory)
    }

    /// Checkpoint `checkpoint` completed: commits every part pending for it
    /// or an earlier one.
    pub fn commit(&mut self, checkpoint: u64) -> Result<(), String> {
        let dir = self.directory.clone();
        let mut committed = false;
        for entry in std::fs::read_dir(&dir).map_err(|e| io("listing", &dir, e))? {
            let entry = entry.map_err(|e| io("listing", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match parse_hidden(&name) {
                Some((shard, seq, PartState::Pending(n)))
                    if shard == self.shard && n <= checkpoint =>
                {
                    self.publish(shard, seq, &entry.path())?;
                    committed = true;
                }
                _ => {}
            }
        }
        if committed {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// The input ended and the job succeeded: everything written is final.
    pub fn finish(&mut self) -> Result<(), String> {
        self.pre_commit(u64::MAX)?;
        self.commit(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(values: &[u32]) -> Vec<Rec<u32>> {
        values.iter().map(|&v| Rec { ts: 0, value: v }).collect()
    }

    /// Final part files and their lines, by name; hidden ones by name only.
    fn listing(dir: &Path) -> (Vec<(String, String)>, Vec<String>) {
        let mut visible = Vec::new();
        let mut hidden = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                hidden.push(name);
            } else {
                visible.push((name, std::fs::read_to_string(entry.path()).unwrap()));
            }
        }
        visible.sort();
        hidden.sort();
        (visible, hidden)
    }

    /// An older attempt of shard 0 still winding down (it had opened a part)
    /// while the restored attempt recovers and writes in the same directory:
    /// neither truncates the other's part, and a part the old one publishes
    /// first is not an error for the new one's recovery.
    #[test]
    fn two_attempts_of_a_shard_never_share_a_part() {
        let dir = tempfile::tempdir().unwrap();
        let format = RecordFormat::JsonLines;
        let mut old = TransactionalFileWriter::recover(dir.path(), format, 0, 1, None).unwrap();
        old.write(&recs(&[1])).unwrap();
        old.pre_commit(1).unwrap();
        let mut new = TransactionalFileWriter::recover(dir.path(), format, 0, 1, Some(1)).unwrap();
        assert_eq!(listing(dir.path()).0.len(), 1, "recovery committed part 0");
        // Both open their next part, the old one first, at the same number.
        old.write(&recs(&[2])).unwrap();
        new.write(&recs(&[3])).unwrap();
        new.pre_commit(2).unwrap();
        new.commit(2).unwrap();
        let (visible, hidden) = listing(dir.path());
        let texts: Vec<&str> = visible.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["1\n", "3\n"], "{visible:?}");
        assert_eq!(
            hidden,
            [".part-00000-1.inprogress"],
            "the old attempt's part is its own"
        );

        // A pending part published by its own attempt while another
        // recovery had listed it.
        let pending = dir.path().join(".part-00000-7.pending-3");
        std::fs::write(&pending, "7\n").unwrap();
        let lister = TransactionalFileWriter::resume(dir.path(), format, 0).unwrap();
        std::fs::rename(&pending, dir.path().join("part-00000-7.jsonl")).unwrap();
        lister.publish(0, 7, &pending).unwrap();
        assert!(
            lister.publish(0, 8, &pending).is_err(),
            "a part that never was"
        );
    }

    #[test]
    fn parts_become_visible_when_their_checkpoint_completes() {
        let dir = tempfile::tempdir().unwrap();
        let mut w =
            TransactionalFileWriter::recover(dir.path(), RecordFormat::JsonLines, 0, 2, None)
                .unwrap();
        w.write(&recs(&[1, 2])).unwrap();
        w.pre_commit(1).unwrap();
        w.write(&recs(&[3])).unwrap();
        w.pre_commit(2).unwrap();
        w.write(&recs(&[4])).unwrap();
        assert!(
            listing(dir.path()).0.is_empty(),
            "nothing visible before a commit"
        );
        w.commit(1).unwrap();
        let (visible, hidden) = listing(dir.path());
        assert_eq!(
            visible,
            [("part-00000-0.jsonl".to_owned(), "1\n2\n".to_owned())]
        );
        assert_eq!(
            hidden,
            [".part-00000-1.pending-2", ".part-00000-2.inprogress"]
        );
        // Checkpoint 3 completes without 2 having done so: 2's part goes too.
        w.pre_commit(3).unwrap();
        w.commit(3).unwrap();
        let (visible, hidden) = listing(dir.path());
        assert_eq!(visible.len(), 3);
        assert!(hidden.is_empty());
        w.write(&recs(&[5])).unwrap();
        w.finish().unwrap();
        let all: String = listing(dir.path())
            .0
            .into_iter()
            .map(|(_, text)| text)
            .collect();
        assert_eq!(all, "1\n2\n3\n4\n5\n");
    }

    #[test]
    fn recovery_commits_what_the_restored_checkpoint_covers_and_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut w =
            TransactionalFileWriter::recover(dir.path(), RecordFormat::JsonLines, 0, 2, None)
                .unwrap();
        let mut other =
            TransactionalFileWriter::recover(dir.path(), RecordFormat::JsonLines, 1, 2, None)
                .unwrap();
        w.write(&recs(&[1])).unwrap();
        w.pre_commit(1).unwrap();
        w.write(&recs(&[2])).unwrap();
        w.pre_commit(2).unwrap();
        w.write(&recs(&[3])).unwrap();
        other.write(&recs(&[9])).unwrap();
        other.pre_commit(2).unwrap();
        // Crash: nothing committed. The job restores checkpoint 1.
        drop(w);
        let mut w =
            TransactionalFileWriter::recover(dir.path(), RecordFormat::JsonLines, 0, 2, Some(1))
                .unwrap();
        let (visible, hidden) = listing(dir.path());
        assert_eq!(
            visible,
            [("part-00000-0.jsonl".to_owned(), "1\n".to_owned())]
        );
        // Shard 1's files are its own business.
        assert_eq!(hidden, [".part-00001-0.pending-2"]);
        // New parts do not reuse a name.
        w.write(&recs(&[2])).unwrap();
        w.finish().unwrap();
        let (visible, _) = listing(dir.path());
        assert_eq!(
            visible,
            [
                ("part-00000-0.jsonl".to_owned(), "1\n".to_owned()),
                ("part-00000-3.jsonl".to_owned(), "2\n".to_owned())
            ]
        );
    }
}
