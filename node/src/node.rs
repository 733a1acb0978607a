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
//! *Reconcile* (at open and after every newer map, `crate::reconcile`): a shard whose target (the
//! newest map's replicas) lists this node and that it does not host gets a learner: its
//! promise floor (the newest claimed epoch) durable in the WAL first, then the `HOSTED`
//! file, then the replica, from the latest manifest (note 0009 §5). Every hosted replica is
//! told the target (`SetTarget`: a serving leader moves its configuration toward it, one
//! change at a time, through the shard's log, note 0009 §2) and the retired ids. A follower
//! whose committed steady configuration does not list it, and that the target leaves out,
//! is released: `HOSTED` without it, its driver stopped, its WAL records released; so is one
//! whose shard's serving leader reports a committed steady configuration without it (a
//! removed replica that missed the last `Append` keeps the joint configuration in force).
//! A replica restarts as a follower that refuses promises for one lease (it may have acked a
//! heartbeat just before it died), unless it is its shard's only replica (`tierkv serve`):
//! that one takes over at once (design note 0002, "One replica").
//!
//! *Run*: the RPC server ([`crate::server`]) feeds drivers; a background task (`crate::map`)
//! re-reads the shard map every `map_refresh`, updates peer addresses and reconciles.
//!
//! *Shut down*: first hand leadership over ([`Node::hand_over_leadership`]: each shard it
//! leads goes to another replica in milliseconds, instead of failing over after a lease),
//! then ([`Node::shutdown`]) stop the drivers (pending proposals get "outcome unknown"),
//! let leaders flush within the timeout, close the WAL. Anything unflushed stays in the WAL
//! and is replicated anyway.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tierkv_engine::block_cache::BlockCache;
use tierkv_engine::clock::Clock;
use tierkv_engine::metrics::Registry;
use tierkv_engine::replica::{NodeId, Record, Recovered, Role};
use tierkv_engine::shard::{Shard, ShardComponents};
use tierkv_engine::types::{SeqNo, ShardId};
use tierkv_engine::wal::{TornTail, Wal, WalFaults, WalStats};
use tierkv_engine::write_buffers::WriteBuffers;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{EventFields, EventLog, OpCounters};
use crate::driver::{self, DriverSettings, NodeClock, ShardHandle, StatusSnapshot};
use crate::metrics::ReplicaFigures;
use crate::server::RpcMetrics;
use crate::transport::Transport;
use tierkv_wire::proto::describe::EventKind;
use tierkv_wire::shardmap::ShardMap;

use crate::map::{genesis_map, join_map, refresh_map};
pub use crate::options::{NodeComponents, NodeError, NodeOptions};
use crate::reconcile::{Reconciled, reconcile};
use crate::spawner::Spawner;

/// A running node; cheap to clone.
#[derive(Debug, Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

#[derive(Debug)]
pub(crate) struct NodeInner {
    pub(crate) id: NodeId,
    pub(crate) secret: String,
    pub(crate) map: ArcSwap<ShardMap>,
    /// The genesis map (version 1): each shard's genesis configuration.
    pub(crate) genesis: Arc<ShardMap>,
    /// The hosted replicas; replaced as a whole when reconciliation adds one.
    pub(crate) shards: ArcSwap<BTreeMap<ShardId, ShardHandle>>,
    /// What replicas are made of (reconciliation creates them after open).
    pub(crate) spawner: Spawner,
    /// Reconciliation's memory; held for a whole pass (one pass at a time).
    pub(crate) reconciled: tokio::sync::Mutex<Reconciled>,
    /// HTTP/2 client for asking other nodes (reconciliation asks a shard's leader).
    pub(crate) http: reqwest::Client,
    /// The reloads of `http`'s `cluster.tls` (`None`: plain HTTP).
    pub(crate) tls: Option<Arc<tierkv_tls::TlsFigures>>,
    pub(crate) wal: Wal,
    /// The node's write buffers (note 0007).
    pub(crate) buffers: WriteBuffers,
    pub(crate) transport: Arc<Transport>,
    pub(crate) cancel: CancellationToken,
    /// Cancelled when the node is asked to stop: incoming replication streams end.
    pub(crate) draining: CancellationToken,
    /// Driver tasks and the map refresher, joined on shutdown.
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) rpc: RpcMetrics,
    /// The torn tail cut off the WAL when it was opened, if any.
    pub(crate) torn_tail: Option<TornTail>,
    /// How long a graceful stop waits for handovers: one lease (by then a failover would
    /// have been as quick).
    pub(crate) drain_timeout: Duration,
    /// Recent role changes, handovers and failures (design note 0010).
    pub(crate) events: Arc<EventLog>,
    /// Client operations served per shard.
    pub(crate) ops: OpCounters,
    /// The block cache (its hit counters, for the admin API).
    pub(crate) cache: Arc<dyn BlockCache>,
    /// Wall clock (event times, `Describe`).
    pub(crate) clock: Arc<dyn Clock>,
    /// When the node opened, unix milliseconds.
    pub(crate) started_at_ms: u64,
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
        let (http, tls) = crate::transport::rpc_client(&opts.cluster)?;
        let transport = Arc::new(
            Transport::new(me, &opts.cluster.secret, http.clone(), cancel.child_token())
                .with_scheme(opts.cluster.tls.scheme()),
        );
        transport.set_address_overrides(opts.cluster.peer_addresses()?);
        transport.set_peers(map.members().iter().map(|m| (m.id, m.addr.as_str())));
        let clock = NodeClock::new();
        let events = Arc::new(EventLog::new(me, Arc::clone(&c.clock)));
        let engine = Arc::new(opts.engine.clone());
        let settings = DriverSettings {
            tick: opts.cluster.tick,
            manifest_refresh: opts.cluster.manifest_refresh,
            inbox: 4096,
            move_bytes_per_sec: opts.cluster.move_bytes_per_sec,
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
            http,
            tls,
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

    /// The reloads of the node's `cluster.tls` configuration (its RPC client to other nodes)
    /// and its client certificate's expiry; `None` over plain HTTP. The process exports them
    /// with its listener's.
    #[must_use]
    pub fn tls_figures(&self) -> Option<Arc<tierkv_tls::TlsFigures>> {
        self.inner.tls.clone()
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
