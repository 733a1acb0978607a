//! Per-key rate limits (design note 0008): a token bucket per key and direction (reads,
//! writes) at this gateway, so that one runaway key cannot monopolise its shard's leader.
//! An empty bucket answers `429 rate_limited` with `Retry-After` (seconds until a token is
//! back, at least 1). Buckets live in a moka cache bounded by
//! [`KeyLimitOptions::tracked_keys`]; a key idle for [`KeyLimitOptions::idle`] is dropped (its
//! bucket would be full again by then). Throttled requests are counted by reason in
//! `tierkv_gateway_throttled_total`. Time is tokio's clock (tests pause it).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
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

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One direction's buckets.
struct Buckets {
    rate: f64,
    burst: f64,
    table: moka::sync::Cache<Bytes, Arc<Mutex<Bucket>>>,
    throttled: Counter,
}

impl Buckets {
    fn new(rate: u32, burst: u32, opts: &KeyLimitOptions, throttled: Counter) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            table: moka::sync::Cache::builder()
                .max_capacity(opts.tracked_keys)
                .time_to_idle(opts.idle)
                .build(),
            throttled,
        }
    }

    /// Takes a token for `key`, or says how long until one is back.
    fn take(&self, key: &Bytes) -> Result<(), u64> {
        let now = Instant::now();
        let burst = self.burst;
        let bucket = self.table.get_with(key.clone(), || {
            Arc::new(Mutex::new(Bucket {
                tokens: burst,
                at: now,
            }))
        });
        let mut b = bucket.lock();
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        self.throttled.inc();
        let wait = (1.0 - b.tokens) / self.rate;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive wait of at most one token's refill time"
        )]
        Err((wait.ceil() as u64).max(1))
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

    /// Admits one `access` to `key`, or refuses it.
    pub(crate) fn admit(&self, key: &Bytes, access: Access) -> Result<(), Throttled> {
        let Some((reads, writes)) = &self.buckets else {
            return Ok(());
        };
        let b = match access {
            Access::Read => reads,
            Access::Write => writes,
        };
        b.take(key).map_err(|retry_after_secs| Throttled {
            access,
            retry_after_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(l.admit(&hot, Access::Read), Ok(()));
        }
        assert_eq!(
            l.admit(&hot, Access::Read),
            Err(Throttled {
                access: Access::Read,
                retry_after_secs: 1
            })
        );
        assert_eq!(l.admit(&Bytes::from_static(b"cold"), Access::Read), Ok(()));
        assert_eq!(l.admit(&hot, Access::Write), Ok(()));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(
            l.admit(&hot, Access::Read),
            Ok(()),
            "one token back after 1/rate"
        );
        assert!(l.admit(&hot, Access::Read).is_err());
        let text = tierkv_engine::metrics::encode_text(&r).expect("encodes");
        assert!(
            text.contains("tierkv_gateway_throttled_total{reason=\"key_read_rate\"} 2"),
            "{text}"
        );
        assert!(text.contains("tierkv_gateway_throttled_total{reason=\"key_write_rate\"} 0"));
    }

    /// A slow rate says so in its Retry-After; limits off admit everything.
    #[tokio::test(start_paused = true)]
    async fn retry_after_follows_the_rate_and_off_admits_all() {
        let mut r = Registry::default();
        let mut o = opts(1, 1);
        o.writes_per_sec = 1;
        let l = KeyLimits::new(&o, &mut r);
        let k = Bytes::from_static(b"k");
        assert!(l.admit(&k, Access::Write).is_ok());
        assert_eq!(
            l.admit(&k, Access::Write).map_err(|t| t.retry_after_secs),
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
            assert!(off.admit(&k, Access::Write).is_ok());
        }
        assert!(opts(0, 1).validate().is_err());
    }
}
