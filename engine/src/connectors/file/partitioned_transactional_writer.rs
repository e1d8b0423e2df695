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
//! the driver). The tracker is shared by the shards of one run of the job in
//! this process.
//!
//! On a cluster the markers are decided in one place, the process that runs
//! shard 0 (Flink's single partition committer). The trackers of the other
//! processes decide nothing: each commit of one of their shards becomes a
//! [`CommitNote`] (the shard's barrier and the buckets it wrote since its last
//! note), which the checkpoint leader hands to shard 0's committer; its
//! tracker takes it as if that shard had committed there. The deciding
//! process ends its part only once every shard's note of the final commit
//! has arrived, so the last buckets are marked before the job ends. The sink
//! is named in notes by its directory, the same in every process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Serialize};

use super::{RecordFormat, SinkContext, SinkWriter, TransactionalFileWriter};
use crate::checkpoint::{CheckpointId, CommitNote, Committer, Committers, FINAL_CHECKPOINT};
use crate::Rec;

/// How records fall into buckets and where a bucket's files go.
pub(super) struct Bucketing<T> {
    pub directory: PathBuf,
    pub format: RecordFormat,
    pub bucket_ms: i64,
    pub commit_delay_ms: i64,
    pub time_of: TimeOf<T>,
    pub bucket_path: BucketPath,
}

/// A record's event time.
pub type TimeOf<T> = Arc<dyn Fn(&T) -> i64 + Send + Sync>;

/// The directory of the bucket starting at a time, relative to the sink's.
pub type BucketPath = Arc<dyn Fn(i64) -> String + Send + Sync>;

