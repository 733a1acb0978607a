//! The admin API over `ClusterBackend` and fake nodes that speak the real wire contract:
//! node 1 of this version (answers `Describe`), node 2 of an older one (refuses the unknown
//! operation with 400, as an old node's decoder does, and answers `Status`), node 3 down.
//! Also: authorization, sessions, one-time login tokens, and the embedded dashboard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use bytes::Bytes;
use tierkv_engine::clock::SystemClock;
use tierkv_engine::store::{ObjStore, StoreOptions};
use tierkv_engine::types::{Epoch, NodeId, ReadConsistency, SeqNo, ShardId};
use tierkv_gateway::backend::Backend;
use tierkv_gateway::cluster::{ClientOptions, ClusterBackend};
use tierkv_gateway::{AppState, GatewayOptions};
use tierkv_wire::paths;
use tierkv_wire::proto::describe::{FollowerFacts, NodeDescription, NodeEvent, ShardFacts};
use tierkv_wire::proto::{self, NodeStatus, ReplicaRole, Request, Response, ShardStatus};
use tierkv_wire::shardmap::{self, DEFAULT_VNODES, Member, ShardMap};
use tokio::net::TcpListener;
use tokio::time::Instant;

const SECRET: &str = "admin-test-secret";
const SHARDS: u32 = 4;

/// What a fake node is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    /// Knows `Describe`.
    Current,
    /// Does not: its decoder refuses kind 6.
    Old,
}

#[derive(Clone)]
struct Fake {
    id: u32,
    version: Version,
    map: Arc<ShardMap>,
    /// Operations it received in batches that held a `Describe` (must stay 0).
    batched_describes: Arc<AtomicUsize>,
    /// Batches it served.
    batches: Arc<AtomicUsize>,
}

impl Fake {
    /// Replica state: every hosted shard is led by its first-ranked replica.
    fn shards(&self) -> Vec<ShardStatus> {
        (0..SHARDS)
            .map(ShardId)
            .filter(|s| self.map.replicas(*s).contains(&NodeId(self.id)))
            .map(|s| {
                let leader = self.map.replicas(s)[0];
                ShardStatus {
                    shard: s,
                    role: if leader == NodeId(self.id) {
                        ReplicaRole::Leader
                    } else {
                        ReplicaRole::Follower
                    },
                    epoch: Epoch(2),
                    leader: Some(leader),
                    commit_seq: SeqNo(10),
                    last_seq: SeqNo(10),
                    flushed_seq: SeqNo(4),
                    configuration: None,
                }
            })
            .collect()
    }

    fn answer(&self, r: &Request) -> Response {
        match r {
            Request::Status => Response::Status(NodeStatus {
                node: NodeId(self.id),
                map_version: 1,
                shards: self.shards(),
            }),
            Request::Describe { max_events } => Response::Described(Box::new(NodeDescription {
                node: self.id,
                version: "9.9.9".to_owned(),
                wire_revision: proto::REVISION,
                started_at_ms: 1,
                now_ms: 2,
                map_version: 1,
                shards: self
                    .shards()
                    .into_iter()
                    .map(|s| ShardFacts {
                        shard: s.shard.0,
                        role: if s.role == ReplicaRole::Leader {
                            "leader"
                        } else {
                            "follower"
                        }
                        .to_owned(),
                        epoch: s.epoch.0,
                        leader: s.leader.map(|n| n.0),
                        commit_seq: 10,
                        applied_seq: 10,
                        last_seq: 10,
                        flushed_seq: 4,
                        segment_bytes: 4096,
                        l0_segments: 1,
                        followers: if s.role == ReplicaRole::Leader {
                            self.map
                                .replicas(s.shard)
                                .iter()
                                .filter(|n| n.0 != self.id)
                                .map(|n| FollowerFacts {
                                    node: n.0,
                                    match_seq: 7,
                                })
                                .collect()
                        } else {
                            Vec::new()
                        },
                        ..ShardFacts::default()
                    })
                    .collect(),
                events: (1..=u64::from((*max_events).min(2)))
                    .map(|i| NodeEvent {
                        id: i,
                        at_ms: 1_000 + i,
                        kind: if i == 1 {
                            "node_started"
                        } else {
                            "became_leader"
                        }
                        .to_owned(),
                        shard: (i == 2).then_some(0),
                        epoch: (i == 2).then_some(2),
                        ..NodeEvent::default()
                    })
                    .collect(),
                ..NodeDescription::default()
            })),
            Request::Get { key, .. } => Response::Got(Some(tierkv_engine::types::Entry {
                key: key.clone(),
                seq: SeqNo(3),
                kind: tierkv_engine::types::EntryKind::Put {
                    value: Bytes::from_static(b"v"),
                    content_type: None,
                },
                expires_at: None,
            })),
            _ => Response::Error(proto::RemoteError::Closed),
        }
    }

