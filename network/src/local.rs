//! The in-process channel between two shards of one machine.
//!
//! A bounded single-producer single-consumer glommio shared channel carries
//! the messages (a batch moves by pointer, never by copy); a second, small one
//! carries credit grants the other way. The data channel holds the credits'
//! worth of batches plus [`CONTROL_ROOM`] control messages, so a batch sent
//! against a credit always finds room unless the receiver has stopped reading
//! control messages too.
//!
//! The ends are created together on any thread ([`channel`]), are `Send`
//! until connected, and are connected on their shard's core
//! ([`LocalSenderEnd::connect`], [`LocalReceiverEnd::connect`]); both ends of
//! a channel wait for each other while connecting. Once connected, each end
//! lives on its shard's core (`!Send`). Invariant: the grant channel is never
//! full (it holds as many grants as there are credits, and each grant returns
//! at least one); a full grant channel is a bug.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_lite::Stream;
use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};
use glommio::{GlommioError, ResourceType};

use crate::channel::{ChannelReceiver, ChannelSender, CreditGrantor, SendError};
use crate::credit::{CreditsOwed, SendCredits};
use crate::wake::Wake;
use crate::ExchangeMessage;

/// Room in a data channel beyond its credits, for control messages.
pub const CONTROL_ROOM: usize = 64;

/// A channel's sending end before it is connected on its core.
pub struct LocalSenderEnd {
    data: SharedSender<ExchangeMessage>,
    grants: SharedReceiver<u32>,
    credits: u32,
}

/// A channel's receiving end before it is connected on its core.
pub struct LocalReceiverEnd {
    data: SharedReceiver<ExchangeMessage>,
    grants: SharedSender<u32>,
    credits: u32,
}

/// A channel of `credits` batches of credit between two shards of this
/// process.
pub fn channel(credits: u32) -> (LocalSenderEnd, LocalReceiverEnd) {
    assert!(credits > 0, "a channel needs at least one credit");
    let (data_tx, data_rx) = shared_channel::new_bounded(credits as usize + CONTROL_ROOM);
    let (grant_tx, grant_rx) = shared_channel::new_bounded(credits as usize);
    (
        LocalSenderEnd {
            data: data_tx,
            grants: grant_rx,
            credits,
        },
        LocalReceiverEnd {
            data: data_rx,
            grants: grant_tx,
            credits,
        },
    )
}

/// The sender's credits, shared with the task that takes grants in.
struct SenderCredits {
    credits: Cell<SendCredits>,
    /// The receiver has gone away: sends no longer wait for credit, they
    /// fail at once.
    closed: Cell<bool>,
    granted: Rc<Wake>,
}

/// A connected sending end; see the module docs.
pub struct LocalSender {
    data: ConnectedSender<ExchangeMessage>,
    credits: Rc<SenderCredits>,
}

impl LocalSenderEnd {
    /// Connects on the sending shard's core. `granted` is woken whenever
    /// credit comes (or the receiver goes away). The returned task takes the
    /// grants in until the receiver goes away: spawn it on the same core.
    /// (glommio keeps a waker for every poll of an empty channel until
    /// something arrives, so the grant channel is polled only by that task,
    /// never again and again by a sender that wakes for other reasons.)
    pub async fn connect(self, granted: Rc<Wake>) -> (LocalSender, impl Future<Output = ()>) {
        let data = self.data.connect().await;
        let grants = self.grants.connect().await;
        let credits = Rc::new(SenderCredits {
            credits: Cell::new(SendCredits::new(self.credits)),
            closed: Cell::new(false),
            granted,
        });
        let listener = credits.clone();
        let listen = async move {
            while let Some(granted) = grants.recv().await {
                let mut credits = listener.credits.get();
                credits.grant(granted);
                listener.credits.set(credits);
                listener.granted.wake_all();
            }
            listener.closed.set(true);
            listener.granted.wake_all();
        };
        (LocalSender { data, credits }, listen)
    }
}

impl ChannelSender for LocalSender {
    fn try_send(&self, message: ExchangeMessage) -> Result<(), SendError> {
        // The receiving end dropped its grantor: it reads nothing more (its
        // data end may still take a message for a moment; it is dropped with
        // the grantor).
        if self.credits.closed.get() {
            return Err(SendError::Closed);
        }
        let took_credit = matches!(message, ExchangeMessage::Batch(_));
        if took_credit {
            let mut credits = self.credits.credits.get();
            if !credits.try_take() {
                return Err(SendError::NoCredit(message));
            }
            self.credits.credits.set(credits);
        }
        match self.data.try_send(message) {
            Ok(()) => Ok(()),
            Err(GlommioError::WouldBlock(ResourceType::Channel(message))) => {
                if took_credit {
                    let mut credits = self.credits.credits.get();
                    credits.give_back();
                    self.credits.credits.set(credits);
                }
                Err(SendError::Full(message))
            }
            Err(_) => Err(SendError::Closed),
        }
    }

