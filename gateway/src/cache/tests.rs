//! Tests of the read tier over a scripted backend: the coalescing rule, the staleness bound,
//! expiry in both tiers, what writes teach, facts ordering, a restart with a warm disk tier.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tierkv_engine::shard::ScanPage;
use tierkv_engine::types::WriteBatch;
use tokio::sync::Semaphore;

use super::fresh::{Keep, order};
use super::*;
use crate::backend::NotReady;
use tierkv_engine::replica::LeaseMark;

/// A one-key store whose reads wait for a permit when `gated`, counting calls.
struct Scripted {
    entry: parking_lot::Mutex<Option<Entry>>,
    gate: Semaphore,
    gated: std::sync::atomic::AtomicBool,
    gets: AtomicUsize,
    revalidations: AtomicUsize,
    /// Reads that have started (before the gate).
    started: AtomicUsize,
    /// The next read panics (a bug in a backend).
    panic_once: std::sync::atomic::AtomicBool,
    /// The read lease `get_leased` answers with (zero: none), with the mark below.
    lease: parking_lot::Mutex<Duration>,
    /// The shard's committed state: its commit point follows `set`'s versions.
    mark: parking_lot::Mutex<LeaseMark>,
    /// `get_leased` calls.
    leased: AtomicUsize,
}

impl Scripted {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            entry: parking_lot::Mutex::new(None),
            gate: Semaphore::new(0),
            gated: std::sync::atomic::AtomicBool::new(false),
            gets: AtomicUsize::new(0),
            revalidations: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            panic_once: std::sync::atomic::AtomicBool::new(false),
            lease: parking_lot::Mutex::new(Duration::ZERO),
            mark: parking_lot::Mutex::new(LeaseMark {
                epoch: tierkv_engine::types::Epoch(1),
                seq: SeqNo(0),
            }),
            leased: AtomicUsize::new(0),
        })
    }

    fn set(&self, version: u64, value: &'static str, expires_at: Option<u64>) {
        self.mark.lock().seq = SeqNo(version);
        *self.entry.lock() = Some(Entry {
            key: keys::data_key(&Bytes::from_static(KEY)),
            seq: SeqNo(version),
            kind: EntryKind::Put {
                value: Bytes::from_static(value.as_bytes()),
                content_type: None,
            },
            expires_at,
        });
    }

    fn calls(&self) -> usize {
        self.gets.load(Ordering::SeqCst) + self.revalidations.load(Ordering::SeqCst)
    }

    /// What a read sees once it passes the gate.
    async fn pass(&self) -> Option<Entry> {
        self.started.fetch_add(1, Ordering::SeqCst);
        assert!(
            !self.panic_once.swap(false, Ordering::SeqCst),
            "scripted backend panics"
        );
        if self.gated.load(Ordering::SeqCst) {
            self.gate.acquire().await.expect("open").forget();
        }
        self.entry.lock().clone()
    }
}

#[async_trait]
impl Backend for Scripted {
    fn shard_count(&self) -> u32 {
        1
    }
    async fn get(
        &self,
        _: ShardId,
        _: Bytes,
        _: ReadConsistency,
    ) -> Result<Option<Entry>, BackendError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        Ok(self.pass().await)
    }
    async fn get_if_changed(
        &self,
        _: ShardId,
        _: Bytes,
        known: SeqNo,
    ) -> Result<Revalidated, BackendError> {
        self.revalidations.fetch_add(1, Ordering::SeqCst);
        Ok(Revalidated::compare(self.pass().await, known))
    }
    async fn get_leased(
        &self,
        shard: ShardId,
        key: Bytes,
        known: Option<SeqNo>,
    ) -> Result<(Revalidated, Option<Lease>), BackendError> {
        self.leased.fetch_add(1, Ordering::SeqCst);
        let r = match known {
            Some(k) => self.get_if_changed(shard, key, k).await?,
            None => Revalidated::Current(self.get(shard, key, ReadConsistency::Strong).await?),
        };
        let duration = *self.lease.lock();
        let lease = (!duration.is_zero()).then(|| Lease {
            duration,
            mark: *self.mark.lock(),
        });
        Ok((r, lease))
    }
    async fn write(
        &self,
        _: ShardId,
        _: WriteBatch,
    ) -> Result<(SeqNo, Vec<Option<SeqNo>>), BackendError> {
        Err(BackendError::Protocol {
            node: None,
            what: "no writes here",
        })
    }
    async fn scan(
        &self,
        _: ShardId,
        _: Bytes,
        _: Option<Bytes>,
        _: usize,
        _: ReadConsistency,
    ) -> Result<ScanPage, BackendError> {
        Ok(ScanPage {
            entries: Vec::new(),
            next: None,
        })
    }
    async fn ready(&self) -> Result<(), NotReady> {
        Ok(())
    }
}

