//! What every write must satisfy, whoever sequences it: batch validation and the condition
//! check ([`check`]) that a leader runs in `Shard::evaluate` (`replicated.rs`), plus memtable
//! rotation. Writes themselves go through the replication driver (design note 0003).

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, InvalidReason, Result};
use crate::memtable::Memtable;
use crate::shard::ShardInner;
use crate::shard::view::View;
use crate::types::{
    Condition, Entry, MAX_CONTENT_TYPE_LEN, MAX_KEY_LEN, Mutation, UnixMillis, WriteBatch,
};

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
    /// Freezes the active memtable if it holds anything not yet flushed (entries, or a
    /// barrier's log position), so the flusher picks it up. Returns whether it froze.
    pub(crate) fn rotate_now(&self) -> bool {
        let _s = self.apply_lock.lock();
        let view = self.current_view();
        if self.holds_unflushed(&view.active) {
            self.rotate(&view);
            true
        } else {
            false
        }
    }

    /// Whether `mem` holds an entry or a log position past the flushed prefix.
    pub(crate) fn holds_unflushed(&self, mem: &Memtable) -> bool {
        !mem.is_empty()
            || mem.covered().0.0 > self.flushed_seq.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Rotation: the caller holds the apply lock, so no record is applied meanwhile.
    pub(crate) fn rotate(&self, view: &Arc<View>) -> Arc<View> {
        let mut w = self.view.write();
        let cur = Arc::clone(&w);
        let mut frozen = Vec::with_capacity(cur.frozen.len() + 1);
        frozen.push(Arc::clone(&cur.active));
        frozen.extend(cur.frozen.iter().cloned());
        cur.active.freeze();
        let next = Arc::new(View {
            generation: cur.generation + 1,
            active: self.new_memtable(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{EntryKind, SeqNo};

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
