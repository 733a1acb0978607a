//! The node's write buffers (design note 0007): one memory budget for the memtables of every
//! shard the node hosts, the scheduler that keeps them within it, the bounded WAL's flush
//! rules, and the slots and pace of background work (flushes, compactions).
//!
//! # Accounting
//!
//! Every memtable of the node charges the one [`WriteBuffers`] for what it keeps alive
//! ([`crate::memtable::Memtable::charged_to`]): it charges as it inserts, moves its charge to
//! *frozen* when it is frozen and gives it back when it is dropped. The totals are atomics,
//! read by the scheduler, by a leader's backpressure check (`Shard::prepare`) and by
//! `/metrics`; the peak is kept for tests and operators.
//!
//! # The scheduler
//!
//! One task per node ([`WriteBuffers::start`]), woken when a charge crosses the budget and
//! every 100 ms. Each turn:
//!
//! 1. past `max_unflushed_bytes` (L): every shard this node follows that holds unflushed data
//!    asks its leader, *hard*, to flush and to refuse writes (leaders' own writes are refused
//!    in `Shard::prepare`);
//! 2. past `write_buffer_bytes` (B): the largest active memtables are frozen, largest first,
//!    until the active part is at most B/2 (a leader's flusher then flushes them; a follower
//!    asks its leader, whose flush covers the frozen copy);
//! 3. WAL past `wal.max_bytes`, or its oldest file past `wal.max_file_age`: every shard
//!    keeping the oldest file freezes its memtable up to the records there (or asks its
//!    leader).
//!
//! It stops when its cancellation token is cancelled (the node's shutdown); nothing it does
//! needs draining: a frozen memtable is flushed by its shard's flusher or on close.
//!
//! # Background work
//!
//! Flushes and compactions take a slot ([`WriteBuffers::flush_slot`],
//! [`WriteBuffers::compaction_slot`]; the shards waiting for one are the queues on
//! `/metrics`) and pace their uploads through one token bucket ([`WriteBuffers::pace`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::metrics::family::Family;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Counter, Histogram, Observed, Registry};
use crate::options::EngineOptions;
use crate::shard::ShardInner;
use crate::wal::{Wal, WalSettings};

/// Why a memtable was frozen (the `reason` label of `tierkv_flush_triggers_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The shard's memtable reached its derived size.
    MemtableFull,
    /// The node's write buffers passed their budget: largest first.
    Budget,
    /// The WAL passed `wal.max_bytes`: the shards keeping its oldest file.
    WalSize,
    /// The oldest WAL file passed `wal.max_file_age`.
    WalAge,
    /// A follower asked this leader to flush.
    FlushRequest,
    /// The shard is closing.
    Shutdown,
}

