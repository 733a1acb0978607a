//! Storage against a real S3-compatible server on 127.0.0.1 (moto, started single-threaded
//! by `scripts/test`, which makes its conditional puts atomic): a node whose shards have one
//! replica each writes, flushes and compacts there, and fencing holds on S3.
//!
//! Configure with `TIERKV_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:9123`) and
//! `TIERKV_TEST_S3_BUCKET` (an existing bucket). Without them these tests return early,
//! unless `TIERKV_REQUIRE_S3=1` (set by the test script), which turns that into a failure.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tierkv_engine::block_cache::MemBlockCache;
use tierkv_engine::clock::SystemClock;
use tierkv_engine::error::ErrorKind;
use tierkv_engine::manifest::ManifestStore;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::replica::Record;
use tierkv_engine::segment::SegmentOptions;
use tierkv_engine::shard::{Shard, ShardComponents};
use tierkv_engine::store::{CreateOutcome, ObjStore, S3Options, StoreOptions};
use tierkv_engine::types::{EntryKind, Epoch, Mutation, SeqNo, ShardId, WriteBatch};
use tierkv_engine::wal::{Wal, WalOptions};
use tierkv_node::node::Node;

use common::{OneReplica, shard};

fn s3_store(prefix: &str) -> Option<ObjStore> {
    let (Ok(endpoint), Ok(bucket)) = (
        std::env::var("TIERKV_TEST_S3_ENDPOINT"),
        std::env::var("TIERKV_TEST_S3_BUCKET"),
    ) else {
        assert!(
            std::env::var("TIERKV_REQUIRE_S3").is_err(),
            "TIERKV_REQUIRE_S3 is set but TIERKV_TEST_S3_ENDPOINT/BUCKET are not"
        );
        eprintln!("skipping: no S3 endpoint configured");
        return None;
    };
    let unique = format!("{prefix}-{:016x}", rand::random::<u64>());
    let store = ObjStore::open(&StoreOptions {
        url: format!("s3://{bucket}/{unique}"),
        s3: S3Options {
            endpoint: Some(endpoint),
            access_key_id: Some("test".to_owned()),
            secret_access_key: Some("test".to_owned()),
            allow_http: true,
            max_retries: 1,
            ..S3Options::default()
        },
        ..StoreOptions::default()
    })
    .expect("s3 store");
    Some(store)
}

fn opts() -> EngineOptions {
    EngineOptions {
        write_buffer_bytes: 8 << 10,
        l0_compaction_trigger: 2,
        l0_max: 6,
        segment: SegmentOptions {
            block_bytes: 1024,
            bloom_bits_per_key: 10,
        },
        ..EngineOptions::default()
    }
}

async fn open(store: &ObjStore, dir: &std::path::Path) -> Node {
    let one = OneReplica {
        engine: opts(),
        ..OneReplica::default()
    };
    one.open(dir, store, Arc::new(SystemClock)).await
}

/// The storage of a replica of shard 0 on a fresh WAL in `dir`, at the latest manifest:
/// what it reads comes from object storage only.
async fn storage(store: &ObjStore, dir: &std::path::Path) -> (Shard, Wal) {
    let (wal, _) = Wal::open(WalOptions {
        dir: dir.to_path_buf(),
        ..WalOptions::default()
    })
    .expect("wal");
    let manifest = ManifestStore::new(store.clone(), ShardId(0))
        .load_latest()
        .await
        .expect("manifest")
        .unwrap_or_default();
    let s = Shard::open_replicated(
        ShardId(0),
        Arc::new(opts()),
        ShardComponents {
            store: store.clone(),
            cache: Arc::new(MemBlockCache::new(1 << 20)),
            clock: Arc::new(SystemClock),
            wal: wal.clone(),
            buffers: tierkv_engine::write_buffers::WriteBuffers::standalone(&opts()),
        },
        manifest,
    )
    .await
    .expect("open storage");
    (s, wal)
}

