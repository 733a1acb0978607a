//! Test harness: `tierkv serve`'s one-replica node on an in-memory (fault-injectable) store,
//! the app over its in-process backend, helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use object_store::memory::InMemory;
use tierkv::local::{self, InProcess};
use tierkv_engine::block_cache::{BlockCache, MemBlockCache};
use tierkv_engine::clock::ManualClock;
use tierkv_engine::metrics::Registry;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::shard::ScanPage;
use tierkv_engine::store::ObjStore;
use tierkv_engine::testing::FaultyStore;
use tierkv_engine::types::{Entry, ReadConsistency, SeqNo, ShardId, WriteBatch};
use tierkv_engine::wal::WalSettings;
use tierkv_gateway::auth::{KeySpec, KeyStore, Role};
use tierkv_gateway::backend::{BackendError, NotReady};
use tierkv_gateway::{AppState, Backend, GatewayOptions, Problem, app};
use tierkv_node::node::{Node, NodeComponents};
use tierkv_node::settings::ClusterSettings;
use tower::ServiceExt;

pub(crate) const SHARDS: u32 = 4;
pub(crate) const START_MS: u64 = 1_700_000_000_000;
/// The cluster secret the admin API takes as a bearer token here.
pub(crate) const ADMIN_SECRET: &str = "api-test-admin-secret";

/// Makes `get` of keys ending in `gated` wait for a permit, and of keys ending in `panic`
/// panic; everything else goes to the in-process backend.
pub(crate) struct TestBackend {
    pub(crate) inner: InProcess,
    pub(crate) entered: AtomicUsize,
    pub(crate) release: tokio::sync::Semaphore,
}

#[async_trait]
impl Backend for TestBackend {
    fn shard_count(&self) -> u32 {
        self.inner.shard_count()
    }
    async fn get(
        &self,
        shard: ShardId,
        key: Bytes,
        level: ReadConsistency,
    ) -> Result<Option<Entry>, BackendError> {
        if key.ends_with(b"gated") {
            self.entered.fetch_add(1, Ordering::SeqCst);
            let _permit = self.release.acquire().await;
        }
        assert!(!key.ends_with(b"panic"), "test backend panics on request");
        self.inner.get(shard, key, level).await
    }
    async fn write(
        &self,
        shard: ShardId,
        batch: WriteBatch,
    ) -> Result<(SeqNo, Vec<Option<SeqNo>>), BackendError> {
        self.inner.write(shard, batch).await
    }
    async fn scan(
        &self,
        shard: ShardId,
        prefix: Bytes,
        start_after: Option<Bytes>,
        limit: usize,
        level: ReadConsistency,
    ) -> Result<ScanPage, BackendError> {
        self.inner
            .scan(shard, prefix, start_after, limit, level)
            .await
    }
    async fn ready(&self) -> Result<(), NotReady> {
        self.inner.ready().await
    }
}

pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) faulty: Arc<FaultyStore>,
    pub(crate) store: ObjStore,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) node: Node,
    pub(crate) backend: Arc<TestBackend>,
    pub(crate) state: AppState,
    pub(crate) app: Router,
    pub(crate) opts: GatewayOptions,
    pub(crate) engine: EngineOptions,
    pub(crate) cache_bytes: usize,
    /// An `admin` API key, which [`Env::send`] attaches to requests that carry no
    /// credentials of their own.
    pub(crate) key: String,
}

pub(crate) struct Res {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Res {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }
    /// Asserts a problem+json body with `status` and `code`, returns it.
    #[track_caller]
    pub(crate) fn problem(&self, status: u16, code: &str) -> Problem {
        assert_eq!(self.status.as_u16(), status, "body: {:?}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let p: Problem = serde_json::from_slice(&self.body).expect("problem body");
        assert_eq!(p.code.as_str(), code, "problem: {p:?}");
        assert_eq!(p.status, status);
        assert_eq!(p.type_uri, format!("https://tierkv.dev/errors/{code}"));
        p
    }
}

pub(crate) fn req(method: Method, uri: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(uri)
}

impl Env {
    pub(crate) async fn new() -> Self {
        Self::with(GatewayOptions::default(), EngineOptions::default(), 1 << 20).await
    }

