//! The gateway's read tier (design note 0008): a hybrid value cache, freshness facts, and
//! flights that coalesce concurrent reads of a key.
//!
//! - `store`: [`ValueStore`], foyer memory + optional disk tier of values with their versions.
//! - `fresh`: what this gateway knows about how current each key's state is (memory only).
//! - `flight`: one upstream request per key for the reads that may share it.
//! - [`ReadTier`] (here): reads (strong: always through a flight, which revalidates the cached
//!   version with the leader; eventual: from the cache within `max_staleness`, else through a
//!   flight), and what writes teach it.
//!
//! Every answer passes the expiry check against the gateway's clock.

mod flight;
mod fresh;
pub(crate) mod store;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use tierkv_engine::metrics::{Counter, Registry};
use tierkv_engine::types::{Entry, EntryKind, ReadConsistency, SeqNo, ShardId};
use tokio::time::Instant;

pub(crate) use self::flight::Answer;
use self::flight::{Driver, FlightResult, Flights, Joined, Resolved};
use self::fresh::{Fact, Facts, ShardLeases, State};
pub use self::store::{CachedValue, StoreError, ValueStore};
use crate::backend::{Backend, BackendError, Lease, Revalidated};
use crate::keys;

/// The largest `max_staleness` a read may ask for; facts live this long.
pub const MAX_STALENESS: Duration = Duration::from_secs(3600);

/// The environment variable of the planted bug (tests only; design note 0008): set to
/// [`PLANTED_BUG_VALUE`], strong reads are served from the cache without revalidation.
pub const PLANTED_BUG_ENV: &str = "TIERKV_PLANTED_BUG";
/// The value of [`PLANTED_BUG_ENV`] that plants it.
pub const PLANTED_BUG_VALUE: &str = "strong-reads-from-cache";

/// Settings of the gateway's value cache and read coalescing (`[gateway.cache]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheOptions {
    /// Keep a value cache: eventual reads within `max_staleness` are answered from it, and
    /// strong reads revalidate cached versions with the leader instead of fetching values.
    /// Off: every read goes to the shard's leader. Default: true.
    pub enabled: bool,
    /// Memory tier of the value cache, in bytes (values, content types, keys). Default: 64 MiB
    /// (67108864).
    pub memory_bytes: usize,
    /// Directory of the disk tier (created if missing, locked while the gateway runs; one
    /// gateway per directory). `tierkv dev` puts it under its data directory
    /// (`<data_dir>/gateway-cache`). Default: none (memory only).
    pub disk_dir: Option<PathBuf>,
    /// Disk tier size in bytes (foyer creates its files at this size); at least eight disk
    /// blocks, each large enough for the largest value. Default: 1 GiB (1073741824).
    pub disk_bytes: u64,
    /// Memory for freshness facts (what the gateway knows of each key's currency: about the
    /// key plus 96 bytes per key). Default: 16 MiB (16777216).
    pub freshness_bytes: u64,
    /// `max_staleness` of an eventual read that gives none (humantime). Default: 1s.
    #[serde(with = "humantime_serde")]
    pub default_max_staleness: Duration,
    /// Concurrent reads of one key share one upstream request (a strong read only one sent
    /// after it arrived). Default: true.
    pub coalesce: bool,
    /// Ask shards' leaders for read leases with each revalidation (design note 0014) and
    /// answer strong reads of a key from the cache, without a round trip, while a lease for
    /// the shard's committed state it was read at holds (the leader then holds writes to the
    /// shard until the lease ends; leaders grant none under steady writes). Needs nodes of
    /// wire revision 6 with `cluster.read_lease` set. Default: false (leases are opt-in on
    /// both sides: a write to a shard under a lease waits for it).
    pub read_leases: bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            memory_bytes: 64 << 20,
            disk_dir: None,
            disk_bytes: 1 << 30,
            freshness_bytes: 16 << 20,
            default_max_staleness: Duration::from_secs(1),
            coalesce: true,
            read_leases: false,
        }
    }
}

