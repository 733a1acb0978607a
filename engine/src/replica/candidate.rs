//! Takeover: from follower to leader of a new epoch.
//!
//! Phases (each input moves at most one step; the whole takeover is abandoned after
//! `takeover_timeout`, going back to follower with a fresh timer):
//! 1. `LoadingManifest`: read the latest manifest (flushed prefix `F`), asking again every
//!    two heartbeat intervals until it comes.
//! 2. `Claiming`: create-only claim of an epoch above everything seen. Losing means someone
//!    else is taking over: back off as a follower.
//! 3. `Promising`: persist our own promise, ask every replica for one. A replica promises
//!    only when its lease promise expired (or protects only a leader that handed the shard
//!    to us, see `leader.rs`) and durably before answering, so once a quorum answered, no
//!    older leader can gather W acks again and no older lease is valid.
//!    Promises count toward a quorum of the configuration in force in the log we would
//!    adopt (the greatest among the promises, below), not of ours: each `Promised` carries
//!    the responder's configuration. Adding promises only moves the greatest log forward, so
//!    we recompute until the promises form a quorum of its configuration, asking its voters
//!    we have not asked yet; if we are not a voter of it we abandon (design note 0009 §3).
//! 4. `Fetching`: adopt the log with the greatest `(last_epoch, last_seq)` among the quorum
//!    ("the longest"): every committed record is on a quorum of the configuration it was
//!    committed under, which meets our promises (note 0009 §4); logs are prefixes of their
//!    epoch leader's log, and a leader of a newer epoch adopted every record committed
//!    before it, so the greatest log holds all committed records. We fetch its tail after our commit point (identical below it), truncate
//!    whatever of ours differs or reaches past it, and check we now end where it does.
//! 5. Leader (`leader.rs`): append a barrier in our epoch and replicate.

use std::collections::BTreeMap;

use crate::types::{Epoch, SeqNo};

use super::core::{Replica, RoleState};
use super::invariants;
use super::membership::quorum_size;
use super::{Membership, Millis, Msg, NodeId, Output, PersistOp, Record};

/// End of a replica's log as reported in `Promised`: `(last_epoch, last_seq)`.
pub(super) type LogEnd = (Epoch, SeqNo);

/// A promise received: the responder's log end and configuration in force (`None`: genesis).
type Promise = (LogEnd, Option<Membership>);

/// Candidate state.
#[derive(Debug)]
pub(super) struct CandidateState {
    started: Millis,
    /// When to give up: `takeover_timeout` after the start, pushed back (by at most one
    /// lease) when replicas tell us when their lease promise ends.
    deadline: Millis,
    /// The epoch whose leader handed the shard to us, if that started this takeover (sent
    /// along with our `Promise`s).
    handover_of: Option<Epoch>,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    LoadingManifest {
        retry_at: Millis,
    },
    Claiming,
    Promising {
        epoch: Epoch,
        promises: BTreeMap<NodeId, Promise>,
        retry_at: BTreeMap<NodeId, Millis>,
    },
    Fetching {
        epoch: Epoch,
        from: NodeId,
        want: LogEnd,
        retry_at: Millis,
    },
}

impl CandidateState {
    /// The epoch being taken over, once claimed.
    pub(super) fn epoch(&self) -> Option<Epoch> {
        match &self.phase {
            Phase::Promising { epoch, .. } | Phase::Fetching { epoch, .. } => Some(*epoch),
            Phase::LoadingManifest { .. } | Phase::Claiming => None,
        }
    }
}

impl Replica {
    /// Starts a takeover: after a lease without `Append`s, or at once when the leader of
    /// `handover_of` handed the shard to us.
    pub(super) fn start_takeover(&mut self, now: Millis, handover_of: Option<Epoch>) {
        self.attempts += 1;
        self.role = RoleState::Candidate(CandidateState {
            started: now,
            deadline: now.plus(self.cfg.takeover_timeout),
            handover_of,
            phase: Phase::LoadingManifest {
                retry_at: now.plus(Millis(2 * self.cfg.heartbeat_interval.0)),
            },
        });
        self.leader_hint = None;
        self.request_manifest(now, true);
        self.role_changed();
    }

    pub(super) fn candidate_manifest_loaded(&mut self, _now: Millis) {
        let RoleState::Candidate(c) = &mut self.role else {
            return;
        };
        if matches!(c.phase, Phase::LoadingManifest { .. }) {
            c.phase = Phase::Claiming;
            let at_least = self
                .promised
                .max(self.seen_epoch)
                .max(self.log.last_epoch())
                .next();
            self.out.push(Output::ClaimEpoch { at_least });
        }
    }

