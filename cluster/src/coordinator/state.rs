//! What the coordinator knows: the workers and the jobs, and how each event
//! changes them. Pure: every method takes the event and returns the
//! messages to send (`Outgoing`); the threads around it do the I/O and
//! persist the jobs marked dirty.
//!
//! Lives behind one mutex in the coordinator process; no shard core touches
//! it.
//!
//! Invariants: a job's tasks all belong to its current attempt; a report
//! that names another attempt is dropped (fencing); a worker's shards are
//! used by at most one live attempt each; a job reaches `Finished` only when
//! every task of its attempt finished, and leaves a terminal state never;
//! a failed attempt of a job that checkpoints is followed by another (from
//! its last completed checkpoint) as long as its restart strategy allows.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sluice_engine::checkpoint::{CheckpointConfig, CheckpointId, RestartStrategy};

use super::placement::{place, shards_for, FreeShards};
use crate::control::{ShardPlacement, TaskTotals, ToCoordinator, ToWorker};

/// Messages to send, by worker name.
pub type Outgoing = Vec<(String, ToWorker)>;

/// A job's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for enough free shards.
    Waiting,
    /// Deployed; not every task has connected its links yet.
    Deploying,
    Running,
    Finished,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Failed | JobState::Cancelled
        )
    }
}

/// One worker's task of a job's current attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Deploying,
    Running,
    Finished,
    Failed,
}

/// A task as the status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    pub state: TaskState,
    pub shards: Vec<u32>,
    pub totals: TaskTotals,
}

/// What a worker's drain does to the jobs with a task on it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drain {
    /// Attempts that move off after a checkpoint taken now.
    pub moving: Vec<(String, u32)>,
    /// Jobs that do not checkpoint: they stay until they end.
    pub staying: Vec<String>,
}

/// A submitted job.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: String,
    /// The registered job it runs.
    pub name: String,
    /// The job file as submitted.
    pub path: String,
    #[serde(skip)]
    pub text: String,
    /// `[cluster] shards`, or the file's `shards`; else every free shard.
    pub requested_shards: Option<u32>,
    pub max_parallelism: u32,
    pub state: JobState,
    /// The attempt running (0: none yet).
    pub attempt: u32,
    pub placement: Vec<ShardPlacement>,
    /// By worker name, for the current attempt.
    pub tasks: BTreeMap<String, TaskStatus>,
    pub error: Option<String>,
    /// `[checkpoint]`, if the job checkpoints.
    #[serde(skip)]
    pub checkpoints: Option<CheckpointConfig>,
    #[serde(skip)]
    pub restart: RestartStrategy,
    /// Failed attempts so far (restarts taken).
    pub failures: u32,
    /// The newest checkpoint completed: the next attempt restores it.
    pub last_checkpoint: Option<CheckpointId>,
    /// A restarting job waits until then.
    #[serde(skip)]
    pub not_before: Option<Instant>,
    /// Where a stop-with-savepoint wrote its savepoint.
    pub stopped_with: Option<String>,
    /// What the job was submitted to restore (`--restore`): its attempts
    /// restore it until the job completes a checkpoint of its own.
    pub restore_from: Option<String>,
}

/// A registered worker.
#[derive(Debug, Clone, Serialize)]
pub struct Worker {
    pub name: String,
    pub data_address: String,
    pub shards: u32,
    pub alive: bool,
    /// It is stopping (SIGTERM): nothing new is placed on it, and its jobs
    /// move off after a checkpoint.
    #[serde(default)]
    pub draining: bool,
    #[serde(skip)]
    pub last_heard: Option<Instant>,
}

/// What the coordinator knows.
#[derive(Debug, Default)]
pub struct Cluster {
    pub workers: BTreeMap<String, Worker>,
    pub jobs: BTreeMap<String, Job>,
    /// Jobs whose record must be written.
    pub dirty: BTreeSet<String>,
    next_job: u64,
}