impl Default for BufferMetrics {
    /// Every series exists from the start (at 0), so that rates and absences read right.
    fn default() -> Self {
        let m = Self {
            triggers: Family::default(),
            requests_sent: Family::default(),
            requests_received: Family::default(),
            backpressure: Counter::default(),
            flush_duration: Histogram::default(),
            compaction_duration: Histogram::default(),
        };
        for t in [
            Trigger::MemtableFull,
            Trigger::Budget,
            Trigger::WalSize,
            Trigger::WalAge,
            Trigger::FlushRequest,
            Trigger::Shutdown,
        ] {
            drop(m.triggers.get_or_create(&[("reason", t.label())]));
        }
        for hard in [false, true] {
            drop(m.requests_sent.get_or_create(&[("kind", kind_label(hard))]));
            drop(
                m.requests_received
                    .get_or_create(&[("kind", kind_label(hard))]),
            );
        }
        m
    }
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Self::MemtableFull => "memtable_full",
            Self::Budget => "budget",
            Self::WalSize => "wal_size",
            Self::WalAge => "wal_age",
            Self::FlushRequest => "flush_request",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Figures of the write buffers and of background work.
#[derive(Debug)]
struct BufferMetrics {
    triggers: Family<[(&'static str, &'static str); 1], Counter>,
    requests_sent: Family<[(&'static str, &'static str); 1], Counter>,
    requests_received: Family<[(&'static str, &'static str); 1], Counter>,
    backpressure: Counter,
    flush_duration: Histogram,
    compaction_duration: Histogram,
}

/// The write buffers and background work of one node; cheap to clone.
#[derive(Debug, Clone)]
pub struct WriteBuffers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `engine.write_buffer_bytes` (B).
    budget: usize,
    /// `engine.max_unflushed_bytes` (L).
    limit: usize,
    /// The engine options the per-shard memtable size derives from.
    opts: EngineOptions,
    wal_max_bytes: u64,
    wal_max_age: Duration,
    active: AtomicUsize,
    frozen: AtomicUsize,
    peak: AtomicUsize,
    /// The shards of the node (dropped shards are pruned).
    shards: Mutex<Vec<Weak<ShardInner>>>,
    hosted: AtomicUsize,
    wake: Notify,
    flush_slots: Semaphore,
    compaction_slots: Semaphore,
    flush_waiting: AtomicUsize,
    compaction_waiting: AtomicUsize,
    pacer: Pacer,
    metrics: BufferMetrics,
}

