//! The safety rules of the replication protocol, one named function each, with why it must
//! hold. The core calls them before acting (a violation is a bug: it is logged and, in debug
//! builds, panics); the simulator's auditor calls them on every replica after every event.

use crate::types::{Epoch, SeqNo};

use super::log::Log;
use super::{Membership, NodeId, Record};

/// A broken rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation(pub &'static str);

/// A replica answers `Promised` only once the promise is durable.
///
/// Why: a promise that a crash could forget lets the replica accept the old leader's
/// `Append`s again after restarting, so the old leader could reach W acks after the new one
/// adopted a log without them: an acknowledged write would be lost.
pub fn promise_durable_before_answer(
    durable_promised: Epoch,
    answered: Epoch,
) -> Result<(), Violation> {
    if durable_promised >= answered {
        Ok(())
    } else {
        Err(Violation("answered a promise that is not durable"))
    }
}

/// A replica never accepts an `Append` from an epoch older than the one it promised.
///
/// Why: this is what fences a deposed leader: once a quorum promised a newer epoch, the old
/// leader can never again gather W acks, whatever the clocks say.
pub fn append_not_stale(promised: Epoch, append_epoch: Epoch) -> Result<(), Violation> {
    if append_epoch >= promised {
        Ok(())
    } else {
        Err(Violation(
            "accepted an append from an epoch older than the promise",
        ))
    }
}

/// A flush a follower asked for goes at most up to the leader's commit point.
///
/// Why: a follower's log end may hold records the leader has not committed (acked by the
/// follower, not yet by a quorum) or never will (an older epoch's divergent tail). A flush
/// makes records part of the manifest, which every replica treats as committed; flushing an
/// uncommitted one could put in segments a record that a later leader, adopting a log
/// without it, replaces at the same seq (design note 0007).
#[must_use]
pub fn flush_request_capped(requested: SeqNo, commit_seq: SeqNo) -> SeqNo {
    requested.min(commit_seq)
}

/// A log is contiguous after its base and its epochs never decrease.
///
/// Why: commit points and prefix checks name positions; a hole would let two replicas
/// "match" at a seq while holding different histories.
pub fn log_well_formed(log: &Log) -> Result<(), Violation> {
    log.check().map_err(Violation)
}

/// Only uncommitted tails written in epochs older than the writer's may be truncated.
///
/// Why: a committed record may be on exactly W replicas; removing it from one of them could
/// make the next leader's quorum miss it. Records of the writer's own epoch are its own log
/// and never conflict with it.
pub fn truncation_allowed(
    removed: &[Record],
    writer_epoch: Epoch,
    commit_seq: SeqNo,
) -> Result<(), Violation> {
    for r in removed {
        if r.seq <= commit_seq {
            return Err(Violation("truncated a committed record"));
        }
        if r.epoch >= writer_epoch {
            return Err(Violation(
                "truncated a record not older than the writer's epoch",
            ));
        }
    }
    Ok(())
}

/// A leader commits only at or above its barrier.
///
/// Why: records adopted from older epochs may have been on fewer than W replicas under
/// their own leader; they count as committed only once a record of the current epoch after
/// them is on W durable logs, because from then on every quorum's longest log contains it.
pub fn commit_after_barrier(commit: SeqNo, barrier: SeqNo) -> Result<(), Violation> {
    if commit >= barrier {
        Ok(())
    } else {
        Err(Violation("committed below the barrier"))
    }
}

/// The commit point never moves backwards and never passes the end of the log.
///
/// Why: memtables apply committed records in order and never roll back; clients were
/// answered for them.
pub fn commit_monotonic(old: SeqNo, new: SeqNo, last: SeqNo) -> Result<(), Violation> {
    if new < old {
        Err(Violation("commit point moved backwards"))
    } else if new > last {
        Err(Violation("commit point past the end of the log"))
    } else {
        Ok(())
    }
}

// ---- membership changes (design note 0009, "Invariants") ----

/// A configuration record is appended only by a serving leader whose barrier is committed.
///
/// Why: a new leader does not know which configuration records before it are committed until
/// its barrier is; changing the configuration before that can let two changes overlap
/// (the known single-server-change bug of Raft), and their quorums need not intersect.
pub fn config_change_after_barrier(
    serving: bool,
    commit_seq: SeqNo,
    barrier_seq: SeqNo,
) -> Result<(), Violation> {
    if serving && commit_seq >= barrier_seq {
        Ok(())
    } else {
        Err(Violation(
            "configuration change before the leader's barrier is committed",
        ))
    }
}

