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

use super::{Membership, Millis, NodeId};

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

/// End of the leader's lease: the newest `Append` acked by a quorum of `membership` (both
/// halves of a joint one; voters only, design note 0009), plus `lease − drift`. `sent_at`
/// gives each voter's newest acked `sent_at` in this epoch (the leader's own newest send for
/// itself). `None` while no quorum acked.
pub(crate) fn leader_lease_until(
    membership: &Membership,
    tolerate: usize,
    sent_at: impl Fn(NodeId) -> Option<Millis>,
    lease: Millis,
    drift: Millis,
) -> Option<Millis> {
    let start = membership.quorum_value(tolerate, sent_at)?;
    Some(start.plus(lease).minus(drift))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_needs_a_quorum_and_counts_from_the_quorum_th_newest_ack() {
        let l = Millis(2000);
        let d = Millis(250);
        let ids = |v: &[u32]| v.iter().copied().map(NodeId).collect::<Vec<_>>();
        let three = Membership::Steady(ids(&[1, 2, 3]));
        let t = |v: [Option<u64>; 3]| move |n: NodeId| v[n.0 as usize - 1].map(Millis);
        assert_eq!(
            leader_lease_until(&three, 1, t([Some(10), None, None]), l, d),
            None
        );
        let got = leader_lease_until(&three, 0, t([Some(9), Some(5), Some(3)]), l, d);
        assert_eq!(got, Some(Millis(3 + 2000 - 250)));
        let got = leader_lease_until(&three, 1, t([Some(9), Some(5), None]), l, d);
        assert_eq!(got, Some(Millis(5 + 2000 - 250)));
        // Joint: the new half's quorum is older, so it decides.
        let joint = Membership::Joint {
            old: ids(&[1, 2, 3]),
            new: ids(&[1, 3, 4]),
        };
        let v = |n: NodeId| [None, Some(9), Some(8), Some(2), Some(1)][n.0 as usize].map(Millis);
        assert_eq!(
            leader_lease_until(&joint, 1, v, l, d),
            Some(Millis(2 + 2000 - 250))
        );
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
