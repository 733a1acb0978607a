//! The node's side of a shard: [`ShardHandle`] (reads, writes, delivering messages), the
//! lock-free [`ShardStatus`] the driver publishes, and the commands and replies exchanged
//! with the driver task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tierkv_engine::error::{Error, Result};
use tierkv_engine::replica::{
    ChangePhase, LearnerProgress, Membership, Msg, NodeId, ReadLease, ReadLeaseCounts,
    ReadLeaseRefusal, Replica, Role,
};
use tierkv_engine::shard::{Prepared, ScanPage, Shard};
use tierkv_engine::types::{Entry, Epoch, ReadConsistency, SeqNo, ShardId, WriteBatch};
use tokio::sync::{Notify, mpsc, oneshot};

use super::clock::NodeClock;

/// A proposal's answer.
pub(super) type Reply = oneshot::Sender<ProposeReply>;

/// What the driver answers a proposal.
#[derive(Debug)]
pub(crate) enum ProposeReply {
    /// Committed at this version; `prior` as asked by the batch.
    Done(SeqNo, Vec<Option<SeqNo>>),
    /// The view changed since `prepare`: prepare again.
    Retry,
    /// Refused or failed.
    Failed(Error),
}

/// Input of a driver.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// A message from another replica.
    Msg { from: NodeId, msg: Msg },
    /// A prepared client batch (only a serving leader accepts it).
    Propose {
        prepared: Prepared,
        reply: Reply,
        /// The operation's span (`Span::none()` when untraced): the driver's `wal.append`
        /// and `replicate` spans are its children (design note 0011).
        span: tracing::Span,
    },
    /// An unprepared batch (the TTL sweeper's): the driver prepares it itself.
    ProposeRaw { batch: WriteBatch, reply: Reply },
    /// A gateway asks for a read lease (design note 0014): the driver grants it (or says
    /// why not) before the caller reads.
    GrantReadLease {
        reply: oneshot::Sender<std::result::Result<ReadLease, ReadLeaseRefusal>>,
    },
    /// The node is stopping: hand leadership over, take nothing over.
    Drain,
    /// The node's write buffers want this shard flushed: a follower asks its leader
    /// (note 0007).
    RequestFlush { upto: SeqNo, hard: bool },
    /// The newest shard map's target replica set (design note 0009 §2).
    SetTarget { voters: Vec<NodeId> },
    /// The shard map retired `node` (note 0009 §5).
    Retired { node: NodeId },
}

/// Role codes in [`ShardStatus::role`].
const ROLE_FOLLOWER: u8 = 0;
const ROLE_CANDIDATE: u8 = 1;
const ROLE_RECOVERING: u8 = 2;
const ROLE_LEADER: u8 = 3;
/// "No leader known" in [`ShardStatus::leader`].
const NO_LEADER: u64 = u64::MAX;

/// What a driver publishes about its replica after every step, for the read path and the
/// status endpoint (lock-free).
#[derive(Debug)]
pub struct ShardStatus {
    role: AtomicU8,
    epoch: AtomicU64,
    leader: AtomicU64,
    /// [`Replica::strong_read_until`] in node-clock millis (0: none).
    read_until: AtomicU64,
    commit_seq: AtomicU64,
    last_seq: AtomicU64,
    flushed_seq: AtomicU64,
    pub(super) poisoned: AtomicBool,
    rejoining: AtomicBool,
    /// [`Replica::is_voter`].
    voter: AtomicBool,
    /// [`Replica::change_phase`] (its code, [`phase_code`]).
    phase: AtomicU8,
    /// [`Replica::records_behind`].
    behind: AtomicU64,
    /// Times this replica became the serving leader (takeovers, handovers received).
    pub(super) leaderships: AtomicU64,
    /// Configuration records committed while this replica led: joint, then final (design
    /// note 0009).
    pub(super) moves: [AtomicU64; 2],
    /// Times this replica handed the shard over (design note 0006).
    pub(super) handovers: AtomicU64,
    /// `Append`s to learners the catch-up throttle dropped (design note 0009 §2, "Learn";
    /// the leader sends them again).
    pub(super) throttled_appends: AtomicU64,
    /// On a leader: each follower's durably acknowledged seq, copied by the driver once per
    /// tick (the admin API's follower lag). A lock held only to copy.
    followers: parking_lot::Mutex<Vec<(NodeId, SeqNo)>>,
    /// On a leader moving its configuration: each learner's progress (design note 0009
    /// §7), copied by the driver once per tick.
    learners: parking_lot::Mutex<Vec<LearnerProgress>>,
    /// The replica's configurations (design note 0009), copied by the driver once per tick.
    configurations: parking_lot::Mutex<Configurations>,
    /// [`Replica::read_leases_configured`]: when not, `GetLeased` is answered without asking
    /// the driver (a refusal it would count as `off`).
    pub(super) leases_configured: AtomicBool,
    /// [`Replica::read_lease_counts`], copied by the driver after grants and once per tick.
    read_leases: parking_lot::Mutex<ReadLeaseCounts>,
    /// Woken when the role changes or the read lease starts or ends
    /// ([`ShardHandle::wait_serving`]).
    changed: Notify,
}

