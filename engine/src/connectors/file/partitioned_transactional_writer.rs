//! The event-time partitioned file sink of a job that takes checkpoints:
//! exactly once, with a bucket's `_SUCCESS` marker written only once every
//! record before it is committed (Flink's filesystem sink with the
//! partition-time commit trigger).
//!
//! Per shard: the records of a bucket go to that bucket directory's
//! transactional part file (see [`TransactionalFileWriter`]). At checkpoint
//! *n*'s barrier every part in progress becomes pending for *n*, and the
//! shard notes its watermark and the buckets it wrote since the previous
//! barrier. When *n* completes, the driver's thread calls each shard's
//! [`Committer`]: it commits the shard's parts pending up to *n* and tells the
//! [`MarkTracker`]; a bucket is marked once every shard that wrote to it has
//! committed the checkpoint covering those records and every shard's
//! watermark at its last committed barrier has passed the bucket's end plus
//! the commit delay. A record later than its marked bucket opens a new part
//! there, and the bucket is marked again once that part is committed.
//!
//! Each bucket directory holds a hidden `.bucket-<start>` file naming the
//! bucket it holds. After a crash, each shard recovers its parts in every
//! such directory under the sink's (pending parts of checkpoints up to the
//! restored one are committed, the rest deleted); buckets that gained parts
//! or never got their marker wait to be marked again, once the restored
//! job's watermarks pass them.
//!
//! Writers live on their shard; a shard's parts are shared with its committer
//! (one mutex, taken per batch by the shard and per completed checkpoint by
//! the driver). The tracker is shared by the shards of one run of the job.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use serde::Serialize;

use super::{RecordFormat, SinkContext, SinkWriter, TransactionalFileWriter};
use crate::checkpoint::{CheckpointId, Committer, Committers, FINAL_CHECKPOINT};
use crate::Rec;

/// How records fall into buckets and where a bucket's files go.
pub(super) struct Bucketing<T> {
    pub directory: PathBuf,
    pub format: RecordFormat,
    pub bucket_ms: i64,
    pub commit_delay_ms: i64,
    pub time_of: fn(&T) -> i64,
    pub bucket_path: fn(i64) -> String,
}

impl<T> Clone for Bucketing<T> {
    fn clone(&self) -> Self {
        Bucketing {
            directory: self.directory.clone(),
            format: self.format,
            bucket_ms: self.bucket_ms,
            commit_delay_ms: self.commit_delay_ms,
            time_of: self.time_of,
            bucket_path: self.bucket_path,
        }
    }
}

impl<T> Bucketing<T> {
    /// The start of the bucket of event time `time`.
    pub fn bucket_of(&self, time: i64) -> i64 {
        time.div_euclid(self.bucket_ms) * self.bucket_ms
    }

    /// The event time after which the bucket starting at `start` is complete.
    pub fn commit_time(&self, start: i64) -> i64 {
        start
            .saturating_add(self.bucket_ms)
            .saturating_add(self.commit_delay_ms)
    }

    pub fn bucket_directory(&self, start: i64) -> PathBuf {
        self.directory.join((self.bucket_path)(start))
    }
}

/// The name of the hidden file that tells which bucket a directory holds.
fn bucket_file_name(start: i64) -> String {
    format!(".bucket-{start}")
}

fn bucket_of_file_name(name: &str) -> Option<i64> {
    name.strip_prefix(".bucket-")?.parse().ok()
}

/// A checkpoint's barrier as one shard saw it.
#[derive(Debug, Clone, Copy)]
struct Barrier {
    checkpoint: CheckpointId,
    watermark: i64,
}

/// What a run's [`Committers`] points to.
type CommitterList = Mutex<Vec<Arc<Mutex<dyn Committer>>>>;

/// Which buckets of one run of the job may be marked complete; shared by its
/// shards. See the module docs.
#[derive(Default)]
pub(super) struct MarkTracker {
    /// The run this tracker belongs to (its committers list); a new run
    /// starts afresh.
    run: Weak<CommitterList>,
    /// Per shard: its last committed barrier.
    committed: Vec<Option<Barrier>>,
    /// Buckets not marked since records were written to them: per shard, the
    /// checkpoint it must commit before the bucket can be marked (`None`:
    /// nothing of that shard waits).
    unmarked: BTreeMap<i64, Vec<Option<CheckpointId>>>,
}

