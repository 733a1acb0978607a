//! Replication messages between nodes: best-effort, batched, streamed over HTTP/2.
//!
//! [`Transport::send`] encodes a message ([`tierkv_engine::replica::msg`]) and queues it for
//! its peer without waiting; a full queue drops it (the protocol tolerates loss: leaders
//! resend on the next heartbeat, candidates retry). One sender task per peer keeps one
//! long-lived `POST /rpc/v1/replica` open to the peer and writes into its body: each time it
//! runs it takes everything queued (up to [`MAX_BATCH`] messages, after yielding once so that
//! tasks about to queue join in) and writes it as one chunk. A message thus leaves as soon
//! as the sender task runs (no request round trip to wait for, no per-batch HTTP request),
//! and messages to a peer keep their order for as long as the stream lives. When the stream
//! fails (the peer is down, restarted, or unreachable: HTTP/2 keep-alive pings notice a
//! silent peer, half-open connections included, within the lease) the task opens a new one
//! after a backoff; what was in flight is lost. While
//! the peer does not read (paused, or slower than the sender), chunks that do not fit in the
//! stream's buffer are dropped rather than queued without bound.
//!
//! # Body of `POST /rpc/v1/replica`
//!
//! Frames ([`tierkv_wire::frame`]: a u32 little-endian length, then that many bytes), each
//! holding one message envelope ([`tierkv_engine::replica::msg`], with its own crc), for as
//! long as the sender keeps the request open. The receiver delivers each message as soon as
//! its frame is complete.
//!
//! Requests go to `http://<addr>`, or `https://<addr>` over TLS verified against the cluster
//! CA (with this node's client certificate, which the peer accepts in place of the secret)
//! when `[cluster.tls]` is set (design note 0013). They carry
//! `authorization: Bearer <cluster secret>`; the answer, once the body ends,
//! is 204; 400 for a malformed frame (the receiver stops reading there), 401 for a wrong
//! secret, 503 when the receiving node stops (it ends every incoming stream first, so that
//! its graceful shutdown does not wait for its peers).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::RwLock;
use tierkv_engine::metrics::{Counter, Registry};
use tierkv_engine::replica::msg;
use tierkv_engine::replica::{Msg, NodeId};
use tierkv_engine::types::ShardId;
use tierkv_tls::TlsFigures;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use tierkv_wire::frame;
use tierkv_wire::peer_addresses::PeerAddresses;

/// Path of the replication endpoint.
pub(crate) use tierkv_wire::paths::REPLICA as REPLICA_PATH;
/// Most messages in one chunk of a stream.
pub(crate) const MAX_BATCH: usize = 512;
/// Chunks buffered for a stream that its peer has not read yet; more are dropped.
const STREAM_CHUNKS: usize = 256;
/// Messages queued per peer before new ones are dropped.
const QUEUE: usize = 8192;

/// Counters of the transport (`tierkv_replication_*` on the node's `/metrics`).
#[derive(Debug, Default)]
pub struct TransportMetrics {
    /// Messages written to a peer's stream.
    pub sent: Counter,
    /// Chunks written (`sent / batches` is the batching factor).
    pub batches: Counter,
    /// Messages dropped: a peer's queue or stream buffer was full, or the peer is unknown.
    pub dropped: Counter,
    /// Streams that ended or could not be opened (what was in flight on them is lost).
    pub failed_streams: Counter,
}

impl TransportMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "tierkv_replication_messages_sent",
            "Replication messages posted to peers",
            self.sent.clone(),
        );
        registry.register(
            "tierkv_replication_batches",
            "Chunks written to replication streams (messages per chunk is the batching factor)",
            self.batches.clone(),
        );
        registry.register(
            "tierkv_replication_messages_dropped",
            "Replication messages dropped (queue or stream buffer full, or peer unknown)",
            self.dropped.clone(),
        );
        registry.register(
            "tierkv_replication_streams_failed",
            "Replication streams that failed or could not be opened (their messages in flight are lost)",
            self.failed_streams.clone(),
        );
    }
}

struct Peer {
    tx: mpsc::Sender<Bytes>,
    addr: Arc<ArcSwap<String>>,
    /// Streams to it that failed or ended.
    breaks: Arc<AtomicU64>,
}

/// The endpoint URL of a peer address (`scheme`: `http`, or `https` with `[cluster.tls]`).
fn endpoint(scheme: &str, addr: &str) -> Option<reqwest::Url> {
    reqwest::Url::parse(&format!("{scheme}://{addr}{REPLICA_PATH}")).ok()
}

