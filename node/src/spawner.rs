//! What replicas of a node are made of: the replica settings from the cluster settings and
//! the [`Spawner`] that builds a replica and starts its driver ([`crate::node::Node::open`]
//! for the hosted shards, reconciliation for the learners it creates later).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tierkv_engine::block_cache::BlockCache;
use tierkv_engine::clock::Clock;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::replica::{self, Millis, NodeId, Recovered, Replica};
use tierkv_engine::shard::{Shard, ShardComponents};
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::ShardId;
use tierkv_engine::wal::Wal;
use tierkv_engine::write_buffers::WriteBuffers;
use tierkv_wire::shardmap::ShardMap;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::EventLog;
use crate::driver::{self, DriverParts, DriverSettings, NodeClock, ShardHandle};
use crate::options::NodeError;
use crate::settings::ClusterSettings;
use crate::transport::Transport;

pub(crate) fn millis(d: Duration) -> Millis {
    Millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The replica settings of `shard` from the cluster settings.
pub(crate) fn replica_config(
    c: &ClusterSettings,
    shard: ShardId,
    me: NodeId,
    replicas: Vec<NodeId>,
) -> replica::Config {
    let mut cfg = replica::Config::new(shard, me, replicas);
    cfg.quorum = c.write_quorum.min(cfg.replicas.len());
    if cfg.quorum * 2 <= cfg.replicas.len() {
        cfg.quorum = cfg.replicas.len() / 2 + 1;
    }
    cfg.heartbeat_interval = millis(c.heartbeat_interval);
    cfg.lease_duration = millis(c.lease_duration);
    cfg.max_clock_drift = millis(c.max_clock_drift);
    cfg.takeover_timeout = millis(c.lease_duration);
    cfg.handover_after = (!c.handover_after.is_zero()).then(|| millis(c.handover_after));
    cfg.read_lease = millis(c.read_lease);
    cfg.read_lease_quiet = millis(c.read_lease_quiet);
    cfg
}

/// What replicas of this node are made of: [`Node::open`] starts the hosted ones with it,
/// reconciliation the learners it creates later.
#[derive(Debug)]
pub(crate) struct Spawner {
    pub(crate) me: NodeId,
    pub(crate) cluster: ClusterSettings,
    pub(crate) data_dir: PathBuf,
    pub(crate) store: ObjStore,
    pub(crate) cache: Arc<dyn BlockCache>,
    pub(crate) wall: Arc<dyn Clock>,
    pub(crate) wal: Wal,
    pub(crate) buffers: WriteBuffers,
    pub(crate) engine: Arc<EngineOptions>,
    pub(crate) transport: Arc<Transport>,
    pub(crate) clock: NodeClock,
    pub(crate) settings: DriverSettings,
    /// The node's token: drivers run under children of it.
    pub(crate) cancel: CancellationToken,
    pub(crate) events: Arc<EventLog>,
    /// Rejoin floors of a replaced disk (`crate::rejoin`).
    pub(crate) floors: crate::rejoin::Floors,
    pub(crate) genesis: Arc<ShardMap>,
}

impl Spawner {
    pub(crate) fn components(&self) -> ShardComponents {
        ShardComponents {
            store: self.store.clone(),
            cache: Arc::clone(&self.cache),
            clock: Arc::clone(&self.wall),
            wal: self.wal.clone(),
            buffers: self.buffers.clone(),
        }
    }

    /// Builds the replica of `id` from `recovered`, with the genesis placement as its
    /// genesis configuration, and starts its driver.
    pub(crate) fn start(
        &self,
        id: ShardId,
        shard: Shard,
        recovered: Recovered,
    ) -> Result<(ShardHandle, JoinHandle<()>), NodeError> {
        let cfg = replica_config(
            &self.cluster,
            id,
            self.me,
            self.genesis.replicas(id).to_vec(),
        );
        let replica = Replica::new(cfg, recovered, self.clock.now())?;
        Ok(driver::spawn(DriverParts {
            replica,
            shard,
            wal: self.wal.clone(),
            store: self.store.clone(),
            transport: Arc::clone(&self.transport),
            clock: self.clock,
            settings: self.settings.clone(),
            cancel: self.cancel.child_token(),
            events: Arc::clone(&self.events),
        }))
    }
}
