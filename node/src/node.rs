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
//! The hosted shards are the ones of the `HOSTED` file (`crate::hosted`), or without one
//! the ones the *genesis* map (version 1, the map the cluster started from) places on this
//! node; every replica gets the genesis placement as its genesis configuration (design note
//! 0009 §1), whatever newer maps say. A node never starts a replica the newest map places
//! on it from an empty log (before, it did at its next start, without a floor, and released
//! the WAL records of shards it no longer hosted); replicas move by *reconciliation* only:
//!
//! *Reconcile* (at open and after every newer map, `reconcile`): a shard whose target (the
//! newest map's replicas) lists this node and that it does not host gets a learner: its
//! promise floor (the newest claimed epoch) durable in the WAL first, then the `HOSTED`
//! file, then the replica, from the latest manifest (note 0009 §5). Every hosted replica is
//! told the target (`SetTarget`: a serving leader moves its configuration toward it, one
//! change at a time, through the shard's log, note 0009 §2) and the retired ids. A follower
//! whose committed steady configuration does not list it, and that the target leaves out,
//! is released: `HOSTED` without it, its driver stopped, its WAL records released. (Asking
//! the shard's leader, for a removed replica that missed the last `Append` and keeps the
//! joint configuration, is not done yet: note 0009, "Part 2 plan", step 6.)
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
use tierkv_engine::shard::{Shard, ShardComponents};
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
    /// The genesis map (version 1): each shard's genesis configuration.
    genesis: Arc<ShardMap>,
    /// The hosted replicas; replaced as a whole when reconciliation adds one.
    shards: ArcSwap<BTreeMap<ShardId, ShardHandle>>,
    /// What replicas are made of (reconciliation creates them after open).
    spawner: Spawner,
    /// Reconciliation's memory; held for a whole pass (one pass at a time).
    reconciled: tokio::sync::Mutex<Reconciled>,
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
        let listed = crate::hosted::read(&opts.data_dir)?;
        // With a `HOSTED` file, this build decided durably what the node hosts: the WAL
        // records of any other shard belong to a released replica (or to a learner whose
        // creation a crash interrupted) and are released below.
        let authoritative = listed.is_some();
        let hosted: Vec<ShardId> = match listed {
            Some(set) => set.into_iter().filter(|s| s.0 < genesis.shards()).collect(),
            None => (0..genesis.shards())
                .map(ShardId)
                .filter(|s| genesis.replicas(*s).contains(&me))
                .collect(),
        };
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
        // Records of a shard this node does not host: released if the `HOSTED` file says so
        // (a release or a learner creation was interrupted), kept otherwise (a build that
        // moved replicas at start may have left some; only reconciliation decides).
        for s in 0..genesis.shards() {
            let shard = ShardId(s);
            if hosted.contains(&shard) {
                continue;
            }
            if authoritative {
                wal.release(shard, SeqNo(u64::MAX));
            } else if let Some(records) = by_shard.get(&shard) {
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
        let http = rpc_client(&opts.cluster.tls)?;
        let transport = Arc::new(
            Transport::new(me, &opts.cluster.secret, http, cancel.child_token())
                .with_scheme(opts.cluster.tls.scheme()),
        );
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
        let spawner = Spawner {
            me,
            cluster: opts.cluster.clone(),
            data_dir: opts.data_dir.clone(),
            store: c.store.clone(),
            cache: Arc::clone(&c.cache),
            wall: Arc::clone(&c.clock),
            wal: wal.clone(),
            buffers: buffers.clone(),
            engine: Arc::clone(&engine),
            transport: Arc::clone(&transport),
            clock,
            settings: settings.clone(),
            cancel: cancel.clone(),
            events: Arc::clone(&events),
            floors: floors.clone(),
            genesis: Arc::clone(&genesis),
        };
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
            let (handle, task) = spawner.start(id, shard, recovered)?;
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
            shards: ArcSwap::from_pointee(shards),
            spawner,
            reconciled: tokio::sync::Mutex::new(Reconciled::default()),
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
        let newest = inner.map.load_full();
        reconcile(&inner, &newest).await;
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
    pub fn shard(&self, id: ShardId) -> Option<ShardHandle> {
        self.inner.shards.load().get(&id).cloned()
    }

    /// Every hosted shard (the ones hosted when called).
    pub fn shards(&self) -> std::vec::IntoIter<ShardHandle> {
        let hosted = self.inner.shards.load_full();
        hosted.values().cloned().collect::<Vec<_>>().into_iter()
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
    fn counted(&self, shard: ShardId, write: bool) -> Option<ShardHandle> {
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
        registry.register_collector(Box::new(crate::metrics::HostedShardFigures::new(WeakNode(
            Arc::downgrade(&self.inner),
        ))));
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
        let led: Vec<ShardHandle> = self.shards().filter(|h| leading(&h.status())).collect();
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
        for h in self.inner.shards.load().values() {
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
        let hosted = self.inner.shards.load_full();
        let closes = hosted.values().map(|h| h.shard().close(flush_timeout));
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
/// lives as long as its connection), keep-alive pings to notice a silent peer within ~1.5 s;
/// over TLS verified against the cluster CA when `tls` says so (design note 0013).
pub(crate) fn rpc_client(
    tls: &tierkv_tls::ClientTlsSettings,
) -> Result<reqwest::Client, crate::settings::SettingsError> {
    let builder = match tierkv_tls::client_config(tls)? {
        Some(cfg) => reqwest::Client::builder().tls_backend_preconfigured(cfg),
        None => reqwest::Client::builder(),
    };
    Ok(builder
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
        }))
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
async fn wait_until_listed(
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
async fn join_map(opts: &NodeOptions, store: &ObjStore, me: NodeId) -> Result<ShardMap, NodeError> {
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

/// What replicas of this node are made of: [`Node::open`] starts the hosted ones with it,
/// reconciliation the learners it creates later.
#[derive(Debug)]
struct Spawner {
    me: NodeId,
    cluster: ClusterSettings,
    data_dir: PathBuf,
    store: ObjStore,
    cache: Arc<dyn BlockCache>,
    wall: Arc<dyn Clock>,
    wal: Wal,
    buffers: WriteBuffers,
    engine: Arc<EngineOptions>,
    transport: Arc<Transport>,
    clock: NodeClock,
    settings: DriverSettings,
    /// The node's token: drivers run under children of it.
    cancel: CancellationToken,
    events: Arc<EventLog>,
    /// Rejoin floors of a replaced disk (`crate::rejoin`).
    floors: crate::rejoin::Floors,
    genesis: Arc<ShardMap>,
}

impl Spawner {
    fn components(&self) -> ShardComponents {
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
    fn start(
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

/// Reconciliation's memory between passes.
#[derive(Debug, Default)]
struct Reconciled {
    /// The target last given to each hosted replica.
    targets: HashMap<ShardId, Vec<NodeId>>,
    /// Retired ids each hosted replica was told about.
    retired: std::collections::HashSet<(ShardId, NodeId)>,
}

/// Most learners one reconciliation pass creates (the rest wait for the next map refresh):
/// each one loads a manifest and opens segments, and its leader then ships it the log tail.
const MAX_LEARNERS_PER_PASS: usize = 4;

/// Moves this node's replicas toward `map` (design note 0009 §6): creates a learner of every
/// shard the map places here that the node does not host, then gives every hosted replica
/// the map's target and retired ids. Failures are logged; the next pass retries.
async fn reconcile(node: &Arc<NodeInner>, map: &ShardMap) {
    let mut done = node.reconciled.lock().await;
    if node.cancel.is_cancelled() {
        return;
    }
    let me = node.id;
    if map.is_retired(me) {
        tracing::error!(node = %me, "this node's id is retired in the shard map; it creates no replica");
        return;
    }
    let mut created = 0;
    for s in 0..map.shards().min(node.genesis.shards()) {
        let id = ShardId(s);
        if !map.replicas(id).contains(&me) || node.shards.load().contains_key(&id) {
            continue;
        }
        if created == MAX_LEARNERS_PER_PASS {
            break;
        }
        created += 1;
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
        if !target.contains(&me)
            && st.role == Role::Follower
            && !st.voter
            && st.phase == tierkv_engine::replica::ChangePhase::Releasing
        {
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
