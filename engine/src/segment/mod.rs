//! Immutable sorted segments: the SST-like objects a shard flushes its memtable into and
//! compaction rewrites.
//!
//! A segment holds exactly one [`Entry`](crate::types::Entry) per key (value or tombstone,
//! with its sequence number, content type and expiry), sorted by key, in data blocks of about
//! [`SegmentOptions::block_bytes`], followed by an index of the blocks' last keys, an
//! optional bloom filter, a summary ([`SegmentInfo`]) and a fixed-size footer. The byte
//! layout is documented in `format.rs`.
//!
//! - [`SegmentBuilder`] encodes a segment in memory from entries in strictly ascending key
//!   order; the caller uploads the bytes.
//! - [`SegmentReader::open`] reads the footer and the metadata (two range reads) and keeps
//!   index, bloom and summary in memory. [`SegmentReader::get`] reads at most one data block
//!   and [`SegmentReader::iter`] one block at a time; blocks come from the [`BlockCache`]
//!   when present, otherwise from one range read of exactly that block (block 0 includes the
//!   8-byte header, which is checked then), verified by crc before use and before caching.
//! - Every decoder returns [`Error::Corrupt`] (or [`Error::UnsupportedVersion`]) on bad
//!   bytes and never panics.
//!
//! [`BlockCache`]: crate::block_cache::BlockCache
//! [`Error::Corrupt`]: crate::error::Error::Corrupt
//! [`Error::UnsupportedVersion`]: crate::error::Error::UnsupportedVersion

mod block;
mod bloom;
mod builder;
mod format;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod fuzz;
mod reader;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{SeqNo, UnixMillis};

pub use builder::SegmentBuilder;
pub use format::{FORMAT_V1, FORMAT_VERSION, MAGIC, SUPPORTED_VERSIONS, is_supported_version};
pub use reader::{ReaderStats, SegmentIter, SegmentReader};

/// How segments are written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentOptions {
    /// Target size of a data block in bytes (a block holds at least one entry, so a large
    /// entry makes a larger block). Valid: 1 KiB..=1 MiB. Default: 16 KiB.
    pub block_bytes: usize,
    /// Bloom filter bits per key; 0 disables the filter. Valid: 0..=64. Default: 14
    /// (about 0.2 % false positives: a cold read of a key under a few L0 segments rarely
    /// pays a second object-store GET; design note 0007).
    pub bloom_bits_per_key: u32,
}

impl SegmentOptions {
    /// Smallest valid [`SegmentOptions::block_bytes`].
    pub const MIN_BLOCK_BYTES: usize = 1024;
    /// Largest valid [`SegmentOptions::block_bytes`].
    pub const MAX_BLOCK_BYTES: usize = 1024 * 1024;
    /// Largest valid [`SegmentOptions::bloom_bits_per_key`].
    pub const MAX_BLOOM_BITS_PER_KEY: u32 = 64;

    /// Checks the ranges; [`Error::Config`] names the offending field.
    /// ([`SegmentBuilder::new`] clamps instead of failing.)
    pub fn validate(&self) -> Result<()> {
        if !(Self::MIN_BLOCK_BYTES..=Self::MAX_BLOCK_BYTES).contains(&self.block_bytes) {
            return Err(Error::Config {
                field: "segment.block_bytes",
                reason: format!("{} is outside 1024..=1048576", self.block_bytes),
            });
        }
        if self.bloom_bits_per_key > Self::MAX_BLOOM_BITS_PER_KEY {
            return Err(Error::Config {
                field: "segment.bloom_bits_per_key",
                reason: format!("{} is outside 0..=64", self.bloom_bits_per_key),
            });
        }
        Ok(())
    }
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            block_bytes: 16 * 1024,
            bloom_bits_per_key: 14,
        }
    }
}

/// Summary of a segment, stored in it and kept in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Number of entries (keys).
    pub entries: u64,
    /// How many of them are tombstones.
    pub tombstones: u64,
    /// Smallest key.
    pub min_key: Bytes,
    /// Largest key.
    pub max_key: Bytes,
    /// Smallest sequence number of any entry.
    pub min_seq: SeqNo,
    /// Largest sequence number of any entry.
    pub max_seq: SeqNo,
    /// Earliest expiry of any entry, if some entry expires.
    pub min_expires_at: Option<UnixMillis>,
    /// Size of the segment object in bytes (not stored in the info block: it is the object
    /// size).
    pub size: u64,
}
