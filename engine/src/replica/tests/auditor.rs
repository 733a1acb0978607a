//! The simulator's auditor: the checks of the brief, against the simulator's global view.
//!
//! 1. Durability: every acknowledged write is, at the same seq with the same payload, in the
//!    log (or the flushed segments) of every later leader when it starts serving, and in the
//!    final leader's state.
//! 2. Agreement: all replicas that commit a seq commit the identical record, and flushed
//!    segments agree with them.
//! 3. One leader per epoch, and a leader commits a record only if W replicas made it durable
//!    while they had not promised a newer epoch (so no leader acknowledges after a quorum
//!    promised a newer epoch without the record).
//! 4. Liveness: after faults stop, a leader whose epoch is the newest promised one serves
//!    within `lease + 2 s`, and client writes complete within 1.5 s after that; by the end
//!    the first-ranked replica leads (a leader of another rank handed the shard back), and no
//!    replica that lost its disk is still rejoining.
//! 5. Strong reads: whenever a node could serve a strong read, no leader of a newer epoch
//!    has committed anything; and when a replica gathers a quorum of promises, no leader of
//!    an older epoch can serve strong reads any more (checked by the simulator as it happens).
//!
//! 6. Membership changes (design note 0009): every commit is durably held by a quorum of
//!    the voters of the leader's configuration in force (learners and removed replicas are
//!    never counted), every log's configuration records follow the chain `C, (C,T), T`, and
//!    (checked by the simulator) learners are caught up when they become voters and every
//!    move has finished by the end.
//!
//! Plus the core's own invariants ([`crate::replica::invariants`]) on every log.

use std::collections::BTreeMap;

use crate::replica::invariants;
use crate::replica::{Membership, Millis, NodeId, Record, Replica, Role};
use crate::types::{Epoch, SeqNo};

use super::sim::{Node, Store};

const MS: u64 = 1000;

pub(crate) struct Auditor {
    /// Failures tolerated, `N − W` (quorum sizes of other configurations keep it).
    tolerate: usize,
    /// The genesis configuration.
    genesis: Membership,
    /// Check the configuration chain of every log.
    pub(crate) config_checks: bool,
    /// A stable leader must serve within this many ms after the faults stop.
    pub(crate) heal_bound_ms: u64,
    /// The newest committed configuration record: (seq, configuration).
    committed_config: Option<(u64, Membership)>,
    /// Configuration records committed so far.
    pub(crate) configs_committed: u64,
    heal_at: u64,
    safety: Vec<String>,
    liveness: Vec<String>,
    acked: BTreeMap<u64, Record>,
    ack_times: Vec<u64>,
    pub(crate) segments: BTreeMap<u64, Record>,
    committed: BTreeMap<u64, Record>,
    applied: Vec<SeqNo>,
    leaders: BTreeMap<Epoch, usize>,
    max_commit_epoch: Epoch,
    /// (seq, epoch) → node → the node's durable promise when the record became durable
    /// there (the lowest such).
    held: BTreeMap<(u64, Epoch), BTreeMap<usize, Epoch>>,
    /// Per node: when it last became a serving leader (None while it is not one).
    serving_since: Vec<Option<u64>>,
    /// When the leader serving at the end started serving (or the end of faults, if it
    /// served before), or, if earlier, a leader that handed the shard over after the faults.
    stable_leader_at: Option<u64>,
    /// Per node: when it last started serving as leader (kept after it stopped).
    served_from: Vec<Option<u64>>,
    /// The earliest serving start (at least the end of faults) of a leader that handed the
    /// shard over after the faults.
    handed_over_from: Option<u64>,
    events: u64,
    /// The serving leader's commit point 2 s before the end: every replica must reach it.
    pub(crate) catch_up_target: Option<SeqNo>,
}

