//! The [`Replica`]: dispatch of inputs, timers, role changes, commit point.
//!
//! Lifecycle: a replica starts as a follower from its durable state ([`Replica::new`]),
//! refusing promises for one full lease (it may have acked a heartbeat just before it
//! crashed), unless it is the shard's only replica: then no other leader can rely on its
//! promises, and it takes over at once ([`Replica::new`], design note 0002, "One replica").
//! Without `Append`s for `lease + rank × rank_delay + jitter` it becomes a candidate
//! (`candidate.rs`); a candidate that adopts a log becomes a recovering leader, then a
//! serving leader once its barrier is committed (`leader.rs`). Any role falls back to
//! follower on seeing a newer epoch. A leader of another rank hands the shard to the
//! first-ranked replica once that one is steady: it steps down and sends `Handover`, and the
//! target starts its takeover at once (`leader.rs`, `follower.rs`; design note 0006).
//!
//! Membership (design note 0009): the configuration in force is the newest configuration
//! record of the log, else the manifest's, else the genesis one ([`Config::replicas`]); ranks
//! follow it, and a replica that is not one of its voters (a learner, or one a change
//! removed) starts no takeover. Messages are taken from any node but a retired one.
//!
//! Invariants kept here:
//! - `promised` only grows and is persisted before it is relied on: `Promised` answers wait
//!   for the durable promise (`waiters`), and acks wait for durable records, which in a
//!   single ordered WAL implies every earlier promise is durable too (`persist.rs`).
//! - `commit_seq` only grows and never passes the end of the log
//!   ([`super::invariants::commit_monotonic`]); a `Committed` output is emitted exactly when
//!   it grows (a jump to a manifest's flushed prefix is applied by reloading segments).
//! - The takeover timer never fires while our own lease promise holds, nor before a newer
//!   candidate we refused for the lease had the chance to retry (`defer_until`).

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::types::{Epoch, SeqNo};

use super::candidate::CandidateState;
use super::follower::FollowerState;
use super::invariants::{self, Violation};
use super::leader::LeaderState;
use super::lease::PromiseWindow;
use super::log::Log;
use super::persist::PersistQueue;
use super::read_lease::ReadLeases;
use super::{Config, Input, Membership, Millis, Msg, NodeId, Output, PersistOp, Recovered, Role};

/// One replica of one shard. See the module docs of [`crate::replica`].
#[derive(Debug)]
pub struct Replica {
    pub(super) cfg: Config,
    /// The genesis configuration (`cfg.replicas`), in force until a configuration record or
    /// a manifest says otherwise.
    pub(super) genesis: Membership,
    /// Failures the settings tolerate, `N − W` of the genesis configuration: quorum sizes of
    /// other configurations keep it ([`super::membership::quorum_size`]).
    pub(super) tolerate: usize,
    /// The target replica set of the newest shard map ([`Input::SetTarget`]).
    pub(super) target: Option<Vec<NodeId>>,
    /// Ids the shard map retired: their messages are ignored.
    pub(super) retired: BTreeSet<NodeId>,
    pub(super) log: Log,
    /// Highest epoch promised (in memory; persisted before any answer relies on it).
    pub(super) promised: Epoch,
    pub(super) commit_seq: SeqNo,
    pub(super) role: RoleState,
    pub(super) persist: PersistQueue,
    /// Our own lease promise (as follower, or as leader counting itself).
    pub(super) window: PromiseWindow,
    pub(super) leader_hint: Option<NodeId>,
    pub(super) election_deadline: Millis,
    /// No takeover before this: a newer candidate we refused for the lease retries then.
    pub(super) defer_until: Millis,
    /// Highest epoch heard of (claims lost, refusals), to claim above it.
    pub(super) seen_epoch: Epoch,
    /// When we last asked for the manifest without an answer yet (asked again after a
    /// lease, in case the answer was lost).
    pub(super) manifest_requested: Option<Millis>,
    /// Takeover attempts so far (varies the jitter).
    pub(super) attempts: u64,
    /// Candidates waiting for `Promised` once the promise of their epoch is durable.
    pub(super) waiters: Vec<(Epoch, NodeId)>,
    /// Until here (one lease after a restart) we may have acked a leader we no longer know
    /// of, so a handover does not release our lease promise.
    pub(super) restart_guard_until: Millis,
    /// Highest epoch whose leader handed the shard over (it sent, or we received,
    /// `Handover`): its late `Append`s are ignored.
    pub(super) ended: Epoch,
    /// The node is stopping ([`Input::Drain`]): hand over, start no takeover.
    pub(super) draining: bool,
    /// A `Handover{epoch}` from `node` that came within the restart guard, taken when it ends
    /// (if it still applies then).
    pub(super) deferred_handover: Option<(Epoch, NodeId)>,
    /// Rejoining after losing its durable state ([`Recovered::amnesia_floor`]): the epoch
    /// its durable log must reach before it may promise or take over again.
    pub(super) rejoin_floor: Option<Epoch>,
    /// Highest commit point a leader reported to us (its `Append`s carry it uncapped; our
    /// own `commit_seq` is capped at the prefix we matched). Observation only: nothing in
    /// the protocol depends on it.
    pub(super) leader_commit: SeqNo,
    /// Read leases granted to gateways and the commit hold they impose (design note 0014).
    pub(super) reads: ReadLeases,
    pub(super) out: Vec<Output>,
}

