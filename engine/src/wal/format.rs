//! On-disk format of WAL files: the file header, frames, and the record payload.
//!
//! All integers are little-endian. Checksums are CRC-32C (Castagnoli).
//!
//! # File header (20 bytes, at offset 0 of every file)
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u32 | magic [`MAGIC`]: the bytes `"TKVW"` read as a little-endian u32 |
//! | 4 | u16 | format version, [`VERSION`] = 1; any other value is `Error::UnsupportedVersion` |
//! | 6 | u16 | flags, must be 0 |
//! | 8 | u64 | file number; must equal the number in the file name |
//! | 16 | u32 | crc32c of bytes 0..16 |
//!
//! # Frame (12-byte frame header + payload), repeated from offset 20 to end of file
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u32 | `len`: payload length in bytes (at most [`MAX_PAYLOAD`] = 256 MiB) |
//! | 4 | u32 | `len_crc`: crc32c of the 4 bytes of `len` |
//! | 8 | u32 | `payload_crc`: crc32c of the payload |
//! | 12 | `len` bytes | payload |
//!
//! The separate `len_crc` means a flipped length byte is detected as such instead of being
//! mistaken for a frame that runs past the end of the file (a torn tail).
//!
//! # Payload
//!
//! The first payload byte is the record kind; any kind other than those below is corrupt.
//! Every payload must be consumed exactly; trailing bytes are corrupt.
//!
//! ## Batch record (kind 1): one atomic write batch of one shard
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u8 | kind: 1 = batch |
//! | 1 | u32 | shard id |
//! | 5 | u64 | epoch of the writer |
//! | 13 | u64 | sequence number of the batch (the version of every entry) |
//! | 21 | u32 | `count`: number of entries |
//! | 25 | ... | `count` entry bodies, see [`crate::codec`] (`put_entry_body`) |
//!
//! ## Promise record (kind 2): "this replica promised this epoch for this shard"
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u8 | kind: 2 = promise |
//! | 1 | u32 | shard id |
//! | 5 | u64 | the promised epoch |
//!
//! 13 bytes. Recovery keeps the highest promised epoch per shard. The writer repeats the
//! latest promise of every shard at the head of each new file (see `files.rs`).
//!
//! ## Truncate record (kind 3): "forget this shard's records with seq > after_seq"
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u8 | kind: 3 = truncate |
//! | 1 | u32 | shard id |
//! | 5 | u64 | `after_seq` |
//!
//! 13 bytes. It applies to the batch records of that shard written *before* it (in log
//! order) with seq > `after_seq`; batch records written after it are kept.
//!
//! ## Configuration record (kind 4): one configuration record of a shard's replicated log
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u8 | kind: 4 = configuration |
//! | 1 | u32 | shard id |
//! | 5 | u64 | epoch of the leader that sequenced it |
//! | 13 | u64 | its sequence number |
//! | 21 | ... | the configuration: steady or joint voter sets ([`crate::replica::membership`]) |
//!
//! It takes a seq of the shard's log like a batch (files, truncations and recovery treat it
//! as one) and decodes into a [`WalRecord`] without entries whose `membership` is set
//! (design note 0009).
//!
//! Kinds 2, 3 and 4 are written only by replicated nodes (4 only once they change their
//! members); a single-process node writes only kind 1, so its files are byte-for-byte what
//! they were before these kinds existed.

use bytes::{Bytes, BytesMut};

use crate::codec::{Dec, DecodeError, Enc, get_entry_body, put_entry_body};
use crate::error::{Error, InvalidReason, Result};
use crate::types::{Entry, EntryKind, Epoch, MAX_CONTENT_TYPE_LEN, MAX_KEY_LEN, SeqNo, ShardId};

use super::WalRecord;

/// File magic: the bytes `"TKVW"` as a little-endian u32.
pub(super) const MAGIC: u32 = u32::from_le_bytes(*b"TKVW");
/// The only format version this build writes and reads.
pub(super) const VERSION: u16 = 1;
/// Versions this build reads.
pub(super) const SUPPORTED_VERSIONS: &[u16] = &[VERSION];
/// Length of the file header.
pub(super) const HEADER_LEN: usize = 20;
/// Length of a frame header (`len`, `len_crc`, `payload_crc`).
pub(super) const FRAME_HEADER_LEN: usize = 12;
/// Largest payload a frame may carry (256 MiB).
pub(super) const MAX_PAYLOAD: u32 = 256 << 20;
/// [`MAX_PAYLOAD`] as a `usize`.
const MAX_PAYLOAD_USIZE: usize = 256 << 20;
/// Payload kind of a write batch record.
pub(super) const KIND_BATCH: u8 = 1;
/// Payload kind of a promise record.
pub(super) const KIND_PROMISE: u8 = 2;
/// Payload kind of a truncate record.
pub(super) const KIND_TRUNCATE: u8 = 3;
/// Payload kind of a configuration record (design note 0009).
pub(super) const KIND_CONFIG: u8 = 4;
/// Fixed part of a configuration payload before the configuration.
const CONFIG_FIXED_LEN: usize = 21;
/// Payload length of a promise or truncate record (kind, shard, one u64).
const SMALL_PAYLOAD_LEN: u32 = 13;
/// Fixed part of a batch payload before the entries.
const PAYLOAD_FIXED_LEN: usize = 25;
/// Smallest possible entry body (flags, key length, 1-byte key, tombstone).
const MIN_ENTRY_BODY: usize = 4;

