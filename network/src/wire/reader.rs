//! Reads frames from a byte stream (a TCP socket of a link), one at a time.
//!
//! Runs on the core that owns the link. Each frame's header is read and
//! checked first; only then is its payload read, straight into an aligned
//! buffer of exactly its length, which a batch keeps for its records. A peer
//! can make the reader allocate at most the link's maximum payload per frame.

use futures_lite::{AsyncRead, AsyncReadExt};
use rkyv::util::AlignedVec;

use super::frame::{decode_frame, decode_header, Frame, FrameError, FRAME_HEADER_LEN};

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The bytes are not a frame; the link must close.
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("reading the link failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Frames from one stream; see the module docs.
pub struct FrameReader<R> {
    stream: R,
    max_payload: u32,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads frames from `stream`, refusing payloads over `max_payload` bytes.
    pub fn new(stream: R, max_payload: u32) -> Self {
        FrameReader {
            stream,
            max_payload,
        }
    }

    /// The next frame; `Ok(None)` when the stream ended cleanly between frames.
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadError> {
        let mut header = [0u8; FRAME_HEADER_LEN];
        let got = read_fully(&mut self.stream, &mut header).await?;
        if got == 0 {
            return Ok(None);
        }
        if got < FRAME_HEADER_LEN {
            return Err(FrameError::Truncated {
                got,
                expected: FRAME_HEADER_LEN,
            }
            .into());
        }
        let header = decode_header(&header, self.max_payload)?;
        let mut payload = AlignedVec::with_capacity(header.payload_len());
        payload.resize(header.payload_len(), 0);
        let got = read_fully(&mut self.stream, &mut payload).await?;
        if got < header.payload_len() {
            return Err(FrameError::Truncated {
                got: FRAME_HEADER_LEN + got,
                expected: FRAME_HEADER_LEN + header.payload_len(),
            }
            .into());
        }
        Ok(Some(decode_frame(&header, payload)?))
    }

    /// The stream, e.g. to shut it down.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.stream
    }
}

/// Fills `buf` unless the stream ends first; returns how much was read.
async fn read_fully<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
