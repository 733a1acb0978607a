//! A node's HTTP endpoints (HTTP/1.1 and HTTP/2 on one listener: cleartext, or TLS with ALPN
//! when `[tls]` is set, design note 0013).
//!
//! | route | who calls it | body |
//! |---|---|---|
//! | `POST /rpc/v1/replica` | other nodes | replication frames ([`crate::transport`]) |
//! | `POST /rpc/v1/kv` | tools, tests | one client operation ([`tierkv_wire::proto`]) |
//! | `POST /rpc/v1/kv/batch` | gateways | several client operations, answers streamed ([`tierkv_wire::proto::batch`]) |
//! | `GET /health/live` | probes | 200 while the process runs |
//! | `GET /health/ready` | probes | 200 once every hosted shard knows a leader |
//! | `GET /status` | operators, tests | JSON: replicas in rank order (the newest map's target), role, epoch, leader and seqs per hosted shard, `voter` (of its configuration in force), the move `phase` and, on a moving leader, its `learners` with the records each is behind (note 0009 §7) |
//! | `GET /metrics` | Prometheus | the registry the node was served with ([`crate::node::Node::register_metrics`] and whatever else the process adds) |
//!
//! The RPC routes, `/status` and `/metrics` require `authorization: Bearer <cluster
//! secret>` (compared in constant time; design note 0012), or a connection whose client
//! certificate the TLS listener verified against `tls.client_ca_file` (mutual TLS, note
//! 0013); otherwise 401 with `WWW-Authenticate: Bearer`. `/health/*` is open. Their answers carry
//! `tierkv-wire-revision: 4`, the client operations this node knows
//! ([`tierkv_wire::proto::REVISION`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::BytesMut;
use futures::stream::{FuturesUnordered, Stream, StreamExt};
use tierkv_engine::metrics::{Counter, Registry, TEXT_CONTENT_TYPE, encode_text};
use tierkv_engine::replica::{Role, msg};
use tierkv_tls::Peer;
use tracing::Instrument as _;

use crate::node::Node;
use tierkv_wire::frame;
use tierkv_wire::paths;
use tierkv_wire::proto;

/// The header announcing the wire revision this node answers (design note 0008): gateways
/// send `GetIfChanged` only to nodes that announced revision 2.
const REVISION_HEADER: header::HeaderName = header::HeaderName::from_static(proto::REVISION_HEADER);
/// [`proto::REVISION`] as a header value.
const REVISION_VALUE: &str = "6";
const _: () = assert!(
    proto::REVISION == 6,
    "REVISION_VALUE announces proto::REVISION"
);

/// Largest RPC body accepted (a batch of values, or a batch of replication records).
const MAX_BODY: usize = 256 << 20;

