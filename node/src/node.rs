//! A storage node: hosts replicas of the shards the shard map places on it.
//!
//! # Lifecycle
//!
//! *Open* ([`Node::open`]): check that the data directory is this node's
//! ([`crate::identity`]), read the shard map (publishing version 1 from
//! `initial_members` if there is none yet, and a new version if this node's address
//! changed), open the node's WAL and replay it once (records, promises, truncations), then for
//! each hosted shard: load its latest manifest, open the shard's storage at it, rebuild the
//! replica from what was durable ([`Recovered`]), and start its driver ([`crate::driver`]).
//!
//! The hosted shards are the ones the *genesis* map (version 1, the map the cluster started
//! from) places on this node, with that placement as each replica's genesis configuration
//! (design note 0009 §1), whatever newer maps say. Moving replicas takes reconciliation
//! (learners with a floor, configuration changes through the shard's log, release once the
//! new configuration is committed: note 0009 §2, §5, §6), which this build does not do yet;
//! until then a newer placement is logged and changes nothing. (Before, a node hosted the
//! newest map's placement at its next start: it started a newly placed replica with an
//! empty log and no floor, and released the WAL records of shards it no longer hosted.)
//! A replica restarts as a follower that refuses promises for one lease (it may have acked a
//! heartbeat just before it died), unless it is its shard's only replica (`tierkv serve`):
//! that one takes over at once (design note 0002, "One replica").
//!
//! *Run*: the RPC server ([`crate::server`]) feeds drivers; a background task re-reads the
//! shard map every `map_refresh` and updates peer addresses.
//!
//! *Shut down*: first hand leadership over ([`Node::hand_over_leadership`]: each shard it
//! leads goes to another replica in milliseconds, instead of failing over after a lease),
//! then ([`Node::shutdown`]) stop the drivers (pending proposals get "outcome unknown"),
//! let leaders flush within the timeout, close the WAL. Anything unflushed stays in the WAL
//! and is replicated anyway.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tierkv_engine::block_cache::BlockCache;
use tierkv_engine::clock::Clock;
use tierkv_engine::metrics::Registry;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::replica::{self, Millis, NodeId, Record, Recovered, Replica, Role};
use tierkv_engine::shard::{Shard, ShardComponents, ShardFigures};
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{ReadConsistency, SeqNo, ShardId};
use tierkv_engine::wal::{TornTail, Wal, WalFaults, WalSettings, WalStats};
use tierkv_engine::write_buffers::WriteBuffers;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{EVENT_CAPACITY, EventFields, EventLog, OpCounters};
use crate::driver::{self, DriverParts, DriverSettings, NodeClock, ShardHandle, StatusSnapshot};
use crate::metrics::ReplicaFigures;
use crate::server::RpcMetrics;
use crate::settings::ClusterSettings;
use crate::transport::Transport;
use tierkv_wire::proto::describe::{
    CacheFacts, EventKind, FollowerFacts, NodeDescription, ShardFacts, WalFacts,
};
use tierkv_wire::proto::{self, NodeStatus, RemoteError, Request, Response};
use tierkv_wire::shardmap::{self, ShardMap};

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

/// A running node; cheap to clone.
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

#[derive(Debug)]
struct NodeInner {
    id: NodeId,
    secret: String,
    map: ArcSwap<ShardMap>,
    /// The genesis map (version 1): the placement this node's replicas have in force.
    genesis: Arc<ShardMap>,
    shards: BTreeMap<ShardId, ShardHandle>,
    wal: Wal,
    /// The node's write buffers (note 0007).
    buffers: WriteBuffers,
    transport: Arc<Transport>,
    cancel: CancellationToken,
    /// Cancelled when the node is asked to stop: incoming replication streams end.
    draining: CancellationToken,
    /// Driver tasks and the map refresher, joined on shutdown.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    rpc: RpcMetrics,
    /// The torn tail cut off the WAL when it was opened, if any.
    torn_tail: Option<TornTail>,
    /// How long a graceful stop waits for handovers: one lease (by then a failover would
    /// have been as quick).
    drain_timeout: Duration,
    /// Recent role changes, handovers and failures (design note 0010).
    events: Arc<EventLog>,
    /// Client operations served per shard.
    ops: OpCounters,
    /// The block cache (its hit counters, for the admin API).
    cache: Arc<dyn BlockCache>,
    /// Wall clock (event times, `Describe`).
    clock: Arc<dyn Clock>,
    /// When the node opened, unix milliseconds.
    started_at_ms: u64,
}

