//! RESP2 (REdis Serialization Protocol) encoder and incremental decoder.
//!
//! | first byte | frame          | wire form                          |
//! |------------|----------------|------------------------------------|
//! | `+`        | simple string  | `+OK\r\n`                          |
//! | `-`        | error          | `-ERR message\r\n`                 |
//! | `:`        | integer        | `:42\r\n`                          |
//! | `$`        | bulk string    | `$<len>\r\n<bytes>\r\n`, nil `$-1\r\n` |
//! | `*`        | array          | `*<n>\r\n<n frames>`, nil `*-1\r\n`  |
//!
//! Commands are sent as arrays of bulk strings. The decoder never panics on input: it returns
//! `Ok(None)` until a whole frame is buffered and `Err` on malformed bytes.

use bytes::{Buf, Bytes, BytesMut};

/// Deepest array nesting accepted (Redis replies here nest at most two levels).
pub const MAX_DEPTH: usize = 32;
/// Largest bulk string or array length accepted (Redis' own bulk limit is 512 MiB).
pub const MAX_LEN: i64 = 512 * 1024 * 1024;

/// A decoded RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:...`
    Integer(i64),
    /// `$n ...`
    Bulk(Bytes),
    /// `$-1`
    Nil,
    /// `*n ...`
    Array(Vec<Frame>),
    /// `*-1` (e.g. `EXEC` after a `WATCH`ed key changed)
    NilArray,
}

/// Malformed input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RespError {
    /// The first byte of a frame is not one of `+-:$*`.
    #[error("unknown frame type byte {byte:#04x}")]
    UnknownType {
        /// The byte.
        byte: u8,
    },
    /// A length or integer line did not parse.
    #[error("bad integer line")]
    BadInteger,
    /// A bulk string was not followed by CRLF.
    #[error("bulk string not terminated by CRLF")]
    BadTerminator,
    /// A length above [`MAX_LEN`] or below -1.
    #[error("length {len} out of range")]
    BadLength {
        /// The length read.
        len: i64,
    },
    /// Arrays nested deeper than [`MAX_DEPTH`].
    #[error("arrays nested too deep")]
    TooDeep,
    /// A simple string or error line is not UTF-8.
    #[error("line is not UTF-8")]
    NotUtf8,
}

/// Appends the command `args` as an array of bulk strings.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Finds the end of the line starting at `pos`; returns (line, position after CRLF).
fn line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let at = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((rest.get(..at)?, pos + at + 2))
}

fn int(line: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(line)
        .map_err(|_| RespError::BadInteger)?
        .parse()
        .map_err(|_| RespError::BadInteger)
}

fn text(line: &[u8]) -> Result<String, RespError> {
    String::from_utf8(line.to_vec()).map_err(|_| RespError::NotUtf8)
}

/// Parses one frame at `pos`. `Ok(None)` means "need more bytes".
fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Frame, usize)>, RespError> {
    if depth > MAX_DEPTH {
        return Err(RespError::TooDeep);
    }
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    let Some((l, next)) = line(buf, pos + 1) else {
        return Ok(None);
    };
    match tag {
        b'+' => Ok(Some((Frame::Simple(text(l)?), next))),
        b'-' => Ok(Some((Frame::Error(text(l)?), next))),
        b':' => Ok(Some((Frame::Integer(int(l)?), next))),
        b'$' => {
            let len = int(l)?;
            if len == -1 {
                return Ok(Some((Frame::Nil, next)));
            }
            if !(0..=MAX_LEN).contains(&len) {
                return Err(RespError::BadLength { len });
            }
            let len = usize::try_from(len).map_err(|_| RespError::BadLength { len })?;
            let end = next + len;
            let Some(tail) = buf.get(end..end + 2) else {
                return Ok(None);
            };
            if tail != b"\r\n" {
                return Err(RespError::BadTerminator);
            }
            let data = buf.get(next..end).ok_or(RespError::BadTerminator)?;
            Ok(Some((Frame::Bulk(Bytes::copy_from_slice(data)), end + 2)))
        }
        b'*' => {
            let n = int(l)?;
            if n == -1 {
                return Ok(Some((Frame::NilArray, next)));
            }
            if !(0..=MAX_LEN).contains(&n) {
                return Err(RespError::BadLength { len: n });
            }
            let mut items = Vec::new();
            let mut at = next;
            for _ in 0..n {
                match parse_at(buf, at, depth + 1)? {
                    Some((f, after)) => {
                        items.push(f);
                        at = after;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Frame::Array(items), at)))
        }
        byte => Err(RespError::UnknownType { byte }),
    }
}