    /// What this node's decoder makes of a body: an old one does not know kind 6.
    fn decode(&self, body: &Bytes) -> Option<Request> {
        let r = proto::decode_request(body).ok()?;
        match (self.version, &r) {
            (Version::Old, Request::Describe { .. }) => None,
            _ => Some(r),
        }
    }
}

async fn single(State(f): State<Fake>, body: Bytes) -> impl IntoResponse {
    match f.decode(&body) {
        Some(r) => (StatusCode::OK, proto::encode_response(&f.answer(&r))),
        None => (
            StatusCode::BAD_REQUEST,
            Bytes::from_static(b"unknown request kind"),
        ),
    }
}

async fn batch(State(f): State<Fake>, body: Bytes) -> impl IntoResponse {
    f.batches.fetch_add(1, Ordering::SeqCst);
    let Ok(frames) = tierkv_wire::frame::decode_all(&body, |b| Ok(b.clone())) else {
        return (StatusCode::BAD_REQUEST, Bytes::new());
    };
    let decoded: Option<Vec<Request>> = frames.iter().map(|b| f.decode(b)).collect();
    let Some(requests) = decoded else {
        // An old node refuses the whole batch.
        f.batched_describes
            .fetch_add(frames.len(), Ordering::SeqCst);
        return (StatusCode::BAD_REQUEST, Bytes::new());
    };
    let mut out = bytes::BytesMut::new();
    for (i, r) in (0u32..).zip(&requests) {
        proto::batch::put_answer(&mut out, i, &f.answer(r));
    }
    (StatusCode::OK, out.freeze())
}

async fn spawn(listener: TcpListener, fake: Fake) {
    let app = Router::new()
        .route(paths::KV, post(single))
        .route(paths::KV_BATCH, post(batch))
        .with_state(fake);
    tokio::spawn(async move { axum::serve(listener, app).await });
}

