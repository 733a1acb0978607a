//! Leading an epoch: barrier, sequencing, replication, the commit rule, the lease.
//!
//! A new leader appends a barrier record in its epoch right after the adopted log and
//! replicates from there (followers with a different tail answer `Gap` and the leader backs
//! off to where they match). It serves (accepts proposals) once the barrier is committed.
//!
//! Commit rule: `commit_seq` is the highest seq durably matched by a quorum of the
//! configuration in force (ours and each follower's latest `Ack` in this epoch; both halves
//! of a joint configuration; voters only, design note 0009), and only once that is at or
//! above the barrier (see [`super::invariants::commit_after_barrier`]). A follower acks a
//! seq only when its durable log equals ours up to it, so a quorum of acks means a quorum
//! of durable copies. The lease is counted the same way. Learners (target replicas that are
//! not voters yet) get `Append`s like followers, but their acks count for nothing
//! (`reconfig.rs`).
//!
//! Replication: each follower has a `next_seq` (optimistic, advanced on send) and a
//! `match_seq` (durably acked). Every `heartbeat_interval` each follower gets an `Append` from
//! `next_seq` (empty if up to date); one that made no progress since the last heartbeat is
//! rewound to `match_seq + 1`, which resends what may have been lost.
//!
//! A leader steps down on any sign of a newer epoch: a `Refused` with a newer promise, a
//! `Promise` it grants, or an `Append` from a newer leader.
//!
//! Handover (design note 0006): a leader that is not the first-ranked replica hands the shard
//! to it once that replica has been acking without a pause for `handover_after` and holds
//! everything committed (a lagging target would only make us pause for nothing). It stops
//! sequencing (proposals get `NotReady`), waits at most two heartbeats until the target acked
//! every record and everything is committed (so no client is left without an answer), then
//! steps down (no more strong reads: the role change comes out before the message) and sends
//! `Handover`. The target takes over at once; the replicas that promised our epoch grant its
//! `Promise` despite their lease promise, which protected only us. If the target does not
//! catch up in time we resume and wait another `handover_after`.

use std::collections::BTreeMap;

use crate::types::{Entry, Epoch, SeqNo};

use super::core::{Replica, RoleState};
use super::invariants;
use super::lease::leader_lease_until;
use super::{Millis, Msg, NodeId, Output, PersistOp, Record, RejectReason};

/// Replication progress of one follower.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    pub(super) match_seq: SeqNo,
    pub(super) next_seq: SeqNo,
    acked_sent_at: Option<Millis>,
    progressed: bool,
    /// Local time of its latest ack in this epoch.
    last_ack_at: Option<Millis>,
    /// Since when it has acked without a pause longer than two heartbeats.
    acking_since: Option<Millis>,
    /// Its latest ack says it is rejoining after disk loss: it takes no handover, and once
    /// it holds everything committed we hand the shard to another replica.
    rejoining: bool,
}

impl Peer {
    /// A peer we know nothing about yet: everything up to `match_seq` counts as matched (the
    /// flushed base: committed, in segments), `next_seq` is where we send from.
    pub(super) fn fresh(match_seq: SeqNo, next_seq: SeqNo) -> Self {
        Self {
            match_seq,
            next_seq,
            acked_sent_at: None,
            progressed: true,
            last_ack_at: None,
            acking_since: None,
            rejoining: false,
        }
    }

    /// Whether it acked in this epoch since the connection last broke.
    pub(super) fn has_acked(&self) -> bool {
        self.last_ack_at.is_some()
    }

    /// Whether it has acked without a pause for at least `after` and is still acking.
    fn steady(&self, now: Millis, hb: Millis, after: Millis) -> bool {
        let recent = self
            .last_ack_at
            .is_some_and(|t| now <= t.plus(Millis(2 * hb.0)));
        recent && self.acking_since.is_some_and(|s| now >= s.plus(after))
    }
}

/// Leader state.
#[derive(Debug)]
pub(super) struct LeaderState {
    pub(super) epoch: Epoch,
    pub(super) barrier_seq: SeqNo,
    pub(super) serving: bool,
    pub(super) peers: BTreeMap<NodeId, Peer>,
    next_heartbeat: Millis,
    last_sent: Millis,
    /// When it took over (its lease counts from acks of this epoch only).
    since: Millis,
    /// A handover in progress: its target and when to give up.
    pub(super) handover: Option<(NodeId, Millis)>,
}

