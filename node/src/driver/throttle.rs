//! The catch-up throttle of a leader's learners (design note 0009 §2, "Learn";
//! `cluster.move_bytes_per_sec`): a token bucket of entry bytes around the `Append`s sent to
//! replicas that are not voters of the configuration in force. Voters are never throttled,
//! nor are `Append`s without records (heartbeats). The bucket holds one second of the rate
//! and may go into debt by one message, so a message larger than a second's worth still
//! goes (the average rate holds); an `Append` refused is dropped, and the leader sends it
//! again once the learner made no progress for a heartbeat (message loss is part of the
//! protocol).

use std::time::Instant;

use tierkv_engine::replica::{Msg, NodeId, Replica};

/// The token bucket; one per driver.
#[derive(Debug)]
pub(super) struct MoveThrottle {
    /// Bytes per second; 0: unlimited.
    rate: u64,
    /// Bytes that may be sent now (negative: debt).
    tokens: f64,
    /// When `tokens` was last refilled.
    at: Instant,
}

impl MoveThrottle {
    pub(super) fn new(rate: u64) -> Self {
        Self {
            rate,
            tokens: rate as f64,
            at: Instant::now(),
        }
    }

    /// Whether `msg` to `to` may be sent now (taking its bytes from the bucket if so).
    pub(super) fn allows(&mut self, r: &Replica, to: NodeId, msg: &Msg) -> bool {
        if self.rate == 0 {
            return true;
        }
        let Msg::Append { records, .. } = msg else {
            return true;
        };
        let bytes: u64 = records
            .iter()
            .flat_map(|rec| &rec.entries)
            .map(|e| e.data_len() as u64)
            .sum();
        if bytes == 0 || r.membership().is_voter(to) {
            return true;
        }
        self.take(Instant::now(), bytes)
    }

    /// Refills up to `now` and takes `bytes` if the bucket is not in debt.
    fn take(&mut self, now: Instant, bytes: u64) -> bool {
        let rate = self.rate as f64;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        if self.tokens <= 0.0 {
            return false;
        }
        self.tokens -= bytes as f64;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// One second of the rate at most, a debt of one message, refilled with time: over a
    /// long run the bytes let through stay within the rate plus one message.
    #[test]
    fn the_bucket_holds_the_rate() {
        let mut t = MoveThrottle::new(1000);
        let t0 = t.at;
        assert!(t.take(t0, 600));
        assert!(t.take(t0, 600), "into debt by one message");
        assert!(!t.take(t0, 1), "in debt: refused");
        assert!(!t.take(t0 + Duration::from_millis(100), 1), "still in debt");
        assert!(t.take(t0 + Duration::from_millis(300), 1));
        // Ten seconds of 100-byte messages offered every millisecond.
        let mut t = MoveThrottle::new(1000);
        let start = t.at;
        let mut sent = 0u64;
        for ms in 0..10_000 {
            if t.take(start + Duration::from_millis(ms), 100) {
                sent += 100;
            }
        }
        assert!(
            (9_000..=11_100).contains(&sent),
            "{sent} bytes in 10 s at 1000 B/s"
        );
    }
}