struct Setup {
    url: String,
    state: AppState,
    old: Fake,
    backend: Arc<ClusterBackend>,
    map: Arc<ShardMap>,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let listeners = [
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
    ];
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").to_string())
        .collect();
    let members = (1..=3u32)
        .zip(&addrs)
        .map(|(id, addr)| Member::active(NodeId(id), addr.clone()))
        .collect();
    let map = ShardMap::new(1, SHARDS, 3, DEFAULT_VNODES, members).expect("map");
    let store = ObjStore::open(&StoreOptions {
        url: "memory://".to_owned(),
        ..StoreOptions::default()
    })
    .expect("store");
    let map = Arc::new(shardmap::bootstrap(&store, &map).await.expect("bootstrap"));
    let fake = |id, version| Fake {
        id,
        version,
        map: Arc::clone(&map),
        batched_describes: Arc::new(AtomicUsize::new(0)),
        batches: Arc::new(AtomicUsize::new(0)),
    };
    let [l1, l2, l3] = listeners;
    spawn(l1, fake(1, Version::Current)).await;
    let old = fake(2, Version::Old);
    spawn(l2, old.clone()).await;
    drop(l3); // node 3 is down
    let backend = Arc::new(
        ClusterBackend::connect(
            store,
            ClientOptions {
                secret: SECRET.to_owned(),
                map_refresh: Duration::from_millis(100),
                leader_wait: Duration::from_secs(2),
                rpc_timeout: Duration::from_secs(2),
                ..ClientOptions::default()
            },
        )
        .await
        .expect("connect"),
    );
    let state = AppState::new(
        backend.clone(),
        GatewayOptions::default(),
        Arc::new(SystemClock),
    );
    assert!(state.enable_admin(SECRET, backend.clone()));
    assert!(!state.enable_admin(SECRET, backend.clone()), "only once");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let serving = state.clone();
    tokio::spawn(tierkv_gateway::serve(
        listener,
        serving,
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Setup {
        url,
        state,
        old,
        backend,
        map,
        http,
    }
}

async fn admin_json(s: &Setup, path: &str) -> serde_json::Value {
    let r = s
        .http
        .get(format!("{}{path}", s.url))
        .bearer_auth(SECRET)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200, "{path}");
    assert_eq!(
        r.headers().get(header::CACHE_CONTROL).map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    r.json().await.expect("json")
}

/// Polls the overview until every member has been polled.
async fn overview_after_poll(s: &Setup) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = admin_json(s, "/admin/v1/cluster").await;
        if o["members"]
            .as_array()
            .is_some_and(|m| m.iter().all(|m| !m["up"].is_null()))
        {
            return o;
        }
        assert!(Instant::now() < deadline, "no status poll: {o}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn old_nodes_degrade_to_status_and_client_operations_go_on() {
    let s = setup().await;
    // An operation for a shard node 2 leads, while the admin API gathers over and over.
    let shard = (0..SHARDS)
        .map(ShardId)
        .find(|sh| s.map.replicas(*sh)[0] == NodeId(2))
        .expect("node 2 leads some shard");
    let gets = async {
        for _ in 0..20 {
            let got = s
                .backend
                .get(shard, Bytes::from_static(b"k"), ReadConsistency::Strong)
                .await;
            assert!(got.is_ok(), "{got:?}");
        }
    };
    let gathers = async {
        for _ in 0..5 {
            let _ = admin_json(&s, "/admin/v1/nodes").await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::join!(gets, gathers);
    assert_eq!(
        s.old.batched_describes.load(Ordering::SeqCst),
        0,
        "Describe is never batched"
    );
    assert!(s.old.batches.load(Ordering::SeqCst) > 0);

    let o = overview_after_poll(&s).await;
    let m = o["members"].as_array().expect("members");
    assert_eq!(m[0]["facts"], "ok");
    assert_eq!(m[0]["version"], "9.9.9");
    assert_eq!(m[1]["facts"], "unsupported");
    assert_eq!(m[1]["version"], serde_json::Value::Null);
    assert!(m[1]["leaders"].as_u64().is_some(), "from Status: {o}");
    assert_eq!(m[2]["facts"], "unreachable");
    assert_eq!(m[2]["up"], false);
    assert!(m[0]["last_heartbeat_ms"].as_u64().is_some());
    assert_eq!(o["health"]["members_up"], 2);
    assert_eq!(o["map"]["shards"], SHARDS);
    // Shards node 3 led have no serving leader.
    let led_by_3 = (0..SHARDS)
        .filter(|sh| s.map.replicas(ShardId(*sh))[0] == NodeId(3))
        .count();
    assert_eq!(o["health"]["shards_without_leader"], led_by_3);
    assert_eq!(
        o["health"]["status"],
        if led_by_3 > 0 {
            "unavailable"
        } else {
            "degraded"
        }
    );

    let nodes = admin_json(&s, "/admin/v1/nodes").await;
    let n = nodes["nodes"].as_array().expect("nodes");
    assert_eq!(n[0]["segment_bytes"].as_u64().map(|b| b % 4096), Some(0));
    assert_eq!(
        n[1]["wal_bytes"],
        serde_json::Value::Null,
        "unknown, not zero"
    );
    assert_eq!(n[1]["map_version"], 1);

    let shards = admin_json(&s, "/admin/v1/shards").await;
    for sh in shards["shards"].as_array().expect("shards") {
        for r in sh["replicas"].as_array().expect("replicas") {
            match r["node"].as_u64() {
                Some(1) => assert!(!r["applied_seq"].is_null()),
                Some(2) => {
                    assert!(r["applied_seq"].is_null());
                    assert!(!r["role"].is_null());
                }
                _ => assert!(r["role"].is_null()),
            }
            // Lag as the leader counts it, where node 1 leads.
            if sh["leader"] == 1 && r["node"] != 1 {
                assert_eq!(r["lag"], 3);
            }
        }
    }

    let events = admin_json(&s, "/admin/v1/events?limit=10").await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"became_leader") && kinds.contains(&"node_started"));
    assert!(
        kinds.contains(&"member_down"),
        "node 3 was down at the first poll: {kinds:?}"
    );
    assert_eq!(events["missing_from"], serde_json::json!([2, 3]));
}

#[tokio::test]
async fn credentials_sessions_and_login_tokens() {
    let s = setup().await;
    let url = |p: &str| format!("{}{p}", s.url);
    // Nothing without credentials; wrong ones neither.
    for path in [
        "/admin/v1/cluster",
        "/admin/v1/nodes",
        "/admin/v1/shards",
        "/admin/v1/events",
        "/admin/v1/traffic",
        "/admin/v1/hot-keys",
        "/admin/v1/session",
    ] {
        let r = s.http.get(url(path)).send().await.expect("send");
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/problem+json"[..])
        );
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
        let p: serde_json::Value = r.json().await.expect("problem");
        assert_eq!(p["code"], "unauthorized");
        let r = s
            .http
            .get(url(path))
            .bearer_auth("nope")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401);
    }
    // Sign in with the secret: a cookie that works on its own.
    let r = s
        .http
        .post(url("/admin/v1/session"))
        .json(&serde_json::json!({ "secret": SECRET }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let cookie = r
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().expect("pair").to_owned();
    let r = s
        .http
        .get(url("/admin/v1/session"))
        .header(header::COOKIE, &pair)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let who: serde_json::Value = r.json().await.expect("json");
    assert_eq!(who["method"], "cookie");
    // Wrong secret, both fields, no JSON.
    for (body, status) in [
        (serde_json::json!({ "secret": "nope" }), 401),
        (serde_json::json!({ "secret": SECRET, "token": "x" }), 400),
        (serde_json::json!({ "password": SECRET }), 400),
    ] {
        let r = s
            .http
            .post(url("/admin/v1/session"))
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), status, "{body}");
    }
    let r = s
        .http
        .post(url("/admin/v1/session"))
        .body(format!("{{\"secret\":\"{SECRET}\"}}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 415);
    // A login token works once.
    let token = s.state.admin_login_token().expect("enabled");
    let sign = |t: String| {
        s.http
            .post(url("/admin/v1/session"))
            .json(&serde_json::json!({ "token": t }))
            .send()
    };
    assert_eq!(sign(token.clone()).await.expect("send").status(), 204);
    assert_eq!(sign(token).await.expect("send").status(), 401);
    // Signing out clears the cookie.
    let r = s
        .http
        .delete(url("/admin/v1/session"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary() {
    let s = setup().await;
    let get = |p: &str| s.http.get(format!("{}{p}", s.url)).send();
    for from in ["/", "/ui"] {
        let r = get(from).await.expect("send");
        assert!(r.status().is_redirection(), "{from}: {}", r.status());
        assert_eq!(
            r.headers().get(header::LOCATION).map(|v| v.as_bytes()),
            Some(&b"/ui/"[..])
        );
    }
    let index = get("/ui/").await.expect("send");
    assert_eq!(index.status(), 200);
    let csp = index
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .expect("csp")
        .to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(
        index
            .headers()
            .get(header::CACHE_CONTROL)
            .map(|v| v.as_bytes()),
        Some(&b"no-cache"[..])
    );
    let html = index.text().await.expect("html");
    // The dashboard's own routes serve the same page.
    assert_eq!(
        get("/ui/shards")
            .await
            .expect("send")
            .text()
            .await
            .expect("html"),
        html
    );
    let asset = html
        .split("src=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a script")
        .to_owned();
    let js = get(&asset).await.expect("send");
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"text/javascript; charset=utf-8"[..])
    );
    assert!(
        js.headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("immutable"))
    );
    let missing = get("/ui/assets/nope.js").await.expect("send");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn traffic_counts_the_data_plane_only() {
    let s = setup().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // Data-plane requests (answered 400: the key is empty) and admin requests.
        let r = s
            .http
            .get(format!("{}/v1/kv/", s.url))
            .bearer_auth(SECRET)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400);
        let t = admin_json(&s, "/admin/v1/traffic").await;
        let points = t["points"].as_array().cloned().unwrap_or_default();
        if let Some(p) = points
            .iter()
            .rev()
            .find(|p| p["requests_per_sec"].as_f64() > Some(0.0))
        {
            let total = p["requests_per_sec"].as_f64().expect("rate");
            let client = p["client_errors_per_sec"].as_f64().expect("rate");
            assert!((total - client).abs() < 1e-9, "only our 400s count: {p}");
            assert!(!p["p50_ms"].is_null());
            assert_eq!(t["interval_secs"], 2);
            return;
        }
        assert!(Instant::now() < deadline, "no traffic point: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn admin_call(
    s: &Setup,
    method: reqwest::Method,
    path: &str,
    body: Option<&str>,
    auth: bool,
) -> (u16, serde_json::Value) {
    let mut req = s.http.request(method, format!("{}{path}", s.url));
    if auth {
        req = req.bearer_auth(SECRET);
    }
    if let Some(b) = body {
        req = req
            .header(header::CONTENT_TYPE, "application/json")
            .body(b.to_owned());
    }
    let r = req.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Membership operations (design note 0009 §6) need the admin credentials, validate their
/// input, and are refused with stable codes and nothing changed: here node 2 runs an older
/// version (it does not know `Describe`, so neither configuration records), which holds
/// every change back (`members_outdated`); the map's own checks come first (an unknown
/// member, too few active members). `GET /admin/v1/moves` reports every shard, unknown
/// while no leader reports a configuration.
#[tokio::test]
async fn membership_changes_are_checked_and_refused_with_stable_codes() {
    use reqwest::Method;
    let s = setup().await;
    overview_after_poll(&s).await;
    let add = r#"{"id": 9, "address": "127.0.0.1:7009"}"#;
    let (st, _) = admin_call(&s, Method::POST, "/admin/v1/members", Some(add), false).await;
    assert_eq!(st, 401, "no credentials");
    for (body, why) in [
        (r#"{"id": 0, "address": "127.0.0.1:7009"}"#, "id 0"),
        (r#"{"id": 4294967296, "address": "a:1"}"#, "id past u32"),
        (r#"{"id": 9, "address": "no port"}"#, "address"),
        (r#"{"id": 9, "address": "a:1", "x": 1}"#, "unknown field"),
        (r#"{"id": 9"#, "malformed"),
    ] {
        let (st, p) = admin_call(&s, Method::POST, "/admin/v1/members", Some(body), true).await;
        assert_eq!(st, 400, "{why}: {p}");
    }
    let (st, p) = admin_call(&s, Method::POST, "/admin/v1/members", Some(add), true).await;
    assert_eq!(
        (st, p["code"].as_str()),
        (409, Some("members_outdated")),
        "{p}"
    );
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("node 2")),
        "{p}"
    );
    let (st, p) = admin_call(&s, Method::POST, "/admin/v1/members/7/drain", None, true).await;
    assert_eq!(
        (st, p["code"].as_str()),
        (404, Some("member_not_found")),
        "{p}"
    );
    let (st, p) = admin_call(&s, Method::POST, "/admin/v1/members/1/drain", None, true).await;
    assert_eq!(
        (st, p["code"].as_str()),
        (409, Some("too_few_members")),
        "{p}"
    );
    let (st, p) = admin_call(&s, Method::DELETE, "/admin/v1/members/1", None, true).await;
    assert_eq!((st, p["code"].as_str()), (409, Some("member_state")), "{p}");
    let (st, p) = admin_call(
        &s,
        Method::POST,
        "/admin/v1/members/3/replace",
        Some(r#"{"id": 1, "address": "a:1"}"#),
        true,
    )
    .await;
    assert_eq!(
        (st, p["code"].as_str()),
        (409, Some("member_exists")),
        "{p}"
    );
    let (st, _) = admin_call(&s, Method::POST, "/admin/v1/members/x/drain", None, true).await;
    assert_eq!(st, 400);
    // Nothing changed.
    let o = admin_json(&s, "/admin/v1/cluster").await;
    assert_eq!(o["map"]["version"], 1, "{o}");
    let m = admin_json(&s, "/admin/v1/moves").await;
    assert_eq!(m["map_version"], 1);
    assert_eq!(m["shards_total"], SHARDS);
    let shards = m["shards"].as_array().expect("shards");
    assert_eq!(shards.len(), SHARDS as usize);
    // The fakes report no configuration: no shard can be shown settled.
    assert!(shards.iter().all(|x| x["moving"] == true), "{m}");
    assert_eq!(m["shards_moving"], SHARDS);
}
