//! Fault injection for tests: an object store wrapper that can be taken "down" (every call
//! fails like an unreachable server) or made to fail a number of calls, and counts calls.
//! Compiled in all builds because integration tests and the server's tests use it; it has
//! no effect unless a test wraps a store in it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// An `ObjectStore` that forwards to `inner` unless told to fail.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    down: AtomicBool,
    fail_next: AtomicU64,
    calls: AtomicU64,
    /// Reads (GETs, ranged or not) of segment objects (`…/segments/…`): data requests.
    segment_reads: AtomicU64,
    /// Delay before every read, in microseconds (0: none).
    read_delay_us: AtomicU64,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            down: AtomicBool::new(false),
            fail_next: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            segment_reads: AtomicU64::new(0),
            read_delay_us: AtomicU64::new(0),
        })
    }

    /// Reads of segment objects so far (data requests, not manifests or claims).
    #[must_use]
    pub fn segment_reads(&self) -> u64 {
        self.segment_reads.load(Ordering::SeqCst)
    }

    /// Makes every read wait `d` first (S3-like latency; concurrent reads overlap).
    pub fn set_read_delay(&self, d: std::time::Duration) {
        self.read_delay_us.store(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    async fn before_read(&self, location: &Path) {
        if location.as_ref().contains("/segments/") {
            self.segment_reads.fetch_add(1, Ordering::SeqCst);
        }
        let us = self.read_delay_us.load(Ordering::SeqCst);
        if us > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(us)).await;
        }
    }

    /// Makes every call fail (true) or succeed again (false).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Makes the next `n` calls fail.
    pub fn fail_next(&self, n: u64) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Calls made so far.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn check(&self) -> object_store::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let injected = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if self.down.load(Ordering::SeqCst) || injected {
            return Err(object_store::Error::Generic {
                store: "faulty",
                source: "injected object store failure".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check()?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check()?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check()?;
        self.before_read(location).await;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.check()?;
        self.before_read(location).await;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        if let Err(e) = self.check() {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if let Err(e) = self.check() {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if let Err(e) = self.check() {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.check()?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.check()?;
        self.inner.copy_opts(from, to, options).await
    }
}
