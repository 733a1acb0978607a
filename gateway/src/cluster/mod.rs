//! [`ClusterBackend`]: the gateway's [`Backend`] over node RPC.
//!
//! # Wire contract
//!
//! `POST http://{member.addr}/rpc/v1/kv/batch` ([`RPC_PATH`]) over HTTP/2 cleartext with
//! prior knowledge (or `https://` over TLS with ALPN `h2`, verified against the cluster CA,
//! when [`ClientOptions::tls`] has a CA: design note 0013), headers `authorization: Bearer <cluster secret>` and
//! `content-type: application/octet-stream`, body a batch of [`proto::encode_request`]s
//! ([`proto::batch`]: every operation queued for the node at that moment). A node answers
//! 200 with the [`proto::encode_response`] of each operation streamed in completion order
//! (errors of an operation travel inside it as [`Response::Error`]), or 401 if the secret is
//! wrong. One `reqwest::Client` (one pooled HTTP/2 connection per node, with keep-alive
//! pings) serves every request. A failure of the batch's HTTP request is the failure of
//! each operation in it that had no answer yet.
//!
//! # Routing
//!
//! Writes, strong reads and revalidations (`GetIfChanged`, sent only to nodes that announced
//! wire revision 2, else a strong `Get`: design note 0008) go to the shard's leader: the cached leader hint first, then the
//! replicas in rank order. `NotLeader { leader: Some(l) }` caches `l` and goes there next;
//! `NotLeader { leader: None }`, a failed connect and `NotHosted` (after refreshing the map
//! if the node's is newer) move on to the next replica. After a full pass the request backs
//! off (10 ms doubling to 200 ms) and tries again, until [`ClientOptions::leader_wait`] has
//! passed: then it fails with [`Error::NotLeader`]. Eventual reads go to any replica,
//! starting at a rotating index, and the first answer wins.
//!
//! # Retries
//!
//! A write is retried only when it surely did not apply: the connection could not be
//! established, or the node answered `NotLeader` or `NotHosted`. Any failure after the
//! request may have been delivered (timeout, reset, unreadable answer, 5xx) ends it with
//! [`Error::OutcomeUnknown`]; a node's own `OutcomeUnknown` passes through. Reads are
//! retried on anything transient. A 4xx (401: wrong secret) fails at once, for any request.
//!
//! # Background task
//!
//! [`ClusterBackend::connect`] spawns one task. Every [`ClientOptions::map_refresh`] it
//! lists shard map versions newer than the cached one (adopting the newest), then sends
//! `Status` to every member at once: the members that answer make [`Backend::ready`], and
//! the leaders they report become leader hints. It holds no lock across an await except the
//! single-flight map refresh, and stops when the [`ClusterBackend`] is dropped (a
//! cancellation token, checked around every step).
//!
//! # Code layout
//!
//! This module holds the public types, the state shared by the request paths and the
//! background task, and the [`Backend`] impl. Routing (replica order, leader hints, the
//! retry and backoff rules) is in `route.rs`; the per-node pipes that batch operations into
//! HTTP calls, and the classification of their failures, in `rpc.rs`; the first map wait,
//! map refreshes and status polls in `refresh.rs`; the admin API's view of the cluster
//! (`Describe` to every member, what the polls saw) in `admin.rs`.
//!
//! [`proto::encode_request`]: tierkv_wire::proto::encode_request
//! [`proto::encode_response`]: tierkv_wire::proto::encode_response

mod admin;
mod refresh;
mod route;
mod rpc;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};
use tierkv_engine::metrics::Registry;
use tierkv_engine::replica::NodeId;
use tierkv_engine::shard::ScanPage;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{Entry, ReadConsistency, SeqNo, ShardId, WriteBatch};
use tierkv_tls::TlsFigures;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::warn;

use self::refresh::{run_background, wait_for_map};
use self::route::Mode;
use self::stats::{ClientMetrics, Retry};
use crate::backend::{Backend, BackendError, Lease, NotReady, Revalidated};
use tierkv_wire::peer_addresses::PeerAddresses;
use tierkv_wire::proto::{LeasedRead, Request, Response};
use tierkv_wire::shardmap::{Member, ShardMap, ShardMapError};

/// Path of the (batched) client-operation endpoint on every node.
pub const RPC_PATH: &str = tierkv_wire::paths::KV_BATCH;
/// Longest wait for a TCP connection (also capped at half of `rpc_timeout`, so that a
/// connect that times out is reported as a connect failure, which is safe to retry).
const CONNECT_TIMEOUT_MAX: Duration = Duration::from_secs(1);
/// Longest HTTP/2 ping interval and ping timeout on pooled connections (each is also at
/// most a fifth of `rpc_timeout`), so that a connection to a dead node (crashed host,
/// half-open connection) is dropped before a request is sent on it: within 2 s by
/// default, the nodes' default lease.
const KEEPALIVE_MAX: Duration = Duration::from_secs(1);
/// Shortest ping interval and timeout, so that a busy process does not take a slow pong
/// for a dead node.
const KEEPALIVE_MIN: Duration = Duration::from_millis(100);

