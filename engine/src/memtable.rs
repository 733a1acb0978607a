//! The memtable: a concurrent ordered map from key to its newest entry.
//!
//! Writers never race here: the shard's replication driver applies committed records one at
//! a time in sequence order (under the shard's apply lock). Readers run concurrently with that writer (lock-free skip list). A
//! memtable is *active* until its size passes the configured bound; it is then *frozen*
//! (read-only) and flushed to a segment in the background.
//!
//! A key's slot is never replaced: it holds an [`ArcSwap`] that an overwrite swaps
//! atomically. (The skip list's own replace removes the old node before linking the new one,
//! and a reader in between would miss the key, or read an older version from a frozen
//! memtable or a segment.)
//!
//! Each slot is reachable twice: from the skip list (key order: scans and flushes) and from a
//! hash index (point lookups and overwrites). A skip-list search costs one cache miss per
//! level (~17 levels at 100,000 keys); the index finds an existing key in about one, so only
//! a key new to this memtable pays for the search (to link its node).

use std::cmp::Ordering as KeyOrder;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use hashbrown::HashTable;
use parking_lot::RwLock;
use std::hash::BuildHasher;

use crate::types::{Entry, Epoch, SeqNo, UnixMillis};
use crate::write_buffers::WriteBuffers;

/// Entries handed out per call when iterating (bounded memory per scan step).
const ITER_CHUNK: usize = 256;

/// A key prepared for lookups in several memtables (its bytes copied once):
/// [`Memtable::probe`], then [`Memtable::get_probe`] on each.
#[derive(Debug, Clone)]
pub struct Probe(Bytes);

/// Memory a key costs besides its entry: its skip-list node with its tower, its slot and its
/// index entry (counted in [`Memtable::approx_bytes`] while the key is held).
const SLOT_OVERHEAD: usize = 160;

/// What one insert keeps alive besides the entry's bytes, in the write-buffer accounting
/// (note 0007): the entry as the replication log's record holds it until the flush (an
/// overwritten version stays there) and that record's share of its own allocations.
/// Calibrated against resident memory (`node/tests/memory_accounting.rs`).
pub const CHARGE_PER_INSERT: usize = std::mem::size_of::<Entry>() + 96;

/// What a key held by the memtable costs on top: its newest entry's own allocation, its
/// slot, skip-list node (with tower) and hash-index entry (with the tables' slack).
pub const CHARGE_PER_KEY: usize = std::mem::size_of::<Entry>() + 272;

/// Where a key's newest entry lives; shared by the skip list and the index.
type Slot = Arc<ArcSwap<Entry>>;

/// Parts of the hash index, each behind its own lock: a part that grows rehashes a sixteenth
/// of the keys while readers of the other parts go on.
const INDEX_PARTS: usize = 16;

/// The hash index from key to slot. Randomly seeded, so that keys chosen to collide cannot be
/// precomputed. Only the one writer takes a write lock, and only to add a key; lookups and
/// overwrites take a read lock.
#[derive(Debug)]
struct Index {
    hasher: foldhash::fast::RandomState,
    parts: [RwLock<HashTable<(Bytes, Slot)>>; INDEX_PARTS],
}

