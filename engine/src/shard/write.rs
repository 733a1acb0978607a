//! The write path: validate → evaluate conditions → take the next sequence number and append
//! to the WAL (both under the sequencer lock, so WAL order = sequence order) → wait until the
//! record is durable → apply every durable pending batch to the memtable in sequence order →
//! answer with the version.
//!
//! A write becomes visible to readers only once it is durable and applied, so a read never
//! sees data that could still be lost. Conditions are evaluated against everything already
//! sequenced, including batches still waiting for their fsync: if such a batch later fails,
//! the WAL is poisoned and every later batch fails with it, so no decision is based on a
//! write that is lost while a later one survives.
//!
//! A condition that fails because of a batch still waiting for its fsync is answered only
//! once that batch is applied (or the WAL fails): answered at once, a concurrent read could
//! still return the value the failure says is gone.
//!
//! Conditional writes read segments *before* taking the lock (object storage may be slow)
//! and re-check the memtables and the pending overlay under it; `View::generation` tells whether a
//! memtable rotation happened in between, in which case the read is retried.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::error::{Error, InvalidReason, Result};
use crate::memtable::Memtable;
use crate::shard::ShardInner;
use crate::shard::view::View;
use crate::types::{
    Condition, Entry, MAX_CONTENT_TYPE_LEN, MAX_KEY_LEN, Mutation, SeqNo, UnixMillis, WriteBatch,
};
use crate::wal::WalRecord;

/// Sequence assignment and batches that are in the WAL pipeline but not yet applied.
#[derive(Debug)]
pub(crate) struct Sequencer {
    pub(crate) next_seq: SeqNo,
    pending: VecDeque<(SeqNo, Vec<Entry>)>,
    /// Newest pending entry per key, for condition checks.
    pending_keys: HashMap<Bytes, Entry>,
}

impl Sequencer {
    pub(crate) fn new(next_seq: SeqNo) -> Self {
        Self {
            next_seq,
            pending: VecDeque::new(),
            pending_keys: HashMap::new(),
        }
    }
}

/// Checks a key against the data model's limits.
pub(crate) fn validate_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(InvalidReason::KeyEmpty));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(InvalidReason::KeyTooLong));
    }
    Ok(())
}

pub(crate) fn validate(batch: &WriteBatch, max_value: usize) -> Result<()> {
    if batch.ops.is_empty() {
        return Err(Error::invalid(InvalidReason::BatchEmpty));
    }
    let mut seen = HashSet::with_capacity(batch.ops.len());
    for op in &batch.ops {
        validate_key(op.mutation.key())?;
        if let Mutation::Put {
            value,
            content_type,
            ..
        } = &op.mutation
        {
            if value.len() > max_value {
                return Err(Error::invalid(InvalidReason::ValueTooLarge));
            }
            if content_type
                .as_ref()
                .is_some_and(|c| c.len() > MAX_CONTENT_TYPE_LEN)
            {
                return Err(Error::invalid(InvalidReason::ContentTypeTooLong));
            }
        }
        if !seen.insert(op.mutation.key()) {
            return Err(Error::invalid(InvalidReason::DuplicateKey));
        }
    }
    Ok(())
}

/// Whether `cond` holds for the key's newest entry `cur` at `now`.
pub(crate) fn check(
    key: &Bytes,
    cond: Condition,
    cur: Option<&Entry>,
    now: UnixMillis,
) -> Result<()> {
    let live = cur.filter(|e| e.is_live(now)).map(|e| e.seq);
    let ok = match cond {
        Condition::None => true,
        Condition::MustNotExist => live.is_none(),
        Condition::MustExist => live.is_some(),
        Condition::VersionIs(v) => live == Some(v),
        Condition::ExpiredVersion(v) => cur.is_some_and(|e| e.seq == v && e.is_expired(now)),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::ConditionFailed {
            key: key.clone(),
            expected: cond,
            actual: live,
        })
    }
}

