//! Storage behaviour of a shard (reads, scans, conditions, flush, compaction, TTL, garbage
//! collection, backpressure) through its replicated API, with a test helper ([`Leader`])
//! playing the shard's only replica as its leader.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use object_store::memory::InMemory;

use crate::block_cache::MemBlockCache;
use crate::clock::ManualClock;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::ManifestStore;
use crate::options::EngineOptions;
use crate::paths;
use crate::replica::Record;
use crate::segment::SegmentOptions;
use crate::shard::{PrepareOutcome, Shard, ShardComponents};
use crate::store::ObjStore;
use crate::testing::FaultyStore;
use crate::types::{Condition, EntryKind, Epoch, Mutation, SeqNo, ShardId, WriteBatch};
use crate::wal::{SyncPolicy, Wal, WalOptions};

const S: ShardId = ShardId(0);

struct Env {
    dir: tempfile::TempDir,
    faulty: Arc<FaultyStore>,
    store: ObjStore,
    clock: Arc<ManualClock>,
    opts: EngineOptions,
}

fn small_opts() -> EngineOptions {
    EngineOptions {
        // Memtables of 32 KiB (one shard: twice the budget), ~50 small writes each.
        write_buffer_bytes: 16 << 10,
        max_unflushed_bytes: 128 << 10,
        l0_compaction_trigger: 3,
        l0_max: 6,
        target_segment_bytes: 8 << 10,
        segment: SegmentOptions {
            block_bytes: 1024,
            bloom_bits_per_key: 10,
        },
        obsolete_grace: Duration::from_secs(60),
        ttl_sweep_interval: Duration::from_secs(3600),
        ..EngineOptions::default()
    }
}

impl Env {
    fn new() -> Self {
        let faulty = FaultyStore::new(Arc::new(InMemory::new()));
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            store: ObjStore::new(faulty.clone(), "faulty"),
            faulty,
            clock: ManualClock::new(1_000_000),
            opts: small_opts(),
        }
    }

    /// The shard's only replica, leading a newly claimed epoch, its WAL in `<dir>/<sub>`.
    async fn open_at(&self, sub: &str) -> Leader {
        Leader::open(self, sub).await.expect("open leader")
    }

    async fn open(&self) -> Leader {
        self.open_at("wal").await
    }
}

/// Plays the shard's only replica as its leader, the way the node's replication driver
/// does with N = W = 1, but one write at a time: a write is prepared and evaluated, its
/// record appended to the WAL and made durable, then applied (committed). Opening replays
/// the WAL records after the manifest's flushed prefix (every durable record is committed
/// with one replica) and leads a newly claimed epoch. A test fixture: the driver is the one
/// write path.
#[derive(Clone)]
struct Leader {
    shard: Shard,
    inner: Arc<LeaderInner>,
}

struct LeaderInner {
    shard: Shard,
    wal: Wal,
    epoch: Epoch,
    /// The next seq; held across a whole write, so writes are sequenced one at a time.
    next: tokio::sync::Mutex<SeqNo>,
}

impl Leader {
    async fn open(env: &Env, sub: &str) -> Result<Self> {
        let (wal, recovery) = Wal::open(WalOptions {
            dir: env.dir.path().join(sub),
            sync: SyncPolicy::Always,
            segment_bytes: 1 << 20,
            ..WalOptions::default()
        })?;
        let manifests = ManifestStore::new(env.store.clone(), S);
        let manifest = manifests.load_latest().await?.unwrap_or_default();
        let records: Vec<Record> = recovery
            .records
            .into_iter()
            .filter(|r| r.shard == S && r.seq > manifest.flushed_seq)
            .map(Record::from_wal)
            .collect();
        let last = records.last().map_or(manifest.flushed_seq, |r| r.seq);
        let newest = records.last().map_or(manifest.epoch, |r| r.epoch);
        let epoch = manifests.claim_epoch(newest.max(manifest.epoch)).await?;
        let shard = Shard::open_replicated(
            S,
            Arc::new(env.opts.clone()),
            ShardComponents {
                store: env.store.clone(),
                cache: Arc::new(MemBlockCache::new(1 << 20)),
                clock: env.clock.clone(),
                wal: wal.clone(),
                buffers: crate::write_buffers::WriteBuffers::standalone(&env.opts),
            },
            manifest,
        )
        .await?;
        shard.apply_committed(&records);
        shard.set_leading(Some(epoch));
        shard.publish_epoch().await?;
        let inner = Arc::new(LeaderInner {
            shard: shard.clone(),
            wal,
            epoch,
            next: tokio::sync::Mutex::new(last.next()),
        });
        let weak: Weak<LeaderInner> = Arc::downgrade(&inner);
        shard.set_proposer(Arc::new(move |batch| {
            let weak = weak.clone();
            async move {
                let inner = weak.upgrade().ok_or(Error::Closed)?;
                inner.write(batch).await.map(|(seq, _)| seq)
            }
            .boxed()
        }));
        Ok(Self { shard, inner })
    }

