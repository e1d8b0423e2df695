//! The link between two shards: one channel of an exchange (edge × source
//! shard × target shard), as the engine sees it, whatever carries it.
//!
//! A channel has three ends, each on one core and `!Send` once connected:
//! - [`ChannelSender`] on the source shard: sends a batch only against a
//!   credit ([`SendCredits`](crate::SendCredits)), control messages
//!   (watermark status, barriers, end) in band and without credit, in the
//!   order they are offered;
//! - [`ChannelReceiver`] on the target shard: the messages, in that order;
//! - [`CreditGrantor`] on the target shard: gives a batch's credit back once
//!   the batch has been processed ([`CreditsOwed`](crate::CreditsOwed)).
//!
//! Implementations: [`local`](crate::local) (an in-process channel between two
//! shards of one machine; a batch moves by pointer) and, next, a TCP link
//! between machines that multiplexes many channels. A sender told
//! [`SendError::NoCredit`] waits for its [`Wake`](crate::Wake) (given when the
//! sender was connected), which a grant wakes; a channel without credit never
//! holds up another channel.

use std::future::poll_fn;
use std::task::{Context, Poll};

use crate::ExchangeMessage;

/// Why a message was not sent. The message comes back where it can still go
/// later.
#[derive(Debug)]
pub enum SendError {
    /// A batch, and no credit: try again once the sender's wake-up fires.
    NoCredit(ExchangeMessage),
    /// No room for a control message beyond the credits: the receiver is
    /// stalled. Try again shortly.
    Full(ExchangeMessage),
    /// The receiver has gone away (its shard ended or failed): nothing sent
    /// on this channel will be read.
    Closed,
}

/// The sending end of one channel; see the module docs.
pub trait ChannelSender {
    /// Sends `message` now; a batch takes a credit.
    fn try_send(&self, message: ExchangeMessage) -> Result<(), SendError>;

    /// Whether a batch could be offered now: a credit is available, or the
    /// receiver is gone (the send then fails at once instead of waiting).
    fn can_send_batch(&self) -> bool;

    /// `batches` wait to be sent on this channel for want of credit (0: none
    /// any more). A channel with a floating pool behind it (a remote link)
    /// tells its receiver, which may grant more; others ignore it.
    fn announce_backlog(&self, _batches: u32) {}
}

/// The receiving end of one channel; see the module docs.
pub trait ChannelReceiver {
    /// The next message; `None` once the sender has gone away (after `End`,
    /// or without it when its shard failed).
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<ExchangeMessage>>;
}

impl dyn ChannelReceiver {
    /// Waits for the next message (see [`ChannelReceiver::poll_recv`]).
    pub async fn recv(&mut self) -> Option<ExchangeMessage> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }
}

/// Gives credits back to one channel's sender; see the module docs.
pub trait CreditGrantor {
    /// A batch of this channel was processed: its credit goes back, in
    /// groups.
    fn processed(&mut self);

    /// Grants back everything owed (before the receiver waits for input).
    fn flush(&mut self);
}
