//! Flushing: frozen memtable → L0 segment in object storage → new manifest → WAL release.
//!
//! The worker is woken by memtable rotation. Frozen memtables are flushed oldest first, one
//! at a time (under `flush_lock`), so `flushed_seq` only grows. A failed upload or publish is
//! retried with exponential backoff and jitter until it succeeds or the shard closes; the
//! data stays in the WAL and the memtable meanwhile, and writes turn into backpressure
//! errors once `max_unflushed_bytes` is reached. While L0 is at `l0_max`, flushing waits for
//! compaction, which is what bounds the segments a read may touch.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::SegmentMeta;
use crate::paths;
use crate::segment::{SegmentBuilder, SegmentInfo, SegmentReader};
use crate::shard::merge::MergeIter;
use crate::shard::{ShardInner, open_segment};
use crate::store::Backoff;
use crate::types::{Entry, SegmentId, UnixMillis};

/// Bytes of entries a segment build handles between two yields to the runtime.
const YIELD_EVERY_BYTES: usize = 256 << 10;

/// The background flusher.
pub(crate) async fn worker(shard: Arc<ShardInner>) {
    loop {
        tokio::select! {
            () = shard.shutdown.cancelled() => return,
            () = shard.flush_wake.notified() => {}
        }
        let mut backoff = Backoff::new(Duration::from_millis(50), shard.opts.flush_retry_max);
        loop {
            match shard.flush_frozen().await {
                Ok(()) => break,
                // A replica that stopped leading flushes again when it leads a later epoch.
                Err(e) if e.kind() == ErrorKind::Fenced => break,
                Err(e) if e.kind() == ErrorKind::Closed => return,
                Err(e) => {
                    shard.metrics.flush_errors.inc();
                    let delay = backoff.next_delay();
                    tracing::warn!(shard = %shard.id, error = %e, retry_in = ?delay, "flush failed; retrying");
                    tokio::select! {
                        () = shard.shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

/// Summary of a built segment as the manifest records it.
pub(crate) fn meta_of(id: SegmentId, info: &SegmentInfo) -> SegmentMeta {
    SegmentMeta {
        id,
        size: info.size,
        entries: info.entries,
        tombstones: info.tombstones,
        min_seq: info.min_seq,
        max_seq: info.max_seq,
        min_expires_at: info.min_expires_at,
        min_key: info.min_key.clone(),
        max_key: info.max_key.clone(),
    }
}

impl ShardInner {
    /// The leader's flush of every frozen memtable, oldest first (nothing unless leading).
    /// A memtable knows the log position it covers (barriers insert nothing), the manifest
    /// records the epoch of the record there, a memtable whose records another leader
    /// already flushed is dropped instead of flushed (flushing it would put older versions
    /// in a newer L0 segment), and after each publish the view installs the published
    /// manifest (`ShardInner::install`).
    pub(crate) async fn flush_frozen(&self) -> Result<()> {
        let _g = self.flush_lock.lock().await;
        loop {
            if !self.may_lead() {
                return Ok(());
            }
            if self.current_view().frozen.is_empty() {
                return Ok(());
            }
            self.wait_for_l0_room().await?;
            // One of the node's flush slots (note 0007): the other shards queue.
            let _slot = self.buffers.flush_slot().await;
            let started = std::time::Instant::now();
            // The oldest frozen memtables, as many as fit twice the derived memtable size
            // (at least one), flushed as one segment: a follower that took over may hold
            // several small ones frozen on its leader's requests.
            let frozen = self.current_view().frozen.clone();
            let cap = self.buffers.memtable_bytes().saturating_mul(2);
            let mut batch: Vec<Arc<crate::memtable::Memtable>> = Vec::new();
            let mut bytes = 0;
            for m in frozen.iter().rev() {
                if !batch.is_empty() && bytes + m.memory_bytes() > cap {
                    break;
                }
                bytes += m.memory_bytes();
                batch.push(Arc::clone(m));
            }
            let Some(newest) = batch.last() else {
                return Ok(());
            };
            let (covered, covered_epoch) = newest.covered();
            let flushed_to = batch
                .iter()
                .map(|m| m.covered().0.max(m.max_seq()))
                .max()
                .unwrap_or(covered);
            let known = self.manifest.lock().await.flushed_seq;
            let seg = if flushed_to > known && batch.iter().any(|m| !m.is_empty()) {
                // Newest first: the merge keeps the highest seq per key anyway.
                let mems: Vec<_> = batch.iter().rev().cloned().collect();
                let mut it = MergeIter::over_memtables(&mems);
                self.build_segments(&mut it, usize::MAX, |e, _| Some(e))
                    .await?
                    .pop()
            } else {
                None
            };
            let meta = seg.as_ref().map(|(m, _)| m.clone());
            // The configuration in force at `flushed_to` (design note 0009 §1): the newest
            // configuration record of the batch; with none, the one in force at the
            // manifest's flushed prefix still holds (everything before the batch is flushed,
            // and the batch is a contiguous stretch of the log).
            let membership = batch.iter().rev().find_map(|m| m.membership());
            self.update_manifest(|m| {
                if m.flushed_seq >= flushed_to {
                    return false;
                }
                if let Some(meta) = &meta {
                    m.l0.insert(0, meta.clone());
                }
                m.flushed_seq = flushed_to;
                m.flushed_epoch = covered_epoch;
                if let Some(c) = &membership {
                    m.membership = Some(c.clone());
                }
                true
            })
            .await?;
            // The published (or, after a lost race, adopted) manifest covers the batch:
            // install it like a follower would, which drops them and every other covered
            // memtable and jumps `applied` if another leader flushed past it.
            self.install_current().await?;
            self.metrics.flushes.inc();
            self.buffers.observe_flush(started.elapsed());
            if let Some(m) = &meta {
                self.metrics.flush_bytes.inc_by(m.size);
            }
            self.l0_changed.notify_waiters();
            if self.current_view().l0.len() >= self.opts.l0_compaction_trigger {
                self.compact_wake.notify_one();
            }
        }
    }

    async fn wait_for_l0_room(&self) -> Result<()> {
        loop {
            let changed = self.l0_changed.notified();
            if self.current_view().l0.len() < self.opts.l0_max {
                return Ok(());
            }
            self.compact_wake.notify_one();
            tokio::select! {
                () = self.shutdown.cancelled() => return Err(Error::Closed),
                () = changed => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    /// Builds segments from `it`, passing each entry through `keep(entry, now)` (which may
    /// drop it), splitting outputs at `target` bytes, uploading each under a fresh unique
    /// name, and opening a reader for it.
    pub(crate) async fn build_segments(
        &self,
        it: &mut MergeIter,
        target: usize,
        keep: impl Fn(Entry, UnixMillis) -> Option<Entry>,
    ) -> Result<Vec<(SegmentMeta, Arc<SegmentReader>)>> {
        let now = self.clock.now_millis();
        let mut out = Vec::new();
        let mut b = SegmentBuilder::new(&self.opts.segment);
        let mut since_yield = 0usize;
        while let Some(e) = it.next().await? {
            let Some(e) = keep(e, now) else { continue };
            b.add(&e)?;
            // The node's runtime may have one worker: let requests run between chunks of
            // entries rather than after the whole segment (note 0007).
            since_yield += e.data_len() + 64;
            if since_yield >= YIELD_EVERY_BYTES {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
            if b.approx_size() >= target {
                let full = std::mem::replace(&mut b, SegmentBuilder::new(&self.opts.segment));
                out.push(self.upload(full).await?);
            }
        }
        if b.entries() > 0 {
            out.push(self.upload(b).await?);
        }
        Ok(out)
    }

    async fn upload(&self, b: SegmentBuilder) -> Result<(SegmentMeta, Arc<SegmentReader>)> {
        // Checksums and the bloom filter of a whole segment: on a blocking thread.
        let (bytes, info) = tokio::task::spawn_blocking(move || b.finish())
            .await
            .map_err(|_| Error::Invariant {
                what: "segment build task panicked",
            })??;
        let id = SegmentId::random();
        self.buffers.pace(bytes.len()).await;
        self.store.put(&paths::segment(self.id, id), bytes).await?;
        let meta = meta_of(id, &info);
        let reader = open_segment(&self.store, &self.cache, self.id, &meta).await?;
        Ok((meta, reader))
    }
}
