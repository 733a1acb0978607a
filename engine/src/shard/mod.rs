//! A shard: one slice of the keyspace with its own memtables, segments and manifest,
//! sharing the node's WAL. It is a replica's storage: the replication driver
//! (`node/src/driver/`) is its only writer (design notes 0002, 0003; `replicated.rs`).
//!
//! # Lifecycle
//!
//! *Open* ([`Shard::open_replicated`]): open the segments of the latest manifest; memtables
//! start empty, no epoch is claimed and nothing is replayed (the driver rebuilds the log
//! from the WAL and applies committed records). Then three background tasks start, idle
//! until the replica leads ([`Shard::set_leading`]):
//! - the *flusher* (woken by memtable rotation) writes frozen memtables as L0 segments and
//!   publishes them; uploads and publishes retry with backoff and jitter, forever, while
//!   writes keep landing in WAL + memtable up to `max_unflushed_bytes`;
//! - the *compactor* (woken when L0 reaches its trigger, and on a timer for garbage
//!   collection) merges L0 into the sorted run and deletes replaced segments after the grace
//!   period;
//! - the *TTL sweeper* deletes expired entries through the replication driver at a bounded
//!   rate.
//!
//! *Close*: refuse background work, flush the memtables if leading (bounded in time:
//! anything unflushed stays in the WAL and is replayed on the next open), stop the tasks.
//!
//! A publish that loses to a newer epoch's manifest fails as `Fenced` for that attempt only:
//! the replica may lead a later epoch. Reads keep working whatever the role.

mod compact;
mod flush;
mod merge;
mod metrics;
mod pressure;
mod replicated;
mod ttl;
mod view;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::block_cache::BlockCache;
use crate::clock::Clock;
use crate::error::{Error, InvalidReason, Result};
use crate::manifest::{Manifest, ManifestStore, Published, SegmentMeta};
use crate::metrics::Counter;
use crate::options::EngineOptions;
use crate::paths;
use crate::segment::SegmentReader;
use crate::store::ObjStore;
use crate::types::{Entry, Epoch, SeqNo, ShardId};
use crate::wal::Wal;
use crate::write_buffers::WriteBuffers;

use merge::MergeIter;
use view::View;

pub use metrics::ShardFigures;
pub use pressure::FlushRequester;
pub use replicated::{LoadedManifest, PrepareOutcome, Prepared, Proposer};
pub use ttl::SweepOutcome;

/// Components a shard is built from (injected, not configured).
#[derive(Debug, Clone)]
pub struct ShardComponents {
    /// Where segments and manifests live.
    pub store: ObjStore,
    /// Block cache for segment reads.
    pub cache: Arc<dyn BlockCache>,
    /// Wall clock (TTL).
    pub clock: Arc<dyn Clock>,
    /// The node's write-ahead log.
    pub wal: Wal,
    /// The node's write buffers: every memtable of the node charges them (note 0007).
    pub buffers: WriteBuffers,
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// Live entries in key order.
    pub entries: Vec<Entry>,
    /// Pass as `start_after` to get the next page; None when there is no more.
    pub next: Option<Bytes>,
}

/// Counters of background work.
#[derive(Debug, Default)]
pub(crate) struct ShardMetrics {
    pub(crate) flushes: Counter,
    pub(crate) flush_bytes: Counter,
    pub(crate) flush_errors: Counter,
    pub(crate) compactions: Counter,
    pub(crate) compaction_bytes: Counter,
    pub(crate) compaction_errors: Counter,
    pub(crate) ttl_deletes: Counter,
    pub(crate) segments_deleted: Counter,
    /// Point reads served (any source).
    pub(crate) point_reads: Counter,
    /// Object-store GETs those reads made (data blocks missing from every cache).
    pub(crate) point_read_gets: Counter,
    /// Point reads that made more than one GET (a bloom filter's false positive).
    pub(crate) point_reads_over_one_get: Counter,
}

/// A point-in-time summary of a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ShardStats {
    pub shard: ShardId,
    pub epoch: Epoch,
    pub applied_seq: SeqNo,
    pub flushed_seq: SeqNo,
    pub memtable_bytes: u64,
    pub frozen_memtable_bytes: u64,
    pub unflushed_bytes: u64,
    pub frozen_memtables: u64,
    pub l0_segments: u64,
    pub l1_segments: u64,
    pub segment_bytes: u64,
    pub flushes: u64,
    pub flush_bytes: u64,
    pub flush_errors: u64,
    pub compactions: u64,
    pub compaction_bytes: u64,
    pub compaction_errors: u64,
    pub ttl_deletes: u64,
    pub segments_deleted: u64,
    pub point_reads: u64,
    pub point_read_gets: u64,
    pub point_reads_over_one_get: u64,
    pub segment_index_bytes: u64,
}

