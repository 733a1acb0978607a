//! Reconciliation (design note 0009, "Part 2 plan", step 6), nodes in this process over
//! real HTTP/2 replication streams on 127.0.0.1.
//!
//! Adding a replica: a fourth node joins a three-node cluster through a new shard map
//! version that lists it (it starts first and waits to be listed). It creates learners
//! of the shards the map places on it; each shard's leader moves its configuration to the
//! target through the joint configuration; the new replicas end up voters holding every
//! write, the replicas the target left out are released, the shards keep taking writes,
//! and the new node, restarted, brings its new replicas back (its `HOSTED` file) as voters
//! with their writes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tierkv_engine::block_cache::MemBlockCache;
use tierkv_engine::clock::SystemClock;
use tierkv_engine::metrics::Registry;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::replica::{ChangePhase, NodeId, Role};
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{EntryKind, ReadConsistency, ShardId, WriteBatch};
use tierkv_engine::wal::WalSettings;
use tierkv_node::ShardHandle;
use tierkv_node::node::{Node, NodeComponents, NodeOptions};
use tierkv_node::server::{self, StopOptions};
use tierkv_node::settings::ClusterSettings;
use tierkv_wire::shardmap::{self, Member, PublishOutcome, ShardMap};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SHARDS: u32 = 4;
const DEADLINE: Duration = Duration::from_secs(30);

struct Running {
    node: Node,
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
    addr: String,
    dir: tempfile::TempDir,
}

impl Running {
    /// Stops serving and waits for the server task; the node's address and directory.
    async fn stop(self) -> (String, tempfile::TempDir) {
        let _ = self.stop.send(());
        self.served.await.expect("server task").expect("served");
        (self.addr, self.dir)
    }
}

/// Four listeners on 127.0.0.1, their addresses, and the `initial_members` entries
/// (`id=addr`, ids from 1) of the first `members` of them.
async fn four_listeners(members: usize) -> (Vec<TcpListener>, Vec<String>, Vec<String>) {
    let mut listeners = Vec::new();
    for _ in 0..4 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
    }
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").to_string())
        .collect();
    let initial = (0..members)
        .map(|i| format!("{}={}", i + 1, addrs[i]))
        .collect();
    (listeners, addrs, initial)
}

fn settings(id: u32, addr: &str, initial: &[String]) -> ClusterSettings {
    ClusterSettings {
        node_id: id,
        advertise: Some(addr.to_owned()),
        initial_members: initial.to_vec(),
        tick: Duration::from_millis(10),
        heartbeat_interval: Duration::from_millis(100),
        lease_duration: Duration::from_secs(1),
        max_clock_drift: Duration::from_millis(100),
        handover_after: Duration::ZERO,
        map_refresh: Duration::from_millis(50),
        ..ClusterSettings::default()
    }
}

async fn open(id: u32, addr: &str, dir: &Path, store: &ObjStore, initial: &[String]) -> Node {
    open_with(settings(id, addr, initial), dir, store).await
}

async fn open_with(cluster: ClusterSettings, dir: &Path, store: &ObjStore) -> Node {
    let addr = cluster.advertise.clone().expect("advertise");
    Node::open(
        NodeOptions {
            cluster,
            advertise: addr,
            shards: SHARDS,
            engine: EngineOptions::default(),
            wal: WalSettings::default(),
            data_dir: dir.to_path_buf(),
        },
        NodeComponents {
            store: store.clone(),
            cache: Arc::new(MemBlockCache::new(1 << 20)),
            clock: Arc::new(SystemClock),
        },
    )
    .await
    .expect("node opens")
}

async fn start(id: u32, listener: TcpListener, store: &ObjStore, initial: &[String]) -> Running {
    start_with(id, listener, store, initial, |_| {}).await
}

