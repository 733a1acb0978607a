//! [`AppState`]: what every handler shares (backend, options, clock, metrics, in-process
//! guards).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tierkv_engine::clock::Clock;
use tierkv_engine::metrics::Registry;
use tierkv_engine::routing::shard_for;
use tierkv_engine::types::ShardId;

use crate::admin::AdminState;
use crate::auth::AuthState;
use crate::backend::Backend;
use crate::cache::{ReadTier, ValueStore};
use crate::error::ApiError;
use crate::hotkeys::HotKeys;
use crate::limits::{Access, KeyLimits};
use crate::metrics::HttpMetrics;
use crate::options::GatewayOptions;

/// Shared state of the API; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) opts: GatewayOptions,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: HttpMetrics,
    /// What `/metrics` serves: the gateway's figures and whatever the process added.
    pub(crate) registry: Registry,
    /// Batch idempotency keys being executed in this process (duplicates wait here).
    pub(crate) batch_guards: Mutex<HashMap<Bytes, Arc<tokio::sync::Mutex<()>>>>,
    /// Single-key reads: value cache, freshness facts, coalescing (design note 0008).
    pub(crate) reads: ReadTier,
    /// Per-key rate limits.
    pub(crate) limits: KeyLimits,
    /// The hottest keys.
    pub(crate) hot: HotKeys,
    /// The admin API: credentials, cluster view, traffic samples (`crate::admin`).
    pub(crate) admin: AdminState,
    /// API keys and failed-attempt limits (`crate::auth`).
    pub(crate) auth: AuthState,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over `backend` with `opts`; `clock` gives "now" for TTLs. `/metrics` serves
    /// the gateway's own figures only.
    #[must_use]
    pub fn new(backend: Arc<dyn Backend>, opts: GatewayOptions, clock: Arc<dyn Clock>) -> Self {
        Self::with_registry(backend, opts, clock, Registry::default())
    }

    /// Like [`AppState::new`], with `/metrics` serving `registry` after the gateway added its
    /// own figures to it (`tierkv_http_*`, `tierkv_shards`, `tierkv_up`, the read tier's and
    /// the limits'): the process's one exporter. The caller registers the rest first: the
    /// cluster client's figures (`ClusterBackend::register_metrics`) and, for storage in this
    /// process, its node's, object store's and block cache's. No value cache: reads go to
    /// the shards' leaders (coalesced as `opts.cache.coalesce` says).
    #[must_use]
    pub fn with_registry(
        backend: Arc<dyn Backend>,
        opts: GatewayOptions,
        clock: Arc<dyn Clock>,
        registry: Registry,
    ) -> Self {
        Self::with_cache(backend, opts, clock, registry, None)
    }

    /// Like [`AppState::with_registry`], with the value cache `store` (opened with
    /// [`ValueStore::open`] from `opts.cache`; none: no value cache). The caller closes the
    /// store after the server stopped.
    #[must_use]
    pub fn with_cache(
        backend: Arc<dyn Backend>,
        opts: GatewayOptions,
        clock: Arc<dyn Clock>,
        mut registry: Registry,
        store: Option<ValueStore>,
    ) -> Self {
        let metrics = HttpMetrics::new(&mut registry, backend.shard_count());
        let reads = ReadTier::new(Arc::clone(&backend), store, &opts.cache, &mut registry);
        let limits = KeyLimits::new(&opts.limits, &mut registry);
        let hot = HotKeys::new(&opts.hot_keys);
        let admin = AdminState::new(clock.now_millis());
        let auth = AuthState::new(&opts.auth, &mut registry);
        Self {
            inner: Arc::new(Inner {
                backend,
                opts,
                clock,
                metrics,
                registry,
                batch_guards: Mutex::new(HashMap::new()),
                reads,
                limits,
                hot,
                admin,
                auth,
            }),
        }
    }

    /// Counts one `access` to user key `key` among the hot keys and admits it, or refuses it
    /// with `429 rate_limited`.
    pub(crate) fn admit(&self, key: &Bytes, access: Access) -> Result<(), ApiError> {
        let hash = crate::limits::key_hash(key);
        let now = tokio::time::Instant::now();
        self.inner.hot.record(key, hash, access, now);
        self.inner
            .limits
            .admit(key, hash, access, now)
            .map_err(|t| ApiError::RateLimited {
                retry_after_secs: t.retry_after_secs,
                writes: t.access == Access::Write,
            })
    }

    pub(crate) fn reads(&self) -> &ReadTier {
        &self.inner.reads
    }

    pub(crate) fn hot_keys(&self) -> &HotKeys {
        &self.inner.hot
    }

    /// The options in force.
    #[must_use]
    pub fn options(&self) -> &GatewayOptions {
        &self.inner.opts
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        self.inner.backend.as_ref()
    }

    pub(crate) fn now_millis(&self) -> u64 {
        self.inner.clock.now_millis()
    }

    /// The shard of a user key (or of a batch's idempotency key).
    pub(crate) fn shard_of(&self, key: &[u8]) -> ShardId {
        shard_for(key, self.inner.backend.shard_count())
    }
}
