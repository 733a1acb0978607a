//! Routing a request to a shard's replicas: the order to try them in, leader hints, and
//! the retry and backoff rules (see "Routing" and "Retries" in the module docs).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use tierkv_engine::ErrorKind;
use tierkv_engine::replica::NodeId;
use tierkv_engine::types::{ReadConsistency, SeqNo, ShardId};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::rpc::RpcFailure;
use super::{Retry, Shared};
use crate::backend::BackendError;
use tierkv_wire::proto::{self, RemoteError, Request, Response};
use tierkv_wire::shardmap::ShardMap;

/// First pause after a full pass over a shard's replicas found no leader.
pub(super) const BACKOFF_START: Duration = Duration::from_millis(10);
/// Longest pause between passes.
pub(super) const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// How a request is routed and retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// To the leader; retried only when it surely did not apply.
    Write,
    /// To the leader; retried on anything transient.
    StrongRead,
    /// To any replica; retried on anything transient.
    EventualRead,
}

impl Mode {
    pub(super) fn read(c: ReadConsistency) -> Self {
        match c {
            ReadConsistency::Strong => Self::StrongRead,
            ReadConsistency::Eventual => Self::EventualRead,
        }
    }
}

/// A request encoded for every node it may go to: as itself, and, when it is a read whose
/// kind is newer than wire revision 1, as the equivalent request of an older revision for a
/// node that did not announce its revision (design notes 0008 and 0014). The older
/// equivalents are encoded only when such a node is asked (during a rolling upgrade).
pub(super) struct Body {
    bytes: Bytes,
    revision: u16,
    /// For a read newer than revision 1: its shard, key and the version it revalidates.
    read: Option<(ShardId, Bytes, Option<SeqNo>)>,
}

impl Body {
    fn new(req: &Request) -> Self {
        let read = match req {
            Request::GetIfChanged { shard, key, known } => {
                Some((*shard, key.clone(), Some(*known)))
            }
            Request::GetLeased { shard, key, known } => Some((*shard, key.clone(), *known)),
            Request::Get { .. }
            | Request::Write { .. }
            | Request::Scan { .. }
            | Request::Status
            | Request::StatusWithConfigurations
            | Request::Describe { .. } => None,
        };
        Self {
            bytes: proto::encode_request(req),
            revision: req.revision(),
            read,
        }
    }

    /// The bytes to send to a node that announced `node_revision`, and their revision: the
    /// newest equivalent the node knows (`GetIfChanged` for a revalidation, else a strong
    /// `Get`; the strong `Get` also to a node that announced less than either).
    fn for_revision(&self, node_revision: u16) -> (Bytes, u16) {
        let Some((shard, key, known)) = &self.read else {
            return (self.bytes.clone(), self.revision);
        };
        if node_revision >= self.revision {
            return (self.bytes.clone(), self.revision);
        }
        let revalidation = known.map(|known| Request::GetIfChanged {
            shard: *shard,
            key: key.clone(),
            known,
        });
        let older = match revalidation {
            Some(r) if r.revision() <= node_revision => r,
            _ => Request::Get {
                shard: *shard,
                key: key.clone(),
                consistency: ReadConsistency::Strong,
            },
        };
        (proto::encode_request(&older), older.revision())
    }
}

/// Result of one pass over a shard's replicas.
enum Pass {
    /// An answer or a final error.
    Done(Result<(NodeId, Response), BackendError>),
    /// A newer shard map was adopted: start over with it.
    MapChanged,
    /// Every candidate failed in a way worth retrying.
    Exhausted,
}

/// Whether a read may try another replica after this answer.
pub(super) fn read_may_retry(e: &RemoteError) -> bool {
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

impl Shared {
    fn set_hint(&self, shard: ShardId, node: NodeId) {
        self.hints.lock().insert(shard, node);
    }

    fn forget_hint(&self, shard: ShardId, node: NodeId) {
        let mut hints = self.hints.lock();
        if hints.get(&shard) == Some(&node) {
            hints.remove(&shard);
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
    pub(super) async fn route(
        &self,
        shard: ShardId,
        mode: Mode,
        req: &Request,
    ) -> Result<(NodeId, Response), BackendError> {
        let body = Body::new(req);
        let deadline = Instant::now() + self.opts.leader_wait;
        let mut delay = BACKOFF_START;
        let mut last: Option<(NodeId, String)> = None;
        loop {
            let map = self.map();
            let order = self.order(&map, shard, mode);
            if order.is_empty() {
                return Err(BackendError::Protocol {
                    node: None,
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
                self.stats.gave_up.inc();
                debug!(%shard, ?mode, last = ?last, "gave up looking for a replica");
                return Err(match (mode, last) {
                    (Mode::EventualRead, Some((node, why))) => BackendError::Unreachable {
                        shard,
                        last: format!("node {node}: {why}"),
                    },
                    _ => BackendError::NoLeader { shard },
                });
            }
            self.stats.backoffs.inc();
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
        body: &Body,
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
            let addr = self.dial(member);
            let (bytes, revision) = body.for_revision(self.revision(addr));
            match self.send(addr, bytes, revision).await {
                Ok(Response::Error(e)) => {
                    *last = Some((target, e.to_string()));
                    match e {
                        RemoteError::NotLeader {
                            leader: Some(l), ..
                        } if mode != Mode::EventualRead => {
                            debug!(%shard, from = %target, leader = %l, "redirected to the leader");
                            self.stats.retry(Retry::Redirect);
                            self.set_hint(shard, l);
                            redirect = Some(l);
                        }
                        RemoteError::NotLeader { .. } => {
                            self.stats.retry(Retry::NotLeader);
                            self.forget_hint(shard, target);
                        }
                        RemoteError::NotHosted { map_version, .. } => {
                            self.stats.retry(Retry::NotHosted);
                            self.forget_hint(shard, target);
                            if map_version > map.version() {
                                self.refresh_map(map.version()).await;
                                if self.map().version() > map.version() {
                                    return Pass::MapChanged;
                                }
                            }
                        }
                        e if mode != Mode::Write && read_may_retry(&e) => {
                            self.stats.retry(Retry::ReadFailed);
                        }
                        error => {
                            return Pass::Done(Err(BackendError::Node {
                                node: target,
                                error,
                            }));
                        }
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
                    self.stats.retry(Retry::Unreachable);
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
                    return Pass::Done(Err(BackendError::Refused {
                        node: target,
                        status: status.as_u16(),
                    }));
                }
                Err(RpcFailure::MaybeDelivered(why)) => {
                    if mode == Mode::Write {
                        self.stats.outcome_unknown.inc();
                        warn!(%shard, node = %target, %why, "write may have been delivered; outcome unknown");
                        return Pass::Done(Err(BackendError::OutcomeUnknown { shard }));
                    }
                    debug!(%shard, node = %target, %why, "read failed; trying another replica");
                    self.stats.retry(Retry::ReadFailed);
                    self.forget_hint(shard, target);
                    *last = Some((target, why));
                }
            }
        }
    }
}
