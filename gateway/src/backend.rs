//! The storage seam ([`Backend`]).
//!
//! The gateway speaks to shards only through [`Backend`]: the cluster client
//! ([`crate::cluster::ClusterBackend`]) implements it by RPC to the shards' leaders, and
//! `tierkv serve` in process over its one-replica node (the binary's `local` module).

use async_trait::async_trait;
use bytes::Bytes;
use tierkv_engine::metrics::HistogramSnapshot;
use tierkv_engine::shard::ScanPage;
use tierkv_engine::types::{Entry, ReadConsistency, SeqNo, ShardId, WriteBatch};

/// What the gateway needs from storage.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Number of shards; keys are routed with `routing::shard_for(key, shard_count)`.
    fn shard_count(&self) -> u32;
    /// The live entry of engine key `key` in `shard`, read at `consistency`.
    async fn get(
        &self,
        shard: ShardId,
        key: Bytes,
        consistency: ReadConsistency,
    ) -> Result<Option<Entry>, tierkv_engine::Error>;
    /// Applies `batch` atomically in `shard`; returns its version and, when
    /// `batch.report_prior` is set, each op's prior live version (else empty).
    async fn write(
        &self,
        shard: ShardId,
        batch: WriteBatch,
    ) -> Result<(SeqNo, Vec<Option<SeqNo>>), tierkv_engine::Error>;
    /// Live entries of `shard` under engine prefix `prefix`, after `start_after`, read at
    /// `consistency`.
    async fn scan(
        &self,
        shard: ShardId,
        prefix: Bytes,
        start_after: Option<Bytes>,
        limit: usize,
        consistency: ReadConsistency,
    ) -> Result<ScanPage, tierkv_engine::Error>;
    /// Ok when storage is open and object storage answers; else why not.
    async fn ready(&self) -> Result<(), String>;
    /// Aggregated engine figures for `/metrics`; None when the storage is not in this
    /// process (a gateway in front of nodes, which export their own).
    fn engine_metrics(&self) -> Option<EngineMetrics>;
    /// Appends the backend's own metric families (Prometheus text) to `/metrics`.
    fn render_metrics(&self, _out: &mut String) {}
}

/// Engine figures exported on `/metrics`, summed over the shards (and nodes) behind a
/// backend.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineMetrics {
    /// Bytes in active memtables.
    pub memtable_bytes: u64,
    /// Bytes in memtables not yet flushed to object storage.
    pub unflushed_bytes: u64,
    /// Frozen memtables waiting for flush.
    pub frozen_memtables: u64,
    /// Bytes in live WAL files.
    pub wal_bytes: u64,
    /// Live WAL files.
    pub wal_files: u64,
    /// WAL records appended since start.
    pub wal_appends: u64,
    /// WAL fdatasync calls since start.
    pub wal_syncs: u64,
    /// Whether the WAL is poisoned (1) or not (0).
    pub wal_poisoned: u64,
    /// WAL fdatasync latency.
    pub fsync_latency: HistogramSnapshot,
    /// Live segments (L0 + L1).
    pub segments: u64,
    /// Bytes in live segments.
    pub segment_bytes: u64,
    /// Memtable flushes completed.
    pub flushes: u64,
    /// Bytes flushed.
    pub flush_bytes: u64,
    /// Failed flush attempts.
    pub flush_errors: u64,
    /// Compactions completed.
    pub compactions: u64,
    /// Bytes written by compactions.
    pub compaction_bytes: u64,
    /// Failed compactions.
    pub compaction_errors: u64,
    /// Entries deleted by the TTL sweeper.
    pub ttl_deletes: u64,
    /// Obsolete segments deleted.
    pub segments_deleted: u64,
    /// Shards fenced by a newer writer.
    pub fenced_shards: u64,
    /// Object-store call latency.
    pub store_latency: HistogramSnapshot,
    /// Failed object-store calls.
    pub store_errors: u64,
    /// Bytes written to object storage.
    pub store_bytes_put: u64,
    /// Bytes read from object storage.
    pub store_bytes_get: u64,
    /// Block-cache hits.
    pub cache_hits: u64,
    /// Block-cache misses.
    pub cache_misses: u64,
}
