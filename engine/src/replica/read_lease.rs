//! Read leases a serving leader grants gateways (design note 0014).
//!
//! A read lease is the leader's promise that no write of the shard becomes visible before
//! `read_lease_until` (its clock): a gateway that revalidated a cached value with a leased
//! answer may serve that value for strong reads until the lease ends, without a round trip.
//!
//! The rules, and why they make such a cached read linearizable:
//! - **Grant** ([`Replica::grant_read_lease`]): only a serving leader whose own lease is
//!   valid (the check of a strong read), a voter of a configuration with other voters, not
//!   handing over or draining, with every record of its log committed and no proposal within
//!   `read_lease_quiet`. Duration `d = min(read_lease, own lease left − margin)`; the leader
//!   records `read_lease_until = max(read_lease_until, now + d + margin)`, where the margin
//!   is the configured clock drift scaled to `read_lease` (the gateway measures `d` on its
//!   own clock, from when it sent the request: before the grant). The caller reads the
//!   value only after the grant is recorded, so the value read is the committed state at
//!   the grant.
//! - **Commit hold** (`commit_held`): while `now < read_lease_until` the commit point does
//!   not move. Proposals are still sequenced, persisted and replicated at once (so the order
//!   in which the caller evaluated their conditions is the log order, as before), but none
//!   commits, is applied or is acknowledged before every read lease has ended. Every record
//!   after the grant was appended after it (nothing was uncommitted then), so the state at
//!   the grant is the state until `read_lease_until`. The leader's tick moves the commit
//!   point once the hold ends.
//! - **Mark** ([`LeaseMark`]): a grant also names the leader's epoch and commit point. Two
//!   grants with the same mark saw the same committed state with no commit between them (the
//!   commit point only grows within a leadership, and an epoch has one leader), so the
//!   shard's committed state is constant from the first of them to the end of the last one's
//!   hold: a gateway may serve any key it read under one of them until the latest of their
//!   leases ends, not just the key each one came with.
//! - **Leadership changes**: `now + d + margin` never passes the leader's own lease, and a
//!   new leader can only take over once that lease ended (note 0002), so its barrier commits
//!   after every read lease ended. A handover (note 0006) is the exception that does not wait
//!   for the lease: it waits for `read_lease_until` instead before the leader steps down,
//!   and no lease is granted while one is in progress. The only replica of a shard takes
//!   over at once after a restart (no lease to wait for), so it grants no read leases.

use super::Millis;
use super::core::{Replica, RoleState};
use crate::types::{Epoch, SeqNo};

/// Which committed state of a shard a read lease vouches for: the granting leader's epoch
/// and commit point. Ordered by epoch, then commit point: a later mark is a later state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseMark {
    /// The leader's epoch.
    pub epoch: Epoch,
    /// Its commit point when it granted (every record of its log was committed).
    pub seq: SeqNo,
}

impl LeaseMark {
    /// The mark of no lease: what a refusal carries (zeros on the wire).
    pub const NONE: Self = Self {
        epoch: Epoch(0),
        seq: SeqNo(0),
    };
}

/// A granted read lease: how long (from before the gateway sent its request) the committed
/// state named by `mark` stays the shard's committed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLease {
    /// The lease's length.
    pub duration: Millis,
    /// The state it vouches for.
    pub mark: LeaseMark,
}

/// Why a read lease was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadLeaseRefusal {
    /// Read leases are off (`read_lease` is 0), or the shard has a single voter.
    Off,
    /// Not a serving leader with a valid lease (the strong read fails too).
    NotLeader,
    /// Handing the shard over or draining.
    HandingOver,
    /// Records of the log are not committed yet (a write is in flight or held).
    Pending,
    /// A write was proposed within `read_lease_quiet`.
    Recent,
    /// The leader's own lease has too little left.
    LeaseShort,
}

impl ReadLeaseRefusal {
    /// Every reason, for metrics.
    pub const ALL: [Self; 6] = [
        Self::Off,
        Self::NotLeader,
        Self::HandingOver,
        Self::Pending,
        Self::Recent,
        Self::LeaseShort,
    ];

    /// A stable label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::NotLeader => "not_leader",
            Self::HandingOver => "handing_over",
            Self::Pending => "pending",
            Self::Recent => "recent_write",
            Self::LeaseShort => "lease_short",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Off => 0,
            Self::NotLeader => 1,
            Self::HandingOver => 2,
            Self::Pending => 3,
            Self::Recent => 4,
            Self::LeaseShort => 5,
        }
    }
}

/// Read leases granted and refused, and proposals that had to wait for one, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadLeaseCounts {
    /// Leases granted.
    pub granted: u64,
    /// Refusals by [`ReadLeaseRefusal::ALL`] order.
    pub refused: [u64; 6],
    /// Proposals sequenced while a read lease was outstanding (their commit waited).
    pub writes_held: u64,
}

impl ReadLeaseCounts {
    /// Refusals for `reason`.
    #[must_use]
    pub fn refused(&self, reason: ReadLeaseRefusal) -> u64 {
        self.refused[reason.index()]
    }
}