/// A node that a holder does not keep alive (the metrics collector).
#[derive(Debug, Clone)]
pub(crate) struct WeakNode(Weak<NodeInner>);

impl WeakNode {
    /// The node, unless it is gone.
    pub(crate) fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|inner| Node { inner })
    }
}

impl Node {
    /// Opens the node: shard map, WAL recovery, one replica per hosted shard.
    pub async fn open(opts: NodeOptions, c: NodeComponents) -> Result<Self, NodeError> {
        Self::open_with_faults(opts, c, None).await
    }

    /// Like [`Node::open`], with disk failures injected into the WAL (tests).
    #[doc(hidden)]
    pub async fn open_with_faults(
        opts: NodeOptions,
        c: NodeComponents,
        faults: Option<Arc<WalFaults>>,
    ) -> Result<Self, NodeError> {
        opts.cluster.validate()?;
        let me = NodeId(opts.cluster.node_id);
        // Before the shard map and the WAL: a directory of another node must not publish
        // this node's address nor lend it that node's promises, and a replaced disk must not
        // answer as the lost one (`identity`).
        let wal_dir = opts.data_dir.join("wal");
        let floors =
            crate::identity::claim(&opts.data_dir, &wal_dir, me, &c.store, opts.shards).await?;
        let map = join_map(&opts, &c.store, me).await?;
        if map.shards() != opts.shards {
            return Err(NodeError::ShardCount {
                map: map.shards(),
                cluster: opts.shards,
            });
        }
        // The configuration in force of every shard is its genesis placement while nothing
        // issues membership changes (note 0009 §1): host what the genesis map places here.
        let genesis = genesis_map(&c.store, &map).await?;
        if !genesis.same_placement(&map) {
            tracing::warn!(
                node = %me,
                map_version = map.version(),
                "the newest shard map places replicas differently from the genesis map; moving replicas needs reconciliation (design note 0009), which this build does not do: hosting the genesis placement"
            );
        }
        let hosted: Vec<ShardId> = (0..genesis.shards())
            .map(ShardId)
            .filter(|s| genesis.replicas(*s).contains(&me))
            .collect();
        let mut wal_opts = opts.wal.options(wal_dir);
        wal_opts.faults = faults;
        let (wal, recovery) = tokio::task::spawn_blocking(move || Wal::open(wal_opts))
            .await
            .map_err(|_| tierkv_engine::Error::Invariant {
                what: "WAL open task panicked",
            })??;
        let mut by_shard: HashMap<ShardId, Vec<Record>> = HashMap::new();
        for r in recovery.records {
            by_shard
                .entry(r.shard)
                .or_default()
                .push(Record::from_wal(r));
        }
        // Records of a shard this node does not host are kept (a build that moved replicas
        // at start may have left some): only reconciliation may decide to release a replica.
        for (shard, records) in &by_shard {
            if !hosted.contains(shard) {
                tracing::warn!(
                    node = %me,
                    %shard,
                    records = records.len(),
                    "the WAL holds records of a shard this node does not host; keeping them"
                );
            }
        }
        let cancel = CancellationToken::new();
        // One memory budget for every hosted shard's memtables (note 0007).
        let buffers = WriteBuffers::new(&opts.engine, &opts.wal);
        let http = rpc_client();
        let transport = Arc::new(Transport::new(
            me,
            &opts.cluster.secret,
            http,
            cancel.child_token(),
        ));
        transport.set_peers(map.members().iter().map(|m| (m.id, m.addr.as_str())));
        let clock = NodeClock::new();
        let events = Arc::new(EventLog::new(me, Arc::clone(&c.clock)));
        let engine = Arc::new(opts.engine.clone());
        let settings = DriverSettings {
            tick: opts.cluster.tick,
            manifest_refresh: opts.cluster.manifest_refresh,
            inbox: 4096,
        };
        let opened = futures::future::try_join_all(hosted.iter().map(|&id| {
            let comps = ShardComponents {
                store: c.store.clone(),
                cache: Arc::clone(&c.cache),
                clock: Arc::clone(&c.clock),
                wal: wal.clone(),
                buffers: buffers.clone(),
            };
            let engine = Arc::clone(&engine);
            async move {
                let m = driver::latest_manifest(&comps.store, id).await?;
                let flushed = (m.flushed_seq, m.flushed_epoch, m.membership.clone());
                let shard = Shard::open_replicated(id, engine, comps, m).await?;
                Ok::<_, tierkv_engine::Error>((id, shard, flushed))
            }
        }))
        .await?;
        let mut shards = BTreeMap::new();
        let mut tasks = Vec::new();
        for (id, shard, (flushed_seq, flushed_epoch, flushed_membership)) in opened {
            let recovered = Recovered {
                promised_epoch: recovery.promises.get(&id).copied().unwrap_or_default(),
                flushed_seq,
                flushed_epoch,
                records: by_shard.remove(&id).unwrap_or_default(),
                amnesia_floor: floors.get(&id).copied(),
                flushed_membership,
            };
            let cfg = replica_config(&opts.cluster, id, me, genesis.replicas(id).to_vec());
            let replica = Replica::new(cfg, recovered, clock.now())?;
            let (handle, task) = driver::spawn(DriverParts {
                replica,
                shard,
                wal: wal.clone(),
                store: c.store.clone(),
                transport: Arc::clone(&transport),
                clock,
                settings: settings.clone(),
                cancel: cancel.child_token(),
                events: Arc::clone(&events),
            });
            shards.insert(id, handle);
            tasks.push(task);
        }
        tasks.push(buffers.start(Some(wal.clone()), cancel.child_token()));
        tracing::info!(
            node = %me,
            shards = shards.len(),
            map_version = map.version(),
            torn_tail = recovery.torn_tail.is_some(),
            write_buffer_bytes = buffers.budget(),
            max_unflushed_bytes = buffers.limit(),
            memtable_bytes = buffers.memtable_bytes(),
            "node open"
        );
        events.record(
            EventKind::NodeStarted,
            EventFields {
                map_version: Some(map.version()),
                ..EventFields::default()
            },
        );
        let ops = OpCounters::new(map.shards());
        let inner = Arc::new(NodeInner {
            id: me,
            secret: opts.cluster.secret.clone(),
            map: ArcSwap::from_pointee(map),
            genesis,
            shards,
            wal,
            buffers,
            transport,
            cancel,
            draining: CancellationToken::new(),
            tasks: Mutex::new(tasks),
            rpc: RpcMetrics::default(),
            torn_tail: recovery.torn_tail,
            drain_timeout: opts.cluster.lease_duration,
            events,
            ops,
            cache: c.cache,
            started_at_ms: c.clock.now_millis(),
            clock: c.clock,
        });
        let refresher = tokio::spawn(refresh_map(
            Arc::downgrade(&inner),
            c.store.clone(),
            opts.cluster.map_refresh,
            inner.cancel.child_token(),
        ));
        inner.tasks.lock().push(refresher);
        Ok(Self { inner })
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The shard map this node last read.
    #[must_use]
    pub fn map(&self) -> Arc<ShardMap> {
        self.inner.map.load_full()
    }

    /// The cluster secret RPC callers must present.
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.inner.secret
    }