    async fn write(&self, batch: WriteBatch) -> Result<(SeqNo, Vec<Option<SeqNo>>)> {
        self.inner.write(batch).await
    }

    async fn put(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<SeqNo> {
        let b = WriteBatch::new().put(key, value);
        self.write(b).await.map(|(seq, _)| seq)
    }

    async fn delete(&self, key: impl Into<Bytes>) -> Result<SeqNo> {
        let b = WriteBatch::new().delete(key);
        self.write(b).await.map(|(seq, _)| seq)
    }

    /// Stops as a crash would: no flush; the WAL keeps what it acknowledged.
    fn crash(self) {
        self.shard.abandon();
        self.inner.wal.close().expect("close wal");
    }

    async fn close(self) {
        self.shard
            .close(Duration::from_secs(5))
            .await
            .expect("close");
        self.inner.wal.close().expect("close wal");
    }
}

impl LeaderInner {
    async fn write(&self, batch: WriteBatch) -> Result<(SeqNo, Vec<Option<SeqNo>>)> {
        let mut next = self.next.lock().await;
        loop {
            let prepared = self.shard.prepare(batch.clone()).await?;
            let PrepareOutcome::Ready { entries, prior } =
                self.shard.evaluate(&prepared, &HashMap::new())?
            else {
                continue;
            };
            let seq = *next;
            let record = Record {
                epoch: self.epoch,
                seq,
                entries,
                membership: None,
            };
            self.wal.append(&record.clone().into_wal(S))?.wait().await?;
            self.shard.apply_committed([&record]);
            *next = seq.next();
            return Ok((seq, prior));
        }
    }
}

impl std::ops::Deref for Leader {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        &self.shard
    }
}

async fn value(s: &Shard, key: &str) -> Option<Bytes> {
    match s.get(key.as_bytes()).await.expect("get").map(|e| e.kind) {
        Some(EntryKind::Put { value, .. }) => Some(value),
        Some(EntryKind::Tombstone) => panic!("get returned a tombstone"),
        None => None,
    }
}

/// Polls `cond` until it holds or `secs` pass.
async fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn put_get_delete_round_trip() {
    let env = Env::new();
    let s = env.open().await;
    let v1 = s.put("a", "1").await.expect("put");
    let v2 = s.put("a", "2").await.expect("put");
    assert!(v2 > v1);
    assert_eq!(value(&s, "a").await, Some(Bytes::from("2")));
    s.delete("a").await.expect("delete");
    assert_eq!(value(&s, "a").await, None);
    assert!(matches!(s.get(b"").await, Err(Error::Invalid { .. })));
}

#[tokio::test]
async fn versions_strictly_increase_across_reopen_and_flush() {
    let env = Env::new();
    let s = env.open().await;
    let mut last = SeqNo(0);
    for i in 0..50 {
        let v = s.put(format!("k{i}"), vec![b'x'; 200]).await.expect("put");
        assert!(v > last);
        last = v;
    }
    s.flush().await.expect("flush");
    s.crash();
    let s = env.open().await;
    let v = s.put("after", "x").await.expect("put");
    assert!(v > last, "{v:?} after reopen must exceed {last:?}");
    s.close().await;
}