impl WriteBuffers {
    /// The write buffers of a node with these settings.
    #[must_use]
    pub fn new(opts: &EngineOptions, wal: &WalSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                budget: opts.write_buffer_bytes,
                limit: opts.max_unflushed_bytes.max(opts.write_buffer_bytes),
                opts: opts.clone(),
                wal_max_bytes: wal.max_bytes,
                wal_max_age: wal.max_file_age,
                active: AtomicUsize::new(0),
                frozen: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                shards: Mutex::new(Vec::new()),
                hosted: AtomicUsize::new(0),
                wake: Notify::new(),
                flush_slots: Semaphore::new(opts.flush_concurrency.max(1)),
                compaction_slots: Semaphore::new(opts.compaction_concurrency.max(1)),
                flush_waiting: AtomicUsize::new(0),
                compaction_waiting: AtomicUsize::new(0),
                pacer: Pacer::new(opts.background_bytes_per_sec),
                metrics: BufferMetrics::default(),
            }),
        }
    }

    /// Write buffers with the default settings (tests, tools).
    #[must_use]
    pub fn standalone(opts: &EngineOptions) -> Self {
        Self::new(opts, &WalSettings::default())
    }

    // ---- accounting ----

    /// Charges `bytes` to the active part (a memtable inserted).
    pub(crate) fn charge(&self, bytes: usize) {
        let i = &self.inner;
        let before = i.active.fetch_add(bytes, Ordering::Relaxed);
        let total = before + bytes + i.frozen.load(Ordering::Relaxed);
        i.peak.fetch_max(total, Ordering::Relaxed);
        if total > i.budget && total - bytes <= i.budget {
            i.wake.notify_one();
        }
    }

    /// Moves `bytes` from the active part to the frozen part (a memtable frozen).
    pub(crate) fn freeze(&self, bytes: usize) {
        let i = &self.inner;
        i.frozen.fetch_add(bytes, Ordering::Relaxed);
        sub(&i.active, bytes);
    }

    /// Gives back `bytes` (a memtable dropped).
    pub(crate) fn release(&self, bytes: usize, frozen: bool) {
        let i = &self.inner;
        sub(if frozen { &i.frozen } else { &i.active }, bytes);
    }

    /// Bytes charged by active memtables.
    #[must_use]
    pub fn active_bytes(&self) -> usize {
        self.inner.active.load(Ordering::Relaxed)
    }

    /// Bytes charged by frozen memtables (being flushed, or awaiting their leader's flush).
    #[must_use]
    pub fn frozen_bytes(&self) -> usize {
        self.inner.frozen.load(Ordering::Relaxed)
    }

    /// Every memtable's charge: what the budget and the limit bound.
    #[must_use]
    pub fn total_bytes(&self) -> usize {
        self.active_bytes() + self.frozen_bytes()
    }

    /// The highest [`WriteBuffers::total_bytes`] seen since the node started.
    #[must_use]
    pub fn peak_bytes(&self) -> usize {
        self.inner.peak.load(Ordering::Relaxed)
    }

    /// `engine.write_buffer_bytes`.
    #[must_use]
    pub fn budget(&self) -> usize {
        self.inner.budget
    }

    /// `engine.max_unflushed_bytes`.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Whether writes must be refused: the node's write buffers are past the limit.
    #[must_use]
    pub fn over_limit(&self) -> bool {
        self.total_bytes() > self.inner.limit
    }

    /// Counts a write refused for backpressure.
    pub(crate) fn note_backpressure(&self) {
        self.inner.metrics.backpressure.inc();
    }

    /// Counts a memtable frozen for `why`.
    pub(crate) fn note_trigger(&self, why: Trigger) {
        self.inner
            .metrics
            .triggers
            .get_or_create(&[("reason", why.label())])
            .inc();
    }

    /// Counts a flush request sent to a leader.
    pub(crate) fn note_request_sent(&self, hard: bool) {
        self.inner
            .metrics
            .requests_sent
            .get_or_create(&[("kind", kind_label(hard))])
            .inc();
    }

    /// Counts a flush request received from a follower.
    pub(crate) fn note_request_received(&self, hard: bool) {
        self.inner
            .metrics
            .requests_received
            .get_or_create(&[("kind", kind_label(hard))])
            .inc();
    }

    // ---- shards ----

    /// Adds a shard of the node.
    pub(crate) fn register(&self, shard: &Arc<ShardInner>) {
        let mut shards = self.inner.shards.lock();
        shards.push(Arc::downgrade(shard));
        self.inner.hosted.store(shards.len(), Ordering::Relaxed);
    }

    /// The shards alive now (pruning the dropped ones).
    fn shards(&self) -> Vec<Arc<ShardInner>> {
        let mut shards = self.inner.shards.lock();
        shards.retain(|w| w.strong_count() > 0);
        self.inner.hosted.store(shards.len(), Ordering::Relaxed);
        shards.iter().filter_map(Weak::upgrade).collect()
    }

    /// The size at which each shard freezes its memtable: derived from the budget and the
    /// number of shards hosted ([`EngineOptions::memtable_bytes`]).
    #[must_use]
    pub fn memtable_bytes(&self) -> usize {
        self.inner
            .opts
            .memtable_bytes(self.inner.hosted.load(Ordering::Relaxed))
    }

    // ---- background work ----

    /// Waits for one of the node's flush slots; the returned permit holds it.
    pub(crate) async fn flush_slot(&self) -> SemaphorePermit<'_> {
        slot(&self.inner.flush_slots, &self.inner.flush_waiting).await
    }

    /// Waits for one of the node's compaction slots.
    pub(crate) async fn compaction_slot(&self) -> SemaphorePermit<'_> {
        slot(&self.inner.compaction_slots, &self.inner.compaction_waiting).await
    }

    /// Waits until `bytes` of background upload fit the node's pace.
    pub(crate) async fn pace(&self, bytes: usize) {
        let wait = self.inner.pacer.reserve(bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Records how long a flush took.
    pub(crate) fn observe_flush(&self, d: Duration) {
        self.inner.metrics.flush_duration.observe(d);
    }

    /// Records how long a compaction took.
    pub(crate) fn observe_compaction(&self, d: Duration) {
        self.inner.metrics.compaction_duration.observe(d);
    }

    // ---- the scheduler ----

    /// Starts the node's scheduler (see the module docs) until `cancel`. `wal`: the node's
    /// WAL, whose size and age it bounds.
    pub fn start(&self, wal: Option<Wal>, cancel: CancellationToken) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    () = me.inner.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                me.balance();
                if let Some(w) = &wal {
                    me.bound_wal(w);
                }
            }
        })
    }

    /// One turn of the memory rules (1 and 2 of the module docs). Returns how many memtables
    /// it froze.
    pub fn balance(&self) -> usize {
        let i = &self.inner;
        let total = self.total_bytes();
        if total <= i.budget {
            return 0;
        }
        let shards = self.shards();
        if total > i.limit {
            for s in &shards {
                if !s.may_lead() && s.has_unflushed() {
                    s.request_flush(s.applied_seq(), true);
                }
            }
        }
        // Followed shards whose copies are frozen wait for their leader's flush: ask again (at
        // most once a second each), in case a request was lost or went to a leader that
        // since stepped down.
        for s in &shards {
            if !s.may_lead() && s.has_frozen() {
                s.request_flush(s.applied_seq(), false);
            }
        }
        let target = i.budget / 2;
        let mut active = self.active_bytes();
        if active <= target {
            // What is frozen is on its way out; freezing more would only make small segments.
            return 0;
        }
        let mut by_size: Vec<(usize, &Arc<ShardInner>)> = shards
            .iter()
            .map(|s| (s.active_memory(), s))
            .filter(|(m, _)| *m > 0)
            .collect();
        // Largest first: it frees the most per flush (note 0007).
        by_size.sort_by_key(|(m, _)| std::cmp::Reverse(*m));
        let mut froze = 0;
        for (mem, s) in by_size {
            if active <= target {
                break;
            }
            if s.freeze_for(Trigger::Budget, None) {
                froze += 1;
                if !s.may_lead() {
                    s.request_flush(s.applied_seq(), false);
                }
                active = active.saturating_sub(mem);
            }
        }
        froze
    }

    /// One turn of the WAL rules (3 of the module docs).
    pub fn bound_wal(&self, wal: &Wal) {
        let i = &self.inner;
        let Some(oldest) = wal.oldest_file() else {
            return;
        };
        let why = if wal.stats().bytes > i.wal_max_bytes {
            Trigger::WalSize
        } else if oldest.age > i.wal_max_age {
            Trigger::WalAge
        } else {
            return;
        };
        let shards = self.shards();
        for (id, seq) in oldest.pins {
            let Some(s) = shards.iter().find(|s| s.id == id) else {
                continue;
            };
            s.freeze_for(why, Some(seq));
            if !s.may_lead() {
                s.request_flush(seq, false);
            }
        }
    }

    /// Registers the figures into `registry`: budget, limit, peak, flush triggers, flush
    /// requests, backpressure, flush and compaction queues and durations.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let m = &self.inner.metrics;
        let read = |f: fn(&Inner) -> u64| {
            let weak = Arc::downgrade(&self.inner);
            Observed::gauge(move || weak.upgrade().map_or(0, |i| f(&i)))
        };
        registry.register(
            "tierkv_write_buffer_budget_bytes",
            "engine.write_buffer_bytes: past it the largest memtables flush",
            read(|i| i.budget as u64),
        );
        registry.register(
            "tierkv_write_buffer_limit_bytes",
            "engine.max_unflushed_bytes: past it writes get backpressure",
            read(|i| i.limit as u64),
        );
        registry.register(
            "tierkv_write_buffer_peak_bytes",
            "Highest write-buffer total (active and frozen memtables) since the node started",
            read(|i| i.peak.load(Ordering::Relaxed) as u64),
        );
        registry.register(
            "tierkv_memtable_target_bytes",
            "Size at which each shard freezes its memtable (derived from the budget)",
            read(|i| {
                i.opts
                    .memtable_bytes(i.hosted.load(Ordering::Relaxed))
                    .try_into()
                    .unwrap_or(u64::MAX)
            }),
        );
        registry.register(
            "tierkv_flush_triggers",
            "Memtables frozen for flushing, by reason",
            m.triggers.clone(),
        );
        registry.register(
            "tierkv_flush_requests_sent",
            "Flush requests sent to the leaders of shards this node follows",
            m.requests_sent.clone(),
        );
        registry.register(
            "tierkv_flush_requests_received",
            "Flush requests received from followers",
            m.requests_received.clone(),
        );
        registry.register(
            "tierkv_backpressure",
            "Writes refused because write buffers were past their limit",
            m.backpressure.clone(),
        );
        registry.register(
            "tierkv_flush_queue",
            "Shards waiting for a flush slot",
            read(|i| i.flush_waiting.load(Ordering::Relaxed) as u64),
        );
        registry.register(
            "tierkv_compaction_queue",
            "Shards waiting for a compaction slot",
            read(|i| i.compaction_waiting.load(Ordering::Relaxed) as u64),
        );
        registry.register(
            "tierkv_flush_duration_seconds",
            "Flush duration (build, upload, publish)",
            m.flush_duration.clone(),
        );
        registry.register(
            "tierkv_compaction_duration_seconds",
            "Compaction duration (merge, upload, publish)",
            m.compaction_duration.clone(),
        );
    }
}

