//! `Describe` (design note 0010) on a node in this process: what it reports after writes and
//! reads, through `Node::execute` as the RPC server calls it.

mod common;

use tierkv_engine::clock::ManualClock;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{ReadConsistency, ShardId, WriteBatch};
use tierkv_node::wire::proto::{Request, Response};

use common::{OneReplica, shard};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_reports_storage_load_and_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_700_000_000_000);
    let node = OneReplica {
        shards: 2,
        ..OneReplica::default()
    }
    .open(dir.path(), &ObjStore::in_memory(), clock.clone())
    .await;
    let s0 = shard(&node, ShardId(0));
    for i in 0..5 {
        s0.write(WriteBatch::new().put(format!("k{i}"), "value"))
            .await
            .expect("write");
    }
    // Counted operations go through `execute`, as the RPC server's do.
    for _ in 0..3 {
        let r = node
            .execute(Request::Get {
                shard: ShardId(0),
                key: bytes::Bytes::from_static(b"k1"),
                consistency: ReadConsistency::Strong,
            })
            .await;
        assert!(matches!(r, Response::Got(Some(_))), "{r:?}");
    }
    let Response::Described(d) = node.execute(Request::Describe { max_events: 100 }).await else {
        panic!("Describe answers Described");
    };
    assert_eq!(d.node, 1);
    assert_eq!(d.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(d.started_at_ms, 1_700_000_000_000);
    assert_eq!(d.shards.len(), 2);
    let f0 = &d.shards[0];
    assert_eq!((f0.shard, f0.role.as_str()), (0, "leader"));
    assert!(
        f0.commit_seq >= 5 && f0.applied_seq == f0.commit_seq,
        "{f0:?}"
    );
    assert!(f0.memtable_bytes > 0 && f0.unflushed_bytes > 0, "{f0:?}");
    assert_eq!(
        (f0.reads, f0.writes),
        (3, 0),
        "writes through the handle are not RPCs"
    );
    assert!(f0.followers.is_empty(), "one replica: no followers");
    assert!(d.wal.bytes > 0 && d.wal.files >= 1 && !d.wal.poisoned);
    let kinds: Vec<&str> = d.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"node_started"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "became_leader").count(),
        2,
        "{kinds:?}"
    );
    assert!(d.events.iter().all(|e| e.at_ms == 1_700_000_000_000));
    // At most what was asked for, the newest.
    let Response::Described(few) = node.execute(Request::Describe { max_events: 1 }).await else {
        panic!("Describe answers Described");
    };
    assert_eq!(few.events.len(), 1);
    assert_eq!(few.events.last(), d.events.last());
}
