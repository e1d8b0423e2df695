//! The small record of each job: what a restarted (or newly elected)
//! coordinator needs to find its jobs again (the job file, its state, the
//! last attempt, the checkpoint to restore). In the coordinator's storage,
//! one JSON file per job, `jobs/<id>.json`, replaced atomically (written
//! aside, then renamed); with `[ha]`, in etcd (`<prefix>/jobs/<id>`, and
//! the checkpoint pointer `<prefix>/checkpoints/<id>` of which a job's
//! record may hold an older value).
//!
//! Written on the coordinator's threads under its state's lock (files), or
//! queued there for a writer thread (etcd); read when a coordinator starts
//! to lead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sluice_engine::checkpoint::CheckpointId;

use super::leadership::Leadership;
use super::state::{Job, JobState};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobRecord {
    id: String,
    name: String,
    path: String,
    text: String,
    requested_shards: Option<u32>,
    max_parallelism: u32,
    state: JobState,
    attempt: u32,
    error: Option<String>,
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    last_checkpoint: Option<u64>,
    #[serde(default)]
    stopped_with: Option<String>,
    #[serde(default)]
    restore_from: Option<String>,
}

/// Where job records are kept: files in the coordinator's storage, or etcd
/// when coordinators are highly available.
pub enum JobRecords {
    Files { directory: PathBuf },
    Etcd(EtcdRecords),
}

/// Job records in etcd: written by a thread of their own (latest record per
/// job first, retried while the lease holds) so that the coordinator's
/// lock is never held across a call to etcd; each job's checkpoint pointer
/// is written by its checkpoint leader itself, durably, before any sink
/// commits that checkpoint.
pub struct EtcdRecords {
    leadership: Arc<Leadership>,
    queue: Mutex<Sender<(String, Vec<u8>)>>,
}

impl JobRecords {
    pub fn open(storage: &Path) -> Result<Self, String> {
        let directory = storage.join("jobs");
        std::fs::create_dir_all(&directory)
            .map_err(|e| format!("cannot create {}: {e}", directory.display()))?;
        Ok(JobRecords::Files { directory })
    }

