//! Failed-attempt limiting per client address (design note 0012): a token bucket per
//! address (IPv6 by its /64), drawn from by every presented-but-wrong credential. While an
//! address's bucket is empty, its requests to protected routes are refused with `429
//! rate_limited` before any credential is checked. The table is bounded: when full, buckets
//! that have refilled are dropped; addresses beyond share one overflow bucket. Time is
//! tokio's clock (tests pause it).

use std::collections::HashMap;
use std::net::IpAddr;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Addresses tracked at most.
pub(crate) const MAX_ADDRESSES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The limiter.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    burst: f64,
    per_sec: f64,
    /// Short critical sections only, never across an await.
    table: Mutex<Table>,
}

#[derive(Debug)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    overflow: Option<Bucket>,
}

/// The address a client is limited by: IPv4 as is, IPv6 by its /64 (one host usually holds
/// a whole /64), IPv4-mapped IPv6 as IPv4.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl FailureLimiter {
    /// `burst` failures at once, refilled at `per_sec`.
    pub(crate) fn new(burst: u32, per_sec: f64) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_sec: per_sec.max(0.001),
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                overflow: None,
            }),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let secs = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + secs * self.per_sec).min(self.burst);
        b.at = now;
    }

    /// `Some(seconds until a failure is allowed again)` while `ip` is blocked.
    pub(crate) fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let key = client_key(ip);
        let mut guard = self.table.lock();
        let t = &mut *guard;
        let full = t.buckets.len() >= MAX_ADDRESSES;
        let b = match t.buckets.get_mut(&key) {
            Some(b) => b,
            None => t.overflow.as_mut().filter(|_| full)?,
        };
        self.refill(b, now);
        if b.tokens >= 1.0 {
            return None;
        }
        let wait = (1.0 - b.tokens) / self.per_sec;
        // Whole seconds, at least 1 (the `Retry-After` unit).
        Some((wait.ceil() as u64).max(1))
    }

    /// Draws one failure for `ip`.
    pub(crate) fn record_failure(&self, ip: IpAddr) {
        let now = Instant::now();
        let key = client_key(ip);
        let mut guard = self.table.lock();
        let t = &mut *guard;
        if !t.buckets.contains_key(&key) && t.buckets.len() >= MAX_ADDRESSES {
            // Drop the buckets that have refilled: they hold no state worth keeping.
            let (burst, per_sec) = (self.burst, self.per_sec);
            t.buckets.retain(|_, b| {
                let secs = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + secs * per_sec < burst
            });
        }
        let fresh = Bucket {
            tokens: self.burst,
            at: now,
        };
        let b = if t.buckets.len() < MAX_ADDRESSES || t.buckets.contains_key(&key) {
            t.buckets.entry(key).or_insert(fresh)
        } else {
            t.overflow.get_or_insert(fresh)
        };
        let mut b2 = *b;
        self.refill(&mut b2, now);
        b2.tokens = (b2.tokens - 1.0).max(0.0);
        *b = b2;
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.table.lock().buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn blocks_after_burst_and_refills() {
        let l = FailureLimiter::new(3, 0.5);
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        for _ in 0..3 {
            assert_eq!(l.blocked(a), None);
            l.record_failure(a);
        }
        assert_eq!(l.blocked(a), Some(2), "one token at 0.5/s: 2 s");
        assert_eq!(l.blocked(b), None, "other addresses are not affected");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(l.blocked(a), None);
        l.record_failure(a);
        assert!(l.blocked(a).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_by_64_and_mapped_v4() {
        let l = FailureLimiter::new(1, 1.0);
        let x: Ipv6Addr = "2001:db8:1:2::1".parse().expect("v6");
        let y: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().expect("v6");
        let z: Ipv6Addr = "2001:db8:1:3::1".parse().expect("v6");
        l.record_failure(IpAddr::V6(x));
        assert!(l.blocked(IpAddr::V6(y)).is_some(), "same /64");
        assert!(l.blocked(IpAddr::V6(z)).is_none());
        l.record_failure(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let mapped = Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped();
        assert!(l.blocked(IpAddr::V6(mapped)).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_table() {
        let l = FailureLimiter::new(2, 1.0);
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            l.record_failure(IpAddr::V4(Ipv4Addr::from(i)));
        }
        assert!(l.tracked() <= MAX_ADDRESSES);
        // Once they refilled, they make room.
        tokio::time::advance(Duration::from_secs(5)).await;
        l.record_failure(IpAddr::V4(Ipv4Addr::new(255, 1, 1, 1)));
        assert!(l.tracked() < 10);
    }
}
