//! Tests of the replication core: message codec (`codec.rs`), single replicas driven by hand
//! (`unit.rs`), and the deterministic cluster simulator (`sim.rs`, `sim/`) with its auditor
//! (`auditor.rs`) and entry points (`sim_tests.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Deliberate protocol bugs, switched on per test to show the simulator catches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bug {
    /// Answer `Promised` before the promise is durable.
    SkipDurablePromise,
    /// Adopt the log with the smallest `(last_epoch, last_seq)` instead of the greatest.
    AdoptShortestLog,
    /// Grant promises while the lease promise still holds.
    IgnoreLeasePromise,
    /// Send `Handover` but keep leading (and serving strong reads) in the same epoch.
    HandoverKeepsLeading,
    /// A replica that lost its disk restarts as if new: no promise floor, no rejoin.
    RejoinAsNew,
    /// A rejoining replica answers promises before it caught up.
    PromiseWhileRejoining,
    /// Treat every restarting replica as the shard's only one: no restart guard, takeover
    /// at once (only a shard's only replica may do that).
    NoRestartGuard,
    /// The leader counts the end of its log, not of its durable log, in the commit rule.
    CommitUndurable,
    /// A follower's flush request is passed on uncapped: the leader flushes up to the
    /// follower's log end, which may hold records it has not committed (note 0007).
    FlushPastCommit,
    /// A leader switches from `C` straight to the target `T`, without the joint `(C, T)`
    /// whose quorums intersect both (design note 0009).
    SkipJointConfig,
    /// A leader makes learners voters (appends the joint configuration) before they caught
    /// up with its log.
    PromoteUncaughtLearner,
    /// Commit and promise quorums count every replica that acked or promised, voters or
    /// not (learners, replicas a change removed), against the size of a quorum.
    CountNonVoters,
    /// A leader that no quorum acks any more keeps leading (and heartbeating), so that
    /// followers that hear it but cannot reach it never take over (a one-way partition).
    LeaderIgnoresLostQuorum,
    /// A leader commits (and acknowledges) writes while a read lease it granted is
    /// outstanding, instead of holding its commit point until the lease ended (note 0014).
    ProposeDuringReadLease,
    /// A leader hands the shard over while a read lease it granted is outstanding (the
    /// target commits at once, note 0014).
    HandoverIgnoresReadLease,
    /// A read lease's mark names the leader's epoch but not its commit point, so a gateway
    /// takes keys read before a write as current under a lease granted after it (note 0014).
    ReadLeaseMarkIgnoresCommits,
}

mod auditor;
mod codec;
mod membership;
mod read_lease;
mod sim;
mod sim_tests;
mod unit;
