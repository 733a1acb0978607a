//! RPCs to nodes over HTTP/2, batched per node, and the classification of their failures by
//! whether the request may have been delivered (which decides whether a write may be
//! retried).
//!
//! Every operation for a node goes through that node's *pipe*: a task that takes everything
//! queued for the node when it runs and sends it as one `POST /rpc/v1/kv/batch`
//! ([`tierkv_wire::proto::batch`]), each batch on its own HTTP/2 stream, with no limit on batches
//! in flight. Before it takes a batch the pipe yields once to the scheduler, so operations
//! that other tasks are about to queue join it (up to 256 operations and 16 MiB): under load
//! one request carries several operations (one write and one read on each side instead of
//! one per operation, the main cost over loopback), while an operation on an idle gateway
//! leaves at once. Answers are streamed back in completion order and handed to their
//! callers one by one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio::sync::{mpsc, oneshot};

use super::{ClientMetrics, Shared};
use tierkv_wire::proto::batch::{AnswerReader, MAX_BATCH, encode_requests};
use tierkv_wire::proto::{
    REVISION_HEADER, REVISION_TRACE_CONTEXT, Response, TraceContext, encode_traced,
};
use tracing::Instrument as _;

/// Most request bytes in one batch (a node refuses bodies over 256 MiB); an operation larger
/// than this goes alone.
const MAX_BATCH_BYTES: usize = 16 << 20;

/// Why one RPC produced no answer.
#[derive(Debug, Clone)]
pub(super) enum RpcFailure {
    /// The request surely did not reach the node (no connection).
    NotSent(String),
    /// The node refused the request at the HTTP level (4xx; 401 is a wrong secret).
    Rejected(StatusCode),
    /// The request may have been delivered, but no usable answer came back.
    MaybeDelivered(String),
}

/// Error text with its sources, for logs.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// One operation waiting in a pipe: its encoded request, the wire revision that introduced
/// its kind, and where its answer goes.
pub(super) struct Call {
    body: Bytes,
    revision: u16,
    reply: oneshot::Sender<Result<Response, RpcFailure>>,
}

/// The queue of a node's pipe, and the wire revision the node last announced (design note
/// 0008; 1 until it has answered, and for nodes that announce none).
#[derive(Debug, Clone)]
pub(super) struct PipeTx {
    tx: mpsc::UnboundedSender<Call>,
    revision: Arc<AtomicU16>,
}

impl PipeTx {
    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl Shared {
    /// The pipe to the node at `addr`, started on first use.
    fn pipe(&self, addr: &str) -> Result<PipeTx, RpcFailure> {
        if let Some(tx) = self.pipes.read().get(addr).filter(|tx| !tx.is_closed()) {
            return Ok(tx.clone());
        }
        let scheme = self.opts.tls.scheme();
        let url = reqwest::Url::parse(&format!(
            "{scheme}://{addr}{}",
            tierkv_wire::paths::KV_BATCH
        ))
        .map_err(|e| RpcFailure::NotSent(format!("bad node address {addr:?}: {e}")))?;
        let mut pipes = self.pipes.write();
        if let Some(tx) = pipes.get(addr).filter(|tx| !tx.is_closed()) {
            return Ok(tx.clone());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let revision = Arc::new(AtomicU16::new(1));
        let pipe = Pipe {
            http: self.http.clone(),
            auth: self.auth.clone(),
            url,
            stats: Arc::clone(&self.stats),
            revision: Arc::clone(&revision),
        };
        tokio::spawn(pipe.run(rx));
        let entry = PipeTx { tx, revision };
        pipes.insert(addr.to_owned(), entry.clone());
        Ok(entry)
    }

    /// The wire revision the node at `addr` last announced (1 before it answered anything).
    pub(super) fn revision(&self, addr: &str) -> u16 {
        self.pipes
            .read()
            .get(addr)
            .map_or(1, |p| p.revision.load(Ordering::Relaxed))
    }

    /// One RPC to the node at `addr` (`body` is one [`tierkv_wire::proto::encode_request`]
    /// of a kind introduced in wire `revision`).
    pub(super) async fn send(
        &self,
        addr: &str,
        body: Bytes,
        revision: u16,
    ) -> Result<Response, RpcFailure> {
        if !crate::trace::current_is_traced() {
            return self.send_untraced(addr, body, revision).await;
        }
        let span = tracing::info_span!(
            "node_rpc",
            node = addr,
            kind = body.get(6).copied().unwrap_or(0),
            otel.kind = "client",
        );
        let (body, revision) = with_context(
            crate::trace::context_of(&span),
            self.revision(addr),
            body,
            revision,
        );
        self.send_untraced(addr, body, revision)
            .instrument(span)
            .await
    }

    /// [`Shared::send`] without a span of its own.
    async fn send_untraced(
        &self,
        addr: &str,
        body: Bytes,
        revision: u16,
    ) -> Result<Response, RpcFailure> {
        let (reply, answer) = oneshot::channel();
        self.pipe(addr)?
            .tx
            .send(Call {
                body,
                revision,
                reply,
            })
            .map_err(|_| RpcFailure::NotSent("the node's pipe has stopped".to_owned()))?;
        answer.await.unwrap_or_else(|_| {
            Err(RpcFailure::MaybeDelivered(
                "the node's pipe stopped with the request in flight".to_owned(),
            ))
        })
    }
}

/// An operation's envelope as sent to a node of wire revision `node_revision`: wrapped in
/// `Traced` with its span's context `ctx` (each operation its own parent, also inside a
/// batch: design note 0011) when there is one and the node announced revision 4; else as it
/// is. Returns the body and the revision that introduced its kind.
fn with_context(
    ctx: Option<TraceContext>,
    node_revision: u16,
    body: Bytes,
    revision: u16,
) -> (Bytes, u16) {
    match ctx {
        Some(ctx) if node_revision >= REVISION_TRACE_CONTEXT => (
            encode_traced(&ctx, &body),
            revision.max(REVISION_TRACE_CONTEXT),
        ),
        _ => (body, revision),
    }
}

/// The sending side of one node's pipe. The task stops when every queue handle is gone
/// (the [`Shared`] that owns them was dropped); batches in flight finish on their own.
struct Pipe {
    http: reqwest::Client,
    auth: HeaderValue,
    url: reqwest::Url,
    stats: Arc<ClientMetrics>,
    /// The revision the node announced in its last answer.
    revision: Arc<AtomicU16>,
}

impl Pipe {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<Call>) {
        let pipe = Arc::new(self);
        while let Some(first) = queue.recv().await {
            // Let the tasks that are ready now queue their operations first.
            tokio::task::yield_now().await;
            let mut bytes = first.body.len();
            let mut calls = vec![first];
            let mut next = None;
            while calls.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match queue.try_recv() {
                    Ok(c) if bytes + c.body.len() > MAX_BATCH_BYTES => {
                        next = Some(c);
                        break;
                    }
                    Ok(c) => {
                        bytes += c.body.len();
                        calls.push(c);
                    }
                    Err(_) => break,
                }
            }
            tokio::spawn(Arc::clone(&pipe).post(calls));
            // An operation that did not fit starts the next batch at once.
            if let Some(c) = next {
                tokio::spawn(Arc::clone(&pipe).post(vec![c]));
            }
        }
    }