impl Replica {
    /// Becomes leader of the promised epoch on top of the adopted log.
    pub(super) fn finish_takeover(&mut self, now: Millis) {
        let epoch = self.promised;
        let barrier_seq = self.log.last_seq().next();
        let barrier = Record::batch(epoch, barrier_seq, Vec::new());
        let peers = self
            .desired_peers()
            .into_iter()
            .map(|p| (p, Peer::fresh(self.log.base(), barrier_seq)))
            .collect();
        self.log.push(barrier.clone());
        self.persist(PersistOp::Append(vec![barrier]));
        self.role = RoleState::Leader(LeaderState {
            epoch,
            barrier_seq,
            serving: false,
            peers,
            next_heartbeat: now,
            last_sent: now,
            since: now,
            handover: None,
        });
        self.leader_hint = Some(self.cfg.me);
        self.role_changed();
        self.heartbeat(now);
    }

    pub(super) fn on_propose(&mut self, now: Millis, entries: Vec<Entry>) {
        if entries.is_empty() {
            self.out.push(Output::Rejected {
                reason: RejectReason::Empty,
            });
            return;
        }
        let voter = self.is_voter();
        let epoch = match &self.role {
            RoleState::Leader(l) if l.serving && l.handover.is_none() && voter => l.epoch,
            RoleState::Leader(_) => {
                self.out.push(Output::Rejected {
                    reason: RejectReason::NotReady,
                });
                return;
            }
            _ => {
                let leader = self.leader_hint;
                self.out.push(Output::Rejected {
                    reason: RejectReason::NotLeader { leader },
                });
                return;
            }
        };
        let seq = self.log.last_seq().next();
        let entries = entries.into_iter().map(|e| Entry { seq, ..e }).collect();
        let record = Record::batch(epoch, seq, entries);
        if let Err(v) =
            invariants::leader_is_voter_or_leaving(self.membership(), self.cfg.me, &record)
        {
            self.violated(v);
            return;
        }
        self.log.push(record.clone());
        self.persist(PersistOp::Append(vec![record]));
        self.note_proposal(now);
        self.out.push(Output::Proposed { seq });
        self.send_to_in_sync(now, seq);
    }

    /// Sends the record at `seq` (just appended) to every follower that is up to date.
    pub(super) fn send_to_in_sync(&mut self, now: Millis, seq: SeqNo) {
        let in_sync: Vec<NodeId> = match &self.role {
            RoleState::Leader(l) => l
                .peers
                .iter()
                .filter(|(_, p)| p.next_seq == seq)
                .map(|(n, _)| *n)
                .collect(),
            _ => Vec::new(),
        };
        for p in in_sync {
            self.send_append(p, now);
        }
    }

    pub(super) fn leader_tick(&mut self, now: Millis) {
        if self.hears_no_quorum(now) {
            // Design note 0002, "A leader that hears no quorum steps down".
            self.become_follower(now);
            return;
        }
        if let RoleState::Leader(l) = &self.role
            && now >= l.next_heartbeat
        {
            self.heartbeat(now);
        }
        self.reconfigure_tick(now);
        if self.commit_seq < self.log.last_seq() && !self.commit_held(now) {
            // Acks that came while a read lease held the commit point (design note 0014).
            self.advance_commit(now);
        }
        self.handover_tick(now);
    }

    /// Whether no quorum of the configuration in force acked any `Append` this leader sent
    /// in the last lease (none since its takeover, a lease ago): its lease has expired and
    /// it can commit nothing. It then steps down and stops heartbeating, so that followers
    /// that still hear it (a one-way partition: its messages arrive, their answers do not)
    /// stop deferring to it and elect a leader that a quorum hears. Stepping down is always
    /// safe; it only ends a leadership that could not serve.
    fn hears_no_quorum(&self, now: Millis) -> bool {
        let RoleState::Leader(l) = &self.role else {
            return false;
        };
        #[cfg(test)]
        if self.cfg.bug == Some(super::tests::Bug::LeaderIgnoresLostQuorum) {
            return false;
        }
        let lease = self.cfg.lease_duration;
        // `lease_until` is the newest quorum-acked send plus `lease − drift`.
        let heard_until = self
            .lease_until(l)
            .map_or(l.since.plus(lease), |u| u.plus(self.cfg.max_clock_drift));
        now >= heard_until.max(l.since.plus(lease))
    }

