//! Batches of one exchange waiting for credit to enter their channels, and
//! the barriers that overtake them.
//!
//! Lives on the sending shard's core. Operators append to a queue per
//! destination without waiting (they run synchronously inside a chain); the
//! task that drove the chain then awaits [`EdgeOutbox::drain`], which sends
//! each queue in order under a one-permit semaphore, so messages to one
//! destination never overtake each other whichever task drains. A batch is
//! sent only against a credit of its destination (the channel's
//! [`ChannelSender`] holds them): waiting for credit is the backpressure, and
//! a destination refused for want of credit is told the batches waiting for
//! it, once, and told again when none wait (a remote link's receiver may
//! grant floating credits for them); a destination without credit holds up
//! only its own queue (an aligned
//! barrier to another shard is not stuck behind it). Bound: each driving
//! task appends at most one input batch's output before it drains, so the
//! queues hold at most (tasks × fan-out) batches.
//!
//! Unaligned checkpoints: barrier *n* goes to every other shard at once,
//! ahead of every batch still queued ([`EdgeOutbox::barrier`]); those batches
//! are sent after it as usual, and their records are this shard's channel
//! state `output-<edge>` of checkpoint *n* (a restore sends them again before
//! new input). Aligned with a timeout, the barrier waits in line and
//! overtakes what is still ahead of it once the timeout has passed.
//! Savepoints are always aligned. Invariants: a message leaves the queue only
//! when the channel has taken it, so everything a barrier did not overtake is
//! already in the channel ahead of it; the outbox contributes to checkpoint
//! *n* exactly once, after its barrier has left or overtaken.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::sync::Semaphore;
use sluice_network::{
    ChannelSender, CheckpointBarrier, ExchangeMessage, RecordBatch, SendError, Wake,
};
use sluice_state::{CodecError, EntryWriter};

use crate::checkpoint::{BarrierAlignment, ShardCheckpoints, SourcePositions};
use crate::metrics::ShardMetrics;
use crate::push::EdgeId;
use crate::runtime::AbortSignal;

/// How long a message waits before trying a channel full of control
/// messages again (its receiving shard is stalled).
const FULL_CHANNEL_RETRY: Duration = Duration::from_micros(200);

/// One destination's channel (it holds the credits).
type Link = Rc<dyn ChannelSender>;

/// Writes the records of a batch of this edge as channel state.
pub(crate) type BatchRecorder =
    Box<dyn Fn(&RecordBatch, &mut EntryWriter) -> Result<(), CodecError>>;

/// The outbox's part in unaligned checkpoints.
pub(crate) struct OutputCheckpoints {
    pub checkpoints: Rc<ShardCheckpoints>,
    pub participant: usize,
    pub alignment: BarrierAlignment,
    pub record: BatchRecorder,
}

/// A barrier waiting in line (aligned with a timeout).
struct WaitingBarrier {
    barrier: CheckpointBarrier,
    /// When it stops waiting and overtakes.
    deadline: Instant,
    /// By destination: its copy is still queued.
    unsent: Vec<bool>,
}

pub(crate) struct EdgeOutbox {
    pub edge: EdgeId,
    shard: u32,
    /// By destination (its own shard's stays empty).
    queues: RefCell<Vec<VecDeque<ExchangeMessage>>>,
    links: RefCell<Vec<Option<Link>>>,
    /// Woken when any destination grants credit.
    granted: Rc<Wake>,
    draining: Semaphore,
    abort: AbortSignal,
    output: RefCell<Option<OutputCheckpoints>>,
    waiting: RefCell<Option<WaitingBarrier>>,
    /// By destination: a backlog was announced and not yet withdrawn.
    backlogged: RefCell<Vec<bool>>,
    /// The shard's metrics: time spent waiting for credit is counted there.
    metrics: Arc<ShardMetrics>,
}

/// How the names of sending-side channel states begin.
pub(crate) const OUTPUT_STATE_PREFIX: &str = "output-";

/// The name of an edge's sending-side channel state.
pub(crate) fn output_state_name(edge: EdgeId) -> String {
    format!("{OUTPUT_STATE_PREFIX}{edge}")
}

