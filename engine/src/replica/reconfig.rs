//! Changing the configuration of a shard (design note 0009 §2): a serving leader moves its
//! configuration in force toward the target replica set of the newest shard map, one change
//! at a time.
//!
//! 1. **Learn.** Every node of the target that is not a voter gets the leader's `Append`s as
//!    a learner (a peer whose acks count for nothing); one whose log is behind the flushed
//!    prefix reloads the manifest first, as any follower (segments are shared through object
//!    storage: nothing flushed is copied).
//! 2. **Joint.** Once every learner's durable log is within `move_lag_records` of the commit
//!    point ([`invariants::learner_caught_up`]), the leader appends `(C, T)`. A configuration
//!    is in force from the moment it is appended: commit, lease and handover targets count
//!    under it at once.
//! 3. **Final.** Once `(C, T)` is committed, the leader appends `T`.
//! 4. **Release.** Once `T` is committed, replicas it removed get one last `Append` (they
//!    learn that they are no longer voters, and their node releases them), and a leader that
//!    is not in `T` hands the shard to a voter of `T` (`leader.rs`).
//!
//! A configuration record is appended only when the leader's barrier is committed and the
//! previous configuration record is committed ([`invariants::config_change_after_barrier`],
//! [`invariants::one_config_change_in_flight`]). A joint configuration is always followed by
//! its final one, whatever the target says meanwhile.

use std::collections::BTreeSet;

use crate::types::SeqNo;

use super::core::{Replica, RoleState};
use super::invariants;
use super::leader::Peer;
use super::{Membership, Millis, NodeId, PersistOp, Record};

/// Where a shard's move stands, as its leader sees it (design note 0009 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangePhase {
    /// The configuration in force is the target (or no target is known): nothing to do.
    Done,
    /// Learners of the target are catching up; the configuration in force is steady.
    Learning,
    /// The joint configuration is in force (appended, maybe not committed yet).
    Joint,
    /// The final configuration is appended but not committed yet.
    Final,
    /// The final configuration is committed and does not list this replica: a leader hands
    /// the shard over to a voter of it, a follower waits for its node to release it.
    Releasing,
}

/// How far one learner is behind its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerProgress {
    /// The learner.
    pub node: NodeId,
    /// Records between its durably matched log end and the leader's commit point.
    pub records_behind: u64,
    /// Bytes of the entries after its durably matched log end in the leader's log
    /// ([`super::Log::bytes_after`]; the log tail it still has to receive).
    pub bytes_behind: u64,
    /// Whether it acked in this epoch (a learner that never did may be down).
    pub acked: bool,
}

/// Whether two voter lists hold the same nodes (rank order aside).
fn same_set(a: &[NodeId], b: &[NodeId]) -> bool {
    let a: BTreeSet<NodeId> = a.iter().copied().collect();
    let b: BTreeSet<NodeId> = b.iter().copied().collect();
    a == b
}

impl Replica {
    /// The newest shard map's target for this shard. Remembered by every role; a leader
    /// starts replicating to new learners at once.
    pub(super) fn on_set_target(&mut self, now: Millis, voters: Vec<NodeId>) {
        let m = Membership::Steady(voters);
        if let Err(what) = m.validate() {
            tracing::warn!(shard = %self.cfg.shard, node = %self.cfg.me, what, "ignoring an invalid target replica set");
            return;
        }
        let Membership::Steady(voters) = m else {
            return;
        };
        self.target = Some(voters);
        self.sync_peers(now);
    }

    /// The replicas a leader replicates to: the voters of the configuration in force and of
    /// the one at the commit point (removed voters get the final record), and the target's
    /// other nodes (learners). Never itself nor a retired id.
    pub(super) fn desired_peers(&self) -> BTreeSet<NodeId> {
        let mut all: BTreeSet<NodeId> = self.membership().voters().into_iter().collect();
        all.extend(self.membership_at(self.commit_seq).voters());
        if let Some(t) = &self.target {
            all.extend(t.iter().copied());
        }
        all.remove(&self.cfg.me);
        all.retain(|n| !self.retired.contains(n));
        all
    }

    /// Brings a leader's peers in line with [`Replica::desired_peers`]: new ones start from
    /// the end of the log; one no longer needed gets a last `Append` (with the commit point:
    /// a removed replica learns that the configuration without it is committed) and is
    /// dropped.
    pub(super) fn sync_peers(&mut self, now: Millis) {
        let want = self.desired_peers();
        let base = self.log.base();
        let next = self.log.last_seq().next();
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        for n in &want {
            l.peers.entry(*n).or_insert_with(|| Peer::fresh(base, next));
        }
        let gone: Vec<NodeId> = l
            .peers
            .keys()
            .filter(|n| !want.contains(n))
            .copied()
            .collect();
        for n in gone {
            if !self.retired.contains(&n) {
                self.send_append(n, now);
            }
            if let RoleState::Leader(l) = &mut self.role {
                l.peers.remove(&n);
            }
        }
    }

