//! The safety rules of the replication protocol, one named function each, with why it must
//! hold. The core calls them before acting (a violation is a bug: it is logged and, in debug
//! builds, panics); the simulator's auditor calls them on every replica after every event.

use crate::types::{Epoch, SeqNo};

use super::Record;
use super::log::Log;

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