/// What a read needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Linearizable.
    Strong,
    /// A state current at some instant no earlier than `max_staleness` before arrival.
    Eventual(Duration),
}

/// A read's answer.
#[derive(Debug, Clone)]
pub(crate) struct ReadOutcome {
    /// The live value, if any (expired values are none).
    pub(crate) value: Option<CachedValue>,
    pub(crate) answer: Answer,
}

/// Labels of `tierkv_gateway_cache_reads_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReadLabels {
    answer: &'static str,
}

/// The read tier's figures, resolved once.
#[derive(Debug, Clone)]
struct ReadMetrics {
    reads: Family<ReadLabels, Counter>,
    hit: Counter,
    revalidated: Counter,
    leased: Counter,
    miss: Counter,
    flights: Counter,
    coalesced: Counter,
}

impl ReadMetrics {
    fn new() -> Self {
        let reads: Family<ReadLabels, Counter> = Family::default();
        let get = |answer| reads.get_or_create_owned(&ReadLabels { answer });
        Self {
            hit: get("hit"),
            revalidated: get("revalidated"),
            leased: get("leased"),
            miss: get("miss"),
            reads,
            flights: Counter::default(),
            coalesced: Counter::default(),
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "tierkv_gateway_cache_reads",
            "Single-key reads by how they were answered: hit (from the cache, no round trip), \
             revalidated (the leader confirmed the cached version), leased (a strong read from \
             the cache under a leader's read lease, no round trip), miss (value from the node)",
            self.reads.clone(),
        );
        registry.register(
            "tierkv_gateway_cache_flights",
            "Upstream reads sent for the read tier (one per flight, shared by coalesced reads)",
            self.flights.clone(),
        );
        registry.register(
            "tierkv_gateway_cache_coalesced",
            "Reads answered by a flight another read opened",
            self.coalesced.clone(),
        );
    }

    fn count(&self, a: Answer) {
        let c = match a {
            Answer::Hit => &self.hit,
            Answer::Revalidated => &self.revalidated,
            Answer::Leased => &self.leased,
            Answer::Miss => &self.miss,
        };
        c.inc();
    }
}

/// Hits and lookups of each tier, for the admin endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TierStats {
    pub(crate) memory_hits: u64,
    pub(crate) memory_lookups: u64,
    /// Whether there is a disk tier at all.
    pub(crate) disk: bool,
    pub(crate) disk_hits: u64,
    pub(crate) disk_lookups: u64,
}

/// The read tier. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ReadTier {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    store: Option<ValueStore>,
    facts: Facts,
    /// Each shard's latest read lease by mark (design note 0014).
    shard_leases: ShardLeases,
    flights: Flights,
    coalesce: bool,
    /// Ask for read leases and serve strong reads under them (design note 0014).
    leases: bool,
    default_staleness: Duration,
    metrics: ReadMetrics,
    /// The planted bug is on (tests only).
    planted: bool,
}

impl std::fmt::Debug for ReadTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadTier")
            .field("store", &self.inner.store)
            .field("coalesce", &self.inner.coalesce)
            .finish_non_exhaustive()
    }
}

/// The cached form of a node's live entry (tombstones: none).
fn from_entry(e: Option<Entry>) -> Option<CachedValue> {
    let e = e?;
    match e.kind {
        EntryKind::Put {
            value,
            content_type,
        } => Some(CachedValue {
            version: e.seq.0,
            value,
            content_type,
            expires_at: e.expires_at,
        }),
        EntryKind::Tombstone => None,
    }
}

