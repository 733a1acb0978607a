//! The block cache seam. Segment readers look blocks up here before fetching them by byte
//! range from object storage. The engine ships a small in-memory implementation for tests
//! and embedded use; the server plugs in the foyer hybrid (memory + disk) cache from the
//! `tierkv-cache` crate.

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::metrics::{Counter, Registry};
use crate::types::SegmentId;

/// Names one block: segments are immutable and uniquely named, so this never goes stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockKey {
    /// The segment.
    pub segment: SegmentId,
    /// Byte offset of the block in the segment object.
    pub offset: u64,
}

/// A cache of segment blocks.
#[async_trait]
pub trait BlockCache: Send + Sync + std::fmt::Debug + 'static {
    /// The cached block, if present.
    async fn get(&self, key: &BlockKey) -> Option<Bytes>;
    /// Offers a block to the cache (it may decline).
    fn insert(&self, key: BlockKey, block: Bytes);
    /// Hit and miss counters.
    fn stats(&self) -> CacheStats;
    /// Adds `bytes` (negative: gives back) to memory the node holds for segments outside the
    /// cache (open segments' indexes and bloom filters), which the cache's memory budget
    /// covers too: a cache that can, shrinks its memory tier by as much. Default: ignored.
    fn reserve(&self, bytes: i64) {
        let _ = bytes;
    }
}

/// Cache effectiveness counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found the block.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
}

/// The hit and miss counters every block cache keeps, and their metric families
/// (`tierkv_block_cache_hits_total`, `tierkv_block_cache_misses_total`).
#[derive(Debug, Clone)]
pub struct CacheCounters {
    hits: Counter,
    misses: Counter,
    hits_by_tier:
        prometheus_client::metrics::family::Family<[(&'static str, &'static str); 1], Counter>,
}

impl Default for CacheCounters {
    /// Both tiers' series exist from the start (at 0).
    fn default() -> Self {
        let c = Self {
            hits: Counter::default(),
            misses: Counter::default(),
            hits_by_tier: prometheus_client::metrics::family::Family::default(),
        };
        for tier in ["memory", "disk"] {
            drop(c.hits_by_tier.get_or_create(&[("tier", tier)]));
        }
        c
    }
}

/// Where a block-cache hit was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The memory tier.
    Memory,
    /// The disk tier (the memory tier had evicted it).
    Disk,
}

impl CacheCounters {
    /// Counts one lookup: a hit when `found` (in memory, for a cache without tiers).
    pub fn lookup(&self, found: bool) {
        self.lookup_tier(found.then_some(Tier::Memory));
    }

    /// Counts one lookup: a hit in `tier`, or a miss.
    pub fn lookup_tier(&self, tier: Option<Tier>) {
        match tier {
            Some(t) => {
                self.hits.inc();
                let label = match t {
                    Tier::Memory => "memory",
                    Tier::Disk => "disk",
                };
                self.hits_by_tier.get_or_create(&[("tier", label)]).inc();
            }
            None => {
                self.misses.inc();
            }
        }
    }

    /// Hits found in `tier`.
    #[must_use]
    pub fn tier_hits(&self, tier: Tier) -> u64 {
        let label = match tier {
            Tier::Memory => "memory",
            Tier::Disk => "disk",
        };
        self.hits_by_tier.get_or_create(&[("tier", label)]).get()
    }

    /// The current counts.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
        }
    }

    /// Registers the counters into `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tierkv_block_cache_hits",
            "Block-cache hits",
            self.hits.clone(),
        );
        registry.register(
            "tierkv_block_cache_misses",
            "Block-cache misses",
            self.misses.clone(),
        );
        registry.register(
            "tierkv_block_cache_hits_by_tier",
            "Block-cache hits by the tier that held the block",
            self.hits_by_tier.clone(),
        );
    }
}

/// A bounded in-memory FIFO block cache.
#[derive(Debug)]
pub struct MemBlockCache {
    capacity_bytes: usize,
    inner: Mutex<MemInner>,
    counters: CacheCounters,
}

#[derive(Debug, Default)]
struct MemInner {
    map: HashMap<BlockKey, Bytes>,
    order: VecDeque<BlockKey>,
    bytes: usize,
}

impl MemBlockCache {
    /// A cache holding at most `capacity_bytes` of blocks.
    #[must_use]
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            capacity_bytes,
            inner: Mutex::new(MemInner::default()),
            counters: CacheCounters::default(),
        }
    }

    /// Registers the cache's figures into `registry` ([`CacheCounters::register`]).
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.counters.register(registry);
    }
}

#[async_trait]
impl BlockCache for MemBlockCache {
    async fn get(&self, key: &BlockKey) -> Option<Bytes> {
        let got = self.inner.lock().map.get(key).cloned();
        self.counters.lookup(got.is_some());
        got
    }

    fn insert(&self, key: BlockKey, block: Bytes) {
        if block.len() > self.capacity_bytes {
            return;
        }
        let mut g = self.inner.lock();
        if g.map.contains_key(&key) {
            return;
        }
        g.bytes += block.len();
        g.map.insert(key, block);
        g.order.push_back(key);
        while g.bytes > self.capacity_bytes {
            let Some(old) = g.order.pop_front() else {
                break;
            };
            if let Some(b) = g.map.remove(&old) {
                g.bytes -= b.len();
            }
        }
    }

    fn stats(&self) -> CacheStats {
        self.counters.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn evicts_oldest_past_capacity() {
        let c = MemBlockCache::new(10);
        let k = |o| BlockKey {
            segment: SegmentId(1),
            offset: o,
        };
        c.insert(k(0), Bytes::from_static(b"123456"));
        c.insert(k(1), Bytes::from_static(b"123456"));
        assert!(c.get(&k(0)).await.is_none());
        assert!(c.get(&k(1)).await.is_some());
        assert_eq!(c.stats(), CacheStats { hits: 1, misses: 1 });
    }

    #[tokio::test]
    async fn registers_hit_and_miss_counters() {
        let c = MemBlockCache::new(10);
        let mut r = Registry::default();
        c.register_metrics(&mut r);
        let k = BlockKey {
            segment: SegmentId(1),
            offset: 0,
        };
        c.insert(k, Bytes::from_static(b"1"));
        assert!(c.get(&k).await.is_some());
        let text = crate::metrics::encode_text(&r).expect("encodes");
        for line in [
            "# TYPE tierkv_block_cache_hits_total counter",
            "tierkv_block_cache_hits_total 1",
            "# TYPE tierkv_block_cache_misses_total counter",
            "tierkv_block_cache_misses_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
