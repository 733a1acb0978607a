//! The memtable: a concurrent ordered map from key to its newest entry.
//!
//! Writers never race here: the shard's sequencer applies committed batches one at a time in
//! sequence order. Readers run concurrently with that writer (lock-free skip list). A
//! memtable is *active* until its size passes the configured bound; it is then *frozen*
//! (read-only) and flushed to a segment in the background.

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::types::{Entry, SeqNo, UnixMillis};

/// Entries handed out per call when iterating (bounded memory per scan step).
const ITER_CHUNK: usize = 256;

/// A concurrent, size-accounted map of the newest entry per key.
#[derive(Debug)]
pub struct Memtable {
    map: SkipMap<Bytes, Entry>,
    bytes: AtomicUsize,
    max_seq: AtomicU64,
    min_seq: AtomicU64,
    min_expires_at: AtomicU64,
}

impl Default for Memtable {
    fn default() -> Self {
        Self::new()
    }
}

impl Memtable {
    /// An empty memtable.
    #[must_use]
    pub fn new() -> Self {
        Self {
            map: SkipMap::new(),
            bytes: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
            min_seq: AtomicU64::new(u64::MAX),
            min_expires_at: AtomicU64::new(u64::MAX),
        }
    }

    /// Inserts `e`, replacing an older version of its key. Called by one writer at a time.
    pub fn insert(&self, e: Entry) {
        let add = e.approx_size();
        if let Some(t) = e.expires_at {
            self.min_expires_at.fetch_min(t, Ordering::Relaxed);
        }
        self.max_seq.fetch_max(e.seq.0, Ordering::Relaxed);
        self.min_seq.fetch_min(e.seq.0, Ordering::Relaxed);
        let old = self.map.get(&e.key).map(|o| o.value().approx_size());
        self.map.insert(e.key.clone(), e);
        self.bytes.fetch_add(add, Ordering::Relaxed);
        if let Some(o) = old {
            self.bytes
                .fetch_sub(o.min(self.bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
        }
    }

    /// The newest entry of `key` (tombstones and expired entries included).
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<Entry> {
        self.map.get(key).map(|e| e.value().clone())
    }

    /// Up to `ITER_CHUNK` entries with keys strictly after `after` (from the start when None),
    /// in key order.
    #[must_use]
    pub fn chunk_after(&self, after: Option<&Bytes>) -> Vec<Entry> {
        let lower = after.map_or(Bound::Unbounded, |k| Bound::Excluded(k.clone()));
        self.map
            .range((lower, Bound::Unbounded))
            .take(ITER_CHUNK)
            .map(|e| e.value().clone())
            .collect()
    }

    /// Approximate bytes held.
    #[must_use]
    pub fn approx_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Highest sequence number inserted (0 when empty).
    #[must_use]
    pub fn max_seq(&self) -> SeqNo {
        SeqNo(self.max_seq.load(Ordering::Relaxed))
    }

    /// Lowest sequence number inserted (None when empty).
    #[must_use]
    pub fn min_seq(&self) -> Option<SeqNo> {
        match self.min_seq.load(Ordering::Relaxed) {
            u64::MAX => None,
            s => Some(SeqNo(s)),
        }
    }

    /// Earliest expiry of any entry ever inserted (a lower bound; None if no entry expires).
    #[must_use]
    pub fn min_expires_at(&self) -> Option<UnixMillis> {
        match self.min_expires_at.load(Ordering::Relaxed) {
            u64::MAX => None,
            t => Some(t),
        }
    }

    /// Every entry in key order (for flushing a frozen memtable).
    pub fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        self.map.iter().map(|e| e.value().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryKind;

    fn put(k: &str, seq: u64, v: &str) -> Entry {
        Entry {
            key: Bytes::copy_from_slice(k.as_bytes()),
            seq: SeqNo(seq),
            kind: EntryKind::Put {
                value: Bytes::copy_from_slice(v.as_bytes()),
                content_type: None,
            },
            expires_at: None,
        }
    }

    #[test]
    fn newest_version_wins_and_size_tracks_replacement() {
        let m = Memtable::new();
        m.insert(put("a", 1, "xxxxxxxxxx"));
        let one = m.approx_bytes();
        m.insert(put("a", 2, "xxxxxxxxxx"));
        assert_eq!(m.approx_bytes(), one);
        assert_eq!(m.get(b"a").map(|e| e.seq), Some(SeqNo(2)));
        assert_eq!(m.max_seq(), SeqNo(2));
        assert_eq!(m.min_seq(), Some(SeqNo(1)));
    }

    #[test]
    fn chunks_resume_after_cursor() {
        let m = Memtable::new();
        for i in 0..600u64 {
            m.insert(put(&format!("k{i:04}"), i + 1, "v"));
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let c = m.chunk_after(cursor.as_ref());
            let Some(last) = c.last() else { break };
            cursor = Some(last.key.clone());
            seen.extend(c.into_iter().map(|e| e.key));
        }
        assert_eq!(seen.len(), 600);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
    }
}