impl EdgeOutbox {
    pub fn new(
        edge: EdgeId,
        shard: u32,
        shards: u32,
        abort: AbortSignal,
        metrics: Arc<ShardMetrics>,
    ) -> Self {
        EdgeOutbox {
            edge,
            shard,
            queues: RefCell::new((0..shards).map(|_| VecDeque::new()).collect()),
            links: RefCell::new((0..shards).map(|_| None).collect()),
            granted: Rc::new(Wake::new()),
            draining: Semaphore::new(1),
            abort,
            output: RefCell::new(None),
            waiting: RefCell::new(None),
            backlogged: RefCell::new(vec![false; shards as usize]),
            metrics,
        }
    }

    /// Woken whenever a destination grants credit (or goes away): the
    /// wake-up its channel's sender is connected with.
    pub fn granted(&self) -> Rc<Wake> {
        self.granted.clone()
    }

    /// Connects `destination`'s channel.
    pub fn connect(&self, destination: u32, sender: Link) {
        let mut links = self.links.borrow_mut();
        assert!(
            links[destination as usize].is_none(),
            "bug: edge {} connects shard {destination} twice",
            self.edge
        );
        links[destination as usize] = Some(sender);
    }

    /// Takes part in unaligned checkpoints (see the module docs).
    pub fn set_output_checkpoints(&self, output: OutputCheckpoints) {
        *self.output.borrow_mut() = Some(output);
    }

    #[inline]
    pub fn enqueue(&self, destination: u32, message: ExchangeMessage) {
        self.queues.borrow_mut()[destination as usize].push_back(message);
        self.publish_queued();
    }

    /// Shows how many messages wait to be sent (the edge's output queue).
    fn publish_queued(&self) {
        if let Some(edge) = self.metrics.edge(self.edge) {
            let queued: usize = self.queues.borrow().iter().map(VecDeque::len).sum();
            edge.output_queued.set(queued as u64);
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.queues.borrow().iter().all(VecDeque::is_empty)
    }

    fn clear(&self) {
        for queue in self.queues.borrow_mut().iter_mut() {
            queue.clear();
        }
        self.publish_queued();
    }

    fn link(&self, destination: u32) -> Link {
        let link = self.links.borrow()[destination as usize].clone();
        let Some(link) = link else {
            panic!(
                "bug: edge {} sends to shard {destination} before connecting",
                self.edge
            )
        };
        link
    }

    fn others(&self) -> impl Iterator<Item = u32> + '_ {
        let shards = self.links.borrow().len() as u32;
        (0..shards).filter(move |d| *d != self.shard)
    }

    /// By destination: true for every other shard.
    fn every_other(&self) -> Vec<bool> {
        let shards = self.links.borrow().len() as u32;
        (0..shards).map(|d| d != self.shard).collect()
    }

    /// Barrier `barrier` to every other shard: in line, or ahead of what is
    /// queued (see the module docs).
    pub fn barrier(&self, barrier: CheckpointBarrier) {
        let mode = {
            let output = self.output.borrow();
            output.as_ref().map(|o| {
                let savepoint = o.checkpoints.is_savepoint(barrier.id);
                (o.alignment, savepoint)
            })
        };
        match mode {
            Some((BarrierAlignment::Unaligned, false)) => {
                self.waiting.borrow_mut().take();
                self.overtake(barrier, self.every_other());
            }
            Some((BarrierAlignment::AlignedWithTimeout(timeout), false)) => {
                self.enqueue_barrier(barrier);
                let unsent = self.every_other();
                if unsent.iter().any(|u| *u) {
                    *self.waiting.borrow_mut() = Some(WaitingBarrier {
                        barrier,
                        deadline: Instant::now() + timeout,
                        unsent,
                    });
                } else {
                    self.contribute(barrier, Vec::new());
                }
            }
            Some(_) => {
                // A savepoint: in line, and nothing to add.
                self.enqueue_barrier(barrier);
                self.contribute(barrier, Vec::new());
            }
            None => self.enqueue_barrier(barrier),
        }
    }

    fn enqueue_barrier(&self, barrier: CheckpointBarrier) {
        let others: Vec<u32> = self.others().collect();
        for destination in others {
            self.enqueue(destination, ExchangeMessage::Barrier(barrier));
        }
    }