const KEY: &[u8] = b"k";

fn key() -> Bytes {
    Bytes::from_static(KEY)
}

async fn tier(backend: &Arc<Scripted>, opts: &CacheOptions) -> ReadTier {
    let store = if opts.enabled {
        Some(ValueStore::open(opts, 1 << 20).await.expect("open"))
    } else {
        None
    };
    tier_with(backend, store, opts)
}

fn tier_with(backend: &Arc<Scripted>, store: Option<ValueStore>, opts: &CacheOptions) -> ReadTier {
    let b: Arc<dyn Backend> = Arc::clone(backend) as Arc<dyn Backend>;
    ReadTier::new(b, store, opts, &mut Registry::default())
}

async fn read(t: &ReadTier, want: Want, now: u64) -> ReadOutcome {
    t.read(ShardId(0), &key(), want, now).await.expect("read")
}

/// A strong read of user key `k` (the scripted store answers every key alike).
async fn read_strong(t: &ReadTier, k: &'static str) -> ReadOutcome {
    t.read(
        ShardId(0),
        &Bytes::from_static(k.as_bytes()),
        Want::Strong,
        0,
    )
    .await
    .expect("read")
}

fn version(o: &ReadOutcome) -> Option<u64> {
    o.value.as_ref().map(|v| v.version)
}

/// Polls (yielding, with a deadline) until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::task::yield_now().await;
    }
}

/// A strong read that arrives while a flight is on its way to the leader does not take that
/// flight's (possibly older) answer: it waits for a flight sent after it arrived. Reads that
/// arrive while that second flight is still open share it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strong_reads_join_only_flights_sent_after_they_arrived() {
    let b = Scripted::new();
    b.set(1, "one", None);
    b.gated.store(true, Ordering::SeqCst);
    let t = tier(&b, &CacheOptions::default()).await;
    let first = tokio::spawn({
        let t = t.clone();
        async move { read(&t, Want::Strong, 0).await }
    });
    // The first flight has reached the "leader" and read nothing yet.
    until("first flight sent", || {
        b.started.load(Ordering::SeqCst) == 1
    })
    .await;
    // A write completes; then more strong reads begin.
    b.set(2, "two", None);
    let later: Vec<_> = (0..20)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { read(&t, Want::Strong, 0).await })
        })
        .collect();
    // They share flights of their own, sent after they arrived: the second goes at once
    // (one is in flight), a third, if the second closed before they all arrived, waits for
    // the first to end.
    until("later reads coalesced", || {
        t.inner.metrics.coalesced.get() >= 18
    })
    .await;
    until("second flight sent", || {
        b.started.load(Ordering::SeqCst) == 2
    })
    .await;
    // The leader reads happen now, after the write: they see 2.
    b.gate.add_permits(3);
    assert_eq!(version(&first.await.expect("task")), Some(2));
    for r in later {
        let r = r.await.expect("task");
        assert_eq!(
            version(&r),
            Some(2),
            "a read that began after the write saw it"
        );
    }
    assert!(
        b.calls() <= 3,
        "twenty-one strong reads, {} upstream requests",
        b.calls()
    );
}

/// The rule itself: with the first flight answered with the old state after the write, a
/// read that began after the write still gets the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_flight_answer_is_never_handed_to_a_later_strong_read() {
    let b = Scripted::new();
    b.set(1, "one", None);
    b.gated.store(true, Ordering::SeqCst);
    let t = tier(&b, &CacheOptions::default()).await;
    let first = tokio::spawn({
        let t = t.clone();
        async move { read(&t, Want::Strong, 0).await }
    });
    until("first flight sent", || {
        b.started.load(Ordering::SeqCst) == 1
    })
    .await;
    // The leader answers the first flight (v1) ...
    b.gate.add_permits(1);
    let first = first.await.expect("task");
    assert_eq!(version(&first), Some(1));
    // ... and a write of v2 completes before the next read begins.
    b.set(2, "two", None);
    b.gate.add_permits(1);
    let second = read(&t, Want::Strong, 0).await;
    assert_eq!(version(&second), Some(2));
    assert_eq!(second.answer, Answer::Miss);
    // Unchanged since: revalidated, no value shipped.
    b.gate.add_permits(1);
    let third = read(&t, Want::Strong, 0).await;
    assert_eq!(
        (version(&third), third.answer),
        (Some(2), Answer::Revalidated)
    );
    assert_eq!(b.revalidations.load(Ordering::SeqCst), 2);
}