/// The node's router; `/metrics` serves `metrics`.
pub fn router(node: Node, metrics: Arc<Registry>) -> Router {
    Router::new()
        .route(paths::REPLICA, post(replica))
        .route(paths::KV, post(kv))
        .route(paths::KV_BATCH, post(kv_batch))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route("/status", get(status))
        .route(
            "/metrics",
            get(
                move |State(node): State<Node>,
                      peer: Option<Extension<Peer>>,
                      headers: HeaderMap| {
                    let metrics = Arc::clone(&metrics);
                    async move {
                        if !authorized(&node, &headers, peer.as_ref()) {
                            return refused();
                        }
                        render_metrics(metrics).await
                    }
                },
            ),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(node)
}

/// How a node stops once its shutdown signal fires.
#[derive(Debug, Clone, Copy)]
pub struct StopOptions {
    /// Hand the shards it leads to other replicas first (off when every node of the
    /// cluster stops at once, as `tierkv dev` does: there is nobody to hand them to).
    pub hand_over: bool,
    /// How long leaders may flush their memtables.
    pub flush_timeout: std::time::Duration,
}

/// Serves `node` on `listener` (a `TcpListener` for plain HTTP, or a
/// [`tierkv_tls::Listener`]) until `shutdown`, then shuts the node down. `/metrics` serves
/// `metrics`: the node's figures ([`Node::register_metrics`]) and whatever else the process
/// put there (its object store, its block cache).
pub async fn serve(
    node: Node,
    listener: impl Into<tierkv_tls::Listener>,
    metrics: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop: StopOptions,
) -> std::io::Result<()> {
    let app = router(node.clone(), Arc::new(metrics));
    let draining = node.clone();
    let served = tierkv_tls::serve(listener.into(), app, async move {
        shutdown.await;
        // While the replication streams still run: the handovers need them.
        if stop.hand_over {
            draining
                .hand_over_leadership(draining.drain_timeout())
                .await;
        }
        draining.stop_streams();
    })
    .await;
    node.shutdown(stop.flush_timeout).await;
    served
}

/// Whether a request may use the RPC routes: its connection presented a client certificate
/// the TLS listener verified (`peer`, from the connection, never from a header), or it
/// carries the cluster secret as a bearer token (compared in constant time).
fn authorized(node: &Node, headers: &HeaderMap, peer: Option<&Extension<Peer>>) -> bool {
    if peer.is_some_and(|p| p.client_cert) {
        return true;
    }
    let Some(got) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    else {
        return false;
    };
    secret_matches(got, node.secret().as_bytes())
}

/// Whether `got` equals `want`, in time that depends on `got`'s length only: neither the
/// secret's bytes nor its length show in the timing (design note 0012).
fn secret_matches(got: &[u8], want: &[u8]) -> bool {
    if want.is_empty() {
        return false;
    }
    let mut diff = u8::from(got.len() != want.len());
    for (i, b) in got.iter().enumerate() {
        diff |= b ^ want.get(i % want.len()).copied().unwrap_or(0);
    }
    diff == 0
}

/// A replication stream from a peer: delivers each message as soon as its frame is in,
/// until the peer ends the body (or it breaks, or a frame is malformed, or this node stops:
/// 503).
async fn replica(
    State(node): State<Node>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> StatusCode {
    if !authorized(&node, &headers, peer.as_ref()) {
        return StatusCode::UNAUTHORIZED;
    }
    let mut chunks = body.into_data_stream();
    let mut reader = frame::Reader::default();
    let stopped = node.streams_stopped();
    tokio::pin!(stopped);
    loop {
        let chunk = tokio::select! {
            () = &mut stopped => return StatusCode::SERVICE_UNAVAILABLE,
            c = chunks.next() => match c {
                Some(c) => c,
                None => break,
            },
        };
        let Ok(chunk) = chunk else {
            // The connection broke: nobody reads the answer.
            return StatusCode::BAD_REQUEST;
        };
        reader.push(&chunk);
        loop {
            match reader.next_envelope(msg::decode) {
                Ok(Some(env)) => {
                    if let Some(h) = node.shard(env.shard) {
                        // A full inbox drops the message, as a lossy network would.
                        let _ = h.deliver(env.from, env.msg);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "malformed replication stream; dropping it");
                    return StatusCode::BAD_REQUEST;
                }
            }
        }
    }
    if reader.is_clean() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::BAD_REQUEST
    }
}

async fn kv(
    State(node): State<Node>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&node, &headers, peer.as_ref()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let (req, trace) = match proto::decode_traced_request(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    count_rpc(&node, 1);
    let span = crate::trace::op_span(trace.as_ref(), &req);
    let resp = node.execute(req).instrument(span).await;
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (REVISION_HEADER, REVISION_VALUE),
        ],
        proto::encode_response(&resp),
    )
        .into_response()
}