    pub(super) fn on_epoch_claimed(&mut self, now: Millis, epoch: Epoch, won: bool) {
        let RoleState::Candidate(c) = &mut self.role else {
            return;
        };
        if !matches!(c.phase, Phase::Claiming) {
            return;
        }
        if !won || epoch <= self.promised || self.window.holds(now) {
            // Someone else is taking over: back off briefly (by rank), expecting its
            // `Promise`; if none comes, claim above what we saw.
            self.seen_epoch = self.seen_epoch.max(epoch);
            self.become_follower(now);
            self.backoff_election_timer(now);
            return;
        }
        c.phase = Phase::Promising {
            epoch,
            promises: BTreeMap::new(),
            retry_at: BTreeMap::new(),
        };
        let handover_of = c.handover_of;
        self.raise_promise(epoch);
        let peers: Vec<NodeId> = self.peers().collect();
        self.ask_promises(now, epoch, handover_of, &peers);
    }

    /// Sends `Promise{epoch}` to each of `nodes` not asked yet, and retries them every
    /// heartbeat until they answer.
    fn ask_promises(
        &mut self,
        now: Millis,
        epoch: Epoch,
        handover_of: Option<Epoch>,
        nodes: &[NodeId],
    ) {
        let me = self.cfg.me;
        let hb = self.cfg.heartbeat_interval;
        let mut fresh = Vec::new();
        if let RoleState::Candidate(c) = &mut self.role
            && let Phase::Promising { retry_at, .. } = &mut c.phase
        {
            for p in nodes
                .iter()
                .filter(|p| **p != me && !self.retired.contains(p))
            {
                if !retry_at.contains_key(p) {
                    retry_at.insert(*p, now.plus(hb));
                    fresh.push(*p);
                }
            }
        }
        for p in fresh {
            self.send(p, Msg::Promise { epoch, handover_of });
        }
    }

    /// Our own promise became durable: count it.
    pub(super) fn on_own_promise_durable(&mut self, now: Millis) {
        let me = self.cfg.me;
        let end = (self.log.last_epoch(), self.log.last_seq());
        let membership = self.log.membership().cloned();
        let durable = self.persist.durable_promised;
        let RoleState::Candidate(c) = &mut self.role else {
            return;
        };
        if let Phase::Promising {
            epoch, promises, ..
        } = &mut c.phase
            && *epoch <= durable
        {
            promises.insert(me, (end, membership));
        }
        self.check_promise_quorum(now);
    }

    pub(super) fn on_promised(
        &mut self,
        now: Millis,
        from: NodeId,
        e: Epoch,
        end: LogEnd,
        membership: Option<Membership>,
    ) {
        let RoleState::Candidate(c) = &mut self.role else {
            return;
        };
        if let Phase::Promising {
            epoch, promises, ..
        } = &mut c.phase
            && *epoch == e
        {
            promises.insert(from, (end, membership));
        }
        self.check_promise_quorum(now);
    }

    pub(super) fn on_refused(
        &mut self,
        now: Millis,
        from: NodeId,
        promised: Epoch,
        remaining: Millis,
    ) {
        let RoleState::Candidate(c) = &mut self.role else {
            return;
        };
        let Some(epoch) = c.epoch() else {
            return;
        };
        if promised > epoch {
            self.become_follower(now);
            return;
        }
        if let Phase::Promising { retry_at, .. } = &mut c.phase
            && remaining > Millis(0)
        {
            retry_at.insert(from, now.plus(remaining));
            let cap = c
                .started
                .plus(self.cfg.takeover_timeout)
                .plus(self.cfg.lease_duration);
            let wanted = now.plus(remaining).plus(self.cfg.heartbeat_interval);
            c.deadline = c.deadline.max(wanted.min(cap));
        }
    }

    fn check_promise_quorum(&mut self, now: Millis) {
        let me = self.cfg.me;
        let tolerate = self.tolerate;
        let RoleState::Candidate(c) = &self.role else {
            return;
        };
        let handover_of = c.handover_of;
        let Phase::Promising {
            epoch, promises, ..
        } = &c.phase
        else {
            return;
        };
        if !promises.contains_key(&me) {
            return;
        }
        let epoch = *epoch;
        // The greatest (last_epoch, last_seq); ties go to ourselves (no fetch needed).
        let pick = |a: &(&NodeId, &Promise), b: &(&NodeId, &Promise)| {
            (a.1)
                .0
                .cmp(&(b.1).0)
                .then_with(|| (*a.0 == me).cmp(&(*b.0 == me)))
        };
        #[cfg(test)]
        let shortest = self.cfg.bug == Some(super::tests::Bug::AdoptShortestLog);
        #[cfg(not(test))]
        let shortest = false;
        let best = if shortest {
            promises.iter().min_by(pick)
        } else {
            promises.iter().max_by(pick)
        };
        let Some((&from, (want, adopted))) = best else {
            return;
        };
        let want = *want;
        let promised: Vec<NodeId> = promises.keys().copied().collect();
        // The configuration of the log we would adopt decides whose promises count.
        let adopted = adopted.clone().unwrap_or_else(|| self.genesis.clone());
        if !adopted.is_voter(me) {
            // A learner, or a replica the adopted log removed: it never leads.
            tracing::debug!(shard = %self.cfg.shard, node = %me, %adopted, "not a voter of the adopted log's configuration: abandoning the takeover");
            self.become_follower(now);
            return;
        }
        #[cfg(test)]
        let count_all = self.cfg.bug == Some(super::tests::Bug::CountNonVoters);
        #[cfg(not(test))]
        let count_all = false;
        let quorum = if count_all {
            // The planted bug: every promise counts, voter or not, against the quorum size.
            promised.len() >= quorum_size(adopted.voters().len(), tolerate)
        } else {
            invariants::promise_quorum_of_adopted_config(&adopted, tolerate, me, &promised).is_ok()
        };
        if !quorum {
            // Not a quorum of that configuration yet: ask its voters we have not asked.
            let voters = adopted.voters();
            self.ask_promises(now, epoch, handover_of, &voters);
            return;
        }
        self.adopt(now, epoch, from, want);
    }

