//! Object storage access: backend selection from a URL, per-call metrics, create-only puts
//! (the one compare-and-swap every backend offers), and retry with backoff and jitter for
//! background work.
//!
//! Backends (see [`StoreOptions::url`]):
//! - `file:///abs/path` (or a bare path): the local filesystem, the embedded default.
//!   It supports `PutMode::Create` atomically (hard link) but not `PutMode::Update`; the
//!   engine only ever needs `Create` plus uniquely named immutable objects, so it works
//!   unchanged. Deleting a missing object is `NotFound` there; [`ObjStore::delete`]
//!   treats that as success everywhere.
//! - `s3://bucket/optional/prefix`: any S3-compatible server (AWS, MinIO, moto) with the
//!   endpoint, region, credentials and path-style settings of [`S3Options`]. Conditional
//!   create relies on `If-None-Match: *`, which AWS S3 and MinIO honour. A server that ignores
//!   it (garage 2.x) cannot fence writers: do not run more than one writer per shard on it.
//! - `memory://`: in-process, for tests.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutMode, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::{Counter, Histogram, HistogramSnapshot, Registry};

/// Where the object store is and how to reach it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreOptions {
    /// `file:///path`, a plain path, `s3://bucket/prefix` or `memory://`.
    /// Default: `file://./data/objects` (resolved against the working directory).
    pub url: String,
    /// `file://` only: fsync every object written, and its directory, before the write
    /// returns, so that a finished PUT survives a power loss as it would on S3. Flushes
    /// release WAL files once their segment and manifest are written: without this a machine
    /// crash (not a process crash) could lose acknowledged writes, and an epoch claim could
    /// vanish. Turn off only for data you can lose. Default: true.
    pub file_sync: bool,
    /// Settings used when `url` is `s3://`.
    pub s3: S3Options,
    /// Benchmark and test aid, not for production: every object-store read (GET, ranged or
    /// whole) waits this long before it is sent, to imitate S3's latency on a local store
    /// (`bench/tiered --get-latency 20ms`). Default: 0s (off).
    #[serde(with = "humantime_serde")]
    pub bench_get_delay: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            url: "./data/objects".to_owned(),
            file_sync: true,
            s3: S3Options::default(),
            bench_get_delay: Duration::ZERO,
        }
    }
}

/// S3-compatible endpoint settings. Unset credentials fall back to the standard `AWS_*`
/// environment variables.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct S3Options {
    /// Endpoint URL, e.g. `http://127.0.0.1:9000` for MinIO. Default: none (AWS).
    pub endpoint: Option<String>,
    /// Region. Default: `us-east-1`.
    pub region: String,
    /// Access key id. Default: from `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// Secret key. Default: from `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// Allow plain `http://` endpoints. Default: false.
    pub allow_http: bool,
    /// Use virtual-hosted-style (`bucket.host`) instead of path-style requests.
    /// Default: false (path-style, as MinIO and moto expect).
    pub virtual_hosted_style: bool,
    /// Retries the client makes on 5xx and connection errors. Default: 3.
    pub max_retries: usize,
    /// Per-request timeout. Default: 30s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for S3Options {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".to_owned(),
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            virtual_hosted_style: false,
            max_retries: 3,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Result of a create-only put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// This call created the object.
    Created,
    /// The object already existed; nothing was written.
    AlreadyExists,
}

/// Per-call object-store metrics.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    /// Latency of every call.
    pub latency: Histogram,
    /// Calls that returned an error (not counting `NotFound`/`AlreadyExists` answers).
    pub errors: Counter,
    /// Bytes uploaded.
    pub bytes_put: Counter,
    /// Bytes downloaded.
    pub bytes_get: Counter,
}

/// Copy of [`StoreMetrics`].
#[derive(Debug, Clone, Default)]
pub struct StoreMetricsSnapshot {
    /// Latency of every call.
    pub latency: HistogramSnapshot,
    /// Failed calls.
    pub errors: u64,
    /// Bytes uploaded.
    pub bytes_put: u64,
    /// Bytes downloaded.
    pub bytes_get: u64,
}

