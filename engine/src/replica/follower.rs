//! Following a leader: accepting `Append`s and acking them once durable.
//!
//! An `Append{epoch e, prev_seq p, prev_epoch pe, records}` is accepted iff
//! - `e >= promised` (else `Refused`: this is what fences a deposed leader), raising and
//!   persisting the promise when `e` is newer;
//! - our log matches the leader's at `p`: `p` is at or below our flushed base (committed,
//!   identical everywhere), or our record at `p` has epoch `pe` (two records with the same
//!   seq and epoch are the same record: one leader per epoch, and it never reuses a seq).
//!   Otherwise we answer `Gap` with where to resume.
//!
//! Then identical records are skipped, the first conflicting one truncates our tail (only
//! uncommitted records of older epochs can conflict: checked by
//! [`super::invariants::truncation_allowed`]), and the rest is appended. The ack for
//! `p + records.len()` goes out once that prefix is durable; it echoes the newest `sent_at`
//! it covers (the leader's lease counts from it). Our own lease promise starts at receipt.
//!
//! The commit point learned from the leader is capped at the prefix just matched, so a
//! follower never applies a record that is not the leader's.
//!
//! Promises (any role answers them): a `Promise{e}` is granted iff `e > promised` and our
//! lease promise expired; we persist `promised = e` and answer `Promised{last_epoch,
//! last_seq, configuration in force}` only once that is durable
//! ([`super::invariants::promise_durable_before_answer`]).
//! A single ordered WAL makes everything before the promise durable too, and after it we
//! accept nothing older, so the reported log end stays true. A repeated `Promise` for the
//! epoch we promised is answered again (epochs are claimed create-only, so it comes from
//! the same candidate). `Fetch` from the candidate we promised gets our whole tail.
//!
//! A replica rejoining after disk loss ([`super::Recovered::amnesia_floor`]) answers no
//! `Promise`, `Fetch` or `Handover` until its durable log holds a record of an epoch newer
//! than the floor; its promise starts at the floor, so it accepts nothing older.

use crate::types::{Epoch, SeqNo};

use super::core::{Replica, RoleState};
use super::invariants::{self, Violation};
use super::lease::PromiseWindow;
use super::log::BaseAdvance;
use super::{Membership, Millis, Msg, NodeId, PersistOp, Record};

/// An ack waiting for its records to be durable.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingAck {
    leader: NodeId,
    epoch: Epoch,
    last_seq: SeqNo,
    sent_at: Millis,
}

/// Follower state.
#[derive(Debug, Default)]
pub(super) struct FollowerState {
    pub(super) acks: Vec<PendingAck>,
}

/// Whether `records` are contiguous from `prev + 1` with epochs in order and `<= epoch`.
fn well_formed(prev: SeqNo, prev_epoch: Epoch, epoch: Epoch, records: &[super::Record]) -> bool {
    let mut seq = prev;
    let mut last_epoch = prev_epoch;
    for r in records {
        if r.seq != seq.next() || r.epoch < last_epoch || r.epoch > epoch {
            return false;
        }
        seq = r.seq;
        last_epoch = r.epoch;
    }
    prev_epoch <= epoch
}

impl Replica {
    pub(super) fn on_append(&mut self, now: Millis, from: NodeId, msg: Msg) {
        let Msg::Append {
            epoch,
            prev_seq,
            prev_epoch,
            records,
            commit_seq,
            flushed_seq,
            sent_at,
        } = msg
        else {
            return;
        };
        if epoch < self.promised {
            self.refuse_stale(from);
            return;
        }
        if epoch <= self.ended {
            return; // a late message of a leader that handed over
        }
        if !well_formed(prev_seq, prev_epoch, epoch, &records) {
            return;
        }
        match &self.role {
            // One leader per epoch: an Append of our own epoch from elsewhere is impossible.
            RoleState::Leader(l) if l.epoch == epoch => return,
            RoleState::Candidate(c) if c.epoch() == Some(epoch) => return,
            _ => {}
        }
        if let Err(v) = invariants::append_not_stale(self.promised, epoch) {
            self.violated(v);
            return;
        }
        self.become_follower(now);
        if epoch > self.promised {
            self.raise_promise(epoch);
        }
        self.leader_hint = Some(from);
        self.leader_commit = self.leader_commit.max(commit_seq);
        self.window.extend(now, self.cfg.lease_duration);
        self.reset_election_timer(now);
        if flushed_seq > self.log.base() {
            self.request_manifest(now, false);
        }

        // Prefix check.
        if prev_seq > self.log.base() {
            match self.log.epoch_at(prev_seq) {
                None => {
                    let msg = Msg::Gap {
                        epoch,
                        last_seq: self.log.last_seq(),
                    };
                    self.send(from, msg);
                    return;
                }
                Some(mine) if mine != prev_epoch => {
                    let resume = self.log.before_epoch_run(prev_seq).max(self.commit_seq);
                    let msg = Msg::Gap {
                        epoch,
                        last_seq: resume.min(SeqNo(prev_seq.0 - 1)),
                    };
                    self.send(from, msg);
                    return;
                }
                Some(_) => {}
            }
        }

        let matched = SeqNo(prev_seq.0 + records.len() as u64).max(self.log.base());
        if !self.merge(records, epoch) {
            return;
        }
        self.commit_to(commit_seq.min(matched));
        if let RoleState::Follower(f) = &mut self.role {
            f.acks.push(PendingAck {
                leader: from,
                epoch,
                last_seq: matched,
                sent_at,
            });
        }
        self.flush_acks();
    }

