//! The storage seam ([`Backend`]) and its single-process implementation ([`LocalBackend`]).
//!
//! The gateway speaks to shards only through [`Backend`]: today every shard is in this
//! process ([`LocalBackend`] over a [`Db`]); the replicated cluster will implement the same
//! trait by RPC to shard owners.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tierkv_engine::block_cache::BlockCache;
use tierkv_engine::db::Db;
use tierkv_engine::metrics::HistogramSnapshot;
use tierkv_engine::shard::{ScanPage, Shard};
use tierkv_engine::store::ObjStore;
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

/// A backend over the shards of a [`Db`] in this process.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    db: Arc<Db>,
    store: ObjStore,
    cache: Arc<dyn BlockCache>,
    shard_count: u32,
}

impl LocalBackend {
    /// A backend over `db`, which must host shards `0..shard_count`; `store` and `cache` are
    /// the ones `db` was opened with (for readiness and metrics).
    #[must_use]
    pub fn new(db: Arc<Db>, store: ObjStore, cache: Arc<dyn BlockCache>, shard_count: u32) -> Self {
        Self {
            db,
            store,
            cache,
            shard_count,
        }
    }

    fn shard(&self, id: ShardId) -> Result<&Shard, tierkv_engine::Error> {
        self.db.shard(id).ok_or(tierkv_engine::Error::Invariant {
            what: "a routed shard is not hosted by this node",
        })
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn shard_count(&self) -> u32 {
        self.shard_count
    }

    async fn get(
        &self,
        shard: ShardId,
        key: Bytes,
        _consistency: ReadConsistency,
    ) -> Result<Option<Entry>, tierkv_engine::Error> {
        // One copy of each shard: every level reads it.
        self.shard(shard)?.get(&key).await
    }

    async fn write(
        &self,
        shard: ShardId,
        batch: WriteBatch,
    ) -> Result<(SeqNo, Vec<Option<SeqNo>>), tierkv_engine::Error> {
        self.shard(shard)?.write_with_prior(batch).await
    }

    async fn scan(
        &self,
        shard: ShardId,
        prefix: Bytes,
        start_after: Option<Bytes>,
        limit: usize,
        _consistency: ReadConsistency,
    ) -> Result<ScanPage, tierkv_engine::Error> {
        self.shard(shard)?
            .scan(&prefix, start_after.as_deref(), limit)
            .await
    }

    async fn ready(&self) -> Result<(), String> {
        if self.db.shards().count() < self.shard_count as usize {
            return Err("not every shard is open".into());
        }
        if self.db.wal_stats().poisoned {
            return Err("the WAL is poisoned".into());
        }
        // A cheap call that proves object storage answers.
        self.store
            .list(tierkv_engine::paths::READY_PROBE_PREFIX, None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn engine_metrics(&self) -> Option<EngineMetrics> {
        let wal = self.db.wal_stats();
        let store = self.store.metrics();
        let cache = self.cache.stats();
        let mut m = EngineMetrics {
            wal_bytes: wal.bytes,
            wal_files: wal.files,
            wal_appends: wal.appends,
            wal_syncs: wal.syncs,
            wal_poisoned: u64::from(wal.poisoned),
            fsync_latency: wal.sync_latency,
            store_latency: store.latency,
            store_errors: store.errors,
            store_bytes_put: store.bytes_put,
            store_bytes_get: store.bytes_get,
            cache_hits: cache.hits,
            cache_misses: cache.misses,
            ..EngineMetrics::default()
        };
        for s in self.db.shards() {
            let st = s.stats();
            m.memtable_bytes += st.memtable_bytes;
            m.unflushed_bytes += st.unflushed_bytes;
            m.frozen_memtables += st.frozen_memtables;
            m.segments += st.l0_segments + st.l1_segments;
            m.segment_bytes += st.segment_bytes;
            m.flushes += st.flushes;
            m.flush_bytes += st.flush_bytes;
            m.flush_errors += st.flush_errors;
            m.compactions += st.compactions;
            m.compaction_bytes += st.compaction_bytes;
            m.compaction_errors += st.compaction_errors;
            m.ttl_deletes += st.ttl_deletes;
            m.segments_deleted += st.segments_deleted;
            m.fenced_shards += u64::from(st.fenced);
        }
        Some(m)
    }
}
