//! Compaction and garbage collection.
//!
//! Policy (see also `manifest`): when L0 holds `l0_compaction_trigger` segments, merge all
//! of L0 with the L1 segments overlapping L0's key range into new L1 segments split at
//! `target_segment_bytes`. The output is the bottom level and its inputs are everything
//! older for those keys, so per key only the newest entry survives, and it is dropped
//! entirely when it is a tombstone or expired: nothing older can resurface. Replaced
//! segments move to the manifest's `obsolete` list and are deleted after `obsolete_grace`
//! (readers holding an older view may still be reading them).
//!
//! Garbage collection (on a timer) deletes obsolete segments past their grace period,
//! segments that were uploaded but never published (a crash or failed publish between the
//! two) once they are older than `orphan_min_age` (younger ones may be a newer writer's
//! upload awaiting its publish), and manifest versions beyond the newest `manifest_keep`.
//! A fenced writer collects nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ErrorKind, Result};
use crate::manifest::Obsolete;
use crate::paths;
use crate::shard::ShardInner;
use crate::shard::merge::MergeIter;
use crate::store::Backoff;
use crate::types::SegmentId;

/// The background compactor and garbage collector.
pub(crate) async fn worker(shard: Arc<ShardInner>) {
    let gc_every =
        (shard.opts.obsolete_grace / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut backoff = Backoff::new(Duration::from_millis(100), shard.opts.flush_retry_max);
    loop {
        tokio::select! {
            () = shard.shutdown.cancelled() => return,
            () = shard.compact_wake.notified() => {}
            () = tokio::time::sleep(gc_every) => {}
        }
        if !shard.may_lead() {
            continue;
        }
        while shard.current_view().l0.len() >= shard.opts.l0_compaction_trigger {
            match shard.compact_once().await {
                Ok(_) => {}
                // A replica that stopped leading compacts again when it leads a later epoch.
                Err(e) if e.kind() == ErrorKind::Fenced => break,
                Err(e) if e.kind() == ErrorKind::Closed => return,
                Err(e) => {
                    shard.metrics.compaction_errors.inc();
                    let delay = backoff.next_delay();
                    tracing::warn!(shard = %shard.id, error = %e, retry_in = ?delay, "compaction failed");
                    tokio::select! {
                        () = shard.shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        if let Err(e) = shard.collect_garbage().await {
            match e.kind() {
                ErrorKind::Fenced => continue,
                ErrorKind::Closed => return,
                _ => {}
            }
            tracing::warn!(shard = %shard.id, error = %e, "garbage collection failed");
        }
    }
}

impl ShardInner {
    /// Merges all of L0 with the overlapping part of L1. Returns whether it published.
    pub(crate) async fn compact_once(&self) -> Result<bool> {
        let _g = self.compact_lock.lock().await;
        // One of the node's compaction slots (note 0007): the other shards queue.
        let _slot = self.buffers.compaction_slot().await;
        let started = std::time::Instant::now();
        let view = self.current_view();
        let (Some(lo), Some(hi)) = (
            view.l0.iter().map(|s| s.info().min_key.clone()).min(),
            view.l0.iter().map(|s| s.info().max_key.clone()).max(),
        ) else {
            return Ok(false);
        };
        let l0 = view.l0.clone();
        let l1_in: Vec<_> = view
            .l1
            .iter()
            .filter(|s| s.info().min_key <= hi && lo <= s.info().max_key)
            .cloned()
            .collect();
        let mut it = MergeIter::over_segments(&l0, &l1_in);
        let outputs = self
            .build_segments(&mut it, self.opts.target_segment_bytes, |e, now| {
                e.is_live(now).then_some(e)
            })
            .await?;
        let inputs: HashSet<SegmentId> = l0.iter().chain(l1_in.iter()).map(|s| s.id()).collect();
        let metas: Vec<_> = outputs.iter().map(|(m, _)| m.clone()).collect();
        let now = self.clock.now_millis();
        let published = self
            .update_manifest(|m| {
                let present = m.segments().filter(|s| inputs.contains(&s.id)).count();
                if present != inputs.len() {
                    return false;
                }
                m.l0.retain(|s| !inputs.contains(&s.id));
                m.l1.retain(|s| !inputs.contains(&s.id));
                m.l1.extend(metas.iter().cloned());
                m.l1.sort_by(|a, b| a.min_key.cmp(&b.min_key));
                m.obsolete
                    .extend(inputs.iter().map(|&id| Obsolete { id, since: now }));
                true
            })
            .await?;
        if published.is_none() {
            return Ok(false);
        }
        self.install_current().await?;
        self.l0_changed.notify_waiters();
        self.metrics.compactions.inc();
        self.buffers.observe_compaction(started.elapsed());
        self.metrics
            .compaction_bytes
            .inc_by(metas.iter().map(|m| m.size).sum());
        Ok(true)
    }

    /// Deletes what is no longer referenced; returns the number of segments deleted. Only a
    /// leader collects, and only against the latest manifest: another leader may have
    /// published since its last look (a newer leader owns the shard's objects then, and the
    /// deletion's manifest publish fails as `Fenced`).
    pub(crate) async fn collect_garbage(&self) -> Result<usize> {
        if !self.may_lead() {
            return Ok(0);
        }
        if let Some(latest) = self.manifests.load_latest().await? {
            let mut cur = self.manifest.lock().await;
            if latest.version > cur.version {
                *cur = latest;
            }
        }
        let now = self.clock.now_millis();
        let grace = u64::try_from(self.opts.obsolete_grace.as_millis()).unwrap_or(u64::MAX);
        let m = self.manifest.lock().await.clone();
        let due: HashSet<SegmentId> = m
            .obsolete
            .iter()
            .filter(|o| o.since.saturating_add(grace) <= now)
            .map(|o| o.id)
            .collect();
        for id in &due {
            self.store.delete(&paths::segment(self.id, *id)).await?;
        }
        let mut deleted = due.len();
        if !due.is_empty() {
            self.update_manifest(|m| {
                m.obsolete.retain(|o| !due.contains(&o.id));
                true
            })
            .await?;
        }
        // Orphans: only while no flush or compaction is between upload and publish here.
        // Never wait for the flush lock: a flusher may be waiting for this task to compact.
        if let (Ok(_f), Ok(_c)) = (self.flush_lock.try_lock(), self.compact_lock.try_lock()) {
            let m = self.manifest.lock().await.clone();
            let referenced: HashSet<SegmentId> = m
                .segments()
                .map(|s| s.id)
                .chain(m.obsolete.iter().map(|o| o.id))
                .collect();
            let min_age = u64::try_from(self.opts.orphan_min_age.as_millis()).unwrap_or(u64::MAX);
            let listed = self
                .store
                .list_modified(&paths::segment_prefix(self.id))
                .await?;
            for (key, modified) in listed {
                // Young unreferenced segments may be another writer's upload awaiting its
                // publish; only old ones are orphans.
                let old_enough = now.saturating_sub(modified) >= min_age;
                if let Some(id) = paths::parse_segment(self.id, &key)
                    && !referenced.contains(&id)
                    && old_enough
                {
                    self.store.delete(&key).await?;
                    deleted += 1;
                }
            }
        }
        self.manifests.gc(self.opts.manifest_keep).await?;
        self.metrics.segments_deleted.inc_by(deleted as u64);
        Ok(deleted)
    }
}
