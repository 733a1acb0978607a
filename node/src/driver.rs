//! The replication driver of one shard replica: the task that owns the shard's
//! [`Replica`] state machine and carries out what it asks for.
//!
//! # Lifecycle
//!
//! One task per hosted shard, started by the node after WAL recovery. It receives
//! ([`Cmd`] on a bounded channel, plus its own futures):
//! - messages from the other replicas (from the node's RPC server; dropped when the channel
//!   is full: the protocol tolerates loss),
//! - client proposals (already [`Shard::prepare`]d by the caller's task, so object-storage
//!   reads never stall this loop),
//! - completions of its WAL writes, in request order ([`FuturesOrdered`]),
//! - results of its object-store calls (epoch claims, manifest loads, the leader's fencing
//!   publish), and the manifests its own flusher publishes,
//! - a tick every `tick` (timers: heartbeats, lease expiry, takeover).
//!
//! Each input goes through [`Replica::handle`]; the outputs are executed in order: messages
//! go to the [`Transport`], persistence to the WAL (`Append` as batch records, `Promise` and
//! `Truncate` as their own kinds), `Committed` applies log records to the memtables and
//! answers the proposals it covers, role changes start or stop leader work.
//!
//! What must never happen: a proposal answered before its record is committed; an entry
//! visible to readers before it is committed; a Persisted reported for a write that is not
//! durable (a failed WAL write poisons the driver: it stops taking part, so it never acks).
//!
//! The loop stops when the node cancels it or the channel closes; pending proposals then get
//! "outcome unknown".

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use tierkv_engine::error::{Error, Result};
use tierkv_engine::manifest::Manifest;
use tierkv_engine::paths;
use tierkv_engine::replica::{
    Input, Millis, Msg, NodeId, Output, PersistId, PersistOp, RejectReason, Replica, Role,
};
use tierkv_engine::shard::{LoadedManifest, PrepareOutcome, Prepared, ScanPage, Shard};
use tierkv_engine::store::{CreateOutcome, ObjStore};
use tierkv_engine::types::{Entry, Epoch, ReadConsistency, SeqNo, ShardId, WriteBatch};
use tierkv_engine::wal::Wal;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::transport::Transport;

/// Monotonic milliseconds since the node started: the replicas' clock.
#[derive(Debug, Clone, Copy)]
pub struct NodeClock {
    start: Instant,
}

impl NodeClock {
    /// A clock starting now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// Milliseconds since the start.
    #[must_use]
    pub fn now(&self) -> Millis {
        Millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}

impl Default for NodeClock {
    fn default() -> Self {
        Self::new()
    }
}

/// A proposal's answer.
type Reply = oneshot::Sender<ProposeReply>;

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
    Propose { prepared: Prepared, reply: Reply },
    /// An unprepared batch (the TTL sweeper's): the driver prepares it itself.
    ProposeRaw { batch: WriteBatch, reply: Reply },
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
    poisoned: AtomicBool,
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
}

impl ShardStatus {
    fn publish(&self, r: &Replica) {
        let role = match r.role() {
            Role::Follower => ROLE_FOLLOWER,
            Role::Candidate => ROLE_CANDIDATE,
            Role::Recovering => ROLE_RECOVERING,
            Role::Leader => ROLE_LEADER,
        };
        self.role.store(role, Ordering::SeqCst);
        self.epoch.store(r.promised_epoch().0, Ordering::SeqCst);
        self.leader.store(
            r.leader_hint().map_or(NO_LEADER, |n| u64::from(n.0)),
            Ordering::SeqCst,
        );
        self.read_until
            .store(r.strong_read_until().map_or(0, |m| m.0), Ordering::SeqCst);
        self.commit_seq.store(r.commit_seq().0, Ordering::SeqCst);
        self.last_seq.store(r.log().last_seq().0, Ordering::SeqCst);
        self.flushed_seq.store(r.log().base().0, Ordering::SeqCst);
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
}

/// Most times a write is prepared again because memtables rotated meanwhile.
const MAX_PREPARE_ATTEMPTS: usize = 16;

impl ShardHandle {
    /// The replica's status.
    #[must_use]
    pub fn status(&self) -> StatusSnapshot {
        self.status.snapshot()
    }

