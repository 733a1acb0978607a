//! Data blocks: encoding (used by the builder) and verified, panic-free decoding (used by
//! the reader). Layout in `format.rs`.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::codec::{Dec, DecodeError, Enc, get_entry_body, put_entry_body, split_crc_trailer};
use crate::types::{Entry, SeqNo};

fn derr(what: &'static str, offset: usize) -> DecodeError {
    DecodeError { what, offset }
}

/// Accumulates the entries of one data block.
#[derive(Debug, Default)]
pub(crate) struct BlockBuf {
    entries: Enc,
    offsets: Vec<u32>,
}

impl BlockBuf {
    /// Encodes one entry (`seq` then the codec entry body) on its own.
    pub(crate) fn encode_entry(e: &Entry) -> Enc {
        let mut enc = Enc::with_capacity(e.approx_size());
        enc.u64(e.seq.0);
        put_entry_body(&mut enc, &e.key, &e.kind, e.expires_at);
        enc
    }

    /// Entries in the block.
    pub(crate) fn count(&self) -> usize {
        self.offsets.len()
    }

    /// Encoded block length if an entry of `extra` bytes were added.
    pub(crate) fn len_with(&self, extra: usize) -> u64 {
        let n = self.offsets.len() as u64 + u64::from(extra > 0);
        self.entries.len() as u64 + extra as u64 + 4 * n + 8
    }

    /// Appends an encoded entry. The caller has checked `len_with(entry.len()) <= u32::MAX`.
    pub(crate) fn push(&mut self, entry: &[u8]) {
        self.offsets
            .push(u32::try_from(self.entries.len()).unwrap_or(u32::MAX));
        self.entries.raw(entry);
    }

    /// Finishes the block (offsets, count, crc) and resets the buffer.
    pub(crate) fn take(&mut self) -> Bytes {
        let mut b = std::mem::take(&mut self.entries);
        let offsets = std::mem::take(&mut self.offsets);
        for &o in &offsets {
            b.u32(o);
        }
        b.u32(u32::try_from(offsets.len()).unwrap_or(u32::MAX));
        b.crc_trailer();
        b.finish()
    }
}

/// A data block whose checksum and offset table were verified.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    raw: Bytes,
    /// Offset of the offset table (= end of the entries).
    entries_end: usize,
    count: usize,
}

impl Block {
    /// Verifies the crc and the offset table (first offset 0, strictly increasing, inside the
    /// entry region). Entries themselves are decoded lazily, or by [`Block::validate`].
    pub(crate) fn parse(raw: Bytes) -> Result<Self, DecodeError> {
        let body = split_crc_trailer(&raw)?;
        let count_at = body
            .len()
            .checked_sub(4)
            .ok_or_else(|| derr("truncated input", 0))?;
        let count = Dec::new(body.get(count_at..).unwrap_or_default()).u32()? as usize;
        if count == 0 {
            return Err(derr("block has no entries", count_at));
        }
        let entries_end = count
            .checked_mul(4)
            .and_then(|t| count_at.checked_sub(t))
            .ok_or_else(|| derr("entry count out of range", count_at))?;
        let block = Self {
            raw,
            entries_end,
            count,
        };
        let mut d = Dec::new(block.raw.get(entries_end..count_at).unwrap_or_default());
        let mut prev: Option<usize> = None;
        for _ in 0..count {
            let off = d.u32()? as usize;
            let ok = match prev {
                None => off == 0,
                Some(p) => off > p,
            };
            if !ok || off >= entries_end {
                return Err(derr("bad entry offset", entries_end + d.pos() - 4));
            }
            prev = Some(off);
        }
        Ok(block)
    }

    /// Decodes every entry and checks that keys are strictly ascending, all greater than
    /// `after` (the previous block's last key) and that the last one is `last_key`.
    pub(crate) fn validate(
        &self,
        after: Option<&[u8]>,
        last_key: &[u8],
    ) -> Result<(), DecodeError> {
        let mut prev: Option<Bytes> = after.map(Bytes::copy_from_slice);
        for i in 0..self.count {
            let e = self.entry(i)?;
            if prev.as_ref().is_some_and(|p| *p >= e.key) {
                return Err(derr("keys not ascending", self.offset(i)?));
            }
            prev = Some(e.key);
        }
        if prev.as_deref() != Some(last_key) {
            return Err(derr("last key differs from the index", self.entries_end));
        }
        Ok(())
    }

    /// Entries in the block.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    fn offset(&self, i: usize) -> Result<usize, DecodeError> {
        let at = i
            .checked_mul(4)
            .and_then(|o| o.checked_add(self.entries_end))
            .ok_or_else(|| derr("entry index out of range", 0))?;
        let b = self
            .raw
            .get(at..at.saturating_add(4))
            .ok_or_else(|| derr("entry index out of range", at))?;
        Ok(Dec::new(b).u32()? as usize)
    }

    /// Byte range of entry `i`.
    fn range(&self, i: usize) -> Result<(usize, usize), DecodeError> {
        let start = self.offset(i)?;
        let end = if i + 1 < self.count {
            self.offset(i + 1)?
        } else {
            self.entries_end
        };
        Ok((start, end))
    }

    /// A decoder over the block positioned at entry `i`, and that entry's end.
    fn dec_at(&self, i: usize) -> Result<(Dec<'_>, usize), DecodeError> {
        let (start, end) = self.range(i)?;
        let mut d = Dec::new(
            self.raw
                .get(..end)
                .ok_or_else(|| derr("truncated input", end))?,
        );
        d.take(start)?;
        Ok((d, end))
    }

    /// The key of entry `i` (without decoding the rest).
    pub(crate) fn key(&self, i: usize) -> Result<&[u8], DecodeError> {
        let (mut d, _) = self.dec_at(i)?;
        d.u64()?;
        d.u8()?;
        d.bytes16()
    }

    /// Decodes entry `i`; byte fields are zero-copy slices of the block.
    pub(crate) fn entry(&self, i: usize) -> Result<Entry, DecodeError> {
        let (mut d, end) = self.dec_at(i)?;
        let seq = SeqNo(d.u64()?);
        let body = get_entry_body(&mut d, &self.raw)?;
        if d.pos() != end {
            return Err(d.err("entry length differs from its offsets"));
        }
        Ok(Entry {
            key: body.key,
            seq,
            kind: body.kind,
            expires_at: body.expires_at,
        })
    }

    /// Binary search: `Ok(i)` if entry `i` has `key`, else `Err(i)` with `i` the index of the
    /// first entry whose key is greater.
    pub(crate) fn search(&self, key: &[u8]) -> Result<Result<usize, usize>, DecodeError> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key(mid)?.cmp(key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(lo))
    }
}