impl Default for ShardStatus {
    fn default() -> Self {
        Self {
            role: AtomicU8::new(ROLE_FOLLOWER),
            epoch: AtomicU64::new(0),
            leader: AtomicU64::new(NO_LEADER),
            read_until: AtomicU64::new(0),
            commit_seq: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
            flushed_seq: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            rejoining: AtomicBool::new(false),
            voter: AtomicBool::new(true),
            phase: AtomicU8::new(0),
            behind: AtomicU64::new(0),
            leaderships: AtomicU64::new(0),
            moves: [AtomicU64::new(0), AtomicU64::new(0)],
            handovers: AtomicU64::new(0),
            throttled_appends: AtomicU64::new(0),
            followers: parking_lot::Mutex::new(Vec::new()),
            learners: parking_lot::Mutex::new(Vec::new()),
            configurations: parking_lot::Mutex::new(Configurations::default()),
            leases_configured: AtomicBool::new(false),
            read_leases: parking_lot::Mutex::new(ReadLeaseCounts::default()),
            changed: Notify::new(),
        }
    }
}

/// A replica's configurations as its driver last published them (design note 0009).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configurations {
    /// The configuration in force at its commit point.
    pub committed: Membership,
    /// The configuration in force at the end of its log.
    pub in_force: Membership,
    /// The target replica set it was given (empty: none yet).
    pub target: Vec<NodeId>,
}

impl Default for Configurations {
    fn default() -> Self {
        Self {
            committed: Membership::Steady(Vec::new()),
            in_force: Membership::Steady(Vec::new()),
            target: Vec::new(),
        }
    }
}

/// A snapshot of [`ShardStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// Role of the replica.
    pub role: Role,
    /// Highest epoch promised (the leader's own epoch when leading).
    pub epoch: Epoch,
    /// Leader it last heard from (itself when leading).
    pub leader: Option<NodeId>,
    /// Highest committed seq known.
    pub commit_seq: SeqNo,
    /// End of its log.
    pub last_seq: SeqNo,
    /// Flushed prefix (log base).
    pub flushed_seq: SeqNo,
    /// Whether a WAL failure stopped it.
    pub poisoned: bool,
    /// Whether it is rejoining after disk loss (promises nothing until it caught up with a
    /// newer epoch: design note 0002).
    pub rejoining: bool,
    /// Committed records its log is known to miss (0 once caught up with its leader).
    pub records_behind: u64,
    /// Whether it is a voter of its configuration in force (not a learner, not removed).
    pub voter: bool,
    /// Where its configuration is on the way to the target (design note 0009 §2).
    pub phase: ChangePhase,
}

fn phase_code(p: ChangePhase) -> u8 {
    match p {
        ChangePhase::Done => 0,
        ChangePhase::Learning => 1,
        ChangePhase::Joint => 2,
        ChangePhase::Final => 3,
        ChangePhase::Releasing => 4,
    }
}

fn phase_of(code: u8) -> ChangePhase {
    match code {
        1 => ChangePhase::Learning,
        2 => ChangePhase::Joint,
        3 => ChangePhase::Final,
        4 => ChangePhase::Releasing,
        _ => ChangePhase::Done,
    }
}

