//! [`ClusterBackend`]: the gateway's [`Backend`] over node RPC.
//!
//! # Wire contract
//!
//! `POST http://{member.addr}/rpc/v1/kv` ([`RPC_PATH`]) over HTTP/2 cleartext with prior
//! knowledge, headers `authorization: Bearer <cluster secret>` and
//! `content-type: application/octet-stream`, body [`proto::encode_request`]. A node answers
//! 200 with a [`proto::encode_response`] body (errors of the operation travel inside it as
//! [`Response::Error`]), or 401 if the secret is wrong. One `reqwest::Client` (one pooled
//! HTTP/2 connection per node, with keep-alive pings) serves every request.
//!
//! # Routing
//!
//! Writes and strong reads go to the shard's leader: the cached leader hint first, then the
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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use tierkv_engine::replica::NodeId;
use tierkv_engine::shard::ScanPage;
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{Entry, Epoch, ReadConsistency, SeqNo, ShardId, WriteBatch};
use tierkv_engine::{Error, ErrorKind};
use tierkv_gateway::{Backend, EngineMetrics};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, warn};

use crate::proto::{self, RemoteError, ReplicaRole, Request, Response};
use crate::shardmap::{self, ShardMap, ShardMapError};

/// Path of the client-operation endpoint on every node.
pub const RPC_PATH: &str = "/rpc/v1/kv";
/// First pause after a full pass over a shard's replicas found no leader.
const BACKOFF_START: Duration = Duration::from_millis(10);
/// Longest pause between passes.
const BACKOFF_MAX: Duration = Duration::from_millis(200);
/// Longest wait for a TCP connection (also capped at half of `rpc_timeout`, so that a
/// connect that times out is reported as a connect failure, which is safe to retry).
const CONNECT_TIMEOUT_MAX: Duration = Duration::from_secs(1);
/// HTTP/2 ping interval and ping timeout on pooled connections, so that a connection to a
/// dead node is dropped before a request is sent on it.
const KEEPALIVE: Duration = Duration::from_secs(2);

/// Settings of the gateway's cluster client. Every field has a default except the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientOptions {
    /// The cluster secret, sent as a bearer token to every node; must equal the nodes'.
    /// Default: empty (refused by [`ClusterBackend::connect`]).
    pub secret: String,
    /// How often the shard map is re-read and every member's status polled (humantime).
    /// Default: 1s.
    #[serde(with = "humantime_serde")]
    pub map_refresh: Duration,
    /// How long a request keeps looking for a leader (or any replica, for eventual reads)
    /// before failing with `not_leader`; also how long `connect` waits for a first shard
    /// map (humantime). Default: 8s.
    #[serde(with = "humantime_serde")]
    pub leader_wait: Duration,
    /// Time one RPC to a node may take, connect included (humantime). Default: 5s.
    #[serde(with = "humantime_serde")]
    pub rpc_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            secret: String::new(),
            map_refresh: Duration::from_secs(1),
            leader_wait: Duration::from_secs(8),
            rpc_timeout: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("secret", &"<redacted>")
            .field("map_refresh", &self.map_refresh)
            .field("leader_wait", &self.leader_wait)
            .field("rpc_timeout", &self.rpc_timeout)
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
        Ok(())
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
}

/// How a request is routed and retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// To the leader; retried only when it surely did not apply.
    Write,
    /// To the leader; retried on anything transient.
    StrongRead,
    /// To any replica; retried on anything transient.
    EventualRead,
}

impl Mode {
    fn read(c: ReadConsistency) -> Self {
        match c {
            ReadConsistency::Strong => Self::StrongRead,
            ReadConsistency::Eventual => Self::EventualRead,
        }
    }
}

/// Why one RPC produced no answer.
#[derive(Debug)]
enum RpcFailure {
    /// The request surely did not reach the node (no connection).
    NotSent(String),
    /// The node refused the request at the HTTP level (4xx; 401 is a wrong secret).
    Rejected(StatusCode),
    /// The request may have been delivered, but no usable answer came back.
    MaybeDelivered(String),
}