    /// Sends one ack covering every pending ack whose prefix is now durable.
    pub(super) fn flush_acks(&mut self) {
        let durable = self.durable_match();
        let promised = self.promised;
        let RoleState::Follower(f) = &mut self.role else {
            return;
        };
        let mut best: Option<PendingAck> = None;
        f.acks.retain(|a| {
            if a.epoch != promised {
                return false;
            }
            if a.last_seq > durable {
                return true;
            }
            best = Some(match best {
                None => *a,
                Some(b) => PendingAck {
                    leader: a.leader,
                    epoch: a.epoch,
                    last_seq: b.last_seq.max(a.last_seq),
                    sent_at: b.sent_at.max(a.sent_at),
                },
            });
            false
        });
        if let Some(a) = best {
            let msg = Msg::Ack {
                epoch: a.epoch,
                last_seq: a.last_seq,
                sent_at: a.sent_at,
                rejoining: self.rejoin_floor.is_some(),
            };
            self.send(a.leader, msg);
        }
    }

    /// Sends `Promised` to candidates whose epoch is now durably promised.
    pub(super) fn answer_waiters(&mut self) {
        let durable = self.persist.durable_promised;
        let waiters = std::mem::take(&mut self.waiters);
        for (e, to) in waiters {
            if e != self.promised {
                continue; // promised something newer meanwhile
            }
            if e <= durable {
                self.answer_promise(to, e);
            } else {
                self.waiters.push((e, to));
            }
        }
    }

    pub(super) fn answer_promise(&mut self, to: NodeId, epoch: Epoch) {
        #[cfg(test)]
        let skip = self.cfg.bug == Some(super::tests::Bug::SkipDurablePromise);
        #[cfg(not(test))]
        let skip = false;
        if !skip
            && let Err(v) =
                invariants::promise_durable_before_answer(self.persist.durable_promised, epoch)
        {
            self.violated(v);
            return;
        }
        let msg = Msg::Promised {
            epoch,
            last_epoch: self.log.last_epoch(),
            last_seq: self.log.last_seq(),
            membership: self.log.membership().cloned(),
        };
        self.send(to, msg);
    }

    /// Answers a message from an epoch older than the one promised.
    fn refuse_stale(&mut self, from: NodeId) {
        let msg = Msg::Refused {
            promised_epoch: self.promised,
            lease_remaining: Millis(0),
        };
        self.send(from, msg);
    }

    pub(super) fn on_promise(
        &mut self,
        now: Millis,
        from: NodeId,
        epoch: Epoch,
        handover_of: Option<Epoch>,
    ) {
        if epoch < self.promised {
            self.refuse_stale(from);
            return;
        }
        #[cfg(test)]
        let amnesiac_promises = self.cfg.bug == Some(super::tests::Bug::PromiseWhileRejoining);
        #[cfg(not(test))]
        let amnesiac_promises = false;
        if self.rejoin_floor.is_some() && !amnesiac_promises {
            // Rejoining after disk loss: our log may lack records our lost state helped
            // commit, so a promise from us could complete a quorum that does not hold them.
            // Silent, as if we were down: the candidate gathers its quorum elsewhere.
            return;
        }
        if epoch == self.promised {
            // Epochs are claimed create-only, so only `from` can ask for this one: this is
            // a retransmission.
            if self.persist.durable_promised >= epoch {
                self.answer_promise(from, epoch);
                return;
            }
            if !self.persist.promise_pending(epoch) {
                // Raised from our log or the manifest after a restart: persist it first.
                self.persist(PersistOp::Promise(epoch));
            }
            if !self.waiters.contains(&(epoch, from)) {
                self.waiters.push((epoch, from));
            }
            return;
        }
        #[cfg(test)]
        let ignore_lease = self.cfg.bug == Some(super::tests::Bug::IgnoreLeasePromise);
        #[cfg(not(test))]
        let ignore_lease = false;
        if self.window.holds(now) && !ignore_lease && !self.released_by_handover(now, handover_of) {
            let msg = Msg::Refused {
                promised_epoch: self.promised,
                lease_remaining: self.window.remaining(now),
            };
            self.send(from, msg);
            // A newer candidate is waiting for our lease to end; let it finish before we
            // compete (it retries when the lease ends).
            self.defer_election_after_lease();
            return;
        }
        self.become_follower(now);
        self.raise_promise(epoch);
        #[cfg(test)]
        if self.cfg.bug == Some(super::tests::Bug::SkipDurablePromise) {
            self.answer_promise(from, epoch);
            return;
        }
        self.waiters.push((epoch, from));
    }