    /// A hosted shard.
    #[must_use]
    pub fn shard(&self, id: ShardId) -> Option<&ShardHandle> {
        self.inner.shards.get(&id)
    }

    /// Every hosted shard.
    pub fn shards(&self) -> impl Iterator<Item = &ShardHandle> {
        self.inner.shards.values()
    }

    /// WAL counters.
    #[must_use]
    pub fn wal_stats(&self) -> WalStats {
        self.inner.wal.stats()
    }

    /// The node's write buffers: the memory of every hosted shard's memtables against its
    /// budget and limit (note 0007).
    #[must_use]
    pub fn write_buffers(&self) -> &WriteBuffers {
        &self.inner.buffers
    }

    /// The torn tail cut off the WAL when the node opened it, if any.
    #[must_use]
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.inner.torn_tail.as_ref()
    }

    /// Client RPC counters.
    pub(crate) fn rpc_metrics(&self) -> &RpcMetrics {
        &self.inner.rpc
    }

    /// Carries out one client operation on the shard it names and answers it: what the RPC
    /// server does with each operation of a gateway's batch, and what `tierkv serve` does
    /// in process. A shard this node does not host is `NotHosted`; engine errors travel as
    /// [`RemoteError`]s. `GetIfChanged` is a strong `Get` that answers `Unchanged` instead of
    /// the entry when its version is the caller's.
    pub async fn execute(&self, req: Request) -> Response {
        let err = |e: tierkv_engine::Error| Response::Error(RemoteError::from_engine(&e));
        let not_hosted = |shard| {
            Response::Error(RemoteError::NotHosted {
                shard,
                map_version: self.map().version(),
            })
        };
        match req {
            Request::Get {
                shard,
                key,
                consistency,
            } => match self.counted(shard, false) {
                None => not_hosted(shard),
                Some(h) => h
                    .get(&key, consistency)
                    .await
                    .map_or_else(err, Response::Got),
            },
            Request::Write { shard, batch } => match self.counted(shard, true) {
                None => not_hosted(shard),
                Some(h) => h
                    .write(batch)
                    .await
                    .map_or_else(err, |(seq, prior)| Response::Written { seq, prior }),
            },
            Request::Scan {
                shard,
                prefix,
                start_after,
                limit,
                consistency,
            } => match self.counted(shard, false) {
                None => not_hosted(shard),
                Some(h) => h
                    .scan(
                        &prefix,
                        start_after.as_deref(),
                        usize::try_from(limit).unwrap_or(usize::MAX),
                        consistency,
                    )
                    .await
                    .map_or_else(err, Response::Scanned),
            },
            Request::Status => Response::Status(self.status()),
            Request::GetIfChanged { shard, key, known } => match self.counted(shard, false) {
                None => not_hosted(shard),
                // Served exactly like a strong `Get` (the lease is checked before the read);
                // only the answer differs when the caller's version is still the live one
                // (design note 0008).
                Some(h) => match h.get(&key, ReadConsistency::Strong).await {
                    Ok(Some(e)) if e.seq == known => Response::Unchanged,
                    Ok(entry) => Response::Got(entry),
                    Err(e) => err(e),
                },
            },
            Request::Describe { max_events } => Response::Described(Box::new(
                self.describe(usize::try_from(max_events).unwrap_or(usize::MAX)),
            )),
        }
    }

    /// The hosted shard `shard`, counting the operation on it for the admin API's load.
    fn counted(&self, shard: ShardId, write: bool) -> Option<&ShardHandle> {
        if write {
            self.inner.ops.write(shard);
        } else {
            self.inner.ops.read(shard);
        }
        self.shard(shard)
    }

    /// This node's description of itself for the admin API, as the `Describe` operation
    /// answers it (design note 0010), with its newest `max_events` events (at most
    /// [`EVENT_CAPACITY`]). Reads only published state: no driver is asked anything.
    #[must_use]
    pub fn describe(&self, max_events: usize) -> NodeDescription {
        let wal = self.wal_stats();
        let cache = self.inner.cache.stats();
        let shards = self
            .shards()
            .map(|h| {
                let s = h.status();
                let st = h.shard().stats();
                let (reads, writes) = self.inner.ops.of(h.id);
                ShardFacts {
                    shard: h.id.0,
                    role: crate::server::role_name(s.role).to_owned(),
                    epoch: s.epoch.0,
                    leader: s.leader.map(|n| n.0),
                    commit_seq: s.commit_seq.0,
                    applied_seq: st.applied_seq.0,
                    last_seq: s.last_seq.0,
                    flushed_seq: s.flushed_seq.0,
                    records_behind: s.records_behind,
                    rejoining: s.rejoining,
                    poisoned: s.poisoned,
                    memtable_bytes: st.memtable_bytes,
                    unflushed_bytes: st.unflushed_bytes,
                    frozen_memtables: st.frozen_memtables,
                    l0_segments: st.l0_segments,
                    l1_segments: st.l1_segments,
                    segment_bytes: st.segment_bytes,
                    reads,
                    writes,
                    followers: h
                        .follower_progress()
                        .into_iter()
                        .map(|(node, seq)| FollowerFacts {
                            node: node.0,
                            match_seq: seq.0,
                        })
                        .collect(),
                }
            })
            .collect();
        NodeDescription {
            node: self.id().0,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at_ms: self.inner.started_at_ms,
            now_ms: self.inner.clock.now_millis(),
            map_version: self.map().version(),
            wal: WalFacts {
                bytes: wal.bytes,
                files: wal.files,
                poisoned: wal.poisoned,
            },
            block_cache: CacheFacts {
                hits: cache.hits,
                misses: cache.misses,
            },
            shards,
            events: self.inner.events.newest(max_events.min(EVENT_CAPACITY)),
        }
    }

    /// This node's view of itself and its shards, as the `Status` operation answers it.
    #[must_use]
    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            node: self.id(),
            map_version: self.map().version(),
            shards: self
                .shards()
                .map(|h| {
                    let s = h.status();
                    proto::ShardStatus {
                        shard: h.shard().id(),
                        role: s.role.into(),
                        epoch: s.epoch,
                        leader: s.leader,
                        commit_seq: s.commit_seq,
                        last_seq: s.last_seq,
                        flushed_seq: s.flushed_seq,
                    }
                })
                .collect(),
        }
    }

    /// Registers the node's figures into `registry`: its replicas (by role, read leases,
    /// leaderships and handovers, records not yet committed or applied, poisoned and
    /// rejoining replicas), the client RPCs it served, its replication transport, its WAL
    /// and its shards. The object store and the block cache it was given register their own
    /// (`register_metrics` on each): whoever built them knows whether they are shared.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(ReplicaFigures::new(WeakNode(Arc::downgrade(
            &self.inner,
        )))));
        self.inner.rpc.register(registry);
        self.inner.transport.register_metrics(registry);
        self.inner.wal.register_metrics(registry);
        self.inner.buffers.register_metrics(registry);
        registry.register_collector(Box::new(ShardFigures::new(
            self.shards().map(ShardHandle::shard),
        )));
    }

    /// Replication transport counters.
    #[must_use]
    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// Hands every shard this node leads to another replica (design note 0006) and makes
    /// its replicas start no takeover, then waits until every one of them has a successor
    /// that serves, or `within` has passed (a shard not handed over by then fails over after
    /// the lease, as if the node had died). The first step of a graceful stop: clients see a
    /// pause of milliseconds per shard instead of a lease, and the node leaves only once its
    /// successors no longer need it (a rolling restart may stop the next node at once).
    /// Returns how many shards it led that have no serving successor yet.
    pub async fn hand_over_leadership(&self, within: Duration) -> usize {
        let started = tokio::time::Instant::now();
        let led: Vec<&ShardHandle> = self.shards().filter(|h| leading(&h.status())).collect();
        futures::future::join_all(led.iter().map(|h| h.drain())).await;
        // Per shard, the end of its log when it stopped leading. The successor commits a
        // barrier past it in its new epoch before it serves; once the commit point this
        // replica hears is past that end, the successor serves.
        let mut ends: HashMap<ShardId, SeqNo> = HashMap::new();
        let mut left = led.len();
        while started.elapsed() < within {
            left = led
                .iter()
                .filter(|h| {
                    let st = h.status();
                    if leading(&st) {
                        return true;
                    }
                    st.commit_seq <= *ends.entry(h.id).or_insert(st.last_seq)
                })
                .count();
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!(
            led = led.len(),
            without_successor = left,
            took_ms = started.elapsed().as_millis() as u64,
            "handed leadership over before stopping"
        );
        left
    }

    /// How long [`Node::hand_over_leadership`] waits when the node stops.
    #[must_use]
    pub fn drain_timeout(&self) -> Duration {
        self.inner.drain_timeout
    }

    /// Ends the replication streams peers keep open to this node (they reconnect, and find
    /// it gone), so that a graceful HTTP shutdown does not wait for them; the first step of
    /// stopping.
    pub fn stop_streams(&self) {
        self.inner.draining.cancel();
    }

    /// Resolves once [`Node::stop_streams`] was called.
    pub(crate) async fn streams_stopped(&self) {
        self.inner.draining.cancelled().await;
    }

    /// Stops at once, as a crash would leave it: the drivers stop (pending proposals get
    /// "outcome unknown"), nothing is flushed, the WAL closes with what it acknowledged.
    /// For tests of recovery; a process that dies needs none of it.
    #[doc(hidden)]
    pub async fn abandon(&self) {
        self.inner.cancel.cancel();
        let tasks: Vec<_> = std::mem::take(&mut *self.inner.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        for h in self.inner.shards.values() {
            h.shard().abandon();
        }
        self.close_wal().await;
    }

    /// Stops the drivers, flushes what leaders can within `flush_timeout`, closes the WAL.
    pub async fn shutdown(&self, flush_timeout: Duration) {
        self.inner.cancel.cancel();
        let tasks: Vec<_> = std::mem::take(&mut *self.inner.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        let closes = self
            .inner
            .shards
            .values()
            .map(|h| h.shard().close(flush_timeout));
        for r in futures::future::join_all(closes).await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "closing a shard");
            }
        }
        self.close_wal().await;
    }

    async fn close_wal(&self) {
        let wal = self.inner.wal.clone();
        match tokio::task::spawn_blocking(move || wal.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "closing the WAL"),
            Err(_) => tracing::warn!("WAL close task panicked"),
        }
    }
}

