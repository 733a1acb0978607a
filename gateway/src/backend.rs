//! The storage seam ([`Backend`]) and its single-process implementation ([`LocalBackend`]).
//!
//! The gateway speaks to shards only through [`Backend`]: today every shard is in this
//! process ([`LocalBackend`] over a [`Db`]); the replicated cluster will implement the same
//! trait by RPC to shard owners.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tierkv_engine::db::Db;
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
}

/// A backend over the shards of a [`Db`] in this process.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    db: Arc<Db>,
    store: ObjStore,
    shard_count: u32,
}

impl LocalBackend {
    /// A backend over `db`, which must host shards `0..shard_count`; `store` is the one
    /// `db` was opened with (for readiness). The process registers `db`'s figures where it
    /// serves them (`Db::register_metrics`).
    #[must_use]
    pub fn new(db: Arc<Db>, store: ObjStore, shard_count: u32) -> Self {
        Self {
            db,
            store,
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
}
