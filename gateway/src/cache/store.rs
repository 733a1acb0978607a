//! [`ValueStore`]: the gateway's foyer hybrid cache of values (memory tier, optional disk
//! tier in the gateway's own directory), keyed by user key, each value with its version.
//!
//! A stored value is the value its key had at its version (design note 0008, invariant 1):
//! nothing here says whether that version is still current. That is what the freshness facts
//! (`fresh.rs`) and the leader's revalidation are for. So the disk tier may keep anything
//! across a restart: its entries are served only after a leader confirmed their version.
//!
//! foyer settings as in the block cache (`cache/src/block.rs`): `WriteOnEviction`,
//! `flush_on_close`, `RecoverMode::Quiet`, psync I/O. The disk tier is lossy by design (foyer
//! drops writes rather than block); its disk blocks are sized to hold the largest value the
//! gateway accepts, so large values reach disk too. The directory is locked (`LOCK`, as data
//! directories are) for the life of the store: two gateways never share one.
//!
//! # Encoding on disk
//!
//! Key: u8 format (1), u32 length, the user key. Value: u8 format (1), u64 version, u8 flags
//! (bit 0 content type, bit 1 expiry), u64 expires_at if bit 1, u32 length + content type if
//! bit 0, u32 length + value; little-endian. An unknown format byte decodes as foyer's
//! `MagicMismatch`, which foyer turns into a miss. foyer checksums key and value on disk.

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use foyer::{
    BlockEngineConfig, Code, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder,
    HybridCachePolicy, PsyncIoEngineConfig, RecoverMode, S3FifoConfig,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use tierkv_engine::dirlock::DirLock;
use tierkv_engine::metrics::{Counter, Registry};

use super::CacheOptions;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// foyer's device page size.
const PAGE: u64 = 4 * KIB;
/// Room in a disk block for foyer's blob index and entry headers besides one value.
const BLOCK_SLACK: u64 = 64 * KIB;
/// Target number of disk blocks on the device.
const TARGET_DISK_BLOCKS: u64 = 64;
/// Fewest disk blocks foyer's block engine works well with.
const MIN_DISK_BLOCKS: u64 = 8;
/// Largest disk block configured.
const MAX_DISK_BLOCK: u64 = 64 * MIB;
/// Format byte of keys and values.
const FORMAT: u8 = 1;

/// One cached value: what a key held at `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedValue {
    /// The version (seq of the batch that wrote it).
    pub version: u64,
    /// The value.
    pub value: Bytes,
    /// The stored content type, if any.
    pub content_type: Option<Bytes>,
    /// Absolute expiry in unix millis, if any.
    pub expires_at: Option<u64>,
}

impl CachedValue {
    /// Whether the value has expired at `now` (unix millis).
    #[must_use]
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// The same value in buffers of its own. A value arrives as a slice of a larger buffer
    /// (the HTTP request body's read buffer, a node's batched answer), and a cached slice
    /// would keep all of that buffer alive while the weigher counts only the slice: the
    /// memory tier then held several times its size (a gateway at 64 MiB reached ~600 MiB
    /// resident under 1 KiB writes).
    fn owned(&self) -> Self {
        Self {
            version: self.version,
            value: owned(&self.value),
            content_type: self.content_type.as_ref().map(owned),
            expires_at: self.expires_at,
        }
    }

    fn weight(&self) -> usize {
        self.value.len() + self.content_type.as_ref().map_or(0, Bytes::len) + 32
    }
}

/// `b` copied into an allocation of exactly its length.
fn owned(b: &Bytes) -> Bytes {
    Bytes::copy_from_slice(b)
}

fn io(e: std::io::Error) -> foyer::Error {
    foyer::Error::io_error(e)
}

fn read_u32(r: &mut impl Read) -> foyer::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(io)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> foyer::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(io)?;
    Ok(u64::from_le_bytes(b))
}

fn read_u8(r: &mut impl Read) -> foyer::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).map_err(io)?;
    Ok(b[0])
}

fn read_bytes(r: &mut impl Read) -> foyer::Result<Bytes> {
    let len = usize::try_from(read_u32(r)?).map_err(|_| {
        foyer::Error::new(foyer::ErrorKind::Parse, "length does not fit this platform")
    })?;
    // The length is not trusted before the bytes are there: the buffer grows with what is
    // read (a damaged length cannot make the gateway allocate 4 GiB).
    let mut v = Vec::with_capacity(len.min(4 << 10));
    r.take(len as u64).read_to_end(&mut v).map_err(io)?;
    if v.len() != len {
        return Err(foyer::Error::new(
            foyer::ErrorKind::Parse,
            "gateway cache entry shorter than its length field",
        ));
    }
    Ok(Bytes::from(v))
}

