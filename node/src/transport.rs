//! Replication messages between nodes: best-effort, batched, over HTTP/2.
//!
//! [`Transport::send`] encodes a message ([`tierkv_engine::replica::msg`]) and queues it for
//! its peer without waiting; a full queue drops it (the protocol tolerates loss: leaders
//! resend on the next heartbeat, candidates retry). One sender task per peer takes everything
//! queued (up to [`MAX_BATCH`] messages) and posts it as one request, one request in flight
//! per peer, so messages to a peer keep their order in the common case and a busy link
//! batches itself. A failed post drops its batch and backs off before the next.
//!
//! # Body of `POST /rpc/v1/replica`
//!
//! Frames ([`crate::frame`]: a u32 little-endian length, then that many bytes) until the end
//! of the body, each holding one message envelope ([`tierkv_engine::replica::msg`], with its
//! own crc).
//!
//! Requests carry `authorization: Bearer <cluster secret>`; the answer is 204 (accepted for
//! delivery; nothing is promised about processing), 400 for a malformed body, 401 for a
//! wrong secret.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::RwLock;
use tierkv_engine::replica::msg::{self, Envelope};
use tierkv_engine::replica::{Msg, NodeId};
use tierkv_engine::types::ShardId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::frame;
pub use crate::frame::{FrameError, MAX_FRAME};

/// Path of the replication endpoint.
pub const REPLICA_PATH: &str = "/rpc/v1/replica";
/// Most messages in one request.
pub const MAX_BATCH: usize = 512;
/// Messages queued per peer before new ones are dropped.
const QUEUE: usize = 8192;

/// Counters of the transport.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Messages posted.
    pub sent: AtomicU64,
    /// Successful posts (`sent / posts` is the batching factor).
    pub posts: AtomicU64,
    /// Messages dropped because a peer's queue was full or unknown.
    pub dropped: AtomicU64,
    /// Posts that failed (their messages are lost).
    pub failed_posts: AtomicU64,
}

struct Peer {
    tx: mpsc::Sender<Bytes>,
    addr: Arc<ArcSwap<String>>,
}

/// The endpoint URL of a peer address (parsed once per address, not per post).
fn endpoint(addr: &str) -> Option<reqwest::Url> {
    reqwest::Url::parse(&format!("http://{addr}{REPLICA_PATH}")).ok()
}

/// The node's outbound replication links.
pub struct Transport {
    me: NodeId,
    secret: Arc<str>,
    client: reqwest::Client,
    peers: RwLock<HashMap<NodeId, Peer>>,
    stats: Arc<TransportStats>,
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
            peers: RwLock::new(HashMap::new()),
            stats: Arc::new(TransportStats::default()),
            cancel,
        }
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &TransportStats {
        &self.stats
    }

    /// Makes sure there is a link to each `(id, addr)` (except this node) with that address.
    pub fn set_peers<'a>(&self, members: impl IntoIterator<Item = (NodeId, &'a str)>) {
        let mut peers = self.peers.write();
        for (id, addr) in members {
            if id == self.me {
                continue;
            }
            if let Some(p) = peers.get(&id) {
                if p.addr.load().as_str() != addr {
                    p.addr.store(Arc::new(addr.to_owned()));
                }
                continue;
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            let addr = Arc::new(ArcSwap::from_pointee(addr.to_owned()));
            let link = Link {
                to: id,
                addr: Arc::clone(&addr),
                secret: Arc::clone(&self.secret),
                client: self.client.clone(),
                stats: Arc::clone(&self.stats),
            };
            tokio::spawn(link.run(rx, self.cancel.child_token()));
            peers.insert(id, Peer { tx, addr });
        }
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
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The sender task of one peer.
struct Link {
    to: NodeId,
    addr: Arc<ArcSwap<String>>,
    secret: Arc<str>,
    client: reqwest::Client,
    stats: Arc<TransportStats>,
}

impl Link {
    async fn run(self, mut rx: mpsc::Receiver<Bytes>, cancel: CancellationToken) {
        let mut backoff = Duration::ZERO;
        let mut url: Option<(Arc<String>, reqwest::Url)> = None;
        loop {
            let first = tokio::select! {
                () = cancel.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => m,
                    None => return,
                },
            };
            // Let the tasks that are ready now queue their messages first (as the gateway's
            // pipes do): under load, more messages share a post.
            tokio::task::yield_now().await;
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let n = batch.len() as u64;
            let body = encode_frames(&batch);
            let addr = self.addr.load_full();
            if url.as_ref().is_none_or(|(a, _)| !Arc::ptr_eq(a, &addr)) {
                url = endpoint(&addr).map(|u| (Arc::clone(&addr), u));
            }
            let Some((_, target)) = &url else {
                tracing::warn!(to = %self.to, addr = %addr, "peer address is not a valid host:port");
                self.stats.failed_posts.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let sent = self
                .client
                .post(target.clone())
                .bearer_auth(&*self.secret)
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    self.stats.sent.fetch_add(n, Ordering::Relaxed);
                    self.stats.posts.fetch_add(1, Ordering::Relaxed);
                    backoff = Duration::ZERO;
                    continue;
                }
                Ok(r) => {
                    tracing::debug!(to = %self.to, status = %r.status(), "replication post refused");
                }
                Err(e) => tracing::debug!(to = %self.to, error = %e, "replication post failed"),
            }
            self.stats.failed_posts.fetch_add(1, Ordering::Relaxed);
            // A peer that is down: do not spin; messages queued meanwhile are mostly
            // heartbeats that the next ones supersede.
            backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_millis(200));
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
        }
    }
}

/// Frames `envelopes` into one request body.
#[must_use]
pub fn encode_frames(envelopes: &[Bytes]) -> Bytes {
    frame::encode(envelopes)
}

/// Decodes a request body into envelopes; never panics.
pub fn decode_frames(body: &Bytes) -> Result<Vec<Envelope>, FrameError> {
    frame::decode_all(body, msg::decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierkv_engine::types::{Epoch, SeqNo};

    #[test]
    fn frames_round_trip_and_reject_damage() {
        let a = msg::encode(ShardId(3), NodeId(1), &Msg::Promise { epoch: Epoch(7) });
        let b = msg::encode(
            ShardId(4),
            NodeId(1),
            &Msg::Gap {
                epoch: Epoch(7),
                last_seq: SeqNo(9),
            },
        );
        let first_len = 4 + a.len();
        let body = encode_frames(&[a, b]);
        let got = decode_frames(&body).expect("decodes");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].shard, ShardId(3));
        assert_eq!(
            got[1].msg,
            Msg::Gap {
                epoch: Epoch(7),
                last_seq: SeqNo(9)
            }
        );
        for cut in 1..body.len() {
            let got = decode_frames(&body.slice(..cut));
            if cut == first_len {
                // A cut between frames is a shorter, valid body.
                assert_eq!(got.expect("one whole frame").len(), 1);
            } else {
                assert!(got.is_err(), "cut at {cut}");
            }
        }
        let mut flipped = body.to_vec();
        flipped[10] ^= 0x40;
        assert!(decode_frames(&Bytes::from(flipped)).is_err());
        assert!(decode_frames(&Bytes::new()).expect("empty body").is_empty());
    }
}
