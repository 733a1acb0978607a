//! Corruption tests: decoders never panic, and damage is reported, never returned as data.

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::{CountingCache, build, collect, open_bytes, put, rt};
use crate::block_cache::MemBlockCache;
use crate::segment::SegmentOptions;
use crate::types::{Entry, EntryKind};

/// A small segment of three or more 1 KiB blocks, with every kind of entry.
fn small_segment() -> (Vec<Entry>, Bytes) {
    let mut es: Vec<Entry> = (0..24)
        .map(|i| put(format!("k{i:03}").as_bytes(), 100 + i, &[b'x'; 90]))
        .collect();
    es[3].kind = EntryKind::Tombstone;
    es[5].expires_at = Some(1_700_000_000_000);
    es[7].kind = EntryKind::Put {
        value: Bytes::new(),
        content_type: Some(Bytes::from_static(b"text/plain")),
    };
    let opts = SegmentOptions {
        block_bytes: 1024,
        ..SegmentOptions::default()
    };
    let (bytes, _) = build(&es, &opts);
    (es, bytes)
}

/// Opens `bytes`, gets every key of `entries` and iterates everything. Every result that is
/// `Ok` must be the original data; returns whether some step reported an error.
async fn detects_damage(entries: &[Entry], bytes: Bytes, what: &str) -> bool {
    let Ok(r) = open_bytes(bytes, CountingCache::new()).await else {
        return true;
    };
    let mut failed = false;
    for e in entries {
        match r.get(&e.key).await {
            Ok(got) => assert_eq!(got.as_ref(), Some(e), "{what}: wrong data from get"),
            Err(_) => failed = true,
        }
    }
    let mut it = r.iter(None);
    let mut i = 0;
    loop {
        match it.next().await {
            Ok(Some(e)) => {
                assert_eq!(Some(&e), entries.get(i), "{what}: wrong data from iter");
                i += 1;
            }
            Ok(None) => {
                assert_eq!(i, entries.len(), "{what}: iter ended early without error");
                break;
            }
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    failed
}

#[tokio::test]
async fn small_segment_is_intact() {
    let (es, bytes) = small_segment();
    assert!(!detects_damage(&es, bytes.clone(), "intact").await);
    let r = open_bytes(bytes, CountingCache::new()).await.expect("open");
    assert!(r.stats().block_fetches == 0);
    assert_eq!(collect(&r, None).await.expect("iter"), es);
    assert!(r.stats().block_fetches >= 3, "want several blocks");
}

#[tokio::test]
async fn truncated_segment_is_an_error() {
    let (es, bytes) = small_segment();
    for len in 0..bytes.len() {
        let cut = bytes.slice(..len);
        assert!(
            detects_damage(&es, cut, &format!("truncated to {len}")).await,
            "truncation to {len} bytes went unnoticed"
        );
    }
}

#[tokio::test]
async fn flipped_byte_is_detected() {
    let (es, bytes) = small_segment();
    for pos in 0..bytes.len() {
        for mask in [1u8 << (pos % 8), 0xff] {
            let mut b = bytes.to_vec();
            b[pos] ^= mask;
            let what = format!("byte {pos} ^ {mask:#04x}");
            assert!(
                detects_damage(&es, Bytes::from(b), &what).await,
                "{what} went unnoticed"
            );
        }
    }
}

/// Opens, gets and iterates; only checks that nothing panics.
async fn exercise(bytes: Bytes, probes: &[Vec<u8>]) {
    let Ok(r) = open_bytes(bytes, Arc::new(MemBlockCache::new(1 << 20))).await else {
        return;
    };
    for p in probes {
        let _ = r.get(p).await;
    }
    let mut it = r.iter(None);
    while let Ok(Some(_)) = it.next().await {}
    if let Some(p) = probes.first() {
        let mut it = r.iter(Some(Bytes::from(p.clone())));
        while let Ok(Some(_)) = it.next().await {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        probes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..8), 1..4),
    ) {
        rt().block_on(exercise(Bytes::from(data), &probes));
    }

    #[test]
    fn mutated_segment_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (es, bytes) = small_segment();
        let mut b = bytes.to_vec();
        for (at, v) in &edits {
            let i = at.index(b.len());
            b[i] = *v;
        }
        if truncate {
            b.truncate(cut.index(b.len()));
        }
        let probes: Vec<Vec<u8>> = es.iter().map(|e| e.key.to_vec()).collect();
        rt().block_on(exercise(Bytes::from(b), &probes));
    }
}