impl ReadTier {
    /// A read tier over `backend`; `store` is the value cache (none: no caching, reads still
    /// coalesce when `opts.coalesce`). Registers its figures into `registry`.
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        store: Option<ValueStore>,
        opts: &CacheOptions,
        registry: &mut Registry,
    ) -> Self {
        let metrics = ReadMetrics::new();
        metrics.register(registry);
        if let Some(s) = &store {
            s.register_metrics(registry);
        }
        let planted = std::env::var(PLANTED_BUG_ENV).is_ok_and(|v| v == PLANTED_BUG_VALUE);
        if planted {
            tracing::error!(
                "{PLANTED_BUG_ENV}={PLANTED_BUG_VALUE}: strong reads are served from the cache \
                 WITHOUT revalidation (a planted bug for tests; never set it in production)"
            );
        }
        Self {
            inner: Arc::new(Inner {
                backend,
                store,
                facts: Facts::new(opts.freshness_bytes, MAX_STALENESS),
                shard_leases: ShardLeases::default(),
                flights: Flights::default(),
                coalesce: opts.coalesce,
                leases: opts.read_leases,
                default_staleness: opts.default_max_staleness,
                metrics,
                planted,
            }),
        }
    }

    /// `max_staleness` of an eventual read that gives none.
    pub(crate) fn default_staleness(&self) -> Duration {
        self.inner.default_staleness
    }

    /// Whether a value cache is kept.
    pub(crate) fn caching(&self) -> bool {
        self.inner.store.is_some()
    }

    /// Lookups per tier so far.
    pub(crate) fn tier_stats(&self) -> TierStats {
        let Some(s) = &self.inner.store else {
            return TierStats::default();
        };
        let c = s.counters();
        TierStats {
            memory_hits: c.memory_hits.get(),
            memory_lookups: c.memory_hits.get() + c.memory_misses.get(),
            disk: s.has_disk_tier(),
            disk_hits: c.disk_hits.get(),
            disk_lookups: c.disk_hits.get() + c.disk_misses.get(),
        }
    }

    /// Reads user key `key` (in `shard`) as `want` says; `now_ms` is the gateway's clock
    /// for the expiry check.
    pub(crate) async fn read(
        &self,
        shard: ShardId,
        key: &Bytes,
        want: Want,
        now_ms: u64,
    ) -> Result<ReadOutcome, BackendError> {
        let arrival = Instant::now();
        let want = if self.inner.planted {
            Want::Eventual(MAX_STALENESS)
        } else {
            want
        };
        let bound = match want {
            Want::Strong => None,
            Want::Eventual(s) => Some(arrival.checked_sub(s)),
        };
        if bound.is_none()
            && let Some(leased) = self.leased_answer(shard, key)
        {
            self.inner.metrics.count(Answer::Leased);
            self.renew_early(shard, key);
            return Ok(ReadOutcome {
                value: leased.filter(|v| !v.expired(now_ms)),
                answer: Answer::Leased,
            });
        }
        if let Some(bound) = bound
            && let Some(hit) = self
                .cached_answer(shard, key, bound, self.inner.planted)
                .await
        {
            self.inner.metrics.count(Answer::Hit);
            return Ok(ReadOutcome {
                value: hit.filter(|v| !v.expired(now_ms)),
                answer: Answer::Hit,
            });
        }
        // The version a flight offers the leader comes from the memory tier, and from the
        // disk tier only for eventual reads: reading the disk tier costs a strong read more
        // than the leader's sending the value (measured: uniform strong reads over a
        // gateway disk tier ran at 0.58x of no cache); an eventual read may then be answered
        // without the value crossing the network again.
        let disk = bound.is_some();
        let resolved = if self.inner.coalesce {
            loop {
                match self.inner.flights.join(key, bound) {
                    Joined::Member(f) => {
                        self.inner.metrics.coalesced.inc();
                        if let Some(r) = f.wait().await {
                            break r;
                        }
                        // Abandoned by the read that drove it: start over.
                    }
                    Joined::Driver(d) => break self.inner.drive(shard, key, d, disk).await,
                }
            }
        } else {
            self.inner.drive(shard, key, Flights::alone(), disk).await
        }?;
        self.inner.metrics.count(resolved.answer);
        Ok(ReadOutcome {
            value: resolved.value.filter(|v| !v.expired(now_ms)),
            answer: resolved.answer,
        })
    }

    /// The cached state of `key` if a fact verified since `bound` vouches for it: `Some(None)`
    /// for a known absence. `any`: any cached value will do (the planted bug).
    async fn cached_answer(
        &self,
        shard: ShardId,
        key: &Bytes,
        bound: Option<Instant>,
        any: bool,
    ) -> Option<Option<CachedValue>> {
        let store = self.inner.store.as_ref()?;
        if any {
            return store.get(key).await.map(Some);
        }
        let fact = self.inner.facts.get(key)?;
        // A leased state is current now, whatever the bound (only strong reads renew
        // leases, as only they ask for them).
        if !fact.verified_since(bound) && !self.leased(shard, &fact, Instant::now()) {
            return None;
        }
        match fact.state {
            State::Absent(_) => Some(None),
            State::Present(v) => {
                let cached = store.get(key).await?;
                (cached.version == v).then_some(Some(cached))
            }
        }
    }

    /// The cached state of `key` (in `shard`) if a read lease vouches for it now (design
    /// note 0014): the leader confirmed it with a lease that has not ended (counted from
    /// before the request was sent), or read it at the committed state that the shard's
    /// current lease vouches for (its mark), so no write of the shard committed since, nor
    /// can commit before the lease ends; this instant, inside the read, is its
    /// linearization point. Memory tier only.
    fn leased_answer(&self, shard: ShardId, key: &Bytes) -> Option<Option<CachedValue>> {
        if !self.inner.leases {
            return None;
        }
        let store = self.inner.store.as_ref()?;
        let fact = self.inner.facts.get(key)?;
        match fact.state {
            State::Absent(_) if self.leased(shard, &fact, Instant::now()) => Some(None),
            State::Present(v) => {
                let cached = store.get_memory(key)?;
                // Checked after the lookup: the instant of the answer is within the lease.
                (cached.version == v && self.leased(shard, &fact, Instant::now()))
                    .then_some(Some(cached))
            }
            State::Absent(_) => None,
        }
    }

    /// Whether a read lease vouches for `fact` (of a key in `shard`) at `now`: its own, or
    /// the shard's lease of its mark. Never with read leases off.
    fn leased(&self, shard: ShardId, fact: &Fact, now: Instant) -> bool {
        self.inner.leases
            && (fact.leased_at(now) || self.inner.shard_leases.vouches(shard, fact.mark, now))
    }

    /// Renews `shard`'s read lease ahead of its end when that is due (design note 0014, point
    /// 6): a revalidation of `key` in the background, whose leased answer extends the
    /// shard's lease. One at a time per shard; the read that found it due does not wait.
    fn renew_early(&self, shard: ShardId, key: &Bytes) {
        if !self.inner.shard_leases.renewal_due(shard, Instant::now()) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let key = key.clone();
        tokio::spawn(async move {
            // Errors and refusals are the next reads' to meet: they find the lease ended.
            let _ = inner.drive(shard, &key, Flights::alone(), false).await;
            inner.shard_leases.renewed(shard);
        });
    }

    /// This gateway wrote `value` to `key`; the write was sent at `sent`. The key's fact
    /// becomes the write's version; a cached value of the key is replaced, but an uncached
    /// key's value is not added (`ValueStore::update`: values enter the cache when read).
    pub(crate) fn wrote(&self, key: &Bytes, value: CachedValue, sent: Instant) {
        let Some(store) = &self.inner.store else {
            return;
        };
        let fact = Fact {
            state: State::Present(value.version),
            verified_at: sent,
            learned_at: Instant::now(),
            leased_until: None,
            mark: None,
        };
        store.update(key, value);
        self.inner.facts.learn(key, fact);
    }

    /// This gateway deleted `key` (tombstone `version`); the delete was sent at `sent`.
    pub(crate) fn deleted(&self, key: &Bytes, version: u64, sent: Instant) {
        let Some(store) = &self.inner.store else {
            return;
        };
        store.remove(key);
        self.inner.facts.learn(
            key,
            Fact {
                state: State::Absent(Some(version)),
                verified_at: sent,
                learned_at: Instant::now(),
                leased_until: None,
                mark: None,
            },
        );
    }

    /// A write to `key` failed, may or may not have applied, or replayed an earlier outcome:
    /// what is known about the key no longer counts.
    pub(crate) fn forget(&self, key: &Bytes) {
        self.inner.facts.forget(key);
    }
}