/// Role-specific state.
#[derive(Debug)]
pub(super) enum RoleState {
    Follower(FollowerState),
    Candidate(CandidateState),
    Leader(LeaderState),
}

impl Replica {
    /// A replica restarting (or starting) at local time `now` from its durable state.
    ///
    /// `me` need not be among the genesis replicas: a replica created as a learner (design
    /// note 0009) holds no vote until a configuration that lists it is in force.
    ///
    /// Fails with [`Error::Config`] unless the replicas are distinct and not empty, and the
    /// quorum is a majority (`2W > N`, so quorums intersect).
    pub fn new(cfg: Config, recovered: Recovered, now: Millis) -> Result<Self> {
        let n = cfg.replicas.len();
        if n == 0 {
            return Err(Error::Config {
                field: "replicas",
                reason: "no replicas".to_owned(),
            });
        }
        let mut sorted = cfg.replicas.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != n {
            return Err(Error::Config {
                field: "replicas",
                reason: "duplicate replica".to_owned(),
            });
        }
        if cfg.quorum * 2 <= n || cfg.quorum > n {
            return Err(Error::Config {
                field: "quorum",
                reason: format!("quorum {} is not a majority of {n}", cfg.quorum),
            });
        }
        let log = Log::new(
            recovered.flushed_seq,
            recovered.flushed_epoch,
            recovered.flushed_membership,
            recovered.records,
        );
        let genesis = Membership::Steady(cfg.replicas.clone());
        let alone = Membership::Steady(vec![cfg.me]);
        let floor = recovered.amnesia_floor.unwrap_or_default();
        let promised = recovered.promised_epoch.max(log.last_epoch()).max(floor);
        // The restart guard: until a lease has passed we may still be inside the lease of a
        // leader whose heartbeat we acked just before we crashed, so we promise nothing and
        // start no takeover. Its only purpose is to protect *another* replica's lease; the
        // only replica of a shard has none to protect (design note 0002, "One replica").
        let sole = *log.membership().unwrap_or(&genesis) == alone;
        #[cfg(test)]
        let sole = sole || cfg.bug == Some(super::tests::Bug::NoRestartGuard);
        let guard_until = if sole {
            now
        } else {
            now.plus(cfg.lease_duration)
        };
        let mut r = Self {
            genesis,
            tolerate: n - cfg.quorum,
            target: None,
            retired: BTreeSet::new(),
            commit_seq: log.base(),
            promised,
            // Only the promise record is a durable promise; `promised` may be higher
            // because of the epochs of our records or the manifest (a newer leader
            // existed), which is enforced in memory and re-persisted when answered.
            persist: PersistQueue::new(log.last_seq(), recovered.promised_epoch),
            log,
            role: RoleState::Follower(FollowerState::default()),
            window: PromiseWindow::until(guard_until),
            leader_hint: None,
            election_deadline: now,
            defer_until: now,
            seen_epoch: promised,
            manifest_requested: None,
            attempts: 0,
            waiters: Vec::new(),
            restart_guard_until: guard_until,
            ended: Epoch(0),
            draining: false,
            deferred_handover: None,
            rejoin_floor: recovered.amnesia_floor,
            leader_commit: SeqNo(0),
            reads: ReadLeases::default(),
            out: Vec::new(),
            cfg,
        };
        r.check_rejoined();
        r.reset_election_timer(now);
        if sole {
            // Nobody else can lead this shard: no leader to wait for.
            r.election_deadline = now;
        }
        Ok(r)
    }

