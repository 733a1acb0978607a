//! Per-key rate limits (design note 0008): a token bucket per key and direction (reads,
//! writes) at this gateway, so that one runaway key cannot monopolise its shard's leader.
//! An empty bucket answers `429 rate_limited` with `Retry-After` (seconds until a token is
//! back, at least 1). Throttled requests are counted by reason in
//! `tierkv_gateway_throttled_total`. Time is tokio's clock (tests pause it).
//!
//! Buckets live in [`SHARDS`] mutex-guarded hash tables per direction, the shard chosen by
//! the key's hash (computed once per request). A bucket that has refilled to its burst is the
//! same as no bucket, so it may be dropped at any time; one idle for
//! [`KeyLimitOptions::idle`] counts as full again, dropped or not. A table holds at most its share of
//! [`KeyLimitOptions::tracked_keys`]: when a new key finds it full, one sweep drops every
//! refilled or idle bucket and, if that frees less than a quarter, the least recently used
//! quarter (their keys start again from a full bucket, as any evicted key does). A
//! sweep frees at least a quarter of the table, so its cost is spread over as many new keys.

use std::time::Duration;

use bytes::Bytes;
use hashbrown::HashTable;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use tierkv_engine::metrics::{Counter, Registry};
use tokio::time::Instant;

/// Settings of the per-key rate limits (`[gateway.limits]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyLimitOptions {
    /// Limit requests per key. Default: true.
    pub enabled: bool,
    /// Sustained reads per second one key may get at this gateway (single-key GET/HEAD and
    /// batch `get` items). Strong reads of one key reach its leader at most once per round
    /// trip anyway (coalescing); this bounds the gateway's own work. Default: 20000.
    pub reads_per_sec: u32,
    /// Reads of one key allowed at once after it was quiet (the bucket's size). Default: 20000.
    pub read_burst: u32,
    /// Sustained writes per second one key may get at this gateway (PUT, DELETE, batch
    /// `put`/`delete` items): each one is a replicated write on the key's leader.
    /// Default: 5000.
    pub writes_per_sec: u32,
    /// Writes of one key allowed at once after it was quiet. Default: 5000.
    pub write_burst: u32,
    /// Most keys whose buckets are kept (the least recently used go first). Default: 100000.
    pub tracked_keys: u64,
    /// A key's buckets are dropped after this long without requests (humantime).
    /// Default: 10s.
    #[serde(with = "humantime_serde")]
    pub idle: Duration,
}

impl Default for KeyLimitOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            reads_per_sec: 20_000,
            read_burst: 20_000,
            writes_per_sec: 5_000,
            write_burst: 5_000,
            tracked_keys: 100_000,
            idle: Duration::from_secs(10),
        }
    }
}

impl KeyLimitOptions {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        for (name, v) in [
            ("reads_per_sec", self.reads_per_sec),
            ("read_burst", self.read_burst),
            ("writes_per_sec", self.writes_per_sec),
            ("write_burst", self.write_burst),
        ] {
            if v == 0 {
                return Err(format!("gateway.limits.{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The per-process seeded hash of a user key that the limiter and the hot-key tracker share
/// (computed once per request).
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    use std::hash::BuildHasher as _;
    static SEED: std::sync::LazyLock<foldhash::quality::RandomState> =
        std::sync::LazyLock::new(foldhash::quality::RandomState::default);
    SEED.hash_one(key)
}

/// Which bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// A refused request: when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Throttled {
    pub(crate) access: Access,
    pub(crate) retry_after_secs: u64,
}

/// Tables per direction (a power of two).
pub(crate) const SHARDS: usize = 16;

/// A key's bucket.
#[derive(Debug)]
struct Bucket {
    hash: u64,
    key: Bytes,
    tokens: f64,
    /// Last request.
    at: Instant,
}

/// One direction's buckets.
struct Buckets {
    rate: f64,
    burst: f64,
    idle: Duration,
    /// Most buckets per table.
    per_table: usize,
    tables: [Mutex<HashTable<Bucket>>; SHARDS],
    throttled: Counter,
}

impl Buckets {
    fn new(rate: u32, burst: u32, opts: &KeyLimitOptions, throttled: Counter) -> Self {
        let per_table = usize::try_from(opts.tracked_keys.div_ceil(SHARDS as u64))
            .unwrap_or(usize::MAX)
            .max(4);
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            idle: opts.idle,
            per_table,
            tables: std::array::from_fn(|_| Mutex::new(HashTable::new())),
            throttled,
        }
    }

    /// The tokens `b` holds at `now`.
    /// The tokens `b` holds at `now`: a full bucket after `idle` without requests, as if it
    /// had been dropped (whether or not a sweep got to it).
    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.at);
        if elapsed >= self.idle {
            return self.burst;
        }
        (b.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst)
    }

