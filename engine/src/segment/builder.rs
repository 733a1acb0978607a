//! Writes a segment from entries given in strictly ascending key order.

use bytes::Bytes;

use crate::codec::Enc;
use crate::error::{Error, Result};
use crate::types::{Entry, EntryKind, MAX_CONTENT_TYPE_LEN, MAX_KEY_LEN};

use super::block::BlockBuf;
use super::bloom::{bloom_len_estimate, key_hash, put_bloom};
use super::format::{Footer, IndexEntry, Span, put_header, put_index, put_info};
use super::{SegmentInfo, SegmentOptions};

/// Builds one segment in memory; [`SegmentBuilder::finish`] returns the object bytes.
#[derive(Debug)]
pub struct SegmentBuilder {
    block_bytes: usize,
    bits_per_key: u32,
    /// Header and finished data blocks.
    out: Enc,
    block: BlockBuf,
    index: Vec<IndexEntry>,
    index_bytes: usize,
    /// Key hashes for the bloom filter (empty when it is disabled).
    hashes: Vec<u64>,
    last_key: Option<Bytes>,
    info: Option<SegmentInfo>,
}

impl SegmentBuilder {
    /// A builder with `opts`; out-of-range options are clamped (see
    /// [`SegmentOptions::validate`]).
    #[must_use]
    pub fn new(opts: &SegmentOptions) -> Self {
        let mut out = Enc::with_capacity(opts.block_bytes.saturating_mul(2));
        put_header(&mut out);
        Self {
            block_bytes: opts.block_bytes.clamp(
                SegmentOptions::MIN_BLOCK_BYTES,
                SegmentOptions::MAX_BLOCK_BYTES,
            ),
            bits_per_key: opts
                .bloom_bits_per_key
                .min(SegmentOptions::MAX_BLOOM_BITS_PER_KEY),
            out,
            block: BlockBuf::default(),
            index: Vec::new(),
            index_bytes: 0,
            hashes: Vec::new(),
            last_key: None,
            info: None,
        }
    }

    /// Adds the next entry. Keys must be strictly ascending (one version per key per
    /// segment); otherwise, or if the key or content type is out of range, or a block would
    /// exceed 4 GiB, returns [`Error::Invariant`] and leaves the builder unchanged.
    pub fn add(&mut self, e: &Entry) -> Result<()> {
        if e.key.is_empty() || e.key.len() > MAX_KEY_LEN {
            return Err(Error::Invariant {
                what: "segment entry key length out of range",
            });
        }
        if let EntryKind::Put {
            content_type: Some(ct),
            ..
        } = &e.kind
            && ct.len() > MAX_CONTENT_TYPE_LEN
        {
            return Err(Error::Invariant {
                what: "segment entry content type too long",
            });
        }
        if self.last_key.as_ref().is_some_and(|k| *k >= e.key) {
            return Err(Error::Invariant {
                what: "segment keys must be strictly ascending",
            });
        }
        let enc = BlockBuf::encode_entry(e);
        // A block of this entry alone must fit the u32 lengths and offsets of the format;
        // any other block is at most `block_bytes` (<= 1 MiB).
        if BlockBuf::default().len_with(enc.len()) > u64::from(u32::MAX) {
            return Err(Error::Invariant {
                what: "segment block larger than 4 GiB",
            });
        }
        if self.block.count() > 0 && self.block.len_with(enc.len()) > self.block_bytes as u64 {
            self.finish_block()?;
        }
        self.block.push(enc.as_slice());
        if self.bits_per_key > 0 {
            self.hashes.push(key_hash(&e.key));
        }
        self.last_key = Some(e.key.clone());
        let tomb = u64::from(matches!(e.kind, EntryKind::Tombstone));
        match &mut self.info {
            None => {
                self.info = Some(SegmentInfo {
                    entries: 1,
                    tombstones: tomb,
                    min_key: e.key.clone(),
                    max_key: e.key.clone(),
                    min_seq: e.seq,
                    max_seq: e.seq,
                    min_expires_at: e.expires_at,
                    size: 0,
                });
            }
            Some(i) => {
                i.entries += 1;
                i.tombstones += tomb;
                i.max_key = e.key.clone();
                i.min_seq = i.min_seq.min(e.seq);
                i.max_seq = i.max_seq.max(e.seq);
                i.min_expires_at = match (i.min_expires_at, e.expires_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        Ok(())
    }

    /// Closes the current data block and records it in the index.
    fn finish_block(&mut self) -> Result<()> {
        let Some(last_key) = self.last_key.clone() else {
            return Err(Error::Invariant {
                what: "segment block closed without entries",
            });
        };
        let bytes = self.block.take();
        let len = u32::try_from(bytes.len()).map_err(|_| Error::Invariant {
            what: "segment block larger than 4 GiB",
        })?;
        self.index_bytes += last_key.len() + 14;
        self.index.push(IndexEntry {
            last_key,
            block: Span {
                offset: self.out.len() as u64,
                len,
            },
        });
        self.out.raw(&bytes);
        Ok(())
    }

    /// Approximate encoded size so far (data, index, bloom and footer), so that compaction
    /// can split its output at a target size.
    #[must_use]
    pub fn approx_size(&self) -> usize {
        let pending = usize::try_from(self.block.len_with(0)).unwrap_or(usize::MAX);
        let info = self
            .info
            .as_ref()
            .map_or(0, |i| 64 + i.min_key.len() + i.max_key.len());
        self.out.len()
            + if self.block.count() > 0 { pending } else { 0 }
            + self.index_bytes
            + bloom_len_estimate(self.hashes.len(), self.bits_per_key)
            + info
            + 48
    }

    /// Entries added so far.
    #[must_use]
    pub fn entries(&self) -> u64 {
        self.info.as_ref().map_or(0, |i| i.entries)
    }

    /// The whole encoded segment and its summary. [`Error::Invariant`] if no entry was
    /// added.
    pub fn finish(mut self) -> Result<(Bytes, SegmentInfo)> {
        let Some(mut info) = self.info.take() else {
            return Err(Error::Invariant {
                what: "segment has no entries",
            });
        };
        self.finish_block()?;
        let mut out = self.out;
        let span = |start: usize, end: usize| -> Result<Span> {
            Ok(Span {
                offset: start as u64,
                len: u32::try_from(end - start).map_err(|_| Error::Invariant {
                    what: "segment metadata block larger than 4 GiB",
                })?,
            })
        };
        let index_start = out.len();
        put_index(&mut out, &self.index);
        let bloom_start = out.len();
        if self.bits_per_key > 0 {
            put_bloom(&mut out, &self.hashes, self.bits_per_key);
        }
        let info_start = out.len();
        put_info(&mut out, &info);
        let footer = Footer {
            index: span(index_start, bloom_start)?,
            bloom: span(bloom_start, info_start)?,
            info: span(info_start, out.len())?,
        };
        footer.encode(&mut out);
        let bytes = out.finish();
        info.size = bytes.len() as u64;
        Ok((bytes, info))
    }
}