    /// This shard's side of the edge has ended: it counts as done for every
    /// later checkpoint.
    pub fn ended(&self) {
        // A barrier still in line goes in line: it can no longer overtake
        // (its checkpoint takes this outbox as it is now).
        self.waiting.borrow_mut().take();
        if let Some(output) = self.output.borrow().as_ref() {
            output
                .checkpoints
                .ended(output.participant, SourcePositions::new());
        }
    }

    fn contribute(&self, barrier: CheckpointBarrier, records: Vec<u8>) {
        if let Some(output) = self.output.borrow().as_ref() {
            output.checkpoints.channel_state(
                output.participant,
                barrier.id,
                output_state_name(self.edge),
                records,
            );
        }
    }

    /// Sends `barrier` now to the destinations `unsent` marks, ahead of the
    /// batches queued for them before it; their records become this
    /// outbox's channel state of its checkpoint. (A batch queued behind the
    /// barrier's own copy, still in line, comes after the barrier anyway.)
    fn overtake(&self, barrier: CheckpointBarrier, unsent: Vec<bool>) {
        let mut writer = EntryWriter::new();
        let mut failure = None;
        {
            let output = self.output.borrow();
            let record = &output
                .as_ref()
                .expect("overtaking needs output checkpoints")
                .record;
            let mut queues = self.queues.borrow_mut();
            for (destination, queue) in queues.iter_mut().enumerate() {
                if !unsent[destination] {
                    continue;
                }
                for message in queue.iter() {
                    match message {
                        ExchangeMessage::Barrier(b) if b.id == barrier.id => break,
                        ExchangeMessage::Batch(batch) if failure.is_none() => {
                            if let Err(e) = record(batch, &mut writer) {
                                failure = Some(e);
                            }
                        }
                        _ => {}
                    }
                }
                // Its copy waiting in line goes: it is sent now.
                queue.retain(|m| !matches!(m, ExchangeMessage::Barrier(b) if b.id == barrier.id));
            }
        }
        for (destination, unsent) in unsent.into_iter().enumerate() {
            if unsent {
                self.send_ahead(destination as u32, ExchangeMessage::Barrier(barrier));
            }
        }
        match failure {
            None => {
                let records = if writer.is_empty() {
                    Vec::new()
                } else {
                    writer.finish()
                };
                self.contribute(barrier, records);
            }
            Some(e) => {
                if let Some(output) = self.output.borrow().as_ref() {
                    output.checkpoints.decline(
                        barrier.id,
                        &format!(
                            "edge {}: a record waiting to be sent could not be encoded: {e}",
                            self.edge
                        ),
                    );
                }
            }
        }
    }

    /// Sends `message` now, or (its channel is full of control messages)
    /// first in line.
    fn send_ahead(&self, destination: u32, message: ExchangeMessage) {
        match self.link(destination).try_send(message) {
            Ok(()) => {}
            Err(SendError::Full(message)) => {
                self.queues.borrow_mut()[destination as usize].push_front(message);
            }
            Err(SendError::NoCredit(_)) => {
                panic!("bug: a control message was refused for want of credit")
            }
            // The receiving shard is gone (it failed).
            Err(SendError::Closed) => {}
        }
    }

    /// An in-line barrier has been sent to `destination`.
    fn barrier_sent(&self, id: u64, destination: u32) {
        let done = {
            let mut waiting = self.waiting.borrow_mut();
            match waiting.as_mut() {
                Some(w) if w.barrier.id == id => {
                    w.unsent[destination as usize] = false;
                    (!w.unsent.iter().any(|u| *u)).then_some(w.barrier)
                }
                _ => None,
            }
        };
        if let Some(barrier) = done {
            self.waiting.borrow_mut().take();
            self.contribute(barrier, Vec::new());
        }
    }