/// One decoded record payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Payload {
    /// Kind 1: a write batch; kind 4: a configuration record (`membership` set, no
    /// entries).
    Batch(WalRecord),
    /// Kind 2: the replica promised `epoch` for `shard`.
    Promise {
        /// The shard.
        shard: ShardId,
        /// The promised epoch.
        epoch: Epoch,
    },
    /// Kind 3: forget the earlier records of `shard` with seq > `after`.
    Truncate {
        /// The shard.
        shard: ShardId,
        /// Records with seq above this, written before this record, are void.
        after: SeqNo,
    },
}

/// Encodes the header of file `file_no`.
#[must_use]
pub(super) fn encode_header(file_no: u64) -> [u8; HEADER_LEN] {
    let mut enc = Enc::with_capacity(HEADER_LEN);
    enc.u32(MAGIC);
    enc.u16(VERSION);
    enc.u16(0);
    enc.u64(file_no);
    enc.crc_trailer();
    let mut out = [0u8; HEADER_LEN];
    out.copy_from_slice(enc.as_slice());
    out
}

/// Validates a file header at the start of `data` (file `file_no` at `location`).
///
/// Bad magic, checksum, flags or file number is `Error::Corrupt`; a checksummed header with
/// a version this build does not read is `Error::UnsupportedVersion`.
pub(super) fn check_header(data: &[u8], file_no: u64, location: &str) -> Result<()> {
    let corrupt =
        |what, offset| Error::corrupt("wal file header", location, DecodeError { what, offset });
    let head = data
        .get(..HEADER_LEN)
        .ok_or_else(|| corrupt("truncated file header", data.len()))?;
    let (body, crc) = head.split_at(HEADER_LEN - 4);
    let mut d = Dec::new(body);
    let fields = (|| -> Result<(u32, u16, u16, u64), DecodeError> {
        Ok((d.u32()?, d.u16()?, d.u16()?, d.u64()?))
    })();
    let (magic, version, flags, no) =
        fields.map_err(|e| Error::corrupt("wal file header", location, e))?;
    if magic != MAGIC {
        return Err(corrupt("bad magic", 0));
    }
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err(corrupt("header checksum mismatch", HEADER_LEN - 4));
    }
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(Error::UnsupportedVersion {
            format: "wal file",
            location: location.to_owned(),
            supported: SUPPORTED_VERSIONS,
            actual: version,
        });
    }
    if flags != 0 {
        return Err(corrupt("unknown header flags", 6));
    }
    if no != file_no {
        return Err(corrupt("file number does not match file name", 8));
    }
    Ok(())
}

/// Exact encoded size of an entry body (see the table in [`crate::codec`]).
fn body_len(e: &Entry) -> usize {
    let mut n = 3 + e.key.len();
    if e.expires_at.is_some() {
        n += 8;
    }
    if let EntryKind::Put {
        value,
        content_type,
    } = &e.kind
    {
        n = n.saturating_add(4).saturating_add(value.len());
        if let Some(ct) = content_type {
            n += 1 + ct.len();
        }
    }
    n
}

/// Checks what a record may hold so that everything written can be read back.
fn validate(rec: &WalRecord) -> Result<()> {
    for e in &rec.entries {
        if e.key.is_empty() {
            return Err(Error::invalid(InvalidReason::KeyEmpty));
        }
        if e.key.len() > MAX_KEY_LEN {
            return Err(Error::invalid(InvalidReason::KeyTooLong));
        }
        if let EntryKind::Put {
            content_type: Some(ct),
            ..
        } = &e.kind
            && ct.len() > MAX_CONTENT_TYPE_LEN
        {
            return Err(Error::invalid(InvalidReason::ContentTypeTooLong));
        }
    }
    Ok(())
}

