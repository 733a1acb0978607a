//! `tierkv serve`'s storage: one storage node in this process whose shards have one replica
//! each (N = W = 1, member 1 of a one-member shard map), written through the same replica
//! driver as a cluster's, and [`InProcess`], the gateway's [`Backend`] over it without a
//! network hop: each operation is a [`Request`] handed to [`Node::execute`], as the node's
//! RPC server does with a gateway's.
//!
//! Leadership: a shard's only replica takes over at once when it starts (no restart guard:
//! design note 0002, "One replica"), which takes a few object-store calls and fsyncs. A write
//! or strong read that comes in meanwhile waits for it (at most `leader_wait`, like the
//! cluster client) instead of failing; after that it is `not_leader` (503, safe to retry).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tierkv_engine::clock::{Clock, SystemClock};
use tierkv_engine::options::EngineOptions;
use tierkv_engine::replica::NodeId;
use tierkv_engine::shard::ScanPage;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{Entry, ReadConsistency, SeqNo, ShardId, WriteBatch};
use tierkv_engine::wal::WalSettings;
use tierkv_gateway::admin::{ClusterView, Facts, Gathered, MemberFacts};
use tierkv_gateway::backend::{Backend, BackendError, NotReady};
use tierkv_node::node::{Node, NodeComponents, NodeOptions};
use tierkv_node::settings::ClusterSettings;
use tierkv_node::wire::proto::{RemoteError, Request, Response};
use tierkv_node::wire::shardmap;

/// Pause before trying an operation again that a shard refused while it looked serving.
const RETRY_PAUSE: Duration = Duration::from_millis(5);