impl MarkTracker {
    /// Joins the run whose committers list `run` is, starting afresh if this
    /// is a new run.
    fn join(&mut self, run: &Committers, shards: u32) {
        let same = self
            .run
            .upgrade()
            .is_some_and(|current| Arc::ptr_eq(&current, run));
        if !same {
            *self = MarkTracker {
                run: Arc::downgrade(run),
                committed: vec![None; shards as usize],
                unmarked: BTreeMap::new(),
            };
        }
    }

    fn waiting(&mut self, bucket: i64) -> &mut Vec<Option<CheckpointId>> {
        let shards = self.committed.len();
        self.unmarked
            .entry(bucket)
            .or_insert_with(|| vec![None; shards])
    }

    /// `shard` wrote to `buckets` before `checkpoint`'s barrier.
    fn written(&mut self, shard: u32, checkpoint: CheckpointId, buckets: &BTreeSet<i64>) {
        for &bucket in buckets {
            let slot = &mut self.waiting(bucket)[shard as usize];
            *slot = Some(slot.map_or(checkpoint, |c| c.max(checkpoint)));
        }
    }

    /// A bucket found on disk without its marker (or with parts committed by
    /// recovery) waits only for the watermarks.
    fn recovered(&mut self, bucket: i64) {
        self.waiting(bucket);
    }

    /// `shard` committed up to `barrier`; returns the buckets now complete
    /// (removed from the tracker).
    fn commit<T>(&mut self, shard: u32, barrier: Barrier, bucketing: &Bucketing<T>) -> Vec<i64> {
        let slot = &mut self.committed[shard as usize];
        if slot.is_none_or(|c| c.checkpoint < barrier.checkpoint) {
            *slot = Some(barrier);
        }
        let Some(committed) = self.committed.iter().copied().collect::<Option<Vec<_>>>() else {
            return Vec::new();
        };
        let passed = committed
            .iter()
            .map(|b| b.watermark)
            .min()
            .unwrap_or(i64::MIN);
        let ready: Vec<i64> = self
            .unmarked
            .iter()
            .filter(|(&bucket, waits)| {
                bucketing.commit_time(bucket) <= passed
                    && waits.iter().zip(&committed).all(|(wait, done)| {
                        wait.is_none_or(|checkpoint| done.checkpoint >= checkpoint)
                    })
            })
            .map(|(&bucket, _)| bucket)
            .collect();
        for bucket in &ready {
            self.unmarked.remove(bucket);
        }
        ready
    }
}

/// One shard's part files, shared by its writer and its committer.
struct ShardParts {
    /// Per bucket with a part in progress or pending: its parts.
    writers: HashMap<i64, TransactionalFileWriter>,
    /// Buckets with parts pending, and the last checkpoint they are pending for.
    pending: BTreeMap<i64, CheckpointId>,
    /// Buckets written since the last barrier.
    written: BTreeSet<i64>,
    /// Barriers pre-committed and not yet committed, in order.
    barriers: Vec<Barrier>,
}

pub(super) struct PartitionedTransactionalWriter<T> {
    shard: u32,
    bucketing: Bucketing<T>,
    parts: Arc<Mutex<ShardParts>>,
    tracker: Arc<Mutex<MarkTracker>>,
    watermark: i64,
}

impl<T> PartitionedTransactionalWriter<T> {
    /// Opens shard `context.shard`'s writer after recovering its parts in
    /// every bucket directory under the sink's, and registers its committer.
    pub fn open(
        bucketing: &Bucketing<T>,
        tracker: &Arc<Mutex<MarkTracker>>,
        context: &SinkContext,
    ) -> Result<Self, String>
    where
        T: 'static,
    {
        std::fs::create_dir_all(&bucketing.directory).map_err(|e| {
            format!(
                "creating output directory {}: {e}",
                bucketing.directory.display()
            )
        })?;
        tracker
            .lock()
            .expect("mark tracker lock")
            .join(&context.committers, context.shards);
        let mut unfinished = Vec::new();
        for (dir, buckets) in bucket_directories(&bucketing.directory)? {
            let recovered = TransactionalFileWriter::recover(
                &dir,
                bucketing.format,
                context.shard,
                context.shards,
                context.restored,
            )?;
            if recovered.recovered_parts() > 0 || !dir.join("_SUCCESS").exists() {
                unfinished.extend(buckets);
            }
        }
        {
            let mut tracker = tracker.lock().expect("mark tracker lock");
            for bucket in unfinished {
                tracker.recovered(bucket);
            }
        }
        let parts = Arc::new(Mutex::new(ShardParts {
            writers: HashMap::new(),
            pending: BTreeMap::new(),
            written: BTreeSet::new(),
            barriers: Vec::new(),
        }));
        context
            .committers
            .lock()
            .expect("committers lock")
            .push(Arc::new(Mutex::new(PartitionCommitter {
                shard: context.shard,
                bucketing: bucketing.clone(),
                parts: parts.clone(),
                tracker: tracker.clone(),
            })));
        Ok(PartitionedTransactionalWriter {
            shard: context.shard,
            bucketing: bucketing.clone(),
            parts,
            tracker: tracker.clone(),
            watermark: i64::MIN,
        })
    }
}