#[tokio::test]
async fn conditional_writes_and_atomic_batches() {
    let env = Env::new();
    let s = env.open().await;
    let put = |k: &str, v: &str| Mutation::Put {
        key: Bytes::copy_from_slice(k.as_bytes()),
        value: Bytes::copy_from_slice(v.as_bytes()),
        content_type: Some(Bytes::from_static(b"text/plain")),
        expires_at: None,
    };
    let (v1, _) = s
        .write(WriteBatch::new().op(put("a", "1"), Condition::MustNotExist))
        .await
        .expect("create");
    let again = s
        .write(WriteBatch::new().op(put("a", "x"), Condition::MustNotExist))
        .await;
    assert!(matches!(again, Err(Error::ConditionFailed { actual: Some(v), .. }) if v == v1));
    let (v2, _) = s
        .write(WriteBatch::new().op(put("a", "2"), Condition::VersionIs(v1)))
        .await
        .expect("cas");
    let stale = s
        .write(WriteBatch::new().op(put("a", "3"), Condition::VersionIs(v1)))
        .await;
    assert_eq!(stale.map_err(|e| e.kind()).err(), Some(ErrorKind::Conflict));
    // A batch whose second condition fails writes nothing.
    let r = s
        .write(
            WriteBatch::new()
                .op(put("b", "1"), Condition::None)
                .op(put("a", "4"), Condition::VersionIs(v1)),
        )
        .await;
    assert!(r.is_err());
    assert_eq!(value(&s, "b").await, None);
    assert_eq!(value(&s, "a").await, Some(Bytes::from("2")));
    let e = s.get(b"a").await.expect("get").expect("present");
    assert_eq!(e.seq, v2);
    assert!(matches!(e.kind, EntryKind::Put { content_type: Some(ct), .. } if ct == "text/plain"));
}

/// Applies random puts/deletes, flushes and compacts between rounds, and compares every
/// key and a paged scan with a model.
#[tokio::test]
async fn reads_agree_with_model_across_flush_and_compaction() {
    let env = Env::new();
    let s = env.open().await;
    let mut model: BTreeMap<String, Bytes> = BTreeMap::new();
    let mut x: u64 = 7;
    for round in 0..6 {
        for _ in 0..300 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let k = format!("key{:03}", (x >> 33) % 400);
            if (x >> 20).is_multiple_of(5) {
                s.delete(k.clone()).await.expect("delete");
                model.remove(&k);
            } else {
                let v = Bytes::from(format!("{round}-{x}-{}", "v".repeat((x % 64) as usize)));
                s.put(k.clone(), v.clone()).await.expect("put");
                model.insert(k, v);
            }
        }
        s.flush().await.expect("flush");
        if round % 2 == 1 {
            s.compact().await.expect("compact");
        }
        for i in 0..400 {
            let k = format!("key{i:03}");
            assert_eq!(
                value(&s, &k).await,
                model.get(&k).cloned(),
                "round {round} key {k}"
            );
        }
        let mut seen = Vec::new();
        let mut cursor: Option<Bytes> = None;
        loop {
            let page = s.scan(b"key", cursor.as_deref(), 37).await.expect("scan");
            seen.extend(page.entries.into_iter().map(|e| e.key));
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let want: Vec<Bytes> = model.keys().map(|k| Bytes::from(k.clone())).collect();
        assert_eq!(seen, want, "scan round {round}");
    }
    let st = s.stats();
    assert!(st.compactions >= 1 && st.flushes >= 6, "{st:?}");
    assert!(st.l0_segments <= 6, "{st:?}");
}