/// Encodes `rec` as one complete frame (frame header + payload).
///
/// Fails with `Error::Invalid` if an entry breaks a limit (key length, content type length)
/// or the payload would exceed [`MAX_PAYLOAD`].
pub(super) fn encode_frame(rec: &WalRecord) -> Result<BytesMut> {
    if let Some(m) = &rec.membership {
        return encode_config(rec, m);
    }
    validate(rec)?;
    let count = u32::try_from(rec.entries.len())
        .map_err(|_| Error::invalid(InvalidReason::ValueTooLarge))?;
    let payload_len = rec
        .entries
        .iter()
        .map(body_len)
        .fold(PAYLOAD_FIXED_LEN, usize::saturating_add);
    if payload_len > MAX_PAYLOAD_USIZE {
        return Err(Error::invalid(InvalidReason::ValueTooLarge));
    }
    let mut enc = Enc::with_capacity(FRAME_HEADER_LEN + payload_len);
    enc.u32(0);
    enc.u32(0);
    enc.u32(0);
    enc.u8(KIND_BATCH);
    enc.u32(rec.shard.0);
    enc.u64(rec.epoch.0);
    enc.u64(rec.seq.0);
    enc.u32(count);
    for e in &rec.entries {
        put_entry_body(&mut enc, &e.key, &e.kind, e.expires_at);
    }
    let payload = enc.as_slice().get(FRAME_HEADER_LEN..).unwrap_or_default();
    let len =
        u32::try_from(payload.len()).map_err(|_| Error::invalid(InvalidReason::ValueTooLarge))?;
    seal(&mut enc, len);
    Ok(enc.into_inner())
}

/// Encodes a configuration record (kind 4) as one complete frame. A configuration record
/// carries no entries (`Error::Invariant` otherwise: the core never makes one).
fn encode_config(rec: &WalRecord, m: &crate::replica::Membership) -> Result<BytesMut> {
    if !rec.entries.is_empty() {
        return Err(Error::Invariant {
            what: "a configuration record with entries",
        });
    }
    let mut enc = Enc::with_capacity(FRAME_HEADER_LEN + CONFIG_FIXED_LEN + 32);
    enc.u32(0);
    enc.u32(0);
    enc.u32(0);
    enc.u8(KIND_CONFIG);
    enc.u32(rec.shard.0);
    enc.u64(rec.epoch.0);
    enc.u64(rec.seq.0);
    m.encode(&mut enc);
    let payload = enc.as_slice().get(FRAME_HEADER_LEN..).unwrap_or_default();
    let len =
        u32::try_from(payload.len()).map_err(|_| Error::invalid(InvalidReason::ValueTooLarge))?;
    seal(&mut enc, len);
    Ok(enc.into_inner())
}

/// Encodes a promise record (kind 2) as one complete frame.
#[must_use]
pub(super) fn encode_promise(shard: ShardId, epoch: Epoch) -> BytesMut {
    small_frame(KIND_PROMISE, shard, epoch.0)
}

/// Encodes a truncate record (kind 3) as one complete frame.
#[must_use]
pub(super) fn encode_truncate(shard: ShardId, after: SeqNo) -> BytesMut {
    small_frame(KIND_TRUNCATE, shard, after.0)
}

/// A frame whose payload is `kind`, `shard` and one u64.
fn small_frame(kind: u8, shard: ShardId, value: u64) -> BytesMut {
    let mut enc = Enc::with_capacity(FRAME_HEADER_LEN + SMALL_PAYLOAD_LEN as usize);
    enc.u32(0);
    enc.u32(0);
    enc.u32(0);
    enc.u8(kind);
    enc.u32(shard.0);
    enc.u64(value);
    seal(&mut enc, SMALL_PAYLOAD_LEN);
    enc.into_inner()
}

/// Fills in the frame header of a frame whose payload (`len` bytes) follows a 12-byte
/// placeholder.
fn seal(enc: &mut Enc, len: u32) {
    let payload_crc = crc32c::crc32c(enc.as_slice().get(FRAME_HEADER_LEN..).unwrap_or_default());
    enc.patch_u32(0, len);
    enc.patch_u32(4, crc32c::crc32c(&len.to_le_bytes()));
    enc.patch_u32(8, payload_crc);
}

