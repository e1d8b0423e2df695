//! A file sink partitioned by event time, like Flink's filesystem sink with a
//! partition-time commit trigger and the success-file policy.
//!
//! Each record falls into the time bucket of its event time; a bucket is a
//! directory under the sink's directory (its name given by the job, for
//! example `dt=2023-11-14/hm=22:13`), and each shard writes its own part file
//! there. When a shard's watermark passes a bucket's end plus the commit
//! delay, the shard closes its file of that bucket; once every shard's
//! watermark has passed it, the bucket is committed: an empty `_SUCCESS` file
//! appears in its directory, telling readers the partition is complete.
//!
//! Writers run on their shard's core; the commit tracker is shared by the
//! shards of this process behind a mutex that is taken once per watermark
//! change, never per record. A record later than its closed bucket opens a
//! new part file (`part-<shard>-<n>`) and the bucket is committed again: no
//! record is dropped.
//!
//! In a job that takes checkpoints the sink is exactly-once instead: part
//! files and markers are committed with the checkpoints that cover them (see
//! `partitioned_transactional_writer`).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::partitioned_transactional_writer::{
    Bucketing, MarkTracker, PartitionedTransactionalWriter,
};
use super::{RecordFormat, Sink, SinkContext, SinkWriter};
use crate::Rec;

/// Writes records into event-time buckets, one directory per bucket.
pub struct TimePartitionedFileSink<T> {
    bucketing: Bucketing<T>,
    tracker: Arc<Mutex<CommitTracker>>,
    /// For jobs that take checkpoints.
    marks: Arc<Mutex<MarkTracker>>,
}

impl<T> TimePartitionedFileSink<T> {
    /// A sink writing under `directory`: buckets of `bucket_ms` of event time
    /// (starting at multiples of it), each committed `commit_delay_ms` after
    /// its end; `time_of` gives a record's event time and `bucket_path` the
    /// directory of the bucket starting at a time, relative to `directory`.
    pub fn new(
        directory: PathBuf,
        format: RecordFormat,
        bucket_ms: i64,
        commit_delay_ms: i64,
        time_of: impl Fn(&T) -> i64 + Send + Sync + 'static,
        bucket_path: impl Fn(i64) -> String + Send + Sync + 'static,
    ) -> Self {
        assert!(bucket_ms > 0, "buckets need a positive length");
        TimePartitionedFileSink {
            bucketing: Bucketing {
                directory,
                format,
                bucket_ms,
                commit_delay_ms,
                time_of: Arc::new(time_of),
                bucket_path: Arc::new(bucket_path),
            },
            tracker: Arc::default(),
            marks: Arc::default(),
        }
    }
}

/// Which buckets are written and not yet committed, and how far each shard's
/// watermark has come.
#[derive(Default)]
struct CommitTracker {
    watermarks: Vec<i64>,
    pending: BTreeSet<i64>,
}

struct PartFile {
    path: PathBuf,
    file: BufWriter<File>,
}

struct PartitionedWriter<T> {
    shard: u32,
    bucketing: Bucketing<T>,
    tracker: Arc<Mutex<CommitTracker>>,
    /// Open part files by bucket start.
    open: HashMap<i64, PartFile>,
    /// How many part files this shard has opened per bucket (names the next).
    opened: HashMap<i64, u32>,
    buffer: Vec<u8>,
    /// An error from a watermark callback, reported by the next write or finish.
    deferred: Option<String>,
}

impl<T> PartitionedWriter<T> {
    fn part_file(&mut self, bucket: i64) -> Result<&mut PartFile, String> {
        if !self.open.contains_key(&bucket) {
            let dir = self.bucketing.bucket_directory(bucket);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating partition directory {}: {e}", dir.display()))?;
            let n = self.opened.entry(bucket).or_insert(0);
            let name = if *n == 0 {
                format!(
                    "part-{:05}.{}",
                    self.shard,
                    self.bucketing.format.extension()
                )
            } else {
                format!(
                    "part-{:05}-{n}.{}",
                    self.shard,
                    self.bucketing.format.extension()
                )
            };
            *n += 1;
            let path = dir.join(name);
            let file =
                File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
            self.tracker
                .lock()
                .expect("commit tracker lock")
                .pending
                .insert(bucket);
            self.open.insert(
                bucket,
                PartFile {
                    path,
                    file: BufWriter::with_capacity(256 << 10, file),
                },
            );
        }
        Ok(self.open.get_mut(&bucket).expect("opened above"))
    }

    fn close(part: PartFile) -> Result<(), String> {
        let PartFile { path, file } = part;
        let file = file
            .into_inner()
            .map_err(|e| format!("writing {}: {}", path.display(), e.error()))?;
        file.sync_all()
            .map_err(|e| format!("syncing {}: {e}", path.display()))
    }

