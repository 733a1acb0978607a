//! What a storage node is built from ([`NodeOptions`], [`NodeComponents`]) and why it may not
//! start ([`NodeError`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tierkv_engine::block_cache::BlockCache;
use tierkv_engine::clock::Clock;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::replica::NodeId;
use tierkv_engine::store::ObjStore;
use tierkv_engine::wal::WalSettings;
use tierkv_wire::shardmap;

use crate::settings::ClusterSettings;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage failed.
    #[error(transparent)]
    Engine(#[from] tierkv_engine::Error),
    /// The shard map could not be read or written.
    #[error("shard map: {0}")]
    Map(#[from] shardmap::ShardMapError),
    /// Settings are unusable.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// No shard map exists and this node was given no initial members.
    #[error(
        "no shard map in object storage after {waited:?}; start the first node with cluster.initial_members"
    )]
    NoMap {
        /// How long it waited.
        waited: Duration,
    },
    /// This node is not a member of the shard map.
    #[error("node {id} is not a member of shard map version {version}")]
    NotAMember {
        /// This node's id.
        id: NodeId,
        /// The map's version.
        version: u64,
    },
    /// The shard map retired this node's id (it was replaced): it must never serve again.
    #[error("node {id} is retired in shard map version {version}; start the node under a new id")]
    Retired {
        /// This node's id.
        id: NodeId,
        /// The map's version.
        version: u64,
    },
    /// The data directory belongs to another node, or its identity file is unusable.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The map's shard count differs from the cluster's.
    #[error("shard map has {map} shards but the cluster has {cluster}")]
    ShardCount {
        /// In the map.
        map: u32,
        /// In the cluster metadata.
        cluster: u32,
    },
}

/// What a node is built from.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Cluster settings (id, members, quorum, timings, secret).
    pub cluster: ClusterSettings,
    /// The address recorded in the shard map (`cluster.advertise` or the bound address).
    pub advertise: String,
    /// Number of shards of the cluster.
    pub shards: u32,
    /// Storage engine settings.
    pub engine: EngineOptions,
    /// WAL settings.
    pub wal: WalSettings,
    /// The node's WAL lives in `<data_dir>/wal`.
    pub data_dir: PathBuf,
}

/// Injected components.
#[derive(Debug, Clone)]
pub struct NodeComponents {
    /// Object storage shared by the cluster.
    pub store: ObjStore,
    /// This node's block cache.
    pub cache: Arc<dyn BlockCache>,
    /// Wall clock (TTL).
    pub clock: Arc<dyn Clock>,
}