#[tokio::test]
async fn scan_prefix_bounds_and_cursor() {
    let env = Env::new();
    let s = env.open().await;
    for k in ["a", "ab", "abc", "abd", "b", "ba"] {
        s.put(k, "v").await.expect("put");
    }
    let keys = |p: &super::ScanPage| p.entries.iter().map(|e| e.key.clone()).collect::<Vec<_>>();
    let page = s.scan(b"ab", None, 10).await.expect("scan");
    assert_eq!(keys(&page), ["ab", "abc", "abd"]);
    assert_eq!(page.next, None);
    let page = s.scan(b"ab", None, 2).await.expect("scan");
    assert_eq!(keys(&page), ["ab", "abc"]);
    let page = s.scan(b"ab", page.next.as_deref(), 2).await.expect("scan");
    assert_eq!(keys(&page), ["abd"]);
    let page = s.scan(b"", Some(b"abd"), 10).await.expect("scan");
    assert_eq!(keys(&page), ["b", "ba"]);
    assert!(s.scan(b"", None, 0).await.is_err());
}

#[tokio::test]
async fn ttl_entries_vanish_at_expiry_and_are_swept_and_compacted_away() {
    let env = Env::new();
    let s = env.open().await;
    let now = 1_000_000;
    for i in 0..20u64 {
        s.write(WriteBatch::new().op(
            Mutation::Put {
                key: Bytes::from(format!("t{i:02}")),
                value: Bytes::from_static(b"v"),
                content_type: None,
                expires_at: Some(now + 100 + i),
            },
            Condition::None,
        ))
        .await
        .expect("put");
    }
    s.put("keep", "v").await.expect("put");
    s.flush().await.expect("flush");
    assert!(value(&s, "t00").await.is_some());
    env.clock.advance(110);
    // Expired entries are invisible before any sweep: t00..t09 expired, t10.. not yet.
    assert_eq!(value(&s, "t05").await, None);
    assert!(value(&s, "t15").await.is_some());
    let page = s.scan(b"t", None, 100).await.expect("scan");
    assert_eq!(
        page.entries.len(),
        9,
        "t11..=t19 remain (t10 expires at +110)"
    );
    let out = s.sweep_expired().await.expect("sweep");
    assert_eq!(out.deleted, 11);
    assert!(out.complete);
    // A newer write is never removed by a sweep of the old version.
    env.clock.advance(1000);
    s.put("t19", "new").await.expect("put");
    let out = s.sweep_expired().await.expect("sweep");
    assert_eq!(out.deleted, 8, "t11..=t18; t19 was rewritten");
    assert_eq!(value(&s, "t19").await, Some(Bytes::from("new")));
    s.flush().await.expect("flush");
    s.compact().await.expect("compact");
    let st = s.stats();
    assert_eq!(st.l0_segments, 0);
    // Only "keep" and "t19" survive compaction (tombstones and expired entries dropped).
    let total: u64 = s
        .shard
        .inner
        .current_view()
        .l1
        .iter()
        .map(|r| r.info().entries)
        .sum();
    assert_eq!(total, 2);
}