/// Whether a replica leads its shard or is on the way to (a drained node waits for none).
fn leading(st: &StatusSnapshot) -> bool {
    matches!(st.role, Role::Leader | Role::Recovering | Role::Candidate)
}

/// The HTTP/2 client of node-to-node replication streams: no overall timeout (a stream
/// lives as long as its connection), keep-alive pings to notice a silent peer within ~1.5 s.
pub(crate) fn rpc_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .connect_timeout(Duration::from_millis(500))
        .http2_keep_alive_interval(Duration::from_millis(500))
        .http2_keep_alive_timeout(Duration::from_secs(1))
        .http2_keep_alive_while_idle(true)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "building the RPC client failed; using defaults");
            reqwest::Client::new()
        })
}

fn millis(d: Duration) -> Millis {
    Millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The replica settings of `shard` from the cluster settings.
fn replica_config(
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
    cfg
}

/// The genesis map (version 1) of the cluster whose newest map is `latest`.
async fn genesis_map(store: &ObjStore, latest: &ShardMap) -> Result<Arc<ShardMap>, NodeError> {
    if latest.version() == 1 {
        return Ok(Arc::new(latest.clone()));
    }
    let genesis = shardmap::load_version(store, 1)
        .await?
        .ok_or_else(|| shardmap::ShardMapError::Vanished {
            key: tierkv_engine::paths::shardmap(1),
        })?;
    if genesis.shards() != latest.shards() {
        return Err(NodeError::ShardCount {
            map: genesis.shards(),
            cluster: latest.shards(),
        });
    }
    Ok(Arc::new(genesis))
}

/// Reads the shard map (bootstrapping it from `initial_members` if allowed) and makes sure
/// it records this node's address.
async fn join_map(opts: &NodeOptions, store: &ObjStore, me: NodeId) -> Result<ShardMap, NodeError> {
    let members = opts.cluster.members()?;
    let map = if members.is_empty() {
        let wait = Duration::from_secs(60);
        shardmap::wait_for_latest(store, wait)
            .await?
            .ok_or(NodeError::NoMap { waited: wait })?
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
    if member.addr != opts.advertise {
        tracing::info!(node = %me, old = %member.addr, new = %opts.advertise, "recording this node's new address in the shard map");
        return Ok(shardmap::set_member_addr(store, me, &opts.advertise).await?);
    }
    Ok(map)
}

/// Re-reads the shard map every `every`; newer versions update peer addresses. A placement
/// that differs from the genesis one is logged and changes nothing: moving replicas needs
/// reconciliation (design note 0009, "Part 2 plan"), not done yet.
async fn refresh_map(
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
        match shardmap::load_latest(&store).await {
            Ok(Some(m)) if m.version() > node.map.load().version() => {
                node.transport
                    .set_peers(m.members().iter().map(|x| (x.id, x.addr.as_str())));
                let old = node.map.load();
                let moved = |from: &ShardMap| {
                    (0..m.shards()).map(ShardId).any(|s| {
                        // The same replicas in another rank order did not move.
                        let (a, b) = (m.replicas(s), from.replicas(s));
                        a.len() != b.len() || a.iter().any(|id| !b.contains(id))
                    })
                };
                if moved(&old) && moved(&node.genesis) {
                    tracing::warn!(
                        version = m.version(),
                        "shard placement changed; moving replicas needs reconciliation (design note 0009), which this build does not do: keeping the current replicas"
                    );
                }
                node.map.store(Arc::new(m));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "shard map refresh failed"),
        }
    }
}