    /// The shard's storage.
    #[must_use]
    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    fn not_leader(&self) -> Error {
        Error::NotLeader {
            shard: self.id,
            leader: self.status.leader_hint(),
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
                .send(Cmd::Propose { prepared, reply })
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

    /// Hands a message from another replica to the driver; dropped if its inbox is full.
    pub(crate) fn deliver(&self, from: NodeId, msg: Msg) -> bool {
        self.tx.try_send(Cmd::Msg { from, msg }).is_ok()
    }
}

/// The TTL sweeper's path: the driver prepares the batch itself.
async fn propose_raw(id: ShardId, tx: &mpsc::Sender<Cmd>, batch: WriteBatch) -> Result<SeqNo> {
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

/// Settings a driver needs besides the replica's.
#[derive(Debug, Clone)]
pub(crate) struct DriverSettings {
    /// Interval of the replica's tick.
    pub(crate) tick: Duration,
    /// How often a replica that does not lead re-reads the manifest (compactions change the
    /// segment lists without moving `flushed_seq`).
    pub(crate) manifest_refresh: Duration,
    /// Capacity of the inbox.
    pub(crate) inbox: usize,
}

/// Everything a driver is made of.
pub(crate) struct DriverParts {
    pub(crate) replica: Replica,
    pub(crate) shard: Shard,
    pub(crate) wal: Wal,
    pub(crate) store: ObjStore,
    pub(crate) transport: Arc<Transport>,
    pub(crate) clock: NodeClock,
    pub(crate) settings: DriverSettings,
    pub(crate) cancel: CancellationToken,
}

/// Starts the driver task of a shard; returns its handle and the task.
pub(crate) fn spawn(parts: DriverParts) -> (ShardHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(parts.settings.inbox);
    let id = parts.shard.id();
    let status = Arc::new(ShardStatus::default());
    status.publish(&parts.replica);
    let handle = ShardHandle {
        id,
        shard: parts.shard.clone(),
        tx,
        status: Arc::clone(&status),
        clock: parts.clock,
    };
    let weak = handle.tx.downgrade();
    parts.shard.set_proposer(Arc::new(
        move |batch: WriteBatch| -> BoxFuture<'static, Result<SeqNo>> {
            let weak = weak.clone();
            Box::pin(async move {
                let tx = weak.upgrade().ok_or(Error::Closed)?;
                propose_raw(id, &tx, batch).await
            })
        },
    ));
    let published = parts.shard.published();
    let now = parts.clock.now();
    let mut d = Driver {
        id,
        replica: parts.replica,
        shard: parts.shard,
        wal: parts.wal,
        store: parts.store,
        transport: parts.transport,
        clock: parts.clock,
        settings: parts.settings,
        cancel: parts.cancel,
        rx,
        status,
        persists: FuturesOrdered::new(),
        io: FuturesUnordered::new(),
        waiters: BTreeMap::new(),
        overlay: HashMap::new(),
        published,
        poisoned: false,
        leading: false,
        next_refresh: now,
        manifest_inflight: false,
        manifest_answer: false,
    };
    let task = tokio::spawn(async move { d.run().await });
    (handle, task)
}

/// Result of an object-store call made for the replica.
enum Io {
    Claimed(Result<(Epoch, bool)>),
    Manifest(Result<Option<LoadedManifest>>),
    PublishedEpoch(Result<()>),
    Prepared(Result<Prepared>, Reply),
}

/// A proposal waiting for its commit.
struct Waiter {
    reply: Reply,
    prior: Vec<Option<SeqNo>>,
}

struct Driver {
    id: ShardId,
    replica: Replica,
    shard: Shard,
    wal: Wal,
    store: ObjStore,
    transport: Arc<Transport>,
    clock: NodeClock,
    settings: DriverSettings,
    cancel: CancellationToken,
    rx: mpsc::Receiver<Cmd>,
    status: Arc<ShardStatus>,
    persists: FuturesOrdered<BoxFuture<'static, (PersistId, Result<()>)>>,
    io: FuturesUnordered<BoxFuture<'static, Io>>,
    waiters: BTreeMap<SeqNo, Waiter>,
    /// Newest proposed-but-unapplied entry per key (conditions are checked against it).
    overlay: HashMap<Bytes, Entry>,
    published: watch::Receiver<(SeqNo, Epoch)>,
    poisoned: bool,
    leading: bool,
    next_refresh: Millis,
    manifest_inflight: bool,
    manifest_answer: bool,
}

impl Driver {
    async fn run(&mut self) {
        let mut tick = tokio::time::interval(self.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                Some((id, r)) = self.persists.next(), if !self.persists.is_empty() => {
                    match r {
                        Ok(()) => self.step(Input::Persisted { id }),
                        Err(e) => self.poison(&e),
                    }
                }
                Some(done) = self.io.next(), if !self.io.is_empty() => self.on_io(done),
                Ok(()) = self.published.changed() => {
                    let (flushed_seq, flushed_epoch) = *self.published.borrow_and_update();
                    self.step(Input::ManifestLoaded { flushed_seq, flushed_epoch });
                }
                cmd = self.rx.recv() => match cmd {
                    Some(c) => self.on_cmd(c),
                    None => break,
                },
                _ = tick.tick() => {
                    self.step(Input::Tick);
                    self.maybe_refresh_manifest();
                }
            }
        }
        // A leader keeps its flag so the node's shutdown can flush what it committed.
        self.fail_waiters();
    }

    /// Runs one input through the replica and executes its outputs.
    fn step(&mut self, input: Input) {
        if self.poisoned {
            return;
        }
        let outs = self.replica.handle(self.clock.now(), input);
        self.execute(outs);
    }

    fn execute(&mut self, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send { to, msg } => self.transport.send(to, self.id, &msg),
                Output::Persist { id, op } => self.persist(id, op),
                Output::Committed { upto } => self.apply(upto),
                Output::ClaimEpoch { at_least } => {
                    let (store, shard) = (self.store.clone(), self.id);
                    self.io.push(Box::pin(async move {
                        Io::Claimed(try_claim_epoch(&store, shard, at_least).await)
                    }));
                }
                Output::LoadManifest => self.load_manifest(true),
                Output::Proposed { .. } | Output::Rejected { .. } => {
                    // Only produced by `Propose`, which handles them (see `on_propose`).
                }
                Output::RoleChanged { role, epoch } => self.on_role(role, epoch),
            }
        }
        self.status.publish(&self.replica);
    }

