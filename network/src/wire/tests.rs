//! Frames round-trip; bytes that are not frames — random, truncated,
//! oversized, with one field wrong, with a payload that is not the records it
//! claims — are each a named error, never a panic.

use futures_lite::future::block_on;
use futures_lite::io::Cursor;
use proptest::prelude::*;

use super::*;
use crate::{
    BatchBuilder, CheckpointBarrier, ExchangeMessage, RecordBatch, WatermarkStatus,
    BATCH_RECORDS_MAX,
};

type Record = (u64, String);

const MAX_PAYLOAD: u32 = 1 << 20;

/// A frame as plain values, to compare what went in with what came out.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Batch {
        channel: u32,
        records: Vec<(i64, Record)>,
        watermark: Option<i64>,
    },
    Status(u32, bool),
    Barrier(u32, u64, i64),
    End(u32),
    Credit(u32, u32),
    Backlog(u32, u32),
}

fn to_frame(shape: &Shape) -> Frame {
    let message = |channel, message| Frame::Message { channel, message };
    match shape {
        Shape::Batch {
            channel,
            records,
            watermark,
        } => {
            let mut builder = BatchBuilder::<Record>::new(1 << 16);
            for (ts, record) in records {
                builder.push(*ts, record).unwrap();
            }
            if let Some(wm) = watermark {
                builder.set_watermark(*wm);
            }
            message(*channel, ExchangeMessage::Batch(builder.take()))
        }
        Shape::Status(channel, idle) => message(
            *channel,
            ExchangeMessage::Status(if *idle {
                WatermarkStatus::Idle
            } else {
                WatermarkStatus::Active
            }),
        ),
        Shape::Barrier(channel, id, ts) => message(
            *channel,
            ExchangeMessage::Barrier(CheckpointBarrier {
                id: *id,
                timestamp_ms: *ts,
            }),
        ),
        Shape::End(channel) => message(*channel, ExchangeMessage::End),
        Shape::Credit(channel, credits) => Frame::Credit {
            channel: *channel,
            credits: *credits,
        },
        Shape::Backlog(channel, batches) => Frame::Backlog {
            channel: *channel,
            batches: *batches,
        },
    }
}

fn to_shape(frame: Frame) -> Shape {
    match frame {
        Frame::Credit { channel, credits } => Shape::Credit(channel, credits),
        Frame::Backlog { channel, batches } => Shape::Backlog(channel, batches),
        Frame::Message { channel, message } => match message {
            ExchangeMessage::Batch(batch) => {
                batch.check_records::<Record>().unwrap();
                let records = (0..batch.len())
                    .map(|i| {
                        // SAFETY: `check_records::<Record>` accepted the batch.
                        let record = unsafe { batch.read_trusted::<Record>(i) };
                        (batch.timestamps()[i], record)
                    })
                    .collect();
                Shape::Batch {
                    channel,
                    records,
                    watermark: batch.watermark,
                }
            }
            ExchangeMessage::Status(status) => {
                Shape::Status(channel, status == WatermarkStatus::Idle)
            }
            ExchangeMessage::Barrier(b) => Shape::Barrier(channel, b.id, b.timestamp_ms),
            ExchangeMessage::End => Shape::End(channel),
        },
    }
}

fn shapes() -> impl Strategy<Value = Shape> {
    prop_oneof![
        (
            any::<u32>(),
            proptest::collection::vec((any::<i64>(), (any::<u64>(), ".{0,20}")), 0..20),
            proptest::option::of(any::<i64>()),
        )
            .prop_map(|(channel, records, watermark)| Shape::Batch {
                channel,
                records,
                watermark
            }),
        (any::<u32>(), any::<bool>()).prop_map(|(c, idle)| Shape::Status(c, idle)),
        (any::<u32>(), any::<u64>(), any::<i64>())
            .prop_map(|(c, id, ts)| Shape::Barrier(c, id, ts)),
        any::<u32>().prop_map(Shape::End),
        (any::<u32>(), any::<u32>()).prop_map(|(c, n)| Shape::Credit(c, n)),
        (any::<u32>(), any::<u32>()).prop_map(|(c, n)| Shape::Backlog(c, n)),
    ]
}

fn encode_all(shapes: &[Shape]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut boundaries = vec![0];
    for shape in shapes {
        encode_frame(&to_frame(shape), &mut bytes);
        boundaries.push(bytes.len());
    }
    (bytes, boundaries)
}

/// Reads frames until the end or an error.
fn read_all(bytes: &[u8]) -> (Vec<Frame>, Option<ReadError>) {
    let mut reader = FrameReader::new(Cursor::new(bytes), MAX_PAYLOAD);
    let mut frames = Vec::new();
    block_on(async {
        loop {
            match reader.next().await {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => return (frames, None),
                Err(e) => return (frames, Some(e)),
            }
        }
    })
}

fn frame_error(bytes: &[u8]) -> FrameError {
    match read_all(bytes).1 {
        Some(ReadError::Frame(e)) => e,
        other => panic!("expected a frame error, got {other:?}"),
    }
}