    /// Takes a token for `key` (whose hash is `hash`), or says how long until one is back.
    fn take(&self, key: &[u8], hash: u64, now: Instant) -> Result<(), u64> {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the top bits pick one of SHARDS tables"
        )]
        let shard = (hash >> (64 - SHARDS.trailing_zeros())) as usize;
        let mut t = self.tables[shard].lock();
        let b = match t.find_mut(hash, |b| b.hash == hash && b.key == key) {
            Some(b) => b,
            None => {
                if t.len() >= self.per_table {
                    self.sweep(&mut t, now);
                }
                t.insert_unique(
                    hash,
                    Bucket {
                        hash,
                        key: Bytes::copy_from_slice(key),
                        tokens: self.burst,
                        at: now,
                    },
                    |b| b.hash,
                )
                .into_mut()
            }
        };
        let tokens = self.refilled(b, now);
        b.at = now;
        if tokens >= 1.0 {
            b.tokens = tokens - 1.0;
            return Ok(());
        }
        b.tokens = tokens;
        drop(t);
        self.throttled.inc();
        let wait = (1.0 - tokens) / self.rate;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive wait of at most one token's refill time"
        )]
        Err((wait.ceil() as u64).max(1))
    }

    /// Makes room in a full table: drops refilled and idle buckets, and the least recently
    /// used quarter if that freed less than a quarter.
    #[cold]
    fn sweep(&self, t: &mut HashTable<Bucket>, now: Instant) {
        t.retain(|b| {
            now.saturating_duration_since(b.at) < self.idle && self.refilled(b, now) < self.burst
        });
        let quarter = self.per_table / 4;
        if t.len() + quarter > self.per_table {
            let mut ats: Vec<Instant> = t.iter().map(|b| b.at).collect();
            let (_, cut, _) = ats.select_nth_unstable(quarter);
            let cut = *cut;
            t.retain(|b| b.at > cut);
        }
    }

    /// Buckets held (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.tables.iter().map(|t| t.lock().len()).sum()
    }
}

/// Labels of `tierkv_gateway_throttled_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ThrottleLabels {
    reason: &'static str,
}

/// The per-key limiter of a gateway.
pub(crate) struct KeyLimits {
    /// `None` when limits are off.
    buckets: Option<(Buckets, Buckets)>,
}

impl std::fmt::Debug for KeyLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLimits")
            .field("enabled", &self.buckets.is_some())
            .finish()
    }
}

impl KeyLimits {
    /// The limiter `opts` describe; registers `tierkv_gateway_throttled_total`.
    pub(crate) fn new(opts: &KeyLimitOptions, registry: &mut Registry) -> Self {
        let family: Family<ThrottleLabels, Counter> = Family::default();
        let reads = family.get_or_create_owned(&ThrottleLabels {
            reason: "key_read_rate",
        });
        let writes = family.get_or_create_owned(&ThrottleLabels {
            reason: "key_write_rate",
        });
        registry.register(
            "tierkv_gateway_throttled",
            "Requests answered 429 rate_limited, by reason (one key's read or write rate)",
            family,
        );
        Self {
            buckets: opts.enabled.then(|| {
                (
                    Buckets::new(opts.reads_per_sec, opts.read_burst, opts, reads),
                    Buckets::new(opts.writes_per_sec, opts.write_burst, opts, writes),
                )
            }),
        }
    }