    /// Sends one batch and answers each of its calls.
    async fn post(self: Arc<Self>, calls: Vec<Call>) {
        let bodies: Vec<Bytes> = calls.iter().map(|c| c.body.clone()).collect();
        let newest = calls.iter().map(|c| c.revision).max().unwrap_or(1);
        self.stats.requests.inc();
        self.stats.operations.inc_by(bodies.len() as u64);
        let mut waiting: Vec<_> = calls.into_iter().map(|c| Some(c.reply)).collect();
        let failure = match self.exchange(encode_requests(&bodies), &mut waiting).await {
            Ok(()) => {
                RpcFailure::MaybeDelivered("the node's answers ended without this one".to_owned())
            }
            Err(RpcFailure::Rejected(StatusCode::BAD_REQUEST)) if newest > 1 => {
                // A node of an older revision refuses a batch holding a kind it does not
                // know, before running any of it (design note 0008): nothing was applied.
                // Send it older kinds only from now on; every operation may be retried.
                self.revision.store(1, Ordering::Relaxed);
                RpcFailure::NotSent(
                    "the node refused an operation of a newer wire revision".to_owned(),
                )
            }
            Err(f) => f,
        };
        for reply in waiting.into_iter().flatten() {
            let _ = reply.send(Err(failure.clone()));
        }
    }

    /// Posts `body` and hands each answer to its waiter (taking it out of `waiting`); what is
    /// left in `waiting` afterwards got no answer.
    async fn exchange(
        &self,
        body: Bytes,
        waiting: &mut [Option<oneshot::Sender<Result<Response, RpcFailure>>>],
    ) -> Result<(), RpcFailure> {
        let mut resp = self
            .http
            .post(self.url.clone())
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
        let revision = resp
            .headers()
            .get(REVISION_HEADER)
            .and_then(|v| v.to_str().ok()?.parse::<u16>().ok())
            .unwrap_or(1);
        self.revision.store(revision, Ordering::Relaxed);
        if status.is_client_error() {
            return Err(RpcFailure::Rejected(status));
        }
        if status != StatusCode::OK {
            return Err(RpcFailure::MaybeDelivered(format!("HTTP {status}")));
        }
        let mut reader = AnswerReader::default();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| RpcFailure::MaybeDelivered(chain(&e)))?
        {
            reader.push(&chunk);
            while let Some((index, answer)) = reader
                .next_answer()
                .map_err(|e| RpcFailure::MaybeDelivered(format!("unreadable answer stream: {e}")))?
            {
                let slot = usize::try_from(index)
                    .ok()
                    .and_then(|i| waiting.get_mut(i))
                    .and_then(Option::take);
                let Some(reply) = slot else {
                    return Err(RpcFailure::MaybeDelivered(format!(
                        "answer to unknown or already answered operation {index}"
                    )));
                };
                let answer = answer
                    .map_err(|e| RpcFailure::MaybeDelivered(format!("unreadable answer: {e}")));
                // The caller may have gone away (its client disconnected): nothing to do.
                let _ = reply.send(answer);
            }
        }
        if reader.is_clean() {
            Ok(())
        } else {
            Err(RpcFailure::MaybeDelivered(
                "the answer stream was cut inside an answer".to_owned(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierkv_wire::proto::{Request, decode_traced_request, encode_request};

    fn ctx() -> TraceContext {
        TraceContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            flags: 1,
        }
    }

    /// Nodes that have not announced revision 4 (older versions, or none heard from yet)
    /// get operations as before; newer ones get each with its own context.
    #[test]
    fn operations_carry_their_context_only_to_nodes_that_know_it() {
        let body = encode_request(&Request::Status);
        for old in [1, 2, 3] {
            assert_eq!(
                with_context(Some(ctx()), old, body.clone(), 1),
                (body.clone(), 1)
            );
        }
        assert_eq!(with_context(None, 4, body.clone(), 2), (body.clone(), 2));
        let (wrapped, revision) = with_context(Some(ctx()), 4, body, 1);
        assert_eq!(revision, REVISION_TRACE_CONTEXT);
        assert_eq!(
            decode_traced_request(&wrapped),
            Ok((Request::Status, Some(ctx())))
        );
    }
}
