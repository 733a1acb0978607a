//! The manifest's `flushed_epoch` as a single-process writer maintains it: 0 until something
//! is flushed, then the epoch of the writer whose flush advanced `flushed_seq`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tierkv_engine::block_cache::MemBlockCache;
use tierkv_engine::clock::SystemClock;
use tierkv_engine::db::{Db, DbComponents, WalSettings};
use tierkv_engine::manifest::{Manifest, ManifestStore};
use tierkv_engine::options::EngineOptions;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{Epoch, SeqNo, ShardId};

const SHARD: ShardId = ShardId(0);

async fn open(wal: &Path, store: &ObjStore) -> Db {
    Db::open(
        wal.to_path_buf(),
        &WalSettings::default(),
        EngineOptions::default(),
        DbComponents {
            store: store.clone(),
            cache: Arc::new(MemBlockCache::new(1 << 20)),
            clock: Arc::new(SystemClock),
        },
        [SHARD],
    )
    .await
    .unwrap()
}

async fn latest(store: &ObjStore) -> Manifest {
    ManifestStore::new(store.clone(), SHARD)
        .load_latest()
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn flushes_record_the_epoch_of_the_writer_that_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjStore::in_memory();

    let db = open(dir.path(), &store).await;
    let shard = db.shard(SHARD).unwrap();
    let first = shard.epoch();
    let m = latest(&store).await;
    assert_eq!(
        (m.epoch, m.flushed_seq, m.flushed_epoch),
        (first, SeqNo(0), Epoch(0))
    );
    let seq = shard.put("a", "1").await.unwrap();
    shard.flush().await.unwrap();
    let m = latest(&store).await;
    assert_eq!((m.flushed_seq, m.flushed_epoch), (seq, first));
    db.close(Duration::from_secs(10)).await.unwrap();

    // A newer writer keeps the flushed epoch until its own flush advances flushed_seq.
    let db = open(dir.path(), &store).await;
    let shard = db.shard(SHARD).unwrap();
    let second = shard.epoch();
    assert!(second > first);
    let m = latest(&store).await;
    assert_eq!(
        (m.epoch, m.flushed_seq, m.flushed_epoch),
        (second, seq, first)
    );
    shard.flush().await.unwrap(); // nothing new: flushed_seq and flushed_epoch stay
    let m = latest(&store).await;
    assert_eq!((m.flushed_seq, m.flushed_epoch), (seq, first));
    let seq2 = shard.put("b", "2").await.unwrap();
    shard.flush().await.unwrap();
    let m = latest(&store).await;
    assert_eq!((m.flushed_seq, m.flushed_epoch), (seq2, second));
    db.close(Duration::from_secs(10)).await.unwrap();
}