    /// Sends everything queued, each batch against a credit of its
    /// destination: the backpressure point. A destination that has gone away
    /// (its shard failed) drops the message, and so does every send once the
    /// job aborts: the job is failing anyway and reports that shard's error.
    pub async fn drain(&self) {
        if self.is_empty() {
            return;
        }
        let _permit = self
            .draining
            .acquire_permit(1)
            .await
            .expect("bug: outbox semaphore closed");
        loop {
            let mut short_of_credit = false;
            let others: Vec<u32> = self.others().collect();
            for destination in others {
                match self.send_queued(destination).await {
                    Sending::Done => {}
                    Sending::ShortOfCredit => short_of_credit = true,
                    Sending::Aborted => {
                        self.clear();
                        return;
                    }
                }
            }
            self.publish_queued();
            if !short_of_credit {
                if self.is_empty() {
                    return;
                }
                continue;
            }
            if self.abort.is_set() {
                self.clear();
                return;
            }
            if !self.credit_came() {
                let waiting_since = Instant::now();
                self.wait_for_credit().await;
                let waited = waiting_since.elapsed().as_nanos() as u64;
                ShardMetrics::add(&self.metrics.backpressured_ns, waited);
                if let Some(edge) = self.metrics.edge(self.edge) {
                    edge.backpressured_ns.add(waited);
                }
            }
        }
    }

    /// Whether a destination whose next message is a batch has credit now.
    fn credit_came(&self) -> bool {
        let queues = self.queues.borrow();
        (self.others()).any(|d| {
            matches!(queues[d as usize].front(), Some(ExchangeMessage::Batch(_)))
                && self.link(d).can_send_batch()
        })
    }

    /// Sends `destination`'s queue until it is empty or short of credit.
    async fn send_queued(&self, destination: u32) -> Sending {
        let link = self.link(destination);
        let d = destination as usize;
        loop {
            // The head stays queued until its channel takes it, so that a
            // barrier can still overtake it meanwhile.
            let Some(message) = self.queues.borrow_mut()[d].pop_front() else {
                if std::mem::take(&mut self.backlogged.borrow_mut()[d]) {
                    link.announce_backlog(0);
                }
                return Sending::Done;
            };
            let barrier = match &message {
                ExchangeMessage::Barrier(b) => Some(b.id),
                _ => None,
            };
            match link.try_send(message) {
                Ok(()) => {}
                Err(SendError::NoCredit(message)) => {
                    let backlog = {
                        let mut queues = self.queues.borrow_mut();
                        queues[d].push_front(message);
                        queues[d]
                            .iter()
                            .filter(|m| matches!(m, ExchangeMessage::Batch(_)))
                            .count()
                    };
                    link.announce_backlog(backlog as u32);
                    self.backlogged.borrow_mut()[d] = true;
                    return Sending::ShortOfCredit;
                }
                Err(SendError::Full(message)) if !self.abort.is_set() => {
                    // Full of control messages beyond the credits: its
                    // receiver is stalled. Back in line, and again shortly.
                    self.queues.borrow_mut()[d].push_front(message);
                    glommio::timer::sleep(FULL_CHANNEL_RETRY).await;
                    continue;
                }
                // The job aborts: drop everything queued.
                Err(SendError::Full(_)) => return Sending::Aborted,
                // The receiving shard is gone (it failed): drop the message.
                Err(SendError::Closed) => {}
            }
            if let Some(id) = barrier {
                self.barrier_sent(id, destination);
            }
        }
    }

    /// Waits for a destination to grant credit, for the job to abort, or
    /// for a barrier in line to reach its timeout (it then overtakes).
    async fn wait_for_credit(&self) {
        let deadline = self.waiting.borrow().as_ref().map(|w| w.deadline);
        let credit = async {
            self.granted.wait().await;
            None
        };
        let timeout = async {
            match deadline {
                Some(at) => {
                    glommio::timer::sleep(at.saturating_duration_since(Instant::now())).await;
                    // It overtakes where it is still unsent.
                    self.waiting
                        .borrow_mut()
                        .take()
                        .map(|w| (w.barrier, w.unsent))
                }
                None => std::future::pending().await,
            }
        };
        let overtaking = self
            .abort
            .unless_aborted(futures_lite::future::or(credit, timeout))
            .await
            .flatten();
        if let Some((barrier, unsent)) = overtaking {
            self.overtake(barrier, unsent);
        }
    }
}

/// How far `send_queued` got.
enum Sending {
    Done,
    ShortOfCredit,
    Aborted,
}