async fn start_with(
    id: u32,
    listener: TcpListener,
    store: &ObjStore,
    initial: &[String],
    tweak: impl FnOnce(&mut ClusterSettings),
) -> Running {
    let addr = listener.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cluster = settings(id, &addr, initial);
    tweak(&mut cluster);
    let node = open_with(cluster, dir.path(), store).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(
        node.clone(),
        listener,
        Registry::default(),
        async move {
            let _ = stopped.await;
        },
        StopOptions {
            hand_over: false,
            flush_timeout: Duration::from_secs(1),
        },
    ));
    Running {
        node,
        stop,
        served,
        addr,
        dir,
    }
}

/// The serving leader of `shard` among `nodes`, once there is one.
async fn leader(nodes: &[&Running], shard: ShardId) -> ShardHandle {
    let deadline = Instant::now() + DEADLINE;
    loop {
        for r in nodes {
            if let Some(h) = r.node.shard(shard)
                && h.status().role == Role::Leader
                && h.wait_serving(Duration::from_millis(100)).await
            {
                return h;
            }
        }
        assert!(Instant::now() < deadline, "no serving leader of {shard}");
        tokio::task::yield_now().await;
    }
}

async fn value(h: &ShardHandle, key: &str) -> Option<Bytes> {
    match h
        .get(key.as_bytes(), ReadConsistency::Eventual)
        .await
        .ok()??
        .kind
    {
        EntryKind::Put { value, .. } => Some(value),
        EntryKind::Tombstone => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_gets_learners_that_become_voters_with_every_write() {
    let store = ObjStore::in_memory();
    let (listeners, addrs, initial) = four_listeners(3).await;
    let mut listeners = listeners.into_iter();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        let l = listeners.next().expect("listener");
        nodes.push(start(id, l, &store, &initial).await);
    }
    for s in 0..SHARDS {
        let h = leader(&nodes.iter().collect::<Vec<_>>(), ShardId(s)).await;
        h.write(WriteBatch::new().put(format!("before{s}"), "1"))
            .await
            .expect("write before the move");
    }

    // Node 4 starts first and waits to be listed (no initial members); version 2 lists it.
    let l4 = listeners.next().expect("listener");
    let store4 = store.clone();
    let joining = tokio::spawn(async move { start(4, l4, &store4, &[]).await });
    let v1 = shardmap::load_latest(&store)
        .await
        .expect("load")
        .expect("map");
    let mut members = v1.members().to_vec();
    members.push(Member::active(NodeId(4), addrs[3].clone()));
    let v2 = ShardMap::new(v1.version() + 1, SHARDS, 3, v1.vnodes(), members).expect("map");
    assert_eq!(
        shardmap::publish(&store, &v2).await.expect("publish"),
        PublishOutcome::Created
    );
    let moved: Vec<ShardId> = (0..SHARDS)
        .map(ShardId)
        .filter(|s| v2.replicas(*s).contains(&NodeId(4)))
        .collect();
    assert!(!moved.is_empty(), "the new member got no replicas");
    nodes.push(joining.await.expect("node 4 opens once listed"));

    // Every moved shard: node 4 is a voter holding the earlier write, the leader's move is
    // done, and the replica the target left out was released.
    let deadline = Instant::now() + DEADLINE;
    for &s in &moved {
        let out = v1
            .replicas(s)
            .iter()
            .copied()
            .find(|n| !v2.replicas(s).contains(n))
            .expect("a replica left");
        loop {
            let all: Vec<&Running> = nodes.iter().collect();
            let l = leader(&all, s).await;
            let new = nodes[3].node.shard(s);
            // The replica the target left out is released once it knows the new
            // configuration is committed.
            let released = nodes[out.0 as usize - 1].node.shard(s).is_none();
            let voter = match &new {
                Some(h) if h.status().voter => Some(h),
                _ => None,
            };
            let holds = match voter {
                Some(h) => value(h, &format!("before{}", s.0)).await.as_deref() == Some(&b"1"[..]),
                None => false,
            };
            if l.status().phase == ChangePhase::Done && holds && released {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "shard {s}: the move did not finish"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The moved shards take writes under their new configurations, and the new replicas
    // get them.
    for &s in &moved {
        let all: Vec<&Running> = nodes.iter().collect();
        let l = leader(&all, s).await;
        l.write(WriteBatch::new().put(format!("after{}", s.0), "2"))
            .await
            .expect("write after the move");
        let h = nodes[3].node.shard(s).expect("hosted");
        let deadline = Instant::now() + DEADLINE;
        while value(&h, &format!("after{}", s.0)).await.as_deref() != Some(&b"2"[..]) {
            assert!(
                Instant::now() < deadline,
                "shard {s}: the new voter misses a write"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut dirs = Vec::new();
    for r in nodes {
        dirs.push(r.stop().await);
    }
    // Node 4 restarted alone (its `HOSTED` file): the replicas it got by reconciliation are
    // back, as voters, with their writes (from its WAL and the shared segments).
    let (addr, dir) = &dirs[3];
    let again = open(4, addr, dir.path(), &store, &[]).await;
    for &s in &moved {
        let h = again
            .shard(s)
            .expect("the new replica is hosted after a restart");
        assert!(h.status().voter, "shard {s}: not a voter after a restart");
        for key in [format!("before{}", s.0), format!("after{}", s.0)] {
            assert!(
                value(&h, &key).await.is_some(),
                "shard {s}: {key} lost in a restart"
            );
        }
    }
    again.shutdown(Duration::from_secs(1)).await;
}

/// Four nodes; node 1 drains (shard map version 2 marks it draining): every shard it held
/// moves to the other three, its replicas are released (the leaders among them hand their
/// shards over first), and no write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_member_ends_up_hosting_nothing_and_no_write_is_lost() {
    let store = ObjStore::in_memory();
    let (listeners, _, initial) = four_listeners(4).await;
    let mut nodes = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        nodes.push(start(i as u32 + 1, l, &store, &initial).await);
    }
    let all: Vec<&Running> = nodes.iter().collect();
    let held: Vec<ShardId> = nodes[0].node.shards().map(|h| h.shard().id()).collect();
    assert!(!held.is_empty(), "node 1 holds no shard");
    for s in 0..SHARDS {
        let h = leader(&all, ShardId(s)).await;
        h.write(WriteBatch::new().put(format!("before{s}"), "1"))
            .await
            .expect("write before the drain");
    }
    let v2 = shardmap::change_members(&store, |m| m.drain_member(NodeId(1)))
        .await
        .expect("drain");
    assert!(v2.shards_of(NodeId(1)).is_empty());
    let deadline = Instant::now() + DEADLINE;
    while nodes[0].node.shards().next().is_some() {
        assert!(
            Instant::now() < deadline,
            "node 1 still hosts {:?}",
            nodes[0]
                .node
                .shards()
                .map(|h| (h.shard().id(), h.status().phase, h.status().role))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rest: Vec<&Running> = nodes[1..].iter().collect();
    for s in 0..SHARDS {
        let s = ShardId(s);
        let l = leader(&rest, s).await;
        l.write(WriteBatch::new().put(format!("after{}", s.0), "2"))
            .await
            .expect("write after the drain");
        for key in [format!("before{}", s.0), format!("after{}", s.0)] {
            let got = l
                .get(key.as_bytes(), ReadConsistency::Strong)
                .await
                .expect("strong read");
            assert!(got.is_some(), "shard {s}: {key} lost");
        }
    }
    for r in nodes {
        r.stop().await;
    }
}

/// Three nodes; node 3 is lost for good (stopped) and replaced by node 4 (version 2 retires
/// 3 and lists 4): every shard ends up with node 4 as a voter holding every write, and
/// node 3's id can never start again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_member_is_replaced_and_its_id_is_refused_afterwards() {
    let store = ObjStore::in_memory();
    let (listeners, addrs, initial) = four_listeners(3).await;
    let mut listeners = listeners.into_iter();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        let l = listeners.next().expect("listener");
        nodes.push(start(id, l, &store, &initial).await);
    }
    let all: Vec<&Running> = nodes.iter().collect();
    for s in 0..SHARDS {
        let h = leader(&all, ShardId(s)).await;
        h.write(WriteBatch::new().put(format!("before{s}"), "1"))
            .await
            .expect("write before the loss");
    }
    let lost = nodes.pop().expect("node 3");
    lost.node.abandon().await;
    let _ = lost.stop.send(());
    let _ = lost.served.await;
    let l4 = listeners.next().expect("listener");
    let store4 = store.clone();
    let joining = tokio::spawn(async move { start(4, l4, &store4, &[]).await });
    shardmap::change_members(&store, |m| {
        m.replace_member(NodeId(3), NodeId(4), &addrs[3])
    })
    .await
    .expect("replace");
    nodes.push(joining.await.expect("node 4 opens once listed"));
    let deadline = Instant::now() + DEADLINE;
    for s in 0..SHARDS {
        let s = ShardId(s);
        loop {
            let all: Vec<&Running> = nodes.iter().collect();
            let l = leader(&all, s).await;
            let new = nodes[2].node.shard(s);
            let holds = match &new {
                Some(h) if h.status().voter => {
                    value(h, &format!("before{}", s.0)).await.as_deref() == Some(&b"1"[..])
                }
                _ => false,
            };
            if l.status().phase == ChangePhase::Done && holds {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "shard {s}: the replacement did not finish"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The retired id is refused before it opens anything.
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = Node::open(
        NodeOptions {
            cluster: settings(3, "127.0.0.1:9", &[]),
            advertise: "127.0.0.1:9".to_owned(),
            shards: SHARDS,
            engine: EngineOptions::default(),
            wal: WalSettings::default(),
            data_dir: dir.path().to_path_buf(),
        },
        NodeComponents {
            store: store.clone(),
            cache: Arc::new(MemBlockCache::new(1 << 20)),
            clock: Arc::new(SystemClock),
        },
    )
    .await;
    assert!(
        matches!(refused, Err(tierkv_node::node::NodeError::Retired { .. })),
        "{:?}",
        refused.err()
    );
    for r in nodes {
        r.stop().await;
    }
}

/// A removed replica that missed the leader's last `Append` (design note 0009 §6, last
/// rule): node 1 is down while it is drained, so its replicas never receive the joint or
/// final configuration records and keep, when it comes back, a configuration in force that
/// lists them; nobody replicates to them any more. Its node asks each shard's serving
/// leader (`StatusWithConfigurations`, wire revision 5), learns that the committed steady
/// configuration leaves it out, and releases them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_replica_that_missed_the_last_append_is_released_by_asking_the_leader() {
    let store = ObjStore::in_memory();
    let (listeners, _, initial) = four_listeners(4).await;
    let mut nodes = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        nodes.push(start(i as u32 + 1, l, &store, &initial).await);
    }
    let held: Vec<ShardId> = nodes[0].node.shards().map(|h| h.shard().id()).collect();
    assert!(!held.is_empty(), "node 1 holds no shard");
    {
        let all: Vec<&Running> = nodes.iter().collect();
        for s in 0..SHARDS {
            let h = leader(&all, ShardId(s)).await;
            h.write(WriteBatch::new().put(format!("before{s}"), "1"))
                .await
                .expect("write before the drain");
        }
    }
    // Node 1 stops (its directory kept), then is drained: its shards move without it.
    let first = nodes.remove(0);
    let _ = first.stop.send(());
    first.served.await.expect("server task").expect("served");
    shardmap::change_members(&store, |m| m.drain_member(NodeId(1)))
        .await
        .expect("drain");
    let rest: Vec<&Running> = nodes.iter().collect();
    let deadline = Instant::now() + DEADLINE;
    for &s in &held {
        loop {
            let l = leader(&rest, s).await;
            let c = l.configurations();
            let moved = l.status().phase == ChangePhase::Done
                && !c.committed.is_joint()
                && !c.committed.is_voter(NodeId(1));
            if moved {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "shard {s}: the move without node 1 did not finish"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Node 1 comes back without serving (no one reaches it: it gets no `Append`), its
    // replicas' logs end before the joint record. It releases every one of them.
    let back = open(1, &first.addr, first.dir.path(), &store, &initial).await;
    let deadline = Instant::now() + DEADLINE;
    while back.shards().next().is_some() {
        assert!(
            Instant::now() < deadline,
            "node 1 still hosts {:?}",
            back.shards()
                .map(|h| (h.shard().id(), h.status().phase, h.status().voter))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The shards still serve their writes.
    for &s in &held {
        let l = leader(&rest, s).await;
        let got = l
            .get(format!("before{}", s.0).as_bytes(), ReadConsistency::Strong)
            .await
            .expect("strong read");
        assert!(got.is_some(), "shard {s}: a write was lost");
    }
    back.shutdown(Duration::from_secs(1)).await;
    for r in nodes {
        r.stop().await;
    }
}

/// The throttles (design note 0009 §2, "Learn"): with `cluster.max_moves_per_node = 1` the
/// new node never holds more than one learner at once, and with
/// `cluster.move_bytes_per_sec` small against the log tail the leaders report the bytes
/// their learners are behind; every move still finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_moves_learn_one_at_a_time_and_still_finish() {
    let store = ObjStore::in_memory();
    let (listeners, addrs, initial) = four_listeners(3).await;
    let mut listeners = listeners.into_iter();
    let throttled = |c: &mut ClusterSettings| {
        c.max_moves_per_node = 1;
        c.move_bytes_per_sec = 64 << 10;
    };
    let mut nodes = Vec::new();
    for id in 1..=3 {
        let l = listeners.next().expect("listener");
        nodes.push(start_with(id, l, &store, &initial, throttled).await);
    }
    // About 128 KiB of log tail per shard: half a second of catch-up each.
    let big = "x".repeat(4096);
    for s in 0..SHARDS {
        let h = leader(&nodes.iter().collect::<Vec<_>>(), ShardId(s)).await;
        for i in 0..32 {
            h.write(WriteBatch::new().put(format!("k{s}/{i}"), big.clone()))
                .await
                .expect("write before the move");
        }
    }
    let l4 = listeners.next().expect("listener");
    let store4 = store.clone();
    let joining = tokio::spawn(async move { start_with(4, l4, &store4, &[], throttled).await });
    let v2 = shardmap::change_members(&store, |m| m.add_member(NodeId(4), &addrs[3]))
        .await
        .expect("add");
    let moved: Vec<ShardId> = (0..SHARDS)
        .map(ShardId)
        .filter(|s| v2.replicas(*s).contains(&NodeId(4)))
        .collect();
    assert!(moved.len() > 1, "the test needs several moves: {moved:?}");
    nodes.push(joining.await.expect("node 4 opens once listed"));
    let deadline = Instant::now() + DEADLINE;
    let mut saw_bytes_behind = false;
    loop {
        let learners = nodes[3].node.shards().filter(|h| !h.status().voter).count();
        assert!(learners <= 1, "{learners} learners at once on node 4");
        for r in &nodes[..3] {
            for h in r.node.shards() {
                saw_bytes_behind |= h.learner_progress().iter().any(|l| l.bytes_behind > 0);
            }
        }
        let done = moved.iter().all(|s| {
            nodes[3]
                .node
                .shard(*s)
                .is_some_and(|h| h.status().voter && h.status().phase == ChangePhase::Done)
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the throttled moves did not finish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_bytes_behind, "no leader reported bytes behind");
    let throttled: u64 = nodes[..3]
        .iter()
        .flat_map(|r| r.node.shards())
        .map(|h| h.throttled_appends())
        .sum();
    assert!(throttled > 0, "the throttle dropped no Append");
    for &s in &moved {
        let h = nodes[3].node.shard(s).expect("hosted");
        let deadline = Instant::now() + DEADLINE;
        while value(&h, &format!("k{}/31", s.0)).await.is_none() {
            assert!(Instant::now() < deadline, "shard {s}: a write is missing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for r in nodes {
        r.stop().await;
    }
}