/// Why `tierkv serve` cannot open its storage.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The object store belongs to a cluster of several nodes or replicas.
    #[error(
        "the object store holds the shard map of a cluster ({members} members, {replication} replicas per shard); \
         `tierkv serve` runs alone on a store of its own: use `tierkv node`/`tierkv gateway` for this \
         cluster, or give `tierkv serve` another store"
    )]
    ClusterStore {
        /// Members in the map.
        members: usize,
        /// Replicas per shard in the map.
        replication: usize,
    },
    /// The data directory lost its WAL but the store knows this node: the writes it had not
    /// flushed yet are gone with it, and its only replicas would wait forever to rejoin.
    #[error(
        "node 1 has run on this object store before, but {dir} holds no WAL: the writes it had \
         not flushed are lost with the old directory. A shard's only replica cannot rejoin, so \
         nothing is served. If no other `tierkv serve` uses this store, delete {dir}/REJOIN and \
         start again: it then serves what the store holds"
    )]
    LostWal {
        /// The data directory.
        dir: PathBuf,
    },
    /// The shard map could not be read.
    #[error("shard map: {0}")]
    Map(#[from] shardmap::ShardMapError),
    /// The node could not start.
    #[error(transparent)]
    Node(#[from] tierkv_node::node::NodeError),
}

/// What [`open`] needs besides the injected components.
#[derive(Debug, Clone)]
pub struct Options {
    /// The data directory: the node's WAL is `<data_dir>/wal` (where the standalone `serve`
    /// kept its own), its identity `<data_dir>/NODE_ID`.
    pub data_dir: PathBuf,
    /// The address recorded for node 1 in the shard map (nobody connects to it).
    pub addr: String,
    /// Shards of the store.
    pub shards: u32,
    /// Timings of the replicas (lease, heartbeat, tick); membership and quorum are replaced
    /// by one replica of node 1.
    pub cluster: ClusterSettings,
    /// Storage engine settings.
    pub engine: EngineOptions,
    /// WAL settings.
    pub wal: WalSettings,
}

/// Opens the node of `tierkv serve`: refuses a store that holds a cluster's shard map
/// (before anything is written to it), opens node 1 with one replica per shard, and refuses
/// to go on if its replicas have to rejoin after a lost WAL.
pub async fn open(opts: Options, c: NodeComponents) -> Result<Node, OpenError> {
    if let Some(map) = shardmap::load_latest(&c.store).await? {
        let sole =
            map.replication() == 1 && map.members().len() == 1 && map.member(NodeId(1)).is_some();
        if !sole {
            return Err(OpenError::ClusterStore {
                members: map.members().len(),
                replication: map.replication(),
            });
        }
    }
    let node = Node::open(
        NodeOptions {
            cluster: opts.cluster.one_replica(&opts.addr),
            advertise: opts.addr.clone(),
            shards: opts.shards,
            engine: opts.engine,
            wal: opts.wal,
            data_dir: opts.data_dir.clone(),
        },
        c,
    )
    .await?;
    if node.shards().any(|h| h.status().rejoining) {
        node.shutdown(Duration::ZERO).await;
        return Err(OpenError::LostWal { dir: opts.data_dir });
    }
    Ok(node)
}

/// The gateway's [`Backend`] over a node in this process that hosts every shard.
#[derive(Debug, Clone)]
pub struct InProcess {
    node: Node,
    store: ObjStore,
    leader_wait: Duration,
}

impl InProcess {
    /// A backend over `node`; `store` is the one it was opened with (for readiness). Writes and strong reads wait at most `leader_wait` for their
    /// shard's leader.
    #[must_use]
    pub fn new(node: Node, store: ObjStore, leader_wait: Duration) -> Self {
        Self {
            node,
            store,
            leader_wait,
        }
    }

    /// The node.
    #[must_use]
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Executes `req` on the node; a `NotLeader` answer (the shard's replica is still taking
    /// over) waits for the shard to serve and tries again, until `leader_wait` has passed.
    /// Nothing was applied for a `NotLeader`, so a write is safe to send again.
    async fn execute(&self, shard: ShardId, req: Request) -> Result<Response, BackendError> {
        let deadline = tokio::time::Instant::now() + self.leader_wait;
        loop {
            let resp = self.node.execute(req.clone()).await;
            let Response::Error(e) = resp else {
                return Ok(resp);
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let waited = match (&e, self.node.shard(shard)) {
                (RemoteError::NotLeader { .. }, Some(h)) if !left.is_zero() => {
                    // A replica that looked serving as it refused (its view was catching up
                    // with its commit point) gets a moment before the next try.
                    let serving = h.holds_read_lease();
                    let ok = h.wait_serving(left).await;
                    if serving && ok {
                        tokio::time::sleep(RETRY_PAUSE.min(left)).await;
                    }
                    ok
                }
                _ => false,
            };
            if !waited {
                return Err(BackendError::Node {
                    node: self.node.id(),
                    error: e,
                });
            }
        }
    }
}

#[async_trait]
impl ClusterView for InProcess {
    async fn gather(&self, max_events: u32) -> Gathered {
        let map = self.node.map();
        let id = self.node.id();
        let addr = map.member(id).map_or_else(String::new, |m| m.addr.clone());
        Gathered {
            map,
            members: vec![MemberFacts {
                id,
                addr,
                // In this process: it answers as long as the gateway does.
                answering: Some(true),
                last_seen_ms: Some(SystemClock.now_millis()),
                facts: Facts::Described(Box::new(
                    self.node
                        .describe(usize::try_from(max_events).unwrap_or(usize::MAX)),
                )),
            }],
            events: Vec::new(),
        }
    }
}

/// The error for an answer of the wrong kind (a node bug).
fn unexpected(node: &Node, what: &'static str) -> BackendError {
    BackendError::Protocol {
        node: Some(node.id()),
        what,
    }
}

#[async_trait]
impl Backend for InProcess {
    fn shard_count(&self) -> u32 {
        self.node.map().shards()
    }

    async fn get(
        &self,
        shard: ShardId,
        key: Bytes,
        consistency: ReadConsistency,
    ) -> Result<Option<Entry>, BackendError> {
        let req = Request::Get {
            shard,
            key,
            consistency,
        };
        match self.execute(shard, req).await? {
            Response::Got(e) => Ok(e),
            _ => Err(unexpected(
                &self.node,
                "a get was not answered with an entry",
            )),
        }
    }

    async fn write(
        &self,
        shard: ShardId,
        batch: WriteBatch,
    ) -> Result<(SeqNo, Vec<Option<SeqNo>>), BackendError> {
        match self.execute(shard, Request::Write { shard, batch }).await? {
            Response::Written { seq, prior } => Ok((seq, prior)),
            _ => Err(unexpected(
                &self.node,
                "a write was not answered with a version",
            )),
        }
    }

    async fn scan(
        &self,
        shard: ShardId,
        prefix: Bytes,
        start_after: Option<Bytes>,
        limit: usize,
        consistency: ReadConsistency,
    ) -> Result<ScanPage, BackendError> {
        let req = Request::Scan {
            shard,
            prefix,
            start_after,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            consistency,
        };
        match self.execute(shard, req).await? {
            Response::Scanned(page) => Ok(page),
            _ => Err(unexpected(
                &self.node,
                "a scan was not answered with a page",
            )),
        }
    }

    async fn ready(&self) -> Result<(), NotReady> {
        let waiting: Vec<ShardId> = self
            .node
            .shards()
            .filter(|h| !h.holds_read_lease())
            .map(|h| h.shard().id())
            .collect();
        if !waiting.is_empty() {
            return Err(NotReady::NoLeader { shards: waiting });
        }
        if self.node.wal_stats().poisoned {
            return Err(NotReady::WalPoisoned);
        }
        // A cheap call that proves object storage answers.
        self.store
            .list(tierkv_engine::paths::READY_PROBE_PREFIX, None)
            .await
            .map(|_| ())
            .map_err(|e| NotReady::ObjectStore {
                cause: e.to_string(),
            })
    }
}
