//! A node's storage: one WAL shared by every shard it hosts (one group commit, one fdatasync
//! per group, whichever shards the records belong to), plus the shards themselves.
//!
//! Open replays the WAL once and hands each shard its records; close flushes and closes every
//! shard, then the WAL.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::block_cache::BlockCache;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::Registry;
use crate::options::EngineOptions;
use crate::shard::{Shard, ShardComponents, ShardFigures};
use crate::store::ObjStore;
use crate::types::ShardId;
use crate::wal::{SyncPolicy, TornTail, Wal, WalOptions, WalRecord, WalStats};

/// WAL settings of a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalSettings {
    /// `always` (ack after an fdatasync covering the write; group commit shares it) or
    /// `{ interval = "5ms" }` (ack once written to the OS; fdatasync at most every
    /// interval: survives a process crash, not a power loss). Default: `always`.
    pub sync: SyncPolicy,
    /// Size at which WAL files roll over. Default: 64 MiB.
    pub segment_bytes: u64,
}

impl Default for WalSettings {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::Always,
            segment_bytes: 64 << 20,
        }
    }
}

/// Injected components of a node's storage.
#[derive(Debug, Clone)]
pub struct DbComponents {
    /// Object storage.
    pub store: ObjStore,
    /// Segment block cache.
    pub cache: Arc<dyn BlockCache>,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
}

/// A node's WAL and shards.
#[derive(Debug)]
pub struct Db {
    wal: Wal,
    shards: BTreeMap<ShardId, Shard>,
    torn_tail: Option<TornTail>,
}

impl Drop for Db {
    /// Dropping without [`Db::close`] behaves like a crash after the last acknowledged write:
    /// background work stops, memtables are not flushed, the WAL keeps what it acknowledged.
    fn drop(&mut self) {
        for s in self.shards.values() {
            s.abandon();
        }
        if let Err(e) = self.wal.close() {
            tracing::warn!(error = %e, "closing the WAL on drop failed");
        }
    }
}

impl Db {
    /// Opens the WAL under `wal_dir`, replays it, and opens `shards`.
    pub async fn open(
        wal_dir: PathBuf,
        wal: &WalSettings,
        engine: EngineOptions,
        c: DbComponents,
        shards: impl IntoIterator<Item = ShardId>,
    ) -> Result<Self> {
        let opts = WalOptions {
            dir: wal_dir,
            sync: wal.sync,
            segment_bytes: wal.segment_bytes,
            ..WalOptions::default()
        };
        Self::open_with(opts, engine, c, shards).await
    }

    /// Like [`Db::open`] with full WAL options (fault injection in tests).
    pub async fn open_with(
        wal: WalOptions,
        engine: EngineOptions,
        c: DbComponents,
        shards: impl IntoIterator<Item = ShardId>,
    ) -> Result<Self> {
        engine.validate()?;
        let (wal, recovery) = tokio::task::spawn_blocking(move || Wal::open(wal))
            .await
            .map_err(|_| Error::Invariant {
                what: "WAL open task panicked",
            })??;
        if let Some(t) = &recovery.torn_tail {
            tracing::warn!(file = %t.file.display(), offset = t.offset, dropped = t.dropped_bytes, "WAL torn tail truncated");
        }
        let opts = Arc::new(engine);
        let records: Arc<[WalRecord]> = recovery.records.into();
        let opened = futures::future::try_join_all(shards.into_iter().map(|id| {
            let comps = ShardComponents {
                store: c.store.clone(),
                cache: Arc::clone(&c.cache),
                clock: Arc::clone(&c.clock),
                wal: wal.clone(),
            };
            let opts = Arc::clone(&opts);
            let records = Arc::clone(&records);
            async move { Shard::open(id, opts, comps, &records).await }
        }))
        .await?;
        Ok(Self {
            wal,
            shards: opened.into_iter().map(|s| (s.id(), s)).collect(),
            torn_tail: recovery.torn_tail,
        })
    }

    /// The shard `id`, if this node hosts it.
    #[must_use]
    pub fn shard(&self, id: ShardId) -> Option<&Shard> {
        self.shards.get(&id)
    }

    /// Every hosted shard.
    pub fn shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.values()
    }

    /// Registers the WAL's and the shards' figures into `registry` (the object store and
    /// the block cache register their own: whoever built them knows whether they are
    /// shared).
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.wal.register_metrics(registry);
        registry.register_collector(Box::new(ShardFigures::new(self.shards())));
    }

    /// WAL counters.
    #[must_use]
    pub fn wal_stats(&self) -> WalStats {
        self.wal.stats()
    }

    /// The torn tail found (and truncated) when the WAL was opened, if any.
    #[must_use]
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    /// Closes every shard (flushing within `flush_timeout` each) and then the WAL.
    pub async fn close(&self, flush_timeout: Duration) -> Result<()> {
        let mut first_err = None;
        let closes = self.shards.values().map(|s| s.close(flush_timeout));
        for r in futures::future::join_all(closes).await {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || wal.close())
            .await
            .map_err(|_| Error::Invariant {
                what: "WAL close task panicked",
            })??;
        first_err.map_or(Ok(()), Err)
    }
}