#[tokio::test]
async fn s3_write_flush_compact_reopen() {
    let Some(store) = s3_store("engine") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let node = open(&store, dir.path()).await;
    let h = shard(&node, ShardId(0));
    let s = h.shard().clone();
    for round in 0..4 {
        for i in 0..100 {
            let b =
                WriteBatch::new().put(format!("k{i:03}"), format!("{round}-{}", "v".repeat(40)));
            h.write(b).await.expect("put");
        }
        s.flush().await.expect("flush");
    }
    s.compact().await.expect("compact");
    assert!(s.stats().l1_segments >= 1);
    node.shutdown(Duration::from_secs(30)).await;
    // Reopen with a fresh WAL directory: everything must come from object storage.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let (s, wal) = storage(&store, dir2.path()).await;
    for i in 0..100 {
        let e = s
            .get(format!("k{i:03}").as_bytes())
            .await
            .expect("get")
            .expect("present");
        assert!(matches!(e.kind, EntryKind::Put { value, .. } if value.starts_with(b"3-")));
    }
    let page = s.scan(b"k0", None, 1000).await.expect("scan");
    assert_eq!(page.entries.len(), 100);
    s.close(Duration::from_secs(30)).await.expect("close");
    wal.close().expect("close wal");
}

#[tokio::test]
async fn s3_create_only_has_one_winner_under_concurrency() {
    let Some(store) = s3_store("cas") else { return };
    for round in 0..5 {
        let key = format!("race/{round}");
        let tries: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                let key = key.clone();
                async move { store.put_create(&key, Bytes::from(format!("{i}"))).await }
            })
            .collect();
        let wins = futures::future::join_all(tries)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(CreateOutcome::Created)))
            .count();
        assert_eq!(wins, 1, "round {round}");
    }
    let ms = ManifestStore::new(store, ShardId(9));
    let claims: Vec<_> = (0..6).map(|_| ms.claim_epoch(Epoch(0))).collect();
    let mut got: Vec<u64> = futures::future::join_all(claims)
        .await
        .into_iter()
        .map(|r| r.expect("claim").0)
        .collect();
    got.sort_unstable();
    assert_eq!(got, (1..=6).collect::<Vec<_>>());
}

/// A leader of an older epoch loses its flush's publish to a newer leader's manifest.
#[tokio::test]
async fn s3_stale_writer_is_fenced() {
    let Some(store) = s3_store("fence") else {
        return;
    };
    let d1 = tempfile::tempdir().expect("tempdir");
    let d2 = tempfile::tempdir().expect("tempdir");
    let epochs = ManifestStore::new(store.clone(), ShardId(0));
    let (old, _old_wal) = storage(&store, d1.path()).await;
    old.set_leading(Some(epochs.claim_epoch(Epoch(0)).await.expect("claim")));
    old.publish_epoch().await.expect("publish");
    let (new, new_wal) = storage(&store, d2.path()).await;
    new.set_leading(Some(epochs.claim_epoch(Epoch(0)).await.expect("claim")));
    new.publish_epoch().await.expect("publish");
    let record = |epoch: Epoch, value: &'static str| Record {
        epoch,
        seq: SeqNo(1),
        entries: vec![
            Mutation::Put {
                key: Bytes::from_static(b"a"),
                value: Bytes::from_static(value.as_bytes()),
                content_type: None,
                expires_at: None,
            }
            .into_entry(SeqNo(1)),
        ],
        membership: None,
    };
    old.apply_committed([&record(old.epoch(), "old")]);
    let r = old.flush().await;
    assert_eq!(r.map_err(|e| e.kind()).err(), Some(ErrorKind::Fenced));
    new.apply_committed([&record(new.epoch(), "new")]);
    new.flush().await.expect("flush");
    new.close(Duration::from_secs(30)).await.expect("close");
    new_wal.close().expect("close wal");
}