/// Settings of the gateway's cluster client. Every field has a default except the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientOptions {
    /// The cluster secret, sent as a bearer token to every node; must equal the nodes'.
    /// Not read from the configuration (the binary copies `cluster.secret` here). Default:
    /// empty (refused by [`ClusterBackend::connect`]).
    #[serde(skip)]
    pub secret: String,
    /// TLS to the nodes (design note 0013). Not read from this section (the binary copies
    /// `cluster.tls` here). Default: off (plain HTTP).
    #[serde(skip)]
    pub tls: tierkv_tls::ClientTlsSettings,
    /// How often the shard map is re-read and every member's status polled (humantime).
    /// Default: 1s.
    #[serde(with = "humantime_serde")]
    pub map_refresh: Duration,
    /// How long a request keeps looking for a leader (or any replica, for eventual reads)
    /// before failing with `not_leader`; also how long `connect` waits for a first shard
    /// map (humantime). Default: 8s.
    #[serde(with = "humantime_serde")]
    pub leader_wait: Duration,
    /// Time one RPC to a node may take, connect included (humantime). A fifth of it (at
    /// most 1s) is also the HTTP/2 keep-alive ping interval and ping timeout of the
    /// connections to nodes. Default: 5s.
    #[serde(with = "humantime_serde")]
    pub rpc_timeout: Duration,
    /// Addresses to dial nodes at instead of the ones the shard map records, as
    /// `id=host:port` (e.g. `["2=203.0.113.7:7001"]`): for a gateway that reaches nodes only
    /// through NAT, a sidecar or a TCP proxy. Nodes not listed are dialled at the map's
    /// address. Default: empty.
    pub peer_addresses: Vec<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            secret: String::new(),
            tls: tierkv_tls::ClientTlsSettings::default(),
            map_refresh: Duration::from_secs(1),
            leader_wait: Duration::from_secs(8),
            rpc_timeout: Duration::from_secs(5),
            peer_addresses: Vec::new(),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("secret", &"<redacted>")
            .field("tls", &self.tls)
            .field("map_refresh", &self.map_refresh)
            .field("leader_wait", &self.leader_wait)
            .field("rpc_timeout", &self.rpc_timeout)
            .field("peer_addresses", &self.peer_addresses)
            .finish()
    }
}

impl ClientOptions {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConnectError> {
        if self.secret.is_empty() {
            return Err(ConnectError::Options {
                field: "secret",
                reason: "must be set to the nodes' cluster secret".to_owned(),
            });
        }
        if !self.secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConnectError::Options {
                field: "secret",
                reason: "must be printable ASCII without spaces".to_owned(),
            });
        }
        for (field, d) in [
            ("map_refresh", self.map_refresh),
            ("rpc_timeout", self.rpc_timeout),
        ] {
            if d.is_zero() {
                return Err(ConnectError::Options {
                    field,
                    reason: "must be greater than zero".to_owned(),
                });
            }
        }
        self.overrides()?;
        Ok(())
    }

    /// `peer_addresses` parsed.
    fn overrides(&self) -> Result<PeerAddresses, ConnectError> {
        PeerAddresses::parse(&self.peer_addresses).map_err(|e| ConnectError::Options {
            field: "peer_addresses",
            reason: e.to_string(),
        })
    }

    /// HTTP/2 keep-alive ping interval (also the ping timeout) of connections to nodes.
    fn keep_alive(&self) -> Duration {
        (self.rpc_timeout / 5).clamp(KEEPALIVE_MIN, KEEPALIVE_MAX)
    }
}