/// A flight whose driving read goes away (its request cancelled, or a panicking backend)
/// leaves the table, and the reads that joined it start over with a flight of their own:
/// they are answered, with the current value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flight_whose_driver_goes_away_does_not_stick() {
    let b = Scripted::new();
    b.set(1, "one", None);
    b.gated.store(true, Ordering::SeqCst);
    let t = tier(&b, &CacheOptions::default()).await;
    let driver = tokio::spawn({
        let t = t.clone();
        async move { read(&t, Want::Strong, 0).await }
    });
    until("first flight sent", || {
        b.started.load(Ordering::SeqCst) == 1
    })
    .await;
    // Eventual reads with a generous bound join the flight in the air.
    let members: Vec<_> = (0..10)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(
                async move { read(&t, Want::Eventual(Duration::from_secs(3600)), 0).await },
            )
        })
        .collect();
    until("members joined", || t.inner.metrics.coalesced.get() >= 10).await;
    b.set(2, "two", None);
    driver.abort();
    assert!(driver.await.expect_err("aborted").is_cancelled());
    // One of them drives a new flight; the rest join it (each join counts once more: 10
    // joins of the first flight, 9 of the second). Waiting for them before the answer is
    // released keeps a member that a loaded machine wakes late from finding the key with
    // no flight and no cache (this tier has no value store) and sending a flight of its own.
    until("a new flight sent", || {
        b.started.load(Ordering::SeqCst) == 2
    })
    .await;
    until("the other members joined it", || {
        t.inner.metrics.coalesced.get() >= 19
    })
    .await;
    b.gate.add_permits(10);
    for m in members {
        assert_eq!(version(&m.await.expect("task")), Some(2));
    }
    assert_eq!(b.calls(), 2, "one flight replaced the abandoned one");
    assert_eq!(t.inner.flights.pending(), 0);
    // A panic in the backend fails the read that drove the flight, and only it.
    b.gated.store(false, Ordering::SeqCst);
    b.panic_once.store(true, Ordering::SeqCst);
    let panicked = tokio::spawn({
        let t = t.clone();
        async move { read(&t, Want::Strong, 0).await }
    });
    assert!(panicked.await.expect_err("panics").is_panic());
    assert_eq!(t.inner.flights.pending(), 0);
    assert_eq!(version(&read(&t, Want::Strong, 0).await), Some(2));
}

/// Many concurrent strong reads of one key cost a handful of upstream requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_strong_reads_coalesce() {
    let b = Scripted::new();
    b.set(7, "v", None);
    b.gated.store(true, Ordering::SeqCst);
    let t = tier(&b, &CacheOptions::default()).await;
    let reads: Vec<_> = (0..200)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { read(&t, Want::Strong, 0).await })
        })
        .collect();
    // At most two flights are in flight for a key; the reads that arrive meanwhile share the
    // third, sent when the first ends.
    until("every read arrived", || {
        t.inner.metrics.coalesced.get() >= 197
    })
    .await;
    b.gate.add_permits(1000);
    for r in reads {
        assert_eq!(version(&r.await.expect("task")), Some(7));
    }
    assert!(
        b.calls() <= 3,
        "200 concurrent strong reads, {} upstream requests",
        b.calls()
    );
    b.gated.store(false, Ordering::SeqCst);
    // Off: one request each.
    let b2 = Scripted::new();
    b2.set(7, "v", None);
    let off = tier(
        &b2,
        &CacheOptions {
            coalesce: false,
            ..CacheOptions::default()
        },
    )
    .await;
    for _ in 0..10 {
        read(&off, Want::Strong, 0).await;
    }
    assert_eq!(b2.calls(), 10);
}

/// Eventual reads: from the cache within the bound (no request), through the leader past it.
#[tokio::test(start_paused = true)]
async fn eventual_reads_respect_the_staleness_bound() {
    let b = Scripted::new();
    b.set(1, "one", None);
    let t = tier(&b, &CacheOptions::default()).await;
    assert_eq!(version(&read(&t, Want::Strong, 0).await), Some(1));
    let calls = b.calls();
    // Another gateway writes v2: this one does not know.
    b.set(2, "two", None);
    tokio::time::advance(Duration::from_millis(200)).await;
    let r = read(&t, Want::Eventual(Duration::from_millis(250)), 0).await;
    assert_eq!((version(&r), r.answer), (Some(1), Answer::Hit));
    assert_eq!(b.calls(), calls, "no round trip");
    tokio::time::advance(Duration::from_millis(100)).await;
    let r = read(&t, Want::Eventual(Duration::from_millis(250)), 0).await;
    assert_eq!((version(&r), r.answer), (Some(2), Answer::Miss));
    // A strong read never takes the cached value without asking.
    b.set(3, "three", None);
    let r = read(&t, Want::Strong, 0).await;
    assert_eq!(version(&r), Some(3));
    // max_staleness 0: asks too.
    b.set(4, "four", None);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        version(&read(&t, Want::Eventual(Duration::ZERO), 0).await),
        Some(4)
    );
}

