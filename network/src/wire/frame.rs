//! The frame format of a link between two workers: every channel's messages,
//! and the credits and backlogs that flow against them, as length-prefixed
//! frames.
//!
//! Pure encoding and decoding on byte buffers, on whichever core runs the
//! link. A frame is a 16-byte header, little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | payload length (bytes after the header) |
//! | 4 | kind ([`FrameKind`]) |
//! | 5 | flags (bit 0: a batch carries a watermark; all others zero) |
//! | 6..8 | reserved, zero |
//! | 8..12 | channel: its index on the link |
//! | 12..16 | count: records of a batch, credits granted, batches backlogged, 1 for idle |
//!
//! and a payload by kind: a batch is its archived records first (so that a
//! payload read into an aligned buffer has them aligned as they were built,
//! and operators read them in place), then `count` record ends (`u32`), then
//! `count` timestamps (`i64`), then the watermark (`i64`) when flagged; a
//! barrier is its id (`u64`) and timestamp (`i64`); the others have none.
//!
//! Invariant: a frame that decodes is well-formed — its header fields are
//! within bounds (payload at most the link's maximum, a batch at most
//! [`BATCH_RECORDS_MAX`] records, exact sizes for fixed payloads) and a batch
//! satisfies [`RecordBatch::check_invariants`]. Its records are validated
//! for their type where the type is known (the engine, with
//! [`RecordBatch::check_records`]). Bytes from a peer are untrusted: every
//! failure is a [`FrameError`] naming the field, never a panic.

use rkyv::util::AlignedVec;

use crate::{CheckpointBarrier, ExchangeMessage, RecordBatch, WatermarkStatus, BATCH_RECORDS_MAX};

/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 16;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    Batch = 1,
    Status = 2,
    Barrier = 3,
    End = 4,
    /// Receiver to sender: `count` more batches may be sent on the channel.
    Credit = 5,
    /// Sender to receiver: `count` batches wait for credit on the channel.
    Backlog = 6,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => FrameKind::Batch,
            2 => FrameKind::Status,
            3 => FrameKind::Barrier,
            4 => FrameKind::End,
            5 => FrameKind::Credit,
            6 => FrameKind::Backlog,
            _ => return None,
        })
    }
}

const FLAG_WATERMARK: u8 = 1;
const BARRIER_PAYLOAD_LEN: u32 = 16;
/// Bytes of a batch's payload per record beyond its archive: end and timestamp.
const PER_RECORD_META: u64 = 4 + 8;

/// A header that [`decode_header`] checked (the only way to get one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    payload_len: u32,
    kind: FrameKind,
    flags: u8,
    channel: u32,
    count: u32,
}

impl FrameHeader {
    /// Bytes of payload that follow the header.
    pub fn payload_len(&self) -> usize {
        self.payload_len as usize
    }

    pub fn kind(&self) -> FrameKind {
        self.kind
    }

    pub fn channel(&self) -> u32 {
        self.channel
    }
}

/// One frame on a link.
#[derive(Debug)]
pub enum Frame {
    /// A message of channel `channel`, sender to receiver.
    Message {
        channel: u32,
        message: ExchangeMessage,
    },
    /// Receiver to sender: `credits` more batches may be sent on `channel`.
    Credit { channel: u32, credits: u32 },
    /// Sender to receiver: `batches` wait for credit on `channel`.
    Backlog { channel: u32, batches: u32 },
}

/// Why bytes from a peer are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("frame payload of {len} bytes is over the link's limit of {max}")]
    Oversized { len: u32, max: u32 },
    #[error("reserved header bytes are not zero ({0:#06x})")]
    Reserved(u16),
    #[error("flags {flags:#04x} are not valid for a {kind:?} frame")]
    Flags { kind: FrameKind, flags: u8 },
    #[error("a {kind:?} frame has a {len}-byte payload, expected {expected}")]
    PayloadLength {
        kind: FrameKind,
        len: u32,
        expected: u64,
    },
    #[error("a batch of {0} records is over the limit of {BATCH_RECORDS_MAX}")]
    TooManyRecords(u32),
    #[error("watermark status {0} is neither active (0) nor idle (1)")]
    Status(u32),
    #[error("malformed batch: {0}")]
    Batch(String),
    #[error("the stream ended {got} bytes into a {expected}-byte frame")]
    Truncated { got: usize, expected: usize },
}

