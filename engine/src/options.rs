//! Engine settings: plain serializable data with defaults. Components (object store, clock,
//! block cache, WAL) are injected separately when a shard is opened.
//!
//! ```toml
//! [engine]
//! memtable_bytes = 67108864        # freeze and flush the memtable after 64 MiB of writes
//! max_unflushed_bytes = 536870912  # writes get a backpressure error past 512 MiB unflushed
//! max_value_bytes = 1048576
//! l0_compaction_trigger = 4
//! l0_max = 12
//! target_segment_bytes = 67108864
//! obsolete_grace = "5m"
//! orphan_min_age = "10m"
//! manifest_keep = 20
//! ttl_sweep_interval = "1s"
//! ttl_max_deletes_per_sec = 1000
//! flush_retry_max = "10s"
//! [engine.segment]
//! block_bytes = 16384
//! bloom_bits_per_key = 10
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::segment::SegmentOptions;

/// Settings of every shard of a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// Bytes written to the active memtable (overwrites of a key included: the WAL keeps
    /// them until the flush) at which it is frozen and flushed. Default: 64 MiB.
    pub memtable_bytes: usize,
    /// Bound on memtable bytes not yet in object storage; writes past it get a
    /// backpressure error (object storage slow or down). Default: 512 MiB.
    pub max_unflushed_bytes: usize,
    /// Largest value accepted. Default: 1 MiB.
    pub max_value_bytes: usize,
    /// Segment block and bloom filter settings.
    pub segment: SegmentOptions,
    /// Number of L0 segments that triggers a compaction. Default: 4.
    pub l0_compaction_trigger: usize,
    /// Hard bound on L0 segments: flushes wait for compaction past it, which bounds the
    /// number of segments a read touches to `l0_max + 1`. Default: 12.
    pub l0_max: usize,
    /// Size at which compaction splits its output segments. Default: 64 MiB.
    pub target_segment_bytes: usize,
    /// How long a segment replaced by compaction stays readable before it is deleted.
    /// Default: 5m.
    #[serde(with = "humantime_serde")]
    pub obsolete_grace: Duration,
    /// Minimum age of an unreferenced segment before garbage collection deletes it as an
    /// orphan. A segment is unreferenced for a moment between its upload and the manifest
    /// publish, possibly by another (newer) writer of the shard, so this must exceed any
    /// upload-to-publish delay. Default: 10m.
    #[serde(with = "humantime_serde")]
    pub orphan_min_age: Duration,
    /// Manifest versions kept in object storage. Default: 20.
    pub manifest_keep: usize,
    /// How often the TTL sweeper looks for expired entries. Default: 1s.
    #[serde(with = "humantime_serde")]
    pub ttl_sweep_interval: Duration,
    /// Rate limit of the TTL sweeper's deletes. Default: 1000/s.
    pub ttl_max_deletes_per_sec: u32,
    /// Longest wait between retries of a failed flush upload. Default: 10s.
    #[serde(with = "humantime_serde")]
    pub flush_retry_max: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            memtable_bytes: 64 << 20,
            max_unflushed_bytes: 512 << 20,
            max_value_bytes: 1 << 20,
            segment: SegmentOptions::default(),
            l0_compaction_trigger: 4,
            l0_max: 12,
            target_segment_bytes: 64 << 20,
            obsolete_grace: Duration::from_secs(300),
            orphan_min_age: Duration::from_secs(600),
            manifest_keep: 20,
            ttl_sweep_interval: Duration::from_secs(1),
            ttl_max_deletes_per_sec: 1000,
            flush_retry_max: Duration::from_secs(10),
        }
    }
}

impl EngineOptions {
    /// Rejects settings that cannot work.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: &str| {
            Err(Error::Config {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.memtable_bytes < 4096 {
            return bad("engine.memtable_bytes", "must be at least 4096");
        }
        if self.max_unflushed_bytes < self.memtable_bytes {
            return bad(
                "engine.max_unflushed_bytes",
                "must be at least memtable_bytes",
            );
        }
        if self.l0_compaction_trigger < 2 || self.l0_max < self.l0_compaction_trigger {
            return bad(
                "engine.l0_compaction_trigger",
                "need 2 <= l0_compaction_trigger <= l0_max",
            );
        }
        if self.ttl_max_deletes_per_sec == 0 {
            return bad("engine.ttl_max_deletes_per_sec", "must be at least 1");
        }
        if self.max_value_bytes == 0 || self.max_value_bytes > 64 << 20 {
            return bad("engine.max_value_bytes", "must be in 1..=64 MiB");
        }
        Ok(())
    }
}
