//! `ClusterBackend` against fake nodes on 127.0.0.1 that speak the real wire contract
//! (HTTP/2 cleartext, bearer secret, `proto` bodies), with shard maps in a `memory://` store.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Version, header};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::serve::ListenerExt as _;
use bytes::Bytes;
use parking_lot::Mutex;
use tierkv_engine::metrics::{Registry, encode_text};
use tierkv_engine::replica::{LeaseMark, NodeId};
use tierkv_engine::shard::ScanPage;
use tierkv_engine::store::{ObjStore, StoreOptions};
use tierkv_engine::types::{Entry, EntryKind, Epoch, ReadConsistency, SeqNo, ShardId, WriteBatch};
use tierkv_gateway::Backend;
use tierkv_gateway::backend::{BackendError, Lease, NotReady, Revalidated};
use tierkv_gateway::cluster::{ClientOptions, ClusterBackend, ConnectError, RPC_PATH};
use tierkv_wire::proto::{
    self, NodeStatus, RemoteError, ReplicaRole, Request, Response, ShardStatus,
};
use tierkv_wire::shardmap::{self, DEFAULT_VNODES, Member, ShardMap};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const SECRET: &str = "test-secret";
const SHARDS: u32 = 8;

type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A fake node: what it received, and where it listens.
struct FakeNode {
    id: NodeId,
    addr: String,
    seen: Arc<Mutex<Vec<Request>>>,
    /// HTTP requests served (each a batch of operations).
    posts: Arc<AtomicUsize>,
}

impl FakeNode {
    fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }
    fn count(&self, f: impl Fn(&Request) -> bool) -> usize {
        self.seen.lock().iter().filter(|r| f(r)).count()
    }
    fn writes(&self) -> usize {
        self.count(|r| matches!(r, Request::Write { .. }))
    }
    fn gets(&self, c: ReadConsistency) -> usize {
        self.count(|r| matches!(r, Request::Get { consistency, .. } if *consistency == c))
    }
}

#[derive(Clone)]
struct NodeState {
    handler: Handler,
    seen: Arc<Mutex<Vec<Request>>>,
    posts: Arc<AtomicUsize>,
    /// The wire revision it announces; 0: none, and it refuses batches holding kinds newer
    /// than revision 1 with 400, as a node of an older version does (design note 0008).
    revision: Arc<AtomicU16>,
}

/// Serves `/rpc/v1/kv/batch` like a node: checks HTTP/2, the secret and the content type, decodes
/// with the real proto, records the request and answers with `handler`.
async fn serve_rpc(
    State(st): State<NodeState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let revision = st.revision.load(Ordering::SeqCst);
    let mut res = serve_batch(st, req, revision).await.into_response();
    if revision > 0 {
        res.headers_mut()
            .insert(proto::REVISION_HEADER, header::HeaderValue::from(revision));
    }
    res
}

async fn serve_batch(
    st: NodeState,
    req: axum::extract::Request,
    revision: u16,
) -> impl IntoResponse {
    if req.version() != Version::HTTP_2 {
        return (StatusCode::HTTP_VERSION_NOT_SUPPORTED, Bytes::new());
    }
    let bearer = format!("Bearer {SECRET}");
    if req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        != Some(bearer.as_bytes())
    {
        return (StatusCode::UNAUTHORIZED, Bytes::new());
    }
    if req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.as_bytes())
        != Some(b"application/octet-stream".as_slice())
    {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Bytes::new());
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), 64 << 20).await else {
        return (StatusCode::BAD_REQUEST, Bytes::new());
    };
    let Ok(requests) = proto::batch::decode_requests(&body) else {
        return (StatusCode::BAD_REQUEST, Bytes::new());
    };
    if revision == 0 && requests.iter().any(|r| r.revision() > 1) {
        // An older node cannot decode the kind: it refuses the whole batch.
        return (StatusCode::BAD_REQUEST, Bytes::new());
    }
    st.posts.fetch_add(1, Ordering::SeqCst);
    // Answers in reverse order: the client must match them by index, not by position.
    let mut answers = bytes::BytesMut::new();
    for (index, request) in requests.iter().enumerate().rev() {
        st.seen.lock().push(request.clone());
        let index = u32::try_from(index).expect("small batch");
        proto::batch::put_answer(&mut answers, index, &(st.handler)(request));
    }
    (StatusCode::OK, answers.freeze())
}

