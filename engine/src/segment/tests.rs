//! Segment tests: round trips, bloom filter, cache use, ordering and version checks. The
//! corruption tests (never panic, every truncation and flipped byte detected) are in
//! `tests/corrupt.rs`.

mod corrupt;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::block_cache::{BlockCache, BlockKey, CacheStats, MemBlockCache};
use crate::error::Error;
use crate::store::ObjStore;
use crate::types::{Entry, EntryKind, SegmentId, SeqNo};

const SEG_KEY: &str = "shards/00001/segments/test.seg";

/// A block cache that counts lookups and inserts.
#[derive(Debug)]
pub(super) struct CountingCache {
    inner: MemBlockCache,
    pub(super) gets: AtomicU64,
    pub(super) inserts: AtomicU64,
}

impl CountingCache {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: MemBlockCache::new(64 << 20),
            gets: AtomicU64::new(0),
            inserts: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl BlockCache for CountingCache {
    async fn get(&self, key: &BlockKey) -> Option<Bytes> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }
    fn insert(&self, key: BlockKey, block: Bytes) {
        self.inserts.fetch_add(1, Ordering::Relaxed);
        self.inner.insert(key, block);
    }
    fn stats(&self) -> CacheStats {
        self.inner.stats()
    }
}

pub(super) fn put(key: &[u8], seq: u64, value: &[u8]) -> Entry {
    Entry {
        key: Bytes::copy_from_slice(key),
        seq: SeqNo(seq),
        kind: EntryKind::Put {
            value: Bytes::copy_from_slice(value),
            content_type: None,
        },
        expires_at: None,
    }
}

pub(super) fn build(entries: &[Entry], opts: &SegmentOptions) -> (Bytes, SegmentInfo) {
    let mut b = SegmentBuilder::new(opts);
    for e in entries {
        b.add(e).expect("add");
    }
    b.finish().expect("finish")
}

/// Uploads `bytes` and opens them with a fresh cache.
pub(super) async fn open_bytes(
    bytes: Bytes,
    cache: Arc<dyn BlockCache>,
) -> crate::Result<Arc<SegmentReader>> {
    let store = ObjStore::in_memory();
    let size = bytes.len() as u64;
    store.put(SEG_KEY, bytes).await.expect("put");
    let r = SegmentReader::open(store, SEG_KEY.to_owned(), SegmentId(7), size, cache).await?;
    Ok(Arc::new(r))
}

pub(super) async fn collect(
    r: &Arc<SegmentReader>,
    after: Option<Bytes>,
) -> crate::Result<Vec<Entry>> {
    let mut it = r.iter(after);
    let mut out = Vec::new();
    while let Some(e) = it.next().await? {
        out.push(e);
    }
    Ok(out)
}

fn numbered(n: usize, value_len: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            put(
                format!("key{i:06}").as_bytes(),
                i as u64 + 1,
                &vec![b'v'; value_len],
            )
        })
        .collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn arb_kind() -> impl Strategy<Value = EntryKind> {
    prop_oneof![
        1 => Just(EntryKind::Tombstone),
        4 => (
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        )
            .prop_map(|(v, ct)| EntryKind::Put {
                value: Bytes::from(v),
                content_type: ct.map(Bytes::from),
            }),
    ]
}

