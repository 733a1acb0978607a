//! Length-prefixed frames: how several self-checked envelopes share one HTTP/2 body.
//!
//! A body is a sequence of frames until its end, each a u32 little-endian length `n` (at most
//! [`MAX_FRAME`]) followed by `n` bytes of one envelope, optionally after a fixed-size prefix
//! of the caller's (a batch answer's index). [`Reader`] takes a body that arrives in chunks
//! cut anywhere. Envelopes carry their own checksum
//! (replication messages, [`crate::proto`] requests), so frames add none. Used by the
//! replication transport ([`crate::transport`]) and by batched client operations
//! ([`crate::proto::batch`]).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tierkv_engine::codec::DecodeError;

/// Largest envelope accepted in a frame (64 MiB).
pub const MAX_FRAME: usize = 64 << 20;

/// Why a body could not be split into envelopes.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A frame header or envelope was cut short.
    #[error("truncated frame at offset {offset}")]
    Truncated {
        /// Where the frame started.
        offset: usize,
    },
    /// A frame longer than [`MAX_FRAME`].
    #[error("frame of {len} bytes at offset {offset} exceeds the limit")]
    TooLarge {
        /// Where the frame started.
        offset: usize,
        /// Its declared length.
        len: usize,
    },
    /// An envelope failed to decode.
    #[error("bad envelope at offset {offset}: {source}")]
    Envelope {
        /// Where the frame started.
        offset: usize,
        /// The decoder's error.
        source: DecodeError,
    },
}

/// Frames `envelopes` into one body.
#[must_use]
pub fn encode(envelopes: &[Bytes]) -> Bytes {
    let len = envelopes.iter().map(|e| e.len() + 4).sum();
    let mut out = BytesMut::with_capacity(len);
    for e in envelopes {
        put(&mut out, e);
    }
    out.freeze()
}

/// Appends one frame holding `envelope` to `out`.
pub fn put(out: &mut BytesMut, envelope: &[u8]) {
    out.put_u32_le(u32::try_from(envelope.len()).unwrap_or(u32::MAX));
    out.put_slice(envelope);
}

/// Splits `body` into its frames and decodes each with `decode`; never panics.
pub fn decode_all<T>(
    body: &Bytes,
    decode: impl Fn(&Bytes) -> Result<T, DecodeError>,
) -> Result<Vec<T>, FrameError> {
    let mut reader = Reader::default();
    reader.push(body);
    let mut out = Vec::new();
    while let Some(item) = reader.next_envelope(&decode)? {
        out.push(item);
    }
    if reader.is_clean() {
        Ok(out)
    } else {
        Err(FrameError::Truncated {
            offset: reader.offset,
        })
    }
}

/// Reads frames from a body that arrives in chunks.
#[derive(Debug, Default)]
pub struct Reader {
    buf: BytesMut,
    /// Offset in the body of `buf`'s first byte (for errors).
    offset: usize,
}

impl Reader {
    /// Adds the next chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Whether every byte pushed so far belonged to a whole frame.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next whole frame, if it has arrived: its `prefix` bytes and its envelope. An
    /// error means the body is unreadable from here.
    pub fn next_frame(&mut self, prefix: usize) -> Result<Option<(Bytes, Bytes)>, FrameError> {
        let Some(len_bytes) = self.buf.get(prefix..prefix + 4) else {
            return Ok(None);
        };
        let len = usize::try_from(u32::from_le_bytes([
            len_bytes[0],
            len_bytes[1],
            len_bytes[2],
            len_bytes[3],
        ]))
        .unwrap_or(usize::MAX);
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge {
                offset: self.offset,
                len,
            });
        }
        if self.buf.len() - prefix - 4 < len {
            return Ok(None);
        }
        let head = self.buf.split_to(prefix).freeze();
        self.buf.advance(4);
        let envelope = self.buf.split_to(len).freeze();
        self.offset += prefix + 4 + len;
        Ok(Some((head, envelope)))
    }

    /// The next whole frame decoded with `decode`, if it has arrived (no prefix). An error
    /// means the body is unreadable from here.
    pub fn next_envelope<T>(
        &mut self,
        decode: impl Fn(&Bytes) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, FrameError> {
        let offset = self.offset;
        let Some((_, envelope)) = self.next_frame(0)? else {
            return Ok(None);
        };
        decode(&envelope)
            .map(Some)
            .map_err(|source| FrameError::Envelope { offset, source })
    }
}
