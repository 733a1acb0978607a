//! Reads a segment from object storage: open (footer + metadata), point lookups and ordered
//! iteration, with data blocks going through the block cache.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::block_cache::{BlockCache, BlockKey};
use crate::codec::DecodeError;
use crate::error::{Error, Result};
use crate::store::ObjStore;
use crate::types::{Entry, SegmentId};

use super::SegmentInfo;
use super::block::Block;
use super::bloom::Bloom;
use super::format::{
    FOOTER_LEN, Footer, HEADER_LEN, IndexEntry, MIN_BLOCK_LEN, check_header, decode_index,
    decode_info,
};

const FMT_BLOCK: &str = "segment block";

/// Counters of one reader, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Lookups answered "absent" by the bloom filter alone (no block read).
    pub bloom_negatives: u64,
    /// Data blocks fetched from object storage (cache misses).
    pub block_fetches: u64,
    /// Data blocks served by the block cache.
    pub cache_hits: u64,
}

/// Per-reader figures (not exported: tests and diagnostics read them through `stats`).
#[derive(Debug, Default)]
struct Counters {
    bloom_negatives: AtomicU64,
    block_fetches: AtomicU64,
    cache_hits: AtomicU64,
}

/// An open segment: its index, bloom filter and summary are in memory; data blocks are read
/// on demand through the block cache. `Send + Sync`; callers share it in an `Arc`.
pub struct SegmentReader {
    store: ObjStore,
    key: String,
    id: SegmentId,
    cache: Arc<dyn BlockCache>,
    index: Vec<IndexEntry>,
    bloom: Option<Bloom>,
    info: SegmentInfo,
    counters: Counters,
}

impl fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentReader")
            .field("key", &self.key)
            .field("id", &self.id)
            .field("blocks", &self.index.len())
            .field("bloom", &self.bloom)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// `buf[start..start + len]` as a zero-copy slice, if in bounds.
fn sub(buf: &Bytes, start: u64, len: u32) -> Option<Bytes> {
    let start = usize::try_from(start).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= buf.len()).then(|| buf.slice(start..end))
}

impl SegmentReader {
    /// Opens the segment object `key` of `size` bytes: one range read of the footer, then
    /// one range read of the adjacent index, bloom and info blocks. Validates magic,
    /// version, checksums and every offset and length against `size`.
    pub async fn open(
        store: ObjStore,
        key: String,
        id: SegmentId,
        size: u64,
        cache: Arc<dyn BlockCache>,
    ) -> Result<Self> {
        let min_size = HEADER_LEN + u64::from(MIN_BLOCK_LEN) + FOOTER_LEN;
        if size < min_size {
            return Err(Error::corrupt(
                "segment footer",
                key,
                DecodeError {
                    what: "object too small to be a segment",
                    offset: 0,
                },
            ));
        }
        let footer_start = size - FOOTER_LEN;
        let fbuf = store.get_range(&key, footer_start..size).await?;
        let footer = Footer::decode(&fbuf, size, &key)?;
        let meta_start = footer.index.offset;
        let meta = store.get_range(&key, meta_start..footer_start).await?;
        let meta_err = |what| {
            let e = DecodeError { what, offset: 0 };
            Error::corrupt("segment metadata", format!("{key}@{meta_start}"), e)
        };
        if meta.len() as u64 != footer_start - meta_start {
            return Err(meta_err("short read"));
        }
        let part = |s: super::format::Span| {
            s.offset
                .checked_sub(meta_start)
                .and_then(|rel| sub(&meta, rel, s.len))
                .ok_or_else(|| meta_err("span out of range"))
        };
        let index = decode_index(&part(footer.index)?, footer.index.offset, &key)?;
        let bloom = if footer.bloom.len == 0 {
            None
        } else {
            let b = Bloom::decode(&part(footer.bloom)?)
                .map_err(|e| Error::corrupt("segment bloom", key.as_str(), e))?;
            Some(b)
        };
        let info = decode_info(&part(footer.info)?, size, &key)?;
        let last = index.last().map(|i| &i.last_key);
        if last != Some(&info.max_key) || info.entries < index.len() as u64 {
            return Err(meta_err("info disagrees with the index"));
        }
        Ok(Self {
            store,
            key,
            id,
            cache,
            index,
            bloom,
            info,
            counters: Counters::default(),
        })
    }

