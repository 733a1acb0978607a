//! The shard as the storage of one replica (design note 0002): the only way a shard is
//! written.
//!
//! The shard does not sequence writes itself. The node's replication driver owns
//! the [`crate::replica::Replica`] of the shard and uses the shard for:
//!
//! - **applying** committed log records, in seq order, to the memtables
//!   ([`Shard::apply_committed`]); only committed records are ever visible to readers;
//! - **evaluating** a client batch at the leader before it is proposed: the caller reads the
//!   segment-level state of the inspected keys against one view ([`Shard::prepare`], may
//!   touch object storage) and the driver checks the conditions against its overlay of
//!   proposed-but-uncommitted entries, then the memtables of that same view
//!   ([`Shard::evaluate`]); a memtable rotation in between makes it retry;
//! - **installing** a manifest published by the leader ([`Shard::load_latest`] +
//!   [`Shard::install`]): the view's segment lists become the manifest's, memtables whose
//!   records are all flushed are dropped, and a replica that missed records the leader
//!   already flushed jumps over them (they are in the segments);
//! - **leading**: [`Shard::set_leading`] lets the flusher, compactor, TTL sweeper and garbage
//!   collector run with the leader's epoch; a replica that does not lead runs none of them.
//!
//! Why reads stay correct: the memtables always hold a contiguous run of applied records
//! `[s0, applied]`, and the segments hold everything `<= flushed_seq` with
//! `s0 <= flushed_seq + 1`. A flush or install swaps the segment lists of a *published*
//! manifest in, and drops only memtables whose records are all `<= flushed_seq`, so the
//! union never loses a record and the newest memtable holding a key has its newest version.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::block_cache::BlockCache;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, SegmentMeta};
use crate::memtable::Memtable;
use crate::options::EngineOptions;
use crate::replica::Record;
use crate::segment::SegmentReader;
use crate::shard::view::View;
use crate::shard::write::{check, validate};
use crate::shard::{Shard, ShardComponents, ShardInner, open_segment};
use crate::store::ObjStore;
use crate::types::{Condition, Entry, Epoch, SeqNo, ShardId, WriteBatch, WriteOp};
use crate::write_buffers::Trigger;

/// How a replicated shard's TTL sweeper writes: proposes the batch through the replication
/// driver and resolves with its version once committed.
pub type Proposer = Arc<dyn Fn(WriteBatch) -> BoxFuture<'static, Result<SeqNo>> + Send + Sync>;

/// A manifest with readers for its segments, ready for [`Shard::install`].
#[derive(Debug)]
pub struct LoadedManifest {
    /// The manifest.
    pub manifest: Manifest,
    l0: Vec<Arc<SegmentReader>>,
    l1: Vec<Arc<SegmentReader>>,
}

/// A batch with the segment-level state of the keys it inspects, read against one view.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The batch.
    pub batch: WriteBatch,
    view: Arc<View>,
    base: Vec<Option<Entry>>,
}

/// Result of [`Shard::evaluate`].
#[derive(Debug)]
pub enum PrepareOutcome {
    /// The conditions hold: propose `entries` (their seq is assigned by the replica).
    Ready {
        /// The batch as entries.
        entries: Vec<Entry>,
        /// Each op's prior live version when the batch asked for it (else empty).
        prior: Vec<Option<SeqNo>>,
    },
    /// A memtable rotation happened since [`Shard::prepare`]: prepare again.
    Retry,
}

fn inspects(batch: &WriteBatch, op: &WriteOp) -> bool {
    batch.report_prior || op.condition != Condition::None
}