/// A job as submitted (its file already validated).
pub struct NewJob {
    pub name: String,
    pub path: String,
    pub text: String,
    pub requested_shards: Option<u32>,
    pub max_parallelism: u32,
    pub checkpoints: Option<CheckpointConfig>,
    pub restart: RestartStrategy,
    pub restore_from: Option<String>,
}

impl Cluster {
    /// Adds a job found in storage (a coordinator restarted): a job that
    /// had not ended waits to be deployed again, under a new attempt.
    pub fn recover(&mut self, mut job: Job) {
        if !job.state.is_terminal() {
            job.state = JobState::Waiting;
            job.placement.clear();
            job.tasks.clear();
        }
        if let Some(n) = job
            .id
            .strip_prefix("job-")
            .and_then(|n| n.parse::<u64>().ok())
        {
            self.next_job = self.next_job.max(n + 1);
        }
        self.jobs.insert(job.id.clone(), job);
    }

    pub fn submit(&mut self, new: NewJob) -> String {
        self.next_job = self.next_job.max(1);
        let id = format!("job-{:04}", self.next_job);
        self.next_job += 1;
        self.jobs.insert(
            id.clone(),
            Job {
                id: id.clone(),
                name: new.name,
                path: new.path,
                text: new.text,
                requested_shards: new.requested_shards,
                max_parallelism: new.max_parallelism,
                state: JobState::Waiting,
                attempt: 0,
                placement: Vec::new(),
                tasks: BTreeMap::new(),
                error: None,
                checkpoints: new.checkpoints,
                restart: new.restart,
                failures: 0,
                last_checkpoint: None,
                not_before: None,
                stopped_with: None,
                restore_from: new.restore_from,
            },
        );
        self.dirty.insert(id.clone());
        id
    }

    /// A worker registered (again): its earlier tasks are gone (it cancels
    /// them when it loses the coordinator).
    pub fn register(
        &mut self,
        name: &str,
        data_address: &str,
        shards: u32,
        now: Instant,
    ) -> Result<Outgoing, String> {
        if self.workers.get(name).is_some_and(|w| w.alive) {
            return Err(format!("a live worker is already registered as `{name}`"));
        }
        if shards == 0 {
            return Err("a worker must offer at least one shard".into());
        }
        let out = self.worker_lost(name, "it registered again");
        self.workers.insert(
            name.to_owned(),
            Worker {
                name: name.to_owned(),
                data_address: data_address.to_owned(),
                shards,
                alive: true,
                draining: false,
                last_heard: Some(now),
            },
        );
        Ok(out)
    }

    pub fn heard(&mut self, name: &str, now: Instant) {
        if let Some(worker) = self.workers.get_mut(name) {
            worker.last_heard = Some(now);
        }
    }

    /// Live workers not heard from for `timeout`.
    pub fn silent(&self, now: Instant, timeout: Duration) -> Vec<String> {
        (self.workers.values())
            .filter(|w| w.alive && w.last_heard.is_none_or(|t| now.duration_since(t) > timeout))
            .map(|w| w.name.clone())
            .collect()
    }