impl ShardStatus {
    /// Publishes `r`'s state; the strong-read lease only if `caught_up` (every committed
    /// record is visible in the shard's view).
    pub(super) fn publish(&self, r: &Replica, caught_up: bool) {
        let role = match r.role() {
            Role::Follower => ROLE_FOLLOWER,
            Role::Candidate => ROLE_CANDIDATE,
            Role::Recovering => ROLE_RECOVERING,
            Role::Leader => ROLE_LEADER,
        };
        let was = self.role.swap(role, Ordering::SeqCst);
        self.epoch.store(r.promised_epoch().0, Ordering::SeqCst);
        self.leader.store(
            r.leader_hint().map_or(NO_LEADER, |n| u64::from(n.0)),
            Ordering::SeqCst,
        );
        let until = if caught_up {
            r.strong_read_until().map_or(0, |m| m.0)
        } else {
            0
        };
        let had = self.read_until.swap(until, Ordering::SeqCst);
        self.commit_seq.store(r.commit_seq().0, Ordering::SeqCst);
        self.last_seq.store(r.log().last_seq().0, Ordering::SeqCst);
        self.flushed_seq.store(r.log().base().0, Ordering::SeqCst);
        self.rejoining.store(r.is_rejoining(), Ordering::SeqCst);
        self.behind.store(r.records_behind(), Ordering::SeqCst);
        self.voter.store(r.is_voter(), Ordering::SeqCst);
        self.phase
            .store(phase_code(r.change_phase()), Ordering::SeqCst);
        if was != role || (had == 0) != (until == 0) {
            self.changed.notify_waiters();
        }
    }

    /// Replaces the published follower progress (empty unless leading).
    pub(super) fn publish_followers(&self, progress: impl Iterator<Item = (NodeId, SeqNo)>) {
        let mut followers = self.followers.lock();
        followers.clear();
        followers.extend(progress);
    }

    /// Copies `r`'s configurations where they changed (cloned only then).
    pub(super) fn publish_configurations(&self, r: &Replica) {
        let mut c = self.configurations.lock();
        if &c.committed != r.committed_membership() {
            c.committed = r.committed_membership().clone();
        }
        if &c.in_force != r.membership() {
            c.in_force = r.membership().clone();
        }
        let target = r.target().unwrap_or_default();
        if c.target != target {
            c.target = target.to_vec();
        }
    }

    /// Replaces the published learner progress (empty unless a leader is moving).
    pub(super) fn publish_learners(&self, progress: Vec<LearnerProgress>) {
        *self.learners.lock() = progress;
    }

    /// Copies `r`'s read-lease counts (design note 0014).
    pub(super) fn publish_read_leases(&self, r: &Replica) {
        *self.read_leases.lock() = r.read_lease_counts();
    }

    /// What the driver copies once per tick, fresh enough for the admin API and metrics:
    /// follower and learner progress, configurations, read-lease counts.
    pub(super) fn publish_each_tick(&self, r: &Replica) {
        self.publish_followers(r.follower_progress());
        self.publish_learners(r.learners());
        self.publish_configurations(r);
        self.publish_read_leases(r);
    }

    /// The current values.
    #[must_use]
    pub fn snapshot(&self) -> StatusSnapshot {
        let role = match self.role.load(Ordering::SeqCst) {
            ROLE_CANDIDATE => Role::Candidate,
            ROLE_RECOVERING => Role::Recovering,
            ROLE_LEADER => Role::Leader,
            _ => Role::Follower,
        };
        let leader = self.leader.load(Ordering::SeqCst);
        StatusSnapshot {
            role,
            epoch: Epoch(self.epoch.load(Ordering::SeqCst)),
            leader: u32::try_from(leader).ok().map(NodeId),
            commit_seq: SeqNo(self.commit_seq.load(Ordering::SeqCst)),
            last_seq: SeqNo(self.last_seq.load(Ordering::SeqCst)),
            flushed_seq: SeqNo(self.flushed_seq.load(Ordering::SeqCst)),
            poisoned: self.poisoned.load(Ordering::SeqCst),
            rejoining: self.rejoining.load(Ordering::SeqCst),
            records_behind: self.behind.load(Ordering::SeqCst),
            voter: self.voter.load(Ordering::SeqCst),
            phase: phase_of(self.phase.load(Ordering::SeqCst)),
        }
    }

    fn leader_hint(&self) -> Option<u32> {
        u32::try_from(self.leader.load(Ordering::SeqCst)).ok()
    }
}

/// The node's handle on one hosted shard: client operations and the driver's inbox.
#[derive(Debug, Clone)]
pub struct ShardHandle {
    pub(crate) id: ShardId,
    pub(crate) shard: Shard,
    pub(crate) tx: mpsc::Sender<Cmd>,
    pub(crate) status: Arc<ShardStatus>,
    pub(crate) clock: NodeClock,
    /// The driver's token: cancelled, the driver stops (a released replica).
    pub(crate) stop: tokio_util::sync::CancellationToken,
}