impl Shard {
    /// Opens shard `id` as a replica's storage at `manifest` (the latest one): segments from
    /// it, empty memtables, no epoch claimed, no WAL replay (the replication driver rebuilds
    /// the log and applies committed records). Background tasks start idle: they work only
    /// while [`Shard::set_leading`] says so.
    pub async fn open_replicated(
        id: ShardId,
        opts: Arc<EngineOptions>,
        c: ShardComponents,
        manifest: Manifest,
    ) -> Result<Self> {
        opts.validate()?;
        let loaded = load(&c.store, &c.cache, id, manifest, &View::empty()).await?;
        let flushed = loaded.manifest.flushed_seq;
        let view = View {
            generation: 0,
            active: Arc::new(Memtable::charged_to(c.buffers.clone())),
            frozen: Vec::new(),
            l0: loaded.l0,
            l1: loaded.l1,
        };
        let inner = Arc::new(ShardInner::new(id, opts, c, loaded.manifest, view));
        inner.buffers.register(&inner);
        inner.note_segment_expiries(&inner.manifest.lock().await.clone());
        inner.wal.release(id, flushed);
        tracing::debug!(shard = %id, flushed_seq = %flushed, "replicated shard open");
        Ok(Self::with_tasks(inner))
    }

    /// Sets how the TTL sweeper writes (once; later calls are ignored).
    pub fn set_proposer(&self, p: Proposer) {
        let _ = self.inner.proposer.set(p);
    }

    /// `Some(epoch)`: this replica now serves as leader of `epoch` (flushes, compaction, TTL
    /// sweeps and garbage collection run, publishing manifests with `epoch`). `None`: it does
    /// not lead; background leader work stops at its next step.
    pub fn set_leading(&self, epoch: Option<Epoch>) {
        match epoch {
            Some(e) => {
                self.inner.epoch.store(e.0, Ordering::SeqCst);
                self.inner.leading.store(true, Ordering::SeqCst);
                self.inner.flush_wake.notify_one();
                self.inner.compact_wake.notify_one();
            }
            None => self.inner.leading.store(false, Ordering::SeqCst),
        }
    }

    /// Publishes a manifest carrying this leader's epoch (fencing the flushes and compactions
    /// of every older leader). Call after [`Shard::set_leading`].
    pub async fn publish_epoch(&self) -> Result<()> {
        self.inner.update_manifest(|_| true).await?;
        // A lost race adopted a newer manifest (an older leader was still flushing): make
        // the view hold it before anything relies on it.
        self.inner.install_current().await
    }

    /// Highest log seq applied to the memtables or covered by installed segments.
    #[must_use]
    pub fn applied(&self) -> SeqNo {
        SeqNo(self.inner.applied.load(Ordering::SeqCst))
    }

    /// Changes `(flushed_seq, flushed_epoch)` each time this replica publishes a manifest.
    #[must_use]
    pub fn published(&self) -> tokio::sync::watch::Receiver<(SeqNo, Epoch)> {
        self.inner.flushed_tx.subscribe()
    }