    /// Admits one `access` to `key` (whose [`key_hash`] is `hash`) at `now`, or refuses it.
    pub(crate) fn admit(
        &self,
        key: &[u8],
        hash: u64,
        access: Access,
        now: Instant,
    ) -> Result<(), Throttled> {
        let Some((reads, writes)) = &self.buckets else {
            return Ok(());
        };
        let b = match access {
            Access::Read => reads,
            Access::Write => writes,
        };
        b.take(key, hash, now)
            .map_err(|retry_after_secs| Throttled {
                access,
                retry_after_secs,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admit(l: &KeyLimits, key: &Bytes, access: Access) -> Result<(), Throttled> {
        l.admit(key, key_hash(key), access, Instant::now())
    }

    fn opts(rate: u32, burst: u32) -> KeyLimitOptions {
        KeyLimitOptions {
            reads_per_sec: rate,
            read_burst: burst,
            writes_per_sec: rate,
            write_burst: burst,
            ..KeyLimitOptions::default()
        }
    }

    /// A bucket allows its burst, then refuses with the time until the next token, refills
    /// at its rate, and one key's bucket does not touch another's or the other direction's.
    #[tokio::test(start_paused = true)]
    async fn buckets_refill_at_their_rate_per_key_and_direction() {
        let mut r = Registry::default();
        let l = KeyLimits::new(&opts(2, 3), &mut r);
        let hot = Bytes::from_static(b"hot");
        for _ in 0..3 {
            assert_eq!(admit(&l, &hot, Access::Read), Ok(()));
        }
        assert_eq!(
            admit(&l, &hot, Access::Read),
            Err(Throttled {
                access: Access::Read,
                retry_after_secs: 1
            })
        );
        assert_eq!(
            admit(&l, &Bytes::from_static(b"cold"), Access::Read),
            Ok(())
        );
        assert_eq!(admit(&l, &hot, Access::Write), Ok(()));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(
            admit(&l, &hot, Access::Read),
            Ok(()),
            "one token back after 1/rate"
        );
        assert!(admit(&l, &hot, Access::Read).is_err());
        let text = tierkv_engine::metrics::encode_text(&r).expect("encodes");
        assert!(
            text.contains("tierkv_gateway_throttled_total{reason=\"key_read_rate\"} 2"),
            "{text}"
        );
        assert!(text.contains("tierkv_gateway_throttled_total{reason=\"key_write_rate\"} 0"));
    }

    /// A key idle for `idle` starts again from a full bucket, however slow its refill.
    #[tokio::test(start_paused = true)]
    async fn an_idle_key_gets_its_burst_back() {
        let mut r = Registry::default();
        let l = KeyLimits::new(
            &KeyLimitOptions {
                idle: Duration::from_secs(10),
                ..opts(1, 100)
            },
            &mut r,
        );
        let k = Bytes::from_static(b"k");
        for _ in 0..100 {
            assert!(admit(&l, &k, Access::Read).is_ok());
        }
        assert!(admit(&l, &k, Access::Read).is_err());
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..100 {
            assert!(admit(&l, &k, Access::Read).is_ok(), "a full bucket again");
        }
        assert!(admit(&l, &k, Access::Read).is_err());
    }

    /// A slow rate says so in its Retry-After; limits off admit everything.
    #[tokio::test(start_paused = true)]
    async fn retry_after_follows_the_rate_and_off_admits_all() {
        let mut r = Registry::default();
        let mut o = opts(1, 1);
        o.writes_per_sec = 1;
        let l = KeyLimits::new(&o, &mut r);
        let k = Bytes::from_static(b"k");
        assert!(admit(&l, &k, Access::Write).is_ok());
        assert_eq!(
            admit(&l, &k, Access::Write).map_err(|t| t.retry_after_secs),
            Err(1)
        );
        let off = KeyLimits::new(
            &KeyLimitOptions {
                enabled: false,
                ..o
            },
            &mut Registry::default(),
        );
        for _ in 0..100 {
            assert!(admit(&off, &k, Access::Write).is_ok());
        }
        assert!(opts(0, 1).validate().is_err());
    }

    /// A table that fills up drops refilled buckets first, then the least recently used
    /// quarter: memory stays bounded, and a hammered key keeps its (empty) bucket.
    #[tokio::test(start_paused = true)]
    async fn tables_stay_bounded_and_keep_the_busy_buckets() {
        let mut r = Registry::default();
        let o = KeyLimitOptions {
            tracked_keys: 1024,
            ..opts(1, 2)
        };
        let l = KeyLimits::new(&o, &mut r);
        let hot = Bytes::from_static(b"hot");
        assert!(admit(&l, &hot, Access::Read).is_ok());
        assert!(admit(&l, &hot, Access::Read).is_ok());
        assert!(admit(&l, &hot, Access::Read).is_err(), "burst used up");
        for i in 0..10_000u32 {
            let k = Bytes::from(format!("k{i}"));
            // Each new key takes one of its two tokens: its bucket is not refilled, so only
            // the least-recently-used rule makes room.
            assert!(admit(&l, &k, Access::Read).is_ok());
            tokio::time::advance(Duration::from_micros(1)).await;
            if i % 100 == 0 {
                assert!(admit(&l, &hot, Access::Read).is_err(), "key {i}");
            }
        }
        let Some((reads, _)) = &l.buckets else {
            panic!("limits are on");
        };
        assert!(reads.len() <= SHARDS * reads.per_table, "{}", reads.len());
        // Buckets that refilled go at the next sweep.
        tokio::time::advance(Duration::from_secs(5)).await;
        for i in 0..SHARDS * reads.per_table {
            let k = Bytes::from(format!("fresh{i}"));
            assert!(admit(&l, &k, Access::Read).is_ok());
        }
        assert!(reads.len() <= SHARDS * reads.per_table);
    }
}