    /// A leader's step toward the target, once per tick (module docs).
    pub(super) fn reconfigure_tick(&mut self, now: Millis) {
        let RoleState::Leader(l) = &self.role else {
            return;
        };
        if !l.serving || l.handover.is_some() {
            return;
        }
        if self
            .log
            .last_config_seq()
            .is_some_and(|s| s > self.commit_seq)
        {
            return; // one change in flight
        }
        let next = match self.membership().clone() {
            Membership::Joint { new, .. } => Membership::Steady(new),
            Membership::Steady(c) => {
                let Some(t) = self.target.clone() else {
                    return;
                };
                if same_set(&c, &t) || !self.learners_caught_up(&c, &t) {
                    return;
                }
                #[cfg(test)]
                if self.cfg.bug == Some(super::tests::Bug::SkipJointConfig) {
                    self.append_config(now, Membership::Steady(t));
                    return;
                }
                Membership::Joint { old: c, new: t }
            }
        };
        self.append_config(now, next);
    }

    /// Whether every node of `target` outside `current` acked in this epoch and durably
    /// holds the log up to `move_lag_records` before the commit point.
    fn learners_caught_up(&self, current: &[NodeId], target: &[NodeId]) -> bool {
        #[cfg(test)]
        if self.cfg.bug == Some(super::tests::Bug::PromoteUncaughtLearner) {
            return true;
        }
        let RoleState::Leader(l) = &self.role else {
            return false;
        };
        target
            .iter()
            .filter(|n| !current.contains(n) && **n != self.cfg.me)
            .all(|n| {
                l.peers.get(n).is_some_and(|p| {
                    p.has_acked()
                        && invariants::learner_caught_up(
                            p.match_seq,
                            self.commit_seq,
                            self.cfg.move_lag_records,
                        )
                        .is_ok()
                })
            })
    }

    /// Appends a configuration record in our epoch, after checking the rules; it is in force
    /// from now on.
    fn append_config(&mut self, now: Millis, next: Membership) {
        let RoleState::Leader(l) = &self.role else {
            return;
        };
        let epoch = l.epoch;
        let checks =
            invariants::config_change_after_barrier(l.serving, self.commit_seq, l.barrier_seq)
                .and_then(|()| {
                    invariants::one_config_change_in_flight(
                        self.log.last_config_seq(),
                        self.commit_seq,
                        self.membership(),
                        &next,
                    )
                });
        #[cfg(test)]
        let checks = if self.cfg.bug == Some(super::tests::Bug::SkipJointConfig) {
            Ok(())
        } else {
            checks
        };
        if let Err(v) = checks {
            self.violated(v);
            return;
        }
        let seq = self.log.last_seq().next();
        tracing::info!(shard = %self.cfg.shard, node = %self.cfg.me, %epoch, %seq, membership = %next, "appending a configuration record");
        let record = Record {
            epoch,
            seq,
            entries: Vec::new(),
            membership: Some(next),
        };
        self.log.push(record.clone());
        self.persist(PersistOp::Append(vec![record]));
        self.sync_peers(now);
        self.send_to_in_sync(now, seq);
        // Our own copy may complete a quorum of the new configuration at once (one replica).
        self.advance_commit(now);
    }

    /// The target replica set this replica knows ([`super::Input::SetTarget`]).
    #[must_use]
    pub fn target(&self) -> Option<&[NodeId]> {
        self.target.as_deref()
    }

    /// Where the move of this shard stands; meaningful at the leader (a follower reports
    /// what its log says, from its possibly stale view).
    #[must_use]
    pub fn change_phase(&self) -> ChangePhase {
        let uncommitted = self
            .log
            .last_config_seq()
            .is_some_and(|s| s > self.commit_seq);
        match self.membership() {
            Membership::Joint { .. } => ChangePhase::Joint,
            Membership::Steady(_) if uncommitted => ChangePhase::Final,
            Membership::Steady(c) => match &self.target {
                Some(t) if !same_set(c, t) => ChangePhase::Learning,
                _ if !self.is_voter() => ChangePhase::Releasing,
                _ => ChangePhase::Done,
            },
        }
    }

    /// At a leader: how far each learner (a target node that is not a voter in force) is
    /// behind the commit point. Empty for other roles and when nothing is learning.
    #[must_use]
    pub fn learners(&self) -> Vec<LearnerProgress> {
        let RoleState::Leader(l) = &self.role else {
            return Vec::new();
        };
        let m = self.membership();
        let Some(t) = &self.target else {
            return Vec::new();
        };
        t.iter()
            .filter(|n| !m.is_voter(**n) && **n != self.cfg.me)
            .map(|n| {
                let p = l.peers.get(n);
                let matched = p.map_or(SeqNo(0), |p| p.match_seq);
                LearnerProgress {
                    node: *n,
                    records_behind: self.commit_seq.0.saturating_sub(matched.0),
                    bytes_behind: self.log.bytes_after(matched),
                    acked: p.is_some_and(Peer::has_acked),
                }
            })
            .collect()
    }
}
