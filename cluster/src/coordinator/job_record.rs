//! The small record of each job in the coordinator's storage: what a
//! restarted coordinator needs to find its jobs again (the job file, its
//! state, the last attempt). One JSON file per job, `jobs/<id>.json`,
//! replaced atomically (written aside, then renamed). The record holds
//! nothing that cannot move to a key-value store (etcd) later.
//!
//! Written and read on the coordinator's threads, under its state's lock.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

/// The directory of job records.
pub struct JobRecords {
    directory: PathBuf,
}

impl JobRecords {
    pub fn open(storage: &Path) -> Result<Self, String> {
        let directory = storage.join("jobs");
        std::fs::create_dir_all(&directory)
            .map_err(|e| format!("cannot create {}: {e}", directory.display()))?;
        Ok(JobRecords { directory })
    }

    pub fn write(&self, job: &Job) -> Result<(), String> {
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
        let path = self.directory.join(format!("{}.json", job.id));
        let aside = self.directory.join(format!(".{}.json.new", job.id));
        let bytes = serde_json::to_vec_pretty(&record).map_err(|e| e.to_string())?;
        std::fs::write(&aside, bytes)
            .and_then(|()| std::fs::File::open(&aside)?.sync_all())
            .and_then(|()| std::fs::rename(&aside, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Every record; one that cannot be read is reported (by file) and
    /// left out, never a reason to stop.
    pub fn read_all(&self) -> (Vec<Job>, Vec<String>) {
        let mut jobs = Vec::new();
        let mut problems = Vec::new();
        let entries = match std::fs::read_dir(&self.directory) {
            Ok(entries) => entries,
            Err(e) => return (jobs, vec![format!("{}: {e}", self.directory.display())]),
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
            let record = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<JobRecord>(&bytes).map_err(|e| e.to_string())
                });
            // The settings the coordinator acts on come from the job file.
            let record = record.and_then(|r| {
                crate::job_file::JobFile::parse(std::path::Path::new(&r.path), &r.text)
                    .and_then(|mut file| match &r.restore_from {
                        Some(given) => crate::run::apply_restore(&mut file, given).map(|()| file),
                        None => Ok(file),
                    })
                    .map(|file| (r, file))
                    .map_err(|e| format!("its job file: {e}"))
            });
            match record {
                Ok((r, file)) => jobs.push(Job {
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
                }),
                Err(e) => problems.push(format!("job record {}: {e}", path.display())),
            }
        }
        (jobs, problems)
    }
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
        let (jobs, problems) = records.read_all();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].id, id);
        assert_eq!(jobs[0].text, GENERATED);
        assert_eq!(jobs[0].requested_shards, Some(3));
        assert_eq!(jobs[0].last_checkpoint, Some(12));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("job-0099.json"), "{}", problems[0]);
    }
}