    /// A worker is gone (dead, frozen or cut off): every job with a task
    /// on it fails, and its other tasks are cancelled.
    pub fn worker_lost(&mut self, name: &str, why: &str) -> Outgoing {
        if let Some(worker) = self.workers.get_mut(name) {
            worker.alive = false;
        }
        let affected: Vec<String> = (self.jobs.values())
            .filter(|j| !j.state.is_terminal() && j.tasks.contains_key(name))
            .map(|j| j.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in affected {
            out.extend(self.fail_attempt(
                &id,
                format!("worker {name} was lost ({why})"),
                Some(name),
                Instant::now(),
            ));
        }
        out
    }

    /// Worker `name` is draining: nothing new goes to it. Returns the
    /// running attempts with a task on it that move off once they complete
    /// a checkpoint (jobs that checkpoint); a job that does not checkpoint
    /// stays until it ends or the worker gives up waiting.
    pub fn drain(&mut self, name: &str) -> Drain {
        let mut drain = Drain::default();
        let Some(worker) = self.workers.get_mut(name) else {
            return drain;
        };
        worker.draining = true;
        for job in
            (self.jobs.values()).filter(|j| !j.state.is_terminal() && j.tasks.contains_key(name))
        {
            match job.checkpoints {
                Some(_) => drain.moving.push((job.id.clone(), job.attempt)),
                None => drain.staying.push(job.id.clone()),
            }
        }
        drain
    }

    /// Attempt `attempt` of `id` completed checkpoint `checkpoint` after a
    /// worker of it began draining: every task stops, and the job waits to
    /// be placed again on workers that are not draining, restoring that
    /// checkpoint. Not a failure: no restart is counted.
    pub fn move_off_draining(
        &mut self,
        id: &str,
        attempt: u32,
        checkpoint: CheckpointId,
    ) -> Outgoing {
        let Some(job) = self.jobs.get_mut(id) else {
            return Vec::new();
        };
        if job.attempt != attempt || job.state.is_terminal() || job.state == JobState::Waiting {
            return Vec::new();
        }
        if job.last_checkpoint.is_none_or(|c| c < checkpoint) {
            job.last_checkpoint = Some(checkpoint);
        }
        let out = cancel_tasks(job, None);
        job.state = JobState::Waiting;
        job.not_before = None;
        job.placement.clear();
        job.tasks.clear();
        self.dirty.insert(id.to_owned());
        out
    }

    /// An attempt failed: the job restarts when it checkpoints and its
    /// strategy allows another restart, else it fails. The attempt's other
    /// tasks (but on `except`) are cancelled either way.
    fn fail_attempt(
        &mut self,
        id: &str,
        error: String,
        except: Option<&str>,
        now: Instant,
    ) -> Outgoing {
        let Some(job) = self.jobs.get_mut(id) else {
            return Vec::new();
        };
        let delay =
            (job.checkpoints.as_ref()).and_then(|_| job.restart.delay_before(job.failures + 1));
        let Some(delay) = delay else {
            return self.end_job(id, JobState::Failed, Some(error), except);
        };
        let out = cancel_tasks(job, except);
        job.failures += 1;
        job.state = JobState::Waiting;
        job.not_before = Some(now + delay);
        job.placement.clear();
        job.tasks.clear();
        job.error = Some(format!(
            "attempt {} failed: {error}; restart {} in {} ms from {}",
            job.attempt,
            job.failures,
            delay.as_millis(),
            job.last_checkpoint
                .map_or("the job's start".into(), |c| format!("checkpoint {c}"))
        ));
        self.dirty.insert(id.to_owned());
        out
    }

    /// The checkpoint leader of `attempt` of `id` failed: so does the attempt.
    pub fn leader_failed(&mut self, id: &str, attempt: u32, error: String) -> Outgoing {
        match self.jobs.get(id) {
            Some(job) if job.attempt == attempt && !job.state.is_terminal() => self.fail_attempt(
                id,
                format!("its checkpoints: {error}"),
                None,
                Instant::now(),
            ),
            _ => Vec::new(),
        }
    }

    /// Checkpoint `checkpoint` of `id` completed (its manifest is written).
    pub fn checkpoint_completed(&mut self, id: &str, checkpoint: CheckpointId) {
        if let Some(job) = self.jobs.get_mut(id) {
            if job.last_checkpoint.is_none_or(|c| c < checkpoint) {
                job.last_checkpoint = Some(checkpoint);
                self.dirty.insert(id.to_owned());
            }
        }
    }

    /// Attempt `attempt` of `id` stopped with a savepoint at `location`.
    pub fn stopped_with_savepoint(&mut self, id: &str, attempt: u32, location: String) -> Outgoing {
        match self.jobs.get_mut(id) {
            Some(job) if job.attempt == attempt && !job.state.is_terminal() => {
                job.stopped_with = Some(location);
                self.end_job(id, JobState::Finished, None, None)
            }
            _ => Vec::new(),
        }
    }

    /// The workers of attempt `attempt` of `id`, while it is the current
    /// one and has not ended.
    pub fn attempt_workers(&self, id: &str, attempt: u32) -> Option<Vec<String>> {
        let job = self.jobs.get(id)?;
        (job.attempt == attempt && !job.state.is_terminal() && job.state != JobState::Waiting)
            .then(|| job.tasks.keys().cloned().collect())
    }

    /// Ends a job's attempt: cancels its tasks (but on `except`, which is
    /// gone) and records the outcome.
    fn end_job(
        &mut self,
        id: &str,
        state: JobState,
        error: Option<String>,
        except: Option<&str>,
    ) -> Outgoing {
        let Some(job) = self.jobs.get_mut(id) else {
            return Vec::new();
        };
        let out = cancel_tasks(job, except);
        job.state = state;
        if job.error.is_none() {
            job.error = error;
        }
        self.dirty.insert(id.to_owned());
        out
    }

    pub fn cancel(&mut self, id: &str) -> Result<Outgoing, String> {
        let job = self.jobs.get(id).ok_or_else(|| format!("no job `{id}`"))?;
        if job.state.is_terminal() {
            return Err(format!("job `{id}` has already ended ({:?})", job.state));
        }
        Ok(self.end_job(id, JobState::Cancelled, None, None))
    }

    /// A task's report from `worker`; reports of another attempt are
    /// dropped.
    pub fn report(&mut self, worker: &str, message: ToCoordinator) -> Outgoing {
        let (job_id, attempt) = match &message {
            ToCoordinator::TaskRunning { job, attempt }
            | ToCoordinator::TaskFinished { job, attempt, .. }
            | ToCoordinator::TaskFailed { job, attempt, .. }
            | ToCoordinator::TaskProgress { job, attempt, .. } => (job.clone(), *attempt),
            ToCoordinator::Register { .. }
            | ToCoordinator::Heartbeat
            | ToCoordinator::Draining
            | ToCoordinator::Checkpoint { .. } => return Vec::new(),
        };
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return Vec::new();
        };
        if job.attempt != attempt || job.state.is_terminal() {
            return Vec::new();
        }
        let Some(task) = job.tasks.get_mut(worker) else {
            return Vec::new();
        };
        match message {
            ToCoordinator::TaskRunning { .. } => {
                task.state = TaskState::Running;
                if job.tasks.values().all(|t| t.state != TaskState::Deploying)
                    && job.state == JobState::Deploying
                {
                    job.state = JobState::Running;
                    self.dirty.insert(job_id);
                }
                Vec::new()
            }
            ToCoordinator::TaskProgress { totals, .. } => {
                task.totals = totals;
                Vec::new()
            }
            ToCoordinator::TaskFinished { totals, .. } => {
                task.state = TaskState::Finished;
                task.totals = totals;
                if job.tasks.values().all(|t| t.state == TaskState::Finished) {
                    job.state = JobState::Finished;
                    self.dirty.insert(job_id);
                }
                Vec::new()
            }
            ToCoordinator::TaskFailed { error, .. } => {
                task.state = TaskState::Failed;
                let error = format!("on worker {worker}: {error}");
                self.fail_attempt(&job_id, error, Some(worker), Instant::now())
            }
            ToCoordinator::Register { .. }
            | ToCoordinator::Heartbeat
            | ToCoordinator::Draining
            | ToCoordinator::Checkpoint { .. } => Vec::new(),
        }
    }

