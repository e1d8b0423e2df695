//! A link: the channels between one shard and one shard of another worker,
//! multiplexed over one TCP connection, behind the same channel interface as
//! the in-process path ([`ChannelSender`], [`ChannelReceiver`],
//! [`CreditGrantor`]).
//!
//! Everything of a link lives on one core — the shard's — with no lock or
//! cross-core hand-off: a link per pair of shards rather than per pair of
//! workers, so that a batch goes from the socket to the operator that reads it
//! on the core that received it. (With glommio's executors one per core, a
//! link per pair of workers would move every batch across cores once more.)
//!
//! Each direction numbers its channels `0..n`; message and backlog frames
//! name the channel of their direction, credit frames the channel they give
//! credit to (the other direction). Both sides know each channel's exclusive
//! credits and each side's floating pool from the job: a sender starts with
//! its exclusive credits and sends a batch only against one; refused for
//! want of credit, it announces its backlog, and the receiver may grant it
//! credits of its floating pool ([`credits`]); the receiver grants a credit
//! back once the batch is processed. A receiver
//! checks that: a peer that sends a batch without credit, names a channel
//! that does not exist, sends after `End`, grants more than it may, or sends
//! bytes that are not frames or records that are not the channel's type, has
//! its link closed with a [`LinkError`] — the receivers then end without
//! `End` (as a failed shard's channels do) and the senders fail with
//! `Closed`. A channel without credit holds up nothing else: frames are
//! queued for the socket only when they may be sent.
//!
//! Invariants: per direction, at most a channel's exclusive credits plus
//! what it holds of the floating pool are queued, on the wire or
//! unprocessed at the receiver, and so at most the sum of the exclusive
//! credits plus the pool for the whole link; control messages pass without
//! credit, in order with the channel's batches.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::wire::{encode_frame, Frame, FrameReader, ReadError};
use crate::{
    BatchError, ChannelReceiver, ChannelSender, CreditGrantor, ExchangeMessage, RecordBatch,
    SendCredits, SendError, Wake,
};
use credits::{Grant, IncomingCredits};

pub mod credits;
#[cfg(test)]
mod simulation;
#[cfg(test)]
mod tests;

/// Validates a batch received on one channel as that channel's record type
/// (`RecordBatch::check_records::<T>`), before any operator reads it.
pub type BatchValidator = fn(&RecordBatch) -> Result<(), BatchError>;

/// How a link is set up; both sides must agree on the channels and credits.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The peer, for errors (an address or a worker's name).
    pub peer: String,
    /// Per channel this side sends on: its exclusive credits.
    pub outgoing_credits: Vec<u32>,
    /// The peer's floating pool: how much a channel's credits may grow.
    pub peer_floating: u32,
    /// Per channel this side receives on: its exclusive credits and its
    /// record type's validator.
    pub incoming: Vec<(u32, BatchValidator)>,
    /// This side's floating pool, shared by the channels it receives on.
    pub floating: u32,
    /// The largest frame payload the peer may send.
    pub max_payload: u32,
    /// Counts the bytes written to the socket (frames with their headers).
    pub bytes_sent: Arc<AtomicU64>,
}

/// Why a link closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("link to {peer}: {reason}")]
    Peer { peer: String, reason: String },
}

/// The ends of a link's channels, and the task that runs it.
pub struct Link<D> {
    /// Per outgoing channel.
    pub senders: Vec<RemoteSender>,
    /// Per incoming channel.
    pub receivers: Vec<(RemoteReceiver, RemoteGrantor)>,
    /// Reads and writes the socket until both sides ended every channel, or
    /// an error closes the link. Spawn it on the same core.
    pub driver: D,
}

struct OutgoingChannel {
    credits: Cell<SendCredits>,
    granted: Rc<Wake>,
    ended: Cell<bool>,
    /// The backlog last announced to the peer.
    announced: Cell<u32>,
}