    /// Processes one input at local time `now`; returns what the caller must do, in order.
    pub fn handle(&mut self, now: Millis, input: Input) -> Vec<Output> {
        match input {
            Input::Tick => self.on_tick(now),
            Input::Message { from, msg } => self.on_message(now, from, msg),
            Input::Persisted { id } => self.on_persisted(now, id),
            Input::EpochClaimed { epoch, won } => self.on_epoch_claimed(now, epoch, won),
            Input::ManifestLoaded {
                flushed_seq,
                flushed_epoch,
                membership,
            } => self.on_manifest(now, flushed_seq, flushed_epoch, membership),
            Input::Propose { entries } => self.on_propose(now, entries),
            Input::Drain => self.on_drain(now),
            Input::RequestFlush { upto, hard } => self.on_request_flush(upto, hard),
            Input::PeerLost { node } => self.on_peer_lost(node),
            Input::SetTarget { voters } => self.on_set_target(now, voters),
            Input::Retired { node } => {
                self.retired.insert(node);
                self.sync_peers(now);
            }
        }
        std::mem::take(&mut self.out)
    }

    /// The other replicas this one talks to: the voters of the configuration in force and
    /// of the genesis one, and the target's (learners to be). A node opens replication
    /// streams to them.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.cfg.me;
        let mut all: BTreeSet<NodeId> = self.cfg.replicas.iter().copied().collect();
        all.extend(self.membership().voters());
        all.extend(self.target.iter().flatten().copied());
        all.into_iter()
            .filter(move |r| *r != me && !self.retired.contains(r))
    }

    /// The configuration in force: the newest configuration record in the log (committed or
    /// not), else the manifest's, else the genesis one (design note 0009 §1).
    #[must_use]
    pub fn membership(&self) -> &Membership {
        self.log.membership().unwrap_or(&self.genesis)
    }

    /// The configuration in force at the commit point: committed (a quorum holds it). What a
    /// serving leader reports to the node of a removed replica before it is released
    /// (design note 0009 §6).
    #[must_use]
    pub fn committed_membership(&self) -> &Membership {
        self.membership_at(self.commit_seq.min(self.log.last_seq()))
    }

    /// The configuration in force after the record at `seq`.
    pub(super) fn membership_at(&self, seq: SeqNo) -> &Membership {
        self.log.membership_at(seq).unwrap_or(&self.genesis)
    }

    /// Whether this replica is a voter of the configuration in force (a learner, or a
    /// replica removed by it, is not: it starts no takeover and takes no handover).
    #[must_use]
    pub fn is_voter(&self) -> bool {
        self.membership().is_voter(self.cfg.me)
    }

    /// Position among the voters in force (after all of them if not a voter): the takeover
    /// delay is `rank × rank_delay`.
    pub(super) fn rank(&self) -> u64 {
        let voters = self.membership().voters();
        let pos = voters
            .iter()
            .position(|v| *v == self.cfg.me)
            .unwrap_or(voters.len());
        u64::try_from(pos).unwrap_or(u64::MAX)
    }

    /// The current role.
    #[must_use]
    pub fn role(&self) -> Role {
        match &self.role {
            RoleState::Follower(_) => Role::Follower,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(l) if l.serving => Role::Leader,
            RoleState::Leader(_) => Role::Recovering,
        }
    }

    /// The highest epoch this replica promised (a leader's own epoch).
    #[must_use]
    pub fn promised_epoch(&self) -> Epoch {
        self.promised
    }

    /// The epoch this replica leads, if it is a (recovering or serving) leader.
    #[must_use]
    pub fn leader_epoch(&self) -> Option<Epoch> {
        match &self.role {
            RoleState::Leader(l) => Some(l.epoch),
            _ => None,
        }
    }

    /// Highest seq known committed here (applied or to be applied).
    #[must_use]
    pub fn commit_seq(&self) -> SeqNo {
        self.commit_seq
    }

    /// The in-memory log (committed records are read from here to apply them).
    #[must_use]
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// On a (recovering or serving) leader: each follower and the highest seq it durably
    /// acknowledged in this epoch (`match_seq`); nothing otherwise. Observation only (the
    /// admin API's follower lag).
    pub fn follower_progress(&self) -> impl Iterator<Item = (NodeId, SeqNo)> + '_ {
        let peers = match &self.role {
            RoleState::Leader(l) => Some(&l.peers),
            _ => None,
        };
        peers
            .into_iter()
            .flatten()
            .map(|(node, p)| (*node, p.match_seq))
    }

    /// The leader this replica last heard from (itself when leading).
    #[must_use]
    pub fn leader_hint(&self) -> Option<NodeId> {
        self.leader_hint
    }

    /// How many committed records this replica is known to miss: the newest commit point a
    /// leader reported minus our own (0 for a leader, and for a follower whose log holds
    /// everything its leader had committed when it last sent). A replica that just came
    /// back is behind until it has caught up; an operator waits for 0 on every replica of
    /// a node before stopping the next one (rolling restarts).
    #[must_use]
    pub fn records_behind(&self) -> u64 {
        match &self.role {
            RoleState::Leader(_) => 0,
            _ => self.leader_commit.0.saturating_sub(self.commit_seq.0),
        }
    }

    /// Whether this replica is rejoining after losing its durable state: it holds no promise
    /// a takeover may count on until its durable log holds a record of an epoch newer than
    /// [`Recovered::amnesia_floor`].
    #[must_use]
    pub fn is_rejoining(&self) -> bool {
        self.rejoin_floor.is_some()
    }

    /// Ends the rejoin once the durable log (or the flushed prefix) holds a record of an
    /// epoch newer than the floor. That record's leader was elected without us (we promise
    /// nothing while rejoining, and the lost state never saw an epoch above the floor), so
    /// its barrier follows every record committed in the floor epoch or before, and the
    /// prefix match means we hold them all (design note 0002). Reaching the floor epoch
    /// itself is not enough: the lost state may have helped commit records of that epoch
    /// that the leader has not sent us yet.
    pub(super) fn check_rejoined(&mut self) {
        let Some(floor) = self.rejoin_floor else {
            return;
        };
        let durable = self.durable_match();
        // Epochs never decrease along the log, so this is the newest epoch held.
        let reached = self
            .log
            .epoch_at(durable)
            .unwrap_or_else(|| self.log.base_epoch());
        if reached > floor {
            tracing::info!(shard = %self.cfg.shard, node = %self.cfg.me, %floor, seq = %durable, "rejoined after disk loss: holds a record of an epoch after the floor");
            self.rejoin_floor = None;
        }
    }

    /// Whether this replica may answer a strong read locally at `now`: it is the serving
    /// leader (barrier committed) and its lease is valid.
    #[must_use]
    pub fn can_serve_strong_read(&self, now: Millis) -> bool {
        match &self.role {
            RoleState::Leader(l) => l.serving && self.lease_until(l).is_some_and(|t| now < t),
            _ => false,
        }
    }

    /// Until when (local time) this replica may answer strong reads locally: `Some` only for
    /// a serving leader whose lease is established. [`Replica::can_serve_strong_read`] is
    /// `now < strong_read_until()`; the node publishes this for its read path.
    #[must_use]
    pub fn strong_read_until(&self) -> Option<Millis> {
        match &self.role {
            RoleState::Leader(l) if l.serving => self.lease_until(l),
            _ => None,
        }
    }

    // ---- shared machinery ----

    pub(super) fn send(&mut self, to: NodeId, msg: Msg) {
        self.out.push(Output::Send { to, msg });
    }

    /// Records a broken safety rule: logged, and fatal in debug builds.
    pub(super) fn violated(&self, v: Violation) {
        tracing::error!(shard = %self.cfg.shard, node = %self.cfg.me, rule = v.0, "replica invariant violated");
        debug_assert!(false, "replica {} invariant violated: {}", self.cfg.me, v.0);
    }

    pub(super) fn role_changed(&mut self) {
        let role = self.role();
        self.out.push(Output::RoleChanged {
            role,
            epoch: self.promised,
        });
    }

    pub(super) fn reset_election_timer(&mut self, now: Millis) {
        let rank_wait = self.cfg.rank_delay.0.saturating_mul(self.rank());
        let jitter = self.jitter();
        // A follower waits a lease for a leader to show up; the only replica of a shard has
        // none to wait for (a takeover that failed, e.g. on object storage, starts again).
        let wait = if *self.membership() == Membership::Steady(vec![self.cfg.me]) {
            Millis(0)
        } else {
            self.cfg.lease_duration
        };
        let t = now.plus(wait).plus(Millis(rank_wait)).plus(Millis(jitter));
        self.election_deadline = t.max(self.window.end()).max(self.defer_until);
    }

    /// Asks the caller for the latest manifest unless a request is outstanding (`force`:
    /// ask anyway).
    pub(super) fn request_manifest(&mut self, now: Millis, force: bool) {
        let outstanding = self
            .manifest_requested
            .is_some_and(|t| now < t.plus(self.cfg.lease_duration));
        if force || !outstanding {
            self.manifest_requested = Some(now);
            self.out.push(Output::LoadManifest);
        }
    }

    /// A short wait after losing an epoch claim: `(rank + 1) × rank_delay + jitter`, but not
    /// before our lease promise ends.
    pub(super) fn backoff_election_timer(&mut self, now: Millis) {
        let wait = self.cfg.rank_delay.0.saturating_mul(self.rank() + 1);
        let t = now.plus(Millis(wait)).plus(Millis(self.jitter()));
        self.election_deadline = t.max(self.window.end()).max(self.defer_until);
    }

    /// Pushes our takeover after the end of our lease promise by two heartbeats, plus rank
    /// and jitter: a candidate we refused for the lease retries right when it ends.
    pub(super) fn defer_election_after_lease(&mut self) {
        let grace = self
            .cfg
            .heartbeat_interval
            .0
            .saturating_mul(2)
            .saturating_add(self.cfg.rank_delay.0.saturating_mul(self.rank()))
            .saturating_add(self.jitter());
        self.defer_until = self.defer_until.max(self.window.end().plus(Millis(grace)));
        self.election_deadline = self.election_deadline.max(self.defer_until);
    }

    fn jitter(&self) -> u64 {
        if self.cfg.max_jitter.0 == 0 {
            0
        } else {
            splitmix64((u64::from(self.cfg.me.0) << 32) ^ self.attempts) % self.cfg.max_jitter.0
        }
    }

    pub(super) fn become_follower(&mut self, now: Millis) {
        if !matches!(self.role, RoleState::Follower(_)) {
            if matches!(self.role, RoleState::Leader(_)) {
                self.leader_hint = None;
            }
            self.role = RoleState::Follower(FollowerState::default());
            self.role_changed();
        }
        self.reset_election_timer(now);
    }

    /// Raises the promise to `epoch` (in memory now, durably via the returned request).
    pub(super) fn raise_promise(&mut self, epoch: Epoch) {
        debug_assert!(epoch > self.promised);
        self.promised = epoch;
        self.seen_epoch = self.seen_epoch.max(epoch);
        if let RoleState::Follower(f) = &mut self.role {
            f.acks.clear();
        }
        self.persist(PersistOp::Promise(epoch));
    }

    /// Sets the commit point (and tells the caller) if it moves forward.
    pub(super) fn commit_to(&mut self, upto: SeqNo) {
        if upto <= self.commit_seq {
            return;
        }
        if let Err(v) = invariants::commit_monotonic(self.commit_seq, upto, self.log.last_seq()) {
            self.violated(v);
            return;
        }
        self.commit_seq = upto;
        self.out.push(Output::Committed { upto });
    }

    // ---- inputs ----

    fn on_tick(&mut self, now: Millis) {
        match &self.role {
            RoleState::Follower(_) => {
                if let Some((epoch, from)) = self.deferred_handover
                    && now >= self.restart_guard_until
                {
                    self.deferred_handover = None;
                    self.on_handover(now, from, epoch);
                } else if now >= self.election_deadline
                    && !self.draining
                    && self.rejoin_floor.is_none()
                    && self.is_voter()
                {
                    self.start_takeover(now, None);
                }
            }
            RoleState::Candidate(_) => self.candidate_tick(now),
            RoleState::Leader(_) => self.leader_tick(now),
        }
    }

    fn on_message(&mut self, now: Millis, from: NodeId, msg: Msg) {
        // Messages from any non-retired node are taken: a learner hears from leaders it has
        // no configuration for yet, and what a non-voter says is never counted (quorums are
        // computed over the voters of a configuration, `Membership::is_quorum`).
        if from == self.cfg.me || self.retired.contains(&from) {
            return;
        }
        match msg {
            Msg::Append { .. } => self.on_append(now, from, msg),
            Msg::Ack {
                epoch,
                last_seq,
                sent_at,
                rejoining,
            } => self.on_ack(now, from, epoch, (last_seq, sent_at), rejoining),
            Msg::Gap { epoch, last_seq } => self.on_gap(now, from, epoch, last_seq),
            Msg::Promise { epoch, handover_of } => self.on_promise(now, from, epoch, handover_of),
            Msg::Handover { epoch } => self.on_handover(now, from, epoch),
            Msg::Promised {
                epoch,
                last_epoch,
                last_seq,
                membership,
            } => self.on_promised(now, from, epoch, (last_epoch, last_seq), membership),
            Msg::Refused {
                promised_epoch,
                lease_remaining,
            } => {
                self.seen_epoch = self.seen_epoch.max(promised_epoch);
                match &self.role {
                    RoleState::Leader(l) if promised_epoch > l.epoch => self.become_follower(now),
                    RoleState::Candidate(_) => {
                        self.on_refused(now, from, promised_epoch, lease_remaining);
                    }
                    _ => {}
                }
            }
            Msg::Fetch { epoch, after_seq } => self.on_fetch(from, epoch, after_seq),
            Msg::FlushRequest { epoch, upto, hard } => {
                self.on_flush_request(from, epoch, upto, hard);
            }
            Msg::Records {
                epoch,
                prev_seq,
                prev_epoch,
                records,
            } => self.on_records(now, from, epoch, prev_seq, prev_epoch, records),
        }
    }

    /// The node wants this shard flushed: a follower asks the leader it knows.
    fn on_request_flush(&mut self, upto: SeqNo, hard: bool) {
        if !matches!(self.role, RoleState::Follower(_)) {
            return;
        }
        if let Some(leader) = self.leader_hint.filter(|l| *l != self.cfg.me) {
            let epoch = self.promised;
            self.send(leader, Msg::FlushRequest { epoch, upto, hard });
        }
    }

    /// A follower's flush request: a serving leader of exactly that epoch passes it on,
    /// capped at its commit point (design note 0007).
    fn on_flush_request(&mut self, from: NodeId, epoch: Epoch, upto: SeqNo, hard: bool) {
        let RoleState::Leader(l) = &self.role else {
            return;
        };
        if !l.serving || l.epoch != epoch {
            return;
        }
        #[cfg(test)]
        let upto = if self.cfg.bug == Some(super::tests::Bug::FlushPastCommit) {
            upto
        } else {
            invariants::flush_request_capped(upto, self.commit_seq)
        };
        #[cfg(not(test))]
        let upto = invariants::flush_request_capped(upto, self.commit_seq);
        self.out.push(Output::FlushRequested { from, upto, hard });
    }

    fn on_drain(&mut self, now: Millis) {
        self.draining = true;
        match &self.role {
            RoleState::Candidate(_) => self.become_follower(now),
            RoleState::Leader(_) => self.leader_tick(now),
            RoleState::Follower(_) => {}
        }
    }

    fn on_manifest(
        &mut self,
        now: Millis,
        flushed_seq: SeqNo,
        flushed_epoch: Epoch,
        membership: Option<Membership>,
    ) {
        self.manifest_requested = None;
        self.apply_base(flushed_seq, flushed_epoch, membership);
        self.check_rejoined();
        self.candidate_manifest_loaded(now);
    }
}

/// A fixed pseudo-random permutation of u64 (for jitter without an RNG).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
