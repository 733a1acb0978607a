//! Little-endian binary encoding helpers shared by every on-disk and on-object format.
//!
//! [`Enc`] appends to a `BytesMut`; [`Dec`] reads from a slice and returns
//! [`DecodeError`] instead of panicking when the input is short or malformed. Formats build
//! their own layouts from these primitives and document them byte by byte.
//!
//! The entry body shared by the WAL and segments is also here ([`put_entry_body`],
//! [`get_entry_body`]):
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u8 | flags: bit0 tombstone, bit1 has expiry, bit2 has content type |
//! | 1 | u16 | key length `k` (1..=`MAX_KEY_LEN`, 1088) |
//! | 3 | k bytes | key |
//! | . | u64 | expires_at (unix millis), only if bit1 |
//! | . | u8 + bytes | content type length and bytes, only if bit2 |
//! | . | u32 + bytes | value length and bytes, only if not a tombstone |

use bytes::{BufMut, Bytes, BytesMut};

use crate::types::{EntryKind, MAX_KEY_LEN, UnixMillis};

/// Why a decoder rejected its input. `offset` is relative to the slice being decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at offset {offset}")]
pub struct DecodeError {
    /// What was wrong ("truncated input", "key length out of range", ...).
    pub what: &'static str,
    /// Where in the decoded slice.
    pub offset: usize,
}

/// Appends little-endian fields to a buffer.
#[derive(Debug, Default)]
pub struct Enc {
    buf: BytesMut,
}

impl Enc {
    /// An encoder with room for `cap` bytes.
    #[must_use]
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(cap),
        }
    }
    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// Whether nothing was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// The bytes written so far.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
    /// Appends a byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }
    /// Appends a little-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.buf.put_u16_le(v);
    }
    /// Appends a little-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.put_u32_le(v);
    }
    /// Appends a little-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.put_u64_le(v);
    }
    /// Appends a little-endian u128.
    pub fn u128(&mut self, v: u128) {
        self.buf.put_u128_le(v);
    }
    /// Appends raw bytes.
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.put_slice(b);
    }
    /// Appends `u16` length + bytes. The caller guarantees `b.len() <= u16::MAX`.
    pub fn bytes16(&mut self, b: &[u8]) {
        debug_assert!(b.len() <= usize::from(u16::MAX));
        self.u16(u16::try_from(b.len()).unwrap_or(u16::MAX));
        self.raw(b);
    }
    /// Appends `u32` length + bytes. The caller guarantees `b.len() <= u32::MAX`.
    pub fn bytes32(&mut self, b: &[u8]) {
        debug_assert!(u32::try_from(b.len()).is_ok());
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.raw(b);
    }
    /// Appends the crc32c of everything written so far.
    pub fn crc_trailer(&mut self) {
        let c = crc32c::crc32c(&self.buf);
        self.u32(c);
    }
    /// Overwrites a little-endian u32 at `at` (used for back-patched lengths).
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(dst) = self.buf.get_mut(at..at + 4) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    }
    /// Finishes and returns the bytes.
    #[must_use]
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }
    /// Finishes and returns the mutable buffer.
    #[must_use]
    pub fn into_inner(self) -> BytesMut {
        self.buf
    }
}

