//! Lease arithmetic. Leases give liveness and local strong reads; safety never depends on
//! them (a stale leader cannot commit because the replicas that promised a newer epoch
//! refuse its `Append`s, whatever the clocks say).
//!
//! Two sides of one promise:
//! - A replica that accepts an `Append` at its local time `t` promises not to promise a newer
//!   epoch before `t + lease_duration` on its own clock ([`PromiseWindow`]). The leader counts
//!   itself the same way from each `Append` it sends. A restarted replica does not know what
//!   it promised before the crash, so it starts with a full window.
//! - The leader holds the lease until `sent_at(h) + lease_duration − max_clock_drift` on its
//!   own clock, for the newest `Append` `h` acked by a quorum, itself included
//!   ([`leader_lease_until`]).
//!
//! Why that is enough: `sent_at(h)` is read before any follower receives `h`, so each acking
//! follower's window starts later in real time; as long as two clocks drift apart by less than
//! `max_clock_drift` over one lease, the leader's window (shortened by the margin) ends before
//! the windows of a quorum. A new leader needs promises from a quorum, which intersects the
//! acking quorum, so it exists only after the old lease ended.

use super::Millis;

/// The interval during which this replica refuses to promise a newer epoch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PromiseWindow {
    until: Millis,
}

impl PromiseWindow {
    /// A window ending at `until`.
    pub(crate) fn until(until: Millis) -> Self {
        Self { until }
    }

    /// Extends the window for an `Append` accepted (or sent, by the leader) at `now`.
    pub(crate) fn extend(&mut self, now: Millis, lease: Millis) {
        self.until = self.until.max(now.plus(lease));
    }

    /// Whether the promise still holds at `now`.
    pub(crate) fn holds(self, now: Millis) -> bool {
        now < self.until
    }

    /// Time left at `now` (zero once expired).
    pub(crate) fn remaining(self, now: Millis) -> Millis {
        self.until.minus(now)
    }

    /// End of the window.
    pub(crate) fn end(self) -> Millis {
        self.until
    }
}

/// End of the leader's lease: the `quorum`-th newest of `acked` (the `sent_at` each follower
/// last echoed in this epoch) and `own_sent` (the leader's newest `Append`), plus
/// `lease − drift`. `None` while fewer than `quorum` replicas (itself included) acked.
pub(crate) fn leader_lease_until(
    acked: impl Iterator<Item = Option<Millis>>,
    own_sent: Millis,
    quorum: usize,
    lease: Millis,
    drift: Millis,
) -> Option<Millis> {
    let mut times: Vec<Millis> = acked.flatten().collect();
    times.push(own_sent);
    times.sort_unstable_by(|a, b| b.cmp(a));
    let start = *times.get(quorum.checked_sub(1)?)?;
    Some(start.plus(lease).minus(drift))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_needs_a_quorum_and_counts_from_the_quorum_th_newest_ack() {
        let l = Millis(2000);
        let d = Millis(250);
        assert_eq!(
            leader_lease_until([None, None].into_iter(), Millis(10), 2, l, d),
            None
        );
        let got = leader_lease_until(
            [Some(Millis(5)), Some(Millis(3))].into_iter(),
            Millis(9),
            3,
            l,
            d,
        );
        assert_eq!(got, Some(Millis(3 + 2000 - 250)));
        let got = leader_lease_until([Some(Millis(5)), None].into_iter(), Millis(9), 2, l, d);
        assert_eq!(got, Some(Millis(5 + 2000 - 250)));
    }

    #[test]
    fn window_extends_and_expires() {
        let mut w = PromiseWindow::default();
        assert!(!w.holds(Millis(0)));
        w.extend(Millis(100), Millis(2000));
        assert!(w.holds(Millis(2099)));
        assert!(!w.holds(Millis(2100)));
        assert_eq!(w.remaining(Millis(2000)), Millis(100));
    }
}
