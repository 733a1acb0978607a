//! Membership changes of a test cluster (design note 0009): publish the next shard map
//! with `tierkv_wire::shardmap::change_members` on the cluster's object store, start the
//! nodes that join, and watch the moves through each node's `/status`.
//!
//! (Operators use `tierkv admin add|drain|remove|replace` and the gateway's admin API,
//! which publish the same map changes; the tests call the function underneath so that
//! they depend on the protocol and the nodes only.)

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tierkv_engine::replica::NodeId;
use tierkv_engine::types::ShardId;
use tierkv_node::wire::shardmap::{self, ShardMap};

use super::{Cluster, ShardState};

/// One shard's move as the nodes report it.
#[derive(Debug, Clone)]
pub struct Move {
    pub shard: u32,
    /// Its serving leader (highest epoch) and that leader's phase.
    pub leader: Option<(u32, String)>,
    /// Nodes the newest map places it on that do not host it as a voter yet.
    pub joining: Vec<u32>,
    /// Nodes that host it although the newest map does not place it on them.
    pub leaving: Vec<u32>,
}

impl Move {
    /// Whether the shard reached its target: every target node hosts it as a voter,
    /// nobody else hosts it, and its leader is in phase `done`.
    pub fn settled(&self) -> bool {
        self.joining.is_empty()
            && self.leaving.is_empty()
            && self.leader.as_ref().is_some_and(|(_, p)| p == "done")
    }
}

impl Cluster {
    /// The newest shard map in the object store.
    pub async fn latest_map(&self) -> ShardMap {
        shardmap::load_latest(&self.store())
            .await
            .expect("read the shard map")
            .expect("a shard map")
    }

    /// Publishes the next map version with `change` applied (what `tierkv admin` does).
    pub async fn change_map(
        &self,
        change: impl Fn(&ShardMap) -> Result<ShardMap, shardmap::ShardMapError>,
    ) -> ShardMap {
        shardmap::change_members(&self.store(), change)
            .await
            .expect("publish the membership change")
    }

    /// Adds node `id` to the map and starts it (it creates learners of its shards).
    pub async fn join(&mut self, id: u32) -> ShardMap {
        let addr = self.node_addr(id);
        let map = self.change_map(|m| m.add_member(NodeId(id), &addr)).await;
        self.spawn_node(id);
        map
    }

    /// Drains node `id` (its replicas move to the active members).
    pub async fn drain(&self, id: u32) -> ShardMap {
        self.change_map(|m| m.drain_member(NodeId(id))).await
    }

    /// Removes drained node `id` from the map.
    pub async fn remove(&self, id: u32) -> ShardMap {
        self.change_map(|m| m.remove_member(NodeId(id))).await
    }

    /// Replaces `old` (lost for good) with `new` and starts `new`.
    pub async fn replace(&mut self, old: u32, new: u32) -> ShardMap {
        let addr = self.node_addr(new);
        let map = self
            .change_map(|m| m.replace_member(NodeId(old), NodeId(new), &addr))
            .await;
        self.spawn_node(new);
        map
    }

    /// Every shard's move against `map`, from the running nodes' `/status`.
    pub async fn moves(&self, map: &ShardMap) -> Vec<Move> {
        let mut views: BTreeMap<u32, BTreeMap<u32, ShardState>> = BTreeMap::new();
        for id in self.running() {
            if let Some(st) = self.status(id).await {
                views.insert(id, st);
            }
        }
        (0..map.shards())
            .map(|shard| {
                let target: BTreeSet<u32> =
                    map.replicas(ShardId(shard)).iter().map(|n| n.0).collect();
                let mut leader: Option<(u32, u64, String)> = None;
                let mut joining = Vec::new();
                let mut leaving = Vec::new();
                for &t in &target {
                    let voter = views
                        .get(&t)
                        .and_then(|v| v.get(&shard))
                        .is_some_and(|s| s.voter);
                    if !voter {
                        joining.push(t);
                    }
                }
                for (&id, view) in &views {
                    let Some(s) = view.get(&shard) else { continue };
                    if !target.contains(&id) {
                        leaving.push(id);
                    }
                    if s.role == "leader" && leader.as_ref().is_none_or(|(_, e, _)| s.epoch > *e) {
                        leader = Some((id, s.epoch, s.phase.clone()));
                    }
                }
                Move {
                    shard,
                    leader: leader.map(|(id, _, p)| (id, p)),
                    joining,
                    leaving,
                }
            })
            .collect()
    }

    /// Polls until every shard reached its place in the newest map (see
    /// [`Move::settled`]); panics with the moves still open after `within`.
    pub async fn wait_settled(&self, within: Duration) -> ShardMap {
        let deadline = Instant::now() + within;
        loop {
            let map = self.latest_map().await;
            let moves = self.moves(&map).await;
            if moves.iter().all(Move::settled) {
                return map;
            }
            assert!(
                Instant::now() < deadline,
                "map version {} not reached within {within:?}: {:?}",
                map.version(),
                moves.iter().filter(|m| !m.settled()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until some shard's leader reports one of `phases` (against the newest map) and
    /// its move is `wanted`; that shard's move. None if no shard did within `within` (the moves went too fast or
    /// are over).
    pub async fn wait_phase(
        &self,
        phases: &[&str],
        within: Duration,
        wanted: impl Fn(&Move) -> bool,
    ) -> Option<Move> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let map = self.latest_map().await;
            let moves = self.moves(&map).await;
            if let Some(m) = moves.into_iter().find(|m| {
                m.leader
                    .as_ref()
                    .is_some_and(|(_, p)| phases.contains(&p.as_str()))
                    && wanted(m)
            }) {
                return Some(m);
            }
            if self.moves(&map).await.iter().all(Move::settled) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }
}