    /// Whether a candidate's `Promise` that says the leader of `handover_of` handed the shard
    /// to it may be granted although our lease promise holds. Only if we promised exactly
    /// that epoch (every `Append` we accepted since came from its leader, so our lease promise
    /// protects that leader alone, and it stopped serving before it sent `Handover`), we are
    /// not that leader, and we are past the restart guard (before the crash we may have acked
    /// a newer leader whose promise we lost).
    fn released_by_handover(&self, now: Millis, handover_of: Option<Epoch>) -> bool {
        handover_of == Some(self.promised)
            && now >= self.restart_guard_until
            && !matches!(self.role, RoleState::Leader(_))
    }

    /// `Handover{epoch}` from the leader we follow: it stopped leading `epoch` and we hold
    /// its log. We take over at once (our lease promise protected only that leader), telling
    /// the others in our `Promise`s; even when draining (the leader cannot take its epoch
    /// back, so refusing would leave the shard leaderless for a lease): we then hand it on.
    /// Ignored unless we follow `from` in exactly that epoch (then the shard fails over the
    /// usual way, after the lease). Within the restart guard (we may have acked a newer
    /// leader before a crash) it waits until the guard ends and is checked again then: a
    /// leader cannot tell that we restarted if we were down for less than two heartbeats.
    pub(super) fn on_handover(&mut self, now: Millis, from: NodeId, epoch: Epoch) {
        if epoch != self.promised
            || self.leader_hint != Some(from)
            || !matches!(self.role, RoleState::Follower(_))
            || self.rejoin_floor.is_some()
            || !self.is_voter()
        {
            return;
        }
        if now < self.restart_guard_until {
            self.deferred_handover = Some((epoch, from));
            return;
        }
        self.ended = self.ended.max(epoch);
        self.window = PromiseWindow::until(now);
        self.start_takeover(now, Some(epoch));
    }

    pub(super) fn on_fetch(&mut self, from: NodeId, epoch: Epoch, after_seq: SeqNo) {
        if epoch < self.promised {
            self.refuse_stale(from);
            return;
        }
        if epoch > self.promised || self.rejoin_floor.is_some() {
            // We never promised it (not an adopter's request), or the promise was made by
            // the state we lost and our log is not what it reported.
            return;
        }
        let prev = after_seq.max(self.log.base()).min(self.log.last_seq());
        let records = self.log.range(prev, self.log.last_seq()).cloned().collect();
        let msg = Msg::Records {
            epoch,
            prev_seq: prev,
            prev_epoch: self.log.epoch_at(prev).unwrap_or(self.log.base_epoch()),
            records,
        };
        self.send(from, msg);
    }

    /// Merges `records` (contiguous, from a writer of `writer_epoch` whose log matches ours
    /// just before them) into the log: identical records are kept, the first conflicting one
    /// truncates our older-epoch tail, the rest is appended and persisted. Returns false if
    /// a truncation would break a safety rule (the records are then ignored).
    pub(super) fn merge(&mut self, records: Vec<Record>, writer_epoch: Epoch) -> bool {
        let mut appended = Vec::new();
        for r in records {
            if r.seq <= self.log.base() {
                continue;
            }
            if appended.is_empty() && r.seq <= self.log.last_seq() {
                if self.log.get(r.seq).is_some_and(|m| m.epoch == r.epoch) {
                    continue;
                }
                let after = SeqNo(r.seq.0 - 1);
                let removed = self.log.truncate_after(after);
                if let Err(v) =
                    invariants::truncation_allowed(&removed, writer_epoch, self.commit_seq)
                {
                    self.violated(v);
                    for x in removed {
                        self.log.push(x);
                    }
                    return false;
                }
                self.persist(PersistOp::Truncate { after });
            }
            if !self.log.push(r.clone()) {
                self.violated(Violation("merged records are not contiguous"));
                break;
            }
            appended.push(r);
        }
        if !appended.is_empty() {
            self.persist(PersistOp::Append(appended));
        }
        true
    }

    /// Applies a manifest's flushed prefix (and the configuration in force there) to the log.
    pub(super) fn apply_base(&mut self, seq: SeqNo, epoch: Epoch, membership: Option<Membership>) {
        match self.log.advance_base(seq, epoch, membership) {
            BaseAdvance::Unchanged => return,
            BaseAdvance::Dropped => {}
            BaseAdvance::DroppedAndTruncated => {
                self.persist(PersistOp::Truncate { after: seq });
            }
        }
        // Everything up to the base is in segments: committed, and applied by reloading
        // the manifest's segment list.
        self.commit_seq = self.commit_seq.max(seq);
        if let RoleState::Leader(l) = &mut self.role {
            for p in l.peers.values_mut() {
                p.next_seq = p.next_seq.max(seq.next());
            }
        }
    }
}
