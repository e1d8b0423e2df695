//! Batches of one exchange waiting for room in their channels.
//!
//! Lives on the sending shard's core. Operators append to the queue without
//! waiting (they run synchronously inside a chain); the task that drove the chain
//! then awaits [`EdgeOutbox::drain`], which sends in FIFO order under a one-permit
//! semaphore, so messages to one destination never overtake each other whichever
//! task drains. Bound: each driving task appends at most one input batch's output
//! before it drains, so the queue holds at most (tasks × fan-out) batches.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use glommio::channels::shared_channel::ConnectedSender;
use glommio::sync::Semaphore;
use glommio::{GlommioError, ResourceType};
use sluice_network::ExchangeMessage;

use crate::push::EdgeId;
use crate::runtime::AbortSignal;

pub(crate) struct EdgeOutbox {
    pub edge: EdgeId,
    queue: RefCell<VecDeque<(u32, ExchangeMessage)>>,
    senders: RefCell<Vec<Option<Rc<ConnectedSender<ExchangeMessage>>>>>,
    draining: Semaphore,
    abort: AbortSignal,
}

impl EdgeOutbox {
    pub fn new(edge: EdgeId, shards: u32, abort: AbortSignal) -> Self {
        EdgeOutbox {
            edge,
            queue: RefCell::new(VecDeque::new()),
            senders: RefCell::new((0..shards).map(|_| None).collect()),
            draining: Semaphore::new(1),
            abort,
        }
    }

    pub fn connect(&self, destination: u32, sender: ConnectedSender<ExchangeMessage>) {
        self.senders.borrow_mut()[destination as usize] = Some(Rc::new(sender));
    }

    #[inline]
    pub fn enqueue(&self, destination: u32, message: ExchangeMessage) {
        self.queue.borrow_mut().push_back((destination, message));
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    /// Sends everything queued, waiting for channel room: the backpressure point.
    /// A destination that has gone away (its shard failed) drops the message, and
    /// so does every send once the job aborts: the job is failing anyway and
    /// reports that shard's error.
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
            let next = self.queue.borrow_mut().pop_front();
            let Some((destination, message)) = next else {
                break;
            };
            let sender = self.senders.borrow()[destination as usize].clone();
            let Some(sender) = sender else {
                panic!(
                    "bug: edge {} sends to shard {destination} before connecting",
                    self.edge
                )
            };
            match sender.try_send(message) {
                Ok(()) => {}
                Err(GlommioError::WouldBlock(ResourceType::Channel(message)))
                    if !self.abort.is_set() =>
                {
                    // Full: wait for room (the backpressure), or for the job to abort.
                    let _ = self.abort.unless_aborted(sender.send(message)).await;
                }
                // The job aborts: drop everything queued.
                Err(GlommioError::WouldBlock(_)) => self.queue.borrow_mut().clear(),
                // The receiving shard is gone (it failed): drop the message.
                Err(_) => {}
            }
        }
    }
}
