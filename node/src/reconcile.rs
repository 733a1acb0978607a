//! Reconciliation (design note 0009 §6): at open and after every map refresh, a node moves
//! its replicas toward the newest map. A shard whose target (the map's replicas) lists this
//! node and that it does not host gets a learner: its promise floor (the newest claimed
//! epoch) durable in the WAL first, then the `HOSTED` file, then the replica from the latest
//! manifest (§5). Every hosted replica is told the target (`SetTarget`: a serving leader
//! moves its configuration toward it, one change at a time, through the shard's log, §2)
//! and the retired ids. A follower whose committed steady configuration does not list it,
//! and that the target leaves out, is released: `HOSTED` without it, its driver stopped, its
//! WAL records released. So is a replica the target leaves out whose shard's serving leader,
//! asked with `StatusWithConfigurations` (wire revision 5), has a committed steady
//! configuration without it: a removed replica that missed the leader's last `Append` keeps
//! the joint configuration in force, which lists it, and nobody replicates to it any more.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tierkv_engine::replica::{Membership, NodeId, Recovered, Role};
use tierkv_engine::shard::Shard;
use tierkv_engine::types::{SeqNo, ShardId};
use tierkv_wire::proto;
use tierkv_wire::shardmap::ShardMap;

use crate::driver::{self, ShardHandle};
use crate::node::NodeInner;
use crate::options::NodeError;

/// Reconciliation's memory between passes.
#[derive(Debug, Default)]
pub(crate) struct Reconciled {
    /// The target last given to each hosted replica.
    targets: HashMap<ShardId, Vec<NodeId>>,
    /// Retired ids each hosted replica was told about.
    retired: std::collections::HashSet<(ShardId, NodeId)>,
}

/// Moves this node's replicas toward `map` (design note 0009 §6): creates a learner of every
/// shard the map places here that the node does not host, then gives every hosted replica
/// the map's target and retired ids. Failures are logged; the next pass retries.
pub(crate) async fn reconcile(node: &Arc<NodeInner>, map: &ShardMap) {
    let mut done = node.reconciled.lock().await;
    if node.cancel.is_cancelled() {
        return;
    }
    let me = node.id;
    if map.is_retired(me) {
        tracing::error!(node = %me, "this node's id is retired in the shard map; it creates no replica");
        return;
    }
    // `cluster.max_moves_per_node`: replicas placed here that are not voters yet count
    // against it; each new learner loads a manifest and opens segments, and its leader then
    // ships it the log tail.
    let mut learning = node
        .shards
        .load()
        .iter()
        .filter(|(id, h)| !h.status().voter && map.replicas(**id).contains(&me))
        .count();
    for s in 0..map.shards().min(node.genesis.shards()) {
        let id = ShardId(s);
        if !map.replicas(id).contains(&me) || node.shards.load().contains_key(&id) {
            continue;
        }
        if learning >= node.spawner.cluster.max_moves_per_node {
            tracing::debug!(node = %me, learning, "as many learners as cluster.max_moves_per_node; the other moves wait");
            break;
        }
        learning += 1;
        match create_learner(node, id).await {
            Ok(()) => tracing::info!(node = %me, shard = %id, "created a learner replica"),
            Err(e) => {
                tracing::warn!(node = %me, shard = %id, error = %e, "creating a learner replica failed")
            }
        }
    }
    let hosted = node.shards.load_full();
    for (id, h) in hosted.iter() {
        let target = map.replicas(*id).to_vec();
        // Released: a follower whose committed steady configuration does not list it and
        // whose target does not either (note 0009 §6; the leader sent it the commit point).
        let st = h.status();
        let removed = !target.contains(&me)
            && matches!(st.role, Role::Follower | Role::Candidate)
            && if !st.voter && st.phase == tierkv_engine::replica::ChangePhase::Releasing {
                st.role == Role::Follower
            } else {
                // Asked only while the target leaves it out: a handful of shards during a
                // move, none in a steady cluster.
                leader_removed(node, map, *id, st.leader).await
            };
        if removed {
            match release(node, *id, h).await {
                Ok(()) => {
                    tracing::info!(node = %me, shard = %id, "released a replica the configuration removed");
                    done.targets.remove(id);
                    done.retired.retain(|(s, _)| s != id);
                }
                Err(e) => {
                    tracing::warn!(node = %me, shard = %id, error = %e, "releasing a replica failed")
                }
            }
            continue;
        }
        if !target.is_empty() && done.targets.get(id) != Some(&target) {
            if !h.set_target(target.clone()).await {
                continue;
            }
            done.targets.insert(*id, target);
        }
        for r in map.retired() {
            if !done.retired.contains(&(*id, r)) && h.retire(r).await {
                done.retired.insert((*id, r));
            }
        }
    }
}

