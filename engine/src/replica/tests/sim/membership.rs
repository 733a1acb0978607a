//! The simulator's membership actor (design note 0009): during the faults, now and then, it
//! publishes a new target replica set (a new shard map): add a replica (a new node id with
//! an empty disk, started as a learner with the newest claimed epoch as its promise floor),
//! remove one, move one (a rebalance: a new node takes a live one's place in the rank order,
//! the old one is released afterwards), or replace one (the old node is lost for good, its
//! id retired, and a new one takes its place). One change at a time: the next waits until the
//! committed configuration is the target and every removed replica was released.
//!
//! Node reconciliation (`Ev::Reconcile`, every 200 ms): a replica whose node is not in the
//! target and that the newest committed configuration (steady) does not list is released
//! (stopped for good), unless it still leads (it hands the shard over first).
//!
//! Checks: a learner's durable log is within `move_lag_records` of its leader's commit point
//! when the leader makes it a voter ([`crate::replica::invariants::learner_caught_up`]), and
//! by the end every move finished.

use std::collections::BTreeSet;
use std::collections::VecDeque;

use rand::Rng;

use crate::replica::{Input, Membership, NodeId, Record, Replica, invariants};
use crate::types::{Epoch, SeqNo};

use super::{Durable, Ev, MS, Node, Sim};

/// At most this many nodes join a run (bounds the size of a run).
const MAX_NEW_NODES: usize = 6;

fn idx(n: NodeId) -> usize {
    n.0 as usize - 1
}

impl Sim {
    /// Whether a change is under way: the committed configuration is not the target yet, or
    /// a replica outside the target was not released yet.
    pub(super) fn change_in_progress(&self) -> bool {
        if !self.p.membership {
            return false;
        }
        let committed = self.audit.committed_membership();
        let settled = match &committed {
            Membership::Steady(c) => {
                let a: BTreeSet<NodeId> = c.iter().copied().collect();
                let b: BTreeSet<NodeId> = self.target.iter().copied().collect();
                a == b
            }
            Membership::Joint { .. } => false,
        };
        let unreleased = self
            .nodes
            .iter()
            .enumerate()
            .any(|(i, n)| !n.released && !self.target.contains(&NodeId(i as u32 + 1)));
        !settled || unreleased
    }

    /// `Ev::Membership`: starts a change if none is in progress.
    pub(super) fn membership_change(&mut self) {
        if self.healed {
            return;
        }
        let t = self.now + self.rng.random_range(1500 * MS..5000 * MS);
        self.at(t, Ev::Membership);
        // Not while a replica is rejoining after disk loss: it promises nothing, and with a
        // replaced voter gone too no quorum could elect the leader that ends its rejoin.
        let rejoining = (0..self.nodes.len()).any(|j| !self.nodes[j].released && self.rejoining(j));
        if self.change_in_progress() || rejoining || self.nodes.len() >= self.p.n + MAX_NEW_NODES {
            return;
        }
        let grown = self.target.len() > self.p.n;
        match self.rng.random_range(0..4) {
            1 => {
                // A move (a rebalance): the replica goes from a live node to a new one; the
                // old one is released once a committed configuration no longer lists it.
                let v = self.rng.random_range(0..self.target.len());
                let old = self.target[v];
                let new = NodeId(self.nodes.len() as u32 + 1);
                self.log(|| format!("membership: move n{} to n{}", old.0, new.0));
                self.stats.moves += 1;
                self.target[v] = new;
                self.add_node();
            }
            0 => {
                let v = self.rng.random_range(0..self.target.len());
                let old = self.target[v];
                let new = NodeId(self.nodes.len() as u32 + 1);
                self.log(|| format!("membership: replace n{} by n{}", old.0, new.0));
                self.stats.replaces += 1;
                // The old node is lost for good: stopped, never restarted, its id retired.
                let o = idx(old);
                if self.nodes[o].up {
                    self.crash(o);
                }
                self.nodes[o].released = true;
                self.retired.push(old);
                for j in 0..self.nodes.len() {
                    self.feed(j, Input::Retired { node: old }, None);
                }
                self.target[v] = new;
                self.add_node();
            }
            _ if grown => {
                let v = self.rng.random_range(0..self.target.len());
                let gone = self.target.remove(v);
                self.log(|| format!("membership: remove n{}", gone.0));
                self.stats.removes += 1;
            }
            _ => {
                let new = NodeId(self.nodes.len() as u32 + 1);
                self.log(|| format!("membership: add n{}", new.0));
                self.stats.adds += 1;
                self.target.push(new);
                self.add_node();
            }
        }
        let voters = self.target.clone();
        for j in 0..self.nodes.len() {
            self.feed(
                j,
                Input::SetTarget {
                    voters: voters.clone(),
                },
                None,
            );
        }
    }