impl Index {
    fn new() -> Self {
        Self {
            hasher: foldhash::fast::RandomState::default(),
            parts: std::array::from_fn(|_| RwLock::new(HashTable::new())),
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The part of a hash: bits the tables do not use for their buckets at this size.
    fn part(&self, hash: u64) -> &RwLock<HashTable<(Bytes, Slot)>> {
        let i = usize::try_from(hash >> 48).unwrap_or(0) % INDEX_PARTS;
        &self.parts[i]
    }

    /// Runs `f` on the slot of `key` under its part's read lock.
    fn with<R>(&self, key: &[u8], f: impl FnOnce(&Slot) -> R) -> Option<R> {
        let hash = self.hash(key);
        let part = self.part(hash).read();
        part.find(hash, |(k, _)| k.as_ref() == key)
            .map(|(_, slot)| f(slot))
    }

    /// Adds a key that is not in the index.
    fn add(&self, key: Bytes, slot: Slot) {
        let hash = self.hash(&key);
        self.part(hash)
            .write()
            .insert_unique(hash, (key, slot), |(k, _)| self.hash(k));
    }
}

/// A skip-list key: the key's first 16 bytes as a big-endian integer (zero-padded), then the
/// key itself. Ordered as the key's bytes are: when the heads differ they decide (a zero pad
/// sorts where the shorter key does), when they are equal the whole keys do. Most comparisons
/// of a search are then one integer comparison of data inside the skip-list node, instead of
/// a `memcmp` through a pointer to key bytes elsewhere in memory (another cache miss per
/// level).
#[derive(Debug, Clone)]
struct MemKey {
    head: u128,
    key: Bytes,
}

impl MemKey {
    fn new(key: Bytes) -> Self {
        Self {
            head: head_of(&key),
            key,
        }
    }
}

fn head_of(key: &[u8]) -> u128 {
    let mut head = [0u8; 16];
    let n = key.len().min(head.len());
    head[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(head)
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> KeyOrder {
        self.head
            .cmp(&other.head)
            .then_with(|| self.key.cmp(&other.key))
    }
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<KeyOrder> {
        Some(self.cmp(other))
    }
}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head && self.key == other.key
    }
}

impl Eq for MemKey {}

/// A concurrent, size-accounted map of the newest entry per key.
#[derive(Debug)]
pub struct Memtable {
    map: SkipMap<MemKey, Slot>,
    /// The same slots by key.
    index: Index,
    bytes: AtomicUsize,
    /// Bytes of every entry ever inserted (overwrites included): what the WAL (and, on a
    /// replicated node, the in-memory log) holds until this memtable is flushed.
    written: AtomicUsize,
    max_seq: AtomicU64,
    min_seq: AtomicU64,
    min_expires_at: AtomicU64,
    /// Replicated shards: seq and epoch of the last log record applied to this memtable
    /// (barriers included, which insert nothing), so a flush knows the log position it
    /// covers. 0 when unused.
    covered_seq: AtomicU64,
    covered_epoch: AtomicU64,
    /// Seq of the first log record applied (barriers included); 0 when none.
    first_covered: AtomicU64,
    /// Replicated shards: the configuration of the newest configuration record applied to
    /// this memtable (design note 0009), for the manifest of its flush.
    membership: parking_lot::Mutex<Option<crate::replica::Membership>>,
    /// Write-buffer bytes charged to `account` (note 0007): entries as inserted, overwritten
    /// ones included (the log holds them until the flush), plus per-key structures.
    charged: AtomicUsize,
    /// Frozen: read-only, its charge counted as frozen.
    frozen: std::sync::atomic::AtomicBool,
    /// The node's write buffers, charged while this memtable lives.
    account: Option<WriteBuffers>,
}

impl Drop for Memtable {
    fn drop(&mut self) {
        if let Some(a) = &self.account {
            a.release(
                self.charged.load(Ordering::Relaxed),
                self.frozen.load(Ordering::Relaxed),
            );
        }
    }
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
        Self::with_account(None)
    }

    fn with_account(account: Option<WriteBuffers>) -> Self {
        Self {
            map: SkipMap::new(),
            index: Index::new(),
            bytes: AtomicUsize::new(0),
            written: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
            min_seq: AtomicU64::new(u64::MAX),
            min_expires_at: AtomicU64::new(u64::MAX),
            covered_seq: AtomicU64::new(0),
            covered_epoch: AtomicU64::new(0),
            first_covered: AtomicU64::new(0),
            membership: parking_lot::Mutex::new(None),
            charged: AtomicUsize::new(0),
            frozen: std::sync::atomic::AtomicBool::new(false),
            account,
        }
    }

    /// An empty memtable that charges `account` for what it holds (note 0007).
    #[must_use]
    pub fn charged_to(account: WriteBuffers) -> Self {
        Self::with_account(Some(account))
    }

    /// Freezes the memtable: it takes no more inserts, and its charge counts as frozen.
    /// Called once, by the one writer.
    pub fn freeze(&self) {
        if !self.frozen.swap(true, Ordering::Relaxed)
            && let Some(a) = &self.account
        {
            a.freeze(self.charged.load(Ordering::Relaxed));
        }
    }