fn write_bytes(w: &mut impl Write, b: &[u8]) -> foyer::Result<()> {
    let len = u32::try_from(b.len())
        .map_err(|_| foyer::Error::new(foyer::ErrorKind::Parse, "value over 4 GiB"))?;
    w.write_all(&len.to_le_bytes()).map_err(io)?;
    w.write_all(b).map_err(io)
}

fn check_format(r: &mut impl Read) -> foyer::Result<()> {
    let f = read_u8(r)?;
    if f == FORMAT {
        Ok(())
    } else {
        Err(foyer::Error::new(
            foyer::ErrorKind::MagicMismatch,
            "unknown gateway cache format",
        )
        .with_context("format", f))
    }
}

/// The foyer key: a user key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StoreKey(pub(crate) Bytes);

impl Code for StoreKey {
    fn encode(&self, w: &mut impl Write) -> foyer::Result<()> {
        w.write_all(&[FORMAT]).map_err(io)?;
        write_bytes(w, &self.0)
    }

    fn decode(r: &mut impl Read) -> foyer::Result<Self> {
        check_format(r)?;
        Ok(Self(read_bytes(r)?))
    }

    fn estimated_size(&self) -> usize {
        5 + self.0.len()
    }
}

impl Code for CachedValue {
    fn encode(&self, w: &mut impl Write) -> foyer::Result<()> {
        w.write_all(&[FORMAT]).map_err(io)?;
        w.write_all(&self.version.to_le_bytes()).map_err(io)?;
        let flags =
            u8::from(self.content_type.is_some()) | (u8::from(self.expires_at.is_some()) << 1);
        w.write_all(&[flags]).map_err(io)?;
        if let Some(t) = self.expires_at {
            w.write_all(&t.to_le_bytes()).map_err(io)?;
        }
        if let Some(ct) = &self.content_type {
            write_bytes(w, ct)?;
        }
        write_bytes(w, &self.value)
    }

    fn decode(r: &mut impl Read) -> foyer::Result<Self> {
        check_format(r)?;
        let version = read_u64(r)?;
        let flags = read_u8(r)?;
        if flags & !0b11 != 0 {
            return Err(foyer::Error::new(
                foyer::ErrorKind::Parse,
                "unknown gateway cache value flags",
            ));
        }
        let expires_at = if flags & 0b10 != 0 {
            Some(read_u64(r)?)
        } else {
            None
        };
        let content_type = if flags & 0b01 != 0 {
            Some(read_bytes(r)?)
        } else {
            None
        };
        Ok(Self {
            version,
            value: read_bytes(r)?,
            content_type,
            expires_at,
        })
    }

    fn estimated_size(&self) -> usize {
        1 + 8 + 1 + 8 + 4 + self.content_type.as_ref().map_or(0, Bytes::len) + 4 + self.value.len()
    }
}

/// Why the value store could not be opened or closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Opened outside a Tokio runtime.
    #[error("the gateway cache must be opened inside a Tokio runtime")]
    NoRuntime,
    /// An option is out of range.
    #[error("invalid gateway cache option {field}: {reason}")]
    InvalidOptions {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The directory could not be created or locked.
    #[error("gateway cache directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: tierkv_engine::Error,
    },
    /// foyer failed to open, flush or close the cache.
    #[error("gateway cache{}: {source}", .dir.as_ref().map(|d| format!(" in {}", d.display())).unwrap_or_default())]
    Foyer {
        /// The disk directory, if any.
        dir: Option<PathBuf>,
        /// foyer's error.
        source: foyer::Error,
    },
}

/// Labels of `tierkv_gateway_cache_lookups_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LookupLabels {
    tier: &'static str,
    result: &'static str,
}

/// Lookups per tier: handles resolved once from their family.
#[derive(Debug, Clone)]
pub(crate) struct TierCounters {
    family: Family<LookupLabels, Counter>,
    pub(crate) memory_hits: Counter,
    pub(crate) memory_misses: Counter,
    pub(crate) disk_hits: Counter,
    pub(crate) disk_misses: Counter,
}

impl Default for TierCounters {
    fn default() -> Self {
        let family: Family<LookupLabels, Counter> = Family::default();
        let get = |tier, result| family.get_or_create_owned(&LookupLabels { tier, result });
        Self {
            memory_hits: get("memory", "hit"),
            memory_misses: get("memory", "miss"),
            disk_hits: get("disk", "hit"),
            disk_misses: get("disk", "miss"),
            family,
        }
    }
}

