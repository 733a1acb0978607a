//! The manifest's `flushed_epoch` as a shard's only replica maintains it: 0 until something
//! is flushed, then the epoch of the leader whose flush advanced `flushed_seq`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tierkv_engine::clock::SystemClock;
use tierkv_engine::manifest::{Manifest, ManifestStore};
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{Epoch, SeqNo, ShardId, WriteBatch};
use tierkv_node::node::Node;

use common::{OneReplica, shard};

const SHARD: ShardId = ShardId(0);

async fn open(dir: &Path, store: &ObjStore) -> Node {
    OneReplica::default()
        .open(dir, store, Arc::new(SystemClock))
        .await
}

async fn latest(store: &ObjStore) -> Manifest {
    ManifestStore::new(store.clone(), SHARD)
        .load_latest()
        .await
        .unwrap()
        .unwrap()
}

/// The manifest once the leader has published its epoch (it does so as it starts serving).
async fn published_epoch(store: &ObjStore, epoch: Epoch) -> Manifest {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = latest(store).await;
        if m.epoch >= epoch {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "epoch {epoch} not published"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn put(node: &Node, key: &'static str, value: &'static str) -> SeqNo {
    shard(node, SHARD)
        .write(WriteBatch::new().put(key, value))
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn flushes_record_the_epoch_of_the_writer_that_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjStore::in_memory();

    let node = open(dir.path(), &store).await;
    let first = shard(&node, SHARD).shard().epoch();
    let m = published_epoch(&store, first).await;
    assert_eq!(
        (m.epoch, m.flushed_seq, m.flushed_epoch),
        (first, SeqNo(0), Epoch(0))
    );
    let seq = put(&node, "a", "1").await;
    shard(&node, SHARD).shard().flush().await.unwrap();
    let m = latest(&store).await;
    assert_eq!((m.flushed_seq, m.flushed_epoch), (seq, first));
    node.shutdown(Duration::from_secs(10)).await;

    // A newer leader keeps the flushed epoch until its own flush advances flushed_seq.
    let node = open(dir.path(), &store).await;
    let second = shard(&node, SHARD).shard().epoch();
    assert!(second > first);
    let m = published_epoch(&store, second).await;
    assert_eq!(
        (m.epoch, m.flushed_seq, m.flushed_epoch),
        (second, seq, first)
    );
    let s = shard(&node, SHARD);
    // No entry since, but the new leader's barrier (the next seq, in its epoch): flushing
    // it records the new epoch (and releases the WAL file holding it).
    s.shard().flush().await.unwrap();
    let m = latest(&store).await;
    assert_eq!((m.flushed_seq, m.flushed_epoch), (seq.next(), second));
    s.shard().flush().await.unwrap(); // nothing new: flushed_seq and flushed_epoch stay
    let m = latest(&store).await;
    assert_eq!((m.flushed_seq, m.flushed_epoch), (seq.next(), second));
    let seq2 = put(&node, "b", "2").await;
    s.shard().flush().await.unwrap();
    let m = latest(&store).await;
    assert_eq!((m.flushed_seq, m.flushed_epoch), (seq2, second));
    node.shutdown(Duration::from_secs(10)).await;
}