pub(crate) struct ShardInner {
    pub(crate) id: ShardId,
    /// The epoch this replica leads (set when it starts serving), used for manifest
    /// publishes.
    pub(crate) epoch: AtomicU64,
    /// Whether this replica may do leader work: flushing, compaction, TTL sweeps and garbage
    /// collection run only while it is set.
    pub(crate) leading: AtomicBool,
    /// Highest seq applied to the memtables or covered by installed segments.
    pub(crate) applied: AtomicU64,
    /// How TTL sweeps write (through the replication driver).
    pub(crate) proposer: std::sync::OnceLock<Proposer>,
    /// Version of the manifest whose segment lists the view holds.
    pub(crate) installed_version: AtomicU64,
    /// Every manifest this writer published: `(flushed_seq, flushed_epoch)`.
    pub(crate) flushed_tx: tokio::sync::watch::Sender<(SeqNo, Epoch)>,
    pub(crate) opts: Arc<EngineOptions>,
    pub(crate) store: ObjStore,
    pub(crate) cache: Arc<dyn BlockCache>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) wal: Wal,
    pub(crate) manifests: ManifestStore,
    /// The latest manifest we know; held across the publish so updates are serialized.
    pub(crate) manifest: tokio::sync::Mutex<Manifest>,
    pub(crate) view: RwLock<Arc<View>>,
    /// Held while committed records are applied, manifests installed or the active
    /// memtable rotated: they change the view together with `applied`.
    pub(crate) apply_lock: Mutex<()>,
    pub(crate) flush_lock: tokio::sync::Mutex<()>,
    pub(crate) compact_lock: tokio::sync::Mutex<()>,
    pub(crate) flush_wake: Notify,
    pub(crate) compact_wake: Notify,
    pub(crate) l0_changed: Notify,
    pub(crate) shutdown: CancellationToken,
    pub(crate) closed: AtomicBool,
    pub(crate) flushed_seq: AtomicU64,
    pub(crate) metrics: ShardMetrics,
    pub(crate) ttl: ttl::TtlState,
    /// The node's write buffers.
    pub(crate) buffers: WriteBuffers,
    /// How a follower asks its leader to flush (set by the replication driver).
    pub(crate) flush_requester: std::sync::OnceLock<FlushRequester>,
    /// Flush requests and follower pressure, rate limits and expiries (`pressure.rs`).
    pub(crate) pressure: pressure::PressureState,
}

/// Handle to an open shard; cheap to clone.
#[derive(Clone)]
pub struct Shard {
    inner: Arc<ShardInner>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("id", &self.inner.id)
            .field("epoch", &self.inner.epoch())
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// Starts the background tasks of `inner`.
    fn with_tasks(inner: Arc<ShardInner>) -> Self {
        let tasks = vec![
            tokio::spawn(flush::worker(Arc::clone(&inner))),
            tokio::spawn(compact::worker(Arc::clone(&inner))),
            tokio::spawn(ttl::worker(Arc::clone(&inner))),
        ];
        Self {
            inner,
            tasks: Arc::new(Mutex::new(tasks)),
        }
    }

    /// This shard's id.
    #[must_use]
    pub fn id(&self) -> ShardId {
        self.inner.id
    }

    /// The epoch this replica leads or last led (0 before it ever led).
    #[must_use]
    pub fn epoch(&self) -> Epoch {
        self.inner.epoch()
    }