    /// Applies committed records, in seq order, to the memtables; records at or below
    /// [`Shard::applied`] are skipped. Only the replication driver calls this.
    pub fn apply_committed<'a>(&self, records: impl IntoIterator<Item = &'a Record>) {
        let inner = &self.inner;
        let _s = inner.apply_lock.lock();
        let mut view = inner.current_view();
        let mut applied = SeqNo(inner.applied.load(Ordering::SeqCst));
        for r in records {
            if r.seq <= applied {
                continue;
            }
            if r.seq != applied.next() {
                // The log is contiguous above the applied point; a hole is a caller bug.
                tracing::error!(shard = %inner.id, %applied, seq = %r.seq, "apply: records not contiguous");
                debug_assert!(false, "apply_committed: hole before {}", r.seq);
                break;
            }
            for e in &r.entries {
                if let Some(t) = e.expires_at {
                    inner.ttl.note_expiry(t);
                }
                view.active.insert(Entry {
                    seq: r.seq,
                    ..e.clone()
                });
            }
            if let Some(m) = &r.membership {
                view.active.note_membership(m);
            }
            view.active.note_covered(r.seq, r.epoch);
            applied = r.seq;
            inner.applied.store(applied.0, Ordering::SeqCst);
            if view.active.memory_bytes() >= inner.buffers.memtable_bytes() {
                view = inner.rotate(&view);
                inner.buffers.note_trigger(Trigger::MemtableFull);
            }
        }
    }

    /// Reads the latest manifest and opens its segments (reusing readers already open).
    /// `None` if the shard never published one.
    pub async fn load_latest(&self) -> Result<Option<LoadedManifest>> {
        let Some(m) = self.inner.manifests.load_latest().await? else {
            return Ok(None);
        };
        self.inner.load(m).await.map(Some)
    }

    /// Makes `loaded` the view's segment lists if it is newer than what is installed, drops
    /// memtables whose records are all flushed, jumps the applied point to the manifest's
    /// `flushed_seq` if it was behind, and releases the WAL up to it. Returns whether it
    /// installed.
    pub fn install(&self, loaded: LoadedManifest) -> bool {
        self.inner.install(loaded)
    }

    /// First half of a leader's write: validates `batch`, checks backpressure and reads the
    /// segment-level state of the keys it inspects (may call object storage).
    pub async fn prepare(&self, batch: WriteBatch) -> Result<Prepared> {
        let inner = &self.inner;
        validate(&batch, inner.opts.max_value_bytes)?;
        let view = inner.current_view();
        // The node's limit (note 0007): its write buffers, every shard's memtables, past
        // `max_unflushed_bytes`; or a follower of this shard past its own.
        if inner.buffers.over_limit() || inner.refused_by_follower() {
            inner.buffers.note_backpressure();
            return Err(Error::Backpressure {
                shard: inner.id,
                unflushed_bytes: inner.buffers.total_bytes() as u64,
                limit: inner.buffers.limit() as u64,
            });
        }
        let mut base = Vec::with_capacity(batch.ops.len());
        for op in &batch.ops {
            base.push(if inspects(&batch, op) {
                view.seg_get(op.mutation.key()).await?
            } else {
                None
            });
        }
        Ok(Prepared { batch, view, base })
    }

    /// Second half, in the replication driver: evaluates the conditions of `p` against
    /// `overlay` (the newest proposed-but-unapplied entry per key), then the memtables and
    /// segments as of `p`'s view.
    pub fn evaluate(
        &self,
        p: &Prepared,
        overlay: &HashMap<Bytes, Entry>,
    ) -> Result<PrepareOutcome> {
        let inner = &self.inner;
        let reads = p.batch.ops.iter().any(|op| inspects(&p.batch, op));
        if reads && inner.view.read().generation != p.view.generation {
            return Ok(PrepareOutcome::Retry);
        }
        let now = inner.clock.now_millis();
        let mut prior = Vec::new();
        for (op, base) in p.batch.ops.iter().zip(&p.base) {
            if !inspects(&p.batch, op) {
                continue;
            }
            let key = op.mutation.key();
            let cur = overlay
                .get(key)
                .cloned()
                .or_else(|| p.view.mem_get(key))
                .or_else(|| base.clone());
            check(key, op.condition, cur.as_ref(), now)?;
            if p.batch.report_prior {
                prior.push(cur.filter(|e| e.is_live(now)).map(|e| e.seq));
            }
        }
        let mut entries: Vec<Entry> = p
            .batch
            .ops
            .iter()
            .map(|op| op.mutation.clone().into_entry(SeqNo(0)))
            .collect();
        // They live in the log and the memtable until the flush: not as slices of the
        // client's request (a batch of many shards' operations).
        crate::types::compact_entries(&mut entries);
        Ok(PrepareOutcome::Ready { entries, prior })
    }
}