/// The node's outbound replication links.
pub struct Transport {
    me: NodeId,
    secret: Arc<str>,
    client: reqwest::Client,
    /// URL scheme of peers: `http`, or `https` when the client speaks TLS to them.
    scheme: &'static str,
    peers: RwLock<HashMap<NodeId, Peer>>,
    /// `cluster.peer_addresses`: where to dial a member instead of its map address.
    overrides: RwLock<PeerAddresses>,
    stats: Arc<TransportMetrics>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("me", &self.me)
            .field("peers", &self.peers.read().len())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport for node `me`; sender tasks stop when `cancel` fires.
    pub fn new(
        me: NodeId,
        secret: &str,
        client: reqwest::Client,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            me,
            secret: Arc::from(secret),
            client,
            scheme: "http",
            peers: RwLock::new(HashMap::new()),
            overrides: RwLock::new(PeerAddresses::default()),
            stats: Arc::new(TransportMetrics::default()),
            cancel,
        }
    }

    /// Reaches peers as `scheme://addr` (`https` when `client` was built with the cluster's
    /// TLS: design note 0013). Default: `http`.
    #[must_use]
    pub fn with_scheme(mut self, scheme: &'static str) -> Self {
        self.scheme = scheme;
        self
    }

    /// Registers the transport's counters into `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.stats.register(registry);
    }

    /// Dials the members `overrides` lists at its addresses instead of their map addresses
    /// (`cluster.peer_addresses`); takes effect at the next [`Self::set_peers`].
    pub fn set_address_overrides(&self, overrides: PeerAddresses) {
        *self.overrides.write() = overrides;
    }

    /// Makes sure there is a link to each `(id, addr)` (except this node) with that address
    /// (or its override).
    pub fn set_peers<'a>(&self, members: impl IntoIterator<Item = (NodeId, &'a str)>) {
        let overrides = self.overrides.read();
        let mut peers = self.peers.write();
        for (id, addr) in members {
            if id == self.me {
                continue;
            }
            let addr = overrides.resolve(id, addr);
            if let Some(p) = peers.get(&id) {
                if p.addr.load().as_str() != addr {
                    p.addr.store(Arc::new(addr.to_owned()));
                }
                continue;
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            let addr = Arc::new(ArcSwap::from_pointee(addr.to_owned()));
            let breaks = Arc::new(AtomicU64::new(0));
            let link = Link {
                to: id,
                addr: Arc::clone(&addr),
                secret: Arc::clone(&self.secret),
                client: self.client.clone(),
                scheme: self.scheme,
                stats: Arc::clone(&self.stats),
                breaks: Arc::clone(&breaks),
            };
            tokio::spawn(link.run(rx, self.cancel.child_token()));
            peers.insert(id, Peer { tx, addr, breaks });
        }
    }

    /// How many streams to `peer` failed or ended so far: it changes when the peer stopped
    /// or restarted (a process restart always breaks the connection) or the network failed.
    #[must_use]
    pub fn stream_breaks(&self, peer: NodeId) -> u64 {
        self.peers
            .read()
            .get(&peer)
            .map_or(0, |p| p.breaks.load(Ordering::Relaxed))
    }

    /// Queues `msg` about `shard` for `to` (never waits; dropped if the queue is full).
    pub fn send(&self, to: NodeId, shard: ShardId, msg: &Msg) {
        let bytes = msg::encode(shard, self.me, msg);
        let queued = self
            .peers
            .read()
            .get(&to)
            .is_some_and(|p| p.tx.try_send(bytes).is_ok());
        if !queued {
            self.stats.dropped.inc();
        }
    }
}

/// The sender task of one peer.
struct Link {
    to: NodeId,
    addr: Arc<ArcSwap<String>>,
    secret: Arc<str>,
    client: reqwest::Client,
    scheme: &'static str,
    stats: Arc<TransportMetrics>,
    breaks: Arc<AtomicU64>,
}

/// Why a stream was given up.
enum Ended {
    /// The transport is stopping.
    Stop,
    /// The stream failed or ended; open another after a backoff.
    Failed,
    /// The peer's address changed; open another at once.
    Moved,
}

impl Link {
    async fn run(self, mut rx: mpsc::Receiver<Bytes>, cancel: CancellationToken) {
        let mut backoff = Duration::ZERO;
        loop {
            match self.stream(&mut rx, &cancel).await {
                Ended::Stop => return,
                Ended::Moved => continue,
                Ended::Failed => {}
            }
            self.stats.failed_streams.inc();
            self.breaks.fetch_add(1, Ordering::Relaxed);
            // A peer that is down: do not spin; messages queued meanwhile are mostly
            // heartbeats that the next ones supersede.
            backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_millis(200));
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
        }
    }

    /// Opens one stream to the peer and feeds it until it ends.
    async fn stream(&self, rx: &mut mpsc::Receiver<Bytes>, cancel: &CancellationToken) -> Ended {
        let addr = self.addr.load_full();
        let Some(url) = endpoint(self.scheme, &addr) else {
            tracing::warn!(to = %self.to, addr = %addr, "peer address is not a valid host:port");
            return Ended::Failed;
        };
        let (chunks, body) = mpsc::channel::<Bytes>(STREAM_CHUNKS);
        let body = futures::stream::unfold(body, |mut body| async move {
            body.recv()
                .await
                .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), body))
        });
        let request = self
            .client
            .post(url)
            .bearer_auth(&*self.secret)
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(body));
        let mut call = tokio::spawn(request.send());
        let stopped = cancel.cancelled();
        tokio::pin!(stopped);
        let ended = loop {
            let first = tokio::select! {
                () = &mut stopped => break Ended::Stop,
                answer = &mut call => {
                    match answer {
                        Ok(Ok(r)) => tracing::debug!(to = %self.to, status = %r.status(), "replication stream ended"),
                        Ok(Err(e)) => tracing::debug!(to = %self.to, error = %e, "replication stream failed"),
                        Err(e) => tracing::debug!(to = %self.to, error = %e, "replication stream task failed"),
                    }
                    return Ended::Failed;
                }
                m = rx.recv() => match m {
                    Some(m) => m,
                    None => break Ended::Stop,
                },
            };
            // Let the tasks that are ready now queue their messages first: under load, more
            // messages share a chunk.
            tokio::task::yield_now().await;
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let n = batch.len() as u64;
            match chunks.try_send(frame::encode(&batch)) {
                Ok(()) => {
                    self.stats.sent.inc_by(n);
                    self.stats.batches.inc();
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.stats.dropped.inc_by(n);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.stats.dropped.inc_by(n);
                    break Ended::Failed;
                }
            }
            if !Arc::ptr_eq(&addr, &self.addr.load()) {
                break Ended::Moved;
            }
        };
        call.abort();
        ended
    }
}