/// Decodes a payload of any kind. Every entry of a batch gets the record's `seq` as its
/// version. Never panics; an unknown kind or trailing bytes are errors.
pub(super) fn decode_payload(payload: &Bytes) -> Result<Payload, DecodeError> {
    let mut d = Dec::new(payload);
    let out = match d.u8()? {
        KIND_BATCH => Payload::Batch(decode_batch(&mut d, payload)?),
        KIND_PROMISE => Payload::Promise {
            shard: ShardId(d.u32()?),
            epoch: Epoch(d.u64()?),
        },
        KIND_TRUNCATE => Payload::Truncate {
            shard: ShardId(d.u32()?),
            after: SeqNo(d.u64()?),
        },
        KIND_CONFIG => Payload::Batch(WalRecord {
            shard: ShardId(d.u32()?),
            epoch: Epoch(d.u64()?),
            seq: SeqNo(d.u64()?),
            entries: Vec::new(),
            membership: Some(crate::replica::Membership::decode(&mut d)?),
        }),
        _ => {
            return Err(DecodeError {
                what: "unknown record kind",
                offset: 0,
            });
        }
    };
    d.finish()?;
    Ok(out)
}

/// Decodes the rest of a batch payload after its kind byte.
fn decode_batch(d: &mut Dec<'_>, payload: &Bytes) -> Result<WalRecord, DecodeError> {
    let shard = ShardId(d.u32()?);
    let epoch = Epoch(d.u64()?);
    let seq = SeqNo(d.u64()?);
    let count = d.u32()?;
    let cap = usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min(d.remaining() / MIN_ENTRY_BODY);
    let mut entries = Vec::with_capacity(cap);
    for _ in 0..count {
        let b = get_entry_body(d, payload)?;
        entries.push(Entry {
            key: b.key,
            seq,
            kind: b.kind,
            expires_at: b.expires_at,
        });
    }
    // Replayed records live until their shard flushes: they must not pin the whole file
    // they were read from.
    crate::types::compact_entries(&mut entries);
    Ok(WalRecord {
        shard,
        epoch,
        seq,
        entries,
        membership: None,
    })
}

/// Why a frame could not be read. Recovery turns these into torn tails or corruption errors
/// (see [`super::recovery`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FrameError {
    /// Fewer than [`FRAME_HEADER_LEN`] bytes are left.
    ShortHeader,
    /// `len_crc` does not match `len`.
    BadLenCrc,
    /// `len` is checksummed but larger than [`MAX_PAYLOAD`].
    TooLong,
    /// The header is valid but the payload extends past the end of the data.
    PastEof,
    /// The payload is complete but its checksum or its decoding failed; the frame ends at
    /// `end`.
    BadPayload {
        /// Offset just past this frame.
        end: usize,
        /// What failed (offset relative to the payload start).
        err: DecodeError,
    },
}

impl FrameError {
    /// A description of the failure with an absolute offset, for error messages.
    #[must_use]
    pub(super) fn describe(&self, frame_at: usize) -> DecodeError {
        let (what, rel) = match self {
            Self::ShortHeader => ("truncated frame header", 0),
            Self::BadLenCrc => ("frame length checksum mismatch", 4),
            Self::TooLong => ("frame length over 256 MiB", 0),
            Self::PastEof => ("frame payload extends past end of file", 0),
            Self::BadPayload { err, .. } => (err.what, FRAME_HEADER_LEN + err.offset),
        };
        DecodeError {
            what,
            offset: frame_at.saturating_add(rel),
        }
    }
}

/// Reads the frame starting at `pos` of `data`. On success returns the payload and the offset
/// just past the frame. Byte fields of a batch are zero-copy slices of `data`.
pub(super) fn read_frame(data: &Bytes, pos: usize) -> Result<(Payload, usize), FrameError> {
    let header = pos
        .checked_add(FRAME_HEADER_LEN)
        .and_then(|end| data.get(pos..end))
        .ok_or(FrameError::ShortHeader)?;
    let mut d = Dec::new(header);
    let fields =
        (|| -> Result<(u32, u32, u32), DecodeError> { Ok((d.u32()?, d.u32()?, d.u32()?)) })();
    let (len, len_crc, payload_crc) = fields.map_err(|_| FrameError::ShortHeader)?;
    if crc32c::crc32c(&len.to_le_bytes()) != len_crc {
        return Err(FrameError::BadLenCrc);
    }
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLong);
    }
    let start = pos + FRAME_HEADER_LEN;
    let end = start
        .checked_add(usize::try_from(len).map_err(|_| FrameError::TooLong)?)
        .ok_or(FrameError::TooLong)?;
    if end > data.len() {
        return Err(FrameError::PastEof);
    }
    let payload = data.slice(start..end);
    if crc32c::crc32c(&payload) != payload_crc {
        return Err(FrameError::BadPayload {
            end,
            err: DecodeError {
                what: "frame payload checksum mismatch",
                offset: 0,
            },
        });
    }
    let rec = decode_payload(&payload).map_err(|err| FrameError::BadPayload { end, err })?;
    Ok((rec, end))
}