/// A configuration record is appended only when the previous one in the log (at
/// `prev_config_seq`, if any after the flushed base) is committed, and the configurations
/// form the chain `C0, (C0,C1), C1, (C1,C2), …` (see [`config_chain_step`]).
///
/// Why: invariant A of note 0009. Every safety argument walks that chain: a committed record
/// reaches a quorum of every later configuration only if each joint record is committed
/// before the next change starts, and only if no configuration is skipped.
pub fn one_config_change_in_flight(
    prev_config_seq: Option<SeqNo>,
    commit_seq: SeqNo,
    in_force: &Membership,
    next: &Membership,
) -> Result<(), Violation> {
    if prev_config_seq.is_some_and(|s| s > commit_seq) {
        return Err(Violation(
            "configuration change while the previous one is not committed",
        ));
    }
    config_chain_step(in_force, next)
}

/// One step of the configuration chain: a steady `C` is followed by a joint `(C, T)`, and a
/// joint `(C, T)` by the steady `T` (the same sets, whatever the order).
///
/// Why: a steady `C` directly followed by a steady `T` has quorums that need not intersect
/// (replace one replica of three: `{2,3}` and `{1,4}` of `{1,2,3}` → `{1,2,4}`), so two
/// leaders could commit in the same epoch range without seeing each other's records.
pub fn config_chain_step(prev: &Membership, next: &Membership) -> Result<(), Violation> {
    let same = |a: &[NodeId], b: &[NodeId]| {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort_unstable();
        b.sort_unstable();
        a == b
    };
    let ok = match (prev, next) {
        (Membership::Steady(c), Membership::Joint { old, .. }) => same(c, old),
        (Membership::Joint { new, .. }, Membership::Steady(t)) => same(new, t),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Violation(
            "configuration records do not follow the chain C, (C,T), T",
        ))
    }
}

/// A candidate adopts only with promises (its own included) forming a quorum of the
/// configuration in force in the log it adopts, and only if it is a voter of it.
///
/// Why: note 0009 §4. The adopted log is the greatest among the promises; only a quorum of
/// *its* configuration is known to intersect the quorum that committed the newest records
/// (a quorum of the candidate's own, older configuration may consist of replicas a change
/// removed, which hold nothing committed since). A non-voter must not lead: nothing keeps
/// its log up to date.
pub fn promise_quorum_of_adopted_config(
    adopted: &Membership,
    tolerate: usize,
    me: NodeId,
    promised: &[NodeId],
) -> Result<(), Violation> {
    if !adopted.is_voter(me) {
        return Err(Violation(
            "a candidate that is not a voter of the adopted configuration",
        ));
    }
    if !promised.contains(&me) || !adopted.is_quorum(tolerate, |n| promised.contains(&n)) {
        return Err(Violation(
            "promises do not form a quorum of the adopted configuration",
        ));
    }
    Ok(())
}

/// Commit, lease and promise quorums count voters only: the replicas counted (`counted`:
/// those holding a record, those that promised) include a quorum of the voters of the
/// configuration they were counted under.
///
/// Why: a learner may hold nothing yet (it is catching up) and a removed replica holds
/// nothing committed after its removal; counting either lets a quorum miss a committed
/// record. The auditor checks every commit against the durable copies of the record.
pub fn learners_not_counted(
    membership: &Membership,
    tolerate: usize,
    counted: &[NodeId],
) -> Result<(), Violation> {
    if membership.is_quorum(tolerate, |n| counted.contains(&n)) {
        Ok(())
    } else {
        Err(Violation(
            "a quorum was counted without a quorum of the configuration's voters",
        ))
    }
}

/// A leader that is not a voter of its configuration in force appends nothing but the
/// records that finish the change (configuration records), then hands the shard over.
///
/// Why: a removed leader's own copy does not count toward any quorum of the configuration in
/// force; it may still sequence the final record (its voters make it committed), but client
/// writes should go to a leader that belongs to the replica set that will keep them.
pub fn leader_is_voter_or_leaving(
    in_force: &Membership,
    me: NodeId,
    record: &Record,
) -> Result<(), Violation> {
    if in_force.is_voter(me) || record.membership.is_some() {
        Ok(())
    } else {
        Err(Violation("a leader that is not a voter appended a batch"))
    }
}

/// A learner becomes a voter (the joint configuration is appended) only once its durable log
/// reaches within `lag` records of the leader's commit point.
///
/// Why: a voter that holds nothing makes the new configuration's quorums depend on the
/// others: with one more failure the shard stops until it caught up, and a move must never
/// lower the shard's availability (note 0009 §2, step 2). (It cannot lose a write: acks
/// count only durably matched prefixes.)
pub fn learner_caught_up(
    learner_match: SeqNo,
    commit_seq: SeqNo,
    lag: u64,
) -> Result<(), Violation> {
    if learner_match.0.saturating_add(lag) >= commit_seq.0 {
        Ok(())
    } else {
        Err(Violation("a learner became a voter before it caught up"))
    }
}