/// This gateway's own writes and deletes are visible to its eventual reads at once: a write
/// replaces the cached value of a key the cache holds, and adds none for a key it does not
/// (values enter the cache when read).
#[tokio::test(start_paused = true)]
async fn own_writes_teach_the_cache() {
    let b = Scripted::new();
    b.set(4, "old", None);
    let t = tier(&b, &CacheOptions::default()).await;
    let value = |v: u64| CachedValue {
        version: v,
        value: Bytes::from_static(b"mine"),
        content_type: None,
        expires_at: None,
    };
    let r = read(&t, Want::Eventual(Duration::from_secs(1)), 0).await;
    assert_eq!((version(&r), r.answer), (Some(4), Answer::Miss));
    t.wrote(&key(), value(5), Instant::now());
    let r = read(&t, Want::Eventual(Duration::from_secs(1)), 0).await;
    assert_eq!((version(&r), r.answer), (Some(5), Answer::Hit));
    assert_eq!(r.value.map(|v| v.value), Some(Bytes::from_static(b"mine")));
    let other = Bytes::from_static(b"other");
    t.wrote(&other, value(7), Instant::now());
    let store = t.inner.store.as_ref().expect("a cache");
    assert!(
        store.get_memory(&other).is_none(),
        "an uncached key stays out"
    );
    assert_eq!(
        t.inner.facts.get(&other).map(|f| f.state),
        Some(State::Present(7))
    );
    // An older fact (a read that began before the write) does not replace it.
    t.inner.learn(
        ShardId(0),
        &key(),
        &Resolved {
            value: Some(value(4)),
            answer: Answer::Miss,
            lease: None,
        },
        Instant::now(),
    );
    assert_eq!(
        version(&read(&t, Want::Eventual(Duration::from_secs(1)), 0).await),
        Some(5)
    );
    t.deleted(&key(), 6, Instant::now());
    let r = read(&t, Want::Eventual(Duration::from_secs(1)), 0).await;
    assert_eq!((version(&r), r.answer), (None, Answer::Hit));
    assert_eq!(b.calls(), 1);
    t.forget(&key());
    let r = read(&t, Want::Eventual(Duration::from_secs(1)), 0).await;
    assert_eq!((version(&r), r.answer), (Some(4), Answer::Miss));
    assert_eq!(b.calls(), 2);
}

/// A cached value owns its bytes: a value that arrived as a slice of a larger buffer (an
/// HTTP body's read buffer, a node's batched answer) does not keep that buffer alive.
#[tokio::test]
async fn cached_values_do_not_pin_the_buffers_they_arrived_in() {
    let store = ValueStore::open(&CacheOptions::default(), 1 << 20)
        .await
        .expect("open");
    let frame = Bytes::from(vec![7u8; 64 * 1024]);
    let value = frame.slice(100..1124);
    let content_type = frame.slice(2000..2010);
    store.insert(
        key(),
        CachedValue {
            version: 3,
            value: value.clone(),
            content_type: Some(content_type.clone()),
            expires_at: None,
        },
    );
    let cached = store.get(&key()).await.expect("cached");
    assert_eq!((cached.version, &cached.value), (3, &value));
    let inside = |b: &Bytes| frame.as_ptr_range().contains(&b.as_ptr());
    assert!(
        !inside(&cached.value),
        "the cached value points into the frame"
    );
    assert!(
        !cached.content_type.as_ref().is_some_and(inside),
        "the cached content type points into the frame"
    );
}

/// An expired value is never served, from memory or from disk, whatever the node says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_values_are_never_served_from_either_tier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = CacheOptions {
        disk_dir: Some(dir.path().join("cache")),
        disk_bytes: 16 << 20,
        memory_bytes: 1 << 20,
        ..CacheOptions::default()
    };
    let b = Scripted::new();
    // The node's clock is behind: it still calls the entry live.
    b.set(3, "short-lived", Some(1_000));
    let t = tier(&b, &opts).await;
    let lasting = Duration::from_secs(60);
    assert_eq!(version(&read(&t, Want::Strong, 999).await), Some(3));
    assert_eq!(
        version(&read(&t, Want::Eventual(lasting), 999).await),
        Some(3)
    );
    assert_eq!(read(&t, Want::Eventual(lasting), 1_000).await.value, None);
    assert_eq!(read(&t, Want::Strong, 1_000).await.value, None);
    // From the disk tier: the memory tier forgets, the disk tier answers.
    let store = t.inner.store.clone().expect("caching");
    until_on_disk(&store).await;
    store.clear_memory();
    let r = read(&t, Want::Eventual(lasting), 999).await;
    assert_eq!((version(&r), r.answer), (Some(3), Answer::Hit));
    assert!(store.counters().disk_hits.get() >= 1);
    store.clear_memory();
    assert_eq!(read(&t, Want::Eventual(lasting), 5_000).await.value, None);
    store.close().await.expect("close");
}