/// The leader-side state of read leases; kept across role changes (a lease granted in one
/// leadership still holds the commits of the next one, should this replica lead again
/// before it ended).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReadLeases {
    /// No commit before this (local time).
    pub(super) until: Millis,
    /// When the latest proposal was sequenced.
    last_propose: Option<Millis>,
    pub(super) counts: ReadLeaseCounts,
}

impl Replica {
    /// Whether this replica may ever grant read leases (`read_lease` is set and the shard
    /// has other voters); when not, every [`Replica::grant_read_lease`] is refused `Off`.
    #[must_use]
    pub fn read_leases_configured(&self) -> bool {
        self.cfg.read_lease.0 > 0
    }

    /// Grants a read lease at `now` (design note 0014): the duration a gateway may serve
    /// what it reads next from this shard for strong reads, counted from before it sent the
    /// request, and the mark of the state it vouches for. Read the value only after this
    /// returns `Ok`; a refusal leaves reads as they were (check
    /// [`Replica::can_serve_strong_read`] as usual).
    pub fn grant_read_lease(&mut self, now: Millis) -> Result<ReadLease, ReadLeaseRefusal> {
        let r = self.try_grant(now);
        match r {
            Ok(_) => self.reads.counts.granted += 1,
            Err(why) => self.reads.counts.refused[why.index()] += 1,
        }
        r
    }

    fn try_grant(&mut self, now: Millis) -> Result<ReadLease, ReadLeaseRefusal> {
        let max = self.cfg.read_lease;
        if max.0 == 0 || self.membership().voters().len() < 2 {
            return Err(ReadLeaseRefusal::Off);
        }
        let RoleState::Leader(l) = &self.role else {
            return Err(ReadLeaseRefusal::NotLeader);
        };
        let own = self.lease_until(l);
        if !l.serving || !self.is_voter() || own.is_none_or(|t| now >= t) {
            return Err(ReadLeaseRefusal::NotLeader);
        }
        if l.handover.is_some() || self.draining {
            return Err(ReadLeaseRefusal::HandingOver);
        }
        if self.commit_seq < self.log.last_seq() {
            return Err(ReadLeaseRefusal::Pending);
        }
        if self
            .reads
            .last_propose
            .is_some_and(|t| now < t.plus(self.cfg.read_lease_quiet))
        {
            return Err(ReadLeaseRefusal::Recent);
        }
        let margin = self.read_lease_margin();
        let left = own.unwrap_or(now).minus(now);
        let d = max.min(left.minus(margin));
        if d.0 == 0 {
            return Err(ReadLeaseRefusal::LeaseShort);
        }
        self.reads.until = self.reads.until.max(now.plus(d).plus(margin));
        let mark = LeaseMark {
            epoch: l.epoch,
            seq: self.commit_seq,
        };
        #[cfg(test)]
        let mark = if self.cfg.bug == Some(super::tests::Bug::ReadLeaseMarkIgnoresCommits) {
            LeaseMark {
                seq: SeqNo(0),
                ..mark
            }
        } else {
            mark
        };
        Ok(ReadLease { duration: d, mark })
    }

    /// The drift margin of a read lease: `max_clock_drift` (a bound per `lease_duration`)
    /// scaled to `read_lease`, rounded up, plus 1 ms for the rounding of clocks to ms.
    fn read_lease_margin(&self) -> Millis {
        let lease = self.cfg.lease_duration.0.max(1);
        let scaled = self
            .cfg
            .max_clock_drift
            .0
            .saturating_mul(self.cfg.read_lease.0)
            .div_ceil(lease);
        Millis(scaled.saturating_add(1))
    }

    /// Whether the commit point must stay where it is at `now`: a read lease is outstanding.
    pub(super) fn commit_held(&self, now: Millis) -> bool {
        #[cfg(test)]
        if self.cfg.bug == Some(super::tests::Bug::ProposeDuringReadLease) {
            return false;
        }
        now < self.reads.until
    }

    /// A handover may complete only once every read lease ended (the target commits at
    /// once, without waiting for our lease).
    pub(super) fn handover_held(&self, now: Millis) -> bool {
        #[cfg(test)]
        if self.cfg.bug == Some(super::tests::Bug::HandoverIgnoresReadLease) {
            return false;
        }
        now < self.reads.until
    }

    /// While the commit point is held for a read lease with records waiting (as leader):
    /// when the hold ends. The caller ticks the replica then, rather than up to a tick later.
    #[must_use]
    pub fn commit_hold_until(&self, now: Millis) -> Option<Millis> {
        let leading = matches!(self.role, RoleState::Leader(_));
        (leading && self.commit_seq < self.log.last_seq() && self.commit_held(now))
            .then_some(self.reads.until)
    }

    /// A proposal was sequenced at `now`.
    pub(super) fn note_proposal(&mut self, now: Millis) {
        self.reads.last_propose = Some(now);
        if now < self.reads.until {
            self.reads.counts.writes_held += 1;
        }
    }

    /// Read leases granted and refused, and writes held, since this replica started.
    #[must_use]
    pub fn read_lease_counts(&self) -> ReadLeaseCounts {
        self.reads.counts
    }

    /// Whether a read lease granted here may still be outstanding at `now` (tests and
    /// observation).
    #[must_use]
    pub fn read_lease_outstanding(&self, now: Millis) -> bool {
        now < self.reads.until
    }
}
