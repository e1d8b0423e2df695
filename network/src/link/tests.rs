//! Two shards on two executors linked over 127.0.0.1: every channel's
//! messages arrive in order, a channel without credit holds up no other, and
//! both sides end cleanly; a peer that sends bytes that are not frames, a
//! batch without credit, or records that are not the channel's type has its
//! link closed with an error naming it, and the receivers end.

use std::io::Write;
use std::rc::Rc;

use glommio::net::{TcpListener, TcpStream};
use glommio::LocalExecutorBuilder;

use super::*;
use crate::wire::{encode_frame, Frame};
use crate::{BatchBuilder, CheckpointBarrier};

const CREDITS: u32 = 2;
const FLOATING: u32 = 3;

fn check_u64(batch: &RecordBatch) -> Result<(), BatchError> {
    batch.check_records::<u64>()
}

fn batch_of(values: &[u64]) -> ExchangeMessage {
    let mut builder = BatchBuilder::<u64>::new(1 << 16);
    for v in values {
        builder.push(*v as i64, v).unwrap();
    }
    ExchangeMessage::Batch(builder.take())
}

fn values(message: &ExchangeMessage) -> Vec<u64> {
    match message {
        ExchangeMessage::Batch(batch) => (0..batch.len())
            // SAFETY: the link validated the batch with `check_u64`.
            .map(|i| unsafe { batch.read_trusted::<u64>(i) })
            .collect(),
        _ => Vec::new(),
    }
}

