//! [`NodeClock`]: the replicas' clock, monotonic milliseconds since the node started.

use std::time::Instant;

use tierkv_engine::replica::Millis;

/// Monotonic milliseconds since the node started: the replicas' clock.
#[derive(Debug, Clone, Copy)]
pub struct NodeClock {
    start: Instant,
}

impl NodeClock {
    /// A clock starting now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// Milliseconds since the start.
    #[must_use]
    pub fn now(&self) -> Millis {
        Millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The instant of reading `t` (for timers).
    #[must_use]
    pub fn instant_of(&self, t: Millis) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.start + std::time::Duration::from_millis(t.0))
    }
}

impl Default for NodeClock {
    fn default() -> Self {
        Self::new()
    }
}