/// Why [`ClusterBackend::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A setting is unusable.
    #[error("invalid cluster client option {field}: {reason}")]
    Options {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No shard map was published within `leader_wait`.
    #[error("no shard map in {store} after waiting {waited:?}")]
    NoShardMap {
        /// The object store.
        store: String,
        /// How long connect waited.
        waited: Duration,
    },
    /// The shard map could not be read.
    #[error(transparent)]
    ShardMap(#[from] ShardMapError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
    /// `cluster.tls` is unusable (settings that go together, or its files).
    #[error(transparent)]
    Tls(#[from] tierkv_tls::TlsError),
}

/// The gateway's [`Backend`] over the nodes of a cluster. Dropping it stops its background
/// task.
#[derive(Debug)]
pub struct ClusterBackend {
    shared: Arc<Shared>,
    _stop: DropGuard,
}

/// State shared by the request paths and the background task.
#[derive(Debug)]
struct Shared {
    http: reqwest::Client,
    /// `Bearer <secret>`, marked sensitive so that it never shows in logs.
    auth: HeaderValue,
    store: ObjStore,
    opts: ClientOptions,
    /// `peer_addresses`: where to dial a member instead of its map address.
    overrides: PeerAddresses,
    /// The newest shard map seen.
    map: ArcSwap<ShardMap>,
    /// Serializes map refreshes (held across the object-store calls, hence tokio's).
    refresh: tokio::sync::Mutex<()>,
    /// Last known leader per shard. Never held across an await.
    hints: parking_lot::Mutex<HashMap<ShardId, NodeId>>,
    /// Outcome of the last status poll (`None` before the first). Never held across an await.
    health: parking_lot::Mutex<Option<HashSet<NodeId>>>,
    /// Start index of the next eventual read.
    rotation: AtomicUsize,
    /// The pipe (batching sender task) per member address. Never held across an await.
    pipes: parking_lot::RwLock<HashMap<String, rpc::PipeTx>>,
    /// Counters for the gateway's `/metrics`.
    stats: Arc<ClientMetrics>,
    /// The reloads of `cluster.tls` (`None`: plain HTTP).
    tls: Option<Arc<TlsFigures>>,
    /// What the status polls saw, for the admin API (`admin.rs`).
    polls: admin::PollLog,
}

impl ClusterBackend {
    /// Loads the latest shard map from `store` (waiting up to `opts.leader_wait` for one to
    /// be published) and starts the background refresh and status poll.
    pub async fn connect(store: ObjStore, opts: ClientOptions) -> Result<Self, ConnectError> {
        opts.validate()?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", opts.secret)).map_err(|_| {
            ConnectError::Options {
                field: "secret",
                reason: "is not a valid header value".to_owned(),
            }
        })?;
        auth.set_sensitive(true);
        let tls = tierkv_tls::client_config(&opts.tls)?;
        let (builder, tls) = match tls {
            Some(t) => (
                reqwest::Client::builder().tls_backend_preconfigured(t.config),
                Some(t.figures),
            ),
            None => (reqwest::Client::builder(), None),
        };
        let http = builder
            .http2_prior_knowledge()
            .no_proxy()
            .timeout(opts.rpc_timeout)
            .connect_timeout((opts.rpc_timeout / 2).min(CONNECT_TIMEOUT_MAX))
            .http2_keep_alive_interval(opts.keep_alive())
            .http2_keep_alive_timeout(opts.keep_alive())
            .http2_keep_alive_while_idle(true)
            .build()
            .map_err(ConnectError::Http)?;
        let map = wait_for_map(&store, opts.leader_wait).await?;
        let overrides = opts.overrides()?;
        let shared = Arc::new(Shared {
            http,
            overrides,
            auth,
            store,
            opts,
            stats: Arc::new(ClientMetrics::new(&map)),
            tls,
            map: ArcSwap::from_pointee(map),
            refresh: tokio::sync::Mutex::new(()),
            hints: parking_lot::Mutex::new(HashMap::new()),
            health: parking_lot::Mutex::new(None),
            rotation: AtomicUsize::new(0),
            pipes: parking_lot::RwLock::new(HashMap::new()),
            polls: admin::PollLog::default(),
        });
        let stop = CancellationToken::new();
        tokio::spawn(run_background(Arc::clone(&shared), stop.clone()));
        Ok(Self {
            shared,
            _stop: stop.drop_guard(),
        })
    }

    /// The newest shard map this client has seen.
    #[must_use]
    pub fn map(&self) -> Arc<ShardMap> {
        self.shared.map.load_full()
    }

    /// Registers the client's figures into `registry` (the one the gateway serves):
    /// `tierkv_gateway_*`, requests and operations sent, retries by reason, backoffs,
    /// give-ups, outcome-unknown writes, the map in use and the members answering.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.shared.stats.register(registry);
    }

    /// The reloads of the client's `cluster.tls` configuration and its client certificate's
    /// expiry; `None` over plain HTTP. The process exports them with its listener's.
    #[must_use]
    pub fn tls_figures(&self) -> Option<Arc<TlsFigures>> {
        self.shared.tls.clone()
    }

    /// The node this client currently believes leads `shard`.
    #[must_use]
    pub fn leader_hint(&self, shard: ShardId) -> Option<NodeId> {
        self.shared.hints.lock().get(&shard).copied()
    }
}

impl Shared {
    fn map(&self) -> Arc<ShardMap> {
        self.map.load_full()
    }

    /// The address to dial `member` at: its override, else its map address.
    fn dial<'a>(&'a self, member: &'a Member) -> &'a str {
        self.overrides.resolve(member.id, &member.addr)
    }
}