    /// The live entry of `key`: None if absent, deleted or expired.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        write::validate_key(key)?;
        let view = self.inner.current_view();
        let now = self.inner.clock.now_millis();
        let mut gets = 0;
        let found = view.get_counted(key, &mut gets).await;
        let m = &self.inner.metrics;
        m.point_reads.inc();
        if gets > 0 {
            m.point_read_gets.inc_by(gets);
        }
        if gets > 1 {
            m.point_reads_over_one_get.inc();
        }
        Ok(found?.filter(|e| e.is_live(now)))
    }

    /// Live entries whose key starts with `prefix`, in key order, strictly after
    /// `start_after` when given, at most `limit` of them.
    pub async fn scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<ScanPage> {
        if limit == 0 {
            return Err(Error::invalid(InvalidReason::ZeroLimit));
        }
        let view = self.inner.current_view();
        let now = self.inner.clock.now_millis();
        let mut entries = Vec::new();
        let mut after = start_after
            .filter(|s| *s >= prefix)
            .map(Bytes::copy_from_slice);
        if after.is_none() && !prefix.is_empty() {
            // Keys >= prefix are the prefix itself plus keys > prefix.
            if let Some(e) = view.get(prefix).await?.filter(|e| e.is_live(now)) {
                entries.push(e);
            }
            after = Some(Bytes::copy_from_slice(prefix));
        }
        let mut it = MergeIter::over_view(&view, after);
        let mut more = false;
        while let Some(e) = it.next().await? {
            if !e.key.starts_with(prefix) {
                break;
            }
            if !e.is_live(now) {
                continue;
            }
            if entries.len() == limit {
                more = true;
                break;
            }
            entries.push(e);
        }
        let next = if more {
            entries.last().map(|e| e.key.clone())
        } else {
            None
        };
        Ok(ScanPage { entries, next })
    }

    /// Freezes the active memtable and flushes every frozen memtable now.
    pub async fn flush(&self) -> Result<()> {
        self.inner.rotate_now();
        self.inner.flush_frozen().await
    }

    /// Runs a compaction now if there is anything in L0.
    pub async fn compact(&self) -> Result<bool> {
        self.inner.compact_once().await
    }

    /// Deletes obsolete segments whose grace period has passed and old manifest versions.
    pub async fn collect_garbage(&self) -> Result<usize> {
        self.inner.collect_garbage().await
    }

    /// One full TTL sweep pass from the start of the keyspace (rate-limited like the
    /// background sweeper).
    pub async fn sweep_expired(&self) -> Result<SweepOutcome> {
        *self.inner.ttl.cursor.lock() = None;
        self.inner.sweep_pass(usize::MAX).await
    }

    /// A summary of the shard's state and counters.
    #[must_use]
    pub fn stats(&self) -> ShardStats {
        self.inner.stats()
    }

    /// Stops background work at once, without flushing (what a crash would leave:
    /// acknowledged writes are in the WAL).
    pub fn abandon(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.shutdown.cancel();
    }

    /// Flushes what it can within `flush_timeout` (a leader only), stops background tasks.
    /// Unflushed data stays in the WAL for the next open.
    pub async fn close(&self, flush_timeout: Duration) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if self.inner.may_lead() && self.inner.rotate_now() {
            self.inner
                .buffers
                .note_trigger(crate::write_buffers::Trigger::Shutdown);
        }
        let flushed = match tokio::time::timeout(flush_timeout, self.inner.flush_frozen()).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(shard = %self.inner.id, "flush on close timed out; data stays in the WAL");
                Ok(())
            }
        };
        self.inner.shutdown.cancel();
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        flushed
    }
}

impl ShardInner {
    /// A replica's storage at `manifest` (the latest), reading from `view`: it leads no
    /// epoch yet and everything up to the manifest's `flushed_seq` counts as applied.
    pub(crate) fn new(
        id: ShardId,
        opts: Arc<EngineOptions>,
        c: ShardComponents,
        manifest: Manifest,
        view: View,
    ) -> Self {
        let flushed = manifest.flushed_seq;
        Self {
            id,
            epoch: AtomicU64::new(0),
            leading: AtomicBool::new(false),
            applied: AtomicU64::new(flushed.0),
            proposer: std::sync::OnceLock::new(),
            installed_version: AtomicU64::new(manifest.version.0),
            flushed_tx: tokio::sync::watch::Sender::new((flushed, manifest.flushed_epoch)),
            opts,
            manifests: ManifestStore::new(c.store.clone(), id),
            store: c.store,
            cache: c.cache,
            clock: c.clock,
            wal: c.wal,
            manifest: tokio::sync::Mutex::new(manifest),
            view: RwLock::new(Arc::new(view)),
            apply_lock: Mutex::new(()),
            flush_lock: tokio::sync::Mutex::new(()),
            compact_lock: tokio::sync::Mutex::new(()),
            flush_wake: Notify::new(),
            compact_wake: Notify::new(),
            l0_changed: Notify::new(),
            shutdown: CancellationToken::new(),
            closed: AtomicBool::new(false),
            flushed_seq: AtomicU64::new(flushed.0),
            metrics: ShardMetrics::default(),
            ttl: ttl::TtlState::default(),
            buffers: c.buffers,
            flush_requester: std::sync::OnceLock::new(),
            pressure: pressure::PressureState::default(),
        }
    }