/// Writes the key's cached value to the disk tier and waits (with a deadline) until it is
/// there.
async fn until_on_disk(store: &ValueStore) {
    let value = store.get(&key()).await.expect("cached");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !store.on_disk(&key()).await {
        assert!(std::time::Instant::now() < deadline, "never reached disk");
        store.insert_to_disk(key(), value.clone());
        for _ in 0..100 {
            if store.on_disk(&key()).await {
                return;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// A restarted gateway's disk tier holds values but no facts: it serves nothing before the
/// leader confirmed it (a changed key comes back new, an unchanged one revalidated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_disk_tier_serves_nothing_unconfirmed_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = CacheOptions {
        disk_dir: Some(dir.path().join("cache")),
        disk_bytes: 16 << 20,
        ..CacheOptions::default()
    };
    let b = Scripted::new();
    b.set(1, "old", None);
    let t = tier(&b, &opts).await;
    assert_eq!(version(&read(&t, Want::Strong, 0).await), Some(1));
    let store = t.inner.store.clone().expect("caching");
    store.close().await.expect("close");
    drop(t);
    drop(store);
    // Written elsewhere while this gateway was down.
    b.set(2, "new", None);
    let store = ValueStore::open(&opts, 1 << 20).await.expect("reopen");
    assert_eq!(
        store.get(&key()).await.map(|v| v.version),
        Some(1),
        "the disk tier kept the old value"
    );
    let t = tier_with(&b, Some(store.clone()), &opts);
    let r = read(&t, Want::Eventual(Duration::from_secs(3600)), 0).await;
    assert_eq!((version(&r), r.answer), (Some(2), Answer::Miss));
    let r = read(&t, Want::Strong, 0).await;
    assert_eq!((version(&r), r.answer), (Some(2), Answer::Revalidated));
    store.close().await.expect("close");
}

/// A second store on the same directory is refused while the first is open.
#[tokio::test]
async fn one_store_per_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = CacheOptions {
        disk_dir: Some(dir.path().join("cache")),
        disk_bytes: 16 << 20,
        ..CacheOptions::default()
    };
    let first = ValueStore::open(&opts, 1 << 20).await.expect("open");
    let second = ValueStore::open(&opts, 1 << 20).await;
    assert!(matches!(second, Err(StoreError::Dir { .. })), "{second:?}");
    first.close().await.expect("close");
    let small = ValueStore::open(
        &CacheOptions {
            disk_bytes: 1 << 20,
            ..opts
        },
        1 << 20,
    )
    .await;
    assert!(matches!(small, Err(StoreError::InvalidOptions { .. })));
}

/// Values round-trip through their disk encoding; an unknown format is foyer's "magic
/// mismatch" (a miss).
#[test]
fn value_encoding_round_trips() {
    use foyer::Code;
    for v in [
        CachedValue {
            version: 9,
            value: Bytes::from_static(b"x"),
            content_type: Some(Bytes::from_static(b"text/plain")),
            expires_at: Some(77),
        },
        CachedValue {
            version: u64::MAX,
            value: Bytes::new(),
            content_type: None,
            expires_at: None,
        },
    ] {
        let mut buf = Vec::new();
        v.encode(&mut buf).expect("encode");
        assert!(buf.len() <= v.estimated_size());
        assert_eq!(CachedValue::decode(&mut buf.as_slice()).expect("decode"), v);
        buf[0] = 9;
        let e = CachedValue::decode(&mut buf.as_slice()).expect_err("format");
        assert_eq!(e.kind(), foyer::ErrorKind::MagicMismatch);
    }
}

fn fact(state: State, from: u64, to: u64, base: Instant) -> Fact {
    Fact {
        state,
        verified_at: base + Duration::from_millis(from),
        learned_at: base + Duration::from_millis(to),
        leased_until: None,
        mark: None,
    }
}

/// Facts keep the later state when they can tell, and forget otherwise.
#[test]
fn facts_order_by_version_then_by_time() {
    let t = Instant::now();
    let p = State::Present;
    // Versions known: the higher wins whatever the times.
    assert_eq!(
        order(&fact(p(5), 10, 20, t), &fact(p(4), 30, 40, t)),
        Keep::Old
    );
    assert_eq!(
        order(
            &fact(p(4), 30, 40, t),
            &fact(State::Absent(Some(5)), 0, 50, t)
        ),
        Keep::New
    );
    assert_eq!(
        order(&fact(p(5), 10, 20, t), &fact(p(5), 15, 25, t)),
        Keep::New
    );
    // An absence of unknown version: by time, when the intervals do not overlap.
    let absent = State::Absent(None);
    assert_eq!(
        order(&fact(p(5), 10, 20, t), &fact(absent, 21, 30, t)),
        Keep::New
    );
    assert_eq!(
        order(&fact(absent, 21, 30, t), &fact(p(5), 10, 20, t)),
        Keep::Old
    );
    assert_eq!(
        order(&fact(p(5), 10, 20, t), &fact(absent, 15, 30, t)),
        Keep::Neither
    );
}

/// The facts table keeps what `learn` decides per key, counts facts older than its time to
/// live as absent, and stays within its bytes however many keys pass, keeping the most
/// recently verified ones.
#[tokio::test(start_paused = true)]
async fn facts_stay_bounded_and_expire() {
    let facts = Facts::new(64 << 10, Duration::from_secs(60));
    let k = Bytes::from_static(b"k");
    let now = Instant::now();
    let at = |v: u64, ms: u64| Fact {
        state: State::Present(v),
        verified_at: now + Duration::from_millis(ms),
        learned_at: now + Duration::from_millis(ms + 1),
        leased_until: None,
        mark: None,
    };
    facts.learn(&k, at(5, 0));
    facts.learn(&k, at(4, 10));
    assert_eq!(facts.get(&k).map(|f| f.state), Some(State::Present(5)));
    facts.learn(&k, fact(State::Absent(None), 0, 20, now));
    assert_eq!(facts.get(&k), None, "unordered facts: forgotten");
    facts.learn(&k, at(6, 0));
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(facts.get(&k), None, "expired");
    // An expired fact gives way to any new one.
    facts.learn(&k, at(1, 61_000));
    assert_eq!(facts.get(&k).map(|f| f.state), Some(State::Present(1)));
    for i in 0..20_000u64 {
        tokio::time::advance(Duration::from_micros(10)).await;
        let now = Instant::now();
        facts.learn(
            &Bytes::from(format!("key{i}")),
            Fact {
                state: State::Present(i),
                verified_at: now,
                learned_at: now,
                leased_until: None,
                mark: None,
            },
        );
        assert!(facts.bytes() <= 64 << 10, "{} bytes", facts.bytes());
    }
    let last = Bytes::from_static(b"key19999");
    assert_eq!(
        facts.get(&last).map(|f| f.state),
        Some(State::Present(19_999))
    );
    assert!(facts.len() > 200, "{} facts kept", facts.len());
}

/// A value as large as the gateway accepts fits a disk block: it reaches the disk tier and
/// comes back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_up_to_the_limit_reach_the_disk_tier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = CacheOptions {
        disk_dir: Some(dir.path().join("cache")),
        disk_bytes: 32 << 20,
        ..CacheOptions::default()
    };
    let max = 1 << 20;
    let store = ValueStore::open(&opts, max).await.expect("open");
    let big = CachedValue {
        version: 1,
        value: Bytes::from((0..max).map(|i| (i % 251) as u8).collect::<Vec<u8>>()),
        content_type: Some(Bytes::from_static(b"application/octet-stream")),
        expires_at: None,
    };
    store.insert(key(), big.clone());
    until_on_disk(&store).await;
    store.clear_memory();
    assert_eq!(store.get(&key()).await, Some(big));
    assert_eq!(store.counters().disk_hits.get(), 1);
    store.close().await.expect("close");
}