impl ShardInner {
    /// Installs `loaded` if its version is newer than the installed one (else keeps the
    /// segment lists), then drops every memtable whose records are all covered by the
    /// installed flushed prefix, and jumps `applied` to it. The segment lists, the memtables
    /// and `applied` change under the apply lock and the view lock together, so a reader
    /// never sees a batch half from segments and half from an older memtable.
    pub(crate) fn install(&self, loaded: LoadedManifest) -> bool {
        let m = &loaded.manifest;
        let _s = self.apply_lock.lock();
        let mut w = self.view.write();
        let newer = m.version.0 > self.installed_version.load(Ordering::SeqCst);
        let installed = SeqNo(self.flushed_seq.load(Ordering::SeqCst));
        let flushed = if newer {
            m.flushed_seq.max(installed)
        } else {
            installed
        };
        let covered = |mem: &Memtable| mem.covered().0 <= flushed;
        let frozen: Vec<_> = w.frozen.iter().filter(|f| !covered(f)).cloned().collect();
        let drop_active = !w.active.is_empty() && covered(&w.active)
            || SeqNo(self.applied.load(Ordering::SeqCst)) < flushed;
        let dropped = frozen.len() != w.frozen.len() || drop_active;
        if !newer && !dropped {
            return false;
        }
        let (l0, l1) = if newer {
            (loaded.l0, loaded.l1)
        } else {
            (w.l0.clone(), w.l1.clone())
        };
        let next = View {
            generation: w.generation + u64::from(dropped),
            active: if drop_active {
                self.new_memtable()
            } else {
                Arc::clone(&w.active)
            },
            frozen,
            l0,
            l1,
        };
        *w = Arc::new(next);
        drop(w);
        self.applied.fetch_max(flushed.0, Ordering::SeqCst);
        self.flushed_seq.fetch_max(flushed.0, Ordering::SeqCst);
        if newer {
            // Segments may hold expiring entries this replica never applied (it jumped).
            self.note_segment_expiries(m);
            self.installed_version
                .fetch_max(m.version.0, Ordering::SeqCst);
            if let Ok(mut cur) = self.manifest.try_lock()
                && cur.version < m.version
            {
                *cur = m.clone();
            }
        }
        self.wal.release(self.id, flushed);
        self.l0_changed.notify_waiters();
        newer
    }

    /// Tells the TTL sweeper about the earliest expiry in `m`'s segments.
    pub(crate) fn note_segment_expiries(&self, m: &Manifest) {
        for t in m.segments().filter_map(|s| s.min_expires_at) {
            self.ttl.note_expiry(t);
        }
    }

    /// Loads the manifest this writer last published or adopted and installs it.
    pub(crate) async fn install_current(&self) -> Result<()> {
        let latest = self.manifest.lock().await.clone();
        let loaded = self.load(latest).await?;
        self.install(loaded);
        Ok(())
    }

    /// Opens readers for the segments of `m` (reusing those of the current view).
    pub(crate) async fn load(&self, m: Manifest) -> Result<LoadedManifest> {
        load(&self.store, &self.cache, self.id, m, &self.current_view()).await
    }

    /// How background work writes (TTL sweeps): through the replication driver.
    pub(crate) async fn propose(&self, batch: WriteBatch) -> Result<SeqNo> {
        let Some(p) = self.proposer.get() else {
            return Err(Error::NotLeader {
                shard: self.id,
                leader: None,
            });
        };
        p(batch).await
    }
}

/// Opens readers for `m`'s segments, reusing the readers of `view` with the same ids.
async fn load(
    store: &ObjStore,
    cache: &Arc<dyn BlockCache>,
    shard: ShardId,
    m: Manifest,
    view: &View,
) -> Result<LoadedManifest> {
    let open: HashMap<_, _> = view
        .l0
        .iter()
        .chain(view.l1.iter())
        .map(|r| (r.id(), Arc::clone(r)))
        .collect();
    let l0 = open_all(store, cache, shard, &m.l0, &open).await?;
    let l1 = open_all(store, cache, shard, &m.l1, &open).await?;
    Ok(LoadedManifest {
        manifest: m,
        l0,
        l1,
    })
}

async fn open_all(
    store: &ObjStore,
    cache: &Arc<dyn BlockCache>,
    shard: ShardId,
    metas: &[SegmentMeta],
    open: &HashMap<crate::types::SegmentId, Arc<SegmentReader>>,
) -> Result<Vec<Arc<SegmentReader>>> {
    futures::future::try_join_all(metas.iter().map(|meta| async move {
        match open.get(&meta.id) {
            Some(r) => Ok(Arc::clone(r)),
            None => open_segment(store, cache, shard, meta).await,
        }
    }))
    .await
}