async fn kv_batch(
    State(node): State<Node>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&node, &headers, peer.as_ref()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let requests = match proto::batch::decode_traced_requests(&body) {
        Ok(r) if r.len() <= proto::batch::MAX_BATCH => r,
        Ok(r) => {
            let why = format!(
                "{} operations in one batch; at most {}",
                r.len(),
                proto::batch::MAX_BATCH
            );
            return (StatusCode::BAD_REQUEST, why).into_response();
        }
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    count_rpc(&node, requests.len());
    let pending: FuturesUnordered<_> = (0u32..)
        .zip(requests)
        .map(|(index, (req, trace))| {
            let node = node.clone();
            let span = crate::trace::op_span(trace.as_ref(), &req);
            async move { (index, node.execute(req).instrument(span).await) }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (REVISION_HEADER, REVISION_VALUE),
        ],
        Body::from_stream(Answers { pending }),
    )
        .into_response()
}

fn count_rpc(node: &Node, operations: usize) {
    node.rpc_metrics().count(operations);
}

/// Counters of the client RPCs (gateways' operations) this node served.
#[derive(Debug, Default)]
pub(crate) struct RpcMetrics {
    /// Batches received (`POST /rpc/v1/kv/batch`) and single operations (`/rpc/v1/kv`).
    requests: Counter,
    /// Operations in them: operations per request is the gateways' batching factor.
    operations: Counter,
}

impl RpcMetrics {
    fn count(&self, operations: usize) {
        self.requests.inc();
        self.operations.inc_by(operations as u64);
    }

    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "tierkv_rpc_requests",
            "Client RPC requests served (a gateway's batch is one)",
            self.requests.clone(),
        );
        registry.register(
            "tierkv_rpc_operations",
            "Client operations in them (operations per request is the batching factor)",
            self.operations.clone(),
        );
    }
}

/// The answers of a batch as they complete: each chunk holds every answer that was ready
/// when the body was polled, so answers completing together leave in one HTTP/2 frame.
struct Answers<F> {
    pending: FuturesUnordered<F>,
}

impl<F> Stream for Answers<F>
where
    F: Future<Output = (u32, proto::Response)>,
{
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut out = BytesMut::new();
        let finished = loop {
            match self.pending.poll_next_unpin(cx) {
                Poll::Ready(Some((index, resp))) => {
                    proto::batch::put_answer(&mut out, index, &resp);
                }
                Poll::Ready(None) => break true,
                Poll::Pending => break false,
            }
        };
        if !out.is_empty() {
            Poll::Ready(Some(Ok(out.freeze())))
        } else if finished {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

/// 200 once this node takes full part in every shard it hosts: each knows a leader, and
/// each of its replicas holds every record its leader had committed (not catching up, not
/// rejoining after disk loss, not stopped by a WAL failure). The signal to wait for in a
/// rolling restart before stopping the next node: until then some shard may have fewer
/// complete replicas than it seems.
async fn ready(State(node): State<Node>) -> Response {
    let mut waiting = Vec::new();
    for h in node.shards() {
        let s = h.status();
        let why = if s.poisoned {
            "its WAL failed"
        } else if s.leader.is_none() {
            "no known leader"
        } else if s.rejoining {
            "rejoining after disk loss"
        } else if s.records_behind > 0 || h.shard().applied() < s.commit_seq {
            "catching up"
        } else {
            continue;
        };
        waiting.push(format!("shard {}: {why}", h.shard().id()));
    }
    if waiting.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, waiting.join("\n")).into_response()
    }
}

/// The name of a role on `/status` and in `/metrics` labels.
pub(crate) fn role_name(r: Role) -> &'static str {
    match r {
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Recovering => "recovering",
        Role::Leader => "leader",
    }
}

/// The name of a move phase on `/status` (design note 0009 §7).
pub(crate) fn phase_name(p: tierkv_engine::replica::ChangePhase) -> &'static str {
    use tierkv_engine::replica::ChangePhase;
    match p {
        ChangePhase::Done => "done",
        ChangePhase::Learning => "learning",
        ChangePhase::Joint => "joint",
        ChangePhase::Final => "final",
        ChangePhase::Releasing => "releasing",
    }
}