impl Auditor {
    pub(crate) fn new(n: usize, quorum: usize, heal_at: u64) -> Self {
        Self {
            tolerate: n - quorum,
            genesis: Membership::Steady((0..n).map(|i| NodeId(i as u32 + 1)).collect()),
            config_checks: true,
            heal_bound_ms: 4000,
            committed_config: None,
            configs_committed: 0,
            heal_at,
            safety: Vec::new(),
            liveness: Vec::new(),
            acked: BTreeMap::new(),
            ack_times: Vec::new(),
            segments: BTreeMap::new(),
            committed: BTreeMap::new(),
            applied: vec![SeqNo(0); n],
            leaders: BTreeMap::new(),
            max_commit_epoch: Epoch(0),
            held: BTreeMap::new(),
            serving_since: vec![None; n],
            stable_leader_at: None,
            served_from: vec![None; n],
            handed_over_from: None,
            events: 0,
            catch_up_target: None,
        }
    }

    /// A node joined the simulation (index `applied.len()`).
    pub(crate) fn add_node(&mut self) {
        self.applied.push(SeqNo(0));
        self.serving_since.push(None);
        self.served_from.push(None);
    }

    /// The newest committed configuration (the genesis one if none was committed).
    pub(crate) fn committed_membership(&self) -> Membership {
        self.committed_config
            .as_ref()
            .map_or_else(|| self.genesis.clone(), |(_, m)| m.clone())
    }

    pub(crate) fn liveness_violation(&mut self, what: String) {
        self.liveness.push(what);
    }

    pub(crate) fn safety(&mut self, what: String) {
        self.safety.push(what);
    }

    pub(crate) fn safety_violations(&self) -> &[String] {
        &self.safety
    }

    pub(crate) fn liveness_violations(&self) -> &[String] {
        &self.liveness
    }

    /// Epoch of the record committed (or flushed) at `seq`, if known.
    pub(crate) fn committed_epoch(&self, seq: SeqNo) -> Option<Epoch> {
        self.committed
            .get(&seq.0)
            .or_else(|| self.segments.get(&seq.0))
            .map(|r| r.epoch)
    }

    pub(crate) fn acked_count(&self) -> usize {
        self.acked.len()
    }

    pub(crate) fn heal_to_leader_ms(&self) -> Option<u64> {
        self.stable_leader_at.map(|t| (t - self.heal_at) / MS)
    }

    pub(crate) fn on_start(&mut self, i: usize, rep: &Replica) {
        self.applied[i] = rep.commit_seq();
        self.serving_since[i] = None;
    }

    pub(crate) fn on_durable(&mut self, i: usize, r: &Record, promised: Epoch) {
        let e = self
            .held
            .entry((r.seq.0, r.epoch))
            .or_default()
            .entry(i)
            .or_insert(promised);
        *e = (*e).min(promised);
    }