impl ShardInner {
    fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        if self.fenced.load(Ordering::SeqCst) {
            return Err(self.fenced_error(self.epoch()));
        }
        if self.poisoned.load(Ordering::SeqCst) || self.wal.is_poisoned() {
            return Err(Error::WalPoisoned { op: "fdatasync" });
        }
        Ok(())
    }

    /// Applies a batch atomically; returns its version.
    pub(crate) async fn write(&self, batch: WriteBatch) -> Result<SeqNo> {
        if self.replicated {
            return self.propose(batch).await;
        }
        self.write_with_prior(batch).await.map(|(seq, _)| seq)
    }

    /// Applies a batch atomically; returns its version and, if the batch asked for it
    /// (`report_prior`), each op's prior live version (in op order; otherwise empty).
    pub(crate) async fn write_with_prior(
        &self,
        batch: WriteBatch,
    ) -> Result<(SeqNo, Vec<Option<SeqNo>>)> {
        if self.replicated {
            // Replicated shards are written through the replication driver.
            return Err(Error::NotLeader {
                shard: self.id,
                leader: None,
            });
        }
        self.check_writable()?;
        validate(&batch, self.opts.max_value_bytes)?;
        let unflushed = self.current_view().unflushed_bytes();
        if unflushed > self.opts.max_unflushed_bytes {
            self.flush_wake.notify_one();
            return Err(Error::Backpressure {
                shard: self.id,
                unflushed_bytes: unflushed as u64,
                limit: self.opts.max_unflushed_bytes as u64,
            });
        }
        let inspects =
            |op: &crate::types::WriteOp| batch.report_prior || op.condition != Condition::None;
        let reads = batch.ops.iter().any(inspects);
        let mut prior = Vec::new();
        let outcome = loop {
            prior.clear();
            let view = self.current_view();
            let mut base = Vec::with_capacity(batch.ops.len());
            for op in &batch.ops {
                base.push(if inspects(op) {
                    view.seg_get(op.mutation.key()).await?
                } else {
                    None
                });
            }
            let mut s = self.seq.lock();
            if reads && self.view.read().generation != view.generation {
                continue;
            }
            let now = self.clock.now_millis();
            let mut failed = None;
            for (op, base) in batch.ops.iter().zip(base) {
                if !inspects(op) {
                    continue;
                }
                let key = op.mutation.key();
                let pending = s.pending_keys.get(key).cloned();
                let from_pending = pending.as_ref().map(|e| e.seq);
                let cur = pending.or_else(|| view.mem_get(key)).or(base);
                if let Err(e) = check(key, op.condition, cur.as_ref(), now) {
                    failed = Some((from_pending, e));
                    break;
                }
                if batch.report_prior {
                    prior.push(cur.filter(|e| e.is_live(now)).map(|e| e.seq));
                }
            }
            if let Some(f) = failed {
                break Err(f);
            }
            let seq = s.next_seq;
            let entries: Vec<Entry> = batch
                .ops
                .iter()
                .map(|op| op.mutation.clone().into_entry(seq))
                .collect();
            let durable = self.wal.append(&WalRecord {
                shard: self.id,
                epoch: self.epoch(),
                seq,
                entries: entries.clone(),
            })?;
            s.next_seq = seq.next();
            for e in &entries {
                s.pending_keys.insert(e.key.clone(), e.clone());
            }
            s.pending.push_back((seq, entries));
            break Ok((seq, durable));
        };
        let (seq, durable) = match outcome {
            Ok(sequenced) => sequenced,
            Err((Some(pending), failure)) => {
                return Err(self.fail_once_applied(pending, failure).await);
            }
            Err((None, failure)) => return Err(failure),
        };
        if let Err(e) = durable.wait().await {
            self.poisoned.store(true, Ordering::SeqCst);
            self.applied_changed.notify_waiters();
            tracing::error!(shard = %self.id, error = %e, "WAL failed; shard refuses writes until restart");
            return Err(e);
        }
        self.apply_through(seq);
        Ok((seq, prior))
    }

    /// A condition failed against the pending batch `seq`: the failure is answered once that
    /// batch is applied (answered earlier, a read could still see the value the failure says
    /// is gone); if the WAL fails first, the batch never applies and neither does the
    /// failure: the caller gets the WAL error.
    async fn fail_once_applied(&self, seq: SeqNo, failure: Error) -> Error {
        loop {
            let changed = self.applied_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.applied.load(Ordering::SeqCst) >= seq.0 {
                return failure;
            }
            if self.poisoned.load(Ordering::SeqCst) || self.wal.is_poisoned() {
                return Error::WalPoisoned { op: "fdatasync" };
            }
            changed.await;
        }
    }

    /// Moves every pending batch with seq <= `upto` into the active memtable, in order.
    fn apply_through(&self, upto: SeqNo) {
        let mut s = self.seq.lock();
        let mut view = self.current_view();
        while s.pending.front().is_some_and(|(seq, _)| *seq <= upto) {
            let Some((seq, entries)) = s.pending.pop_front() else {
                break;
            };
            for e in entries {
                if s.pending_keys.get(&e.key).is_some_and(|p| p.seq == seq) {
                    s.pending_keys.remove(&e.key);
                }
                if let Some(t) = e.expires_at {
                    self.ttl.note_expiry(t);
                }
                view.active.insert(e);
            }
            if view.active.written_bytes() >= self.opts.memtable_bytes {
                view = self.rotate(&view);
            }
        }
        self.applied.fetch_max(upto.0, Ordering::SeqCst);
        drop(s);
        self.applied_changed.notify_waiters();
    }

    /// Freezes the active memtable (if non-empty) so the flusher picks it up.
    pub(crate) fn rotate_now(&self) {
        let _s = self.seq.lock();
        let view = self.current_view();
        if !view.active.is_empty() {
            self.rotate(&view);
        }
    }

    /// Rotation: the caller holds the sequencer lock, so no batch is applied meanwhile.
    pub(crate) fn rotate(&self, view: &Arc<View>) -> Arc<View> {
        let mut w = self.view.write();
        let cur = Arc::clone(&w);
        let mut frozen = Vec::with_capacity(cur.frozen.len() + 1);
        frozen.push(Arc::clone(&cur.active));
        frozen.extend(cur.frozen.iter().cloned());
        let next = Arc::new(View {
            generation: cur.generation + 1,
            active: Arc::new(Memtable::new()),
            frozen,
            l0: cur.l0.clone(),
            l1: cur.l1.clone(),
        });
        debug_assert!(Arc::ptr_eq(&cur.active, &view.active));
        *w = Arc::clone(&next);
        drop(w);
        self.flush_wake.notify_one();
        next
    }
}

