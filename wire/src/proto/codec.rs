//! The envelope (magic, version, kind, checksum trailer) and the field encodings shared by
//! requests, responses and errors; the byte tables are in the module docs.

use bytes::Bytes;
use tierkv_engine::codec::{Dec, DecodeError, Enc, split_crc_trailer};
use tierkv_engine::types::{Condition, SeqNo};

use super::{MAGIC, SUPPORTED_VERSIONS, VERSION};

/// Message kinds (the envelope's kind byte; see the table in the module docs).
pub(super) const REQ_GET: u8 = 1;
pub(super) const REQ_WRITE: u8 = 2;
pub(super) const REQ_SCAN: u8 = 3;
pub(super) const REQ_STATUS: u8 = 4;
pub(super) const REQ_GET_IF_CHANGED: u8 = 5;
pub(super) const REQ_DESCRIBE: u8 = 6;
pub(super) const REQ_TRACED: u8 = 7;
pub(super) const REQ_STATUS_WITH_CONFIGURATIONS: u8 = 8;
pub(super) const REQ_GET_LEASED: u8 = 9;
pub(super) const RESP_GOT: u8 = 16;
pub(super) const RESP_WRITTEN: u8 = 17;
pub(super) const RESP_SCANNED: u8 = 18;
pub(super) const RESP_STATUS: u8 = 19;
pub(super) const RESP_ERROR: u8 = 20;
pub(super) const RESP_UNCHANGED: u8 = 21;
pub(super) const RESP_DESCRIBED: u8 = 22;
pub(super) const RESP_STATUS_WITH_CONFIGURATIONS: u8 = 23;
pub(super) const RESP_LEASED: u8 = 24;

pub(super) fn header(kind: u8) -> Enc {
    let mut enc = Enc::with_capacity(64);
    enc.u32(MAGIC);
    enc.u16(VERSION);
    enc.u8(kind);
    enc
}

pub(super) fn finish(mut enc: Enc) -> Bytes {
    enc.crc_trailer();
    enc.finish()
}

pub(super) fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(super) fn put_opt_u64(enc: &mut Enc, v: Option<u64>) {
    match v {
        Some(v) => {
            enc.u8(1);
            enc.u64(v);
        }
        None => enc.u8(0),
    }
}

pub(super) fn put_opt_bytes(enc: &mut Enc, v: Option<&Bytes>) {
    match v {
        Some(b) => {
            enc.u8(1);
            enc.bytes32(b);
        }
        None => enc.u8(0),
    }
}

pub(super) fn put_condition(enc: &mut Enc, c: Condition) {
    match c {
        Condition::None => enc.u8(0),
        Condition::MustNotExist => enc.u8(1),
        Condition::MustExist => enc.u8(2),
        Condition::VersionIs(s) => {
            enc.u8(3);
            enc.u64(s.0);
        }
        Condition::ExpiredVersion(s) => {
            enc.u8(4);
            enc.u64(s.0);
        }
    }
}

/// Checks the trailer and envelope; returns the body (without the trailer), positioned
/// after the kind byte, and the kind.
pub(super) fn open(buf: &Bytes) -> Result<(Bytes, usize, u8), DecodeError> {
    let body = split_crc_trailer(buf)?;
    let src = buf.slice(..body.len());
    let mut d = Dec::new(&src);
    if d.u32()? != MAGIC {
        return Err(DecodeError {
            what: "bad magic",
            offset: 0,
        });
    }
    if !SUPPORTED_VERSIONS.contains(&d.u16()?) {
        return Err(DecodeError {
            what: "unsupported message version",
            offset: 4,
        });
    }
    let kind = d.u8()?;
    let pos = d.pos();
    Ok((src, pos, kind))
}

/// A decoder over `src` positioned at `pos`.
pub(super) fn dec_at(src: &Bytes, pos: usize) -> Result<Dec<'_>, DecodeError> {
    let mut d = Dec::new(src);
    d.take(pos)?;
    Ok(d)
}

/// Reads `u32` length + bytes as a zero-copy slice of `src`.
pub(super) fn get_bytes(d: &mut Dec<'_>, src: &Bytes) -> Result<Bytes, DecodeError> {
    let start = d.pos() + 4;
    let b = d.bytes32()?;
    Ok(src.slice(start..start + b.len()))
}

pub(super) fn get_flag(d: &mut Dec<'_>) -> Result<bool, DecodeError> {
    match d.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(d.err("bad flag byte")),
    }
}

pub(super) fn get_opt_u64(d: &mut Dec<'_>) -> Result<Option<u64>, DecodeError> {
    if get_flag(d)? {
        Ok(Some(d.u64()?))
    } else {
        Ok(None)
    }
}

pub(super) fn get_opt_u32(d: &mut Dec<'_>) -> Result<Option<u32>, DecodeError> {
    if get_flag(d)? {
        Ok(Some(d.u32()?))
    } else {
        Ok(None)
    }
}

pub(super) fn get_opt_bytes(d: &mut Dec<'_>, src: &Bytes) -> Result<Option<Bytes>, DecodeError> {
    if get_flag(d)? {
        Ok(Some(get_bytes(d, src)?))
    } else {
        Ok(None)
    }
}

/// Reads a count of items at least `min_len` bytes each, bounded by the input left.
pub(super) fn get_count(d: &mut Dec<'_>, min_len: usize) -> Result<usize, DecodeError> {
    let n = usize::try_from(d.u32()?).map_err(|_| d.err("length overflow"))?;
    if n > d.remaining() / min_len {
        return Err(d.err("count exceeds input"));
    }
    Ok(n)
}

pub(super) fn get_condition(d: &mut Dec<'_>) -> Result<Condition, DecodeError> {
    Ok(match d.u8()? {
        0 => Condition::None,
        1 => Condition::MustNotExist,
        2 => Condition::MustExist,
        3 => Condition::VersionIs(SeqNo(d.u64()?)),
        4 => Condition::ExpiredVersion(SeqNo(d.u64()?)),
        _ => return Err(d.err("unknown condition")),
    })
}