/// Every directory under `root` (depth-first, symlinks not followed) that
/// holds a bucket, with the buckets it holds.
fn bucket_directories(root: &Path) -> Result<Vec<(PathBuf, Vec<i64>)>, String> {
    const MAX_DEPTH: usize = 16;
    let mut found = Vec::new();
    let mut stack = vec![(root.to_owned(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let mut buckets = Vec::new();
        let listing =
            std::fs::read_dir(&dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
        for entry in listing {
            let entry = entry.map_err(|e| format!("listing {}: {e}", dir.display()))?;
            let kind = entry
                .file_type()
                .map_err(|e| format!("reading {}: {e}", entry.path().display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() && depth < MAX_DEPTH {
                stack.push((entry.path(), depth + 1));
            } else if let Some(bucket) = bucket_of_file_name(&name) {
                buckets.push(bucket);
            }
        }
        if !buckets.is_empty() {
            found.push((dir, buckets));
        }
    }
    Ok(found)
}

impl ShardParts {
    /// The writer of `bucket`, opened (and the bucket's directory made) on
    /// first use.
    fn writer<T>(
        &mut self,
        shard: u32,
        bucket: i64,
        bucketing: &Bucketing<T>,
    ) -> Result<&mut TransactionalFileWriter, String> {
        use std::collections::hash_map::Entry;
        match self.writers.entry(bucket) {
            Entry::Occupied(open) => Ok(open.into_mut()),
            Entry::Vacant(vacant) => {
                let dir = bucketing.bucket_directory(bucket);
                let writer = TransactionalFileWriter::resume(&dir, bucketing.format, shard)?;
                let marker = dir.join(bucket_file_name(bucket));
                if !marker.exists() {
                    File::create(&marker)
                        .and_then(|f| f.sync_all())
                        .map_err(|e| format!("creating {}: {e}", marker.display()))?;
                }
                Ok(vacant.insert(writer))
            }
        }
    }
}

impl<T: Serialize + 'static> SinkWriter<T> for PartitionedTransactionalWriter<T> {
    fn write(&mut self, batch: &[Rec<T>]) -> Result<(), String> {
        let mut parts = self.parts.lock().expect("part writer lock");
        let mut i = 0;
        // Consecutive records of one bucket are written together.
        while i < batch.len() {
            let bucket = self
                .bucketing
                .bucket_of((self.bucketing.time_of)(&batch[i].value));
            let mut j = i + 1;
            while j < batch.len()
                && self
                    .bucketing
                    .bucket_of((self.bucketing.time_of)(&batch[j].value))
                    == bucket
            {
                j += 1;
            }
            parts
                .writer(self.shard, bucket, &self.bucketing)?
                .write(&batch[i..j])?;
            parts.written.insert(bucket);
            i = j;
        }
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<(), String> {
        let written = {
            let mut parts = self.parts.lock().expect("part writer lock");
            let ShardParts {
                writers, pending, ..
            } = &mut *parts;
            for (&bucket, writer) in writers.iter_mut() {
                if writer.has_part_in_progress() {
                    writer.pre_commit(checkpoint)?;
                    pending.insert(bucket, checkpoint);
                }
            }
            parts.barriers.push(Barrier {
                checkpoint,
                watermark: self.watermark,
            });
            std::mem::take(&mut parts.written)
        };
        self.tracker
            .lock()
            .expect("mark tracker lock")
            .written(self.shard, checkpoint, &written);
        Ok(())
    }

    fn watermark(&mut self, watermark: i64) {
        self.watermark = self.watermark.max(watermark);
    }

    fn finish(&mut self) -> Result<(), String> {
        // The end of the stream passes every bucket; the job's final
        // checkpoint commits what is left.
        self.watermark = i64::MAX;
        self.pre_commit(FINAL_CHECKPOINT)
    }
}

/// Commits one shard's parts when a checkpoint completes, and marks the
/// buckets that became complete.
struct PartitionCommitter<T> {
    shard: u32,
    bucketing: Bucketing<T>,
    parts: Arc<Mutex<ShardParts>>,
    tracker: Arc<Mutex<MarkTracker>>,
}

impl<T: 'static> Committer for PartitionCommitter<T> {
    fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), String> {
        let barrier = {
            let mut parts = self.parts.lock().expect("part writer lock");
            let due: Vec<i64> = parts
                .pending
                .iter()
                .filter(|(_, &last)| last <= checkpoint)
                .map(|(&bucket, _)| bucket)
                .collect();
            for bucket in due {
                let writer = parts.writers.get_mut(&bucket).expect("pending parts");
                writer.commit(checkpoint)?;
                parts.pending.remove(&bucket);
            }
            let Some(at) = parts
                .barriers
                .iter()
                .rposition(|b| b.checkpoint <= checkpoint)
            else {
                return Ok(());
            };
            let barrier = parts.barriers[at];
            parts.barriers.drain(..=at);
            barrier
        };
        let complete = self.tracker.lock().expect("mark tracker lock").commit(
            self.shard,
            barrier,
            &self.bucketing,
        );
        let mut first_error = None;
        for &bucket in &complete {
            let marker = self.bucketing.bucket_directory(bucket).join("_SUCCESS");
            if let Err(e) = File::create(&marker).and_then(|f| f.sync_all()) {
                first_error.get_or_insert(format!("committing {}: {e}", marker.display()));
                // Tried again when the next checkpoint completes.
                self.tracker
                    .lock()
                    .expect("mark tracker lock")
                    .recovered(bucket);
            }
        }
        // Writers of buckets with nothing in progress or pending are done
        // (a late record opens its bucket's writer again).
        let mut parts = self.parts.lock().expect("part writer lock");
        let ShardParts {
            writers, pending, ..
        } = &mut *parts;
        writers.retain(|bucket, w| w.has_part_in_progress() || pending.contains_key(bucket));
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucketing(dir: &Path) -> Bucketing<(i64, u32)> {
        Bucketing {
            directory: dir.to_owned(),
            format: RecordFormat::JsonLines,
            bucket_ms: 100,
            commit_delay_ms: 10,
            time_of: |r: &(i64, u32)| r.0,
            bucket_path: |start| format!("t={start}"),
        }
    }

    fn recs(values: &[(i64, u32)]) -> Vec<Rec<(i64, u32)>> {
        values.iter().map(|&v| Rec { ts: v.0, value: v }).collect()
    }

    /// One run of a two-shard job: its writers and its committers.
    struct Run {
        writers: Vec<Box<dyn SinkWriter<(i64, u32)>>>,
        committers: Committers,
    }

    impl Run {
        fn open(
            bucketing: &Bucketing<(i64, u32)>,
            tracker: &Arc<Mutex<MarkTracker>>,
            restored: Option<u64>,
        ) -> Run {
            let committers = Committers::default();
            let writers = (0..2)
                .map(|shard| {
                    let context = SinkContext {
                        shard,
                        shards: 2,
                        checkpointing: true,
                        restored,
                        committers: committers.clone(),
                    };
                    Box::new(
                        PartitionedTransactionalWriter::open(bucketing, tracker, &context).unwrap(),
                    ) as Box<dyn SinkWriter<(i64, u32)>>
                })
                .collect();
            Run {
                writers,
                committers,
            }
        }

        fn complete(&self, checkpoint: CheckpointId) {
            for committer in self.committers.lock().unwrap().iter() {
                committer.lock().unwrap().commit(checkpoint).unwrap();
            }
        }
    }

    /// The committed lines of bucket `t=<start>`, sorted, and whether it is marked.
    fn bucket(dir: &Path, start: i64) -> (Vec<String>, bool) {
        let dir = dir.join(format!("t={start}"));
        let mut lines = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("part-") {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                lines.extend(text.lines().map(str::to_owned));
            }
        }
        lines.sort();
        (lines, dir.join("_SUCCESS").exists())
    }

    fn strings(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn a_bucket_is_marked_once_every_shard_committed_what_it_wrote_there_and_passed_it() {
        let dir = tempfile::tempdir().unwrap();
        let bucketing = bucketing(dir.path());
        let tracker = Arc::default();
        let mut run = Run::open(&bucketing, &tracker, None);
        run.writers[0].write(&recs(&[(5, 1), (150, 2)])).unwrap();
        run.writers[1].write(&recs(&[(7, 3)])).unwrap();
        run.writers[0].watermark(120);
        run.writers[1].watermark(130);
        run.writers[0].pre_commit(1).unwrap();
        // Shard 1 writes to bucket 0 after its watermark passed it (a late
        // record), before its barrier: covered by checkpoint 1.
        run.writers[1].write(&recs(&[(8, 4)])).unwrap();
        run.writers[1].pre_commit(1).unwrap();
        assert_eq!(
            bucket(dir.path(), 0),
            (vec![], false),
            "nothing before the commit"
        );
        run.complete(1);
        assert_eq!(
            bucket(dir.path(), 0),
            (strings(&["[5,1]", "[7,3]", "[8,4]"]), true)
        );
        assert_eq!(bucket(dir.path(), 100), (strings(&["[150,2]"]), false));
        // A late record after the mark: the bucket is marked again only once
        // the part holding it is committed, by the checkpoint after it.
        run.writers[1].write(&recs(&[(9, 5)])).unwrap();
        std::fs::remove_file(dir.path().join("t=0/_SUCCESS")).unwrap();
        run.writers[0].pre_commit(2).unwrap();
        run.writers[1].pre_commit(2).unwrap();
        run.writers[0].watermark(300);
        run.writers[0].write(&recs(&[(250, 6)])).unwrap();
        let committers = run.committers.lock().unwrap().clone();
        committers[0].lock().unwrap().commit(2).unwrap();
        assert!(
            !bucket(dir.path(), 0).1,
            "shard 1's late part is not committed yet"
        );
        committers[1].lock().unwrap().commit(2).unwrap();
        assert_eq!(
            bucket(dir.path(), 0),
            (strings(&["[5,1]", "[7,3]", "[8,4]", "[9,5]"]), true)
        );
        // Shard 1's watermark at barrier 2 (130) holds bucket 100 back.
        assert_eq!(bucket(dir.path(), 100), (strings(&["[150,2]"]), false));
        for w in &mut run.writers {
            w.finish().unwrap();
        }
        run.complete(FINAL_CHECKPOINT);
        assert_eq!(bucket(dir.path(), 100), (strings(&["[150,2]"]), true));
        assert_eq!(bucket(dir.path(), 200), (strings(&["[250,6]"]), true));
    }

    #[test]
    fn recovery_commits_up_to_the_restored_checkpoint_and_marks_the_buckets_again() {
        let dir = tempfile::tempdir().unwrap();
        let bucketing = bucketing(dir.path());
        let tracker = Arc::default();
        let mut run = Run::open(&bucketing, &tracker, None);
        run.writers[0].write(&recs(&[(5, 1)])).unwrap();
        run.writers[1].write(&recs(&[(6, 2)])).unwrap();
        for w in &mut run.writers {
            w.watermark(200);
            w.pre_commit(1).unwrap();
        }
        run.writers[0].write(&recs(&[(150, 3)])).unwrap();
        run.writers[0].pre_commit(2).unwrap();
        run.writers[0].write(&recs(&[(160, 4)])).unwrap();
        // Killed before checkpoint 1 was announced complete; it was.
        drop(run);
        let mut run = Run::open(&bucketing, &tracker, Some(1));
        assert_eq!(bucket(dir.path(), 0), (strings(&["[5,1]", "[6,2]"]), false));
        assert_eq!(bucket(dir.path(), 100), (vec![], false));
        let hidden: Vec<String> = std::fs::read_dir(dir.path().join("t=100"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".part"))
            .collect();
        assert!(hidden.is_empty(), "{hidden:?}");
        // The restored run reads on from checkpoint 1.
        run.writers[0].write(&recs(&[(150, 3), (160, 4)])).unwrap();
        for w in &mut run.writers {
            w.watermark(50);
            w.pre_commit(3).unwrap();
        }
        run.complete(3);
        assert!(!bucket(dir.path(), 0).1, "the watermarks are behind it");
        for w in &mut run.writers {
            w.watermark(300);
            w.pre_commit(4).unwrap();
        }
        run.complete(4);
        assert_eq!(bucket(dir.path(), 0), (strings(&["[5,1]", "[6,2]"]), true));
        assert_eq!(
            bucket(dir.path(), 100),
            (strings(&["[150,3]", "[160,4]"]), true)
        );
    }
}