    pub(crate) fn on_commit(
        &mut self,
        i: usize,
        rep: &Replica,
        upto: SeqNo,
        leader: Option<Epoch>,
    ) {
        let from = self.applied[i];
        let records: Vec<Record> = rep.log().range(from, upto).cloned().collect();
        let membership = rep.membership().clone();
        for r in records {
            self.check_agreement(i, &r);
            if let Some(e) = leader {
                let holders: Vec<NodeId> = self
                    .held
                    .get(&(r.seq.0, r.epoch))
                    .map(|m| {
                        m.iter()
                            .filter(|(_, p)| **p <= e)
                            .map(|(n, _)| NodeId(*n as u32 + 1))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Err(v) =
                    invariants::learners_not_counted(&membership, self.tolerate, &holders)
                {
                    self.safety(format!(
                        "leader n{} of epoch {e} committed seq {} with durable copies made before a newer promise only on {holders:?} under {membership}: {}",
                        i + 1,
                        r.seq,
                        v.0
                    ));
                }
            }
        }
        if let Some(e) = leader {
            self.max_commit_epoch = self.max_commit_epoch.max(e);
        }
        self.applied[i] = self.applied[i].max(upto);
    }

    fn check_agreement(&mut self, i: usize, r: &Record) {
        if let Some(prev) = self.committed.get(&r.seq.0) {
            if prev != r {
                let msg = format!(
                    "agreement: n{} committed seq {} epoch {} but epoch {} was committed before",
                    i + 1,
                    r.seq,
                    r.epoch,
                    prev.epoch
                );
                self.safety(msg);
            }
        } else {
            self.committed.insert(r.seq.0, r.clone());
            if let Some(m) = &r.membership {
                self.configs_committed += 1;
                if self
                    .committed_config
                    .as_ref()
                    .is_none_or(|(s, _)| *s < r.seq.0)
                {
                    self.committed_config = Some((r.seq.0, m.clone()));
                }
            }
        }
        if self.segments.get(&r.seq.0).is_some_and(|s| s != r) {
            self.safety(format!(
                "agreement: n{} committed seq {} unlike the segments",
                i + 1,
                r.seq
            ));
        }
    }

    pub(crate) fn on_ack(&mut self, r: Record, now: u64) {
        if let Some(prev) = self.acked.get(&r.seq.0) {
            if *prev != r {
                self.safety(format!(
                    "two different writes acknowledged at seq {}",
                    r.seq
                ));
            }
            return;
        }
        self.ack_times.push(now);
        self.acked.insert(r.seq.0, r);
    }

    pub(crate) fn on_flush(&mut self, records: &[Record]) {
        for r in records {
            // Only committed records may reach segments (note 0007: a follower's flush
            // request is capped at the leader's commit point).
            if !self.committed.contains_key(&r.seq.0) && !self.segments.contains_key(&r.seq.0) {
                self.safety(format!("flushed seq {} that was never committed", r.seq));
            }
            if self.committed.get(&r.seq.0).is_some_and(|c| c != r)
                || self.segments.get(&r.seq.0).is_some_and(|s| s != r)
            {
                self.safety(format!(
                    "flushed seq {} differs from the committed record",
                    r.seq
                ));
            }
            self.segments.insert(r.seq.0, r.clone());
        }
    }

    /// Every acknowledged write is in `rep`'s log or in the segments below its base.
    fn check_contains_acked(
        &mut self,
        i: usize,
        rep: &Replica,
        segments: &BTreeMap<u64, Record>,
        when: &str,
    ) {
        let base = rep.log().base();
        let mut missing = None;
        for (s, r) in &self.acked {
            let found = if SeqNo(*s) > base {
                rep.log().get(SeqNo(*s))
            } else {
                segments.get(s)
            };
            if found != Some(r) {
                missing = Some(*s);
                break;
            }
        }
        if let Some(s) = missing {
            self.safety(format!(
                "durability: acknowledged write at seq {s} (epoch {}) missing from {when} n{} (epoch {:?})",
                self.acked[&s].epoch,
                i + 1,
                rep.leader_epoch()
            ));
        }
    }

    pub(crate) fn on_role(
        &mut self,
        i: usize,
        rep: &Replica,
        role: Role,
        epoch: Epoch,
        now: u64,
        segments: &BTreeMap<u64, Record>,
    ) {
        self.serving_since[i] = (role == Role::Leader).then_some(now);
        if role == Role::Leader {
            self.served_from[i] = Some(now);
        }
        if matches!(role, Role::Recovering | Role::Leader) {
            let owner = *self.leaders.entry(epoch).or_insert(i);
            if owner != i {
                self.safety(format!(
                    "two leaders in epoch {epoch}: n{} and n{}",
                    owner + 1,
                    i + 1
                ));
            }
        }
        if role == Role::Leader {
            self.check_contains_acked(i, rep, segments, "new leader");
        }
    }

    /// Node `i` sent `Handover` at `now` (after stepping down).
    pub(crate) fn on_handover(&mut self, i: usize, now: u64) {
        if now < self.heal_at {
            return;
        }
        if let Some(t) = self.served_from[i] {
            let t = t.max(self.heal_at);
            self.handed_over_from = Some(self.handed_over_from.map_or(t, |h| h.min(t)));
        }
    }

    pub(crate) fn after_event(
        &mut self,
        nodes: &[Node],
        _now: u64,
        local: impl Fn(usize) -> Millis,
    ) {
        self.events += 1;
        for (i, n) in nodes.iter().enumerate() {
            let Some(rep) = &n.rep else { continue };
            if rep.can_serve_strong_read(local(i)) {
                let e = rep.leader_epoch().unwrap_or_default();
                if self.max_commit_epoch > e {
                    self.safety(format!(
                        "strong read: n{} holds a lease in epoch {e} after a commit in epoch {}",
                        i + 1,
                        self.max_commit_epoch
                    ));
                }
            }
            if self.events.is_multiple_of(64) {
                if let Err(v) = invariants::log_well_formed(rep.log()) {
                    self.safety(format!("n{}: {}", i + 1, v.0));
                }
                if self.config_checks
                    && let Err(v) = self.config_chain(rep)
                {
                    self.safety(format!("n{}: {}", i + 1, v.0));
                }
            }
        }
    }

    /// The configuration records of `rep`'s log follow the chain `C, (C,T), T` from the
    /// configuration in force at its base.
    fn config_chain(&self, rep: &Replica) -> Result<(), invariants::Violation> {
        let log = rep.log();
        let mut prev = log
            .base_membership()
            .cloned()
            .unwrap_or_else(|| self.genesis.clone());
        for r in log.range(log.base(), log.last_seq()) {
            if let Some(m) = &r.membership {
                invariants::config_chain_step(&prev, m)?;
                prev = m.clone();
            }
        }
        Ok(())
    }

    /// The checks at the end of a run; `first_ranked`: the node that must lead at the end
    /// (when leaders hand over), the first of the final configuration.
    pub(crate) fn at_end(
        &mut self,
        nodes: &[Node],
        store: &Store,
        finished: bool,
        first_ranked: Option<usize>,
    ) {
        let _ = store;
        if !self.safety.is_empty() {
            return;
        }
        let segments = self.segments.clone();
        let mut leader = None;
        for (i, n) in nodes.iter().enumerate() {
            if let Some(rep) = &n.rep
                && rep.role() == Role::Leader
                && leader.is_none_or(|(_, e)| rep.promised_epoch() > e)
            {
                leader = Some((i, rep.promised_epoch()));
            }
        }
        if let Some((i, _)) = leader {
            let rep = nodes[i].rep.as_ref().expect("leader is up");
            self.check_contains_acked(i, rep, &segments, "final leader");
            let since = self.serving_since[i].map(|t| t.max(self.heal_at));
            self.stable_leader_at = match (since, self.handed_over_from) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if !finished {
            return;
        }
        if let Some(first) = first_ranked
            && let Some((i, _)) = leader
            && i != first
        {
            self.liveness.push(format!(
                "n{} leads at the end: the first-ranked n{} did not get the shard back",
                i + 1,
                first + 1
            ));
        }
        for (i, n) in nodes.iter().enumerate() {
            if n.released {
                continue;
            }
            if n.rep.as_ref().is_some_and(Replica::is_rejoining) {
                self.liveness.push(format!(
                    "n{} is still rejoining after disk loss at the end",
                    i + 1
                ));
            }
        }
        if let Some(target) = self.catch_up_target {
            for (i, n) in nodes.iter().enumerate().filter(|(_, n)| !n.released) {
                let commit = n.rep.as_ref().map(Replica::commit_seq);
                if commit.is_none_or(|c| c < target) {
                    self.liveness.push(format!(
                        "n{} did not catch up: commit {commit:?}, leader had {target} 2 s before the end",
                        i + 1
                    ));
                }
            }
        } else {
            self.liveness
                .push("no serving leader 2 s before the end".to_owned());
        }
        let bound = self.heal_at + self.heal_bound_ms * MS;
        match self.stable_leader_at {
            None => self
                .liveness
                .push("no serving leader at the end".to_owned()),
            Some(t) if t > bound => self.liveness.push(format!(
                "leader emerged {} ms after faults stopped (bound {} ms)",
                (t - self.heal_at) / MS,
                self.heal_bound_ms
            )),
            Some(t) => {
                if !self
                    .ack_times
                    .iter()
                    .any(|a| *a >= t && *a <= t + 1500 * MS)
                {
                    self.liveness
                        .push("no client write completed within 1.5 s of the leader".to_owned());
                }
            }
        }
    }
}
