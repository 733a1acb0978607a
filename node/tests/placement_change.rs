//! A newer shard map that places replicas differently does not make a node start empty
//! voters or drop replicas at its next start (design note 0009, "Part 2 plan", steps 4–6;
//! before, the node hosted the newest placement: a newly placed replica started as a voter
//! with an empty log and no floor, and the WAL records of the others were released). The
//! node keeps every replica it hosted with every record of its WAL, and a shard only the
//! newer map places on it gets a learner, which is no voter and never leads.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use tierkv_engine::clock::ManualClock;
use tierkv_engine::replica::NodeId;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{EntryKind, ReadConsistency, ShardId, WriteBatch};
use tierkv_wire::shardmap::{self, DEFAULT_VNODES, Member, PublishOutcome, ShardMap};

use common::OneReplica;

const SHARDS: u32 = 32;

fn map(version: u64, ids: &[u32]) -> ShardMap {
    let members = ids
        .iter()
        .map(|&id| Member::active(NodeId(id), format!("127.0.0.1:{id}")))
        .collect();
    ShardMap::new(version, SHARDS, 1, DEFAULT_VNODES, members).expect("valid map")
}

fn placed_on(m: &ShardMap, node: NodeId) -> BTreeSet<ShardId> {
    m.shards_of(node).into_iter().map(|(s, _)| s).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_placement_starts_no_empty_voter_and_releases_nothing() {
    let store = ObjStore::in_memory();
    let dir = tempfile::tempdir().expect("tempdir");
    let me = NodeId(1);
    // Genesis: members 1 and 2, one replica per shard (node 2 never runs: its shards are
    // not this test's business).
    let genesis = map(1, &[1, 2]);
    assert_eq!(
        shardmap::publish(&store, &genesis).await.expect("publish"),
        PublishOutcome::Created
    );
    let mine = placed_on(&genesis, me);
    let opts = OneReplica {
        shards: SHARDS,
        ..OneReplica::default()
    };
    let node = opts
        .open(dir.path(), &store, ManualClock::new(1_000_000))
        .await;
    let hosted: BTreeSet<ShardId> = node.shards().map(|h| h.shard().id()).collect();
    assert_eq!(hosted, mine);
    for &s in &mine {
        let h = node.shard(s).expect("hosted");
        h.write(WriteBatch::new().put(format!("k{}", s.0), "v"))
            .await
            .expect("write");
    }
    // A crash: the writes are only in the WAL.
    node.abandon().await;

    // Version 2 drops member 2 and adds member 3: node 1 is placed on shards it never
    // hosted, and loses some of its own to member 3.
    let newer = map(2, &[1, 3]);
    assert_eq!(
        shardmap::publish(&store, &newer).await.expect("publish"),
        PublishOutcome::Created
    );
    let placed = placed_on(&newer, me);
    let gained: Vec<_> = placed.difference(&mine).copied().collect();
    let lost: Vec<_> = mine.difference(&placed).copied().collect();
    assert!(
        !gained.is_empty() && !lost.is_empty(),
        "{mine:?} -> {placed:?}"
    );

    let node = opts
        .open(dir.path(), &store, ManualClock::new(2_000_000))
        .await;
    assert_eq!(node.map().version(), 2);
    // Its replicas, and learners of (some of) the newly placed shards: reconciliation
    // creates a few per pass.
    let hosted: BTreeSet<ShardId> = node.shards().map(|h| h.shard().id()).collect();
    assert!(
        hosted.is_superset(&mine),
        "{hosted:?} lacks some of {mine:?}"
    );
    assert!(
        hosted
            .iter()
            .all(|s| mine.contains(s) || placed.contains(s)),
        "{hosted:?}"
    );
    assert!(hosted.len() > mine.len(), "no learner was created");
    for s in hosted.difference(&mine) {
        let st = node.shard(*s).expect("a learner").status();
        assert!(
            !st.voter,
            "started a replica of {s} from nothing as a voter"
        );
        assert_eq!(st.role, tierkv_engine::replica::Role::Follower, "{s}");
    }
    // Every write is still there, including on the shards the newer map moved away.
    for &s in &mine {
        let h = node.shard(s).expect("hosted");
        assert!(h.wait_serving(Duration::from_secs(10)).await);
        let got = h
            .get(format!("k{}", s.0).as_bytes(), ReadConsistency::Strong)
            .await
            .expect("get")
            .map(|e| e.kind);
        assert!(
            matches!(&got, Some(EntryKind::Put { value, .. }) if value == &Bytes::from_static(b"v")),
            "shard {s}: {got:?}"
        );
    }
    node.shutdown(Duration::from_secs(5)).await;
}