    /// `node`'s connection broke: it is not steady any more until it acks again.
    pub(super) fn on_peer_lost(&mut self, node: NodeId) {
        if let RoleState::Leader(l) = &mut self.role
            && let Some(p) = l.peers.get_mut(&node)
        {
            p.acking_since = None;
            p.last_ack_at = None;
        }
    }

    /// Starts a handover to the first-ranked replica once it is steady, or gives one up that
    /// did not finish in time (the target then has to be steady for another period).
    fn handover_tick(&mut self, now: Millis) {
        let hb = self.cfg.heartbeat_interval;
        let draining = self.draining;
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        if !l.serving {
            return;
        }
        match l.handover {
            Some((to, give_up)) if now >= give_up => {
                l.handover = None;
                if !draining && let Some(p) = l.peers.get_mut(&to) {
                    p.acking_since = Some(now);
                }
            }
            Some(_) => self.try_finish_handover(now),
            None => {
                // A leader the committed configuration removed hands the shard to one of its
                // voters (design note 0009 §2, "Release").
                let leaving = !self.is_voter()
                    && self
                        .log
                        .last_config_seq()
                        .is_none_or(|s| s <= self.commit_seq);
                let target = if draining || leaving {
                    self.drain_target(now)
                } else {
                    self.preferred_target(now)
                        .or_else(|| self.rejoin_target(now))
                };
                if let Some(to) = target
                    && let RoleState::Leader(l) = &mut self.role
                {
                    // Outstanding read leases end first (design note 0014).
                    let from = now.max(self.reads.until);
                    l.handover = Some((to, from.plus(Millis(2 * hb.0))));
                    self.try_finish_handover(now);
                }
            }
        }
    }

    /// The first-ranked replica, if it is not us, has acked steadily for `handover_after`
    /// and already holds everything committed (one that lags would make us stop sequencing
    /// for nothing).
    fn preferred_target(&self, now: Millis) -> Option<NodeId> {
        let after = self.cfg.handover_after?;
        let m = self.membership();
        if m.is_joint() || !m.is_voter(self.cfg.me) {
            return None;
        }
        let target = *m.voters().first()?;
        let RoleState::Leader(l) = &self.role else {
            return None;
        };
        let p = l.peers.get(&target)?;
        let ready = p.steady(now, self.cfg.heartbeat_interval, after)
            && p.match_seq >= self.commit_seq
            && !p.rejoining;
        ready.then_some(target)
    }

    /// A replica rejoining after disk loss that holds everything committed needs a record of
    /// a newer epoch than ours to finish (see `Replica::check_rejoined`): we hand the shard
    /// to another replica, whose takeover writes that barrier. Not urgent, so only to one
    /// that has acked steadily for a lease (past its restart guard: it takes the handover at
    /// once) and holds everything committed.
    fn rejoin_target(&self, now: Millis) -> Option<NodeId> {
        let hb = self.cfg.heartbeat_interval;
        let lease = self.cfg.lease_duration;
        let RoleState::Leader(l) = &self.role else {
            return None;
        };
        let caught_up = |p: &Peer| p.steady(now, hb, Millis(0)) && p.match_seq >= self.commit_seq;
        if !l.peers.values().any(|p| p.rejoining && caught_up(p)) {
            return None;
        }
        self.best_peer(now, |p| caught_up(p) && p.steady(now, hb, lease))
    }

    /// Where to go when the node stops: a replica acking now.
    fn drain_target(&self, now: Millis) -> Option<NodeId> {
        let hb = self.cfg.heartbeat_interval;
        self.best_peer(now, |p| p.steady(now, hb, Millis(0)))
    }