    /// Closes this shard's files of buckets the watermark has passed, then
    /// commits the buckets every shard has passed.
    fn advance(&mut self, watermark: i64) -> Result<(), String> {
        let done: Vec<i64> = self
            .open
            .keys()
            .copied()
            .filter(|&b| self.bucketing.commit_time(b) <= watermark)
            .collect();
        let mut first_error = None;
        for bucket in done {
            let part = self.open.remove(&bucket).expect("listed above");
            if let Err(e) = Self::close(part) {
                first_error.get_or_insert(e);
            }
        }
        let committable: Vec<i64> = {
            let mut tracker = self.tracker.lock().expect("commit tracker lock");
            let shard = self.shard as usize;
            tracker.watermarks[shard] = tracker.watermarks[shard].max(watermark);
            let all = tracker.watermarks.iter().copied().min().unwrap_or(i64::MIN);
            let ready: Vec<i64> = tracker
                .pending
                .iter()
                .copied()
                .filter(|&b| self.bucketing.commit_time(b) <= all)
                .collect();
            for b in &ready {
                tracker.pending.remove(b);
            }
            ready
        };
        for bucket in committable {
            let marker = self.bucketing.bucket_directory(bucket).join("_SUCCESS");
            if let Err(e) = File::create(&marker).and_then(|f| f.sync_all()) {
                first_error.get_or_insert(format!("committing {}: {e}", marker.display()));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl<T: Serialize + 'static> SinkWriter<T> for PartitionedWriter<T> {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let mut i = 0;
        // Consecutive records of one bucket are encoded and written together.
        while i < batch.len() {
            let bucket = self
                .bucketing
                .bucket_of((self.bucketing.time_of)(&batch[i].value));
            self.buffer.clear();
            let mut j = i;
            while j < batch.len()
                && self
                    .bucketing
                    .bucket_of((self.bucketing.time_of)(&batch[j].value))
                    == bucket
            {
                let format = self.bucketing.format;
                format
                    .write(&batch[j].value, &mut self.buffer)
                    .map_err(|e| format!("encoding a record as {format:?}: {e}"))?;
                j += 1;
            }
            let buffer = std::mem::take(&mut self.buffer);
            let part = self.part_file(bucket)?;
            let written = part.file.write_all(&buffer);
            let path = part.path.display().to_string();
            self.buffer = buffer;
            written.map_err(|e| format!("writing {path}: {e}"))?;
            i = j;
        }
        Ok(())
    }

    fn watermark(&mut self, watermark: i64) {
        if let Err(e) = self.advance(watermark) {
            self.deferred.get_or_insert(e);
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        // The end of the stream passes every bucket.
        self.advance(i64::MAX)?;
        match self.deferred.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<T: Serialize + 'static> Sink<T> for TimePartitionedFileSink<T> {
    fn open(&self, shard: u32, shards: u32) -> Result<Box<dyn SinkWriter<T>>, String> {
        let directory = &self.bucketing.directory;
        std::fs::create_dir_all(directory)
            .map_err(|e| format!("creating output directory {}: {e}", directory.display()))?;
        {
            let mut tracker = self.tracker.lock().expect("commit tracker lock");
            if tracker.watermarks.len() != shards as usize {
                tracker.watermarks = vec![i64::MIN; shards as usize];
            }
        }
        Ok(Box::new(PartitionedWriter {
            shard,
            bucketing: self.bucketing.clone(),
            tracker: self.tracker.clone(),
            open: HashMap::new(),
            opened: HashMap::new(),
            buffer: Vec::new(),
            deferred: None,
        }))
    }

    /// With checkpoints, part files are committed with the checkpoints that
    /// cover them (see [`PartitionedTransactionalWriter`]).
    fn open_in(&self, context: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, String> {
        if !context.checkpointing {
            return self.open(context.shard, context.shards);
        }
        Ok(Box::new(PartitionedTransactionalWriter::open(
            &self.bucketing,
            &self.marks,
            context,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(dir: &std::path::Path) -> TimePartitionedFileSink<(i64, u32)> {
        TimePartitionedFileSink::new(
            dir.to_owned(),
            RecordFormat::JsonLines,
            100,
            10,
            |r: &(i64, u32)| r.0,
            |start| format!("t={start}"),
        )
    }

    fn recs(values: &[(i64, u32)]) -> Vec<Rec<(i64, u32)>> {
        values.iter().map(|&v| Rec { ts: v.0, value: v }).collect()
    }

    fn lines(path: PathBuf) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn buckets_commit_once_every_shard_has_passed_them() {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path());
        let mut a = sink.open(0, 2).unwrap();
        let mut b = sink.open(1, 2).unwrap();
        a.write(&recs(&[(5, 1), (99, 2), (100, 3), (-1, 4)]))
            .unwrap();
        b.write(&recs(&[(150, 5)])).unwrap();
        // Shard 0 passes bucket 0 (ends at 100, +10 delay), shard 1 does not yet.
        a.watermark(110);
        assert!(!dir.path().join("t=0/_SUCCESS").exists());
        assert_eq!(
            lines(dir.path().join("t=0/part-00000.jsonl")),
            ["[5,1]", "[99,2]"]
        );
        b.watermark(120);
        assert!(dir.path().join("t=0/_SUCCESS").exists());
        assert!(!dir.path().join("t=100/_SUCCESS").exists());
        // Buckets before zero start at multiples of the length too.
        assert!(dir.path().join("t=-100/_SUCCESS").exists());
        // A late record for a closed bucket opens a new part file; nothing is lost.
        a.write(&recs(&[(50, 6)])).unwrap();
        a.finish().unwrap();
        b.finish().unwrap();
        assert_eq!(lines(dir.path().join("t=0/part-00000-1.jsonl")), ["[50,6]"]);
        assert_eq!(
            lines(dir.path().join("t=100/part-00000.jsonl")),
            ["[100,3]"]
        );
        assert_eq!(
            lines(dir.path().join("t=100/part-00001.jsonl")),
            ["[150,5]"]
        );
        assert!(dir.path().join("t=100/_SUCCESS").exists());
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t=0"), "a file where a directory belongs").unwrap();
        let sink = sink(dir.path());
        let mut a = sink.open(0, 1).unwrap();
        let err = a.write(&recs(&[(5, 1)])).unwrap_err();
        assert!(err.contains("t=0"), "{err}");
    }
}