    /// The segment's id.
    #[must_use]
    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// The segment's summary.
    #[must_use]
    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    /// False only if `key` is certainly not in the segment (bloom filter; always true when
    /// the segment has none).
    #[must_use]
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.bloom.as_ref().is_none_or(|b| b.may_contain(key))
    }

    /// Counters of this reader.
    #[must_use]
    pub fn stats(&self) -> ReaderStats {
        ReaderStats {
            bloom_negatives: self.counters.bloom_negatives.load(Ordering::Relaxed),
            block_fetches: self.counters.block_fetches.load(Ordering::Relaxed),
            cache_hits: self.counters.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// The entry for `key`, if the segment has one. Bloom filter first (a negative reads no
    /// block), then the index picks the only block that can hold `key`, which comes from
    /// the cache or one range read of that block.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        if !self.may_contain(key) {
            self.counters
                .bloom_negatives
                .fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        if key < self.info.min_key.as_ref() || key > self.info.max_key.as_ref() {
            return Ok(None);
        }
        let i = self.index.partition_point(|b| b.last_key.as_ref() < key);
        if i >= self.index.len() {
            return Ok(None);
        }
        let block = self.block(i).await?;
        match block.search(key).map_err(|e| self.block_err(i, e))? {
            Ok(j) => Ok(Some(block.entry(j).map_err(|e| self.block_err(i, e))?)),
            Err(_) => Ok(None),
        }
    }

    /// Ordered iteration over the entries whose key is greater than `after` (all entries
    /// when `None`), one block at a time through the cache.
    #[must_use]
    pub fn iter(self: &Arc<Self>, after: Option<Bytes>) -> SegmentIter {
        let next_block = after.as_ref().map_or(0, |a| {
            self.index
                .partition_point(|b| b.last_key.as_ref() <= a.as_ref())
        });
        SegmentIter {
            reader: Arc::clone(self),
            after,
            next_block,
            cur: None,
            pos: 0,
            done: false,
        }
    }

    fn block_err(&self, i: usize, e: DecodeError) -> Error {
        let offset = self.index.get(i).map_or(0, |b| b.block.offset);
        Error::corrupt(FMT_BLOCK, format!("{}@{offset}", self.key), e)
    }

    /// Data block `i`, verified: from the cache (crc and offset table re-checked) or fetched
    /// (fully validated, then offered to the cache). Block 0 is fetched together with the
    /// header, which is checked then.
    async fn block(&self, i: usize) -> Result<Block> {
        let ie = self.index.get(i).ok_or(Error::Invariant {
            what: "segment block number out of range",
        })?;
        let bkey = BlockKey {
            segment: self.id,
            offset: ie.block.offset,
        };
        if let Some(raw) = self.cache.get(&bkey).await {
            match Block::parse(raw) {
                Ok(b) => {
                    self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(b);
                }
                Err(e) => tracing::warn!(
                    segment = %self.key, offset = ie.block.offset, error = %e,
                    "cached segment block failed verification; reading it again"
                ),
            }
        }
        let start = if i == 0 { 0 } else { ie.block.offset };
        let end = ie.block.end();
        let raw = self.store.get_range(&self.key, start..end).await?;
        self.counters.block_fetches.fetch_add(1, Ordering::Relaxed);
        if raw.len() as u64 != end - start {
            let e = DecodeError {
                what: "short read",
                offset: raw.len(),
            };
            return Err(self.block_err(i, e));
        }
        let raw = if i == 0 {
            check_header(&raw, &self.key)?;
            raw.slice(HEADER_LEN as usize..)
        } else {
            raw
        };
        let prev = i
            .checked_sub(1)
            .and_then(|p| self.index.get(p))
            .map(|p| p.last_key.as_ref());
        let block = Block::parse(raw.clone())
            .and_then(|b| b.validate(prev, &ie.last_key).map(|()| b))
            .map_err(|e| self.block_err(i, e))?;
        if i == 0 && block.key(0).ok() != Some(self.info.min_key.as_ref()) {
            let e = DecodeError {
                what: "first key differs from the segment info",
                offset: 0,
            };
            return Err(self.block_err(i, e));
        }
        self.cache.insert(bkey, raw);
        Ok(block)
    }
}

/// Ordered iterator over a segment's entries (see [`SegmentReader::iter`]). After an error
/// it returns `Ok(None)`.
#[derive(Debug)]
pub struct SegmentIter {
    reader: Arc<SegmentReader>,
    /// Lower bound (exclusive), applied inside the first block only: later blocks hold
    /// greater keys.
    after: Option<Bytes>,
    next_block: usize,
    cur: Option<Block>,
    pos: usize,
    done: bool,
}

impl SegmentIter {
    /// The next entry in key order, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Entry>> {
        let r = self.advance().await;
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
            self.cur = None;
        }
        r
    }

    async fn advance(&mut self) -> Result<Option<Entry>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if let Some(b) = &self.cur {
                if self.pos < b.len() {
                    let i = self.next_block.saturating_sub(1);
                    let e = b.entry(self.pos).map_err(|e| self.reader.block_err(i, e))?;
                    self.pos += 1;
                    return Ok(Some(e));
                }
                self.cur = None;
            }
            if self.next_block >= self.reader.index.len() {
                return Ok(None);
            }
            let i = self.next_block;
            self.next_block += 1;
            let b = self.reader.block(i).await?;
            self.pos = match self.after.take() {
                None => 0,
                Some(a) => match b.search(&a).map_err(|e| self.reader.block_err(i, e))? {
                    Ok(j) => j + 1,
                    Err(j) => j,
                },
            };
            self.cur = Some(b);
        }
    }
}