/// The HTTP/2 client of node-to-node replication streams: no overall timeout (a stream
/// lives as long as its connection), keep-alive pings to notice a silent peer (a crashed
/// host, a half-open connection) within three quarters of the lease
/// ([`crate::settings::ClusterSettings::keep_alive`]; 1.5 s by default); over TLS verified against the
/// cluster CA when `cluster.tls` says so (design note 0013). A builder failure is a start-up
/// error: falling back to a default client would silently drop TLS and HTTP/2. With TLS, the
/// figures of its reloads come along.
pub(crate) fn rpc_client(
    cluster: &crate::settings::ClusterSettings,
) -> Result<(reqwest::Client, Option<Arc<TlsFigures>>), crate::settings::SettingsError> {
    let (ping_every, ping_timeout) = cluster.keep_alive();
    let (builder, figures) = match tierkv_tls::client_config(&cluster.tls)? {
        Some(t) => (
            reqwest::Client::builder().tls_backend_preconfigured(t.config),
            Some(t.figures),
        ),
        None => (reqwest::Client::builder(), None),
    };
    let client = builder
        .http2_prior_knowledge()
        .connect_timeout(Duration::from_millis(500))
        .http2_keep_alive_interval(ping_every)
        .http2_keep_alive_timeout(ping_timeout)
        .http2_keep_alive_while_idle(true)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| crate::settings::SettingsError::RpcClient {
            // A default client instead would drop the cluster's TLS and HTTP/2 settings.
            message: e.to_string(),
        })?;
    Ok((client, figures))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierkv_engine::replica::msg::Envelope;
    use tierkv_engine::types::{Epoch, SeqNo};
    use tierkv_wire::frame::FrameError;

    /// Every message of a stream, read from `chunks` in turn.
    fn read_all(chunks: &[&[u8]]) -> (Result<Vec<Envelope>, FrameError>, bool) {
        let mut reader = frame::Reader::default();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.push(chunk);
            loop {
                match reader.next_envelope(msg::decode) {
                    Ok(Some(m)) => out.push(m),
                    Ok(None) => break,
                    Err(e) => return (Err(e), false),
                }
            }
        }
        let clean = reader.is_clean();
        (Ok(out), clean)
    }

    #[test]
    fn streams_round_trip_across_any_chunking_and_reject_damage() {
        let a = msg::encode(
            ShardId(3),
            NodeId(1),
            &Msg::Promise {
                epoch: Epoch(7),
                handover_of: None,
            },
        );
        let b = msg::encode(
            ShardId(4),
            NodeId(1),
            &Msg::Gap {
                epoch: Epoch(7),
                last_seq: SeqNo(9),
            },
        );
        let first_len = 4 + a.len();
        let body = frame::encode(&[a, b]);
        for cut in 0..=body.len() {
            let (got, clean) = read_all(&[&body[..cut], &body[cut..]]);
            let got = got.expect("decodes");
            assert!(clean, "cut at {cut}");
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].shard, ShardId(3));
            assert_eq!(
                got[1].msg,
                Msg::Gap {
                    epoch: Epoch(7),
                    last_seq: SeqNo(9)
                }
            );
            // Only a prefix has arrived: whole frames are read, the rest waits.
            let (got, clean) = read_all(&[&body[..cut]]);
            let whole = usize::from(cut >= first_len) + usize::from(cut == body.len());
            assert_eq!(got.expect("a prefix is not an error").len(), whole);
            assert_eq!(clean, cut == 0 || cut == first_len || cut == body.len());
        }
        let mut flipped = body.to_vec();
        flipped[10] ^= 0x40;
        assert!(read_all(&[&flipped]).0.is_err());
        let huge = u32::try_from(frame::MAX_FRAME + 1)
            .expect("fits")
            .to_le_bytes();
        assert!(read_all(&[&huge]).0.is_err());
    }
}