    /// An empty memtable charged to the node's write buffers.
    pub(crate) fn new_memtable(&self) -> Arc<crate::memtable::Memtable> {
        Arc::new(crate::memtable::Memtable::charged_to(self.buffers.clone()))
    }

    pub(crate) fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::SeqCst))
    }

    /// Whether background leader work (flush, compaction, TTL sweeps) may run now.
    pub(crate) fn may_lead(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    pub(crate) fn current_view(&self) -> Arc<View> {
        Arc::clone(&self.view.read())
    }

    /// Read-modify-publishes the manifest with this leader's epoch. `f` edits a copy of the
    /// latest manifest and may refuse (return false) when the change no longer applies, e.g.
    /// after a rebase. Not leading, or losing the create race to a newer epoch, fails this
    /// attempt as `Fenced` (the replica may lead a later epoch).
    pub(crate) async fn update_manifest(
        &self,
        mut f: impl FnMut(&mut Manifest) -> bool,
    ) -> Result<Option<Manifest>> {
        let mut cur = self.manifest.lock().await;
        loop {
            let mut next = cur.clone();
            if !f(&mut next) {
                return Ok(None);
            }
            let epoch = self.epoch();
            if !self.may_lead() || cur.epoch > epoch {
                return Err(self.fenced_error(cur.epoch));
            }
            next.version = crate::types::ManifestVersion(cur.version.0 + 1);
            next.epoch = epoch;
            next.created_at = self.clock.now_millis();
            match self.manifests.publish(&cur, &next).await? {
                Published::Ok => {
                    *cur = next.clone();
                    self.flushed_tx
                        .send_replace((next.flushed_seq, next.flushed_epoch));
                    return Ok(Some(next));
                }
                Published::Lost(latest) => {
                    if latest.epoch > epoch {
                        let current = latest.epoch;
                        *cur = *latest;
                        tracing::warn!(shard = %self.id, ours = %epoch, %current, "fenced by a newer writer");
                        return Err(self.fenced_error(current));
                    }
                    *cur = *latest;
                }
            }
        }
    }

    fn fenced_error(&self, current: Epoch) -> Error {
        let ours = self.epoch();
        Error::Fenced {
            shard: self.id,
            ours,
            current: current.max(ours.next()),
        }
    }

    fn stats(&self) -> ShardStats {
        let view = self.current_view();
        let m = &self.metrics;
        ShardStats {
            shard: self.id,
            epoch: self.epoch(),
            applied_seq: SeqNo(self.applied.load(Ordering::SeqCst)),
            flushed_seq: SeqNo(self.flushed_seq.load(Ordering::Relaxed)),
            memtable_bytes: view.active.memory_bytes() as u64,
            frozen_memtable_bytes: view.frozen.iter().map(|m| m.memory_bytes() as u64).sum(),
            unflushed_bytes: view.unflushed_bytes() as u64,
            frozen_memtables: view.frozen.len() as u64,
            l0_segments: view.l0.len() as u64,
            l1_segments: view.l1.len() as u64,
            segment_bytes: view
                .l0
                .iter()
                .chain(view.l1.iter())
                .map(|s| s.info().size)
                .sum(),
            flushes: m.flushes.get(),
            flush_bytes: m.flush_bytes.get(),
            flush_errors: m.flush_errors.get(),
            compactions: m.compactions.get(),
            compaction_bytes: m.compaction_bytes.get(),
            compaction_errors: m.compaction_errors.get(),
            ttl_deletes: m.ttl_deletes.get(),
            segments_deleted: m.segments_deleted.get(),
            point_reads: m.point_reads.get(),
            point_read_gets: m.point_read_gets.get(),
            point_reads_over_one_get: m.point_reads_over_one_get.get(),
            segment_index_bytes: view
                .l0
                .iter()
                .chain(view.l1.iter())
                .map(|s| s.metadata_bytes() as u64)
                .sum(),
        }
    }
}

/// Opens the reader of a segment listed in the manifest.
pub(crate) async fn open_segment(
    store: &ObjStore,
    cache: &Arc<dyn BlockCache>,
    shard: ShardId,
    m: &SegmentMeta,
) -> Result<Arc<SegmentReader>> {
    let r = SegmentReader::open(
        store.clone(),
        paths::segment(shard, m.id),
        m.id,
        m.size,
        Arc::clone(cache),
    )
    .await?;
    Ok(Arc::new(r))
}

#[cfg(test)]
mod tests;