    /// Records in etcd, written while `leadership` leads.
    pub fn in_etcd(leadership: Arc<Leadership>) -> Result<Self, String> {
        let (queue, queued) = channel::<(String, Vec<u8>)>();
        let writer = leadership.clone();
        std::thread::Builder::new()
            .name("sluice-etcd-records".into())
            .spawn(move || {
                while let Ok(first) = queued.recv() {
                    let mut latest: BTreeMap<String, Vec<u8>> = BTreeMap::from([first]);
                    while let Ok((id, bytes)) = queued.try_recv() {
                        latest.insert(id, bytes);
                    }
                    for (id, bytes) in latest {
                        writer.put_durably(JOBS, &id, bytes);
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(JobRecords::Etcd(EtcdRecords {
            leadership,
            queue: Mutex::new(queue),
        }))
    }

    pub fn write(&self, job: &Job) -> Result<(), String> {
        let bytes = encode(job)?;
        match self {
            JobRecords::Files { directory } => {
                let path = directory.join(format!("{}.json", job.id));
                let aside = directory.join(format!(".{}.json.new", job.id));
                std::fs::write(&aside, bytes)
                    .and_then(|()| std::fs::File::open(&aside)?.sync_all())
                    .and_then(|()| std::fs::rename(&aside, &path))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
            JobRecords::Etcd(etcd) => (etcd.queue.lock().unwrap_or_else(|p| p.into_inner()))
                .send((job.id.clone(), bytes))
                .map_err(|_| "the etcd record writer has stopped".to_string()),
        }
    }

    /// Whether [`Self::write`] only queues the record (etcd), so that what
    /// the API acknowledges must be written again, durably.
    pub fn writes_later(&self) -> bool {
        matches!(self, JobRecords::Etcd(_))
    }

    /// Writes `job`'s record and returns once it is durable (files: they
    /// were, synchronously, under the state's lock that changed them, and
    /// writing again here would race that writer for the file set aside;
    /// etcd: past the queue, waiting while etcd is away and the lease
    /// holds). For what the API answers: a submission or a cancellation
    /// acknowledged is never lost to a failover.
    pub fn write_durably(&self, job: &Job) -> Result<(), String> {
        match self {
            JobRecords::Files { .. } => Ok(()),
            JobRecords::Etcd(etcd) => {
                etcd.leadership.put_durably(JOBS, &job.id, encode(job)?);
                Ok(())
            }
        }
    }

    /// Makes checkpoint `checkpoint` of job `id` the one its next attempt
    /// restores, durably, before it returns (files: the job record written
    /// with it, by the caller; etcd: the job's pointer, written here,
    /// waiting while etcd is away and the lease holds). Called off the
    /// coordinator's lock.
    pub fn persist_checkpoint(&self, id: &str, checkpoint: CheckpointId) {
        if let JobRecords::Etcd(etcd) = self {
            (etcd.leadership).put_durably(CHECKPOINTS, id, checkpoint.to_string().into_bytes());
        }
    }

    /// Every record; one that cannot be read is reported (by file or key)
    /// and left out, never a reason to stop. Records in etcd that cannot be
    /// read at all are an error: a leader that went on without them would
    /// number new jobs over the old ones.
    pub fn read_all(&self) -> Result<(Vec<Job>, Vec<String>), String> {
        let mut jobs = Vec::new();
        let mut problems = Vec::new();
        match self {
            JobRecords::Files { directory } => {
                let entries = match std::fs::read_dir(directory) {
                    Ok(entries) => entries,
                    Err(e) => return Ok((jobs, vec![format!("{}: {e}", directory.display())])),
                };
                let mut paths: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .filter(|p| {
                        !p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .collect();
                paths.sort();
                for path in paths {
                    match std::fs::read(&path)
                        .map_err(|e| e.to_string())
                        .and_then(|bytes| decode(&bytes))
                    {
                        Ok(job) => jobs.push(job),
                        Err(e) => problems.push(format!("job record {}: {e}", path.display())),
                    }
                }
            }
            JobRecords::Etcd(etcd) => {
                let records = etcd.leadership.read_all(JOBS)?;
                let pointers = etcd.leadership.read_all(CHECKPOINTS)?;
                for (id, bytes) in records {
                    match decode(&bytes) {
                        Ok(mut job) => {
                            let pointer = (pointers.iter())
                                .find(|(p, _)| *p == id)
                                .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok());
                            job.last_checkpoint = job.last_checkpoint.max(pointer);
                            jobs.push(job);
                        }
                        Err(e) => problems.push(format!("job record {JOBS}/{id} in etcd: {e}")),
                    }
                }
            }
        }
        Ok((jobs, problems))
    }
}

/// Where job records are under the cluster's etcd prefix.
const JOBS: &str = "jobs";
/// Where each job's checkpoint pointer is.
const CHECKPOINTS: &str = "checkpoints";

fn encode(job: &Job) -> Result<Vec<u8>, String> {
    let record = JobRecord {
        id: job.id.clone(),
        name: job.name.clone(),
        path: job.path.clone(),
        text: job.text.clone(),
        requested_shards: job.requested_shards,
        max_parallelism: job.max_parallelism,
        state: job.state,
        attempt: job.attempt,
        error: job.error.clone(),
        failures: job.failures,
        last_checkpoint: job.last_checkpoint,
        stopped_with: job.stopped_with.clone(),
        restore_from: job.restore_from.clone(),
    };
    serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())
}

fn decode(bytes: &[u8]) -> Result<Job, String> {
    let r = serde_json::from_slice::<JobRecord>(bytes).map_err(|e| e.to_string())?;
    // The settings the coordinator acts on come from the job file.
    let file = crate::job_file::JobFile::parse(std::path::Path::new(&r.path), &r.text)
        .and_then(|mut file| match &r.restore_from {
            Some(given) => crate::run::apply_restore(&mut file, given).map(|()| file),
            None => Ok(file),
        })
        .map_err(|e| format!("its job file: {e}"))?;
    Ok(Job {
        id: r.id,
        name: r.name,
        path: r.path,
        text: r.text,
        requested_shards: r.requested_shards,
        max_parallelism: r.max_parallelism,
        state: r.state,
        attempt: r.attempt,
        placement: Vec::new(),
        tasks: Default::default(),
        error: r.error,
        checkpoints: file.config.checkpoint.clone(),
        restart: file.config.restart,
        failures: r.failures,
        last_checkpoint: r.last_checkpoint,
        not_before: None,
        stopped_with: r.stopped_with,
        restore_from: r.restore_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::state::{Cluster, NewJob};

    const GENERATED: &str = "job = \"windowed_aggregation\"\n[source]\nconnector = \"generator\"\nevents = 10\n[sink]\nconnector = \"blackhole\"\n";

    #[test]
    fn records_round_trip_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let records = JobRecords::open(dir.path()).unwrap();
        let mut cluster = Cluster::default();
        let id = cluster.submit(NewJob {
            name: "wordcount".into(),
            path: "/w.toml".into(),
            text: GENERATED.into(),
            requested_shards: Some(3),
            max_parallelism: 128,
            checkpoints: None,
            restart: Default::default(),
            restore_from: None,
        });
        cluster.checkpoint_completed(&id, 12);
        records.write(&cluster.jobs[&id]).unwrap();
        std::fs::write(dir.path().join("jobs/job-0099.json"), b"{ not json").unwrap();
        let (jobs, problems) = records.read_all().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].id, id);
        assert_eq!(jobs[0].text, GENERATED);
        assert_eq!(jobs[0].requested_shards, Some(3));
        assert_eq!(jobs[0].last_checkpoint, Some(12));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("job-0099.json"), "{}", problems[0]);
    }
}