/// Most times a write is prepared again because memtables rotated meanwhile.
const MAX_PREPARE_ATTEMPTS: usize = 16;

impl ShardHandle {
    /// The replica's status.
    #[must_use]
    pub fn status(&self) -> StatusSnapshot {
        self.status.snapshot()
    }

    /// Times this replica became the serving leader, and times it handed the shard over.
    #[must_use]
    pub fn leadership_counts(&self) -> (u64, u64) {
        (
            self.status.leaderships.load(Ordering::Relaxed),
            self.status.handovers.load(Ordering::Relaxed),
        )
    }

    /// Configuration records committed while this replica led: `(joint, final)` (design
    /// note 0009).
    #[must_use]
    pub fn move_counts(&self) -> (u64, u64) {
        (
            self.status.moves[0].load(Ordering::Relaxed),
            self.status.moves[1].load(Ordering::Relaxed),
        )
    }

    /// On a leader: each follower and the highest seq it durably acknowledged (as of the
    /// driver's last tick); empty otherwise.
    #[must_use]
    pub fn follower_progress(&self) -> Vec<(NodeId, SeqNo)> {
        self.status.followers.lock().clone()
    }

    /// On a leader moving the shard's configuration: each learner's progress, as of the
    /// driver's last tick (design note 0009 §7); empty otherwise.
    #[must_use]
    pub fn learner_progress(&self) -> Vec<LearnerProgress> {
        self.status.learners.lock().clone()
    }

    /// The replica's configurations, as of the driver's last tick (design note 0009).
    #[must_use]
    pub fn configurations(&self) -> Configurations {
        self.status.configurations.lock().clone()
    }

    /// `Append`s to learners the catch-up throttle dropped since this replica started
    /// (design note 0009 §2).
    #[must_use]
    pub fn throttled_appends(&self) -> u64 {
        self.status.throttled_appends.load(Ordering::Relaxed)
    }

    /// Read leases granted and refused, and writes held for them, by this replica (as of
    /// the driver's last grant or tick; design note 0014).
    #[must_use]
    pub fn read_lease_counts(&self) -> ReadLeaseCounts {
        *self.status.read_leases.lock()
    }

    /// The shard's storage.
    #[must_use]
    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    fn not_leader(&self) -> Error {
        Error::NotLeader {
            shard: self.id,
            leader: self.status.leader_hint().map(NodeId),
        }
    }

    /// Whether this replica holds a valid lease for strong reads now (a serving leader whose
    /// lease, minus the drift margin, has not run out and whose view holds every committed
    /// record).
    #[must_use]
    pub fn holds_read_lease(&self) -> bool {
        self.check_read(ReadConsistency::Strong).is_ok()
    }