async fn fake_node(
    id: u32,
    handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
) -> FakeNode {
    fake_node_with(id, Arc::new(AtomicU16::new(0)), handler).await
}

/// A fake node announcing wire `revision` (0: none; it can change while the node runs).
async fn fake_node_with(
    id: u32,
    revision: Arc<AtomicU16>,
    handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
) -> FakeNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let posts = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(RPC_PATH, post(serve_rpc))
        .with_state(NodeState {
            handler: Arc::new(handler),
            seen: Arc::clone(&seen),
            posts: Arc::clone(&posts),
            revision,
        });
    tokio::spawn(async move { axum::serve(listener.tap_io(tierkv_wire::set_nodelay), app).await });
    FakeNode {
        id: NodeId(id),
        addr,
        seen,
        posts,
    }
}

/// Answers `Status` for node `id` (map version 1, no shards) and everything else with `f`.
fn node(
    id: u32,
    f: impl Fn(&Request) -> Response + Send + Sync + 'static,
) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
    move |r| match r {
        Request::Status => Response::Status(NodeStatus {
            node: NodeId(id),
            map_version: 1,
            shards: Vec::new(),
        }),
        other => f(other),
    }
}

fn shard_of(r: &Request) -> ShardId {
    match r {
        Request::Get { shard, .. }
        | Request::Write { shard, .. }
        | Request::Scan { shard, .. }
        | Request::GetIfChanged { shard, .. }
        | Request::GetLeased { shard, .. } => *shard,
        Request::Status | Request::StatusWithConfigurations | Request::Describe { .. } => {
            ShardId(u32::MAX)
        }
    }
}

fn entry(key: &Bytes, seq: u64) -> Entry {
    Entry {
        key: key.clone(),
        seq: SeqNo(seq),
        kind: EntryKind::Put {
            value: Bytes::from_static(b"v"),
            content_type: None,
        },
        expires_at: None,
    }
}

/// A leader: writes get seq 7, reads find every key at seq 3.
fn leader(r: &Request) -> Response {
    match r {
        Request::Write { .. } => Response::Written {
            seq: SeqNo(7),
            prior: Vec::new(),
        },
        Request::Get { key, .. } => Response::Got(Some(entry(key, 3))),
        Request::GetIfChanged { known, .. } if known.0 == 3 => Response::Unchanged,
        Request::GetIfChanged { key, .. } => Response::Got(Some(entry(key, 3))),
        Request::GetLeased { key, known, .. } => Response::Leased {
            lease_ms: 250,
            mark: FAKE_MARK,
            read: if *known == Some(SeqNo(3)) {
                proto::LeasedRead::Unchanged
            } else {
                proto::LeasedRead::Got(Some(entry(key, 3)))
            },
        },
        Request::Scan { prefix, .. } => Response::Scanned(ScanPage {
            entries: vec![entry(prefix, 3)],
            next: None,
        }),
        Request::Status | Request::StatusWithConfigurations | Request::Describe { .. } => {
            Response::Error(RemoteError::Closed)
        }
    }
}

fn follower_of(leader: Option<u32>) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
    move |r| {
        Response::Error(RemoteError::NotLeader {
            shard: shard_of(r),
            leader: leader.map(NodeId),
        })
    }
}

