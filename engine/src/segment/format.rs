//! Byte layout of a segment object, and the codecs of its fixed parts (header, footer, index,
//! info). Data blocks are in `block.rs`, the bloom filter in `bloom.rs`; their layouts are
//! documented here too so that the whole format is in one place. All integers are
//! little-endian; every `crc32c` covers all preceding bytes of its own block only.
//!
//! # Object
//!
//! ```text
//! [header 8][data block 0][data block 1]...[index][bloom (optional)][info][footer 48]
//! ```
//! The blocks are contiguous: block 0 starts at offset 8, each block starts where the previous
//! one ends, the index starts where the last data block ends, and the footer is the last 48
//! bytes. Index, bloom and info are adjacent so that a reader loads them with one range read.
//!
//! # Header (8 bytes, offset 0)
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u32 | magic [`MAGIC`] (bytes `TKST`) |
//! | 4 | u16 | format version ([`FORMAT_VERSION`]) |
//! | 6 | u16 | reserved, 0 |
//!
//! The header carries no checksum: readers check magic, version and the zero reserved field
//! whenever they fetch block 0 (its range read starts at offset 0 and includes the header).
//!
//! # Data block (`block_bytes` target; at least one entry)
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | n entries | each: `u64` seq, then the entry body of [`crate::codec`] (flags, key, expiry, content type, value) |
//! | e | u32 × n | offset of each entry from the block start (first is 0, strictly increasing) |
//! | e + 4n | u32 | n, the entry count (≥ 1) |
//! | e + 4n + 4 | u32 | crc32c of bytes `0..e + 4n + 4` |
//!
//! Keys are strictly ascending inside a block and across blocks.
//!
//! # Index block
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u32 | number of data blocks b (≥ 1) |
//! | 4 | b records | each: `u16` key length k, k bytes last key of the block, `u64` block offset, `u32` block length |
//! | . | u32 | crc32c of everything before |
//!
//! # Bloom block (absent, length 0 in the footer, when `bloom_bits_per_key` is 0)
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u8 | k, the number of probes (1..=30) |
//! | 1 | m bytes | the bit array; bit `i` is `byte[i / 8] >> (i % 8) & 1`, m ≥ 8 |
//! | 1 + m | u32 | crc32c of everything before |
//!
//! Probe `i` (0..k) of a key sets bit `(h + i·(rotl(h, 32) | 1)) mod 8m` (wrapping u64 math)
//! where `h = xxh3_64(key)`.
//!
//! # Info block
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u64 | entries (≥ 1) |
//! | 8 | u64 | tombstones (≤ entries) |
//! | 16 | u64 | min seq |
//! | 24 | u64 | max seq (≥ min seq) |
//! | 32 | u8 | 1 if some entry has an expiry, else 0 |
//! | 33 | u64 | smallest expiry (unix millis), 0 when the flag is 0 |
//! | 41 | u16 + bytes | min key (first key) |
//! | . | u16 + bytes | max key (last key) |
//! | . | u32 | crc32c of everything before |
//!
//! # Footer (last 48 bytes)
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u64 | index offset |
//! | 8 | u32 | index length |
//! | 12 | u64 | bloom offset (= index end) |
//! | 20 | u32 | bloom length (0: no bloom filter) |
//! | 24 | u64 | info offset (= bloom end) |
//! | 32 | u32 | info length (info end = object size − 48) |
//! | 36 | u32 | magic [`MAGIC`] |
//! | 40 | u16 | format version |
//! | 42 | u16 | reserved, 0 |
//! | 44 | u32 | crc32c of bytes 0..44 |
//!
//! A future format version must keep magic, version and crc at the same distance from the
//! end of the object, so that a reader can tell "newer version" from "corrupt" (a footer
//! whose version this build does not know is reported as unsupported even if its crc, computed
//! over the v1 footer size, does not match).

use bytes::Bytes;

use crate::codec::{Dec, DecodeError, Enc, split_crc_trailer};
use crate::error::{Error, Result};
use crate::types::{MAX_KEY_LEN, SeqNo};

use super::SegmentInfo;

/// Magic number at the start and in the footer of every segment (bytes `TKST`).
pub const MAGIC: u32 = u32::from_le_bytes(*b"TKST");
/// Format version 1, the first.
pub const FORMAT_V1: u16 = 1;
/// The version this build writes.
pub const FORMAT_VERSION: u16 = FORMAT_V1;
/// Every version this build reads.
pub const SUPPORTED_VERSIONS: &[u16] = &[FORMAT_V1];