    fn persist(&mut self, id: PersistId, op: PersistOp) {
        let shard = self.id;
        let durables = match op {
            PersistOp::Append(records) => records
                .into_iter()
                .map(|r| self.wal.append(&r.into_wal(shard)))
                .collect::<Result<Vec<_>>>(),
            PersistOp::Promise(epoch) => self.wal.append_promise(shard, epoch).map(|d| vec![d]),
            PersistOp::Truncate { after } => {
                self.wal.append_truncate(shard, after).map(|d| vec![d])
            }
        };
        match durables {
            Ok(ds) => self.persists.push_back(Box::pin(async move {
                for d in ds {
                    if let Err(e) = d.wait().await {
                        return (id, Err(e));
                    }
                }
                (id, Ok(()))
            })),
            Err(e) => self.poison(&e),
        }
    }

    /// A WAL write failed: this replica can no longer make anything durable, so it stops
    /// taking part (it never acks again) until the node restarts and recovers.
    fn poison(&mut self, e: &Error) {
        if !self.poisoned {
            tracing::error!(shard = %self.id, error = %e, "WAL failed; replica stops until restart");
        }
        self.poisoned = true;
        self.status.poisoned.store(true, Ordering::SeqCst);
        self.persists = FuturesOrdered::new();
        self.shard.set_leading(None);
        self.leading = false;
        self.fail_waiters();
    }

