//! Engine settings: plain serializable data with defaults. Components (object store, clock,
//! block cache, WAL) are injected separately when a shard is opened.
//!
//! ```toml
//! [engine]
//! write_buffer_bytes = 268435456   # the node's memtables: past 256 MiB the largest flush
//! max_unflushed_bytes = 536870912  # the node's writes get a backpressure error past 512 MiB
//! flush_concurrency = 2
//! compaction_concurrency = 1
//! background_bytes_per_sec = 67108864
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
//! bloom_bits_per_key = 14
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::segment::SegmentOptions;

/// Settings of the storage of a node and of every shard it hosts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// The node's memory for write buffers: the memtables of every shard it hosts, active and
    /// frozen, leader and follower copies alike, counted with the overwritten versions the
    /// replication log keeps until the flush and their index structures. Past it the largest
    /// memtables are frozen and flushed (a shard this node follows asks its leader); each
    /// shard's memtable is also frozen at `2 × write_buffer_bytes / shards hosted` (4 KiB to
    /// 64 MiB). Design note 0007. Default: 256 MiB.
    pub write_buffer_bytes: usize,
    /// The node's limit on write buffers not yet in object storage (object storage slow or
    /// down): past it, writes to the shards it leads get a backpressure error (503), and it
    /// tells the leaders of the shards it follows to refuse writes too. At least
    /// `write_buffer_bytes`. Default: 512 MiB.
    pub max_unflushed_bytes: usize,
    /// Flushes (memtable → L0 segment) that run at once on the node; the other shards wait
    /// (`tierkv_flush_queue`). Each holds one segment in memory while it uploads. Default: 2.
    pub flush_concurrency: usize,
    /// Compactions that run at once on the node (`tierkv_compaction_queue`). Each holds one
    /// output segment (`target_segment_bytes`) in memory. Default: 1.
    pub compaction_concurrency: usize,
    /// Pace of the node's flush and compaction uploads together, in bytes per second (a token
    /// bucket with a one-second burst), so that background I/O does not starve the WAL's.
    /// Default: 64 MiB/s.
    pub background_bytes_per_sec: u64,
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
            write_buffer_bytes: 256 << 20,
            max_unflushed_bytes: 512 << 20,
            flush_concurrency: 2,
            compaction_concurrency: 1,
            background_bytes_per_sec: 64 << 20,
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

/// Smallest per-shard memtable size the budget derives (note 0007).
pub const MIN_MEMTABLE_BYTES: usize = 4 << 10;
/// Largest per-shard memtable size the budget derives.
pub const MAX_MEMTABLE_BYTES: usize = 64 << 20;

impl EngineOptions {
    /// The size at which each of `hosted` shards freezes its memtable:
    /// `2 × write_buffer_bytes / hosted`, clamped to 4 KiB–64 MiB. Derived from the node's
    /// budget, the same on every replica of a cluster configured alike, so follower copies
    /// freeze near the log positions their leader's does (note 0007).
    #[must_use]
    pub fn memtable_bytes(&self, hosted: usize) -> usize {
        (self.write_buffer_bytes.saturating_mul(2) / hosted.max(1))
            .clamp(MIN_MEMTABLE_BYTES, MAX_MEMTABLE_BYTES)
    }

    /// Rejects settings that cannot work.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: &str| {
            Err(Error::Config {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.write_buffer_bytes < 4096 {
            return bad("engine.write_buffer_bytes", "must be at least 4096");
        }
        if self.max_unflushed_bytes < self.write_buffer_bytes {
            return bad(
                "engine.max_unflushed_bytes",
                "must be at least engine.write_buffer_bytes",
            );
        }
        if self.flush_concurrency == 0 || self.compaction_concurrency == 0 {
            return bad(
                "engine.flush_concurrency",
                "flush_concurrency and compaction_concurrency must be at least 1",
            );
        }
        if self.background_bytes_per_sec < 1 << 20 {
            return bad(
                "engine.background_bytes_per_sec",
                "must be at least 1 MiB/s",
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
