//! Persistence bookkeeping: the requests handed to the caller and what is durable.
//!
//! Requests get increasing ids and the caller completes them in id order (one WAL), so
//! "request `id` is durable" means every earlier one is too. From the completed requests we
//! know the end of the durable log and the durable promise; `durable_match` is the highest
//! seq up to which the durable log equals the in-memory one (completed appends raise it,
//! truncations, pending or done, cap it, and everything up to the flushed base counts: it is
//! in segments). Acks and the leader's own vote in the commit rule use only `durable_match`.

use std::collections::VecDeque;

use crate::types::{Epoch, SeqNo};

use super::core::{Replica, RoleState};
use super::{Millis, Output, PersistId, PersistOp};

/// A persistence request not yet reported durable.
#[derive(Debug, Clone, Copy)]
pub(super) enum Pending {
    Append { last: SeqNo },
    Promise(Epoch),
    Truncate { after: SeqNo },
}

/// Requests handed to the caller and what is known durable.
#[derive(Debug, Default)]
pub(super) struct PersistQueue {
    next_id: u64,
    pending: VecDeque<(PersistId, Pending)>,
    /// End of the durable log (after the durable truncations).
    durable_last: SeqNo,
    pub(super) durable_promised: Epoch,
}

impl PersistQueue {
    /// A queue with nothing pending over a durable log ending at `durable_last`.
    pub(super) fn new(durable_last: SeqNo, durable_promised: Epoch) -> Self {
        Self {
            next_id: 0,
            pending: VecDeque::new(),
            durable_last,
            durable_promised,
        }
    }

    /// Whether a promise of at least `epoch` is on its way to durability.
    pub(super) fn promise_pending(&self, epoch: Epoch) -> bool {
        self.pending
            .iter()
            .any(|(_, p)| matches!(p, Pending::Promise(e) if *e >= epoch))
    }

    /// Highest seq up to which the durable log equals the in-memory log.
    pub(super) fn durable_match(&self, base: SeqNo) -> SeqNo {
        let mut m = self.durable_last;
        for (_, p) in &self.pending {
            if let Pending::Truncate { after } = p {
                m = m.min(*after);
            }
        }
        m.max(base)
    }
}

impl Replica {
    pub(super) fn persist(&mut self, op: PersistOp) -> PersistId {
        let id = PersistId(self.persist.next_id);
        self.persist.next_id += 1;
        let pending = match &op {
            PersistOp::Append(records) => Pending::Append {
                last: records.last().map_or(self.log.last_seq(), |r| r.seq),
            },
            PersistOp::Promise(e) => Pending::Promise(*e),
            PersistOp::Truncate { after } => Pending::Truncate { after: *after },
        };
        self.persist.pending.push_back((id, pending));
        self.out.push(Output::Persist { id, op });
        id
    }

    pub(super) fn durable_match(&self) -> SeqNo {
        self.persist.durable_match(self.log.base())
    }

    pub(super) fn on_persisted(&mut self, now: Millis, id: PersistId) {
        let mut promise_done = None;
        while let Some((pid, p)) = self.persist.pending.front().copied() {
            if pid > id {
                break;
            }
            self.persist.pending.pop_front();
            match p {
                Pending::Append { last } => self.persist.durable_last = last,
                Pending::Truncate { after } => {
                    self.persist.durable_last = self.persist.durable_last.min(after);
                }
                Pending::Promise(e) => {
                    self.persist.durable_promised = self.persist.durable_promised.max(e);
                    promise_done = Some(e);
                }
            }
        }
        self.check_rejoined();
        if promise_done.is_some() {
            self.answer_waiters();
            self.on_own_promise_durable(now);
        }
        match &self.role {
            RoleState::Follower(_) => self.flush_acks(),
            RoleState::Leader(_) => self.advance_commit(now),
            RoleState::Candidate(_) => {}
        }
    }
}