/// Reads little-endian fields from a slice without ever panicking.
#[derive(Debug, Clone)]
pub struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    /// A decoder positioned at the start of `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    /// Current offset.
    #[must_use]
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    /// An error at the current offset.
    #[must_use]
    pub fn err(&self, what: &'static str) -> DecodeError {
        DecodeError {
            what,
            offset: self.pos,
        }
    }
    /// Takes `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.err("length overflow"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err("truncated input"))?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    /// Reads a byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    /// Reads a little-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    /// Reads a little-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// Reads a little-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// Reads a little-endian u128.
    pub fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.array()?))
    }
    /// Reads `u16` length + bytes.
    pub fn bytes16(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    /// Reads `u32` length + bytes.
    pub fn bytes32(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()?;
        let n = usize::try_from(n).map_err(|_| self.err("length overflow"))?;
        self.take(n)
    }
    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

/// Checks that the last 4 bytes of `buf` are the crc32c of the rest; returns the rest.
pub fn split_crc_trailer(buf: &[u8]) -> Result<&[u8], DecodeError> {
    let body_len = buf.len().checked_sub(4).ok_or(DecodeError {
        what: "truncated input",
        offset: 0,
    })?;
    let (body, tail) = buf.split_at(body_len);
    let mut d = Dec::new(tail);
    let stored = d.u32()?;
    if crc32c::crc32c(body) == stored {
        Ok(body)
    } else {
        Err(DecodeError {
            what: "checksum mismatch",
            offset: body_len,
        })
    }
}

const FLAG_TOMBSTONE: u8 = 1;
const FLAG_EXPIRY: u8 = 2;
const FLAG_CONTENT_TYPE: u8 = 4;

/// Encodes an entry body (see the module table). The caller has validated the key length.
pub fn put_entry_body(enc: &mut Enc, key: &[u8], kind: &EntryKind, expires_at: Option<UnixMillis>) {
    let mut flags = 0;
    if matches!(kind, EntryKind::Tombstone) {
        flags |= FLAG_TOMBSTONE;
    }
    if expires_at.is_some() {
        flags |= FLAG_EXPIRY;
    }
    if let EntryKind::Put {
        content_type: Some(_),
        ..
    } = kind
    {
        flags |= FLAG_CONTENT_TYPE;
    }
    enc.u8(flags);
    enc.bytes16(key);
    if let Some(t) = expires_at {
        enc.u64(t);
    }
    if let EntryKind::Put {
        value,
        content_type,
    } = kind
    {
        if let Some(ct) = content_type {
            let n = u8::try_from(ct.len()).unwrap_or(u8::MAX);
            enc.u8(n);
            enc.raw(ct.get(..usize::from(n)).unwrap_or(ct));
        }
        enc.bytes32(value);
    }
}

/// A decoded entry body; byte fields are slices of `src` turned into `Bytes` without copying.
#[derive(Debug)]
pub struct EntryBody {
    /// The key.
    pub key: Bytes,
    /// Value or tombstone.
    pub kind: EntryKind,
    /// Expiry, if any.
    pub expires_at: Option<UnixMillis>,
}

/// Decodes an entry body from `d`, whose underlying slice is `src` (so byte fields can be
/// zero-copy slices of it).
pub fn get_entry_body(d: &mut Dec<'_>, src: &Bytes) -> Result<EntryBody, DecodeError> {
    let flags = d.u8()?;
    if flags & !(FLAG_TOMBSTONE | FLAG_EXPIRY | FLAG_CONTENT_TYPE) != 0 {
        return Err(d.err("unknown entry flags"));
    }
    let key_start = d.pos() + 2;
    let key = d.bytes16()?;
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(d.err("key length out of range"));
    }
    let key = src.slice(key_start..key_start + key.len());
    let expires_at = if flags & FLAG_EXPIRY != 0 {
        Some(d.u64()?)
    } else {
        None
    };
    let tomb = flags & FLAG_TOMBSTONE != 0;
    if tomb && flags & FLAG_CONTENT_TYPE != 0 {
        return Err(d.err("tombstone with content type"));
    }
    let kind = if tomb {
        EntryKind::Tombstone
    } else {
        let content_type = if flags & FLAG_CONTENT_TYPE != 0 {
            let n = usize::from(d.u8()?);
            let start = d.pos();
            d.take(n)?;
            Some(src.slice(start..start + n))
        } else {
            None
        };
        let start = d.pos() + 4;
        let v = d.bytes32()?;
        EntryKind::Put {
            value: src.slice(start..start + v.len()),
            content_type,
        }
    };
    Ok(EntryBody {
        key,
        kind,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_body_round_trips() {
        let kinds = [
            EntryKind::Tombstone,
            EntryKind::Put {
                value: Bytes::from_static(b"v"),
                content_type: Some(Bytes::from_static(b"text/plain")),
            },
            EntryKind::Put {
                value: Bytes::new(),
                content_type: None,
            },
        ];
        for kind in kinds {
            for exp in [None, Some(42)] {
                let mut e = Enc::default();
                put_entry_body(&mut e, b"key", &kind, exp);
                let b = e.finish();
                let mut d = Dec::new(&b);
                let got = get_entry_body(&mut d, &b).expect("decodes");
                assert_eq!(got.key.as_ref(), b"key");
                assert_eq!(got.kind, kind);
                assert_eq!(got.expires_at, exp);
                assert!(d.finish().is_ok());
            }
        }
    }

    #[test]
    fn truncated_entry_is_an_error_at_every_cut() {
        let mut e = Enc::default();
        put_entry_body(
            &mut e,
            b"key",
            &EntryKind::Put {
                value: Bytes::from_static(b"value"),
                content_type: Some(Bytes::from_static(b"a/b")),
            },
            Some(7),
        );
        let b = e.finish();
        for cut in 0..b.len() {
            let s = b.slice(..cut);
            let mut d = Dec::new(&s);
            assert!(get_entry_body(&mut d, &s).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn crc_trailer_detects_flip() {
        let mut e = Enc::default();
        e.u64(12345);
        e.crc_trailer();
        let mut b = e.finish().to_vec();
        assert!(split_crc_trailer(&b).is_ok());
        b[2] ^= 0x10;
        assert_eq!(
            split_crc_trailer(&b).map_err(|e| e.what),
            Err("checksum mismatch")
        );
    }

    proptest::proptest! {
        #[test]
        fn entry_decoder_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let b = Bytes::from(data);
            let mut d = Dec::new(&b);
            let _ = get_entry_body(&mut d, &b);
        }
    }
}
