//! The hottest keys of this gateway, reads and writes apart, over a sliding window (design
//! note 0008), for `GET /admin/v1/hot-keys`. No per-key metric labels: keys only show there.
//!
//! Each direction keeps [`SLOTS`] sub-windows of `window / SLOTS`; each sub-window is a
//! space-saving summary of at most `capacity` keys (Metwally et al.): a key already counted
//! is incremented; a new key takes a free counter, or replaces the smallest one and inherits
//! its count as its error bound. Any key with more than `1 / capacity` of a sub-window's
//! requests is in its summary, and each count overestimates by at most its `error`. A report
//! adds the sub-windows up. Memory: `SLOTS × capacity` keys per direction.
//!
//! Counting is exact for the first [`EXACT`] requests of a direction in each sub-window;
//! past that, one request in [`SAMPLE`] (chosen by a hash of its sequence number, not of
//! its key) is counted with weight [`SAMPLE`], so a busy gateway takes the summary's lock
//! and updates it for a sixteenth of its requests. Counts are then estimates (a count of
//! `c` beyond the exact part is off by about `sqrt(c × SAMPLE)`), and `error` stays the
//! summary's own bound. Keys are found by the hash the limiter computed for the request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hashbrown::HashTable;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::limits::Access;

/// Sub-windows of the sliding window.
pub(crate) const SLOTS: usize = 6;
/// Requests of a direction counted one by one in each sub-window before sampling starts.
pub(crate) const EXACT: u64 = 4096;
/// Past [`EXACT`], one request in this many is counted, with this weight.
pub(crate) const SAMPLE: u64 = 16;

/// Settings of hot-key tracking (`[gateway.hot_keys]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HotKeyOptions {
    /// Keys counted per direction and sub-window (the largest `limit` of a report).
    /// Default: 100.
    pub capacity: usize,
    /// The sliding window the counts cover (humantime; six sub-windows). Default: 60s.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for HotKeyOptions {
    fn default() -> Self {
        Self {
            capacity: 100,
            window: Duration::from_secs(60),
        }
    }
}

/// One key of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HotKey {
    pub(crate) key: Bytes,
    /// Requests counted in the window (an overestimate by at most `error`).
    pub(crate) count: u64,
    pub(crate) error: u64,
}

/// A counted key.
#[derive(Debug)]
struct Counted {
    hash: u64,
    key: Bytes,
    count: u64,
    error: u64,
}

/// A space-saving summary.
#[derive(Debug, Default)]
struct Summary {
    counts: HashTable<Counted>,
    /// Keys that had the smallest count, `victim_count`, when the summary was last scanned:
    /// the next ones to replace. Counts only grow and a replacement enters above the
    /// minimum, so a listed key still at `victim_count` still has the smallest count; one
    /// counted since is skipped. One scan serves every replacement until the list runs out
    /// (a scan per new key cost each request an O(capacity) walk under a uniform load).
    victims: Vec<(u64, Bytes)>,
    victim_count: u64,
}

impl Summary {
    /// Adds `weight` requests to `key` (hash `hash`).
    fn add(&mut self, key: &Bytes, hash: u64, weight: u64, capacity: usize) {
        let same = |c: &Counted| c.hash == hash && c.key == *key;
        if let Some(c) = self.counts.find_mut(hash, same) {
            c.count += weight;
            return;
        }
        if self.counts.len() < capacity {
            self.counts.insert_unique(
                hash,
                Counted {
                    hash,
                    key: key.clone(),
                    count: weight,
                    error: 0,
                },
                |c| c.hash,
            );
            return;
        }
        // At most one rescan: right after it every listed key is at the minimum.
        for _ in 0..2 {
            while let Some((h, k)) = self.victims.pop() {
                let n = self.victim_count;
                if let Ok(e) = self
                    .counts
                    .find_entry(h, |c| c.hash == h && c.key == k && c.count == n)
                {
                    e.remove();
                    self.counts.insert_unique(
                        hash,
                        Counted {
                            hash,
                            key: key.clone(),
                            count: n + weight,
                            error: n,
                        },
                        |c| c.hash,
                    );
                    return;
                }
            }
            let Some(min) = self.counts.iter().map(|c| c.count).min() else {
                return;
            };
            self.victim_count = min;
            self.victims = self
                .counts
                .iter()
                .filter(|c| c.count == min)
                .map(|c| (c.hash, c.key.clone()))
                .collect();
        }
    }