    /// Among the peers that are `eligible` and not rejoining after disk loss (they take no
    /// handover): one that has acked for a whole lease (so it is past its restart guard and
    /// will take the handover) if any, then the most up to date, then by rank.
    fn best_peer(&self, now: Millis, eligible: impl Fn(&Peer) -> bool) -> Option<NodeId> {
        let hb = self.cfg.heartbeat_interval;
        let lease = self.cfg.lease_duration;
        let RoleState::Leader(l) = &self.role else {
            return None;
        };
        self.membership()
            .voters()
            .iter()
            .enumerate()
            .filter_map(|(rank, n)| l.peers.get(n).map(|p| (rank, *n, p)))
            .filter(|(_, _, p)| !p.rejoining && eligible(p))
            .max_by_key(|(rank, _, p)| {
                (
                    p.steady(now, hb, lease),
                    p.match_seq,
                    std::cmp::Reverse(*rank),
                )
            })
            .map(|(_, n, _)| n)
    }

    /// Completes a handover once the target acked our whole log and all of it is committed:
    /// steps down, then tells the target.
    fn try_finish_handover(&mut self, now: Millis) {
        let last = self.log.last_seq();
        let RoleState::Leader(l) = &self.role else {
            return;
        };
        let Some((target, _)) = l.handover else {
            return;
        };
        if self.commit_seq < last
            || l.peers.get(&target).is_none_or(|p| p.match_seq < last)
            || self.handover_held(now)
        {
            return;
        }
        let epoch = l.epoch;
        #[cfg(test)]
        if self.cfg.bug == Some(super::tests::Bug::HandoverKeepsLeading) {
            self.send(target, Msg::Handover { epoch });
            if let RoleState::Leader(l) = &mut self.role {
                l.handover = None;
            }
            return;
        }
        self.ended = self.ended.max(epoch);
        self.become_follower(now);
        self.leader_hint = Some(target);
        self.send(target, Msg::Handover { epoch });
    }

    fn heartbeat(&mut self, now: Millis) {
        let last = self.log.last_seq();
        let hb = self.cfg.heartbeat_interval;
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        l.next_heartbeat = now.plus(hb);
        // Our own part of the lease quorum counts from now. With peers, every send below
        // sets it too; the only replica of a shard sends nothing, and its lease would
        // otherwise end one lease after its takeover (strong reads then failed as
        // `not_leader` on a one-replica node that had been serving for more than a lease).
        l.last_sent = now;
        for p in l.peers.values_mut() {
            if !p.progressed && p.match_seq < last {
                p.next_seq = p.match_seq.next();
            }
            p.progressed = false;
        }
        let peers: Vec<NodeId> = l.peers.keys().copied().collect();
        for p in peers {
            self.send_append(p, now);
        }
    }

    /// Sends `peer` the records from its `next_seq` (at most `max_records_per_append`).
    pub(super) fn send_append(&mut self, peer: NodeId, now: Millis) {
        let base = self.log.base();
        let last = self.log.last_seq();
        let max = self.cfg.max_records_per_append as u64;
        let lease = self.cfg.lease_duration;
        let commit_seq = self.commit_seq;
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        let Some(p) = l.peers.get_mut(&peer) else {
            return;
        };
        let next = p.next_seq.max(base.next()).min(last.next());
        let prev_seq = SeqNo(next.0 - 1);
        let upto = SeqNo(prev_seq.0.saturating_add(max)).min(last);
        let records: Vec<Record> = self.log.range(prev_seq, upto).cloned().collect();
        p.next_seq = SeqNo(prev_seq.0 + records.len() as u64).next();
        l.last_sent = now;
        let msg = Msg::Append {
            epoch: l.epoch,
            prev_seq,
            prev_epoch: self.log.epoch_at(prev_seq).unwrap_or(self.log.base_epoch()),
            records,
            commit_seq,
            flushed_seq: base,
            sent_at: now,
        };
        // We count ourselves in the lease quorum: no promise before `now + lease`.
        self.window.extend(now, lease);
        self.send(peer, msg);
    }

    pub(super) fn on_ack(
        &mut self,
        now: Millis,
        from: NodeId,
        epoch: Epoch,
        (last_seq, sent_at): (SeqNo, Millis),
        rejoining: bool,
    ) {
        let last = self.log.last_seq();
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        if epoch != l.epoch || last_seq > last {
            return;
        }
        let Some(p) = l.peers.get_mut(&from) else {
            return;
        };
        if last_seq > p.match_seq {
            p.match_seq = last_seq;
            p.progressed = true;
        }
        p.next_seq = p.next_seq.max(last_seq.next());
        p.acked_sent_at = Some(p.acked_sent_at.map_or(sent_at, |t| t.max(sent_at)));
        let hb = self.cfg.heartbeat_interval;
        if p.last_ack_at.is_none_or(|t| now > t.plus(Millis(2 * hb.0))) {
            p.acking_since = Some(now);
        }
        p.last_ack_at = Some(now);
        p.rejoining = rejoining;
        let more = p.next_seq <= last;
        self.advance_commit(now);
        if more {
            self.send_append(from, now);
        }
    }

