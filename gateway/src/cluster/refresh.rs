//! The shard map and the members' status: the wait for a first map at connect, the
//! background task, single-flight map refreshes and status polls (see "Background task" in
//! the module docs).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tierkv_engine::replica::NodeId;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{Epoch, ShardId};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{ConnectError, Shared};
use tierkv_wire::proto::{self, ReplicaRole, Request, Response};
use tierkv_wire::shardmap::{self, ShardMap};

/// Waits for a first shard map, for at most `wait`.
pub(super) async fn wait_for_map(
    store: &ObjStore,
    wait: Duration,
) -> Result<ShardMap, ConnectError> {
    shardmap::wait_for_latest(store, wait)
        .await?
        .ok_or_else(|| ConnectError::NoShardMap {
            store: store.description().to_owned(),
            waited: wait,
        })
}

/// The background task: refresh the map and poll every member, every `map_refresh`.
pub(super) async fn run_background(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(shared.opts.map_refresh);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = shared.refresh_and_poll() => {}
        }
    }
}

impl Shared {
    /// Adopts the newest published map if this client's is still version `seen`
    /// (single-flight: callers that queued behind a refresh see its result). Errors are
    /// logged; the cached map stays in use.
    pub(super) async fn refresh_map(&self, seen: u64) {
        let _one = self.refresh.lock().await;
        let current = self.map();
        if current.version() > seen {
            return;
        }
        match shardmap::load_newer(&self.store, current.version()).await {
            Ok(Some(newer)) if newer.shards() != current.shards() => {
                warn!(
                    version = newer.version(),
                    shards = newer.shards(),
                    ours = current.shards(),
                    "ignoring a shard map with a different shard count"
                );
            }
            Ok(Some(newer)) => {
                debug!(version = newer.version(), "adopted a newer shard map");
                self.stats.map_changes.inc();
                self.stats.map_in_use(&newer);
                self.map.store(Arc::new(newer));
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "shard map refresh failed"),
        }
    }

    /// One round of the background task.
    async fn refresh_and_poll(&self) {
        self.refresh_map(self.map().version()).await;
        self.poll_status().await;
    }

    /// Sends `Status` to every member; records who answered and the leaders they report.
    async fn poll_status(&self) {
        let map = self.map();
        let body = proto::encode_request(&Request::Status);
        let polls = map.members().iter().map(|m| {
            let body = body.clone();
            async move { (m.id, self.send(self.dial(m), body, 1).await) }
        });
        let results = futures::future::join_all(polls).await;
        let mut answered = HashSet::new();
        let mut newest_map = map.version();
        // Per shard: the claim with the highest (epoch, self-reported) wins.
        let mut leaders: HashMap<ShardId, (Epoch, bool, NodeId)> = HashMap::new();
        for (id, result) in results {
            let st = match result {
                Ok(Response::Status(st)) if st.node == id => st,
                Ok(Response::Status(st)) => {
                    warn!(member = %id, answered_as = %st.node, "a member's address answers as another node");
                    continue;
                }
                Ok(other) => {
                    warn!(member = %id, answer = ?other, "unexpected answer to a status poll");
                    continue;
                }
                Err(e) => {
                    debug!(member = %id, failure = ?e, "status poll failed");
                    continue;
                }
            };
            answered.insert(id);
            newest_map = newest_map.max(st.map_version);
            for s in st.shards {
                let claim = match (s.role, s.leader) {
                    (ReplicaRole::Leader, _) => (s.epoch, true, id),
                    (_, Some(l)) => (s.epoch, false, l),
                    (_, None) => continue,
                };
                let best = leaders.entry(s.shard).or_insert(claim);
                if (claim.0, claim.1) > (best.0, best.1) {
                    *best = claim;
                }
            }
        }
        {
            let mut hints = self.hints.lock();
            for (shard, (_, _, node)) in leaders {
                hints.insert(shard, node);
            }
        }
        self.stats
            .members_answering
            .set(i64::try_from(answered.len()).unwrap_or(i64::MAX));
        self.polls
            .observe(map.members().iter().map(|m| m.id), &answered);
        *self.health.lock() = Some(answered);
        if newest_map > map.version() {
            self.refresh_map(map.version()).await;
        }
    }
}