struct IncomingChannel {
    queue: VecDeque<ExchangeMessage>,
    waker: Option<Waker>,
    ended: bool,
}

/// What the ends and the driver of one link share (one core).
struct Shared {
    /// Encoded frames waiting for the socket.
    out: RefCell<Vec<u8>>,
    out_ready: Wake,
    outgoing: Vec<OutgoingChannel>,
    /// Whether the peer has a floating pool (else a backlog is not
    /// announced: nothing could come of it).
    peer_floating: bool,
    incoming: Vec<RefCell<IncomingChannel>>,
    /// The credits of the incoming channels.
    credits: RefCell<IncomingCredits>,
    /// Outgoing channels that have not sent `End`.
    open_outgoing: Cell<usize>,
    /// Incoming channels whose `End` has not come.
    open_incoming: Cell<usize>,
    /// Set once the link failed or the peer went away.
    closed: Cell<bool>,
}

impl Shared {
    fn queue(&self, frame: &Frame) {
        encode_frame(frame, &mut self.out.borrow_mut());
        self.out_ready.wake_all();
    }

    /// Sends `grants` to the peer (unless the link has closed).
    fn send_grants(&self, grants: &mut Vec<Grant>) {
        if !self.closed.get() {
            for grant in grants.iter() {
                encode_frame(
                    &Frame::Credit {
                        channel: grant.channel,
                        credits: grant.credits,
                    },
                    &mut self.out.borrow_mut(),
                );
            }
            if !grants.is_empty() {
                self.out_ready.wake_all();
            }
        }
        grants.clear();
    }

    /// Ends every channel: receivers see the end of their stream, senders
    /// fail.
    fn close(&self) {
        self.closed.set(true);
        for channel in &self.incoming {
            if let Some(waker) = channel.borrow_mut().waker.take() {
                waker.wake();
            }
        }
        for channel in &self.outgoing {
            channel.granted.wake_all();
        }
        self.out_ready.wake_all();
    }
}

/// Sets up a link over `stream` (connected, and authenticated by the caller)
/// with the channels `config` names. `granted[i]` is woken when outgoing
/// channel `i` gets credit (or the link closes).
pub fn open_link<S>(
    stream: S,
    config: LinkConfig,
    granted: Vec<Rc<Wake>>,
) -> Link<impl Future<Output = Result<(), LinkError>>>
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    assert_eq!(granted.len(), config.outgoing_credits.len());
    let shared = Rc::new(Shared {
        out: RefCell::new(Vec::new()),
        out_ready: Wake::new(),
        outgoing: config
            .outgoing_credits
            .iter()
            .zip(granted)
            .map(|(&credits, granted)| OutgoingChannel {
                credits: Cell::new(SendCredits::with_limit(
                    credits,
                    credits.saturating_add(config.peer_floating),
                )),
                granted,
                ended: Cell::new(false),
                announced: Cell::new(0),
            })
            .collect(),
        peer_floating: config.peer_floating > 0,
        incoming: config
            .incoming
            .iter()
            .map(|_| {
                RefCell::new(IncomingChannel {
                    queue: VecDeque::new(),
                    waker: None,
                    ended: false,
                })
            })
            .collect(),
        credits: RefCell::new(IncomingCredits::new(
            config.incoming.iter().map(|&(credits, _)| credits),
            config.floating,
        )),
        open_outgoing: Cell::new(config.outgoing_credits.len()),
        open_incoming: Cell::new(config.incoming.len()),
        closed: Cell::new(false),
    });
    let senders = (0..config.outgoing_credits.len() as u32)
        .map(|channel| RemoteSender {
            shared: shared.clone(),
            channel,
        })
        .collect();
    let receivers = config
        .incoming
        .iter()
        .enumerate()
        .map(|(channel, _)| {
            (
                RemoteReceiver {
                    shared: shared.clone(),
                    channel,
                },
                RemoteGrantor {
                    shared: shared.clone(),
                    channel,
                    grants: Vec::new(),
                },
            )
        })
        .collect();
    let driver = drive(stream, config, shared);
    Link {
        senders,
        receivers,
        driver,
    }
}

