//! The part of a job one process runs when the job spans several: which of
//! its shards run here, and the connections to the shards that run
//! elsewhere.
//!
//! Built by the worker (in `cluster`) on its control thread: it dials or
//! accepts one TCP connection per pair of a shard here and a shard elsewhere,
//! proves the cluster secret on it (`sluice_network::auth`) and hands it
//! over; [`execute_part`](super::execute_part) moves each connection to its
//! shard's core, where `sluice_network::link` carries every channel between
//! the two shards over it. Shards of the same process keep the in-process
//! channels.
//!
//! Invariants: shard indices are global (`0..shards` of the whole job);
//! `here` holds no shard twice; there is exactly one connection for every
//! pair of a shard here and a shard not here.

use std::net::TcpStream;
use std::sync::mpsc::Receiver;

use super::AbortSignal;
use crate::checkpoint::{CheckpointId, PartCommand, PartEvent};

/// One connection between a shard here and a shard of another process.
#[derive(Debug)]
pub struct RemoteLink {
    /// The shard here (global index).
    pub local: u32,
    /// The shard elsewhere (global index).
    pub remote: u32,
    /// The peer, for errors (its worker and address).
    pub peer: String,
    /// Connected and authenticated.
    pub stream: TcpStream,
}

/// Stops a running part from outside: a cancelled job, or an attempt the
/// coordinator replaced. Its shards wind down as after a failure elsewhere,
/// committing nothing more. The part's own failure aborts it through the
/// same signal, but is not a cancellation.
#[derive(Clone, Default)]
pub struct JobCancel {
    pub(crate) abort: AbortSignal,
    requested: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl JobCancel {
    pub fn cancel(&self) {
        // A part that failed before it was told to stop keeps its failure.
        if !self.abort.is_set() {
            (self.requested).store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.abort.set();
    }

    /// Whether [`JobCancel::cancel`] stopped the part (not: the part failed,
    /// before or without being cancelled).
    pub fn is_cancelled(&self) -> bool {
        self.requested.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How a part of a job that checkpoints talks to the job's checkpoint
/// leader (in the coordinator).
pub struct PartCheckpoints {
    /// Where this part's events go (the task sends them on).
    pub events: Box<dyn FnMut(PartEvent) + Send>,
    /// The leader's commands, in order.
    pub commands: Receiver<PartCommand>,
    /// The checkpoint every part of this attempt restores, in the job's
    /// storage; `None`: what the job file says (`restore`, or a fresh start).
    pub restore: Option<CheckpointId>,
    /// Keeps this attempt's final parts apart from other attempts'.
    pub final_tag: String,
}

impl std::fmt::Debug for PartCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartCheckpoints")
            .field("restore", &self.restore)
            .field("final_tag", &self.final_tag)
            .finish_non_exhaustive()
    }
}

/// The shards of a job that run in this process.
pub struct JobPart {
    /// Global indices of the shards that run here.
    pub here: Vec<u32>,
    /// One per pair of a shard here and a shard elsewhere.
    pub links: Vec<RemoteLink>,
    /// Required when the job checkpoints.
    pub checkpoints: Option<PartCheckpoints>,
    /// Called with the figures of the shards here every
    /// [`PART_PROGRESS_INTERVAL`] and once at the end, from the thread that
    /// waits for them.
    pub progress: Option<PartProgress>,
}

impl std::fmt::Debug for JobPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobPart")
            .field("here", &self.here)
            .field("links", &self.links)
            .field("checkpoints", &self.checkpoints)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// See [`JobPart::progress`].
pub type PartProgress = Box<dyn FnMut(&[crate::metrics::ShardFigures]) + Send>;

/// How often a part reports its shards' figures.
pub const PART_PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl JobPart {
    /// Checks the invariants against a job of `shards` shards.
    pub fn validate(&self, shards: u32) -> Result<(), String> {
        let mut seen = vec![false; shards as usize];
        for &shard in &self.here {
            match seen.get_mut(shard as usize) {
                None => return Err(format!("shard {shard} is not one of the job's {shards}")),
                Some(true) => return Err(format!("shard {shard} is placed here twice")),
                Some(seen) => *seen = true,
            }
        }
        if self.here.is_empty() {
            return Err("no shard runs here".into());
        }
        let mut pairs = std::collections::HashSet::new();
        for link in &self.links {
            let here = seen.get(link.local as usize).copied().unwrap_or(false);
            let there = seen.get(link.remote as usize).copied();
            if !here || there != Some(false) {
                return Err(format!(
                    "a link from shard {} to shard {} does not join a shard here to one elsewhere",
                    link.local, link.remote
                ));
            }
            if !pairs.insert((link.local, link.remote)) {
                return Err(format!(
                    "two links from shard {} to shard {}",
                    link.local, link.remote
                ));
            }
        }
        let expected = self.here.len() * (shards as usize - self.here.len());
        if pairs.len() != expected {
            return Err(format!(
                "{} links for {} shards here and {} elsewhere (expected {expected})",
                pairs.len(),
                self.here.len(),
                shards as usize - self.here.len()
            ));
        }
        Ok(())
    }
}
