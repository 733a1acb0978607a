//! Batches of client operations: the bodies of `POST /rpc/v1/kv/batch`.
//!
//! A gateway sends every operation bound for one node that is queued at the same moment in
//! one HTTP/2 request, and the node streams the answers back as they complete, so a batch
//! costs one request (one write and one read on each side) instead of one per operation,
//! and a slow operation (a write waiting for its quorum) delays no other answer.
//!
//! - Request body: frames ([`crate::frame`]), each one [`encode_request`] envelope; at most
//!   [`MAX_BATCH`] of them.
//! - Response (200): a stream of answers in completion order, each a u32 little-endian index
//!   of the request in the batch followed by one frame holding its [`encode_response`]
//!   envelope. Every index is answered exactly once; the stream ends after the last answer.
//!   A request that cannot be split or decoded is refused whole with 400.
//!
//! [`AnswerReader`] parses the stream incrementally from chunks cut anywhere and never
//! panics.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tierkv_engine::codec::DecodeError;

use super::{
    Request, Response, TraceContext, decode_request, decode_response, decode_traced_request,
    encode_response,
};
use crate::frame::{self, FrameError};

/// Most operations in one batch.
pub const MAX_BATCH: usize = 256;

/// The body of a batch holding `requests` (each an [`encode_request`] envelope).
///
/// [`encode_request`]: super::encode_request
#[must_use]
pub fn encode_requests(requests: &[Bytes]) -> Bytes {
    frame::encode(requests)
}

/// The requests of a batch body.
pub fn decode_requests(body: &Bytes) -> Result<Vec<Request>, FrameError> {
    frame::decode_all(body, decode_request)
}

/// The requests of a batch body with the trace context each carries (design note 0011).
pub fn decode_traced_requests(
    body: &Bytes,
) -> Result<Vec<(Request, Option<TraceContext>)>, FrameError> {
    frame::decode_all(body, decode_traced_request)
}

/// Appends the answer to request `index` of a batch to `out`.
pub fn put_answer(out: &mut BytesMut, index: u32, resp: &Response) {
    out.put_u32_le(index);
    frame::put(out, &encode_response(resp));
}

/// One answer of a batch: the request's index and its response, or why the response's
/// envelope does not decode.
pub type Answer = (u32, Result<Response, DecodeError>);

/// Reads answers from a response body that arrives in chunks.
#[derive(Debug, Default)]
pub struct AnswerReader(frame::Reader);

impl AnswerReader {
    /// Adds the next chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        self.0.push(chunk);
    }

    /// Whether every byte pushed so far was part of a whole answer.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.0.is_clean()
    }

    /// The next whole answer, if one has arrived. An error means the stream is unreadable
    /// from here.
    pub fn next_answer(&mut self) -> Result<Option<Answer>, FrameError> {
        Ok(self
            .0
            .next_frame(4)?
            .map(|(mut index, envelope)| (index.get_u32_le(), decode_response(&envelope))))
    }
}