impl<T> Clone for Bucketing<T> {
    fn clone(&self) -> Self {
        Bucketing {
            directory: self.directory.clone(),
            format: self.format,
            bucket_ms: self.bucket_ms,
            commit_delay_ms: self.commit_delay_ms,
            time_of: self.time_of.clone(),
            bucket_path: self.bucket_path.clone(),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Barrier {
    checkpoint: CheckpointId,
    watermark: i64,
}

/// What a run's [`Committers`] points to.
type CommitterList = Mutex<Vec<Arc<Mutex<dyn Committer>>>>;

/// What a shard of a process that does not decide tells the deciding one
/// after committing up to `barrier`: the buckets it wrote since its last
/// note, each with the checkpoint that covers the writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MarkNote {
    shard: u32,
    barrier: Barrier,
    written: Vec<(i64, CheckpointId)>,
}

/// Which buckets of one run of the job may be marked complete; shared by its
/// shards in this process. See the module docs.
#[derive(Default)]
pub(super) struct MarkTracker {
    /// The run this tracker belongs to (its committers list); a new run
    /// starts afresh.
    run: Weak<CommitterList>,
    /// Markers are decided here (shard 0 runs in this process); otherwise
    /// commits become notes.
    decides: bool,
    /// Not deciding: per shard here, the buckets written since its last
    /// note and the last checkpoint covering each.
    unsent: BTreeMap<u32, BTreeMap<i64, CheckpointId>>,
    /// Not deciding: notes not yet taken.
    outgoing: Vec<MarkNote>,
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
    fn join(&mut self, run: &Committers, shards: u32, decides: bool) {
        let same = self
            .run
            .upgrade()
            .is_some_and(|current| Arc::ptr_eq(&current, run));
        if !same {
            *self = MarkTracker {
                run: Arc::downgrade(run),
                decides,
                unsent: BTreeMap::new(),
                outgoing: Vec::new(),
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
        if !self.decides {
            let unsent = self.unsent.entry(shard).or_default();
            for &bucket in buckets {
                let last = unsent.entry(bucket).or_insert(checkpoint);
                *last = (*last).max(checkpoint);
            }
            return;
        }
        for &bucket in buckets {
            let slot = &mut self.waiting(bucket)[shard as usize];
            *slot = Some(slot.map_or(checkpoint, |c| c.max(checkpoint)));
        }
    }

    /// A bucket found on disk without its marker (or with parts committed by
    /// recovery) waits only for the watermarks.
    fn recovered(&mut self, bucket: i64) {
        if self.decides {
            self.waiting(bucket);
        }
    }

    /// A note from another process's shard: it committed as if here.
    fn note<T>(&mut self, note: MarkNote, bucketing: &Bucketing<T>) -> Result<Vec<i64>, String> {
        if !self.decides {
            return Ok(Vec::new());
        }
        let shards = self.committed.len();
        if note.shard as usize >= shards {
            return Err(format!(
                "a note from shard {} of a job of {shards} shards",
                note.shard
            ));
        }
        for (bucket, checkpoint) in note.written {
            let slot = &mut self.waiting(bucket)[note.shard as usize];
            *slot = Some(slot.map_or(checkpoint, |c| c.max(checkpoint)));
        }
        Ok(self.commit(note.shard, note.barrier, bucketing))
    }

    /// Deciding here, some shard has committed the final checkpoint and
    /// another has not yet (its note is on its way).
    fn awaiting_final(&self) -> bool {
        let is_final = |b: &Option<Barrier>| b.is_some_and(|b| b.checkpoint == FINAL_CHECKPOINT);
        self.decides && self.committed.iter().any(is_final) && !self.committed.iter().all(is_final)
    }

    /// `shard` committed up to `barrier`; returns the buckets now complete
    /// (removed from the tracker).
    fn commit<T>(&mut self, shard: u32, barrier: Barrier, bucketing: &Bucketing<T>) -> Vec<i64> {
        if !self.decides {
            let written = self.unsent.remove(&shard).unwrap_or_default();
            self.outgoing.push(MarkNote {
                shard,
                barrier,
                written: written.into_iter().collect(),
            });
            return Vec::new();
        }
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
        tracker.lock().expect("mark tracker lock").join(
            &context.committers,
            context.shards,
            context.decides_for_job,
        );
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
                sink: bucketing.directory.display().to_string(),
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
    /// The sink's name in notes.
    sink: String,
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
        let marked = self.mark(&complete);
        // Writers of buckets with nothing in progress or pending are done
        // (a late record opens its bucket's writer again).
        let mut parts = self.parts.lock().expect("part writer lock");
        let ShardParts {
            writers, pending, ..
        } = &mut *parts;
        writers.retain(|bucket, w| w.has_part_in_progress() || pending.contains_key(bucket));
        marked
    }

    fn take_notes(&mut self) -> Vec<CommitNote> {
        let notes = std::mem::take(&mut self.tracker.lock().expect("mark tracker lock").outgoing);
        notes
            .into_iter()
            .map(|note| CommitNote {
                sink: self.sink.clone(),
                body: serde_json::to_value(note).expect("a note is plain data"),
            })
            .collect()
    }

    fn receive_note(&mut self, note: &CommitNote) -> Result<(), String> {
        // Shard 0's committer takes notes for the tracker of its process.
        if note.sink != self.sink || self.shard != 0 {
            return Ok(());
        }
        let body = MarkNote::deserialize(&note.body)
            .map_err(|e| format!("a malformed note ({e}): {}", note.body))?;
        let complete =
            (self.tracker.lock().expect("mark tracker lock")).note(body, &self.bucketing)?;
        self.mark(&complete)
    }

    fn awaiting_final_notes(&self) -> bool {
        self.shard == 0
            && self
                .tracker
                .lock()
                .expect("mark tracker lock")
                .awaiting_final()
    }
}

impl<T> PartitionCommitter<T> {
    /// Writes the markers of `complete` buckets; one that fails is tried
    /// again when the next checkpoint completes.
    fn mark(&self, complete: &[i64]) -> Result<(), String> {
        let mut first_error = None;
        for &bucket in complete {
            let marker = self.bucketing.bucket_directory(bucket).join("_SUCCESS");
            if let Err(e) = File::create(&marker).and_then(|f| f.sync_all()) {
                first_error.get_or_insert(format!("committing {}: {e}", marker.display()));
                self.tracker
                    .lock()
                    .expect("mark tracker lock")
                    .recovered(bucket);
            }
        }
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
            time_of: Arc::new(|r: &(i64, u32)| r.0),
            bucket_path: Arc::new(|start| format!("t={start}")),
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
            Run::open_part(bucketing, tracker, restored, &[0, 1])
        }

        /// The part of the run in one process: the shards `here` of 2.
        fn open_part(
            bucketing: &Bucketing<(i64, u32)>,
            tracker: &Arc<Mutex<MarkTracker>>,
            restored: Option<u64>,
            here: &[u32],
        ) -> Run {
            let committers = Committers::default();
            let writers = (here.iter())
                .map(|&shard| {
                    let context = SinkContext {
                        shard,
                        shards: 2,
                        checkpointing: true,
                        restored,
                        committers: committers.clone(),
                        decides_for_job: here.contains(&0),
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

        /// The notes this part's committers left, through JSON as on the wire.
        fn notes(&self) -> Vec<CommitNote> {
            let notes: Vec<CommitNote> = (self.committers.lock().unwrap().iter())
                .flat_map(|c| c.lock().unwrap().take_notes())
                .collect();
            serde_json::from_str(&serde_json::to_string(&notes).unwrap()).unwrap()
        }

        fn receive(&self, notes: &[CommitNote]) -> Result<(), String> {
            for committer in self.committers.lock().unwrap().iter() {
                for note in notes {
                    committer.lock().unwrap().receive_note(note)?;
                }
            }
            Ok(())
        }

        fn awaiting_final_notes(&self) -> bool {
            (self.committers.lock().unwrap().iter())
                .any(|c| c.lock().unwrap().awaiting_final_notes())
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
    fn across_processes_buckets_are_marked_where_shard_0_runs_from_the_others_notes() {
        let dir = tempfile::tempdir().unwrap();
        let bucketing = bucketing(dir.path());
        let (tracker_a, tracker_b) = (Arc::default(), Arc::default());
        let mut a = Run::open_part(&bucketing, &tracker_a, None, &[0]);
        let mut b = Run::open_part(&bucketing, &tracker_b, None, &[1]);
        a.writers[0].write(&recs(&[(5, 1)])).unwrap();
        b.writers[0].write(&recs(&[(7, 3), (150, 2)])).unwrap();
        a.writers[0].watermark(120);
        b.writers[0].watermark(130);
        a.writers[0].pre_commit(1).unwrap();
        b.writers[0].pre_commit(1).unwrap();
        a.complete(1);
        b.complete(1);
        assert!(a.notes().is_empty(), "the deciding process leaves no notes");
        assert_eq!(
            bucket(dir.path(), 0),
            (strings(&["[5,1]", "[7,3]"]), false),
            "committed, but shard 1's commit is not known where shard 0 runs"
        );
        let notes = b.notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(b.notes().is_empty(), "a note is taken once");
        b.receive(&notes).unwrap();
        assert!(
            !bucket(dir.path(), 0).1,
            "a process without shard 0 marks nothing"
        );
        a.receive(&notes).unwrap();
        assert_eq!(bucket(dir.path(), 0), (strings(&["[5,1]", "[7,3]"]), true));
        assert!(!bucket(dir.path(), 100).1, "the watermarks are behind it");

        // Bad notes are named and change nothing.
        let mut malformed = notes[0].clone();
        malformed.body = serde_json::json!({"shard": "one"});
        let error = a.receive(&[malformed]).unwrap_err();
        assert!(error.contains("malformed note"), "{error}");
        let mut stranger = notes[0].clone();
        stranger.body["shard"] = serde_json::json!(7);
        let error = a.receive(&[stranger]).unwrap_err();
        assert!(error.contains("shard 7 of a job of 2 shards"), "{error}");
        let mut other_sink = notes[0].clone();
        other_sink.sink = "elsewhere".into();
        other_sink.body["barrier"]["watermark"] = serde_json::json!(i64::MAX);
        a.receive(&[other_sink]).unwrap();
        assert!(
            !bucket(dir.path(), 100).1,
            "a note of another sink is not this one's"
        );

        // The end: shard 0's process waits for the other's final note.
        a.writers[0].finish().unwrap();
        a.complete(FINAL_CHECKPOINT);
        assert!(a.awaiting_final_notes());
        assert!(!bucket(dir.path(), 100).1);
        b.writers[0].finish().unwrap();
        b.complete(FINAL_CHECKPOINT);
        assert!(!b.awaiting_final_notes());
        a.receive(&b.notes()).unwrap();
        assert!(!a.awaiting_final_notes());
        assert_eq!(bucket(dir.path(), 100), (strings(&["[150,2]"]), true));
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