proptest! {
    #[test]
    fn frames_round_trip(shapes in proptest::collection::vec(shapes(), 0..12)) {
        let (bytes, _) = encode_all(&shapes);
        let (frames, error) = read_all(&bytes);
        prop_assert!(error.is_none(), "{:?}", error);
        let read: Vec<Shape> = frames.into_iter().map(to_shape).collect();
        prop_assert_eq!(read, shapes);
    }

    // A stream cut anywhere reads the frames before the cut, then ends
    // cleanly (cut between frames) or says it was truncated.
    #[test]
    fn a_cut_stream_is_truncated_not_misread(
        shapes in proptest::collection::vec(shapes(), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let (bytes, boundaries) = encode_all(&shapes);
        let cut = cut.index(bytes.len());
        let (frames, error) = read_all(&bytes[..cut]);
        let whole = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
        prop_assert_eq!(frames.len(), whole);
        if boundaries.contains(&cut) {
            prop_assert!(error.is_none());
        } else {
            prop_assert!(
                matches!(error, Some(ReadError::Frame(FrameError::Truncated { .. }))),
                "{:?}", error
            );
        }
    }

    // Garbage never panics; whatever decodes is well-formed.
    #[test]
    fn random_bytes_are_an_error_or_well_formed(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (frames, _) = read_all(&bytes);
        for frame in frames {
            if let Frame::Message { message: ExchangeMessage::Batch(batch), .. } = frame {
                prop_assert_eq!(batch.check_invariants(), Ok(()));
                // Validation for a type may fail, but never panics.
                let _ = batch.check_records::<Record>();
            }
        }
    }

    // One byte of a valid stream flipped: an error, or frames that are
    // still well-formed (then their records are checked).
    #[test]
    fn a_flipped_byte_never_panics(
        shapes in proptest::collection::vec(shapes(), 1..6),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let (mut bytes, _) = encode_all(&shapes);
        let at = at.index(bytes.len());
        bytes[at] ^= xor;
        let (frames, _) = read_all(&bytes);
        for frame in frames {
            if let Frame::Message { message: ExchangeMessage::Batch(batch), .. } = frame {
                prop_assert_eq!(batch.check_invariants(), Ok(()));
                if batch.check_records::<Record>().is_ok() {
                    for i in 0..batch.len() {
                        // SAFETY: `check_records::<Record>` accepted the batch.
                        let _ = unsafe { batch.read_trusted::<Record>(i) };
                    }
                }
            }
        }
    }
}

fn header(len: u32, kind: u8, flags: u8, reserved: u16, channel: u32, count: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&len.to_le_bytes());
    h.push(kind);
    h.push(flags);
    h.extend_from_slice(&reserved.to_le_bytes());
    h.extend_from_slice(&channel.to_le_bytes());
    h.extend_from_slice(&count.to_le_bytes());
    h
}

#[test]
fn a_huge_length_is_refused_before_anything_is_allocated() {
    let bytes = header(u32::MAX, 1, 0, 0, 0, 0);
    assert_eq!(
        frame_error(&bytes),
        FrameError::Oversized {
            len: u32::MAX,
            max: MAX_PAYLOAD
        }
    );
}

#[test]
fn each_bad_header_field_is_named() {
    assert_eq!(
        frame_error(&header(0, 9, 0, 0, 0, 0)),
        FrameError::UnknownKind(9)
    );
    assert_eq!(
        frame_error(&header(0, 4, 0, 7, 0, 0)),
        FrameError::Reserved(7)
    );
    assert_eq!(
        frame_error(&header(0, 4, 1, 0, 0, 0)),
        FrameError::Flags {
            kind: FrameKind::End,
            flags: 1
        }
    );
    assert_eq!(
        frame_error(&header(8, 3, 0, 0, 0, 0)),
        FrameError::PayloadLength {
            kind: FrameKind::Barrier,
            len: 8,
            expected: 16
        }
    );
    assert_eq!(
        frame_error(&header(0, 2, 0, 0, 0, 2)),
        FrameError::Status(2)
    );
    let records = BATCH_RECORDS_MAX as u32 + 1;
    assert_eq!(
        frame_error(&header(0, 1, 0, 0, 0, records)),
        FrameError::TooManyRecords(records)
    );
    // One record and a watermark need 12 + 8 bytes beside the archive.
    assert_eq!(
        frame_error(&header(19, 1, 1, 0, 0, 1)),
        FrameError::PayloadLength {
            kind: FrameKind::Batch,
            len: 19,
            expected: 20
        }
    );
}

#[test]
fn a_batch_whose_ends_go_backwards_is_refused() {
    // Two records claimed in 8 archive bytes, the second ending before the first.
    let mut bytes = header(8 + 2 * 12, 1, 0, 0, 3, 2);
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&8u32.to_le_bytes());
    bytes.extend_from_slice(&4u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 16]);
    assert!(matches!(frame_error(&bytes), FrameError::Batch(_)));
    // An end past the archive.
    let mut bytes = header(8 + 12, 1, 0, 0, 3, 1);
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&9u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 8]);
    assert!(matches!(frame_error(&bytes), FrameError::Batch(_)));
}

#[test]
fn a_batch_that_is_not_its_records_fails_validation() {
    let batch = {
        let mut builder = BatchBuilder::<(u64, bool)>::new(1 << 16);
        builder.push(1, &(7, true)).unwrap();
        builder.take()
    };
    let mut bytes = Vec::new();
    encode_frame(
        &Frame::Message {
            channel: 0,
            message: ExchangeMessage::Batch(batch),
        },
        &mut bytes,
    );
    // The archive is the u64 then the bool: a bool of 2 is no bool.
    let archive = bytes.len() - FRAME_HEADER_LEN - 12;
    assert_eq!(archive, 16);
    assert_eq!(bytes[FRAME_HEADER_LEN + 8], 1);
    bytes[FRAME_HEADER_LEN + 8] = 2;
    let (frames, error) = read_all(&bytes);
    assert!(error.is_none(), "structurally fine: {error:?}");
    let Some(Frame::Message {
        message: ExchangeMessage::Batch(batch),
        ..
    }) = frames.into_iter().next()
    else {
        panic!("a batch")
    };
    let error = batch.check_records::<(u64, bool)>().unwrap_err();
    assert!(error.to_string().contains("record 0"), "{error}");
    let _: &RecordBatch = &batch;
}
