//! The wire between two workers: frames of every channel's messages, credits
//! and backlogs ([`frame`]), and reading them from a stream ([`reader`]).
//! The link that multiplexes a pair of workers' channels over one TCP
//! connection builds on these.

mod frame;
mod reader;

pub use frame::{
    decode_frame, decode_header, encode_frame, Frame, FrameError, FrameHeader, FrameKind,
    FRAME_HEADER_LEN,
};
pub use reader::{FrameReader, ReadError};

#[cfg(test)]
mod tests;