/// A handle to the object store: cheap to clone.
#[derive(Debug, Clone)]
pub struct ObjStore {
    inner: Arc<dyn ObjectStore>,
    description: Arc<str>,
    metrics: Arc<StoreMetrics>,
    /// [`StoreOptions::bench_get_delay`].
    get_delay: Duration,
}

impl ObjStore {
    /// Wraps any `object_store` implementation.
    pub fn new(inner: Arc<dyn ObjectStore>, description: impl Into<Arc<str>>) -> Self {
        Self {
            inner,
            description: description.into(),
            metrics: Arc::default(),
            get_delay: Duration::ZERO,
        }
    }

    /// This handle with every read delayed by `delay` ([`StoreOptions::bench_get_delay`]).
    #[must_use]
    pub fn with_get_delay(mut self, delay: Duration) -> Self {
        self.get_delay = delay;
        if !delay.is_zero() {
            self.description = format!("{} (reads delayed {delay:?})", self.description).into();
        }
        self
    }

    async fn read_delay(&self) {
        if !self.get_delay.is_zero() {
            tokio::time::sleep(self.get_delay).await;
        }
    }

    /// A fresh in-memory store.
    #[must_use]
    pub fn in_memory() -> Self {
        Self::new(Arc::new(InMemory::new()), "memory://")
    }

    /// Opens the backend named by `opts.url`.
    pub fn open(opts: &StoreOptions) -> Result<Self> {
        Ok(Self::open_backend(opts)?.with_get_delay(opts.bench_get_delay))
    }