impl super::Shard {
    /// Applies `batch` atomically (all writes with one version, or none); returns the version.
    pub async fn write(&self, batch: WriteBatch) -> Result<SeqNo> {
        self.inner.write(batch).await
    }

    /// Like [`Shard::write`]; with `batch.report_prior` set, also returns each op's live
    /// version just before the batch (None: the key was absent, deleted or expired), in op
    /// order. This is how "created" and "replaced" are told apart without a separate read.
    pub async fn write_with_prior(&self, batch: WriteBatch) -> Result<(SeqNo, Vec<Option<SeqNo>>)> {
        self.inner.write_with_prior(batch).await
    }

    /// Unconditional put.
    pub async fn put(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<SeqNo> {
        self.write(WriteBatch::new().put(key, value)).await
    }

    /// Unconditional delete (writes a tombstone even if the key is absent).
    pub async fn delete(&self, key: impl Into<Bytes>) -> Result<SeqNo> {
        self.write(WriteBatch::new().delete(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryKind;

    fn entry(seq: u64, expires_at: Option<u64>, tomb: bool) -> Entry {
        Entry {
            key: Bytes::from_static(b"k"),
            seq: SeqNo(seq),
            kind: if tomb {
                EntryKind::Tombstone
            } else {
                EntryKind::Put {
                    value: Bytes::new(),
                    content_type: None,
                }
            },
            expires_at,
        }
    }

    #[test]
    fn conditions() {
        let k = Bytes::from_static(b"k");
        let live = entry(3, None, false);
        let expired = entry(3, Some(10), false);
        let tomb = entry(4, None, true);
        assert!(check(&k, Condition::MustNotExist, None, 20).is_ok());
        assert!(check(&k, Condition::MustNotExist, Some(&tomb), 20).is_ok());
        assert!(check(&k, Condition::MustNotExist, Some(&expired), 20).is_ok());
        assert!(check(&k, Condition::MustNotExist, Some(&live), 20).is_err());
        assert!(check(&k, Condition::MustExist, Some(&live), 20).is_ok());
        assert!(check(&k, Condition::MustExist, Some(&expired), 20).is_err());
        assert!(check(&k, Condition::MustExist, Some(&tomb), 20).is_err());
        assert!(check(&k, Condition::MustExist, None, 20).is_err());
        assert!(check(&k, Condition::VersionIs(SeqNo(3)), Some(&live), 20).is_ok());
        assert!(check(&k, Condition::VersionIs(SeqNo(3)), Some(&expired), 20).is_err());
        assert!(check(&k, Condition::VersionIs(SeqNo(2)), Some(&live), 20).is_err());
        assert!(check(&k, Condition::ExpiredVersion(SeqNo(3)), Some(&expired), 20).is_ok());
        assert!(check(&k, Condition::ExpiredVersion(SeqNo(3)), Some(&expired), 5).is_err());
        assert!(check(&k, Condition::ExpiredVersion(SeqNo(3)), Some(&live), 20).is_err());
    }

    #[test]
    fn batch_validation() {
        let ok = WriteBatch::new().put("a", "1").delete("b");
        assert!(validate(&ok, 10).is_ok());
        let dup = WriteBatch::new().put("a", "1").delete("a");
        assert!(matches!(
            validate(&dup, 10),
            Err(Error::Invalid {
                reason: InvalidReason::DuplicateKey
            })
        ));
        assert!(validate(&WriteBatch::new(), 10).is_err());
        assert!(validate(&WriteBatch::new().put("", "1"), 10).is_err());
        assert!(validate(&WriteBatch::new().put(vec![b'k'; MAX_KEY_LEN + 1], "1"), 10).is_err());
        assert!(validate(&WriteBatch::new().put("a", vec![0u8; 11]), 10).is_err());
    }
}