/// A node that answers `Status`, but reads any other request whole, records it, and closes
/// the connection without answering (a crash after delivery). It speaks just enough
/// HTTP/2 for that: SETTINGS and PING acks, and a `:status 200` answer with a body.
async fn dropping_node(id: u32) -> FakeNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let recorder = Arc::clone(&recorder);
            tokio::spawn(async move {
                let _ = serve_until_a_client_operation(sock, NodeId(id), &recorder).await;
            });
        }
    });
    FakeNode {
        id: NodeId(id),
        addr,
        seen,
        posts: Arc::new(AtomicUsize::new(0)),
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("small frame")
        .to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

async fn serve_until_a_client_operation(
    mut sock: TcpStream,
    id: NodeId,
    seen: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    const DATA: u8 = 0;
    const HEADERS: u8 = 1;
    const SETTINGS: u8 = 4;
    const PING: u8 = 6;
    const END_STREAM: u8 = 0x1;
    const ACK: u8 = 0x1;
    const END_HEADERS: u8 = 0x4;
    const PADDED: u8 = 0x8;
    /// HPACK: indexed field 8 of the static table, `:status: 200`.
    const STATUS_200: u8 = 0x88;
    let mut preface = [0u8; 24];
    sock.read_exact(&mut preface).await?;
    if &preface != b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
        return Ok(());
    }
    sock.write_all(&frame(SETTINGS, 0, 0, &[])).await?;
    let mut bodies: HashMap<u32, Vec<u8>> = HashMap::new();
    loop {
        let mut h = [0u8; 9];
        sock.read_exact(&mut h).await?;
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
        let (kind, flags) = (h[3], h[4]);
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        sock.read_exact(&mut payload).await?;
        match kind {
            SETTINGS if flags & ACK == 0 => sock.write_all(&frame(SETTINGS, ACK, 0, &[])).await?,
            PING if flags & ACK == 0 => sock.write_all(&frame(PING, ACK, 0, &payload)).await?,
            DATA => {
                let data = if flags & PADDED != 0 {
                    let pad = usize::from(payload[0]);
                    payload[1..len - pad].to_vec()
                } else {
                    payload
                };
                bodies.entry(stream).or_default().extend(data);
            }
            _ => {}
        }
        if (kind == DATA || kind == HEADERS) && flags & END_STREAM != 0 {
            let body = Bytes::from(bodies.remove(&stream).unwrap_or_default());
            let Ok(requests) = proto::batch::decode_requests(&body) else {
                return Ok(());
            };
            if requests.iter().all(|r| matches!(r, Request::Status)) {
                let mut answers = bytes::BytesMut::new();
                let status = Response::Status(NodeStatus {
                    node: id,
                    map_version: 1,
                    shards: Vec::new(),
                });
                for index in 0..requests.len() {
                    let index = u32::try_from(index).expect("small batch");
                    proto::batch::put_answer(&mut answers, index, &status);
                }
                sock.write_all(&frame(HEADERS, END_HEADERS, stream, &[STATUS_200]))
                    .await?;
                sock.write_all(&frame(DATA, END_STREAM, stream, &answers))
                    .await?;
            } else {
                seen.lock().extend(requests);
                // Drops the socket: the request is delivered, never answered.
                return Ok(());
            }
        }
    }
}

/// An address nobody listens on.
async fn dead_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("local addr").to_string()
}

fn memory_store() -> ObjStore {
    ObjStore::open(&StoreOptions {
        url: "memory://".to_owned(),
        ..StoreOptions::default()
    })
    .expect("memory store")
}

async fn publish_map(store: &ObjStore, members: &[(u32, &str)], replication: usize) -> ShardMap {
    let members = members
        .iter()
        .map(|(id, addr)| Member::active(NodeId(*id), *addr))
        .collect();
    let map = ShardMap::new(1, SHARDS, replication, DEFAULT_VNODES, members).expect("valid map");
    shardmap::bootstrap(store, &map).await.expect("bootstrap")
}

/// The first shard whose replicas (in rank order) satisfy `f`.
fn shard_where(map: &ShardMap, f: impl Fn(&[NodeId]) -> bool) -> ShardId {
    (0..map.shards())
        .map(ShardId)
        .find(|s| f(map.replicas(*s)))
        .expect("some shard has that placement")
}

fn opts() -> ClientOptions {
    ClientOptions {
        secret: SECRET.to_owned(),
        // One background round at connect; tests that need more say so.
        map_refresh: Duration::from_secs(3600),
        leader_wait: Duration::from_secs(2),
        rpc_timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    }
}

async fn connect(store: &ObjStore, opts: ClientOptions) -> ClusterBackend {
    ClusterBackend::connect(store.clone(), opts)
        .await
        .expect("connect")
}