/// The cache with read leases on (off by default, design note 0014).
fn leasing() -> CacheOptions {
    CacheOptions {
        read_leases: true,
        ..CacheOptions::default()
    }
}

/// A store holding version 1 whose leader grants 300 ms read leases, and a tier that asks
/// for them.
async fn leasing_tier() -> (Arc<Scripted>, ReadTier) {
    let b = Scripted::new();
    b.set(1, "one", None);
    *b.lease.lock() = Duration::from_millis(300);
    let t = tier(&b, &leasing()).await;
    (b, t)
}

/// Only strong reads ask for read leases: an eventual read's flight asks no lease (a lease
/// granted for nothing would hold the shard's next write), and by default none asks.
#[tokio::test(start_paused = true)]
async fn eventual_reads_and_the_default_ask_for_no_lease() {
    let (b, t) = leasing_tier().await;
    let r = read(&t, Want::Eventual(Duration::from_secs(1)), 0).await;
    assert_eq!((version(&r), r.answer), (Some(1), Answer::Miss));
    assert_eq!((b.calls(), b.leased.load(Ordering::SeqCst)), (1, 0));
    let t = tier(&b, &CacheOptions::default()).await;
    for _ in 0..2 {
        assert_ne!(read(&t, Want::Strong, 0).await.answer, Answer::Leased);
    }
    assert_eq!((b.calls(), b.leased.load(Ordering::SeqCst)), (3, 0));
}