    /// Adopts the log of `from`, which ends at `want`: at once if it is ours, else fetch.
    fn adopt(&mut self, now: Millis, epoch: Epoch, from: NodeId, want: LogEnd) {
        if from == self.cfg.me {
            self.finish_takeover(now);
            return;
        }
        let RoleState::Candidate(c) = &mut self.role else {
            return;
        };
        c.phase = Phase::Fetching {
            epoch,
            from,
            want,
            retry_at: now.plus(self.cfg.heartbeat_interval),
        };
        let after_seq = self.commit_seq.max(self.log.base());
        self.send(from, Msg::Fetch { epoch, after_seq });
    }

    pub(super) fn on_records(
        &mut self,
        now: Millis,
        sender: NodeId,
        e: Epoch,
        prev_seq: SeqNo,
        prev_epoch: Epoch,
        records: Vec<Record>,
    ) {
        let RoleState::Candidate(c) = &self.role else {
            return;
        };
        let Phase::Fetching {
            epoch, from, want, ..
        } = c.phase
        else {
            return;
        };
        if e != epoch || sender != from {
            return;
        }
        let mut seq = prev_seq;
        for r in &records {
            if r.seq != seq.next() || r.epoch >= epoch {
                return;
            }
            seq = r.seq;
        }
        if prev_seq > self.log.base()
            && prev_seq > self.commit_seq
            && self.log.epoch_at(prev_seq) != Some(prev_epoch)
        {
            // The sender's flushed base is ahead of ours (we asked from our commit point):
            // it is a manifest's committed prefix. We load that manifest (it also tells the
            // configuration in force there) and fetch again once it is ours.
            self.request_manifest(now, false);
            return;
        }
        if !self.merge(records, epoch) {
            self.become_follower(now);
            return;
        }
        if self.log.last_seq() > want.1 {
            let removed = self.log.truncate_after(want.1);
            if let Err(v) = super::invariants::truncation_allowed(&removed, epoch, self.commit_seq)
            {
                self.violated(v);
                self.become_follower(now);
                return;
            }
            self.persist(PersistOp::Truncate { after: want.1 });
        }
        if (self.log.last_epoch(), self.log.last_seq()) != want {
            // The adopted replica's log changed (a newer candidate reached it): give up.
            self.become_follower(now);
            return;
        }
        self.finish_takeover(now);
    }

    pub(super) fn candidate_tick(&mut self, now: Millis) {
        let hb = self.cfg.heartbeat_interval;
        let RoleState::Candidate(c) = &mut self.role else {
            return;
        };
        if now >= c.deadline {
            self.become_follower(now);
            return;
        }
        let mut sends = Vec::new();
        let mut reload = false;
        let handover_of = c.handover_of;
        match &mut c.phase {
            Phase::Promising {
                epoch,
                promises,
                retry_at,
            } => {
                for (p, t) in retry_at.iter_mut() {
                    if !promises.contains_key(p) && now >= *t {
                        *t = now.plus(hb);
                        let msg = Msg::Promise {
                            epoch: *epoch,
                            handover_of,
                        };
                        sends.push((*p, msg));
                    }
                }
            }
            Phase::Fetching {
                epoch,
                from,
                retry_at,
                ..
            } => {
                if now >= *retry_at {
                    *retry_at = now.plus(hb);
                    let after_seq = self.commit_seq.max(self.log.base());
                    sends.push((
                        *from,
                        Msg::Fetch {
                            epoch: *epoch,
                            after_seq,
                        },
                    ));
                }
            }
            Phase::LoadingManifest { retry_at } => {
                if now >= *retry_at {
                    *retry_at = now.plus(Millis(2 * hb.0));
                    reload = true;
                }
            }
            Phase::Claiming => {}
        }
        for (to, msg) in sends {
            self.send(to, msg);
        }
        if reload {
            self.request_manifest(now, true);
        }
    }
}