/// Polls `ready()` until `want(result)` holds, for at most 5 s.
async fn wait_ready(b: &ClusterBackend, want: impl Fn(&Result<(), NotReady>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = b.ready().await;
        if want(&r) {
            return;
        }
        assert!(Instant::now() < deadline, "ready() stuck at {r:?}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The value of the `tierkv_gateway_*` series `series` (name plus labels) that `b`
/// registers for `/metrics`.
fn metric(b: &ClusterBackend, series: &str) -> u64 {
    let mut registry = Registry::default();
    b.register_metrics(&mut registry);
    let text = encode_text(&registry).expect("encodes");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

fn put(key: &'static [u8]) -> WriteBatch {
    WriteBatch::new().put(key, &b"v"[..])
}

#[tokio::test]
async fn write_follows_the_not_leader_hint_and_caches_it() {
    let n1 = fake_node(1, node(1, follower_of(Some(2)))).await;
    let n2 = fake_node(2, node(2, leader)).await;
    let n3 = fake_node(3, node(3, follower_of(Some(2)))).await;
    let store = memory_store();
    let map = publish_map(&store, &[(1, &n1.addr), (2, &n2.addr), (3, &n3.addr)], 3).await;
    // The leader ranks last, so going to it directly (not in rank order) is visible.
    let shard = shard_where(&map, |r| r[2] == NodeId(2));
    let first = [&n1, &n3]
        .into_iter()
        .find(|n| n.id == map.replicas(shard)[0])
        .expect("rank 0 is a follower");
    let b = connect(&store, opts()).await;
    assert_eq!(b.leader_hint(shard), None);

    let (seq, prior) = b.write(shard, put(b"a")).await.expect("write");
    assert_eq!((seq, prior), (SeqNo(7), Vec::new()));
    assert_eq!(first.writes(), 1, "rank 0 is tried first");
    assert_eq!(
        metric(&b, "tierkv_gateway_retries_total{reason=\"redirect\"}"),
        1
    );
    assert_eq!(n2.writes(), 1);
    assert_eq!(
        n1.writes() + n3.writes(),
        1,
        "the redirect goes straight to the leader"
    );
    assert_eq!(b.leader_hint(shard), Some(NodeId(2)));

    // Cached: later writes and strong reads go to the leader directly.
    b.write(shard, put(b"b")).await.expect("write");
    let got = b
        .get(shard, Bytes::from_static(b"a"), ReadConsistency::Strong)
        .await
        .expect("get");
    assert_eq!(got.map(|e| e.seq), Some(SeqNo(3)));
    let page = b
        .scan(
            shard,
            Bytes::from_static(b"p"),
            None,
            10,
            ReadConsistency::Strong,
        )
        .await
        .expect("scan");
    assert_eq!(page.entries.len(), 1);
    assert_eq!(n2.writes(), 2);
    assert_eq!(n1.writes() + n3.writes(), 1);
    assert_eq!(n2.gets(ReadConsistency::Strong), 1);
    assert_eq!(
        metric(&b, "tierkv_gateway_retries_total{reason=\"redirect\"}"),
        1,
        "nothing is redirected once the leader is known"
    );
    assert!(metric(&b, "tierkv_gateway_node_operations_total") >= 5);
}

#[tokio::test]
async fn write_delivered_without_answer_is_outcome_unknown_and_sent_once() {
    let dropper = dropping_node(1).await;
    let n2 = fake_node(2, node(2, leader)).await;
    let n3 = fake_node(3, node(3, leader)).await;
    let store = memory_store();
    let map = publish_map(
        &store,
        &[(1, &dropper.addr), (2, &n2.addr), (3, &n3.addr)],
        3,
    )
    .await;
    let shard = shard_where(&map, |r| r[0] == NodeId(1));
    let b = connect(&store, opts()).await;
    // The status poll has answered on the dropper's connection; the write reuses it.
    wait_ready(&b, Result::is_ok).await;

    let r = b.write(shard, put(b"a")).await;
    assert!(
        matches!(r, Err(BackendError::OutcomeUnknown { shard: s }) if s == shard),
        "{r:?}"
    );
    assert_eq!(
        dropper.writes(),
        1,
        "the write reached the node exactly once"
    );
    assert_eq!(
        n2.writes() + n3.writes(),
        0,
        "a maybe-applied write is never retried"
    );
    assert_eq!(metric(&b, "tierkv_gateway_outcome_unknown_total"), 1);
}

/// One leader node hosting every shard, and a ready client of it.
async fn lone_leader() -> (FakeNode, Arc<ClusterBackend>) {
    let n1 = fake_node(1, node(1, leader)).await;
    let store = memory_store();
    publish_map(&store, &[(1, &n1.addr)], 1).await;
    let b = Arc::new(connect(&store, opts()).await);
    wait_ready(&b, Result::is_ok).await;
    (n1, b)
}

/// Operations queued for a node at the same moment travel in one HTTP request, and each
/// caller gets its own answer although the node answers out of order.
#[tokio::test]
async fn concurrent_operations_share_a_request_and_get_their_own_answers() {
    let (n1, b) = lone_leader().await;
    let before = n1.posts();
    let reads: Vec<_> = (0..20u32)
        .map(|i| {
            let b = Arc::clone(&b);
            let key = Bytes::from(format!("key-{i}"));
            tokio::spawn(async move {
                let got = b
                    .get(ShardId(i % SHARDS), key.clone(), ReadConsistency::Strong)
                    .await;
                (key, got)
            })
        })
        .collect();
    for r in reads {
        let (key, got) = r.await.expect("read task");
        assert_eq!(got.expect("read").map(|e| e.key), Some(key));
    }
    let posts = n1.posts() - before;
    assert!(posts <= 2, "20 concurrent reads took {posts} requests");
    assert_eq!(n1.gets(ReadConsistency::Strong), 20);
}

/// Large operations are not packed into one huge request: a batch stops at 16 MiB.
#[tokio::test]
async fn large_operations_are_split_across_requests() {
    let (n1, b) = lone_leader().await;
    let before = n1.posts();
    let value = Bytes::from(vec![7u8; 6 << 20]);
    let writes: Vec<_> = (0..6u32)
        .map(|i| {
            let b = Arc::clone(&b);
            let batch = WriteBatch::new().put(format!("big-{i}").into_bytes(), value.clone());
            tokio::spawn(async move { b.write(ShardId(i % SHARDS), batch).await })
        })
        .collect();
    for w in writes {
        w.await.expect("write task").expect("write");
    }
    let posts = n1.posts() - before;
    // 6 MiB each: at most two fit in 16 MiB.
    assert!(posts >= 3, "six 6 MiB writes took {posts} requests");
    assert_eq!(n1.writes(), 6);
}

#[tokio::test]
async fn read_after_a_dropped_connection_is_retried_on_another_replica() {
    let dropper = dropping_node(1).await;
    let n2 = fake_node(2, node(2, leader)).await;
    let n3 = fake_node(3, node(3, leader)).await;
    let store = memory_store();
    let map = publish_map(
        &store,
        &[(1, &dropper.addr), (2, &n2.addr), (3, &n3.addr)],
        3,
    )
    .await;
    let shard = shard_where(&map, |r| r[0] == NodeId(1));
    let key = Bytes::from_static(b"k");
    let b = connect(&store, opts()).await;
    wait_ready(&b, Result::is_ok).await;
    let got = b
        .get(shard, key.clone(), ReadConsistency::Strong)
        .await
        .expect("strong read falls over to the next replica");
    assert_eq!(got.map(|e| e.key), Some(key.clone()));
    assert_eq!(dropper.gets(ReadConsistency::Strong), 1);
    assert_eq!(
        n2.gets(ReadConsistency::Strong) + n3.gets(ReadConsistency::Strong),
        1
    );
    drop(b);

    // Eventual reads start at a rotating replica: three in a row start once at each. (A
    // fresh client, so that no read can meet the connection the dropper just closed.)
    let b = connect(&store, opts()).await;
    wait_ready(&b, Result::is_ok).await;
    for _ in 0..3 {
        let got = b
            .get(shard, key.clone(), ReadConsistency::Eventual)
            .await
            .expect("eventual read falls over");
        assert!(got.is_some());
    }
    assert_eq!(dropper.gets(ReadConsistency::Eventual), 1);
    assert_eq!(
        n2.gets(ReadConsistency::Eventual) + n3.gets(ReadConsistency::Eventual),
        3
    );
    assert!(metric(&b, "tierkv_gateway_retries_total{reason=\"read_failed\"}") >= 1);
}

#[tokio::test]
async fn wrong_secret_is_an_error_not_a_hang() {
    let n1 = fake_node(1, node(1, leader)).await;
    let store = memory_store();
    let map = publish_map(&store, &[(1, &n1.addr)], 1).await;
    let shard = shard_where(&map, |_| true);
    let b = connect(
        &store,
        ClientOptions {
            secret: "wrong".to_owned(),
            leader_wait: Duration::from_secs(30),
            ..opts()
        },
    )
    .await;
    let start = Instant::now();
    let r = b.write(shard, put(b"a")).await;
    assert!(
        matches!(
            &r,
            Err(BackendError::Refused {
                node: NodeId(1),
                status: 401
            })
        ),
        "{r:?}"
    );
    let r = b
        .get(shard, Bytes::from_static(b"a"), ReadConsistency::Eventual)
        .await;
    assert!(
        matches!(
            r,
            Err(BackendError::Refused {
                node: NodeId(1),
                ..
            })
        ),
        "{r:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(n1.writes(), 0);
    // The status poll is refused too, so the backend is not ready.
    wait_ready(&b, |r| matches!(r, Err(NotReady::NoQuorum { .. }))).await;
}

#[tokio::test]
async fn no_leader_anywhere_fails_with_not_leader_after_leader_wait() {
    let n1 = fake_node(1, node(1, follower_of(None))).await;
    let n2 = fake_node(2, node(2, follower_of(None))).await;
    let n3 = fake_node(3, node(3, follower_of(None))).await;
    let store = memory_store();
    let map = publish_map(&store, &[(1, &n1.addr), (2, &n2.addr), (3, &n3.addr)], 3).await;
    let shard = shard_where(&map, |_| true);
    let wait = Duration::from_millis(300);
    let b = connect(
        &store,
        ClientOptions {
            leader_wait: wait,
            ..opts()
        },
    )
    .await;
    let start = Instant::now();
    let r = b.write(shard, put(b"a")).await;
    let took = start.elapsed();
    assert!(
        matches!(r, Err(BackendError::NoLeader { shard: s }) if s == shard),
        "{r:?}"
    );
    assert!(took >= wait, "gave up after {took:?}");
    assert!(took < wait + Duration::from_secs(2), "took {took:?}");
    for n in [&n1, &n2, &n3] {
        assert!(n.writes() >= 2, "node {} tried {} times", n.id, n.writes());
    }
    let r = b
        .get(shard, Bytes::from_static(b"a"), ReadConsistency::Strong)
        .await;
    assert!(matches!(r, Err(BackendError::NoLeader { .. })), "{r:?}");
    assert_eq!(metric(&b, "tierkv_gateway_gave_up_total"), 2);
    assert!(metric(&b, "tierkv_gateway_backoffs_total") >= 2);
    assert!(metric(&b, "tierkv_gateway_retries_total{reason=\"not_leader\"}") >= 6);
}

#[tokio::test]
async fn unreachable_replica_is_skipped() {
    let dead = dead_addr().await;
    let n2 = fake_node(2, node(2, leader)).await;
    let n3 = fake_node(3, node(3, follower_of(Some(2)))).await;
    let store = memory_store();
    let map = publish_map(&store, &[(1, &dead), (2, &n2.addr), (3, &n3.addr)], 3).await;
    let shard = shard_where(&map, |r| r[0] == NodeId(1));
    let b = connect(&store, opts()).await;
    b.write(shard, put(b"a"))
        .await
        .expect("a write that never left is retried elsewhere");
    assert_eq!(n2.writes(), 1);
    // Two of three replicas answer the status poll: a majority.
    wait_ready(&b, Result::is_ok).await;
}

#[tokio::test]
async fn not_hosted_from_a_newer_map_refreshes_the_map_and_retries() {
    let stale = fake_node(
        1,
        node(1, |r| {
            Response::Error(RemoteError::NotHosted {
                shard: shard_of(r),
                map_version: 2,
            })
        }),
    )
    .await;
    let moved = fake_node(1, node(1, leader)).await;
    let store = memory_store();
    publish_map(&store, &[(1, &stale.addr)], 1).await;
    let b = connect(&store, opts()).await;
    // The first background round (map refresh, then status poll) is over once ready.
    wait_ready(&b, Result::is_ok).await;
    shardmap::set_member_addr(&store, NodeId(1), &moved.addr)
        .await
        .expect("publish v2");
    assert_eq!(b.map().version(), 1);

    let shard = ShardId(5);
    b.write(shard, put(b"a")).await.expect("write");
    assert_eq!(stale.writes(), 1);
    assert_eq!(moved.writes(), 1);
    assert_eq!(b.map().version(), 2);
    assert_eq!(
        b.map().member(NodeId(1)).map(|m| m.addr.clone()),
        Some(moved.addr.clone())
    );
    assert_eq!(
        metric(&b, "tierkv_gateway_retries_total{reason=\"not_hosted\"}"),
        1
    );
    assert_eq!(metric(&b, "tierkv_gateway_map_changes_total"), 1);
    assert_eq!(metric(&b, "tierkv_gateway_map_version"), 2);
}

#[tokio::test]
async fn status_poll_learns_the_leader_and_readiness() {
    let store = memory_store();
    let dead = dead_addr().await;
    // Placement depends only on ids, so pick the shard before the nodes exist.
    let probe = publish_map(&memory_store(), &[(1, "x:1"), (2, "x:2"), (3, "x:3")], 3).await;
    let shard = shard_where(&probe, |r| r[0] != NodeId(3));
    let n1 = fake_node(1, node(1, follower_of(None))).await;
    let n3 = fake_node(3, move |r| match r {
        Request::Status => Response::Status(NodeStatus {
            node: NodeId(3),
            map_version: 1,
            shards: vec![ShardStatus {
                shard,
                role: ReplicaRole::Leader,
                epoch: Epoch(4),
                leader: Some(NodeId(3)),
                commit_seq: SeqNo(1),
                last_seq: SeqNo(1),
                flushed_seq: SeqNo(0),
                configuration: None,
            }],
        }),
        other => leader(other),
    })
    .await;
    publish_map(&store, &[(1, &n1.addr), (2, &dead), (3, &n3.addr)], 3).await;
    let b = connect(&store, opts()).await;
    wait_ready(&b, Result::is_ok).await;
    assert_eq!(b.leader_hint(shard), Some(NodeId(3)));
    b.write(shard, put(b"a")).await.expect("write");
    assert_eq!(n3.writes(), 1);
    assert_eq!(
        n1.writes(),
        0,
        "the hint from the status poll is tried first"
    );
    assert_eq!(b.shard_count(), SHARDS);
    assert_eq!(metric(&b, "tierkv_gateway_members"), 3);
    assert_eq!(metric(&b, "tierkv_gateway_members_answering"), 2);
}

#[tokio::test]
async fn not_ready_without_a_majority_of_replicas() {
    let (d1, d2) = (dead_addr().await, dead_addr().await);
    let n3 = fake_node(3, node(3, leader)).await;
    let store = memory_store();
    publish_map(&store, &[(1, &d1), (2, &d2), (3, &n3.addr)], 3).await;
    let b = connect(&store, opts()).await;
    wait_ready(&b, |r| {
        matches!(
            r,
            Err(NotReady::NoQuorum {
                answered: 1,
                replicas: 3,
                ..
            })
        )
    })
    .await;
}

#[tokio::test]
async fn connect_waits_for_a_first_map_within_leader_wait() {
    let store = memory_store();
    let r = ClusterBackend::connect(
        store.clone(),
        ClientOptions {
            leader_wait: Duration::from_millis(100),
            ..opts()
        },
    )
    .await;
    assert!(matches!(r, Err(ConnectError::NoShardMap { .. })), "{r:?}");

    // A map published while connect polls is picked up (whichever comes first).
    let pending = tokio::spawn({
        let store = store.clone();
        async move {
            ClusterBackend::connect(
                store,
                ClientOptions {
                    leader_wait: Duration::from_secs(10),
                    ..opts()
                },
            )
            .await
        }
    });
    let map = publish_map(&store, &[(1, "127.0.0.1:1")], 1).await;
    let b = pending.await.expect("task").expect("connect");
    assert_eq!(*b.map(), map);
}

/// Revalidation (design note 0008): a node that announced wire revision 2 gets
/// `GetIfChanged` and answers `Unchanged` without the value; a node that announced nothing
/// (an older version) gets the equivalent strong `Get`, compared by the client; a node that
/// stops announcing it and refuses the newer kind (downgraded) has nothing applied, and the
/// operation is retried with the older kind.
#[tokio::test]
async fn get_if_changed_goes_only_to_nodes_that_announced_it() {
    let revision = Arc::new(AtomicU16::new(0));
    let n1 = fake_node_with(1, Arc::clone(&revision), node(1, leader)).await;
    let store = memory_store();
    publish_map(&store, &[(1, &n1.addr)], 1).await;
    let b = connect(&store, opts()).await;
    wait_ready(&b, Result::is_ok).await;
    let key = Bytes::from_static(b"k");
    let is_gic = |r: &Request| matches!(r, Request::GetIfChanged { .. });
    // An old node: a strong Get, compared here.
    for (known, want) in [
        (3, Revalidated::Unchanged),
        (2, Revalidated::Current(Some(entry(&key, 3)))),
    ] {
        let got = b
            .get_if_changed(ShardId(0), key.clone(), SeqNo(known))
            .await;
        assert_eq!(got.expect("revalidate"), want);
    }
    assert_eq!(n1.count(is_gic), 0, "an old node never sees the new kind");
    assert_eq!(n1.gets(ReadConsistency::Strong), 2);
    // The node is upgraded: after its next answer, the new kind.
    revision.store(2, Ordering::SeqCst);
    b.get(ShardId(0), key.clone(), ReadConsistency::Strong)
        .await
        .expect("get");
    let got = b.get_if_changed(ShardId(0), key.clone(), SeqNo(3)).await;
    assert_eq!(got.expect("revalidate"), Revalidated::Unchanged);
    assert_eq!(n1.count(is_gic), 1);
    // Downgraded again: the refused batch ran nothing and the read is retried as a Get.
    revision.store(0, Ordering::SeqCst);
    let got = b.get_if_changed(ShardId(0), key.clone(), SeqNo(3)).await;
    assert_eq!(got.expect("revalidate"), Revalidated::Unchanged);
    assert_eq!(n1.count(is_gic), 1, "the refused batch was not recorded");
    assert_eq!(n1.gets(ReadConsistency::Strong), 4);
}

/// The mark of the fake nodes' read leases.
const FAKE_MARK: LeaseMark = LeaseMark {
    epoch: Epoch(2),
    seq: SeqNo(40),
};

/// Read leases (design note 0014): a node that announced wire revision 6 gets `GetLeased`
/// and its lease comes back; a node of revisions 2–5 gets `GetIfChanged`, one that
/// announced nothing a strong `Get`, and neither gives a lease.
#[tokio::test]
async fn get_leased_goes_only_to_nodes_that_announced_revision_6() {
    let revision = Arc::new(AtomicU16::new(0));
    let n1 = fake_node_with(1, Arc::clone(&revision), node(1, leader)).await;
    let store = memory_store();
    publish_map(&store, &[(1, &n1.addr)], 1).await;
    let b = connect(&store, opts()).await;
    wait_ready(&b, Result::is_ok).await;
    let key = Bytes::from_static(b"k");
    let is_leased = |r: &Request| matches!(r, Request::GetLeased { .. });
    let is_gic = |r: &Request| matches!(r, Request::GetIfChanged { .. });
    let got = b.get_leased(ShardId(0), key.clone(), Some(SeqNo(3))).await;
    assert_eq!(got.expect("read"), (Revalidated::Unchanged, None));
    assert_eq!(n1.gets(ReadConsistency::Strong), 1);
    // Revision 5: the revalidation of revision 2, no lease.
    revision.store(5, Ordering::SeqCst);
    b.get(ShardId(0), key.clone(), ReadConsistency::Strong)
        .await
        .expect("get");
    let got = b.get_leased(ShardId(0), key.clone(), Some(SeqNo(3))).await;
    assert_eq!(got.expect("read"), (Revalidated::Unchanged, None));
    assert_eq!((n1.count(is_gic), n1.count(is_leased)), (1, 0));
    // Without a known version: a strong Get.
    let got = b.get_leased(ShardId(0), key.clone(), None).await;
    let want = Revalidated::Current(Some(entry(&key, 3)));
    assert_eq!(got.expect("read"), (want.clone(), None));
    assert_eq!(n1.gets(ReadConsistency::Strong), 3);
    // Revision 6: GetLeased, and the node's lease.
    revision.store(6, Ordering::SeqCst);
    b.get(ShardId(0), key.clone(), ReadConsistency::Strong)
        .await
        .expect("get");
    let lease = Some(Lease {
        duration: Duration::from_millis(250),
        mark: FAKE_MARK,
    });
    let got = b.get_leased(ShardId(0), key.clone(), Some(SeqNo(3))).await;
    assert_eq!(got.expect("read"), (Revalidated::Unchanged, lease));
    let got = b.get_leased(ShardId(0), key.clone(), None).await;
    assert_eq!(got.expect("read"), (want, lease));
    assert_eq!((n1.count(is_gic), n1.count(is_leased)), (1, 2));
}