    fn open_backend(opts: &StoreOptions) -> Result<Self> {
        let url = opts.url.trim();
        if url == "memory://" || url == "memory:" {
            return Ok(Self::in_memory());
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            return Self::open_s3(rest, &opts.s3);
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.is_empty() || url.contains("://") && !url.starts_with("file://") {
            return Err(Error::Config {
                field: "store.url",
                reason: format!(
                    "unsupported object store url {url:?}; use file://, s3:// or memory://"
                ),
            });
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io("create object store dir", path, e))?;
        let fs = LocalFileSystem::new_with_prefix(path)
            .map_err(|e| Error::Config {
                field: "store.url",
                reason: format!("cannot use {path:?} as object store root: {e}"),
            })?
            .with_fsync(opts.file_sync);
        let abs = std::fs::canonicalize(path)
            .map_or_else(|_| path.to_owned(), |p| p.display().to_string());
        let sync = if opts.file_sync { "" } else { " (no fsync)" };
        Ok(Self::new(Arc::new(fs), format!("file://{abs}{sync}")))
    }

    fn open_s3(rest: &str, s3: &S3Options) -> Result<Self> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Config {
                field: "store.url",
                reason: "s3:// url needs a bucket: s3://bucket/prefix".to_owned(),
            });
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&s3.region)
            .with_allow_http(s3.allow_http)
            .with_virtual_hosted_style_request(s3.virtual_hosted_style)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: s3.max_retries,
                retry_timeout: s3.request_timeout * 4,
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_timeout(s3.request_timeout)
                    .with_allow_http(s3.allow_http),
            );
        if let Some(e) = &s3.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(k) = &s3.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &s3.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        let s3store = b.build().map_err(|e| Error::Config {
            field: "store.s3",
            reason: e.to_string(),
        })?;
        let desc = format!("s3://{rest}");
        let prefix = prefix.trim_matches('/');
        let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3store)
        } else {
            Arc::new(PrefixStore::new(s3store, prefix))
        };
        Ok(Self::new(inner, desc))
    }

    /// Human-readable location, for logs and the start-up banner.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }

    /// A handle on the same store whose calls count into metrics of their own (one per
    /// in-process node of `tierkv dev`, so that each node exports only its own calls).
    #[must_use]
    pub fn with_own_metrics(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            description: Arc::clone(&self.description),
            metrics: Arc::default(),
            get_delay: self.get_delay,
        }
    }

    /// Registers the metrics of calls made through this handle (and its clones) into
    /// `registry`: `tierkv_object_store_*`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let m = &self.metrics;
        registry.register(
            "tierkv_object_store_request_duration_seconds",
            "Object-store call latency",
            m.latency.clone(),
        );
        registry.register(
            "tierkv_object_store_errors",
            "Failed object-store calls",
            m.errors.clone(),
        );
        registry.register(
            "tierkv_object_store_put_bytes",
            "Bytes written to object storage",
            m.bytes_put.clone(),
        );
        registry.register(
            "tierkv_object_store_get_bytes",
            "Bytes read from object storage",
            m.bytes_get.clone(),
        );
    }

    /// Metrics of calls made through this handle (and its clones).
    #[must_use]
    pub fn metrics(&self) -> StoreMetricsSnapshot {
        StoreMetricsSnapshot {
            latency: self.metrics.latency.snapshot(),
            errors: self.metrics.errors.get(),
            bytes_put: self.metrics.bytes_put.get(),
            bytes_get: self.metrics.bytes_get.get(),
        }
    }

    fn done<T>(&self, start: Instant, r: &object_store::Result<T>) {
        self.metrics.latency.observe(start.elapsed());
        if let Err(e) = r
            && !matches!(
                e,
                object_store::Error::NotFound { .. } | object_store::Error::AlreadyExists { .. }
            )
        {
            self.metrics.errors.inc();
        }
    }

    /// Writes an object (unconditionally; used for uniquely named immutable objects).
    pub async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        let start = Instant::now();
        let len = data.len() as u64;
        let r = self
            .inner
            .put(&Path::from(key), PutPayload::from(data))
            .await;
        self.done(start, &r);
        r.map_err(|e| Error::store("put", key, e))?;
        self.metrics.bytes_put.inc_by(len);
        Ok(())
    }

    /// Writes an object only if it does not exist yet: the first writer wins.
    pub async fn put_create(&self, key: &str, data: Bytes) -> Result<CreateOutcome> {
        let start = Instant::now();
        let len = data.len() as u64;
        let r = self
            .inner
            .put_opts(
                &Path::from(key),
                PutPayload::from(data),
                PutMode::Create.into(),
            )
            .await;
        self.done(start, &r);
        match r {
            Ok(_) => {
                self.metrics.bytes_put.inc_by(len);
                Ok(CreateOutcome::Created)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(CreateOutcome::AlreadyExists),
            Err(e) => Err(Error::store("put_create", key, e)),
        }
    }

    /// Reads a whole object; `None` if it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.read_delay().await;
        let start = Instant::now();
        let r = match self.inner.get(&Path::from(key)).await {
            Ok(g) => g.bytes().await,
            Err(e) => Err(e),
        };
        self.done(start, &r);
        match r {
            Ok(b) => {
                self.metrics.bytes_get.inc_by(b.len() as u64);
                Ok(Some(b))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::store("get", key, e)),
        }
    }

    /// Reads a byte range of an object.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.read_delay().await;
        let start = Instant::now();
        let r = self.inner.get_range(&Path::from(key), range).await;
        self.done(start, &r);
        let b = r.map_err(|e| Error::store("get_range", key, e))?;
        self.metrics.bytes_get.inc_by(b.len() as u64);
        Ok(b)
    }

    /// Size of an object in bytes.
    pub async fn size(&self, key: &str) -> Result<u64> {
        let start = Instant::now();
        let r = self.inner.head(&Path::from(key)).await;
        self.done(start, &r);
        Ok(r.map_err(|e| Error::store("head", key, e))?.size)
    }

    /// Keys (with sizes) under `prefix`, sorted; `offset` skips keys `<=` it.
    pub async fn list(&self, prefix: &str, offset: Option<&str>) -> Result<Vec<(String, u64)>> {
        let start = Instant::now();
        let p = Path::from(prefix);
        let stream = match offset {
            Some(o) => self.inner.list_with_offset(Some(&p), &Path::from(o)),
            None => self.inner.list(Some(&p)),
        };
        let r: object_store::Result<Vec<_>> = stream.try_collect().await;
        self.done(start, &r);
        let mut v: Vec<(String, u64)> = r
            .map_err(|e| Error::store("list", prefix, e))?
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Keys under `prefix` with their last-modified time (unix millis), sorted.
    pub async fn list_modified(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let start = Instant::now();
        let r: object_store::Result<Vec<_>> = self
            .inner
            .list(Some(&Path::from(prefix)))
            .try_collect()
            .await;
        self.done(start, &r);
        let mut v: Vec<(String, u64)> = r
            .map_err(|e| Error::store("list", prefix, e))?
            .into_iter()
            .map(|m| {
                let ms = u64::try_from(m.last_modified.timestamp_millis()).unwrap_or(0);
                (m.location.to_string(), ms)
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.delete(&Path::from(key)).await;
        self.done(start, &r);
        match r {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::store("delete", key, e)),
        }
    }
}

/// Exponential backoff with full jitter for background retries (flush uploads, manifest
/// reads). Starts at `initial`, doubles up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max`.
    #[must_use]
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { next: initial, max }
    }

    /// The next delay to wait: uniformly random in `[0, current]`, then the bound doubles.
    pub fn next_delay(&mut self) -> Duration {
        let cur = self.next;
        self.next = (self.next * 2).min(self.max);
        let ms = u64::try_from(cur.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(rand::random_range(ms / 2..=ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registers_call_figures_per_handle_family() {
        let s = ObjStore::in_memory();
        let own = s.with_own_metrics();
        let mut r = Registry::default();
        own.register_metrics(&mut r);
        own.put_create("a", Bytes::from_static(b"123"))
            .await
            .expect("put");
        s.put_create("b", Bytes::from_static(b"4567"))
            .await
            .expect("put through the other handle");
        let text = crate::metrics::encode_text(&r).expect("encodes");
        for line in [
            "# TYPE tierkv_object_store_request_duration_seconds histogram",
            "tierkv_object_store_request_duration_seconds_count 1",
            "# TYPE tierkv_object_store_errors_total counter",
            "tierkv_object_store_errors_total 0",
            "# TYPE tierkv_object_store_put_bytes_total counter",
            "tierkv_object_store_put_bytes_total 3",
            "# TYPE tierkv_object_store_get_bytes_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert_eq!(
            s.metrics().bytes_put,
            4,
            "each handle family counts its own calls"
        );
    }

    #[tokio::test]
    async fn create_only_has_one_winner() {
        let s = ObjStore::in_memory();
        assert_eq!(
            s.put_create("a", Bytes::from_static(b"1")).await.ok(),
            Some(CreateOutcome::Created)
        );
        assert_eq!(
            s.put_create("a", Bytes::from_static(b"2")).await.ok(),
            Some(CreateOutcome::AlreadyExists)
        );
        assert_eq!(
            s.get("a").await.ok().flatten(),
            Some(Bytes::from_static(b"1"))
        );
    }

    #[tokio::test]
    async fn local_fs_delete_of_missing_is_ok_and_list_is_sorted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ObjStore::open(&StoreOptions {
            url: format!("file://{}", dir.path().display()),
            ..StoreOptions::default()
        })
        .expect("open");
        s.delete("nope/x").await.expect("missing delete is ok");
        for k in ["p/3", "p/1", "p/2"] {
            s.put(k, Bytes::from_static(b"x")).await.expect("put");
        }
        let keys: Vec<_> = s
            .list("p", None)
            .await
            .expect("list")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["p/1", "p/2", "p/3"]);
        let after: Vec<_> = s
            .list("p", Some("p/1"))
            .await
            .expect("list")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(after, ["p/2", "p/3"]);
        assert_eq!(
            s.get_range("p/1", 0..1).await.expect("range"),
            Bytes::from_static(b"x")
        );
    }

    #[test]
    fn unknown_scheme_is_a_config_error() {
        let r = ObjStore::open(&StoreOptions {
            url: "ftp://x".to_owned(),
            ..StoreOptions::default()
        });
        assert!(matches!(r, Err(Error::Config { .. })));
    }

    #[test]
    fn backoff_is_bounded() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        for _ in 0..20 {
            assert!(b.next_delay() <= Duration::from_millis(100));
        }
    }
}