    /// Applies committed records up to `upto` (and to the replica's commit point: a manifest
    /// install may have unblocked earlier ones), then answers the proposals they cover.
    fn apply(&mut self, upto: SeqNo) {
        let upto = upto.max(self.replica.commit_seq());
        let applied = self.shard.applied();
        if applied < self.replica.log().base() {
            // Records up to the base are in segments this replica has not installed yet;
            // a manifest load installs them, then applies the rest.
            self.load_manifest(false);
            return;
        }
        if upto > applied {
            self.shard
                .apply_committed(self.replica.log().range(applied, upto));
        }
        let applied = self.shard.applied();
        self.overlay.retain(|_, e| e.seq > applied);
        let done: Vec<SeqNo> = self.waiters.range(..=applied).map(|(s, _)| *s).collect();
        for seq in done {
            if let Some(w) = self.waiters.remove(&seq) {
                let _ = w.reply.send(ProposeReply::Done(seq, w.prior));
            }
        }
    }

    /// Loads and installs the latest manifest (one load at a time); `answer`: the replica
    /// asked for it and gets `ManifestLoaded` back.
    fn load_manifest(&mut self, answer: bool) {
        self.manifest_answer |= answer;
        if self.manifest_inflight {
            return;
        }
        self.manifest_inflight = true;
        let shard = self.shard.clone();
        self.io.push(Box::pin(
            async move { Io::Manifest(shard.load_latest().await) },
        ));
    }

    fn maybe_refresh_manifest(&mut self) {
        let now = self.clock.now();
        if self.leading || now < self.next_refresh {
            return;
        }
        let every = u64::try_from(self.settings.manifest_refresh.as_millis()).unwrap_or(u64::MAX);
        self.next_refresh = now.plus(Millis(every));
        self.load_manifest(false);
    }

    fn on_io(&mut self, done: Io) {
        match done {
            Io::Claimed(Ok((epoch, won))) => self.step(Input::EpochClaimed { epoch, won }),
            Io::Claimed(Err(e)) => {
                // The candidate times out and tries again.
                tracing::warn!(shard = %self.id, error = %e, "epoch claim failed");
            }
            Io::Manifest(Ok(loaded)) => {
                self.manifest_inflight = false;
                let answer = std::mem::take(&mut self.manifest_answer);
                let (flushed_seq, flushed_epoch) = match loaded {
                    Some(l) => {
                        let at = (l.manifest.flushed_seq, l.manifest.flushed_epoch);
                        self.shard.install(l);
                        at
                    }
                    None => (SeqNo(0), Epoch(0)),
                };
                self.apply(self.replica.commit_seq());
                if answer || flushed_seq > self.replica.log().base() {
                    self.step(Input::ManifestLoaded {
                        flushed_seq,
                        flushed_epoch,
                    });
                }
            }
            Io::Manifest(Err(e)) => {
                self.manifest_inflight = false;
                tracing::warn!(shard = %self.id, error = %e, "manifest load failed");
            }
            Io::PublishedEpoch(r) => {
                if let Err(e) = r {
                    tracing::warn!(shard = %self.id, error = %e, "publishing the leader's epoch failed");
                }
            }
            Io::Prepared(Ok(prepared), reply) => self.on_propose(prepared, reply, true),
            Io::Prepared(Err(e), reply) => {
                let _ = reply.send(ProposeReply::Failed(e));
            }
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Msg { from, msg } => self.step(Input::Message { from, msg }),
            Cmd::Propose { prepared, reply } => self.on_propose(prepared, reply, false),
            Cmd::ProposeRaw { batch, reply } => {
                let shard = self.shard.clone();
                self.io.push(Box::pin(async move {
                    Io::Prepared(shard.prepare(batch).await, reply)
                }));
            }
        }
    }