fn config(peer: &str, outgoing: usize, incoming: usize) -> LinkConfig {
    LinkConfig {
        peer: peer.into(),
        outgoing_credits: vec![CREDITS; outgoing],
        peer_floating: FLOATING,
        incoming: vec![(CREDITS, check_u64 as BatchValidator); incoming],
        floating: FLOATING,
        max_payload: 1 << 20,
        bytes_sent: Default::default(),
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Listens on `addr` and accepts one connection (on the link's executor).
async fn accept_one(addr: std::net::SocketAddr) -> TcpStream {
    TcpListener::bind(addr).unwrap().accept().await.unwrap()
}

/// A raw peer's connection to `addr`, once something listens there.
fn connect_raw(addr: std::net::SocketAddr) -> std::net::TcpStream {
    loop {
        match std::net::TcpStream::connect(addr) {
            Ok(stream) => return stream,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

/// Sends `batches` batches then `End` on one channel, waiting for credit.
async fn send_all(sender: &RemoteSender, granted: &Wake, channel: u64, batches: u64) {
    for b in 0..batches {
        let mut message = batch_of(&[channel * 1_000_000 + b]);
        loop {
            match sender.try_send(message) {
                Ok(()) => break,
                Err(SendError::NoCredit(m)) => {
                    message = m;
                    sender.announce_backlog((batches - b) as u32);
                    granted.wait().await;
                }
                Err(e) => panic!("channel {channel}: {e:?}"),
            }
        }
        if b == batches / 2 {
            let barrier = CheckpointBarrier {
                id: 1,
                timestamp_ms: 0,
            };
            sender
                .try_send(ExchangeMessage::Barrier(barrier))
                .expect("control needs no credit");
        }
    }
    sender.try_send(ExchangeMessage::End).expect("end");
}

/// Receives one channel to its end, granting credit back per batch.
async fn receive_all(receiver: &mut RemoteReceiver, grantor: &mut RemoteGrantor) -> Vec<u64> {
    let receiver: &mut dyn ChannelReceiver = receiver;
    let mut got = Vec::new();
    loop {
        match receiver.recv().await {
            Some(ExchangeMessage::End) => return got,
            Some(message) => {
                let batch = matches!(message, ExchangeMessage::Batch(_));
                got.extend(values(&message));
                if batch {
                    grantor.processed();
                    grantor.flush();
                }
            }
            None => panic!("the link closed before End"),
        }
    }
}

#[test]
fn channels_flow_independently_and_in_order_both_ways() {
    let addr = free_address();
    const BATCHES: u64 = 200;
    let receiving = LocalExecutorBuilder::default()
        .spawn(move || async move {
            let stream = accept_one(addr).await;
            let granted = Rc::new(Wake::new());
            let link = open_link(stream, config("sender", 1, 3), vec![granted.clone()]);
            let driver = glommio::spawn_local(link.driver);
            let mut receivers = link.receivers;
            // Channel 0 is not read until 1 and 2 are done: its sender runs out
            // of credit, and that holds up neither of the others.
            let (mut r2, mut g2) = receivers.pop().unwrap();
            let (mut r1, mut g1) = receivers.pop().unwrap();
            let (mut r0, mut g0) = receivers.pop().unwrap();
            let back = async {
                send_all(&link.senders[0], &granted, 9, 20).await;
            };
            let ((one, two), ()) = futures_lite::future::zip(
                futures_lite::future::zip(
                    receive_all(&mut r1, &mut g1),
                    receive_all(&mut r2, &mut g2),
                ),
                back,
            )
            .await;
            let zero = receive_all(&mut r0, &mut g0).await;
            driver.await.expect("the link ends cleanly");
            (zero, one, two)
        })
        .unwrap();
    let sending = LocalExecutorBuilder::default()
        .spawn(move || async move {
            let stream = loop {
                match TcpStream::connect(addr).await {
                    Ok(stream) => break stream,
                    Err(_) => glommio::timer::sleep(std::time::Duration::from_millis(10)).await,
                }
            };
            let wakes: Vec<Rc<Wake>> = (0..3).map(|_| Rc::new(Wake::new())).collect();
            let link = open_link(stream, config("receiver", 3, 1), wakes.clone());
            let driver = glommio::spawn_local(link.driver);
            let senders = &link.senders;
            let mut receivers = link.receivers;
            let (mut back_r, mut back_g) = receivers.pop().unwrap();
            let (_, ((), back)) = futures_lite::future::zip(
                futures_lite::future::zip(
                    send_all(&senders[0], &wakes[0], 0, 10),
                    send_all(&senders[1], &wakes[1], 1, BATCHES),
                ),
                futures_lite::future::zip(
                    send_all(&senders[2], &wakes[2], 2, BATCHES),
                    receive_all(&mut back_r, &mut back_g),
                ),
            )
            .await;
            driver.await.expect("the link ends cleanly");
            back
        })
        .unwrap();
    let (zero, one, two) = receiving.join().unwrap();
    let back = sending.join().unwrap();
    assert_eq!(zero, (0..10).collect::<Vec<_>>());
    assert_eq!(one, (0..BATCHES).map(|b| 1_000_000 + b).collect::<Vec<_>>());
    assert_eq!(two, (0..BATCHES).map(|b| 2_000_000 + b).collect::<Vec<_>>());
    assert_eq!(back, (0..20).map(|b| 9_000_000 + b).collect::<Vec<_>>());
}

/// A link on 127.0.0.1 fed `bytes` by a raw peer: what its driver says, and
/// whether its receiver ended without `End`.
fn bad_peer(bytes: Vec<u8>) -> (Result<(), LinkError>, bool) {
    bad_peer_on(bytes, check_u64)
}

fn bad_peer_on(bytes: Vec<u8>, validator: BatchValidator) -> (Result<(), LinkError>, bool) {
    let addr = free_address();
    let link_side = LocalExecutorBuilder::default()
        .spawn(move || async move {
            let stream = accept_one(addr).await;
            let mut config = config("bad peer 127.0.0.1", 0, 1);
            config.incoming[0].1 = validator;
            let link = open_link(stream, config, Vec::new());
            let result = link.driver.await;
            let (mut receiver, _) = link.receivers.into_iter().next().unwrap();
            let receiver: &mut dyn ChannelReceiver = &mut receiver;
            let mut ended_without_end = false;
            for _ in 0..10 {
                match receiver.recv().await {
                    Some(ExchangeMessage::End) => break,
                    Some(_) => {}
                    None => {
                        ended_without_end = true;
                        break;
                    }
                }
            }
            (result, ended_without_end)
        })
        .unwrap();
    let mut peer = connect_raw(addr);
    peer.write_all(&bytes).unwrap();
    drop(peer);
    link_side.join().unwrap()
}

fn frames(frames: &[Frame]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for frame in frames {
        encode_frame(frame, &mut bytes);
    }
    bytes
}

fn message(message: ExchangeMessage) -> Frame {
    Frame::Message {
        channel: 0,
        message,
    }
}

fn refused(bytes: Vec<u8>, reason: &str) {
    refused_on(bytes, check_u64, reason)
}

fn refused_on(bytes: Vec<u8>, validator: BatchValidator, reason: &str) {
    let (result, ended_without_end) = bad_peer_on(bytes, validator);
    let error = result.expect_err("the link must close").to_string();
    assert!(error.contains("bad peer 127.0.0.1"), "{error}");
    assert!(error.contains(reason), "{error} should say {reason}");
    assert!(ended_without_end, "the receiver ends without End");
}

#[test]
fn random_bytes_close_the_link_naming_the_peer() {
    refused(vec![0xAB; 64], "bad frame");
}

#[test]
fn a_huge_length_closes_the_link() {
    let mut bytes = frames(&[message(batch_of(&[1]))]);
    bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    refused(bytes, "over the link's limit");
}

#[test]
fn a_truncated_frame_closes_the_link() {
    let mut bytes = frames(&[message(batch_of(&[1, 2, 3]))]);
    bytes.truncate(bytes.len() - 5);
    refused(bytes, "the stream ended");
}

#[test]
fn a_batch_beyond_the_credits_closes_the_link() {
    let batches: Vec<Frame> = (0..CREDITS + 1)
        .map(|i| message(batch_of(&[i as u64])))
        .collect();
    refused(frames(&batches), "without credit");
}

#[test]
fn records_that_are_not_the_channels_type_close_the_link() {
    let mut builder = BatchBuilder::<(u64, bool)>::new(1 << 16);
    builder.push(0, &(1, true)).unwrap();
    let mut bytes = frames(&[message(ExchangeMessage::Batch(builder.take()))]);
    // The archived bool (after the u64) becomes 2: not a bool.
    bytes[crate::wire::FRAME_HEADER_LEN + 8] = 2;
    refused_on(
        bytes,
        |b| b.check_records::<(u64, bool)>(),
        "channel 0: record 0",
    );
}

#[test]
fn a_message_for_a_channel_that_does_not_exist_closes_the_link() {
    refused(
        frames(&[Frame::Message {
            channel: 7,
            message: ExchangeMessage::End,
        }]),
        "channel 7, which does not exist",
    );
}

#[test]
fn a_peer_that_leaves_before_ending_its_channels_is_an_error() {
    refused(Vec::new(), "before ending its channels");
}

#[test]
fn a_peer_that_ends_cleanly_closes_the_link_cleanly() {
    let (result, ended_without_end) = bad_peer(frames(&[
        message(batch_of(&[1])),
        message(ExchangeMessage::End),
    ]));
    assert_eq!(result, Ok(()));
    assert!(!ended_without_end);
}

/// A std stream read as an async one, blocking (a test's peer thread).
struct Blocking(std::net::TcpStream);

impl futures_lite::AsyncRead for Blocking {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(std::io::Read::read(&mut self.0, buf))
    }
}

/// A raw peer on 127.0.0.1 that uses up its exclusive credits on channel 0,
/// announces a backlog, and must be granted floating credits for the batches
/// beyond them; then ends cleanly.
#[test]
fn a_backlog_is_granted_credits_of_the_floating_pool() {
    let addr = free_address();
    let link_side = LocalExecutorBuilder::default()
        .spawn(move || async move {
            let stream = accept_one(addr).await;
            let link = open_link(stream, config("peer", 0, 2), Vec::new());
            let driver = glommio::spawn_local(link.driver);
            let mut receivers = link.receivers;
            let (mut r1, mut g1) = receivers.pop().unwrap();
            let (mut r0, mut g0) = receivers.pop().unwrap();
            let (zero, one) = futures_lite::future::zip(receive_all(&mut r0, &mut g0), async {
                receive_all(&mut r1, &mut g1).await
            })
            .await;
            (driver.await, zero, one)
        })
        .unwrap();
    let peer = connect_raw(addr);
    peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut writer = peer.try_clone().unwrap();
    let mut reader = crate::wire::FrameReader::new(Blocking(peer), 1 << 20);
    // A backlog of five on a channel of two exclusive credits.
    let mut bytes = frames(&[Frame::Backlog {
        channel: 0,
        batches: 5,
    }]);
    writer.write_all(&bytes).unwrap();
    // The pool's three credits come back for channel 0, before any batch was
    // processed.
    let mut floating = 0;
    while floating < FLOATING {
        match futures_lite::future::block_on(reader.next()) {
            Ok(Some(Frame::Credit {
                channel: 0,
                credits,
            })) => floating += credits,
            other => panic!("expected credit for channel 0, got {other:?}"),
        }
    }
    assert_eq!(floating, FLOATING);
    let batches: Vec<Frame> = (0..CREDITS + FLOATING)
        .map(|i| message(batch_of(&[u64::from(i)])))
        .chain([
            Frame::Backlog {
                channel: 0,
                batches: 0,
            },
            message(ExchangeMessage::End),
            Frame::Message {
                channel: 1,
                message: ExchangeMessage::End,
            },
        ])
        .collect();
    bytes = frames(&batches);
    writer.write_all(&bytes).unwrap();
    writer.shutdown(std::net::Shutdown::Write).unwrap();
    // Read what the link sends until it closes.
    for _ in 0..1000 {
        match futures_lite::future::block_on(reader.next()) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let (result, zero, one) = link_side.join().unwrap();
    assert_eq!(result, Ok(()));
    assert_eq!(zero, (0..u64::from(CREDITS + FLOATING)).collect::<Vec<_>>());
    assert!(one.is_empty());
}

#[test]
fn a_backlog_for_a_channel_that_does_not_exist_closes_the_link() {
    refused(
        frames(&[Frame::Backlog {
            channel: 3,
            batches: 1,
        }]),
        "a backlog for channel 3, which does not exist",
    );
}