/// 401 for `/status` and `/metrics` without the secret.
fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"tierkv-node\"")],
    )
        .into_response()
}

async fn status(
    State(node): State<Node>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&node, &headers, peer.as_ref()) {
        return refused();
    }
    let map = node.map();
    let shards: Vec<serde_json::Value> = node
        .shards()
        .map(|h| {
            let s = h.status();
            let replicas: Vec<u32> = map.replicas(h.shard().id()).iter().map(|n| n.0).collect();
            serde_json::json!({
                "shard": h.shard().id().0,
                "replicas": replicas,
                "role": role_name(s.role),
                "epoch": s.epoch.0,
                "leader": s.leader.map(|n| n.0),
                "commit_seq": s.commit_seq.0,
                "last_seq": s.last_seq.0,
                "flushed_seq": s.flushed_seq.0,
                "applied_seq": h.shard().applied().0,
                "poisoned": s.poisoned,
                "rejoining": s.rejoining,
                "records_behind": s.records_behind,
                "voter": s.voter,
                "phase": phase_name(s.phase),
                "learners": h
                    .learner_progress()
                    .iter()
                    .map(|l| serde_json::json!({
                        "node": l.node.0,
                        "records_behind": l.records_behind,
                        "bytes_behind": l.bytes_behind,
                        "acked": l.acked,
                    }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let body = serde_json::json!({
        "node": node.id().0,
        "map_version": node.map().version(),
        "shards": shards,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn render_metrics(metrics: Arc<Registry>) -> Response {
    match encode_text(&metrics) {
        Ok(text) => ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding /metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    #[test]
    fn secrets_compare_exactly() {
        use super::secret_matches;
        assert!(secret_matches(b"s3cret", b"s3cret"));
        for wrong in [
            &b""[..],
            b"s3cre",
            b"s3cret ",
            b"s3cres",
            b"s3crets3cret",
            b"S3cret",
        ] {
            assert!(!secret_matches(wrong, b"s3cret"), "{wrong:?}");
        }
        assert!(!secret_matches(b"", b""), "no secret matches nothing");
    }

    use futures::StreamExt;
    use tokio::sync::oneshot;

    use super::*;
    use tierkv_wire::proto::RemoteError;
    use tierkv_wire::proto::Response as R;
    use tierkv_wire::proto::batch::AnswerReader;

    type Pending = Pin<Box<dyn Future<Output = (u32, R)> + Send>>;

    fn indexes(chunk: &Bytes) -> Vec<u32> {
        let mut reader = AnswerReader::default();
        reader.push(chunk);
        let mut out = Vec::new();
        while let Some((i, r)) = reader.next_answer().expect("framing") {
            r.expect("decodes");
            out.push(i);
        }
        assert!(reader.is_clean());
        out
    }

    /// A slow operation holds back no other answer, and answers ready together leave in one
    /// chunk.
    #[tokio::test]
    async fn answers_leave_as_they_complete() {
        let (release, slow) = oneshot::channel::<()>();
        let pending: FuturesUnordered<Pending> = FuturesUnordered::new();
        pending.push(Box::pin(async move {
            let _ = slow.await;
            (0, R::Got(None))
        }));
        pending.push(Box::pin(async { (1, R::Got(None)) }));
        pending.push(Box::pin(async { (2, R::Error(RemoteError::Closed)) }));
        let mut answers = Answers { pending };
        let first = answers.next().await.expect("a chunk").expect("infallible");
        let mut got = indexes(&first);
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        release.send(()).expect("slow operation waiting");
        let second = answers.next().await.expect("a chunk").expect("infallible");
        assert_eq!(indexes(&second), [0]);
        assert!(
            answers.next().await.is_none(),
            "the stream ends after the last answer"
        );
    }
}
