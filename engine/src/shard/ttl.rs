//! TTL sweeping. Reads never return an expired entry, swept or not; the sweeper exists to
//! reclaim space and to make replicas converge, by writing deletes through the replication
//! driver like any write (each conditional on the exact expired version, so a newer write is
//! never removed). Only a leader sweeps.
//!
//! A pass walks the merged view in key order from a cursor, in steps of bounded size, and
//! issues at most `ttl_max_deletes_per_sec` deletes per second. While walking it notes the
//! earliest future expiry it sees; once a pass completes, the next one starts only when that
//! instant (or an earlier expiry written meanwhile) arrives, so an idle shard costs nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::error::{ErrorKind, Result};
use crate::shard::ShardInner;
use crate::shard::merge::MergeIter;
use crate::types::{Condition, EntryKind, Mutation, UnixMillis, WriteBatch};

/// Entries visited per step of the background sweeper.
const STEP: usize = 10_000;

/// When sweeping is next needed.
#[derive(Debug)]
pub(crate) struct TtlState {
    /// Earliest instant at which an entry may be expired and unswept.
    next_due: AtomicU64,
    /// Earliest expiry written since the current pass started.
    written_since_pass: AtomicU64,
    /// Earliest future expiry seen so far by the current pass.
    pass_min: AtomicU64,
    /// Where the background sweeper resumes.
    pub(crate) cursor: parking_lot::Mutex<Option<Bytes>>,
}

impl Default for TtlState {
    fn default() -> Self {
        Self {
            // Nothing due until an expiry is noted: the segments' (at open and at each
            // install, from the manifest's `min_expires_at`) and every applied write's. A
            // shard without expiring entries never walks its data (at a restart, a walk
            // would read every segment from object storage).
            next_due: AtomicU64::new(u64::MAX),
            written_since_pass: AtomicU64::new(u64::MAX),
            pass_min: AtomicU64::new(u64::MAX),
            cursor: parking_lot::Mutex::new(None),
        }
    }
}

impl TtlState {
    /// A write with expiry `t` was applied.
    pub(crate) fn note_expiry(&self, t: UnixMillis) {
        self.next_due.fetch_min(t, Ordering::Relaxed);
        self.written_since_pass.fetch_min(t, Ordering::Relaxed);
    }
}

/// What a sweep pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepOutcome {
    /// Entries visited.
    pub visited: u64,
    /// Expired entries deleted.
    pub deleted: u64,
    /// Whether the pass reached the end of the keyspace.
    pub complete: bool,
}

/// The background sweeper.
pub(crate) async fn worker(shard: Arc<ShardInner>) {
    loop {
        tokio::select! {
            () = shard.shutdown.cancelled() => return,
            () = tokio::time::sleep(shard.opts.ttl_sweep_interval) => {}
        }
        if shard.clock.now_millis() < shard.ttl.next_due.load(Ordering::Relaxed)
            || !shard.may_lead()
        {
            continue;
        }
        match shard.sweep_pass(STEP).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Closed => return,
            // Not leading any more, or a transient failure: the next pass resumes.
            Err(e) => tracing::debug!(shard = %shard.id, error = %e, "ttl sweep step stopped"),
        }
    }
}

impl ShardInner {
    /// Visits up to `budget` entries from the saved cursor, deleting expired ones.
    pub(crate) async fn sweep_pass(&self, budget: usize) -> Result<SweepOutcome> {
        let start_cursor = self.ttl.cursor.lock().clone();
        if start_cursor.is_none() {
            self.ttl
                .written_since_pass
                .store(u64::MAX, Ordering::Relaxed);
            self.ttl.pass_min.store(u64::MAX, Ordering::Relaxed);
        }
        let view = self.current_view();
        let mut it = MergeIter::over_view(&view, start_cursor);
        let mut out = SweepOutcome::default();
        let mut next_expiry = u64::MAX;
        let per_sec = u64::from(self.opts.ttl_max_deletes_per_sec);
        let mut window = tokio::time::Instant::now();
        let mut in_window = 0u64;
        let mut cursor = None;
        loop {
            if out.visited as usize >= budget {
                break;
            }
            let Some(e) = it.next().await? else {
                out.complete = true;
                break;
            };
            out.visited += 1;
            cursor = Some(e.key.clone());
            let now = self.clock.now_millis();
            let Some(t) = e.expires_at else { continue };
            if !matches!(e.kind, EntryKind::Put { .. }) {
                continue;
            }
            if t > now {
                next_expiry = next_expiry.min(t);
                continue;
            }
            if in_window >= per_sec {
                tokio::time::sleep_until(window + Duration::from_secs(1)).await;
                window = tokio::time::Instant::now();
                in_window = 0;
            }
            in_window += 1;
            let batch = WriteBatch::new().op(
                Mutation::Delete { key: e.key.clone() },
                Condition::ExpiredVersion(e.seq),
            );
            match self.propose(batch).await {
                Ok(_) => {
                    out.deleted += 1;
                    self.metrics.ttl_deletes.inc();
                }
                Err(err) if err.kind() == ErrorKind::Conflict => {}
                Err(err) => {
                    *self.ttl.cursor.lock() = Some(e.key);
                    return Err(err);
                }
            }
        }
        self.ttl.pass_min.fetch_min(next_expiry, Ordering::Relaxed);
        if out.complete {
            *self.ttl.cursor.lock() = None;
            let since = self
                .ttl
                .written_since_pass
                .swap(u64::MAX, Ordering::Relaxed);
            let seen = self.ttl.pass_min.swap(u64::MAX, Ordering::Relaxed);
            self.ttl.next_due.store(seen.min(since), Ordering::Relaxed);
        } else {
            *self.ttl.cursor.lock() = cursor;
        }
        Ok(out)
    }
}
