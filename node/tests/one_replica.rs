//! A shard whose only replica is a node in this process: conditions under concurrency and a
//! failing disk, through the replication driver (moved here from the engine's shard tests
//! when the standalone write path went away).

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tierkv_engine::clock::ManualClock;
use tierkv_engine::error::{Error, ErrorKind};
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{Condition, EntryKind, Mutation, ReadConsistency, ShardId, WriteBatch};
use tierkv_engine::wal::WalFaults;
use tierkv_node::ShardHandle;

use common::{OneReplica, shard};

const S: ShardId = ShardId(0);

/// The committed value of `key` (eventual reads go on whatever the replica's role).
async fn value(s: &ShardHandle, key: &str) -> Option<Bytes> {
    match s
        .get(key.as_bytes(), ReadConsistency::Eventual)
        .await
        .expect("get")
        .map(|e| e.kind)
    {
        Some(EntryKind::Put { value, .. }) => Some(value),
        Some(EntryKind::Tombstone) => panic!("get returned a tombstone"),
        None => None,
    }
}

fn put(key: &'static str, value: String) -> Mutation {
    Mutation::Put {
        key: Bytes::from_static(key.as_bytes()),
        value: Bytes::from(value),
        content_type: None,
        expires_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_on_one_version_has_exactly_one_winner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = OneReplica::default()
        .open(
            dir.path(),
            &ObjStore::in_memory(),
            ManualClock::new(1_000_000),
        )
        .await;
    let s = shard(&node, S);
    // Push the key into a segment so the condition reads go through object storage too.
    let (v0, _) = s
        .write(WriteBatch::new().put("hot", "0"))
        .await
        .expect("put");
    s.shard().flush().await.expect("flush");
    for round in 0..5 {
        let cur = s
            .get(b"hot", ReadConsistency::Strong)
            .await
            .expect("get")
            .expect("present")
            .seq;
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.write(WriteBatch::new().op(
                        put("hot", format!("{round}-{i}")),
                        Condition::VersionIs(cur),
                    ))
                    .await
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            match t.await.expect("join") {
                Ok(_) => wins += 1,
                Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict),
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
    let last = s.get(b"hot", ReadConsistency::Strong).await.expect("get");
    assert!(last.expect("present").seq > v0);
    node.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn failed_fsync_poisons_the_shard_but_reads_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(WalFaults::default());
    let one = OneReplica {
        faults: Some(Arc::clone(&faults)),
        ..OneReplica::default()
    };
    let node = one
        .open(
            dir.path(),
            &ObjStore::in_memory(),
            ManualClock::new(1_000_000),
        )
        .await;
    let s = shard(&node, S);
    s.write(WriteBatch::new().put("a", "1")).await.expect("put");
    faults.fail_next_sync.store(true, Ordering::SeqCst);
    let r = s.write(WriteBatch::new().put("b", "2")).await;
    assert_eq!(r.map_err(|e| e.kind()).err(), Some(ErrorKind::Unavailable));
    let r = s.write(WriteBatch::new().put("c", "3")).await;
    assert!(matches!(r, Err(Error::WalPoisoned { .. })), "{r:?}");
    assert_eq!(value(&s, "a").await, Some(Bytes::from("1")));
    assert_eq!(
        value(&s, "b").await,
        None,
        "an unacknowledged write is not visible"
    );
    assert!(s.status().poisoned);
    node.abandon().await;
}

/// `GetLeased` (design note 0014) on a shard's only replica: answered like a strong read or
/// revalidation, without a lease (the only replica takes over at once after a restart, so
/// it may not promise to hold writes for a gateway) even with read leases configured, and
/// the refusal is counted.
#[tokio::test]
async fn get_leased_on_the_only_replica_reads_without_a_lease() {
    use tierkv_wire::proto::{LeasedRead, Request, Response};
    let dir = tempfile::tempdir().expect("tempdir");
    let node = OneReplica {
        read_lease: std::time::Duration::from_millis(300),
        ..OneReplica::default()
    }
    .open(
        dir.path(),
        &ObjStore::in_memory(),
        ManualClock::new(1_000_000),
    )
    .await;
    let s = shard(&node, S);
    let (v, _) = s.write(WriteBatch::new().put("k", "1")).await.expect("put");
    let ask = |known| Request::GetLeased {
        shard: S,
        key: Bytes::from_static(b"k"),
        known,
    };
    let r = node.execute(ask(Some(v))).await;
    assert_eq!(
        r,
        Response::Leased {
            lease_ms: 0,
            mark: tierkv_engine::replica::LeaseMark::NONE,
            read: LeasedRead::Unchanged
        }
    );
    let Response::Leased {
        lease_ms: 0,
        read: LeasedRead::Got(Some(e)),
        ..
    } = node.execute(ask(None)).await
    else {
        panic!("not a leased read");
    };
    assert_eq!(e.seq, v);
    let refused = s
        .read_lease_counts()
        .refused(tierkv_engine::replica::ReadLeaseRefusal::Off);
    assert_eq!((s.read_lease_counts().granted, refused), (0, 2));
    node.shutdown(std::time::Duration::from_secs(5)).await;
}
