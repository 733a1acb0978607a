//! TierKV caches.
//!
//! # Layout
//!
//! - [`block`]: [`FoyerBlockCache`], the hybrid (memory + optional disk) block cache behind the
//!   engine's [`tierkv_engine::block_cache::BlockCache`] seam, its [`BlockCacheOptions`] and
//!   its [`CacheError`].
//!
//! # Overview
//!
//! Segment readers look blocks up in the block cache before fetching them by byte range from
//! object storage. Segments are immutable and uniquely named, so a cached block never goes
//! stale and the cache needs no invalidation: it only has to be fast and bounded.
//!
//! [`FoyerBlockCache`] wraps foyer's `HybridCache`:
//!
//! - a memory tier (always), weighted by block size;
//! - a disk tier (when [`BlockCacheOptions::disk_dir`] is set): foyer's block engine on a
//!   directory device. Blocks are written to disk when the memory tier evicts them, and every
//!   block still in memory is flushed to disk by [`FoyerBlockCache::close`], so a cache that
//!   was closed cleanly and reopened on the same directory finds its blocks again (foyer's
//!   recovery is best-effort; see [`block`] for exactly what it does and does not promise).
//!
//! A cache is an optimisation, never a source of truth: lookups never fail the caller. A
//! foyer error during `get` is logged and reported as a miss.
#![warn(missing_docs)]

pub mod block;

pub use block::{BlockCacheOptions, CacheError, FoyerBlockCache, MIN_DISK_BYTES};
