//! The storage seam ([`Backend`]).
//!
//! The gateway speaks to shards only through [`Backend`]: the cluster client
//! ([`crate::cluster::ClusterBackend`]) implements it by RPC to the shards' leaders, and
//! `tierkv serve` in process over its one-replica node (the binary's `local` module).

use async_trait::async_trait;
use bytes::Bytes;
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
}