/// The error for an answer of the wrong kind (a protocol bug on one side).
fn unexpected(shard: ShardId, mode: Mode, node: NodeId, resp: &Response) -> BackendError {
    warn!(%shard, %node, answer = ?resp, "answer does not match the request");
    match mode {
        Mode::Write => BackendError::OutcomeUnknown { shard },
        Mode::StrongRead | Mode::EventualRead => BackendError::Protocol {
            node: Some(node),
            what: "the node's answer does not match the request",
        },
    }
}

#[async_trait]
impl Backend for ClusterBackend {
    fn shard_count(&self) -> u32 {
        self.shared.map().shards()
    }

    async fn get(
        &self,
        shard: ShardId,
        key: Bytes,
        consistency: ReadConsistency,
    ) -> Result<Option<Entry>, BackendError> {
        let mode = Mode::read(consistency);
        let req = Request::Get {
            shard,
            key,
            consistency,
        };
        match self.shared.route(shard, mode, &req).await? {
            (_, Response::Got(entry)) => Ok(entry),
            (node, other) => Err(unexpected(shard, mode, node, &other)),
        }
    }

    /// `GetIfChanged` to the shard's leader; to a node that has not announced wire revision
    /// 2, a strong `Get` whose answer is compared here (design note 0008).
    async fn get_if_changed(
        &self,
        shard: ShardId,
        key: Bytes,
        known: SeqNo,
    ) -> Result<Revalidated, BackendError> {
        let mode = Mode::StrongRead;
        let req = Request::GetIfChanged { shard, key, known };
        match self.shared.route(shard, mode, &req).await? {
            (_, Response::Unchanged) => Ok(Revalidated::Unchanged),
            (_, Response::Got(entry)) => Ok(Revalidated::compare(entry, known)),
            (node, other) => Err(unexpected(shard, mode, node, &other)),
        }
    }

    /// `GetLeased` to the shard's leader (design note 0014); to a node that has not
    /// announced wire revision 6, `GetIfChanged` or a strong `Get`, and no lease.
    async fn get_leased(
        &self,
        shard: ShardId,
        key: Bytes,
        known: Option<SeqNo>,
    ) -> Result<(Revalidated, Option<Lease>), BackendError> {
        let mode = Mode::StrongRead;
        let req = Request::GetLeased { shard, key, known };
        let compare = |entry| match known {
            Some(k) => Revalidated::compare(entry, k),
            None => Revalidated::Current(entry),
        };
        match self.shared.route(shard, mode, &req).await? {
            (
                _,
                Response::Leased {
                    lease_ms,
                    mark,
                    read,
                },
            ) => {
                let lease = (lease_ms > 0).then(|| Lease {
                    duration: Duration::from_millis(u64::from(lease_ms)),
                    mark,
                });
                match read {
                    LeasedRead::Unchanged if known.is_some() => Ok((Revalidated::Unchanged, lease)),
                    LeasedRead::Got(entry) => Ok((compare(entry), lease)),
                    LeasedRead::Unchanged => Err(BackendError::Protocol {
                        node: None,
                        what: "unchanged answer to a read without a known version",
                    }),
                }
            }
            (_, Response::Unchanged) if known.is_some() => Ok((Revalidated::Unchanged, None)),
            (_, Response::Got(entry)) => Ok((compare(entry), None)),
            (node, other) => Err(unexpected(shard, mode, node, &other)),
        }
    }

    async fn write(
        &self,
        shard: ShardId,
        batch: WriteBatch,
    ) -> Result<(SeqNo, Vec<Option<SeqNo>>), BackendError> {
        let req = Request::Write { shard, batch };
        match self.shared.route(shard, Mode::Write, &req).await? {
            (_, Response::Written { seq, prior }) => Ok((seq, prior)),
            (node, other) => Err(unexpected(shard, Mode::Write, node, &other)),
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
        let mode = Mode::read(consistency);
        let req = Request::Scan {
            shard,
            prefix,
            start_after,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            consistency,
        };
        match self.shared.route(shard, mode, &req).await? {
            (_, Response::Scanned(page)) => Ok(page),
            (node, other) => Err(unexpected(shard, mode, node, &other)),
        }
    }

    /// Ok once a status poll has completed and, for every shard, a majority of its
    /// replicas answered the last one.
    async fn ready(&self) -> Result<(), NotReady> {
        let map = self.shared.map();
        let health = self.shared.health.lock();
        let Some(answered) = health.as_ref() else {
            return Err(NotReady::NotPolledYet);
        };
        for s in 0..map.shards() {
            let replicas = map.replicas(ShardId(s));
            let up = replicas.iter().filter(|n| answered.contains(n)).count();
            if up * 2 <= replicas.len() {
                return Err(NotReady::NoQuorum {
                    shard: ShardId(s),
                    answered: up,
                    replicas: replicas.len(),
                });
            }
        }
        Ok(())
    }
}
