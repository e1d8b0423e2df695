//! Credit-based flow control of one shard-to-shard channel.
//!
//! The sending shard's [`Credits`] and the receiving shard's [`CreditGrants`]
//! are the two ends of one exchange channel's flow control; each lives on its
//! own shard's core. The receiver grants `channel_batches` credits up front;
//! a data batch is sent only against a credit, and the receiver grants it
//! back once the batch has been *processed* — not merely read. So the
//! receiver may read its channel eagerly into its gate (an unaligned barrier
//! is seen as soon as it is sent) while the data read but not processed
//! stays bounded by the credits: a slow consumer still slows its producers.
//! Control messages (barriers, status, end) need no credit; the data channel
//! has room for them beyond the credits ([`CONTROL_ROOM`]).
//!
//! Grants travel back on a small channel of their own, a count at a time,
//! batched (a quarter of the credits, or whatever is owed when the receiver
//! runs out of work), so a grant costs no cross-core wake-up per batch.
//! Invariant: batches sent − batches granted back ≤ credits.

use std::cell::Cell;
use std::rc::Rc;

use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};

use super::wake::Wake;

/// Room in a data channel beyond its credits, for control messages.
pub(crate) const CONTROL_ROOM: usize = 64;

/// The sender's side: credits for one destination. A task of its own
/// ([`Credits::listen`]) takes the grants in: glommio keeps a waker for
/// every poll of an empty channel until something arrives, so the channel
/// is polled only by a task it woke, never again and again by a sender
/// that wakes for other reasons. Grants wake the outbox's `granted`.
pub(crate) struct Credits {
    available: Cell<u32>,
    /// The receiver has gone away (its shard ended or failed): sends no
    /// longer wait, they fail and drop.
    closed: Cell<bool>,
    granted: Rc<Wake>,
}

impl Credits {
    pub fn new(initial: u32, granted: Rc<Wake>) -> Self {
        Credits {
            available: Cell::new(initial),
            closed: Cell::new(false),
            granted,
        }
    }

    /// Takes the grants in until the receiver goes away.
    pub async fn listen(self: Rc<Self>, grants: ConnectedReceiver<u32>) {
        while let Some(granted) = grants.recv().await {
            self.available.set(self.available.get() + granted);
            self.granted.wake_all();
        }
        self.closed.set(true);
        self.granted.wake_all();
    }

    /// Whether a batch could be sent now.
    pub fn any(&self) -> bool {
        self.closed.get() || self.available.get() > 0
    }

    /// Takes a credit if one is available.
    pub fn try_take(&self) -> bool {
        if self.closed.get() {
            return true;
        }
        match self.available.get() {
            0 => false,
            n => {
                self.available.set(n - 1);
                true
            }
        }
    }

    /// Returns a credit taken for a batch the channel did not take.
    pub fn give_back(&self) {
        self.available.set(self.available.get() + 1);
    }
}

/// The receiver's side: credits owed back to one source.
pub(crate) struct CreditGrants {
    owed: Cell<u32>,
    batch: u32,
    sender: ConnectedSender<u32>,
}

impl CreditGrants {
    pub fn new(credits: u32, sender: ConnectedSender<u32>) -> Self {
        CreditGrants {
            owed: Cell::new(0),
            batch: (credits / 4).max(1),
            sender,
        }
    }

    /// A batch from this source was processed: its credit goes back (in
    /// groups; see the module docs).
    pub fn processed(&self) {
        self.owed.set(self.owed.get() + 1);
        if self.owed.get() >= self.batch {
            self.flush();
        }
    }

    /// Grants back everything owed (before the receiver waits for input).
    pub fn flush(&self) {
        let owed = self.owed.get();
        if owed == 0 {
            return;
        }
        // The grant channel holds as many grants as there are credits, and
        // each grant returns at least one: it is never full. A sender that
        // went away needs no grants.
        let _ = self.sender.try_send(owed);
        self.owed.set(0);
    }
}