/// Decodes one frame from the front of `buf`, consuming it. `Ok(None)`: incomplete, nothing
/// consumed.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, RespError> {
    match parse_at(buf, 0, 0)? {
        Some((frame, used)) => {
            buf.advance(used);
            Ok(Some(frame))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Option<Frame>, RespError> {
        decode(&mut BytesMut::from(bytes))
    }

    #[test]
    fn resp_encodes_commands_as_bulk_arrays() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"k", b"v\r\n", b"EX", b"10"]);
        assert_eq!(
            out,
            b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$2\r\nEX\r\n$2\r\n10\r\n".to_vec()
        );
        // A binary bulk with CRLF inside round-trips through the decoder.
        let mut buf = BytesMut::from(&out[..]);
        let f = decode(&mut buf).expect("valid").expect("complete");
        assert_eq!(
            f,
            Frame::Array(
                [&b"SET"[..], b"k", b"v\r\n", b"EX", b"10"]
                    .iter()
                    .map(|a| Frame::Bulk(Bytes::copy_from_slice(a)))
                    .collect()
            )
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn resp_decodes_simple_error_integer() {
        assert_eq!(one(b"+OK\r\n"), Ok(Some(Frame::Simple("OK".into()))));
        assert_eq!(
            one(b"-ERR unknown command\r\n"),
            Ok(Some(Frame::Error("ERR unknown command".into())))
        );
        assert_eq!(one(b":-12\r\n"), Ok(Some(Frame::Integer(-12))));
    }

    #[test]
    fn resp_decodes_bulk_and_nil() {
        assert_eq!(
            one(b"$5\r\nhello\r\n"),
            Ok(Some(Frame::Bulk(Bytes::from_static(b"hello"))))
        );
        assert_eq!(one(b"$0\r\n\r\n"), Ok(Some(Frame::Bulk(Bytes::new()))));
        assert_eq!(one(b"$-1\r\n"), Ok(Some(Frame::Nil)));
        assert_eq!(one(b"*-1\r\n"), Ok(Some(Frame::NilArray)));
    }

    #[test]
    fn resp_decodes_nested_arrays() {
        let f = one(b"*3\r\n+QUEUED\r\n*2\r\n:1\r\n$-1\r\n$1\r\nx\r\n");
        assert_eq!(
            f,
            Ok(Some(Frame::Array(vec![
                Frame::Simple("QUEUED".into()),
                Frame::Array(vec![Frame::Integer(1), Frame::Nil]),
                Frame::Bulk(Bytes::from_static(b"x")),
            ])))
        );
        assert_eq!(one(b"*0\r\n"), Ok(Some(Frame::Array(vec![]))));
    }

    #[test]
    fn resp_incomplete_input_consumes_nothing() {
        let whole = b"*2\r\n$3\r\nabc\r\n:7\r\n+OK\r\n";
        for cut in 0..(whole.len() - 5) {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(decode(&mut buf), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut);
        }
        // Two frames back to back come out one at a time.
        let mut buf = BytesMut::from(&whole[..]);
        assert!(matches!(decode(&mut buf), Ok(Some(Frame::Array(_)))));
        assert_eq!(decode(&mut buf), Ok(Some(Frame::Simple("OK".into()))));
        assert!(buf.is_empty());
    }

    #[test]
    fn resp_rejects_malformed_input() {
        assert_eq!(one(b"?x\r\n"), Err(RespError::UnknownType { byte: b'?' }));
        assert_eq!(one(b":abc\r\n"), Err(RespError::BadInteger));
        assert_eq!(one(b"$3\r\nabcd\r\n"), Err(RespError::BadTerminator));
        assert_eq!(one(b"$-5\r\n"), Err(RespError::BadLength { len: -5 }));
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert_eq!(one(deep.as_bytes()), Err(RespError::TooDeep));
    }

    #[test]
    fn resp_decoder_never_panics_on_arbitrary_bytes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let alphabet = b"+-:$*\r\n0123456789-abc";
        for _ in 0..20_000 {
            let len = rng.random_range(0..24);
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let mut buf = BytesMut::from(&bytes[..]);
            // Bounded: each successful decode consumes at least 3 bytes.
            for _ in 0..len {
                match decode(&mut buf) {
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        }
    }
}