    fn can_send_batch(&self) -> bool {
        self.credits.closed.get() || self.credits.credits.get().available() > 0
    }
}

/// A connected receiving end; see the module docs.
pub struct LocalReceiver {
    data: ConnectedReceiver<ExchangeMessage>,
}

/// The receiving shard's grants back to a local channel's sender.
pub struct LocalGrantor {
    owed: CreditsOwed,
    grants: ConnectedSender<u32>,
}

impl LocalReceiverEnd {
    /// Connects on the receiving shard's core.
    pub async fn connect(self) -> (LocalReceiver, LocalGrantor) {
        let data = self.data.connect().await;
        let grants = self.grants.connect().await;
        (
            LocalReceiver { data },
            LocalGrantor {
                owed: CreditsOwed::new(self.credits),
                grants,
            },
        )
    }
}

impl ChannelReceiver for LocalReceiver {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<ExchangeMessage>> {
        Pin::new(&mut self.data).poll_next(cx)
    }
}

impl LocalGrantor {
    fn grant(&self, credits: u32) {
        match self.grants.try_send(credits) {
            Ok(()) => {}
            Err(GlommioError::WouldBlock(_)) => {
                panic!("bug: the grant channel is full (it holds as many grants as credits)")
            }
            // The sender has gone away: it needs no grants.
            Err(_) => {}
        }
    }
}

impl CreditGrantor for LocalGrantor {
    fn processed(&mut self) {
        if let Some(credits) = self.owed.processed() {
            self.grant(credits);
        }
    }

    fn flush(&mut self) {
        if let Some(credits) = self.owed.take() {
            self.grant(credits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchBuilder, CheckpointBarrier};

    fn batch() -> ExchangeMessage {
        let mut builder = BatchBuilder::<u64>::new(1 << 10);
        builder.push(1, &7).expect("a u64 serializes");
        ExchangeMessage::Batch(builder.take())
    }

    /// Two shards of one process: the sender stops at its credits while
    /// control messages still pass, a processed batch's credit comes back
    /// and wakes the sender, and a receiver that goes away closes the channel.
    #[test]
    fn batches_wait_for_credit_control_messages_do_not() {
        let (tx, rx) = channel(2);
        let receiver = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let (mut receiver, mut grantor) = rx.connect().await;
                let receiver: &mut dyn ChannelReceiver = &mut receiver;
                let mut kinds = Vec::new();
                for _ in 0..4 {
                    let message = receiver.recv().await.expect("the sender is there");
                    kinds.push(match message {
                        ExchangeMessage::Batch(_) => "batch",
                        ExchangeMessage::Barrier(_) => "barrier",
                        _ => "other",
                    });
                }
                assert_eq!(kinds, ["batch", "batch", "barrier", "barrier"]);
                // One batch processed: the sender gets its credit back.
                grantor.processed();
                grantor.flush();
                let third = receiver.recv().await.expect("a third batch");
                assert!(matches!(third, ExchangeMessage::Batch(_)));
                assert!(matches!(receiver.recv().await, Some(ExchangeMessage::End)));
            })
            .expect("receiver executor");
        let sender = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let granted = Rc::new(Wake::new());
                let (sender, listen) = tx.connect(granted.clone()).await;
                let listen = glommio::spawn_local(listen);
                assert!(sender.try_send(batch()).is_ok());
                assert!(sender.try_send(batch()).is_ok());
                assert!(!sender.can_send_batch());
                assert!(matches!(
                    sender.try_send(batch()),
                    Err(SendError::NoCredit(ExchangeMessage::Batch(_)))
                ));
                let barrier = CheckpointBarrier {
                    id: 1,
                    timestamp_ms: 0,
                };
                for _ in 0..2 {
                    assert!(sender.try_send(ExchangeMessage::Barrier(barrier)).is_ok());
                }
                while !sender.can_send_batch() {
                    granted.wait().await;
                }
                assert!(sender.try_send(batch()).is_ok());
                assert!(sender.try_send(ExchangeMessage::End).is_ok());
                // The receiver ends and drops its grantor: the listener ends
                // and sends fail at once instead of waiting.
                listen.await;
                assert!(sender.can_send_batch());
                assert!(matches!(sender.try_send(batch()), Err(SendError::Closed)));
            })
            .expect("sender executor");
        receiver.join().expect("receiver");
        sender.join().expect("sender");
    }
}