/// Whether this build reads segments of format `version`.
#[must_use]
pub fn is_supported_version(version: u16) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// Length of the header.
pub(crate) const HEADER_LEN: u64 = 8;
/// Length of the footer.
pub(crate) const FOOTER_LEN: u64 = 48;
/// Smallest possible data block: one tombstone with a 1-byte key (8 + 1 + 2 + 1), its offset,
/// the count and the crc.
pub(crate) const MIN_BLOCK_LEN: u32 = 12 + 4 + 4 + 4;
/// Smallest possible index: count, one record with a 1-byte key, crc.
const MIN_INDEX_LEN: u32 = 4 + (2 + 1 + 8 + 4) + 4;
/// Smallest possible info block: fixed fields, two 1-byte keys, crc.
const MIN_INFO_LEN: u32 = 41 + 3 + 3 + 4;
/// Smallest possible bloom block: k, 8 bytes of bits, crc.
pub(crate) const MIN_BLOOM_LEN: u32 = 1 + 8 + 4;

const FMT_HEADER: &str = "segment header";
const FMT_FOOTER: &str = "segment footer";
const FMT_INDEX: &str = "segment index";
const FMT_INFO: &str = "segment info";

fn derr(what: &'static str, offset: usize) -> DecodeError {
    DecodeError { what, offset }
}

/// Encodes the header.
pub(crate) fn put_header(enc: &mut Enc) {
    enc.u32(MAGIC);
    enc.u16(FORMAT_VERSION);
    enc.u16(0);
}

/// Checks a header (the first [`HEADER_LEN`] bytes of `buf`).
pub(crate) fn check_header(buf: &[u8], location: &str) -> Result<()> {
    let mut d = Dec::new(buf);
    let corrupt = |e| Error::corrupt(FMT_HEADER, location, e);
    if d.u32().map_err(corrupt)? != MAGIC {
        return Err(corrupt(derr("bad magic", 0)));
    }
    let version = d.u16().map_err(corrupt)?;
    if !is_supported_version(version) {
        return Err(unsupported(location, version));
    }
    if d.u16().map_err(corrupt)? != 0 {
        return Err(corrupt(derr("reserved field is not zero", 6)));
    }
    Ok(())
}

fn unsupported(location: &str, actual: u16) -> Error {
    Error::UnsupportedVersion {
        format: "segment",
        location: location.to_owned(),
        supported: SUPPORTED_VERSIONS,
        actual,
    }
}

/// A byte range of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// Offset from the start of the object.
    pub(crate) offset: u64,
    /// Length in bytes.
    pub(crate) len: u32,
}

impl Span {
    /// One past the last byte (saturating; spans are validated before use).
    pub(crate) fn end(self) -> u64 {
        self.offset.saturating_add(u64::from(self.len))
    }
}

/// The decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) index: Span,
    pub(crate) bloom: Span,
    pub(crate) info: Span,
}

impl Footer {
    /// Appends the footer.
    pub(crate) fn encode(&self, out: &mut Enc) {
        let mut f = Enc::with_capacity(48);
        for s in [self.index, self.bloom, self.info] {
            f.u64(s.offset);
            f.u32(s.len);
        }
        f.u32(MAGIC);
        f.u16(FORMAT_VERSION);
        f.u16(0);
        f.crc_trailer();
        out.raw(f.as_slice());
    }

    /// Decodes the footer (`buf` is the last [`FOOTER_LEN`] bytes of an object of `size`
    /// bytes) and validates every span against `size`.
    pub(crate) fn decode(buf: &[u8], size: u64, location: &str) -> Result<Self> {
        let corrupt = |e| Error::corrupt(FMT_FOOTER, location, e);
        if buf.len() as u64 != FOOTER_LEN {
            return Err(corrupt(derr("truncated input", buf.len())));
        }
        let mut tail = Dec::new(buf.get(36..).unwrap_or_default());
        if tail.u32().map_err(corrupt)? != MAGIC {
            return Err(corrupt(derr("bad magic", 36)));
        }
        let version = tail.u16().map_err(corrupt)?;
        let body = match split_crc_trailer(buf) {
            Ok(body) if is_supported_version(version) => body,
            Ok(_) => return Err(unsupported(location, version)),
            Err(_) if !is_supported_version(version) => return Err(unsupported(location, version)),
            Err(e) => return Err(corrupt(e)),
        };
        let mut d = Dec::new(body);
        let mut span = || -> Result<Span, DecodeError> {
            Ok(Span {
                offset: d.u64()?,
                len: d.u32()?,
            })
        };
        let f = Self {
            index: span().map_err(corrupt)?,
            bloom: span().map_err(corrupt)?,
            info: span().map_err(corrupt)?,
        };
        if tail.u16().map_err(corrupt)? != 0 {
            return Err(corrupt(derr("reserved field is not zero", 42)));
        }
        f.validate(size).map_err(corrupt)?;
        Ok(f)
    }

    fn validate(&self, size: u64) -> Result<(), DecodeError> {
        let min_index = HEADER_LEN + u64::from(MIN_BLOCK_LEN);
        if self.index.offset < min_index || self.index.len < MIN_INDEX_LEN {
            return Err(derr("index span out of range", 0));
        }
        if self.bloom.offset != self.index.end()
            || (self.bloom.len != 0 && self.bloom.len < MIN_BLOOM_LEN)
        {
            return Err(derr("bloom span out of range", 12));
        }
        if self.info.offset != self.bloom.end() || self.info.len < MIN_INFO_LEN {
            return Err(derr("info span out of range", 24));
        }
        if Some(self.info.end()) != size.checked_sub(FOOTER_LEN) {
            return Err(derr("info does not end at the footer", 24));
        }
        Ok(())
    }
}

