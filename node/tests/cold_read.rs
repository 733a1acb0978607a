//! Cold reads (design note 0007): after a restart with empty caches, a point read makes at
//! most one object-store request for data (segment indexes and bloom filters are in memory
//! once the segments are open), and concurrent misses of one block share one request.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::OneReplica;
use object_store::memory::InMemory;
use tierkv_engine::clock::SystemClock;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::store::ObjStore;
use tierkv_engine::testing::FaultyStore;
use tierkv_engine::types::{EntryKind, ReadConsistency, ShardId, WriteBatch};
use tierkv_node::ShardHandle;
use tierkv_node::node::Node;

const S: ShardId = ShardId(0);

fn key(i: u64) -> String {
    format!("user{i:010}")
}

async fn value(h: &ShardHandle, k: &str) -> Option<Bytes> {
    match h
        .get(k.as_bytes(), ReadConsistency::Strong)
        .await
        .expect("read")?
        .kind
    {
        EntryKind::Put { value, .. } => Some(value),
        EntryKind::Tombstone => None,
    }
}

/// Waits until no object-store call happened for 300 ms (the node's start-up work: the
/// leader's manifest publish, a garbage-collection pass).
async fn quiet(store: &FaultyStore) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = store.calls();
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_millis(300) {
        assert!(Instant::now() < deadline, "the store never went quiet");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = store.calls();
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// One shard with data in a compacted L1 run and two L0 segments on top; reopened with empty
/// caches on a store that counts segment reads.
async fn restarted() -> (tempfile::TempDir, Arc<FaultyStore>, Node, OneReplica) {
    let dir = tempfile::tempdir().expect("tempdir");
    let faulty = FaultyStore::new(Arc::new(InMemory::new()));
    let store = ObjStore::new(faulty.clone(), "counting");
    let opened = OneReplica {
        engine: EngineOptions {
            l0_compaction_trigger: 8,
            l0_max: 16,
            ..EngineOptions::default()
        },
        ..OneReplica::default()
    };
    let node = opened.open(dir.path(), &store, Arc::new(SystemClock)).await;
    let h = common::shard(&node, S);
    for batch in 0..3u64 {
        for i in 0..1000u64 {
            let k = key(batch * 1000 + i);
            let v = Bytes::from(format!("{k}:{:>1000}", batch));
            h.write(WriteBatch::new().put(k, v)).await.expect("put");
        }
        h.shard().flush().await.expect("flush");
    }
    assert!(
        h.shard().compact().await.expect("compact"),
        "compacted into L1"
    );
    for batch in 3..5u64 {
        for i in 0..500u64 {
            let k = key(batch * 1000 + i);
            let v = Bytes::from(format!("{k}:{:>1000}", batch));
            h.write(WriteBatch::new().put(k, v)).await.expect("put");
        }
        h.shard().flush().await.expect("flush");
    }
    let st = h.shard().stats();
    assert_eq!((st.l0_segments, st.l1_segments > 0), (2, true), "{st:?}");
    node.shutdown(Duration::from_secs(10)).await;
    drop(node);
    // A fresh node: its block cache (in `OneReplica`) starts empty.
    let node = opened.open(dir.path(), &store, Arc::new(SystemClock)).await;
    quiet(&faulty).await;
    (dir, faulty, node, opened)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_read_makes_at_most_one_data_request() {
    let (_dir, store, node, _) = restarted().await;
    let h = common::shard(&node, S);
    let mut reads = 0u64;
    let mut max_per_read = 0u64;
    // Keys of the L1 run (under both L0 segments' bloom filters), of each L0 segment, and
    // absent ones.
    let keys: Vec<(u64, String)> = (0..3000)
        .step_by(37)
        .chain((3000..3500).step_by(41))
        .chain((4000..4500).step_by(43))
        .map(|i| (i, key(i)))
        .chain((9_000..9_050).map(|i| (i, key(i))))
        // Absent, inside an L0 segment's key range: its bloom filter answers.
        .chain(
            (3000..3500)
                .step_by(50)
                .map(|i| (9_999, format!("{}x", key(i)))),
        )
        .collect();
    for (i, k) in keys {
        let before = store.segment_reads();
        let got = value(&h, &k).await;
        let made = store.segment_reads() - before;
        max_per_read = max_per_read.max(made);
        reads += made;
        if i < 9_000 {
            let v = got.unwrap_or_else(|| panic!("{k} missing"));
            assert!(v.starts_with(k.as_bytes()), "{k}");
        } else {
            assert_eq!(got, None);
        }
        assert!(made <= 1, "reading {k} cold made {made} segment requests");
    }
    let st = h.shard().stats();
    assert_eq!(st.point_read_gets, reads);
    assert_eq!(st.point_reads_over_one_get, 0);
    assert_eq!(max_per_read, 1);
    // A second read of a key is served by the cache.
    assert!(value(&h, &key(1234)).await.is_some());
    let before = store.segment_reads();
    assert!(value(&h, &key(1234)).await.is_some());
    assert_eq!(
        store.segment_reads(),
        before,
        "a warm read makes no request"
    );
    node.shutdown(Duration::from_secs(10)).await;
}

/// Concurrent cold reads of one block (20 ms per GET, so they overlap) share one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_one_block_share_one_request() {
    let (_dir, store, node, _) = restarted().await;
    let h = common::shard(&node, S);
    store.set_read_delay(Duration::from_millis(20));
    let before = store.segment_reads();
    let reads = (0..10).map(|_| {
        let h = h.clone();
        async move { value(&h, &key(100)).await }
    });
    let got = futures::future::join_all(reads).await;
    assert!(got.iter().all(Option::is_some));
    assert_eq!(
        store.segment_reads() - before,
        1,
        "ten concurrent misses of one block made more than one request"
    );
    store.set_read_delay(Duration::ZERO);
    node.shutdown(Duration::from_secs(10)).await;
}