/// Releases the replica of `id` (design note 0009 §2 step 4): the `HOSTED` file without it
/// first (a crash after that releases its WAL records at the next start), then its driver
/// stops, its storage drops its memtables and stops its background work, and its WAL
/// records are released.
async fn release(node: &Arc<NodeInner>, id: ShardId, h: &ShardHandle) -> Result<(), NodeError> {
    let listed: std::collections::BTreeSet<ShardId> = node
        .shards
        .load()
        .keys()
        .copied()
        .filter(|s| *s != id)
        .collect();
    let dir = node.spawner.data_dir.clone();
    tokio::task::spawn_blocking(move || crate::hosted::write(&dir, &listed))
        .await
        .map_err(|_| tierkv_engine::Error::Invariant {
            what: "HOSTED write task panicked",
        })??;
    node.shards.rcu(|cur| {
        let mut next = BTreeMap::clone(cur);
        next.remove(&id);
        next
    });
    h.stop_driver().await;
    h.shard().abandon();
    node.wal.release(id, SeqNo(u64::MAX));
    Ok(())
}

/// Creates a learner replica of `id` on this node (design note 0009 §5): the newest claimed
/// epoch of the shard becomes its promise, durable in the WAL before the `HOSTED` file lists
/// the shard and before the replica answers anything, so it never backs a candidate of an
/// epoch that existed before it; its log starts at the latest manifest's flushed prefix
/// (segments are shared: nothing flushed is copied), and its leader ships the tail.
async fn create_learner(node: &Arc<NodeInner>, id: ShardId) -> Result<(), NodeError> {
    let sp = &node.spawner;
    let newest = tierkv_engine::manifest::ManifestStore::new(sp.store.clone(), id)
        .newest_epoch()
        .await?;
    if newest > tierkv_engine::types::Epoch(0) {
        node.wal.append_promise(id, newest)?.wait().await?;
    }
    let mut listed: std::collections::BTreeSet<ShardId> =
        node.shards.load().keys().copied().collect();
    listed.insert(id);
    let dir = sp.data_dir.clone();
    tokio::task::spawn_blocking(move || crate::hosted::write(&dir, &listed))
        .await
        .map_err(|_| tierkv_engine::Error::Invariant {
            what: "HOSTED write task panicked",
        })??;
    let m = driver::latest_manifest(&sp.store, id).await?;
    let recovered = Recovered {
        promised_epoch: newest,
        flushed_seq: m.flushed_seq,
        flushed_epoch: m.flushed_epoch,
        flushed_membership: m.membership.clone(),
        records: Vec::new(),
        amnesia_floor: sp.floors.get(&id).copied(),
    };
    let shard = Shard::open_replicated(id, Arc::clone(&sp.engine), sp.components(), m).await?;
    let (handle, task) = sp.start(id, shard, recovered)?;
    node.shards.rcu(|cur| {
        let mut next = BTreeMap::clone(cur);
        next.insert(id, handle.clone());
        next
    });
    node.tasks.lock().push(task);
    Ok(())
}

/// How long reconciliation waits for one node's `StatusWithConfigurations` answer.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Whether the serving leader of `id` has a committed steady configuration that does not
/// list this node (design note 0009 §6, last rule). Asks the leader this replica last heard
/// of, then the target's replicas, with `StatusWithConfigurations` (wire revision 5) until
/// one answers as the shard's serving leader; a node of an older revision refuses the
/// request, and nothing unreachable or undecodable counts: the replica is kept until a
/// later pass learns more. Committed configurations only move forward along the chain
/// (`C, (C,T), T`), so a committed steady configuration without this node means no quorum
/// will ever need its acks or promises again (the caller also checked that the target
/// leaves it out).
async fn leader_removed(
    node: &Arc<NodeInner>,
    map: &ShardMap,
    id: ShardId,
    hint: Option<NodeId>,
) -> bool {
    let me = node.id;
    let mut asked: Vec<NodeId> = Vec::new();
    for n in hint.into_iter().chain(map.replicas(id).iter().copied()) {
        if n == me || asked.contains(&n) || map.is_retired(n) {
            continue;
        }
        asked.push(n);
        let Some(member) = map.member(n) else {
            continue;
        };
        let Some(status) = ask_configurations(node, &member.addr).await else {
            continue;
        };
        let Some(s) = status.shards.iter().find(|s| s.shard == id) else {
            continue;
        };
        if status.node != n || s.role != proto::ReplicaRole::Leader {
            continue;
        }
        return match &s.configuration {
            Some(c) => match &c.committed {
                Membership::Steady(voters) => !voters.contains(&me),
                Membership::Joint { .. } => false,
            },
            None => false,
        };
    }
    false
}

/// The `StatusWithConfigurations` answer of the node at `addr`, if it gives one in time.
async fn ask_configurations(node: &Arc<NodeInner>, addr: &str) -> Option<proto::NodeStatus> {
    let url = format!("http://{addr}{}", tierkv_wire::paths::KV);
    let resp = node
        .http
        .post(url)
        .timeout(ASK_TIMEOUT)
        .bearer_auth(&node.secret)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(proto::encode_request(
            &proto::Request::StatusWithConfigurations,
        ))
        .send()
        .await
        .map_err(|e| tracing::debug!(addr, error = %e, "asking a node for its configurations"))
        .ok()?;
    if resp.status() != reqwest::StatusCode::OK {
        // HTTP 400: a node of an older wire revision (design note 0009, "Compatibility").
        tracing::debug!(addr, status = %resp.status(), "a node refused StatusWithConfigurations");
        return None;
    }
    let body = resp.bytes().await.ok()?;
    match proto::decode_response(&body) {
        Ok(proto::Response::Status(st)) => Some(st),
        _ => None,
    }
}