fn arb_entries() -> impl Strategy<Value = Vec<Entry>> {
    let val = (any::<u64>(), arb_kind(), proptest::option::of(any::<u64>()));
    proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 1..40), val, 1..150)
        .prop_map(|m| {
            m.into_iter()
                .map(|(k, (seq, kind, expires_at))| Entry {
                    key: Bytes::from(k),
                    seq: SeqNo(seq),
                    kind,
                    expires_at,
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(
        entries in arb_entries(),
        block_bytes in prop_oneof![Just(1024usize), Just(4096), Just(16384)],
        bloom_bits_per_key in prop_oneof![Just(0u32), Just(10)],
        probes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..20),
    ) {
        let opts = SegmentOptions { block_bytes, bloom_bits_per_key };
        let (bytes, info) = build(&entries, &opts);
        prop_assert_eq!(info.size, bytes.len() as u64);
        prop_assert_eq!(info.entries, entries.len() as u64);
        rt().block_on(async {
            let r = open_bytes(bytes, Arc::new(MemBlockCache::new(1 << 20))).await.expect("open");
            prop_assert_eq!(r.info(), &info);
            for e in &entries {
                let got = r.get(&e.key).await.expect("get");
                prop_assert_eq!(got.as_ref(), Some(e));
            }
            for p in &probes {
                let want = entries.iter().find(|e| e.key.as_ref() == p.as_slice());
                let got = r.get(p).await.expect("get");
                prop_assert_eq!(got.as_ref(), want);
            }
            prop_assert_eq!(&collect(&r, None).await.expect("iter"), &entries);
            let afters = entries.iter().map(|e| e.key.clone()).step_by(7)
                .chain(probes.iter().map(|p| Bytes::from(p.clone())));
            for a in afters {
                let want: Vec<Entry> = entries.iter().filter(|e| e.key > a).cloned().collect();
                prop_assert_eq!(collect(&r, Some(a)).await.expect("iter"), want);
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn info_summarises_the_entries() {
    let mut es = numbered(10, 3);
    es[2].kind = EntryKind::Tombstone;
    es[4].expires_at = Some(500);
    es[6].expires_at = Some(90);
    es[7].seq = SeqNo(1000);
    let (bytes, info) = build(&es, &SegmentOptions::default());
    let want = SegmentInfo {
        entries: 10,
        tombstones: 1,
        min_key: es[0].key.clone(),
        max_key: es[9].key.clone(),
        min_seq: SeqNo(1),
        max_seq: SeqNo(1000),
        min_expires_at: Some(90),
        size: bytes.len() as u64,
    };
    assert_eq!(info, want);
    let r = open_bytes(bytes, CountingCache::new()).await.expect("open");
    assert_eq!(r.info(), &want);
    assert_eq!(r.id(), SegmentId(7));
}

#[tokio::test]
async fn entry_larger_than_a_block_gets_its_own_block() {
    let mut es = numbered(5, 10);
    es[2] = put(b"key000002", 3, &vec![7u8; 5000]);
    let opts = SegmentOptions {
        block_bytes: 1024,
        ..SegmentOptions::default()
    };
    let (bytes, _) = build(&es, &opts);
    let r = open_bytes(bytes, CountingCache::new()).await.expect("open");
    for e in &es {
        assert_eq!(r.get(&e.key).await.expect("get").as_ref(), Some(e));
    }
    assert_eq!(collect(&r, None).await.expect("iter"), es);
}

#[tokio::test]
async fn approx_size_tracks_the_output() {
    let mut b = SegmentBuilder::new(&SegmentOptions::default());
    assert_eq!(b.entries(), 0);
    for e in numbered(2000, 50) {
        b.add(&e).expect("add");
    }
    assert_eq!(b.entries(), 2000);
    let approx = b.approx_size() as f64;
    let (bytes, _) = b.finish().expect("finish");
    let real = bytes.len() as f64;
    assert!(
        (approx - real).abs() / real < 0.05,
        "approx {approx} real {real}"
    );
}

#[tokio::test]
async fn bloom_negative_fetches_no_block() {
    let (bytes, _) = build(&numbered(1000, 10), &SegmentOptions::default());
    let cache = CountingCache::new();
    let r = open_bytes(bytes, cache.clone()).await.expect("open");
    let absent = (0..1000)
        .map(|i| format!("key{i:06}x"))
        .find(|k| !r.may_contain(k.as_bytes()))
        .expect("some absent key is a bloom negative");
    assert_eq!(r.get(absent.as_bytes()).await.expect("get"), None);
    let s = r.stats();
    assert_eq!(
        (s.bloom_negatives, s.block_fetches, s.cache_hits),
        (1, 0, 0)
    );
    assert_eq!(cache.gets.load(Ordering::Relaxed), 0);
    assert!(r.get(b"key000500").await.expect("get").is_some());
    assert_eq!(r.stats().block_fetches, 1);
    assert_eq!(cache.gets.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn bloom_false_positive_rate_is_low() {
    let (bytes, _) = build(&numbered(10_000, 0), &SegmentOptions::default());
    let r = open_bytes(bytes, CountingCache::new()).await.expect("open");
    let fp = (0..10_000)
        .filter(|i| r.may_contain(format!("absent{i}").as_bytes()))
        .count();
    assert!(fp < 300, "{fp} false positives in 10000");
    assert!((0..10_000).all(|i| r.may_contain(format!("key{i:06}").as_bytes())));
}

#[tokio::test]
async fn bloom_disabled_admits_everything() {
    let opts = SegmentOptions {
        bloom_bits_per_key: 0,
        ..SegmentOptions::default()
    };
    let es = numbered(100, 1);
    let (bytes, _) = build(&es, &opts);
    let r = open_bytes(bytes, CountingCache::new()).await.expect("open");
    assert!(r.may_contain(b"nope"));
    assert_eq!(r.get(b"key000050x").await.expect("get"), None);
    assert_eq!(r.stats().block_fetches, 1);
    assert_eq!(collect(&r, None).await.expect("iter"), es);
}

#[tokio::test]
async fn blocks_come_from_cache_on_second_read() {
    let es = numbered(500, 40);
    let opts = SegmentOptions {
        block_bytes: 1024,
        ..SegmentOptions::default()
    };
    let (bytes, _) = build(&es, &opts);
    let cache = CountingCache::new();
    let r = open_bytes(bytes, cache.clone()).await.expect("open");
    assert_eq!(collect(&r, None).await.expect("iter"), es);
    let fetched = r.stats().block_fetches;
    assert!(fetched > 10, "{fetched} blocks");
    assert_eq!(cache.inserts.load(Ordering::Relaxed), fetched);
    assert_eq!(collect(&r, None).await.expect("iter"), es);
    for e in &es {
        assert_eq!(r.get(&e.key).await.expect("get").as_ref(), Some(e));
    }
    let s = r.stats();
    assert_eq!(s.block_fetches, fetched, "second read fetched blocks");
    assert_eq!(s.cache_hits, fetched + es.len() as u64);
    assert_eq!(cache.stats().hits, s.cache_hits);
}

#[test]
fn out_of_order_keys_are_rejected() {
    let mut b = SegmentBuilder::new(&SegmentOptions::default());
    b.add(&put(b"b", 1, b"x")).expect("first");
    for bad in [&b"a"[..], b"b"] {
        assert!(matches!(
            b.add(&put(bad, 2, b"y")),
            Err(Error::Invariant { .. })
        ));
    }
    assert!(matches!(
        b.add(&put(b"", 2, b"y")),
        Err(Error::Invariant { .. })
    ));
    b.add(&put(b"c", 3, b"z")).expect("ascending is fine");
    assert_eq!(b.entries(), 2);
    let empty = SegmentBuilder::new(&SegmentOptions::default());
    assert!(matches!(empty.finish(), Err(Error::Invariant { .. })));
}

#[tokio::test]
async fn unsupported_version_is_reported() {
    let (bytes, _) = build(&numbered(20, 5), &SegmentOptions::default());
    let n = bytes.len();
    // A footer of version 2 with a valid crc, and one whose crc no longer matches: both are
    // "unsupported", not "corrupt".
    for fix_crc in [true, false] {
        let mut b = bytes.to_vec();
        b[n - 8..n - 6].copy_from_slice(&2u16.to_le_bytes());
        if fix_crc {
            let crc = crc32c::crc32c(&b[n - 48..n - 4]);
            b[n - 4..].copy_from_slice(&crc.to_le_bytes());
        }
        let r = open_bytes(Bytes::from(b), CountingCache::new()).await;
        assert!(
            matches!(r, Err(Error::UnsupportedVersion { actual: 2, .. })),
            "{r:?}"
        );
    }
    // The header's version is checked when block 0 is read.
    let mut b = bytes.to_vec();
    b[4..6].copy_from_slice(&9u16.to_le_bytes());
    let r = open_bytes(Bytes::from(b), CountingCache::new())
        .await
        .expect("open");
    let got = r.get(b"key000000").await;
    assert!(
        matches!(got, Err(Error::UnsupportedVersion { actual: 9, .. })),
        "{got:?}"
    );
    assert!(is_supported_version(FORMAT_VERSION));
    assert!(!is_supported_version(2));
}

#[test]
fn options_validate_and_default() {
    let d = SegmentOptions::default();
    assert_eq!((d.block_bytes, d.bloom_bits_per_key), (16 * 1024, 14));
    assert!(d.validate().is_ok());
    for bad in [
        SegmentOptions {
            block_bytes: 1023,
            ..d.clone()
        },
        SegmentOptions {
            block_bytes: (1 << 20) + 1,
            ..d.clone()
        },
        SegmentOptions {
            bloom_bits_per_key: 65,
            ..d.clone()
        },
    ] {
        assert!(matches!(bad.validate(), Err(Error::Config { .. })));
    }
}

#[test]
fn reader_and_iterator_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    fn check(r: &Arc<SegmentReader>, it: &mut SegmentIter) {
        send_sync(r);
        send(&*it);
        send(&r.get(b"k"));
        send(&it.next());
    }
    let _ = check;
}