    fn on_propose(&mut self, prepared: Prepared, reply: Reply, raw: bool) {
        if self.poisoned {
            let _ = reply.send(ProposeReply::Failed(Error::WalPoisoned { op: "fdatasync" }));
            return;
        }
        if self.replica.role() != Role::Leader {
            let _ = reply.send(ProposeReply::Failed(Error::NotLeader {
                shard: self.id,
                leader: self.replica.leader_hint().map(|n| n.0),
            }));
            return;
        }
        let (entries, prior) = match self.shard.evaluate(&prepared, &self.overlay) {
            Ok(PrepareOutcome::Ready { entries, prior }) => (entries, prior),
            Ok(PrepareOutcome::Retry) if raw => {
                // Prepare again here: the sweeper has nobody else to do it.
                let shard = self.shard.clone();
                let batch = prepared.batch;
                self.io.push(Box::pin(async move {
                    Io::Prepared(shard.prepare(batch).await, reply)
                }));
                return;
            }
            Ok(PrepareOutcome::Retry) => {
                let _ = reply.send(ProposeReply::Retry);
                return;
            }
            Err(e) => {
                let _ = reply.send(ProposeReply::Failed(e));
                return;
            }
        };
        let outs = self
            .replica
            .handle(self.clock.now(), Input::Propose { entries });
        let mut reply = Some(reply);
        for o in &outs {
            match o {
                Output::Proposed { seq } => {
                    if let Some(r) = self.replica.log().get(*seq) {
                        for e in &r.entries {
                            self.overlay.insert(e.key.clone(), e.clone());
                        }
                    }
                    if let Some(reply) = reply.take() {
                        self.waiters.insert(
                            *seq,
                            Waiter {
                                reply,
                                prior: prior.clone(),
                            },
                        );
                    }
                }
                Output::Rejected { reason } => {
                    if let Some(reply) = reply.take() {
                        let e = match reason {
                            RejectReason::NotLeader { leader } => Error::NotLeader {
                                shard: self.id,
                                leader: leader.map(|n| n.0),
                            },
                            RejectReason::NotReady => Error::NotLeader {
                                shard: self.id,
                                leader: None,
                            },
                            RejectReason::Empty => {
                                Error::invalid(tierkv_engine::error::InvalidReason::BatchEmpty)
                            }
                        };
                        let _ = reply.send(ProposeReply::Failed(e));
                    }
                }
                _ => {}
            }
        }
        self.execute(outs);
    }

    fn on_role(&mut self, role: Role, epoch: Epoch) {
        tracing::info!(shard = %self.id, ?role, %epoch, "replica role changed");
        if role == Role::Leader {
            self.leading = true;
            self.shard.set_leading(Some(epoch));
            let shard = self.shard.clone();
            self.io.push(Box::pin(async move {
                Io::PublishedEpoch(shard.publish_epoch().await)
            }));
        } else if self.leading || !self.waiters.is_empty() {
            self.leading = false;
            self.shard.set_leading(None);
            self.fail_waiters();
        }
    }

    /// Every pending proposal gets "outcome unknown": it may still commit under the next
    /// leader, or never.
    fn fail_waiters(&mut self) {
        for (_, w) in std::mem::take(&mut self.waiters) {
            let _ = w.reply.send(ProposeReply::Failed(Error::OutcomeUnknown {
                shard: self.id,
            }));
        }
        self.overlay.clear();
    }
}

/// One attempt to claim epoch `at_least` for `shard` with a create-only put. Returns
/// `(epoch, true)` if this call created `shards/<sid>/epoch/<at_least>`, else the newest
/// claimed epoch and `false` (someone else is taking over).
pub(crate) async fn try_claim_epoch(
    store: &ObjStore,
    shard: ShardId,
    at_least: Epoch,
) -> Result<(Epoch, bool)> {
    let listed = store.list(&paths::epoch_prefix(shard), None).await?;
    let newest = listed
        .iter()
        .filter_map(|(k, _)| paths::parse_epoch(shard, k))
        .max()
        .unwrap_or_default();
    if newest >= at_least {
        return Ok((newest, false));
    }
    let body = Bytes::from(format!("{{\"epoch\":{}}}", at_least.0));
    match store
        .put_create(&paths::epoch(shard, at_least), body)
        .await?
    {
        CreateOutcome::Created => Ok((at_least, true)),
        CreateOutcome::AlreadyExists => Ok((at_least, false)),
    }
}

/// The latest manifest of `shard` (an empty one if it never published).
pub(crate) async fn latest_manifest(store: &ObjStore, shard: ShardId) -> Result<Manifest> {
    let m = tierkv_engine::manifest::ManifestStore::new(store.clone(), shard);
    Ok(m.load_latest().await?.unwrap_or_default())
}