    fn clear(&mut self) {
        self.counts.clear();
        self.victims.clear();
    }
}

/// One direction's sliding window.
#[derive(Debug)]
struct Window {
    slots: Vec<Summary>,
    current: usize,
    started: Instant,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Summary::default()).collect(),
            current: 0,
            started: now,
        }
    }

    /// Moves to the sub-window `now` falls in, clearing the ones passed over; whether it
    /// moved.
    fn rotate(&mut self, now: Instant, slot_len: Duration) -> bool {
        let mut passed = 0;
        while now.saturating_duration_since(self.started) >= slot_len && passed <= SLOTS {
            self.started += slot_len;
            self.current = (self.current + 1) % SLOTS;
            if let Some(s) = self.slots.get_mut(self.current) {
                s.clear();
            }
            passed += 1;
        }
        if passed > SLOTS {
            // Idle for longer than the window: start afresh.
            self.started = now;
        }
        passed > 0
    }
}

/// The tracker of a gateway.
#[derive(Debug)]
pub(crate) struct HotKeys {
    capacity: usize,
    slot_len: Duration,
    window: Duration,
    reads: Side,
    writes: Side,
}

/// One direction: its window and the requests seen in its current sub-window.
#[derive(Debug)]
struct Side {
    window: Mutex<Window>,
    seen: AtomicU64,
}

impl Side {
    fn new(now: Instant) -> Self {
        Self {
            window: Mutex::new(Window::new(now)),
            seen: AtomicU64::new(0),
        }
    }
}

/// Whether request number `n` is one of the sampled ones (about one in [`SAMPLE`]).
fn sampled(n: u64) -> bool {
    // splitmix64's finalizer: consecutive numbers map to unrelated bits.
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).is_multiple_of(SAMPLE)
}

impl HotKeys {
    pub(crate) fn new(opts: &HotKeyOptions) -> Self {
        let now = Instant::now();
        let window = opts.window.max(Duration::from_secs(SLOTS as u64));
        Self {
            capacity: opts.capacity.max(1),
            slot_len: window / SLOTS as u32,
            window,
            reads: Side::new(now),
            writes: Side::new(now),
        }
    }