fn kind_label(hard: bool) -> &'static str {
    if hard { "hard" } else { "soft" }
}

/// Subtracts without wrapping (a release never exceeds what was charged, but a wrap would
/// make every later figure absurd).
fn sub(a: &AtomicUsize, bytes: usize) {
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(bytes))
    });
}

async fn slot<'a>(sem: &'a Semaphore, waiting: &AtomicUsize) -> SemaphorePermit<'a> {
    waiting.fetch_add(1, Ordering::Relaxed);
    let permit = sem.acquire().await;
    waiting.fetch_sub(1, Ordering::Relaxed);
    // The semaphore is never closed.
    permit.unwrap_or_else(|_| unreachable!("write-buffer semaphores are never closed"))
}

/// A token bucket: `rate` bytes per second, one second of burst. `reserve` takes the tokens
/// at once (going into debt) and says how long the caller must wait before using them, so
/// concurrent callers queue in order.
#[derive(Debug)]
struct Pacer {
    rate: f64,
    /// (tokens available, possibly negative; when that was computed)
    state: Mutex<(f64, Option<Instant>)>,
}

impl Pacer {
    fn new(bytes_per_sec: u64) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let rate = bytes_per_sec.max(1) as f64;
        Self {
            rate,
            state: Mutex::new((rate, None)),
        }
    }

    fn reserve(&self, bytes: usize) -> Duration {
        let mut st = self.state.lock();
        let now = Instant::now();
        let elapsed = st.1.map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        #[allow(clippy::cast_precision_loss)]
        let want = bytes as f64;
        let tokens = (st.0 + elapsed * self.rate).min(self.rate) - want;
        *st = (tokens, Some(now));
        if tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_lets_a_burst_through_then_spaces_uploads() {
        let p = Pacer::new(1 << 20);
        assert_eq!(p.reserve(512 << 10), Duration::ZERO);
        assert_eq!(p.reserve(512 << 10), Duration::ZERO);
        let wait = p.reserve(1 << 20);
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }

    #[test]
    fn charges_move_between_active_and_frozen_and_the_peak_stays() {
        let opts = EngineOptions {
            write_buffer_bytes: 1 << 20,
            ..EngineOptions::default()
        };
        let b = WriteBuffers::standalone(&opts);
        b.charge(300);
        b.charge(200);
        b.freeze(300);
        assert_eq!((b.active_bytes(), b.frozen_bytes()), (200, 300));
        b.release(300, true);
        b.release(200, false);
        assert_eq!(b.total_bytes(), 0);
        assert_eq!(b.peak_bytes(), 500);
        b.release(10, false);
        assert_eq!(b.total_bytes(), 0, "a release never wraps below zero");
    }
}