impl TierCounters {
    fn register(&self, registry: &mut Registry) {
        let family = self.family.clone();
        registry.register(
            "tierkv_gateway_cache_lookups",
            "Value cache lookups by tier (memory, then disk for memory misses) and result",
            family,
        );
    }
}

/// The hybrid value cache. Cheap to clone.
#[derive(Clone)]
pub struct ValueStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    cache: HybridCache<StoreKey, CachedValue>,
    dir: Option<PathBuf>,
    counters: TierCounters,
    /// Held while the store is open: one process per cache directory.
    _lock: Option<DirLock>,
}

impl fmt::Debug for ValueStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// foyer disk block size and device capacity for `disk_bytes` holding values up to
/// `max_value_bytes`.
#[expect(
    clippy::result_large_err,
    reason = "runs once, when the store opens; the error carries the directory's path"
)]
fn disk_layout(disk_bytes: u64, max_value_bytes: usize) -> Result<(usize, usize), StoreError> {
    let value = u64::try_from(max_value_bytes).unwrap_or(u64::MAX);
    let min_block = (value.saturating_add(BLOCK_SLACK)).max(MIB).div_ceil(PAGE) * PAGE;
    let block = (disk_bytes / TARGET_DISK_BLOCKS).clamp(min_block, MAX_DISK_BLOCK.max(min_block));
    let block = block.div_ceil(PAGE) * PAGE;
    if disk_bytes < block * MIN_DISK_BLOCKS {
        return Err(StoreError::InvalidOptions {
            field: "disk_bytes",
            reason: format!(
                "{disk_bytes} is below {} ({MIN_DISK_BLOCKS} disk blocks of {block} bytes, each \
                 holding the largest value)",
                block * MIN_DISK_BLOCKS
            ),
        });
    }
    let capacity = disk_bytes - disk_bytes % block;
    let fit = |v: u64| {
        usize::try_from(v).map_err(|_| StoreError::InvalidOptions {
            field: "disk_bytes",
            reason: "does not fit this platform".to_owned(),
        })
    };
    Ok((fit(block)?, fit(capacity)?))
}