    /// The window the reports cover.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// The most keys a report lists.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    fn side(&self, access: Access) -> &Side {
        match access {
            Access::Read => &self.reads,
            Access::Write => &self.writes,
        }
    }

    /// Counts one request to `key` (hash `hash`, the limiter's) at `now`: exactly, or
    /// sampled past [`EXACT`] requests in the sub-window.
    pub(crate) fn record(&self, key: &Bytes, hash: u64, access: Access, now: Instant) {
        let side = self.side(access);
        let n = side.seen.fetch_add(1, Ordering::Relaxed);
        let mut weight = 1;
        if n >= EXACT {
            if !sampled(n) {
                return;
            }
            weight = SAMPLE;
        }
        let mut w = side.window.lock();
        if w.rotate(now, self.slot_len) {
            // The first request of a new sub-window: counted exactly.
            side.seen.store(1, Ordering::Relaxed);
            weight = 1;
        }
        let current = w.current;
        if let Some(s) = w.slots.get_mut(current) {
            s.add(key, hash, weight, self.capacity);
        }
    }

    /// The `limit` hottest keys of the window, hottest first.
    pub(crate) fn top(&self, access: Access, limit: usize) -> Vec<HotKey> {
        let mut merged: HashMap<Bytes, (u64, u64)> = HashMap::new();
        {
            let side = self.side(access);
            let mut w = side.window.lock();
            if w.rotate(Instant::now(), self.slot_len) {
                side.seen.store(0, Ordering::Relaxed);
            }
            for s in &w.slots {
                for c in &s.counts {
                    let m = merged.entry(c.key.clone()).or_default();
                    m.0 += c.count;
                    m.1 += c.error;
                }
            }
        }
        let mut out: Vec<HotKey> = merged
            .into_iter()
            .map(|(key, (count, error))| HotKey { key, count, error })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        out.truncate(limit);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Bytes {
        Bytes::from(format!("k{i}"))
    }

    fn rec(h: &HotKeys, k: &Bytes, access: Access) {
        h.record(k, crate::limits::key_hash(k), access, Instant::now());
    }

    /// A skewed stream (all counted: fewer than `EXACT` requests): the truly hot keys come
    /// out on top with counts within their error bounds, in far less memory than the keys
    /// seen.
    #[tokio::test(start_paused = true)]
    async fn space_saving_finds_the_hot_keys() {
        let h = HotKeys::new(&HotKeyOptions {
            capacity: 16,
            window: Duration::from_secs(60),
        });
        let mut truth: HashMap<Bytes, u64> = HashMap::new();
        for i in 0..EXACT {
            // Keys 0..4 get half the requests; the rest is spread over 2,000 keys.
            let k = if i % 2 == 0 {
                key(i % 8 / 2)
            } else {
                key(100 + i % 2000)
            };
            *truth.entry(k.clone()).or_default() += 1;
            rec(&h, &k, Access::Read);
        }
        let top = h.top(Access::Read, 4);
        let mut keys: Vec<Bytes> = top.iter().map(|t| t.key.clone()).collect();
        keys.sort();
        assert_eq!(keys, (0..4).map(key).collect::<Vec<_>>());
        for t in &top {
            let real = truth[&t.key];
            assert!(
                t.count >= real && t.count - t.error <= real,
                "{t:?} real {real}"
            );
        }
        assert!(h.top(Access::Write, 4).is_empty(), "directions are apart");
    }

    /// Counts leave the window as it slides.
    #[tokio::test(start_paused = true)]
    async fn old_counts_slide_out() {
        let h = HotKeys::new(&HotKeyOptions {
            capacity: 4,
            window: Duration::from_secs(60),
        });
        for _ in 0..10 {
            rec(&h, &key(1), Access::Write);
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        rec(&h, &key(2), Access::Write);
        assert_eq!(h.top(Access::Write, 10).first().map(|t| t.count), Some(10));
        tokio::time::advance(Duration::from_secs(35)).await;
        let top = h.top(Access::Write, 10);
        assert_eq!(top.len(), 1, "{top:?}");
        assert_eq!(top.first().map(|t| t.key.clone()), Some(key(2)));
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(h.top(Access::Write, 10).is_empty());
    }

    /// Past `EXACT` requests in a sub-window, counting is sampled: the hot keys still come
    /// out on top, with counts near the truth.
    #[tokio::test(start_paused = true)]
    async fn sampled_counts_estimate_the_truth() {
        let h = HotKeys::new(&HotKeyOptions {
            capacity: 16,
            window: Duration::from_secs(60),
        });
        let mut truth: HashMap<Bytes, u64> = HashMap::new();
        let total = 400_000u64;
        for i in 0..total {
            let k = if i % 2 == 0 {
                key(i % 8 / 2)
            } else {
                key(100 + i % 5000)
            };
            *truth.entry(k.clone()).or_default() += 1;
            rec(&h, &k, Access::Read);
        }
        let top = h.top(Access::Read, 4);
        let mut keys: Vec<Bytes> = top.iter().map(|t| t.key.clone()).collect();
        keys.sort();
        assert_eq!(keys, (0..4).map(key).collect::<Vec<_>>());
        for t in &top {
            let real = truth[&t.key];
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            let off = (t.count as f64 - real as f64).abs() / real as f64;
            assert!(off < 0.05, "{t:?} real {real}");
        }
    }
}