    /// Waits until this replica serves as leader with a valid read lease (writes and strong
    /// reads are taken), at most `within`; returns whether it does. What a client of a shard
    /// whose only replica is in this process does instead of retrying elsewhere.
    pub async fn wait_serving(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.status.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.holds_read_lease() {
                return true;
            }
            // A lease that ran out is renewed by the driver's next heartbeat without a role
            // change: look again then rather than wait for a notification.
            let nap = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(Duration::from_millis(50));
            if nap.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(nap, changed).await;
        }
    }

    /// Whether this replica may serve a read at `level` now.
    fn check_read(&self, level: ReadConsistency) -> Result<()> {
        match level {
            ReadConsistency::Eventual => Ok(()),
            ReadConsistency::Strong => {
                let until = self.status.read_until.load(Ordering::SeqCst);
                let leader = self.status.role.load(Ordering::SeqCst) == ROLE_LEADER;
                if leader && self.clock.now().0 < until {
                    Ok(())
                } else {
                    Err(self.not_leader())
                }
            }
        }
    }

    /// The live entry of `key`, read at `level`.
    pub async fn get(&self, key: &[u8], level: ReadConsistency) -> Result<Option<Entry>> {
        self.check_read(level)?;
        self.shard.get(key).await
    }

    /// A strong read of `key` with a read lease (design note 0014): the lease granted (none:
    /// refused; the read is then an ordinary strong read) and the live entry, read after
    /// the grant was recorded.
    pub async fn get_leased(&self, key: &[u8]) -> Result<(Option<ReadLease>, Option<Entry>)> {
        self.check_read(ReadConsistency::Strong)?;
        let lease = if !self.status.leases_configured.load(Ordering::Relaxed)
            || self.status.last_seq.load(Ordering::SeqCst)
                > self.status.commit_seq.load(Ordering::SeqCst)
        {
            // Read leases are off, or a write is in flight: the driver would refuse; spare it
            // the message (the refusal is not counted).
            None
        } else {
            let (reply, rx) = oneshot::channel();
            self.tx
                .send(Cmd::GrantReadLease { reply })
                .await
                .map_err(|_| Error::Closed)?;
            rx.await.map_err(|_| Error::Closed)?.ok()
        };
        // Checked again after the grant: the read must be a strong read too.
        self.check_read(ReadConsistency::Strong)?;
        let entry = self.shard.get(key).await?;
        Ok((lease, entry))
    }

    /// A page of live entries, read at `level`.
    pub async fn scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
        level: ReadConsistency,
    ) -> Result<ScanPage> {
        self.check_read(level)?;
        self.shard.scan(prefix, start_after, limit).await
    }

    /// Replicates `batch` through the leader (this replica must lead); returns its version
    /// and, if asked, each op's prior version, once a write quorum has it durably.
    pub async fn write(&self, batch: WriteBatch) -> Result<(SeqNo, Vec<Option<SeqNo>>)> {
        if self.status.role.load(Ordering::SeqCst) != ROLE_LEADER {
            return Err(self.not_leader());
        }
        for _ in 0..MAX_PREPARE_ATTEMPTS {
            let prepared = self.shard.prepare(batch.clone()).await?;
            let (reply, rx) = oneshot::channel();
            self.tx
                .send(Cmd::Propose {
                    prepared,
                    reply,
                    span: tracing::Span::current(),
                })
                .await
                .map_err(|_| Error::Closed)?;
            match rx.await {
                Ok(ProposeReply::Done(seq, prior)) => return Ok((seq, prior)),
                Ok(ProposeReply::Retry) => {}
                Ok(ProposeReply::Failed(e)) => return Err(e),
                // The driver stopped with the proposal in flight.
                Err(_) => return Err(Error::OutcomeUnknown { shard: self.id }),
            }
        }
        Err(Error::Backpressure {
            shard: self.id,
            unflushed_bytes: 0,
            limit: 0,
        })
    }

    /// Tells the replica that the node is stopping: a leader hands the shard to another
    /// replica, and it starts no takeover any more (design note 0006).
    pub async fn drain(&self) {
        // A stopped driver has nothing to hand over.
        let _ = self.tx.send(Cmd::Drain).await;
    }

    /// Gives the replica the newest shard map's target replica set, in rank order (design
    /// note 0009 §2): a serving leader moves its configuration toward it, other roles keep
    /// it for when they lead. `false` if the driver stopped.
    pub(crate) async fn set_target(&self, voters: Vec<NodeId>) -> bool {
        self.tx.send(Cmd::SetTarget { voters }).await.is_ok()
    }

    /// Tells the replica that the shard map retired `node` (note 0009 §5). `false` if the
    /// driver stopped.
    pub(crate) async fn retire(&self, node: NodeId) -> bool {
        self.tx.send(Cmd::Retired { node }).await.is_ok()
    }

    /// Stops the driver and resolves once it has stopped (its inbox is gone): nothing of the
    /// replica is persisted any more.
    pub(crate) async fn stop_driver(&self) {
        self.stop.cancel();
        self.tx.closed().await;
    }

    /// Hands a message from another replica to the driver; dropped if its inbox is full.
    pub(crate) fn deliver(&self, from: NodeId, msg: Msg) -> bool {
        self.tx.try_send(Cmd::Msg { from, msg }).is_ok()
    }
}

/// The TTL sweeper's path: the driver prepares the batch itself.
pub(super) async fn propose_raw(
    id: ShardId,
    tx: &mpsc::Sender<Cmd>,
    batch: WriteBatch,
) -> Result<SeqNo> {
    let (reply, rx) = oneshot::channel();
    tx.send(Cmd::ProposeRaw { batch, reply })
        .await
        .map_err(|_| Error::Closed)?;
    match rx.await {
        Ok(ProposeReply::Done(seq, _)) => Ok(seq),
        Ok(ProposeReply::Retry) => Err(Error::Backpressure {
            shard: id,
            unflushed_bytes: 0,
            limit: 0,
        }),
        Ok(ProposeReply::Failed(e)) => Err(e),
        Err(_) => Err(Error::OutcomeUnknown { shard: id }),
    }
}