#[tokio::test]
async fn object_store_down_gives_backpressure_then_recovers_without_loss() {
    let env = Env::new();
    let s = env.open().await;
    env.faulty.set_down(true);
    let mut acked = Vec::new();
    let mut backpressured = false;
    for i in 0..10_000 {
        let k = format!("k{i:05}");
        match s.put(k.clone(), vec![b'v'; 100]).await {
            Ok(_) => acked.push(k),
            Err(Error::Backpressure { .. }) => {
                backpressured = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(backpressured, "writes never hit the bound");
    assert!(acked.len() > 100);
    // Reads keep working from memory while the store is down.
    assert!(value(&s, &acked[0]).await.is_some());
    env.faulty.set_down(false);
    eventually(30, "flushes to catch up", || {
        s.stats().unflushed_bytes < 8 << 10
    })
    .await;
    s.put("after", "x").await.expect("writes resume");
    for k in &acked {
        assert!(value(&s, k).await.is_some(), "lost {k}");
    }
    assert!(s.stats().flush_errors > 0);
}

/// A leader of an older epoch can still apply records locally but not publish a flush once
/// a newer leader published its epoch. (That it cannot acknowledge writes any more is the
/// replication protocol's part: its followers refuse it. With one replica, no second
/// leader can exist: the node's identity and directory lock keep a second incarnation out.)
#[tokio::test]
async fn stale_writer_is_fenced_at_its_next_publish() {
    let env = Env::new();
    let old = env.open_at("wal-old").await;
    old.put("a", "old").await.expect("put");
    let new = env.open_at("wal-new").await;
    assert!(new.epoch() > old.epoch());
    old.put("b", "old").await.expect("local append");
    let r = old.flush().await;
    assert_eq!(r.map_err(|e| e.kind()).err(), Some(ErrorKind::Fenced));
    new.put("a", "new").await.expect("new writer works");
    new.flush().await.expect("new writer publishes");
}

#[tokio::test]
async fn crash_without_close_loses_no_acknowledged_write() {
    let env = Env::new();
    let mut expected: BTreeMap<String, Bytes> = BTreeMap::new();
    for life in 0..4 {
        let s = env.open().await;
        for (k, v) in &expected {
            assert_eq!(value(&s, k).await.as_ref(), Some(v), "life {life} key {k}");
        }
        for i in 0..120 {
            let k = format!("l{life}-{i}");
            let v = Bytes::from(format!("{life}:{i}:{}", "p".repeat(60)));
            s.put(k.clone(), v.clone()).await.expect("put");
            expected.insert(k, v);
        }
        // No close: the memtable is lost, the WAL and published segments remain.
        s.crash();
    }
}

#[tokio::test]
async fn garbage_is_collected_after_the_grace_period_only() {
    let mut env = Env::new();
    env.opts.l0_compaction_trigger = 10;
    env.opts.l0_max = 12;
    env.opts.orphan_min_age = Duration::ZERO;
    let s = env.open().await;
    for round in 0..4 {
        for i in 0..40 {
            s.put(format!("k{i:02}"), format!("{round}"))
                .await
                .expect("put");
        }
        s.flush().await.expect("flush");
    }
    assert!(s.compact().await.expect("compact"));
    let segs = || async {
        env.store
            .list(&paths::segment_prefix(S), None)
            .await
            .expect("list")
            .len()
    };
    let before = segs().await;
    assert_eq!(s.collect_garbage().await.expect("gc"), 0, "grace not over");
    assert_eq!(segs().await, before);
    env.clock.advance(61_000);
    assert_eq!(s.collect_garbage().await.expect("gc"), 4);
    assert_eq!(segs().await, before - 4);
    assert_eq!(value(&s, "k07").await, Some(Bytes::from("3")));
    // An upload that was never published (crash between upload and publish) is an orphan.
    env.store
        .put(
            &paths::segment(S, crate::types::SegmentId(42)),
            Bytes::from_static(b"x"),
        )
        .await
        .expect("put");
    assert_eq!(s.collect_garbage().await.expect("gc"), 1);
}

#[tokio::test]
async fn writes_report_the_prior_live_version_when_asked() {
    let env = Env::new();
    let s = env.open().await;
    let put = |k: &str, exp: Option<u64>| Mutation::Put {
        key: Bytes::copy_from_slice(k.as_bytes()),
        value: Bytes::from_static(b"v"),
        content_type: None,
        expires_at: exp,
    };
    let w = |m: Mutation| WriteBatch::new().op(m, Condition::None).reporting_prior();
    let (v1, p) = s.write(w(put("a", None))).await.expect("write");
    assert_eq!(p, [None], "created");
    let (v2, p) = s.write(w(put("a", None))).await.expect("write");
    assert_eq!(p, [Some(v1)], "replaced");
    s.flush().await.expect("flush");
    let (_, p) = s
        .write(w(Mutation::Delete {
            key: Bytes::from_static(b"a"),
        }))
        .await
        .expect("write");
    assert_eq!(p, [Some(v2)], "prior read from a segment");
    let (_, p) = s.write(w(put("a", Some(1_000_050)))).await.expect("write");
    assert_eq!(p, [None], "deleted before");
    env.clock.advance(100);
    let (_, p) = s.write(w(put("a", None))).await.expect("write");
    assert_eq!(p, [None], "expired before");
    let (_, p) = s
        .write(WriteBatch::new().put("b", "x"))
        .await
        .expect("write");
    assert!(p.is_empty(), "not asked");
}

#[tokio::test]
async fn young_unreferenced_segments_are_not_collected_and_fenced_writers_collect_nothing() {
    let env = Env::new(); // orphan_min_age: the default 10 minutes
    let old = env.open_at("wal-old").await;
    // Another writer's upload that is not yet published looks like an orphan, but is young.
    let young = paths::segment(S, crate::types::SegmentId(7));
    env.store
        .put(&young, Bytes::from_static(b"x"))
        .await
        .expect("put");
    // The manual clock reads 1970, long before the object's modification time: age 0.
    assert_eq!(old.collect_garbage().await.expect("gc"), 0);
    assert!(env.store.get(&young).await.expect("get").is_some());
    // Once fenced, a writer deletes no segment at all.
    let _new = env.open_at("wal-new").await;
    old.put("k", "v").await.expect("local append");
    assert!(
        old.flush().await.is_err(),
        "old writer is fenced at its publish"
    );
    assert_eq!(old.collect_garbage().await.expect("gc"), 0);
}

/// Overwriting a few keys never grows the live data, but the WAL keeps every write until a
/// flush: the memtable freezes on bytes written, so the log stays bounded.
#[tokio::test]
async fn overwrites_of_one_key_trigger_flushes() {
    let env = Env::new();
    let s = env.open().await;
    let big = "v".repeat(100);
    // 40 KiB written to one key: ten times `memtable_bytes`, live data ~100 bytes.
    for _ in 0..400 {
        s.put("counter", big.clone()).await.expect("put");
    }
    eventually(10, "a flush of the overwritten key", || {
        s.stats().flushes >= 1
    })
    .await;
    let st = s.stats();
    assert!(st.flushed_seq > SeqNo(0), "{st:?}");
    assert!(
        st.unflushed_bytes < 2 * env.opts.memtable_bytes(1) as u64,
        "unflushed bytes not bounded: {st:?}"
    );
    assert_eq!(value(&s, "counter").await, Some(Bytes::from(big)));
}

#[tokio::test]
async fn a_node_registers_its_shards_figures_summed() {
    let env = Env::new();
    let s = env.open().await;
    // Another node's shard (its own store: the fixture leads shard `S` only).
    let other_env = Env::new();
    let other = other_env.open().await;
    other.put("x", "1").await.expect("put");
    let mut registry = crate::metrics::Registry::default();
    registry.register_collector(Box::new(super::ShardFigures::new(
        [&s.shard, &other.shard].into_iter(),
    )));
    s.inner.wal.register_metrics(&mut registry);
    s.put("a", "1").await.expect("put");
    s.flush().await.expect("flush");
    s.put("b", "2").await.expect("put");
    let st = s.stats();
    let text = crate::metrics::encode_text(&registry).expect("encodes");
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .collect();
    for family in [
        "tierkv_memtable_bytes gauge",
        "tierkv_unflushed_bytes gauge",
        "tierkv_frozen_memtables gauge",
        "tierkv_segments gauge",
        "tierkv_segment_bytes gauge",
        "tierkv_flushes_total counter",
        "tierkv_flush_bytes_total counter",
        "tierkv_flush_errors_total counter",
        "tierkv_compactions_total counter",
        "tierkv_compaction_bytes_total counter",
        "tierkv_compaction_errors_total counter",
        "tierkv_ttl_deletes_total counter",
        "tierkv_segments_deleted_total counter",
        "tierkv_wal_appends_total counter",
        "tierkv_wal_fsync_duration_seconds histogram",
    ] {
        assert!(families.contains(&family), "no {family:?} in\n{text}");
    }
    let total = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let all = [s.stats(), other.stats()];
    assert_eq!(
        total("tierkv_flushes_total"),
        st.flushes + other.stats().flushes
    );
    assert!(st.flushes >= 1, "{st:?}");
    assert_eq!(
        total("tierkv_segments"),
        all.iter()
            .map(|s| s.l0_segments + s.l1_segments)
            .sum::<u64>()
    );
    assert_eq!(
        total("tierkv_memtable_bytes"),
        all.iter().map(|s| s.memtable_bytes).sum::<u64>()
    );
    assert!(total("tierkv_memtable_bytes") > 0);
}
