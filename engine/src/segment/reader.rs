//! Reads a segment from object storage: open (footer + metadata), point lookups and ordered
//! iteration, with data blocks going through the block cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use parking_lot::Mutex;

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

/// Most bytes a bulk read (compaction) fetches with one GET.
const BULK_READ_BYTES: u64 = 4 << 20;

/// A fetch of one block that concurrent misses share: the raw bytes, or `None` if it failed
/// (whoever joined it then fetches again and sees the error itself).
type Flight = Shared<BoxFuture<'static, Option<Bytes>>>;

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
    /// Bytes of the index, bloom filter and info held in memory (charged to the block
    /// cache's memory budget while this reader lives).
    metadata_bytes: usize,
    /// Block fetches in flight, by offset: concurrent misses of one block share one GET.
    flights: Mutex<HashMap<u64, Flight>>,
}

impl Drop for SegmentReader {
    fn drop(&mut self) {
        self.cache
            .reserve(-i64::try_from(self.metadata_bytes).unwrap_or(i64::MAX));
    }
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
        let metadata_bytes = meta.len() + index.len() * std::mem::size_of::<IndexEntry>();
        cache.reserve(i64::try_from(metadata_bytes).unwrap_or(i64::MAX));
        Ok(Self {
            store,
            key,
            id,
            cache,
            index,
            bloom,
            info,
            counters: Counters::default(),
            metadata_bytes,
            flights: Mutex::new(HashMap::new()),
        })
    }

    /// Bytes of the index, bloom filter and info this reader keeps in memory.
    #[must_use]
    pub fn metadata_bytes(&self) -> usize {
        self.metadata_bytes
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
        let mut gets = 0;
        self.get_counted(key, &mut gets).await
    }

    /// [`SegmentReader::get`], adding to `gets` the object-store GET it made (at most one:
    /// index and bloom filter are in memory).
    pub async fn get_counted(&self, key: &[u8], gets: &mut u64) -> Result<Option<Entry>> {
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
        let (block, fetched) = self.block_counted(i).await?;
        *gets += u64::from(fetched);
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
            bulk: None,
        }
    }

    /// Ordered iteration over every entry, for compaction: blocks are fetched in runs of up
    /// to 4 MiB per GET (a block-by-block read costs one GET per block) and the block cache
    /// is neither filled nor consulted (compaction inputs are read once; filling the cache
    /// would evict the blocks reads use).
    #[must_use]
    pub fn iter_bulk(self: &Arc<Self>) -> SegmentIter {
        let mut it = self.iter(None);
        it.bulk = Some(None);
        it
    }

    /// Blocks `first..` fetched with one GET of at most [`BULK_READ_BYTES`] (always at least
    /// one block), verified; returns them in order.
    async fn fetch_run(&self, first: usize) -> Result<Vec<Block>> {
        let Some(ie) = self.index.get(first) else {
            return Ok(Vec::new());
        };
        let start = if first == 0 { 0 } else { ie.block.offset };
        let mut last = first;
        while let Some(next) = self.index.get(last + 1) {
            if next.block.end() - start > BULK_READ_BYTES {
                break;
            }
            last += 1;
        }
        let end = self.index.get(last).map_or(start, |e| e.block.end());
        let raw = self.store.get_range(&self.key, start..end).await?;
        self.counters.block_fetches.fetch_add(1, Ordering::Relaxed);
        if raw.len() as u64 != end - start {
            let e = DecodeError {
                what: "short read",
                offset: raw.len(),
            };
            return Err(self.block_err(first, e));
        }
        let mut out = Vec::with_capacity(last - first + 1);
        for i in first..=last {
            let Some(e) = self.index.get(i) else { break };
            let from = if i == 0 { 0 } else { e.block.offset - start };
            let b = raw.slice(
                usize::try_from(from).unwrap_or(usize::MAX)
                    ..usize::try_from(e.block.end() - start).unwrap_or(usize::MAX),
            );
            out.push(self.verify(i, b)?);
        }
        Ok(out)
    }

    fn block_err(&self, i: usize, e: DecodeError) -> Error {
        let offset = self.index.get(i).map_or(0, |b| b.block.offset);
        Error::corrupt(FMT_BLOCK, format!("{}@{offset}", self.key), e)
    }

    /// Data block `i`, verified: from the cache (crc and offset table re-checked) or fetched
    /// (fully validated, then offered to the cache). Block 0 is fetched together with the
    /// header, which is checked then.
    async fn block(&self, i: usize) -> Result<Block> {
        self.block_counted(i).await.map(|(b, _)| b)
    }

    /// [`SegmentReader::block`], and whether this call made an object-store GET (a miss
    /// that joined another reader's fetch made none).
    async fn block_counted(&self, i: usize) -> Result<(Block, bool)> {
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
                    return Ok((b, false));
                }
                Err(e) => tracing::warn!(
                    segment = %self.key, offset = ie.block.offset, error = %e,
                    "cached segment block failed verification; reading it again"
                ),
            }
        }
        // Single flight: a miss joins the fetch of the same block already in flight.
        let (flight, leader) = {
            let mut flights = self.flights.lock();
            match flights.get(&ie.block.offset) {
                Some(f) => (f.clone(), false),
                None => {
                    let store = self.store.clone();
                    let key = self.key.clone();
                    let start = if i == 0 { 0 } else { ie.block.offset };
                    let range = start..ie.block.end();
                    let f = async move { store.get_range(&key, range).await.ok() }
                        .boxed()
                        .shared();
                    flights.insert(ie.block.offset, f.clone());
                    (f, true)
                }
            }
        };
        let guard = leader.then(|| FlightGuard {
            flights: &self.flights,
            offset: ie.block.offset,
        });
        let fetched = flight.await;
        drop(guard);
        let raw = match fetched {
            Some(raw) => raw,
            None => {
                // The shared fetch failed: fetch again to report this reader's own error.
                let start = if i == 0 { 0 } else { ie.block.offset };
                self.store
                    .get_range(&self.key, start..ie.block.end())
                    .await?
            }
        };
        if leader {
            self.counters.block_fetches.fetch_add(1, Ordering::Relaxed);
        }
        let block = self.verify(i, raw.clone())?;
        let body = if i == 0 {
            raw.slice(HEADER_LEN as usize..)
        } else {
            raw
        };
        if leader {
            self.cache.insert(bkey, body);
        }
        Ok((block, leader))
    }

    /// Verifies block `i` as fetched (block 0 with the segment header before it).
    fn verify(&self, i: usize, raw: Bytes) -> Result<Block> {
        let ie = self.index.get(i).ok_or(Error::Invariant {
            what: "segment block number out of range",
        })?;
        let start = if i == 0 { 0 } else { ie.block.offset };
        if raw.len() as u64 != ie.block.end() - start {
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
        let block = Block::parse(raw)
            .and_then(|b| b.validate(prev, &ie.last_key).map(|()| b))
            .map_err(|e| self.block_err(i, e))?;
        if i == 0 && block.key(0).ok() != Some(self.info.min_key.as_ref()) {
            let e = DecodeError {
                what: "first key differs from the segment info",
                offset: 0,
            };
            return Err(self.block_err(i, e));
        }
        Ok(block)
    }
}

/// Removes a block's flight from the map when its leader is done with it, or gives up
/// (a cancelled read must not leave a finished flight behind for others to reuse forever).
struct FlightGuard<'a> {
    flights: &'a Mutex<HashMap<u64, Flight>>,
    offset: u64,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        self.flights.lock().remove(&self.offset);
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
    /// Bulk mode ([`SegmentReader::iter_bulk`]): blocks fetched ahead, in order.
    bulk: Option<Option<std::collections::VecDeque<Block>>>,
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
            let b = match &mut self.bulk {
                None => self.reader.block(i).await?,
                Some(ahead) => {
                    if ahead
                        .as_ref()
                        .is_none_or(std::collections::VecDeque::is_empty)
                    {
                        // Let the node's other tasks run between runs of blocks.
                        tokio::task::yield_now().await;
                        *ahead = Some(self.reader.fetch_run(i).await?.into());
                    }
                    match ahead
                        .as_mut()
                        .and_then(std::collections::VecDeque::pop_front)
                    {
                        Some(b) => b,
                        None => return Ok(None),
                    }
                }
            };
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