/// Read leases (design note 0014): a strong read within the lease of the key's last
/// revalidation is answered from the cache without a round trip; at the lease's end (counted
/// from when the request was sent) it asks the leader again.
#[tokio::test(start_paused = true)]
async fn strong_reads_under_a_read_lease_need_no_round_trip_until_it_ends() {
    let (b, t) = leasing_tier().await;
    let r = read(&t, Want::Strong, 0).await;
    assert_eq!((version(&r), r.answer), (Some(1), Answer::Miss));
    assert_eq!(b.calls(), 1);
    // (In the lease's first half: the second half would start an early renewal, tested
    // below.)
    for _ in 0..3 {
        tokio::time::advance(Duration::from_millis(49)).await;
        let r = read(&t, Want::Strong, 0).await;
        assert_eq!((version(&r), r.answer), (Some(1), Answer::Leased));
    }
    assert_eq!(b.calls(), 1, "no round trip under the lease");
    assert_eq!(t.inner.metrics.leased.get(), 3);
    // 300 ms after the request was sent the lease has ended: the leader is asked, and
    // (quiet shard) grants a new one.
    tokio::time::advance(Duration::from_millis(153)).await;
    let r = read(&t, Want::Strong, 0).await;
    assert_eq!((version(&r), r.answer), (Some(1), Answer::Revalidated));
    assert_eq!(b.calls(), 2);
    let r = read(&t, Want::Strong, 0).await;
    assert_eq!(r.answer, Answer::Leased);
    // The leader grants no more leases (writes go on): every strong read asks again.
    *b.lease.lock() = Duration::ZERO;
    tokio::time::advance(Duration::from_millis(301)).await;
    for (v, calls) in [(2, 3), (3, 5)] {
        b.set(v, "next", None);
        let r = read(&t, Want::Strong, 0).await;
        assert_eq!((version(&r), r.answer), (Some(v), Answer::Miss));
        assert_eq!(b.calls(), calls);
        let r = read(&t, Want::Strong, 0).await;
        assert_eq!(r.answer, Answer::Revalidated);
        assert_eq!(b.calls(), calls + 1);
    }
    // Expired values are never served, leased or not.
    *b.lease.lock() = Duration::from_millis(300);
    b.set(9, "short", Some(1_000));
    read(&t, Want::Strong, 0).await;
    let r = read(&t, Want::Strong, 999).await;
    assert_eq!((version(&r), r.answer), (Some(9), Answer::Leased));
    let r = read(&t, Want::Strong, 1_000).await;
    assert_eq!((r.value.is_none(), r.answer), (true, Answer::Leased));
}

/// This gateway's own write to a key drops the key's lease (its fact is the write's, not
/// leased); eventual reads and the lease of other keys are unaffected. Off by option.
#[tokio::test(start_paused = true)]
async fn an_own_write_drops_the_lease_and_the_option_turns_leases_off() {
    let (b, t) = leasing_tier().await;
    read(&t, Want::Strong, 0).await;
    assert_eq!(read(&t, Want::Strong, 0).await.answer, Answer::Leased);
    let calls = b.calls();
    t.wrote(
        &key(),
        CachedValue {
            version: 2,
            value: Bytes::from_static(b"mine"),
            content_type: None,
            expires_at: None,
        },
        Instant::now(),
    );
    b.set(2, "mine", None);
    let r = read(&t, Want::Strong, 0).await;
    assert_eq!((version(&r), r.answer), (Some(2), Answer::Revalidated));
    assert_eq!(b.calls(), calls + 1, "the write dropped the lease");
    // A failed write forgets the key, lease and all.
    assert_eq!(read(&t, Want::Strong, 0).await.answer, Answer::Leased);
    t.forget(&key());
    let r = read(&t, Want::Strong, 0).await;
    assert_eq!(r.answer, Answer::Revalidated);

    // `read_leases = false`: the leader is never asked for one and every strong read goes
    // to it.
    let b = Scripted::new();
    b.set(1, "one", None);
    *b.lease.lock() = Duration::from_millis(300);
    let opts = CacheOptions {
        read_leases: false,
        ..CacheOptions::default()
    };
    let t = tier(&b, &opts).await;
    for _ in 0..3 {
        assert_ne!(read(&t, Want::Strong, 0).await.answer, Answer::Leased);
    }
    assert_eq!((b.calls(), b.leased.load(Ordering::SeqCst)), (3, 0));
}