/// Longest a flight waits for the key's previous flight before it is sent anyway.
const PREVIOUS_WAIT_MAX: Duration = Duration::from_millis(100);

impl Inner {
    /// Drives flight `d` for user key `key` in the reading request: waits for the key's
    /// previous flight, looks up the cached version (in the disk tier too when `disk`: an
    /// eventual read opened it; only a strong one asks for a read lease),
    /// closes the flight, asks the leader, learns from the answer and hands it to the
    /// flight's members. Dropped before that (the request went away), `d` abandons the
    /// flight and its members start over.
    async fn drive(
        &self,
        shard: ShardId,
        key: &Bytes,
        mut d: Driver<'_>,
        disk: bool,
    ) -> FlightResult {
        if let Some(prev) = &d.previous {
            // Its answer is not ours to use (a strong read may not join it): just wait, so
            // that a hot key costs a bounded number of requests per round trip. Not for long:
            // a flight stuck looking for a leader must not hold this one back for its wait.
            let _ = tokio::time::timeout(PREVIOUS_WAIT_MAX, prev.wait()).await;
        }
        let known = match &self.store {
            Some(s) if disk => s.get(key).await,
            Some(s) => s.get_memory(key),
            None => None,
        };
        let sent_at = d.close();
        self.metrics.flights.inc();
        let dkey = keys::data_key(key);
        let known_version = known.as_ref().map(|c| SeqNo(c.version));
        let resolve = |r: Revalidated, lease: Option<Lease>| match (r, &known) {
            (Revalidated::Unchanged, Some(cached)) => Ok(Resolved {
                value: Some(cached.clone()),
                answer: Answer::Revalidated,
                lease,
            }),
            (Revalidated::Unchanged, None) => Err(BackendError::Protocol {
                node: None,
                what: "unchanged answer to a read without a known version",
            }),
            (Revalidated::Current(e), _) => Ok(Resolved {
                value: from_entry(e),
                answer: Answer::Miss,
                lease,
            }),
        };
        // Only a flight a strong read opened asks for a lease: eventual reads have no use
        // for one, and a lease granted for nothing would hold the shard's next write.
        let result = if self.leases && !disk && self.store.is_some() {
            self.backend
                .get_leased(shard, dkey, known_version)
                .await
                .and_then(|(r, lease)| resolve(r, lease))
        } else {
            match known_version {
                Some(v) => self
                    .backend
                    .get_if_changed(shard, dkey, v)
                    .await
                    .and_then(|r| resolve(r, None)),
                None => self
                    .backend
                    .get(shard, dkey, ReadConsistency::Strong)
                    .await
                    .and_then(|e| resolve(Revalidated::Current(e), None)),
            }
        };
        if let Ok(r) = &result {
            self.learn(shard, key, r, sent_at);
        }
        d.answer(&result);
        result
    }

    /// What a flight's answer teaches the cache (and, with a lease, the shard's lease).
    fn learn(&self, shard: ShardId, key: &Bytes, r: &Resolved, sent_at: Instant) {
        let Some(store) = &self.store else {
            return;
        };
        let state = match &r.value {
            Some(v) => {
                if r.answer == Answer::Miss {
                    store.insert(key.clone(), v.clone());
                }
                State::Present(v.version)
            }
            None => {
                store.remove(key);
                State::Absent(None)
            }
        };
        // The lease counts from `sent_at`, before the request left: never later than the
        // leader's grant (design note 0014).
        let lease = r
            .lease
            .and_then(|l| Some((sent_at.checked_add(l.duration)?, l)));
        if let Some((until, l)) = lease {
            self.shard_leases.extend(shard, l.mark, until, l.duration);
        }
        self.facts.learn(
            key,
            Fact {
                state,
                verified_at: sent_at,
                learned_at: Instant::now(),
                leased_until: lease.map(|(until, _)| until),
                mark: lease.map(|(_, l)| l.mark),
            },
        );
    }
}
