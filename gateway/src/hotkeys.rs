//! The hottest keys of this gateway, reads and writes apart, over a sliding window (design
//! note 0008), for `GET /admin/v1/hot-keys`. No per-key metric labels: keys only show there.
//!
//! Each direction keeps [`SLOTS`] sub-windows of `window / SLOTS`; each sub-window is a
//! space-saving summary of at most `capacity` keys (Metwally et al.): a key already counted
//! is incremented; a new key takes a free counter, or replaces the smallest one and inherits
//! its count as its error bound. Any key with more than `1 / capacity` of a sub-window's
//! requests is in its summary, and each count overestimates by at most its `error`. A report
//! adds the sub-windows up. Memory: `SLOTS × capacity` keys per direction.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::limits::Access;

/// Sub-windows of the sliding window.
pub(crate) const SLOTS: usize = 6;

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

/// A space-saving summary.
#[derive(Debug, Default)]
struct Summary {
    counts: HashMap<Bytes, (u64, u64)>,
    /// Keys that had the smallest count, `victim_count`, when the summary was last scanned:
    /// the next ones to replace. Counts only grow and a replacement enters above the
    /// minimum, so a listed key still at `victim_count` still has the smallest count; one
    /// counted since is skipped. One scan serves every replacement until the list runs out
    /// (a scan per new key cost each request an O(capacity) walk under a uniform load).
    victims: Vec<Bytes>,
    victim_count: u64,
}

impl Summary {
    fn add(&mut self, key: &Bytes, capacity: usize) {
        if let Some(c) = self.counts.get_mut(key) {
            c.0 += 1;
            return;
        }
        if self.counts.len() < capacity {
            self.counts.insert(key.clone(), (1, 0));
            return;
        }
        // At most one rescan: right after it every listed key is at the minimum.
        for _ in 0..2 {
            while let Some(k) = self.victims.pop() {
                if self
                    .counts
                    .get(&k)
                    .is_some_and(|c| c.0 == self.victim_count)
                {
                    let n = self.victim_count;
                    self.counts.remove(&k);
                    self.counts.insert(key.clone(), (n + 1, n));
                    return;
                }
            }
            let Some(min) = self.counts.values().map(|c| c.0).min() else {
                return;
            };
            self.victim_count = min;
            self.victims = self
                .counts
                .iter()
                .filter(|(_, c)| c.0 == min)
                .map(|(k, _)| k.clone())
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

    /// Moves to the sub-window `now` falls in, clearing the ones passed over.
    fn rotate(&mut self, now: Instant, slot_len: Duration) {
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
    }
}

/// The tracker of a gateway.
#[derive(Debug)]
pub(crate) struct HotKeys {
    capacity: usize,
    slot_len: Duration,
    window: Duration,
    reads: Mutex<Window>,
    writes: Mutex<Window>,
}

impl HotKeys {
    pub(crate) fn new(opts: &HotKeyOptions) -> Self {
        let now = Instant::now();
        let window = opts.window.max(Duration::from_secs(SLOTS as u64));
        Self {
            capacity: opts.capacity.max(1),
            slot_len: window / SLOTS as u32,
            window,
            reads: Mutex::new(Window::new(now)),
            writes: Mutex::new(Window::new(now)),
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

    fn side(&self, access: Access) -> &Mutex<Window> {
        match access {
            Access::Read => &self.reads,
            Access::Write => &self.writes,
        }
    }

    /// Counts one request to `key`.
    pub(crate) fn record(&self, key: &Bytes, access: Access) {
        let now = Instant::now();
        let mut w = self.side(access).lock();
        w.rotate(now, self.slot_len);
        let current = w.current;
        if let Some(s) = w.slots.get_mut(current) {
            s.add(key, self.capacity);
        }
    }

    /// The `limit` hottest keys of the window, hottest first.
    pub(crate) fn top(&self, access: Access, limit: usize) -> Vec<HotKey> {
        let mut merged: HashMap<Bytes, (u64, u64)> = HashMap::new();
        {
            let mut w = self.side(access).lock();
            w.rotate(Instant::now(), self.slot_len);
            for s in &w.slots {
                for (k, (n, e)) in &s.counts {
                    let m = merged.entry(k.clone()).or_default();
                    m.0 += n;
                    m.1 += e;
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

    /// A skewed stream: the truly hot keys come out on top with counts within their error
    /// bounds, in far less memory than the keys seen.
    #[tokio::test(start_paused = true)]
    async fn space_saving_finds_the_hot_keys() {
        let h = HotKeys::new(&HotKeyOptions {
            capacity: 16,
            window: Duration::from_secs(60),
        });
        let mut truth: HashMap<Bytes, u64> = HashMap::new();
        for i in 0..20_000u64 {
            // Keys 0..4 get half the requests; the rest is spread over 5,000 keys.
            let k = if i % 2 == 0 {
                key(i % 8 / 2)
            } else {
                key(100 + i % 5000)
            };
            *truth.entry(k.clone()).or_default() += 1;
            h.record(&k, Access::Read);
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
            h.record(&key(1), Access::Write);
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        h.record(&key(2), Access::Write);
        assert_eq!(h.top(Access::Write, 10).first().map(|t| t.count), Some(10));
        tokio::time::advance(Duration::from_secs(35)).await;
        let top = h.top(Access::Write, 10);
        assert_eq!(top.len(), 1, "{top:?}");
        assert_eq!(top.first().map(|t| t.key.clone()), Some(key(2)));
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(h.top(Access::Write, 10).is_empty());
    }
}
