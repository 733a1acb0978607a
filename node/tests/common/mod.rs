//! A storage node whose shards have one replica each (N = W = 1, as `tierkv serve` runs it),
//! opened in this process: writes go through the replication driver, as in production.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tierkv_engine::block_cache::MemBlockCache;
use tierkv_engine::clock::Clock;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::ShardId;
use tierkv_engine::wal::{WalFaults, WalSettings};
use tierkv_node::ShardHandle;
use tierkv_node::node::{Node, NodeComponents, NodeOptions};
use tierkv_node::settings::ClusterSettings;

/// What a one-replica node is opened with.
pub struct OneReplica {
    pub shards: u32,
    pub engine: EngineOptions,
    pub wal: WalSettings,
    pub cache_bytes: usize,
    pub faults: Option<Arc<WalFaults>>,
    /// `cluster.read_lease` (off by default, as in a node's settings).
    pub read_lease: Duration,
}

impl Default for OneReplica {
    fn default() -> Self {
        Self {
            shards: 1,
            engine: EngineOptions::default(),
            wal: WalSettings::default(),
            cache_bytes: 1 << 20,
            faults: None,
            read_lease: Duration::ZERO,
        }
    }
}

impl OneReplica {
    /// Opens the node on `dir` (its WAL in `dir/wal`) and waits until every shard serves.
    pub async fn open(&self, dir: &Path, store: &ObjStore, clock: Arc<dyn Clock>) -> Node {
        let base = ClusterSettings {
            tick: Duration::from_millis(10),
            read_lease: self.read_lease,
            ..ClusterSettings::default()
        };
        // Nobody connects to it: the address is only recorded in the shard map.
        let addr = "127.0.0.1:1";
        let node = Node::open_with_faults(
            NodeOptions {
                cluster: base.one_replica(addr),
                advertise: addr.to_owned(),
                shards: self.shards,
                engine: self.engine.clone(),
                wal: self.wal.clone(),
                data_dir: dir.to_path_buf(),
            },
            NodeComponents {
                store: store.clone(),
                cache: Arc::new(MemBlockCache::new(self.cache_bytes)),
                clock,
            },
            self.faults.clone(),
        )
        .await
        .expect("open one-replica node");
        // Learners (replicas reconciliation created, note 0009) do not serve.
        for h in node.shards().filter(|h| h.status().voter) {
            assert!(
                h.wait_serving(Duration::from_secs(10)).await,
                "shard {} does not serve",
                h.shard().id()
            );
        }
        node
    }
}

/// The node's handle of `shard`.
pub fn shard(node: &Node, shard: ShardId) -> ShardHandle {
    node.shard(shard).expect("hosted shard").clone()
}