/// Runs the link: one task reads, one writes; the first error closes it.
/// Each side closes its direction of the socket once it has sent every
/// channel's end and received the peer's (no credit is needed any more); the
/// link is done when the peer has done the same.
async fn drive<S>(stream: S, config: LinkConfig, shared: Rc<Shared>) -> Result<(), LinkError>
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (read, write) = futures_lite::io::split(stream);
    let fail = |reason: String| LinkError::Peer {
        peer: config.peer.clone(),
        reason,
    };
    let reading = read_frames(read, &config, &shared);
    let writing = write_frames(write, &shared, &config.bytes_sent);
    let result = futures_lite::future::try_zip(reading, writing).await;
    shared.close();
    result.map(|_| ()).map_err(fail)
}

async fn write_frames<W: AsyncWrite + Unpin>(
    mut write: W,
    shared: &Shared,
    bytes_sent: &AtomicU64,
) -> Result<(), String> {
    let mut buffer = Vec::new();
    let done = || shared.open_outgoing.get() == 0 && shared.open_incoming.get() == 0;
    loop {
        while shared.out.borrow().is_empty() && !shared.closed.get() && !done() {
            shared.out_ready.wait().await;
        }
        if shared.out.borrow().is_empty() {
            // Everything written: this direction is done.
            return write
                .close()
                .await
                .map_err(|e| format!("closing failed: {e}"));
        }
        std::mem::swap(&mut buffer, &mut shared.out.borrow_mut());
        write
            .write_all(&buffer)
            .await
            .map_err(|e| format!("writing failed: {e}"))?;
        write
            .flush()
            .await
            .map_err(|e| format!("writing failed: {e}"))?;
        bytes_sent.fetch_add(buffer.len() as u64, Ordering::Relaxed);
        buffer.clear();
    }
}

async fn read_frames<R: AsyncRead + Unpin>(
    read: R,
    config: &LinkConfig,
    shared: &Shared,
) -> Result<(), String> {
    let mut reader = FrameReader::new(read, config.max_payload);
    let mut grants = Vec::new();
    loop {
        let frame = match reader.next().await {
            Ok(Some(frame)) => frame,
            Ok(None) if shared.open_incoming.get() == 0 => return Ok(()),
            Ok(None) => return Err("the peer closed the link before ending its channels".into()),
            Err(ReadError::Frame(e)) => return Err(format!("bad frame: {e}")),
            Err(ReadError::Io(e)) => return Err(format!("reading failed: {e}")),
        };
        match frame {
            Frame::Message { channel, message } => {
                let Some(incoming) = shared.incoming.get(channel as usize) else {
                    return Err(format!(
                        "a message for channel {channel}, which does not exist"
                    ));
                };
                let mut incoming = incoming.borrow_mut();
                if incoming.ended {
                    return Err(format!("a message on channel {channel} after its end"));
                }
                if let ExchangeMessage::Batch(batch) = &message {
                    shared
                        .credits
                        .borrow_mut()
                        .batch_arrived(channel as usize)
                        .map_err(|e| e.to_string())?;
                    let validate = config.incoming[channel as usize].1;
                    validate(batch).map_err(|e| format!("channel {channel}: {e}"))?;
                }
                if matches!(message, ExchangeMessage::End) {
                    incoming.ended = true;
                    shared.open_incoming.set(shared.open_incoming.get() - 1);
                    shared.out_ready.wake_all();
                    shared
                        .credits
                        .borrow_mut()
                        .ended(channel as usize, &mut grants);
                    shared.send_grants(&mut grants);
                }
                incoming.queue.push_back(message);
                if let Some(waker) = incoming.waker.take() {
                    waker.wake();
                }
            }
            Frame::Credit { channel, credits } => {
                let Some(outgoing) = shared.outgoing.get(channel as usize) else {
                    return Err(format!(
                        "credit for channel {channel}, which does not exist"
                    ));
                };
                let mut state = outgoing.credits.get();
                state
                    .checked_grant(credits)
                    .map_err(|e| format!("channel {channel}: {e}"))?;
                outgoing.credits.set(state);
                outgoing.granted.wake_all();
            }
            Frame::Backlog { channel, batches } => {
                let Some(incoming) = shared.incoming.get(channel as usize) else {
                    return Err(format!(
                        "a backlog for channel {channel}, which does not exist"
                    ));
                };
                if incoming.borrow().ended {
                    return Err(format!("a backlog on channel {channel} after its end"));
                }
                shared
                    .credits
                    .borrow_mut()
                    .backlog(channel as usize, batches, &mut grants);
                shared.send_grants(&mut grants);
            }
        }
    }
}