/// Result of one pass over a shard's replicas.
enum Pass {
    /// An answer or a final error.
    Done(Result<(NodeId, Response), Error>),
    /// A newer shard map was adopted: start over with it.
    MapChanged,
    /// Every candidate failed in a way worth retrying.
    Exhausted,
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
        let http = reqwest::Client::builder()
            .http2_prior_knowledge()
            .no_proxy()
            .timeout(opts.rpc_timeout)
            .connect_timeout((opts.rpc_timeout / 2).min(CONNECT_TIMEOUT_MAX))
            .http2_keep_alive_interval(KEEPALIVE)
            .http2_keep_alive_timeout(KEEPALIVE)
            .http2_keep_alive_while_idle(true)
            .build()
            .map_err(ConnectError::Http)?;
        let map = wait_for_map(&store, opts.leader_wait).await?;
        let shared = Arc::new(Shared {
            http,
            auth,
            store,
            opts,
            map: ArcSwap::from_pointee(map),
            refresh: tokio::sync::Mutex::new(()),
            hints: parking_lot::Mutex::new(HashMap::new()),
            health: parking_lot::Mutex::new(None),
            rotation: AtomicUsize::new(0),
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

    /// The node this client currently believes leads `shard`.
    #[must_use]
    pub fn leader_hint(&self, shard: ShardId) -> Option<NodeId> {
        self.shared.hints.lock().get(&shard).copied()
    }
}

/// Polls the store for a first shard map, for at most `wait`.
async fn wait_for_map(store: &ObjStore, wait: Duration) -> Result<ShardMap, ConnectError> {
    let deadline = Instant::now() + wait;
    let mut delay = BACKOFF_START;
    loop {
        let store_error = match shardmap::load_latest(store).await {
            Ok(Some(map)) => return Ok(map),
            Ok(None) => None,
            // Object storage may come up after the gateway: keep polling.
            Err(ShardMapError::Store(e)) => Some(ShardMapError::Store(e)),
            Err(e) => return Err(e.into()),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(match store_error {
                Some(e) => e.into(),
                None => ConnectError::NoShardMap {
                    store: store.description().to_owned(),
                    waited: wait,
                },
            });
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

/// The background task: refresh the map and poll every member, every `map_refresh`.
async fn run_background(shared: Arc<Shared>, stop: CancellationToken) {
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

/// Whether a read may try another replica after this answer.
fn read_may_retry(e: &RemoteError) -> bool {
    match e {
        RemoteError::ConditionFailed { .. } | RemoteError::Invalid { .. } => false,
        RemoteError::Backpressure { .. }
        | RemoteError::NotLeader { .. }
        | RemoteError::OutcomeUnknown { .. }
        | RemoteError::Closed
        | RemoteError::NotHosted { .. } => true,
        RemoteError::Other { kind, .. } => matches!(
            kind,
            ErrorKind::Unavailable | ErrorKind::Closed | ErrorKind::Fenced
        ),
    }
}

/// Error text with its sources, for logs.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl Shared {
    fn map(&self) -> Arc<ShardMap> {
        self.map.load_full()
    }

    fn set_hint(&self, shard: ShardId, node: NodeId) {
        self.hints.lock().insert(shard, node);
    }

    fn forget_hint(&self, shard: ShardId, node: NodeId) {
        let mut hints = self.hints.lock();
        if hints.get(&shard) == Some(&node) {
            hints.remove(&shard);
        }
    }

    /// One RPC to the node at `addr`.
    async fn send(&self, addr: &str, body: Bytes) -> Result<Response, RpcFailure> {
        let resp = self
            .http
            .post(format!("http://{addr}{RPC_PATH}"))
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_builder() {
                    RpcFailure::NotSent(chain(&e))
                } else {
                    RpcFailure::MaybeDelivered(chain(&e))
                }
            })?;
        let status = resp.status();
        if status.is_client_error() {
            return Err(RpcFailure::Rejected(status));
        }
        if status != StatusCode::OK {
            return Err(RpcFailure::MaybeDelivered(format!("HTTP {status}")));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| RpcFailure::MaybeDelivered(chain(&e)))?;
        proto::decode_response(&body)
            .map_err(|e| RpcFailure::MaybeDelivered(format!("unreadable answer: {e}")))
    }

    /// Adopts the newest published map if this client's is still version `seen`
    /// (single-flight: callers that queued behind a refresh see its result). Errors are
    /// logged; the cached map stays in use.
    async fn refresh_map(&self, seen: u64) {
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
            async move { (m.id, self.send(&m.addr, body).await) }
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
        *self.health.lock() = Some(answered);
        if newest_map > map.version() {
            self.refresh_map(map.version()).await;
        }
    }

    /// Candidates for `shard` in the order to try them.
    fn order(&self, map: &ShardMap, shard: ShardId, mode: Mode) -> Vec<NodeId> {
        let replicas = map.replicas(shard);
        if replicas.is_empty() {
            return Vec::new();
        }
        match mode {
            Mode::EventualRead => {
                let start = self.rotation.fetch_add(1, Ordering::Relaxed) % replicas.len();
                replicas
                    .iter()
                    .cycle()
                    .skip(start)
                    .take(replicas.len())
                    .copied()
                    .collect()
            }
            Mode::Write | Mode::StrongRead => {
                let hint = self
                    .hints
                    .lock()
                    .get(&shard)
                    .copied()
                    .filter(|h| map.member(*h).is_some());
                hint.into_iter()
                    .chain(replicas.iter().copied().filter(|r| Some(*r) != hint))
                    .collect()
            }
        }
    }

    /// Sends `req` for `shard` until a node answers it, following the module's routing and
    /// retry rules. Returns the answering node and its (non-error) answer.
    #[tracing::instrument(level = "debug", skip_all, fields(shard = %shard, mode = ?mode))]
    async fn route(
        &self,
        shard: ShardId,
        mode: Mode,
        req: &Request,
    ) -> Result<(NodeId, Response), Error> {
        let body = proto::encode_request(req);
        let deadline = Instant::now() + self.opts.leader_wait;
        let mut delay = BACKOFF_START;
        let mut last: Option<(NodeId, String)> = None;
        loop {
            let map = self.map();
            let order = self.order(&map, shard, mode);
            if order.is_empty() {
                return Err(Error::Invariant {
                    what: "a routed shard is outside the shard map",
                });
            }
            match self.pass(&map, shard, mode, &order, &body, &mut last).await {
                Pass::Done(r) => return r,
                Pass::MapChanged => continue,
                Pass::Exhausted => {}
            }
            let now = Instant::now();
            if now >= deadline {
                debug!(%shard, ?mode, last = ?last, "gave up looking for a replica");
                return Err(match (mode, last) {
                    (Mode::EventualRead, Some((node, why))) => Error::Remote {
                        node: node.0,
                        kind: ErrorKind::Unavailable,
                        message: format!("no replica of shard {shard} answered; last: {why}"),
                    },
                    _ => Error::NotLeader {
                        shard,
                        leader: None,
                    },
                });
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(BACKOFF_MAX);
        }
    }

    /// One pass over `order` (plus the leaders nodes point to), each node at most once.
    async fn pass(
        &self,
        map: &ShardMap,
        shard: ShardId,
        mode: Mode,
        order: &[NodeId],
        body: &Bytes,
        last: &mut Option<(NodeId, String)>,
    ) -> Pass {
        let mut tried: Vec<NodeId> = Vec::with_capacity(order.len() + 1);
        let mut redirect: Option<NodeId> = None;
        let mut rest = order.iter().copied();
        loop {
            let next = redirect
                .take()
                .filter(|n| !tried.contains(n))
                .or_else(|| rest.by_ref().find(|n| !tried.contains(n)));
            let Some(target) = next else {
                return Pass::Exhausted;
            };
            tried.push(target);
            let Some(member) = map.member(target) else {
                *last = Some((target, "not a member of the shard map".to_owned()));
                continue;
            };
            match self.send(&member.addr, body.clone()).await {
                Ok(Response::Error(e)) => {
                    *last = Some((target, e.to_string()));
                    match e {
                        RemoteError::NotLeader {
                            leader: Some(l), ..
                        } if mode != Mode::EventualRead => {
                            debug!(%shard, from = %target, leader = l, "redirected to the leader");
                            self.set_hint(shard, NodeId(l));
                            redirect = Some(NodeId(l));
                        }
                        RemoteError::NotLeader { .. } => self.forget_hint(shard, target),
                        RemoteError::NotHosted { map_version, .. } => {
                            self.forget_hint(shard, target);
                            if map_version > map.version() {
                                self.refresh_map(map.version()).await;
                                if self.map().version() > map.version() {
                                    return Pass::MapChanged;
                                }
                            }
                        }
                        e if mode != Mode::Write && read_may_retry(&e) => {}
                        e => return Pass::Done(Err(e.into_engine(target, map.version()))),
                    }
                }
                Ok(resp) => {
                    if mode != Mode::EventualRead {
                        self.set_hint(shard, target);
                    }
                    return Pass::Done(Ok((target, resp)));
                }
                Err(RpcFailure::NotSent(why)) => {
                    debug!(%shard, node = %target, %why, "could not reach a replica");
                    self.forget_hint(shard, target);
                    *last = Some((target, why));
                }
                Err(RpcFailure::Rejected(status)) => {
                    let message = if status == StatusCode::UNAUTHORIZED {
                        "the node rejected the cluster secret (HTTP 401)".to_owned()
                    } else {
                        format!("the node rejected the request (HTTP {status})")
                    };
                    warn!(%shard, node = %target, %message, "request rejected");
                    return Pass::Done(Err(Error::Remote {
                        node: target.0,
                        kind: ErrorKind::Internal,
                        message,
                    }));
                }
                Err(RpcFailure::MaybeDelivered(why)) => {
                    if mode == Mode::Write {
                        warn!(%shard, node = %target, %why, "write may have been delivered; outcome unknown");
                        return Pass::Done(Err(Error::OutcomeUnknown { shard }));
                    }
                    debug!(%shard, node = %target, %why, "read failed; trying another replica");
                    self.forget_hint(shard, target);
                    *last = Some((target, why));
                }
            }
        }
    }
}

/// The error for an answer of the wrong kind (a protocol bug on one side).
fn unexpected(shard: ShardId, mode: Mode, node: NodeId, resp: &Response) -> Error {
    warn!(%shard, %node, answer = ?resp, "answer does not match the request");
    match mode {
        Mode::Write => Error::OutcomeUnknown { shard },
        Mode::StrongRead | Mode::EventualRead => Error::Remote {
            node: node.0,
            kind: ErrorKind::Internal,
            message: "the node's answer does not match the request".to_owned(),
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
    ) -> Result<Option<Entry>, Error> {
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

    async fn write(
        &self,
        shard: ShardId,
        batch: WriteBatch,
    ) -> Result<(SeqNo, Vec<Option<SeqNo>>), Error> {
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
    ) -> Result<ScanPage, Error> {
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
    async fn ready(&self) -> Result<(), String> {
        let map = self.shared.map();
        let health = self.shared.health.lock();
        let Some(answered) = health.as_ref() else {
            return Err("no status poll of the nodes has completed yet".to_owned());
        };
        for s in 0..map.shards() {
            let replicas = map.replicas(ShardId(s));
            let up = replicas.iter().filter(|n| answered.contains(n)).count();
            if up * 2 <= replicas.len() {
                return Err(format!(
                    "shard {s}: {up} of {} replicas answered the last status poll",
                    replicas.len()
                ));
            }
        }
        Ok(())
    }

    /// Only the shard count: engine figures (WAL, memtables, segments, object store) are
    /// exported by each node on its own `/metrics`.
    fn engine_metrics(&self) -> EngineMetrics {
        EngineMetrics {
            shards: u64::from(self.shared.map().shards()),
            ..EngineMetrics::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_parse_and_validate() {
        let o: ClientOptions = serde_json::from_str(r#"{"secret":"s"}"#).expect("parse");
        assert_eq!(
            o,
            ClientOptions {
                secret: "s".to_owned(),
                ..ClientOptions::default()
            }
        );
        assert_eq!(o.leader_wait, Duration::from_secs(8));
        assert!(o.validate().is_ok());
        let o: ClientOptions =
            serde_json::from_str(r#"{"secret":"s","rpc_timeout":"250ms","map_refresh":"2s"}"#)
                .expect("parse");
        assert_eq!(o.rpc_timeout, Duration::from_millis(250));
        assert_eq!(o.map_refresh, Duration::from_secs(2));
        assert!(serde_json::from_str::<ClientOptions>(r#"{"nope":1}"#).is_err());
        assert!(matches!(
            ClientOptions::default().validate(),
            Err(ConnectError::Options {
                field: "secret",
                ..
            })
        ));
        let zero = ClientOptions {
            secret: "s".to_owned(),
            map_refresh: Duration::ZERO,
            ..ClientOptions::default()
        };
        assert!(matches!(
            zero.validate(),
            Err(ConnectError::Options {
                field: "map_refresh",
                ..
            })
        ));
        assert!(!format!("{o:?}").contains("\"s\""), "secret leaked: {o:?}");
    }

    #[tokio::test]
    async fn dropping_the_backend_stops_the_background_task() {
        let store = ObjStore::in_memory();
        let member = crate::shardmap::Member {
            id: NodeId(1),
            addr: "127.0.0.1:1".to_owned(),
        };
        let map = ShardMap::new(1, 2, 1, 8, vec![member]).expect("valid map");
        shardmap::publish(&store, &map).await.expect("publish");
        let b = ClusterBackend::connect(
            store,
            ClientOptions {
                secret: "s".to_owned(),
                map_refresh: Duration::from_millis(10),
                ..ClientOptions::default()
            },
        )
        .await
        .expect("connect");
        let deadline = Instant::now() + Duration::from_secs(5);
        while b.shared.health.lock().is_none() {
            assert!(Instant::now() < deadline, "no status poll completed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let shared = Arc::downgrade(&b.shared);
        drop(b);
        // The task holds the only other reference; it lets go once it has stopped.
        while shared.upgrade().is_some() {
            assert!(Instant::now() < deadline, "background task still running");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[test]
    fn reads_retry_transient_errors_only() {
        assert!(read_may_retry(&RemoteError::Closed));
        assert!(read_may_retry(&RemoteError::Other {
            kind: ErrorKind::Unavailable,
            message: String::new(),
        }));
        assert!(!read_may_retry(&RemoteError::Invalid {
            reason: tierkv_engine::error::InvalidReason::ZeroLimit,
        }));
        assert!(!read_may_retry(&RemoteError::Other {
            kind: ErrorKind::Internal,
            message: String::new(),
        }));
    }
}
