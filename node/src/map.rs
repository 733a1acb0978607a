//! The shard map as a node sees it: joining it at start (bootstrapping version 1 from
//! `initial_members`, waiting to be listed, recording a new address), the genesis map
//! (every shard's genesis configuration, design note 0009 §1), and the refresher that
//! re-reads it and reconciles (`crate::reconcile`).

use std::sync::Arc;
use std::time::Duration;

use tierkv_engine::replica::NodeId;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::ShardId;
use tierkv_wire::shardmap::{self, ShardMap};
use tokio_util::sync::CancellationToken;

use crate::node::NodeInner;
use crate::options::{NodeError, NodeOptions};
use crate::reconcile::reconcile;

/// The genesis map (version 1) of the cluster whose newest map is `latest`.
pub(crate) async fn genesis_map(
    store: &ObjStore,
    latest: &ShardMap,
) -> Result<Arc<ShardMap>, NodeError> {
    if latest.version() == 1 {
        return Ok(Arc::new(latest.clone()));
    }
    let genesis = shardmap::load_version(store, 1).await?.ok_or_else(|| {
        shardmap::ShardMapError::Vanished {
            key: tierkv_engine::paths::shardmap(1),
        }
    })?;
    if genesis.shards() != latest.shards() {
        return Err(NodeError::ShardCount {
            map: genesis.shards(),
            cluster: latest.shards(),
        });
    }
    Ok(Arc::new(genesis))
}

/// `map`, or the first newer map that lists `me` (polled every 50 ms, backing off to 1 s).
pub(crate) async fn wait_until_listed(
    store: &ObjStore,
    me: NodeId,
    mut map: ShardMap,
) -> Result<ShardMap, NodeError> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut told = Duration::ZERO;
    while map.member(me).is_none() {
        if started.elapsed() >= told {
            tracing::info!(node = %me, map_version = map.version(), "not a member of the shard map yet; waiting to be added");
            told += Duration::from_secs(10);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
        if let Some(newer) = shardmap::load_newer(store, map.version()).await? {
            map = newer;
        }
    }
    Ok(map)
}

/// Reads the shard map (bootstrapping it from `initial_members` if allowed) and makes sure
/// it records this node's address.
pub(crate) async fn join_map(
    opts: &NodeOptions,
    store: &ObjStore,
    me: NodeId,
) -> Result<ShardMap, NodeError> {
    let members = opts.cluster.members()?;
    let map = if members.is_empty() {
        let wait = Duration::from_secs(60);
        let map = shardmap::wait_for_latest(store, wait)
            .await?
            .ok_or(NodeError::NoMap { waited: wait })?;
        // A node joining a running cluster starts before an operator adds it (design note
        // 0009 §6): it waits until a map lists it.
        wait_until_listed(store, me, map).await?
    } else {
        let initial = ShardMap::new(
            1,
            opts.shards,
            opts.cluster.replication,
            opts.cluster.vnodes,
            members
                .into_iter()
                .map(|(id, addr)| shardmap::Member::active(NodeId(id), addr))
                .collect(),
        )?;
        shardmap::bootstrap(store, &initial).await?
    };
    let Some(member) = map.member(me) else {
        return Err(NodeError::NotAMember {
            id: me,
            version: map.version(),
        });
    };
    if member.state == shardmap::MemberState::Retired {
        return Err(NodeError::Retired {
            id: me,
            version: map.version(),
        });
    }
    if member.addr != opts.advertise {
        tracing::info!(node = %me, old = %member.addr, new = %opts.advertise, "recording this node's new address in the shard map");
        return Ok(shardmap::set_member_addr(store, me, &opts.advertise).await?);
    }
    Ok(map)
}

/// Re-reads the shard map every `every`; newer versions update peer addresses. Every turn
/// reconciles (`reconcile`) with the newest map known.
pub(crate) async fn refresh_map(
    node: std::sync::Weak<NodeInner>,
    store: ObjStore,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(node) = node.upgrade() else { return };
        // Every turn, newer map or not: a pass creates a few learners at most, and a failed
        // creation is retried.
        let current = node.map.load_full();
        reconcile(&node, &current).await;
        match shardmap::load_latest(&store).await {
            Ok(Some(m)) if m.version() > node.map.load().version() => {
                node.transport
                    .set_peers(m.members().iter().map(|x| (x.id, x.addr.as_str())));
                let old = node.map.load_full();
                let moved = (0..m.shards()).map(ShardId).any(|s| {
                    // The same replicas in another rank order did not move.
                    let (a, b) = (m.replicas(s), old.replicas(s));
                    a.len() != b.len() || a.iter().any(|id| !b.contains(id))
                });
                if moved {
                    tracing::info!(
                        version = m.version(),
                        "shard placement changed; reconciling"
                    );
                }
                let m = Arc::new(m);
                node.map.store(Arc::clone(&m));
                reconcile(&node, &m).await;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "shard map refresh failed"),
        }
    }
}