/// A lease renewed through one key renews every key read under the same mark (design note
/// 0014): the shard's committed state has not moved since they were read. A write anywhere
/// in the shard moves the mark, and keys read before it need a round trip again.
#[tokio::test(start_paused = true)]
async fn a_lease_of_the_same_mark_vouches_for_every_key_read_under_it() {
    let (b, t) = leasing_tier().await;
    assert_eq!(read_strong(&t, "a").await.answer, Answer::Miss);
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(read_strong(&t, "b").await.answer, Answer::Miss);
    // 350 ms: a's own lease ended at 300, b's (same mark) runs to 500.
    tokio::time::advance(Duration::from_millis(150)).await;
    let r = read_strong(&t, "a").await;
    assert_eq!((version(&r), r.answer), (Some(1), Answer::Leased));
    assert_eq!(b.calls(), 2, "no round trip under the shard's lease");
    // An eventual read of a leased key is current whatever its bound: a hit.
    let r = t
        .read(
            ShardId(0),
            &Bytes::from_static(b"a"),
            Want::Eventual(Duration::ZERO),
            0,
        )
        .await
        .expect("read");
    assert_eq!((version(&r), r.answer), (Some(1), Answer::Hit));
    assert_eq!(b.calls(), 2);
    // 500 ms: every lease of that mark has ended.
    tokio::time::advance(Duration::from_millis(150)).await;
    assert_eq!(read_strong(&t, "a").await.answer, Answer::Revalidated);
    assert_eq!(b.calls(), 3);
    // A write to another key of the shard moves the commit point: b renews the shard's lease
    // under the new mark, which does not vouch for a (read before the write).
    b.mark.lock().seq = SeqNo(2);
    tokio::time::advance(Duration::from_millis(301)).await;
    assert_eq!(read_strong(&t, "b").await.answer, Answer::Revalidated);
    assert_eq!(read_strong(&t, "b").await.answer, Answer::Leased);
    assert_eq!(read_strong(&t, "a").await.answer, Answer::Revalidated);
    assert_eq!(b.calls(), 5);
    assert_eq!(read_strong(&t, "a").await.answer, Answer::Leased);
    // An answer under an earlier mark (a late one) does not replace the shard's lease.
    let mark = |seq| {
        Some(LeaseMark {
            epoch: tierkv_engine::types::Epoch(1),
            seq: SeqNo(seq),
        })
    };
    let leases = &t.inner.shard_leases;
    let now = Instant::now();
    assert!(leases.vouches(ShardId(0), mark(2), now));
    if let Some(m) = mark(1) {
        leases.extend(
            ShardId(0),
            m,
            now + Duration::from_secs(5),
            Duration::from_secs(5),
        );
    }
    assert!(leases.vouches(ShardId(0), mark(2), now));
    assert!(!leases.vouches(ShardId(0), mark(1), now));
    assert!(!leases.vouches(ShardId(1), mark(2), now), "per shard");
    tokio::time::advance(Duration::from_millis(301)).await;
    assert!(!leases.vouches(ShardId(0), mark(2), Instant::now()));
}

/// A shard's lease is renewed ahead of its end (design note 0014, point 6): a leased read in
/// the lease's second half starts one background revalidation, whose lease extends the
/// shard's, so busy keys never find the lease ended and never all go to the leader at once.
#[tokio::test(start_paused = true)]
async fn a_shard_lease_is_renewed_in_its_second_half_by_one_background_read() {
    let (b, t) = leasing_tier().await;
    assert_eq!(read_strong(&t, "a").await.answer, Answer::Miss);
    assert_eq!(read_strong(&t, "b").await.answer, Answer::Miss);
    // First half: leased, nothing renewed.
    tokio::time::advance(Duration::from_millis(140)).await;
    assert_eq!(read_strong(&t, "a").await.answer, Answer::Leased);
    tokio::task::yield_now().await;
    assert_eq!(b.calls(), 2);
    // Second half: leased, and one renewal (however many reads see it due).
    tokio::time::advance(Duration::from_millis(20)).await;
    for k in ["a", "b", "a"] {
        assert_eq!(read_strong(&t, k).await.answer, Answer::Leased);
    }
    let renewed_to = Instant::now() + Duration::from_millis(190);
    until("the renewal extended the shard's lease", || {
        t.inner
            .shard_leases
            .vouches(ShardId(0), Some(*b.mark.lock()), renewed_to)
    })
    .await;
    assert_eq!(b.calls(), 3, "one renewal");
    // 350 ms: past the first leases, inside the renewed one (sent at 160 ms): both keys
    // (same mark) are still leased without another round trip.
    tokio::time::advance(Duration::from_millis(190)).await;
    for k in ["a", "b"] {
        let r = read_strong(&t, k).await;
        assert_eq!((version(&r), r.answer), (Some(1), Answer::Leased));
    }
    // Those reads were in the renewed lease's second half: one more renewal (sent at 350).
    until("the second renewal was answered", || b.calls() == 4).await;
    // Once the reads stop, the leases end with the last renewal (650 ms); a write then moves
    // the mark and the next read goes to the leader.
    tokio::time::advance(Duration::from_millis(301)).await;
    b.set(2, "two", None);
    let r = read_strong(&t, "a").await;
    assert_eq!((version(&r), r.answer), (Some(2), Answer::Miss));
}