    pub(crate) async fn with(
        opts: GatewayOptions,
        engine: EngineOptions,
        cache_bytes: usize,
    ) -> Self {
        let faulty = FaultyStore::new(Arc::new(InMemory::new()));
        let store = ObjStore::new(faulty.clone(), "faulty-memory");
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(START_MS);
        Self::open(dir, faulty, store, clock, opts, engine, cache_bytes, None).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn open(
        dir: tempfile::TempDir,
        faulty: Arc<FaultyStore>,
        store: ObjStore,
        clock: Arc<ManualClock>,
        opts: GatewayOptions,
        engine: EngineOptions,
        cache_bytes: usize,
        key: Option<String>,
    ) -> Self {
        let mem_cache = Arc::new(MemBlockCache::new(cache_bytes));
        let mut metrics = Registry::default();
        store.register_metrics(&mut metrics);
        mem_cache.register_metrics(&mut metrics);
        let cache: Arc<dyn BlockCache> = mem_cache;
        let node = local::open(
            local::Options {
                data_dir: dir.path().to_path_buf(),
                addr: "127.0.0.1:1".to_owned(),
                shards: SHARDS,
                cluster: ClusterSettings {
                    tick: Duration::from_millis(10),
                    ..ClusterSettings::default()
                },
                engine: engine.clone(),
                wal: WalSettings::default(),
            },
            NodeComponents {
                store: store.clone(),
                cache: Arc::clone(&cache),
                clock: clock.clone(),
            },
        )
        .await
        .expect("open node");
        for h in node.shards() {
            assert!(
                h.wait_serving(Duration::from_secs(10)).await,
                "shard {} does not serve",
                h.shard().id()
            );
        }
        // The process's one exporter: the node's figures on the gateway's `/metrics`.
        node.register_metrics(&mut metrics);
        let leader_wait = tierkv_gateway::cluster::ClientOptions::default().leader_wait;
        let backend = Arc::new(TestBackend {
            inner: InProcess::new(node.clone(), store.clone(), leader_wait),
            entered: AtomicUsize::new(0),
            release: tokio::sync::Semaphore::new(0),
        });
        let state = AppState::with_registry(backend.clone(), opts.clone(), clock.clone(), metrics);
        // The admin API, as `tierkv serve` enables it.
        state.enable_admin(
            ADMIN_SECRET,
            Arc::new(InProcess::new(node.clone(), store.clone(), leader_wait)),
        );
        // API keys as `tierkv serve` enables them (their own store figures: the key set's
        // polls are not the engine's object-store calls the tests count), and an admin key
        // made as `tierkv admin keys create` makes it (the first start; later ones find it).
        let keys = KeyStore::new(store.with_own_metrics());
        let key = match key {
            Some(k) => k,
            None => {
                let spec = KeySpec {
                    name: "api-tests".to_owned(),
                    role: Role::Admin,
                    prefixes: Vec::new(),
                };
                keys.create(&spec, START_MS).await.expect("create key").1
            }
        };
        state
            .enable_keys(store.with_own_metrics())
            .await
            .expect("enable keys");
        Self {
            app: app(state.clone()),
            dir,
            faulty,
            store,
            clock,
            node,
            backend,
            state,
            opts,
            engine,
            cache_bytes,
            key,
        }
    }

    /// Stops the node and opens it again on the same data directory and object store.
    pub(crate) async fn restart(self) -> Self {
        let Self {
            dir,
            faulty,
            store,
            clock,
            node,
            backend,
            state,
            app,
            opts,
            engine,
            cache_bytes,
            key,
        } = self;
        node.shutdown(Duration::from_secs(10)).await;
        drop((app, state, backend, node));
        Self::open(
            dir,
            faulty,
            store,
            clock,
            opts,
            engine,
            cache_bytes,
            Some(key),
        )
        .await
    }

    /// Sends `req`, with the env's admin key unless it carries `authorization` or `cookie`.
    pub(crate) async fn send(&self, mut req: Request<Body>) -> Res {
        let h = req.headers_mut();
        if !h.contains_key("authorization") && !h.contains_key("cookie") {
            h.insert(
                "authorization",
                format!("Bearer {}", self.key)
                    .parse()
                    .expect("header value"),
            );
        }
        self.send_as_is(req).await
    }

    /// Sends `req` with exactly the credentials it carries (none, maybe).
    pub(crate) async fn send_as_is(&self, req: Request<Body>) -> Res {
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Res {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `GET path` with the admin API's bearer secret.
    pub(crate) async fn admin_get(&self, path: &str) -> Res {
        self.send(
            req(Method::GET, path)
                .header("authorization", format!("Bearer {ADMIN_SECRET}"))
                .body(Body::empty())
                .expect("req"),
        )
        .await
    }

    pub(crate) async fn get(&self, path: &str) -> Res {
        self.send(req(Method::GET, path).body(Body::empty()).expect("req"))
            .await
    }

    pub(crate) async fn put(&self, path: &str, body: impl Into<Body>) -> Res {
        self.send(req(Method::PUT, path).body(body.into()).expect("req"))
            .await
    }

    pub(crate) async fn delete(&self, path: &str) -> Res {
        self.send(req(Method::DELETE, path).body(Body::empty()).expect("req"))
            .await
    }

    pub(crate) async fn post_json(&self, path: &str, json: &serde_json::Value) -> Res {
        self.send(
            req(Method::POST, path)
                .header("content-type", "application/json")
                .body(Body::from(json.to_string()))
                .expect("req"),
        )
        .await
    }
}

/// Polls `cond` until it holds or `secs` pass.
pub(crate) async fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