    /// Free shards of the live workers, by name.
    fn offers(&self) -> Vec<FreeShards> {
        let mut used: BTreeMap<&str, u32> = BTreeMap::new();
        for job in self.jobs.values().filter(|j| !j.state.is_terminal()) {
            for placed in &job.placement {
                *used.entry(placed.worker.as_str()).or_default() += 1;
            }
        }
        (self.workers.values())
            .filter(|w| w.alive && !w.draining)
            .map(|w| FreeShards {
                worker: w.name.clone(),
                data_address: w.data_address.clone(),
                free: w
                    .shards
                    .saturating_sub(used.get(w.name.as_str()).copied().unwrap_or(0)),
            })
            .filter(|o| o.free > 0)
            .collect()
    }

    /// Deploys waiting jobs, oldest first, where enough shards are free
    /// (a restarting job once its delay is over).
    pub fn schedule(&mut self, now: Instant) -> Outgoing {
        let waiting: Vec<String> = (self.jobs.values())
            .filter(|j| j.state == JobState::Waiting && j.not_before.is_none_or(|t| t <= now))
            .map(|j| j.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in waiting {
            let offers = self.offers();
            let job = &self.jobs[&id];
            let Some(shards) = shards_for(job.requested_shards, job.max_parallelism, &offers)
            else {
                continue;
            };
            let Some(placement) = place(shards, &offers) else {
                continue;
            };
            let job = self.jobs.get_mut(&id).expect("listed above");
            job.attempt += 1;
            job.state = JobState::Deploying;
            job.tasks.clear();
            for placed in &placement {
                job.tasks
                    .entry(placed.worker.clone())
                    .or_insert_with(|| TaskStatus {
                        state: TaskState::Deploying,
                        shards: Vec::new(),
                        totals: TaskTotals::default(),
                    })
                    .shards
                    .push(placed.shard);
            }
            job.placement = placement.clone();
            for worker in job.tasks.keys() {
                out.push((
                    worker.clone(),
                    ToWorker::Deploy {
                        job: id.clone(),
                        attempt: job.attempt,
                        path: job.path.clone(),
                        text: job.text.clone(),
                        placement: placement.clone(),
                        restore: job.last_checkpoint,
                        restore_from: job.restore_from.clone(),
                    },
                ));
            }
            self.dirty.insert(id);
        }
        out
    }
}

/// Cancels `job`'s live tasks but on `except` (which is gone).
fn cancel_tasks(job: &Job, except: Option<&str>) -> Outgoing {
    let mut out = Vec::new();
    for (worker, task) in &job.tasks {
        let live = matches!(task.state, TaskState::Deploying | TaskState::Running);
        if live && Some(worker.as_str()) != except {
            out.push((
                worker.clone(),
                ToWorker::Cancel {
                    job: job.id.clone(),
                    attempt: job.attempt,
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_job(shards: Option<u32>) -> NewJob {
        NewJob {
            name: "nexmark.q5".into(),
            path: "/q5.toml".into(),
            text: "job = \"nexmark.q5\"".into(),
            requested_shards: shards,
            max_parallelism: 128,
            checkpoints: None,
            restart: RestartStrategy::None,
            restore_from: None,
        }
    }

    fn deployed(out: &Outgoing) -> Vec<(&str, u32)> {
        out.iter()
            .filter_map(|(w, m)| match m {
                ToWorker::Deploy { attempt, .. } => Some((w.as_str(), *attempt)),
                _ => None,
            })
            .collect()
    }

    fn cancelled(out: &Outgoing) -> Vec<&str> {
        out.iter()
            .filter(|(_, m)| matches!(m, ToWorker::Cancel { .. }))
            .map(|(w, _)| w.as_str())
            .collect()
    }

    #[test]
    fn a_job_waits_for_its_shards_then_runs_and_finishes() {
        let now = Instant::now();
        let mut c = Cluster::default();
        let id = c.submit(new_job(Some(2)));
        c.register("a", "127.0.0.1:1", 1, now).unwrap();
        assert!(c.schedule(now).is_empty(), "one shard is not two");
        c.register("b", "127.0.0.1:2", 1, now).unwrap();
        let out = c.schedule(now);
        assert_eq!(deployed(&out), [("a", 1), ("b", 1)]);
        assert_eq!(c.jobs[&id].state, JobState::Deploying);
        let running = |job: &str| ToCoordinator::TaskRunning {
            job: job.into(),
            attempt: 1,
        };
        c.report("a", running(&id));
        assert_eq!(c.jobs[&id].state, JobState::Deploying);
        c.report("b", running(&id));
        assert_eq!(c.jobs[&id].state, JobState::Running);
        let finished = |n| ToCoordinator::TaskFinished {
            job: id.clone(),
            attempt: 1,
            totals: TaskTotals {
                records_in: n,
                ..Default::default()
            },
        };
        c.report("a", finished(5));
        assert_eq!(c.jobs[&id].state, JobState::Running);
        c.report("b", finished(7));
        assert_eq!(c.jobs[&id].state, JobState::Finished);
        assert!(c.dirty.contains(&id));
    }

    #[test]
    fn a_lost_worker_fails_the_job_and_cancels_the_others() {
        let now = Instant::now();
        let mut c = Cluster::default();
        c.register("a", "x:1", 1, now).unwrap();
        c.register("b", "x:2", 1, now).unwrap();
        let id = c.submit(new_job(None));
        assert_eq!(deployed(&c.schedule(now)).len(), 2);
        let later = now + Duration::from_secs(10);
        c.heard("b", later);
        assert_eq!(c.silent(later, Duration::from_secs(5)), ["a"]);
        let out = c.worker_lost("a", "no heartbeat");
        assert_eq!(cancelled(&out), ["b"]);
        let job = &c.jobs[&id];
        assert_eq!(job.state, JobState::Failed);
        assert!(job.error.as_deref().unwrap().contains("worker a was lost"));
        // Its shards are free again, and a's are gone.
        let next = c.submit(new_job(None));
        assert_eq!(deployed(&c.schedule(now)), [("b", 1)]);
        assert_eq!(c.jobs[&next].placement.len(), 1);
    }

    #[test]
    fn reports_of_another_attempt_are_dropped() {
        let now = Instant::now();
        let mut c = Cluster::default();
        c.register("a", "x:1", 1, now).unwrap();
        let id = c.submit(new_job(None));
        c.schedule(now);
        let out = c.report(
            "a",
            ToCoordinator::TaskFailed {
                job: id.clone(),
                attempt: 7,
                error: "stale".into(),
            },
        );
        assert!(out.is_empty());
        assert_eq!(c.jobs[&id].state, JobState::Deploying);
        // And from a worker that holds no task of it.
        c.report(
            "z",
            ToCoordinator::TaskFailed {
                job: id.clone(),
                attempt: 1,
                error: "not mine".into(),
            },
        );
        assert_eq!(c.jobs[&id].state, JobState::Deploying);
    }

    #[test]
    fn a_recovered_job_runs_again_under_a_new_attempt() {
        let now = Instant::now();
        let mut c = Cluster::default();
        c.register("a", "x:1", 2, now).unwrap();
        let id = c.submit(new_job(Some(2)));
        c.schedule(now);
        let job = c.jobs[&id].clone();
        let mut restarted = Cluster::default();
        restarted.recover(job);
        restarted.register("a", "x:1", 2, now).unwrap();
        assert_eq!(deployed(&restarted.schedule(now)), [("a", 2)]);
        let other = restarted.submit(new_job(Some(1)));
        assert_ne!(other, id, "ids are not reused");
    }

    /// A job of `shards` shards that checkpoints and may restart once.
    fn checkpointing_job(shards: Option<u32>) -> NewJob {
        let mut job = new_job(shards);
        let file = crate::job_file::JobFile::parse(
            std::path::Path::new("/j.toml"),
            "job = \"windowed_aggregation\"\n[source]\nconnector = \"generator\"\nevents = 10\n[sink]\nconnector = \"blackhole\"\n[checkpoint]\nstorage = \"file:///c\"\n[restart]\nstrategy = \"fixed-delay\"\nattempts = 1\ndelay_ms = 50\n",
        )
        .unwrap();
        job.checkpoints = file.config.checkpoint.clone();
        job.restart = file.config.restart;
        job
    }

    #[test]
    fn a_draining_worker_gets_nothing_new_and_its_jobs_move_after_a_checkpoint() {
        let now = Instant::now();
        let mut c = Cluster::default();
        c.register("a", "x:1", 1, now).unwrap();
        c.register("b", "x:2", 1, now).unwrap();
        let moving = c.submit(checkpointing_job(Some(2)));
        assert_eq!(deployed(&c.schedule(now)), [("a", 1), ("b", 1)]);
        c.register("c", "x:3", 1, now).unwrap();
        let drain = c.drain("b");
        assert_eq!(drain.moving, [(moving.clone(), 1)]);
        assert!(drain.staying.is_empty());
        // c's free shard is offered, b's never again.
        c.register("d", "x:4", 1, now).unwrap();
        let stays = c.submit(new_job(Some(1)));
        let out = c.schedule(now);
        assert_eq!(deployed(&out).len(), 1);
        assert_ne!(out[0].0, "b");
        // A stale attempt's checkpoint moves nothing.
        assert!(c.move_off_draining(&moving, 7, 3).is_empty());
        let out = c.move_off_draining(&moving, 1, 3);
        assert_eq!(cancelled(&out), ["a", "b"]);
        let job = &c.jobs[&moving];
        assert_eq!((job.state, job.failures), (JobState::Waiting, 0));
        assert_eq!(job.last_checkpoint, Some(3));
        // Placed again at once (no restart delay), not on b, from 3.
        let out = c.schedule(now);
        let on: Vec<&str> = deployed(&out).iter().map(|(w, _)| *w).collect();
        assert_eq!(on.len(), 2, "{on:?}");
        assert!(!on.contains(&"b"), "{on:?}");
        assert!(out.iter().all(|(_, m)| matches!(
            m,
            ToWorker::Deploy {
                attempt: 2,
                restore: Some(3),
                ..
            }
        )));
        // Moved once: a second checkpoint of the old attempt does nothing.
        assert!(c.move_off_draining(&moving, 1, 4).is_empty());
        // A job that does not checkpoint stays where it is.
        let drain = c.drain(&c.jobs[&stays].placement[0].worker.clone());
        assert_eq!(drain.staying, [stays]);
        assert!(drain.moving.is_empty());
    }

    #[test]
    fn a_failed_attempt_restarts_from_the_last_checkpoint_while_restarts_are_left() {
        let now = Instant::now();
        let mut c = Cluster::default();
        c.register("a", "x:1", 1, now).unwrap();
        c.register("b", "x:2", 1, now).unwrap();
        let id = c.submit(checkpointing_job(None));
        assert_eq!(deployed(&c.schedule(now)), [("a", 1), ("b", 1)]);
        c.checkpoint_completed(&id, 4);
        c.checkpoint_completed(&id, 3);
        assert_eq!(c.jobs[&id].last_checkpoint, Some(4), "never goes back");
        assert_eq!(cancelled(&c.worker_lost("a", "gone")), ["b"]);
        assert_eq!(c.jobs[&id].state, JobState::Waiting);
        assert_eq!(c.jobs[&id].failures, 1);
        assert!(
            c.schedule(now).is_empty(),
            "the restart waits for its delay"
        );
        c.register("a", "x:3", 1, now).unwrap();
        let later = now + Duration::from_millis(60);
        let out = c.schedule(later);
        assert_eq!(deployed(&out), [("a", 2), ("b", 2)]);
        assert!(out.iter().all(|(_, m)| matches!(
            m,
            ToWorker::Deploy {
                restore: Some(4),
                ..
            }
        )));
        // The one restart allowed is taken: the next failure fails the job.
        c.report(
            "b",
            ToCoordinator::TaskFailed {
                job: id.clone(),
                attempt: 2,
                error: "boom".into(),
            },
        );
        assert_eq!(c.jobs[&id].state, JobState::Failed);
        assert!(c.attempt_workers(&id, 2).is_none());
    }

    #[test]
    fn cancel_and_duplicate_names() {
        let now = Instant::now();
        let mut c = Cluster::default();
        c.register("a", "x:1", 1, now).unwrap();
        assert!(c.register("a", "x:9", 1, now).is_err());
        let id = c.submit(new_job(None));
        c.schedule(now);
        assert_eq!(cancelled(&c.cancel(&id).unwrap()), ["a"]);
        assert_eq!(c.jobs[&id].state, JobState::Cancelled);
        assert!(c.cancel(&id).is_err());
        assert!(c.cancel("job-9999").is_err());
    }
}
