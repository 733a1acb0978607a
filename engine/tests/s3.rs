//! The engine against a real S3-compatible server on 127.0.0.1 (moto, started single-threaded
//! by `scripts/test`, which makes its conditional puts atomic).
//!
//! Configure with `TIERKV_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:9123`) and
//! `TIERKV_TEST_S3_BUCKET` (an existing bucket). Without them these tests return early,
//! unless `TIERKV_REQUIRE_S3=1` (set by the test script), which turns that into a failure.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tierkv_engine::block_cache::MemBlockCache;
use tierkv_engine::clock::SystemClock;
use tierkv_engine::db::{Db, DbComponents, WalSettings};
use tierkv_engine::error::ErrorKind;
use tierkv_engine::manifest::ManifestStore;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::segment::SegmentOptions;
use tierkv_engine::store::{CreateOutcome, ObjStore, S3Options, StoreOptions};
use tierkv_engine::types::{EntryKind, Epoch, ShardId};

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
        memtable_bytes: 8 << 10,
        l0_compaction_trigger: 2,
        l0_max: 6,
        segment: SegmentOptions {
            block_bytes: 1024,
            bloom_bits_per_key: 10,
        },
        ..EngineOptions::default()
    }
}

async fn open(store: &ObjStore, wal: &std::path::Path) -> Db {
    Db::open(
        wal.to_path_buf(),
        &WalSettings::default(),
        opts(),
        DbComponents {
            store: store.clone(),
            cache: Arc::new(MemBlockCache::new(1 << 20)),
            clock: Arc::new(SystemClock),
        },
        [ShardId(0)],
    )
    .await
    .expect("open")
}

#[tokio::test]
async fn s3_write_flush_compact_reopen() {
    let Some(store) = s3_store("engine") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&store, dir.path()).await;
    let s = db.shard(ShardId(0)).expect("shard").clone();
    for round in 0..4 {
        for i in 0..100 {
            s.put(format!("k{i:03}"), format!("{round}-{}", "v".repeat(40)))
                .await
                .expect("put");
        }
        s.flush().await.expect("flush");
    }
    s.compact().await.expect("compact");
    assert!(s.stats().l1_segments >= 1);
    db.close(Duration::from_secs(30)).await.expect("close");
    drop(db);
    // Reopen with a fresh WAL directory: everything must come from object storage.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let db = open(&store, dir2.path()).await;
    let s = db.shard(ShardId(0)).expect("shard");
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
    db.close(Duration::from_secs(30)).await.expect("close");
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

#[tokio::test]
async fn s3_stale_writer_is_fenced() {
    let Some(store) = s3_store("fence") else {
        return;
    };
    let d1 = tempfile::tempdir().expect("tempdir");
    let d2 = tempfile::tempdir().expect("tempdir");
    let old = open(&store, d1.path()).await;
    let new = open(&store, d2.path()).await;
    let old_shard = old.shard(ShardId(0)).expect("shard");
    old_shard.put("a", "old").await.expect("local append");
    let r = old_shard.flush().await;
    assert_eq!(r.map_err(|e| e.kind()).err(), Some(ErrorKind::Fenced));
    let new_shard = new.shard(ShardId(0)).expect("shard");
    new_shard.put("a", "new").await.expect("put");
    new_shard.flush().await.expect("flush");
    new.close(Duration::from_secs(30)).await.expect("close");
}