impl ValueStore {
    /// Opens the store: a memory tier of `opts.memory_bytes` and, with `opts.disk_dir`, a
    /// disk tier there (created if missing, locked, recovered from what a previous store left).
    pub async fn open(opts: &CacheOptions, max_value_bytes: usize) -> Result<Self, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::NoRuntime);
        }
        let builder = HybridCacheBuilder::<StoreKey, CachedValue>::new()
            .with_name("tierkv_gateway_cache")
            .with_policy(HybridCachePolicy::WriteOnEviction)
            .with_flush_on_close(true)
            .memory(opts.memory_bytes)
            // S3-FIFO: a hit only bumps an atomic frequency under the shard's read lock (LRU
            // relinks the entry under its write lock on every hit: ~5 % of a gateway's CPU
            // under zipfian strong reads), and it resists scans.
            .with_eviction_config(S3FifoConfig::default())
            .with_weighter(|k: &StoreKey, v: &CachedValue| k.0.len() + v.weight())
            .storage();
        let (cache, lock) = match &opts.disk_dir {
            None => {
                let cache = builder
                    .build()
                    .await
                    .map_err(|source| StoreError::Foyer { dir: None, source })?;
                (cache, None)
            }
            Some(dir) => {
                let (block, capacity) = disk_layout(opts.disk_bytes, max_value_bytes)?;
                let dir_err = |source| StoreError::Dir {
                    path: dir.clone(),
                    source,
                };
                std::fs::create_dir_all(dir).map_err(|e| {
                    dir_err(tierkv_engine::Error::Io {
                        op: "create the gateway cache directory",
                        path: dir.clone(),
                        source: e,
                    })
                })?;
                let lock = DirLock::acquire(dir).map_err(dir_err)?;
                let foyer_err = |source| StoreError::Foyer {
                    dir: Some(dir.clone()),
                    source,
                };
                let device = FsDeviceBuilder::new(dir)
                    .with_capacity(capacity)
                    .build()
                    .map_err(foyer_err)?;
                let cache = builder
                    .with_io_engine_config(PsyncIoEngineConfig::new())
                    .with_engine_config(BlockEngineConfig::new(device).with_block_size(block))
                    .with_recover_mode(RecoverMode::Quiet)
                    .build()
                    .await
                    .map_err(foyer_err)?;
                (cache, Some(lock))
            }
        };
        tracing::info!(
            memory_bytes = opts.memory_bytes,
            disk_dir = ?opts.disk_dir,
            "gateway value cache opened"
        );
        Ok(Self {
            inner: Arc::new(StoreInner {
                cache,
                dir: opts.disk_dir.clone(),
                counters: TierCounters::default(),
                _lock: lock,
            }),
        })
    }

    /// Whether the store has a disk tier.
    #[must_use]
    pub fn has_disk_tier(&self) -> bool {
        self.inner.cache.is_hybrid()
    }

    /// Registers the lookup counters into `registry`.
    pub(crate) fn register_metrics(&self, registry: &mut Registry) {
        self.inner.counters.register(registry);
    }

    pub(crate) fn counters(&self) -> &TierCounters {
        &self.inner.counters
    }

    /// The value cached for `key` in the memory tier only, counted as a memory lookup.
    pub(crate) fn get_memory(&self, key: &Bytes) -> Option<CachedValue> {
        let c = &self.inner.counters;
        if let Some(e) = self.inner.cache.memory().get(&StoreKey(key.clone())) {
            c.memory_hits.inc();
            return Some(e.value().clone());
        }
        c.memory_misses.inc();
        None
    }

    /// The value cached for `key` (memory tier, then disk tier), counted per tier. A foyer
    /// error is a miss.
    pub(crate) async fn get(&self, key: &Bytes) -> Option<CachedValue> {
        let k = StoreKey(key.clone());
        let c = &self.inner.counters;
        if let Some(e) = self.inner.cache.memory().get(&k) {
            c.memory_hits.inc();
            return Some(e.value().clone());
        }
        c.memory_misses.inc();
        if !self.has_disk_tier() {
            return None;
        }
        match self.inner.cache.get(&k).await {
            Ok(Some(e)) => {
                c.disk_hits.inc();
                Some(e.value().clone())
            }
            Ok(None) => {
                c.disk_misses.inc();
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "gateway cache lookup failed; a miss");
                c.disk_misses.inc();
                None
            }
        }
    }

    /// Caches `value` for `key`, unless the memory tier already holds this version or a
    /// newer one.
    pub(crate) fn insert(&self, key: Bytes, value: CachedValue) {
        if self
            .memory_version(&key)
            .is_none_or(|held| held < value.version)
        {
            self.put(&key, &value);
        }
    }

    /// Replaces the memory tier's value of `key` with `value` when it holds an older version
    /// (this gateway wrote the key). A key the memory tier does not hold stays out: values
    /// enter the cache when they are read, so writes of keys nobody reads through this
    /// gateway cost no copy, no memory and no eviction (a cached older version elsewhere is
    /// never served: the key's fact names the new version).
    pub(crate) fn update(&self, key: &Bytes, value: CachedValue) {
        if self
            .memory_version(key)
            .is_some_and(|held| held < value.version)
        {
            self.put(key, &value);
        }
    }

    /// The version of `key` the memory tier holds, if any.
    fn memory_version(&self, key: &Bytes) -> Option<u64> {
        let e = self.inner.cache.memory().get(&StoreKey(key.clone()))?;
        Some(e.value().version)
    }

    /// Caches an owned copy of `value` for `key` (no buffer it arrived in stays pinned).
    fn put(&self, key: &Bytes, value: &CachedValue) {
        drop(self.inner.cache.insert(StoreKey(owned(key)), value.owned()));
    }

    /// Drops `key` from both tiers.
    pub(crate) fn remove(&self, key: &Bytes) {
        self.inner.cache.remove(&StoreKey(key.clone()));
    }

    /// Flushes the memory tier to disk (best effort) and closes the store.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.inner
            .cache
            .close()
            .await
            .map_err(|source| StoreError::Foyer {
                dir: self.inner.dir.clone(),
                source,
            })
    }

    /// Whether `key` has reached the disk tier proper (tests).
    #[cfg(test)]
    pub(crate) async fn on_disk(&self, key: &Bytes) -> bool {
        matches!(
            self.inner
                .cache
                .storage()
                .load(&StoreKey(key.clone()))
                .await,
            Ok(foyer::Load::Entry { .. })
        )
    }

    /// Writes `value` to the disk tier only (tests).
    #[cfg(test)]
    pub(crate) fn insert_to_disk(&self, key: Bytes, value: CachedValue) {
        drop(
            self.inner
                .cache
                .storage_writer(StoreKey(key))
                .force()
                .insert(value),
        );
    }

    /// Drops every entry from the memory tier only (tests: the next lookups go to disk).
    #[cfg(test)]
    pub(crate) fn clear_memory(&self) {
        self.inner.cache.memory().clear();
    }
}