/// One index record: where a data block is and the last key it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) last_key: Bytes,
    pub(crate) block: Span,
}

/// Appends an encoded index block.
pub(crate) fn put_index(out: &mut Enc, index: &[IndexEntry]) {
    let mut e = Enc::with_capacity(index_len_estimate(index));
    e.u32(u32::try_from(index.len()).unwrap_or(u32::MAX));
    for ie in index {
        e.bytes16(&ie.last_key);
        e.u64(ie.block.offset);
        e.u32(ie.block.len);
    }
    e.crc_trailer();
    out.raw(e.as_slice());
}

fn index_len_estimate(index: &[IndexEntry]) -> usize {
    8 + index.iter().map(|i| i.last_key.len() + 14).sum::<usize>()
}

/// Decodes and validates an index block: blocks must tile `HEADER_LEN..data_end` exactly and
/// last keys must be strictly ascending.
pub(crate) fn decode_index(buf: &Bytes, data_end: u64, location: &str) -> Result<Vec<IndexEntry>> {
    decode_index_inner(buf, data_end).map_err(|e| Error::corrupt(FMT_INDEX, location, e))
}

fn decode_index_inner(buf: &Bytes, data_end: u64) -> Result<Vec<IndexEntry>, DecodeError> {
    let body = split_crc_trailer(buf)?;
    let mut d = Dec::new(body);
    let n = d.u32()? as usize;
    if n == 0 {
        return Err(d.err("index has no blocks"));
    }
    // Never trust a decoded count for an allocation: each record is at least 15 bytes.
    let mut out: Vec<IndexEntry> = Vec::with_capacity(n.min(d.remaining() / 15));
    let mut next_offset = HEADER_LEN;
    for _ in 0..n {
        let key_start = d.pos() + 2;
        let key = d.bytes16()?;
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(d.err("key length out of range"));
        }
        if out.last().is_some_and(|p| p.last_key.as_ref() >= key) {
            return Err(d.err("index keys not ascending"));
        }
        let block = Span {
            offset: d.u64()?,
            len: d.u32()?,
        };
        if block.offset != next_offset || block.len < MIN_BLOCK_LEN {
            return Err(d.err("block span out of range"));
        }
        next_offset = block.end();
        out.push(IndexEntry {
            last_key: buf.slice(key_start..key_start + key.len()),
            block,
        });
    }
    d.finish()?;
    if next_offset != data_end {
        return Err(derr("blocks do not end at the index", 0));
    }
    Ok(out)
}

/// Appends an encoded info block.
pub(crate) fn put_info(out: &mut Enc, info: &SegmentInfo) {
    let mut e = Enc::with_capacity(64 + info.min_key.len() + info.max_key.len());
    e.u64(info.entries);
    e.u64(info.tombstones);
    e.u64(info.min_seq.0);
    e.u64(info.max_seq.0);
    e.u8(u8::from(info.min_expires_at.is_some()));
    e.u64(info.min_expires_at.unwrap_or(0));
    e.bytes16(&info.min_key);
    e.bytes16(&info.max_key);
    e.crc_trailer();
    out.raw(e.as_slice());
}

/// Decodes and validates an info block; `size` becomes [`SegmentInfo::size`].
pub(crate) fn decode_info(buf: &Bytes, size: u64, location: &str) -> Result<SegmentInfo> {
    decode_info_inner(buf, size).map_err(|e| Error::corrupt(FMT_INFO, location, e))
}

fn decode_info_inner(buf: &Bytes, size: u64) -> Result<SegmentInfo, DecodeError> {
    let body = split_crc_trailer(buf)?;
    let mut d = Dec::new(body);
    let entries = d.u64()?;
    let tombstones = d.u64()?;
    let min_seq = SeqNo(d.u64()?);
    let max_seq = SeqNo(d.u64()?);
    let has_exp = d.u8()?;
    let exp = d.u64()?;
    let min_expires_at = match (has_exp, exp) {
        (1, t) => Some(t),
        (0, 0) => None,
        _ => return Err(derr("bad expiry flag", 32)),
    };
    let mut key = || -> Result<Bytes, DecodeError> {
        let start = d.pos() + 2;
        let k = d.bytes16()?;
        if k.is_empty() || k.len() > MAX_KEY_LEN {
            return Err(d.err("key length out of range"));
        }
        Ok(buf.slice(start..start + k.len()))
    };
    let min_key = key()?;
    let max_key = key()?;
    d.finish()?;
    if entries == 0 || tombstones > entries || min_seq > max_seq || min_key > max_key {
        return Err(derr("inconsistent summary", 0));
    }
    Ok(SegmentInfo {
        entries,
        tombstones,
        min_key,
        max_key,
        min_seq,
        max_seq,
        min_expires_at,
        size,
    })
}