/// Appends `frame` to `out` (header and payload).
pub fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    let (kind, flags, channel, count, payload_len) = match frame {
        Frame::Message { channel, message } => match message {
            ExchangeMessage::Batch(batch) => {
                let wm = batch.watermark.is_some();
                let len = batch.bytes().len() + batch.len() * 12 + if wm { 8 } else { 0 };
                (
                    FrameKind::Batch,
                    if wm { FLAG_WATERMARK } else { 0 },
                    *channel,
                    batch.len() as u32,
                    len,
                )
            }
            ExchangeMessage::Status(status) => (
                FrameKind::Status,
                0,
                *channel,
                (*status == WatermarkStatus::Idle) as u32,
                0,
            ),
            ExchangeMessage::Barrier(_) => (
                FrameKind::Barrier,
                0,
                *channel,
                0,
                BARRIER_PAYLOAD_LEN as usize,
            ),
            ExchangeMessage::End => (FrameKind::End, 0, *channel, 0, 0),
        },
        Frame::Credit { channel, credits } => (FrameKind::Credit, 0, *channel, *credits, 0),
        Frame::Backlog { channel, batches } => (FrameKind::Backlog, 0, *channel, *batches, 0),
    };
    let payload_len =
        u32::try_from(payload_len).expect("bug: a batch over 4 GiB (batches are bounded)");
    out.reserve(FRAME_HEADER_LEN + payload_len as usize);
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.push(kind as u8);
    out.push(flags);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&channel.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    if let Frame::Message { message, .. } = frame {
        match message {
            ExchangeMessage::Batch(batch) => {
                out.extend_from_slice(batch.bytes());
                for end in batch.ends() {
                    out.extend_from_slice(&end.to_le_bytes());
                }
                for ts in batch.timestamps() {
                    out.extend_from_slice(&ts.to_le_bytes());
                }
                if let Some(wm) = batch.watermark {
                    out.extend_from_slice(&wm.to_le_bytes());
                }
            }
            ExchangeMessage::Barrier(barrier) => {
                out.extend_from_slice(&barrier.id.to_le_bytes());
                out.extend_from_slice(&barrier.timestamp_ms.to_le_bytes());
            }
            ExchangeMessage::Status(_) | ExchangeMessage::End => {}
        }
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes and checks a header; `max_payload` bounds what a peer may make
/// the link allocate.
pub fn decode_header(
    bytes: &[u8; FRAME_HEADER_LEN],
    max_payload: u32,
) -> Result<FrameHeader, FrameError> {
    let payload_len = u32_at(bytes, 0);
    let kind = FrameKind::from_byte(bytes[4]).ok_or(FrameError::UnknownKind(bytes[4]))?;
    let flags = bytes[5];
    let reserved = u16::from_le_bytes([bytes[6], bytes[7]]);
    let channel = u32_at(bytes, 8);
    let count = u32_at(bytes, 12);
    if payload_len > max_payload {
        return Err(FrameError::Oversized {
            len: payload_len,
            max: max_payload,
        });
    }
    if reserved != 0 {
        return Err(FrameError::Reserved(reserved));
    }
    let allowed_flags = if kind == FrameKind::Batch {
        FLAG_WATERMARK
    } else {
        0
    };
    if flags & !allowed_flags != 0 {
        return Err(FrameError::Flags { kind, flags });
    }
    let exact = |expected: u32| {
        if payload_len == expected {
            Ok(())
        } else {
            Err(FrameError::PayloadLength {
                kind,
                len: payload_len,
                expected: expected as u64,
            })
        }
    };
    match kind {
        FrameKind::Batch => {
            if count as usize > BATCH_RECORDS_MAX {
                return Err(FrameError::TooManyRecords(count));
            }
            let meta = count as u64 * PER_RECORD_META + 8 * (flags & FLAG_WATERMARK) as u64;
            if (payload_len as u64) < meta {
                return Err(FrameError::PayloadLength {
                    kind,
                    len: payload_len,
                    expected: meta,
                });
            }
        }
        FrameKind::Barrier => exact(BARRIER_PAYLOAD_LEN)?,
        FrameKind::Status => {
            exact(0)?;
            if count > 1 {
                return Err(FrameError::Status(count));
            }
        }
        FrameKind::End | FrameKind::Credit | FrameKind::Backlog => exact(0)?,
    }
    Ok(FrameHeader {
        payload_len,
        kind,
        flags,
        channel,
        count,
    })
}

/// Decodes a frame from its checked header and its payload, read into an
/// aligned buffer (a batch keeps that buffer for its records: no copy).
pub fn decode_frame(header: &FrameHeader, mut payload: AlignedVec) -> Result<Frame, FrameError> {
    if payload.len() != header.payload_len as usize {
        return Err(FrameError::Truncated {
            got: payload.len(),
            expected: header.payload_len as usize,
        });
    }
    let channel = header.channel;
    let message = match header.kind {
        FrameKind::Credit => {
            return Ok(Frame::Credit {
                channel,
                credits: header.count,
            })
        }
        FrameKind::Backlog => {
            return Ok(Frame::Backlog {
                channel,
                batches: header.count,
            })
        }
        FrameKind::End => ExchangeMessage::End,
        FrameKind::Status => ExchangeMessage::Status(if header.count == 1 {
            WatermarkStatus::Idle
        } else {
            WatermarkStatus::Active
        }),
        FrameKind::Barrier => ExchangeMessage::Barrier(CheckpointBarrier {
            id: u64::from_le_bytes(payload[0..8].try_into().expect("8 bytes")),
            timestamp_ms: i64_at(&payload, 8),
        }),
        FrameKind::Batch => {
            let records = header.count as usize;
            let watermark_len = if header.flags & FLAG_WATERMARK != 0 {
                8
            } else {
                0
            };
            // The header check guarantees the metadata fits.
            let archive_len = payload.len() - records * PER_RECORD_META as usize - watermark_len;
            let meta = &payload[archive_len..];
            let ends: Vec<u32> = (0..records).map(|i| u32_at(meta, i * 4)).collect();
            let timestamps: Vec<i64> = (0..records)
                .map(|i| i64_at(meta, records * 4 + i * 8))
                .collect();
            let watermark = (watermark_len > 0).then(|| i64_at(meta, records * 12));
            payload.resize(archive_len, 0);
            let batch = RecordBatch::from_parts(payload, ends, timestamps, watermark)
                .map_err(FrameError::Batch)?;
            ExchangeMessage::Batch(batch)
        }
    };
    Ok(Frame::Message { channel, message })
}