    /// Whether [`Memtable::freeze`] was called.
    #[must_use]
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Relaxed)
    }

    /// Write-buffer bytes this memtable keeps alive, as charged to the node (note 0007).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.charged.load(Ordering::Relaxed)
    }

    /// Seq of the first log record applied to this memtable (None before any).
    #[must_use]
    pub fn first_covered(&self) -> Option<SeqNo> {
        match self.first_covered.load(Ordering::Relaxed) {
            0 => None,
            s => Some(SeqNo(s)),
        }
    }

    fn charge(&self, bytes: usize) {
        self.charged.fetch_add(bytes, Ordering::Relaxed);
        if let Some(a) = &self.account {
            a.charge(bytes);
        }
    }

    /// Records that every log record up to `seq` (whose record has `epoch`) that belongs in
    /// this memtable was applied. Called by the one writer, after the inserts.
    pub fn note_covered(&self, seq: SeqNo, epoch: Epoch) {
        if self.first_covered.load(Ordering::Relaxed) == 0 {
            self.first_covered.store(seq.0, Ordering::Relaxed);
        }
        self.covered_epoch.store(epoch.0, Ordering::Relaxed);
        self.covered_seq.store(seq.0, Ordering::Release);
    }

    /// Records that a configuration record putting `m` in force was applied (after the
    /// records before it). Called by the one writer, before [`Memtable::note_covered`].
    pub fn note_membership(&self, m: &crate::replica::Membership) {
        *self.membership.lock() = Some(m.clone());
    }

    /// The configuration of the newest configuration record applied, if any.
    #[must_use]
    pub fn membership(&self) -> Option<crate::replica::Membership> {
        self.membership.lock().clone()
    }

    /// The log position noted by [`Memtable::note_covered`] (`(0, 0)` if never noted).
    #[must_use]
    pub fn covered(&self) -> (SeqNo, Epoch) {
        let seq = self.covered_seq.load(Ordering::Acquire);
        (
            SeqNo(seq),
            Epoch(self.covered_epoch.load(Ordering::Relaxed)),
        )
    }

    /// Inserts `e`, replacing an older version of its key. Called by one writer at a time.
    pub fn insert(&self, e: Entry) {
        let add = e.approx_size();
        if let Some(t) = e.expires_at {
            self.min_expires_at.fetch_min(t, Ordering::Relaxed);
        }
        self.max_seq.fetch_max(e.seq.0, Ordering::Relaxed);
        self.min_seq.fetch_min(e.seq.0, Ordering::Relaxed);
        self.bytes.fetch_add(add, Ordering::Relaxed);
        self.written.fetch_add(add, Ordering::Relaxed);
        // The one writer: nobody adds the key between this lookup and the insert below.
        let existing = self.index.with(&e.key, Arc::clone);
        let new_key = if existing.is_some() {
            0
        } else {
            CHARGE_PER_KEY
        };
        self.charge(e.data_len() + CHARGE_PER_INSERT + new_key);
        if let Some(slot) = existing {
            // Swap in place: readers see the old entry or the new one, never neither.
            let old = slot.swap(Arc::new(e));
            let sub = old.approx_size().min(self.bytes.load(Ordering::Relaxed));
            self.bytes.fetch_sub(sub, Ordering::Relaxed);
        } else {
            self.bytes.fetch_add(SLOT_OVERHEAD, Ordering::Relaxed);
            let key = e.key.clone();
            let slot: Slot = Arc::new(ArcSwap::from_pointee(e));
            // Skip list first: a scan that finds the key there finds the same slot a point
            // lookup finds once the index has it too.
            self.map.insert(MemKey::new(key.clone()), Arc::clone(&slot));
            self.index.add(key, slot);
        }
    }

    /// The newest entry of `key` (tombstones and expired entries included).
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<Entry> {
        self.get_probe(&Self::probe(key))
    }

    /// `key` prepared for [`Memtable::get_probe`].
    #[must_use]
    pub fn probe(key: &[u8]) -> Probe {
        Probe(Bytes::copy_from_slice(key))
    }

    /// The newest entry of the probe's key (tombstones and expired entries included).
    #[must_use]
    pub fn get_probe(&self, probe: &Probe) -> Option<Entry> {
        self.index.with(&probe.0, |slot| Entry::clone(&slot.load()))
    }

    /// Up to `ITER_CHUNK` entries with keys strictly after `after` (from the start when None),
    /// in key order.
    #[must_use]
    pub fn chunk_after(&self, after: Option<&Bytes>) -> Vec<Entry> {
        let lower = after.map_or(Bound::Unbounded, |k| {
            Bound::Excluded(MemKey::new(k.clone()))
        });
        self.map
            .range((lower, Bound::Unbounded))
            .take(ITER_CHUNK)
            .map(|e| Entry::clone(&e.value().load()))
            .collect()
    }

    /// Approximate bytes held: the live entries and, per key, its skip-list node, slot and index
    /// entry.
    #[must_use]
    pub fn approx_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Approximate bytes of every entry inserted, overwritten ones included: the log this
    /// memtable pins until it is flushed. Freezing on this (not on [`Memtable::approx_bytes`])
    /// bounds the WAL and the replicated log under overwrites of a few keys.
    #[must_use]
    pub fn written_bytes(&self) -> usize {
        self.written.load(Ordering::Relaxed)
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
        self.map.iter().map(|e| Entry::clone(&e.value().load()))
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

    /// Keys drawn from a tiny alphabet with zero bytes, around the 16-byte head, so that
    /// equal heads, zero padding and prefixes all occur.
    fn near_head_key() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0xff]), 0..20)
    }

    proptest::proptest! {
        /// The skip list's key order is exactly the order of the keys' bytes, so iteration,
        /// scans and lookups see what the segments and the merge expect.
        #[test]
        fn skip_list_keys_order_as_their_bytes(
            common in near_head_key(),
            tail_a in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0xff]), 0..4),
            tail_b in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0xff]), 0..4),
        ) {
            // A shared start, so that keys equal in their first 16 bytes are common.
            let a = [common.as_slice(), tail_a.as_slice()].concat();
            let b = [common.as_slice(), tail_b.as_slice()].concat();
            let (ka, kb) = (MemKey::new(Bytes::from(a.clone())), MemKey::new(Bytes::from(b.clone())));
            proptest::prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            proptest::prop_assert_eq!(ka == kb, a == b);
        }

        /// Whatever keys go in, iteration yields them in byte order and each one is found.
        #[test]
        fn iteration_is_in_byte_order(keys in proptest::collection::vec(near_head_key(), 1..40)) {
            let m = Memtable::new();
            for (seq, k) in (1..).zip(&keys) {
                m.insert(Entry {
                    key: Bytes::from(k.clone()),
                    seq: SeqNo(seq),
                    kind: EntryKind::Tombstone,
                    expires_at: None,
                });
            }
            let mut want: Vec<Vec<u8>> = keys.clone();
            want.sort();
            want.dedup();
            let got: Vec<Vec<u8>> = m.iter().map(|e| e.key.to_vec()).collect();
            proptest::prop_assert_eq!(&got, &want);
            for k in &want {
                proptest::prop_assert!(m.get(k).is_some());
            }
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

    /// A reader must never miss a key while it is being overwritten (a replace must not
    /// remove the old version before the new one is visible).
    #[test]
    fn overwrites_are_never_invisible_to_concurrent_readers() {
        let m = std::sync::Arc::new(Memtable::new());
        m.insert(put("hot", 1, "v"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (m, stop) = (m.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut misses = 0u64;
                    let mut last = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        match m.get(b"hot") {
                            None => misses += 1,
                            Some(e) => {
                                assert!(e.seq.0 >= last, "went back from {last} to {}", e.seq.0);
                                last = e.seq.0;
                            }
                        }
                    }
                    misses
                })
            })
            .collect();
        for seq in 2..200_000 {
            m.insert(put("hot", seq, "v"));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let misses: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
        assert_eq!(misses, 0, "reads missed a key that was being overwritten");
    }

    /// While the index grows (its parts rehash), every key inserted before a read started is
    /// found, by point lookup and by scan alike.
    #[test]
    fn keys_stay_visible_while_the_index_grows() {
        use std::sync::atomic::AtomicU64;
        const KEYS: u64 = 60_000;
        let m = Arc::new(Memtable::new());
        let done = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (m, done) = (Arc::clone(&m), Arc::clone(&done));
                std::thread::spawn(move || {
                    let mut checked = 0u64;
                    let mut i = r;
                    loop {
                        let upto = done.load(Ordering::Acquire);
                        if upto == 0 {
                            std::hint::spin_loop();
                            continue;
                        }
                        // A key below the watermark was inserted before this read began.
                        let k = (i * 7_919) % upto;
                        let key = format!("k{k:08}");
                        let got = m.get(key.as_bytes()).map(|e| e.seq);
                        assert_eq!(got, Some(SeqNo(k + 1)), "lost {key} with {upto} inserted");
                        checked += 1;
                        i += 1;
                        if upto == KEYS && checked > 10_000 {
                            return checked;
                        }
                    }
                })
            })
            .collect();
        for k in 0..KEYS {
            m.insert(put(&format!("k{k:08}"), k + 1, "v"));
            done.store(k + 1, Ordering::Release);
        }
        for r in readers {
            assert!(r.join().expect("reader") > 10_000);
        }
        assert_eq!(m.len(), usize::try_from(KEYS).expect("fits"));
        assert_eq!(m.iter().count(), m.len());
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

    #[test]
    fn overwrites_count_as_written_not_as_held() {
        let m = Memtable::new();
        m.insert(put("k", 1, "first value"));
        let held = m.approx_bytes();
        let written = m.written_bytes();
        assert_eq!(
            held,
            written + SLOT_OVERHEAD,
            "the entry and its key's structures"
        );
        for seq in 2..=10 {
            m.insert(put("k", seq, "first value"));
        }
        assert_eq!(m.approx_bytes(), held, "one live entry");
        assert_eq!(m.written_bytes(), 10 * written, "ten writes");
    }
}