    pub(super) fn on_gap(&mut self, now: Millis, from: NodeId, epoch: Epoch, last_seq: SeqNo) {
        let base = self.log.base();
        let last = self.log.last_seq();
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        if epoch != l.epoch {
            return;
        }
        let Some(p) = l.peers.get_mut(&from) else {
            return;
        };
        let next = last_seq.next().max(base.next()).min(last.next());
        if next == p.next_seq {
            return; // already resent from there; the heartbeat retries
        }
        p.next_seq = next;
        self.send_append(from, now);
    }

    /// Moves the commit point forward if it can, then finishes a handover if one waits for
    /// that.
    pub(super) fn advance_commit(&mut self, now: Millis) {
        self.move_commit_point(now);
        self.try_finish_handover(now);
    }

    /// Moves the commit point to the highest seq durably matched by a quorum of the
    /// configuration in force (both halves of a joint one; voters only), if at/after the
    /// barrier.
    fn move_commit_point(&mut self, now: Millis) {
        #[cfg(test)]
        let own = if self.cfg.bug == Some(super::tests::Bug::CommitUndurable) {
            self.log.last_seq()
        } else {
            self.durable_match()
        };
        #[cfg(not(test))]
        let own = self.durable_match();
        let RoleState::Leader(l) = &self.role else {
            return;
        };
        let me = self.cfg.me;
        let matched = |n: NodeId| {
            if n == me {
                Some(own)
            } else {
                l.peers.get(&n).map(|p| p.match_seq)
            }
        };
        let m = self.membership();
        #[cfg(test)]
        let candidate = if self.cfg.bug == Some(super::tests::Bug::CountNonVoters) {
            // The planted bug: every replica's ack counts, learners and removed ones too.
            let mut all: Vec<SeqNo> = l.peers.values().map(|p| p.match_seq).collect();
            all.push(own);
            all.sort_unstable_by(|a, b| b.cmp(a));
            let q = super::membership::quorum_size(m.voters().len(), self.tolerate);
            all.get(q.saturating_sub(1)).copied()
        } else {
            m.quorum_value(self.tolerate, matched)
        };
        #[cfg(not(test))]
        let candidate = m.quorum_value(self.tolerate, matched);
        let Some(candidate) = candidate else {
            return;
        };
        if candidate <= self.commit_seq {
            return;
        }
        if invariants::commit_after_barrier(candidate, l.barrier_seq).is_err() {
            return; // adopted records commit only through the barrier
        }
        if self.commit_held(now) {
            return; // a read lease is outstanding: the tick commits once it ended
        }
        let config_before = self
            .log
            .last_config_seq()
            .is_some_and(|s| s > self.commit_seq);
        self.commit_to(candidate);
        if let RoleState::Leader(l) = &mut self.role
            && !l.serving
            && self.commit_seq >= l.barrier_seq
        {
            l.serving = true;
            self.role_changed();
        }
        if config_before
            && self
                .log
                .last_config_seq()
                .is_some_and(|s| s <= self.commit_seq)
        {
            // A configuration record committed: replicas it removed get a last Append.
            self.sync_peers(now);
        }
    }

    /// The lease under the configuration in force: from the newest `Append` acked by a
    /// quorum of it (both halves of a joint one), this leader included if it is a voter.
    pub(super) fn lease_until(&self, l: &LeaderState) -> Option<Millis> {
        let me = self.cfg.me;
        let sent_at = |n: NodeId| {
            if n == me {
                Some(l.last_sent)
            } else {
                l.peers.get(&n).and_then(|p| p.acked_sent_at)
            }
        };
        leader_lease_until(
            self.membership(),
            self.tolerate,
            sent_at,
            self.cfg.lease_duration,
            self.cfg.max_clock_drift,
        )
    }
}