    /// A new node with an empty disk: its replica starts as a learner whose promise floor is
    /// the newest claimed epoch (note 0009 §5), and ticks from now on.
    fn add_node(&mut self) {
        let i = self.nodes.len();
        let newest = Epoch(self.store.epochs.last().copied().unwrap_or(0));
        let offset_ms = self.rng.random_range(0..1_000_000);
        let drift_ppm = self
            .rng
            .random_range(-self.p.clock_rate_ppm..=self.p.clock_rate_ppm);
        self.nodes.push(Node {
            up: false,
            inc: 0,
            rep: None,
            offset_ms,
            drift_ppm,
            durable: Durable {
                promised: newest,
                ..Durable::default()
            },
            pending: VecDeque::new(),
            last_done: 0,
            kv: Default::default(),
            applied: SeqNo(0),
            group: 0,
            draining: false,
            started_at: None,
            released: false,
            deaf: false,
        });
        self.audit.add_node();
        self.start(i);
        let t = self.now + self.rng.random_range(0..20 * MS);
        self.at(t, Ev::Tick(i));
    }

    /// `Ev::Reconcile`: releases the replicas a committed configuration removed. A node
    /// learns that from a serving leader it can reach (same side of the partitions) whose
    /// committed configuration is steady and does not list it, as a node asks the leader's
    /// status; never from knowledge it could not have.
    pub(super) fn reconcile(&mut self) {
        if !self.p.membership {
            return;
        }
        for i in 0..self.nodes.len() {
            let id = NodeId(i as u32 + 1);
            let n = &self.nodes[i];
            if n.released || self.target.contains(&id) {
                continue;
            }
            if n.rep.as_ref().and_then(Replica::leader_epoch).is_some() {
                continue; // it hands the shard over first
            }
            let group = n.group;
            let removed = self.nodes.iter().any(|l| {
                l.up && l.group == group
                    && l.rep.as_ref().is_some_and(|r| {
                        let m = r.membership_at(r.commit_seq());
                        r.role() == crate::replica::Role::Leader && !m.is_joint() && !m.is_voter(id)
                    })
            });
            if !removed {
                continue;
            }
            self.log(|| format!("n{} released", i + 1));
            self.stats.releases += 1;
            let n = &mut self.nodes[i];
            n.released = true;
            n.up = false;
            n.inc += 1;
            n.rep = None;
            n.pending.clear();
        }
    }

    /// A leader made learners voters (persisted a joint configuration record): each new
    /// voter's durable log must be within `move_lag_records` of the leader's commit point.
    pub(super) fn check_promotion(&mut self, i: usize, records: &[Record]) {
        let Some(rep) = self.nodes[i].rep.as_ref() else {
            return;
        };
        if rep.leader_epoch().is_none() {
            return;
        }
        let commit = rep.commit_seq();
        let lag = self.cfg(i).move_lag_records;
        for r in records {
            let Some(Membership::Joint { old, new }) = &r.membership else {
                continue;
            };
            for n in new.iter().filter(|n| !old.contains(n)) {
                let Some(node) = self.nodes.get(idx(*n)) else {
                    continue;
                };
                // Up: what it installed from the manifest; down: what it will on restart.
                let base = node
                    .rep
                    .as_ref()
                    .map_or(self.store.flushed, |r| r.log().base());
                let end = contiguous_end(&node.durable, base);
                if let Err(v) = invariants::learner_caught_up(end, commit, lag) {
                    let what = format!(
                        "n{} made n{} a voter at commit {commit} while its durable log ends at {end}: {}",
                        i + 1,
                        n.0,
                        v.0
                    );
                    self.audit.safety(what);
                }
            }
        }
    }

    /// At the end: the committed configuration is the target and every replica outside it
    /// was released (every move finished).
    pub(super) fn check_moves_finished(&mut self) {
        if self.change_in_progress() {
            let what = format!(
                "a move did not finish: committed {}, target {:?}, unreleased outside it {:?}",
                self.audit.committed_membership(),
                self.target,
                self.nodes
                    .iter()
                    .enumerate()
                    .filter(|(i, n)| !n.released && !self.target.contains(&NodeId(*i as u32 + 1)))
                    .map(|(i, _)| i + 1)
                    .collect::<Vec<_>>()
            );
            self.audit.liveness_violation(what);
        }
    }
}

/// The end of the durable log that continues `base` without a hole.
fn contiguous_end(d: &Durable, base: SeqNo) -> SeqNo {
    let mut end = base;
    while d.records.contains_key(&(end.0 + 1)) {
        end = end.next();
    }
    end
}