/// Sends on one outgoing channel of a link.
pub struct RemoteSender {
    shared: Rc<Shared>,
    channel: u32,
}

impl ChannelSender for RemoteSender {
    fn try_send(&self, message: ExchangeMessage) -> Result<(), SendError> {
        let outgoing = &self.shared.outgoing[self.channel as usize];
        // After the link closed, or this channel's end, nothing more goes.
        if self.shared.closed.get() || outgoing.ended.get() {
            return Err(SendError::Closed);
        }
        if matches!(message, ExchangeMessage::Batch(_)) {
            let mut credits = outgoing.credits.get();
            if !credits.try_take() {
                return Err(SendError::NoCredit(message));
            }
            outgoing.credits.set(credits);
        }
        if matches!(message, ExchangeMessage::End) {
            outgoing.ended.set(true);
            outgoing.announced.set(0);
            let open = &self.shared.open_outgoing;
            open.set(open.get() - 1);
        }
        self.shared.queue(&Frame::Message {
            channel: self.channel,
            message,
        });
        Ok(())
    }

    fn can_send_batch(&self) -> bool {
        self.shared.closed.get()
            || self.shared.outgoing[self.channel as usize]
                .credits
                .get()
                .available()
                > 0
    }

    fn announce_backlog(&self, batches: u32) {
        let outgoing = &self.shared.outgoing[self.channel as usize];
        if !self.shared.peer_floating
            || self.shared.closed.get()
            || outgoing.ended.get()
            || outgoing.announced.get() == batches
        {
            return;
        }
        outgoing.announced.set(batches);
        self.shared.queue(&Frame::Backlog {
            channel: self.channel,
            batches,
        });
    }
}

/// Receives on one incoming channel of a link.
pub struct RemoteReceiver {
    shared: Rc<Shared>,
    channel: usize,
}

impl ChannelReceiver for RemoteReceiver {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<ExchangeMessage>> {
        let mut incoming = self.shared.incoming[self.channel].borrow_mut();
        if let Some(message) = incoming.queue.pop_front() {
            return Poll::Ready(Some(message));
        }
        if incoming.ended || self.shared.closed.get() {
            return Poll::Ready(None);
        }
        incoming.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Grants credit back on one incoming channel of a link.
pub struct RemoteGrantor {
    shared: Rc<Shared>,
    channel: usize,
    /// Reused for the grants of one call.
    grants: Vec<Grant>,
}

impl CreditGrantor for RemoteGrantor {
    fn processed(&mut self) {
        self.shared
            .credits
            .borrow_mut()
            .processed(self.channel, &mut self.grants);
        self.shared.send_grants(&mut self.grants);
    }

    fn flush(&mut self) {
        self.shared
            .credits
            .borrow_mut()
            .flush(self.channel, &mut self.grants);
        self.shared.send_grants(&mut self.grants);
    }
}
