//! The replication driver of one shard replica: the task that owns the shard's
//! [`Replica`] state machine and carries out what it asks for.
//!
//! # Lifecycle
//!
//! One task per hosted shard, started by the node after WAL recovery. It receives
//! (`Cmd` on a bounded channel, plus its own futures):
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
//!
//! # Code layout
//!
//! This module holds the driver task: its loop, the replica's outputs, proposals and role
//! changes. The node-facing [`ShardHandle`] and [`ShardStatus`] are in `handle.rs`; the
//! object-store calls (epoch claims, manifest loads) and their completions in `io.rs`; the
//! task's start in `spawn.rs`; the catch-up throttle of learners (design note 0009,
//! `cluster.move_bytes_per_sec`) in `throttle.rs`; the replicas' clock ([`NodeClock`]) in
//! `clock.rs`.

mod clock;
mod handle;
mod io;
mod read_lease;
mod spawn;
mod throttle;
mod traces;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use tierkv_engine::error::{Error, Result};
use tierkv_engine::manifest::ManifestStore;
use tierkv_engine::replica::{
    Input, Millis, Msg, NodeId, Output, PersistId, PersistOp, RejectReason, Replica, Role,
};
use tierkv_engine::shard::{PrepareOutcome, Prepared, Shard};
use tierkv_engine::store::ObjStore;
use tierkv_engine::types::{Entry, Epoch, SeqNo, ShardId};
use tierkv_engine::wal::Wal;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use self::clock::NodeClock;
use self::handle::Reply;
pub(crate) use self::handle::{Cmd, ProposeReply};
pub use self::handle::{Configurations, ShardHandle, ShardStatus, StatusSnapshot};
use self::io::Io;
pub(crate) use self::io::latest_manifest;
use self::read_lease::hold_wake;
pub(crate) use self::spawn::spawn;
use self::throttle::MoveThrottle;
use self::traces::WriteTraces;
use crate::admin::{EventFields, EventLog};
use crate::transport::Transport;
use tierkv_wire::proto::describe::EventKind;

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
    /// Bytes of entries per second a leader sends its learners (`cluster.move_bytes_per_sec`;
    /// 0: unlimited).
    pub(crate) move_bytes_per_sec: u64,
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
    /// The node's event log (role changes, handovers, WAL failures: design note 0010).
    pub(crate) events: Arc<EventLog>,
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
    events: Arc<EventLog>,
    rx: mpsc::Receiver<Cmd>,
    status: Arc<ShardStatus>,
    persists: FuturesOrdered<BoxFuture<'static, (PersistId, Result<()>)>>,
    io: FuturesUnordered<BoxFuture<'static, Io>>,
    waiters: BTreeMap<SeqNo, Waiter>,
    /// Newest proposed-but-unapplied entry per key (conditions are checked against it).
    overlay: HashMap<Bytes, Entry>,
    /// Condition failures that saw an uncommitted entry of the overlay, held until that
    /// entry (its seq) is committed: answered earlier, a failed CAS could be followed by a
    /// read of the value it claimed was gone (the pending write may commit later, or never).
    held_failures: Vec<(SeqNo, Reply, Error)>,
    /// The flusher's published manifest position (the loop watches a clone of it).
    published: watch::Receiver<(SeqNo, Epoch)>,
    poisoned: bool,
    leading: bool,
    next_refresh: Millis,
    manifest_inflight: bool,
    manifest_answer: bool,
    /// Per peer of the shard: the transport's stream-break count last seen.
    peer_breaks: Vec<(NodeId, u64)>,
    /// The last leader other than this replica it heard of (the admin event log's "previous
    /// leader").
    known_leader: Option<NodeId>,
    /// Open spans of traced writes (design note 0011).
    traces: WriteTraces,
    /// Catch-up bandwidth of this replica's learners (design note 0009).
    throttle: MoveThrottle,
    /// When a read lease that holds the commit of proposed writes ends (design note 0014).
    hold_until: Option<tokio::time::Instant>,
}

/// Most commands taken from the inbox in one turn of the loop (the other inputs wait that
/// long at most).
const CMDS_PER_TURN: usize = 64;

/// The next change of the published manifest position, with the receiver to read it from.
/// Made once per change and kept across the loop's turns: a fresh `changed()` per turn would
/// register and unregister a waiter under the channel's lock every time.
async fn next_publish(
    mut rx: watch::Receiver<(SeqNo, Epoch)>,
) -> Option<watch::Receiver<(SeqNo, Epoch)>> {
    rx.changed().await.ok().map(|()| rx)
}

impl Driver {
    async fn run(&mut self) {
        let mut tick = tokio::time::interval(self.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // One wait for cancellation for the whole loop (a fresh one per turn registers and
        // unregisters a waiter under the token's lock every time).
        let stopped = self.cancel.clone().cancelled_owned();
        tokio::pin!(stopped);
        let mut publish = Box::pin(next_publish(self.published.clone()));
        let mut publishing = true;
        loop {
            tokio::select! {
                biased;
                () = &mut stopped => break,
                Some((id, r)) = self.persists.next(), if !self.persists.is_empty() => {
                    match r {
                        Ok(()) => self.step(Input::Persisted { id }),
                        Err(e) => self.poison(&e),
                    }
                }
                Some(done) = self.io.next(), if !self.io.is_empty() => self.on_io(done),
                rx = &mut publish, if publishing => match rx {
                    Some(mut rx) => {
                        let at = *rx.borrow_and_update();
                        publish.set(next_publish(rx));
                        self.on_published(at);
                    }
                    // The shard is gone (the node is stopping).
                    None => publishing = false,
                },
                cmd = self.rx.recv() => match cmd {
                    Some(c) => {
                        self.on_cmd(c);
                        // Whatever else arrived meanwhile, in this turn: messages of one
                        // replication chunk come together.
                        for _ in 1..CMDS_PER_TURN {
                            match self.rx.try_recv() {
                                Ok(c) => self.on_cmd(c),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                // The end of a read lease that holds the commit of writes (design note 0014).
                () = hold_wake(self.hold_until), if self.hold_until.is_some() => self.on_hold_end(),
                _ = tick.tick() => {
                    self.check_peers();
                    self.step(Input::Tick);
                    self.maybe_refresh_manifest();
                    self.status.publish_each_tick(&self.replica);
                }
            }
        }
        // A leader keeps its flag so the node's shutdown can flush what it committed.
        self.fail_waiters();
    }

    /// The shard's flusher published a manifest up to `flushed_seq`.
    fn on_published(&mut self, (flushed_seq, flushed_epoch): (SeqNo, Epoch)) {
        if self.shard.applied() >= flushed_seq {
            // This replica's own flush: its log holds the record at `flushed_seq`, so it
            // derives the configuration in force there itself (`Log::advance_base`).
            self.step(Input::ManifestLoaded {
                flushed_seq,
                flushed_epoch,
                membership: None,
            });
        } else {
            // A publish that lost to (and adopted) a manifest beyond what this replica
            // applied: the log may only drop records the view holds, so install first; the
            // load answers the replica afterwards.
            self.load_manifest(true);
        }
    }

    /// Tells the replica about every peer whose replication stream broke since the last
    /// tick (it may have restarted).
    fn check_peers(&mut self) {
        let mut lost = Vec::new();
        for (peer, seen) in &mut self.peer_breaks {
            let now = self.transport.stream_breaks(*peer);
            if now != *seen {
                *seen = now;
                lost.push(*peer);
            }
        }
        for node in lost {
            self.step(Input::PeerLost { node });
        }
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
                Output::Send { to, msg } => {
                    if let Msg::Handover { epoch } = &msg {
                        self.status.handovers.fetch_add(1, Ordering::Relaxed);
                        self.events.record(
                            EventKind::HandedOver,
                            EventFields {
                                shard: Some(self.id),
                                epoch: Some(*epoch),
                                peer: Some(to),
                                map_version: None,
                            },
                        );
                    }
                    if !self.throttle.allows(&self.replica, to, &msg) {
                        // Dropped: a leader rewinds a follower that made no progress for a
                        // heartbeat and sends again (design note 0009 §2, "Learn").
                        self.status
                            .throttled_appends
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    self.transport.send(to, self.id, &msg);
                }
                Output::Persist { id, op } => self.persist(id, op),
                Output::Committed { upto } => self.apply(upto),
                Output::ClaimEpoch { at_least } => {
                    let epochs = ManifestStore::new(self.store.clone(), self.id);
                    self.io.push(Box::pin(async move {
                        Io::Claimed(epochs.try_claim_epoch(at_least).await)
                    }));
                }
                Output::LoadManifest => self.load_manifest(true),
                Output::Proposed { .. } | Output::Rejected { .. } => {
                    // Only produced by `Propose`, which handles them (see `on_propose`).
                }
                Output::RoleChanged { role, epoch } => self.on_role(role, epoch),
                Output::FlushRequested { from, upto, hard } => {
                    tracing::debug!(shard = %self.id, follower = %from, %upto, hard, "flush requested");
                    self.shard.on_flush_request(upto, hard);
                }
            }
        }
        self.status.publish(&self.replica, self.caught_up());
        self.arm_hold();
    }

    /// Whether every committed record is visible in the shard's view (applied, or covered by
    /// installed segments). A leader that is not may neither serve strong reads nor evaluate
    /// conditions: records it committed could be missing from what it reads.
    fn caught_up(&self) -> bool {
        self.shard.applied() >= self.replica.commit_seq()
    }

    fn persist(&mut self, id: PersistId, op: PersistOp) {
        let shard = self.id;
        // `wal.append` spans of traced writes end when their records are durable.
        let mut spans: Vec<tracing::Span> = Vec::new();
        let durables = match op {
            PersistOp::Append(records) => {
                spans = records
                    .iter()
                    .filter_map(|r| self.traces.wal_span(r.seq))
                    .collect();
                records
                    .into_iter()
                    .map(|r| self.wal.append(&r.into_wal(shard)))
                    .collect::<Result<Vec<_>>>()
            }
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
                drop(spans);
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
            self.events.record(
                EventKind::WalFailed,
                EventFields {
                    shard: Some(self.id),
                    ..EventFields::default()
                },
            );
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
            if self.replica.role() == Role::Leader {
                for r in self.replica.log().range(applied, upto) {
                    if let Some(m) = &r.membership {
                        let kind = usize::from(!m.is_joint());
                        self.status.moves[kind].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            self.shard
                .apply_committed(self.replica.log().range(applied, upto));
        }
        let applied = self.shard.applied();
        self.overlay.retain(|_, e| e.seq > applied);
        let done: Vec<SeqNo> = self.waiters.range(..=applied).map(|(s, _)| *s).collect();
        if !done.is_empty() {
            // Before the writers hear of their commit: whoever they tell must find it in the
            // published status (`/status`, `Describe`) too, not an older commit point.
            self.status.publish(&self.replica, self.caught_up());
        }
        for seq in done {
            if let Some(w) = self.waiters.remove(&seq) {
                let _ = w.reply.send(ProposeReply::Done(seq, w.prior));
            }
        }
        // The entries those failures saw are committed now: the failures are true of the
        // committed state at this instant.
        let (due, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held_failures)
            .into_iter()
            .partition(|(seq, _, _)| *seq <= applied);
        self.held_failures = held;
        for (_, reply, e) in due {
            let _ = reply.send(ProposeReply::Failed(e));
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Msg { from, msg } => {
                if let Msg::Ack { last_seq, .. } = &msg {
                    self.traces.acked(from, *last_seq);
                }
                self.step(Input::Message { from, msg });
            }
            Cmd::Drain => self.step(Input::Drain),
            Cmd::GrantReadLease { reply } => self.grant_read_lease(reply),
            Cmd::RequestFlush { upto, hard } => self.step(Input::RequestFlush { upto, hard }),
            Cmd::SetTarget { voters } => self.step(Input::SetTarget { voters }),
            Cmd::Retired { node } => self.step(Input::Retired { node }),
            Cmd::Propose {
                prepared,
                reply,
                span,
            } => self.on_propose(prepared, reply, false, span),
            Cmd::ProposeRaw { batch, reply } => {
                let shard = self.shard.clone();
                self.io.push(Box::pin(async move {
                    Io::Prepared(shard.prepare(batch).await, reply)
                }));
            }
        }
    }

    fn on_propose(&mut self, prepared: Prepared, reply: Reply, raw: bool, span: tracing::Span) {
        if self.poisoned {
            let _ = reply.send(ProposeReply::Failed(Error::WalPoisoned { op: "fdatasync" }));
            return;
        }
        if self.replica.role() != Role::Leader || !self.caught_up() {
            let _ = reply.send(ProposeReply::Failed(Error::NotLeader {
                shard: self.id,
                leader: self.replica.leader_hint(),
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
                let pending = match &e {
                    Error::ConditionFailed { key, .. } => self.overlay.get(key).map(|p| p.seq),
                    _ => None,
                };
                match pending {
                    Some(seq) => self.held_failures.push((seq, reply, e)),
                    None => {
                        let _ = reply.send(ProposeReply::Failed(e));
                    }
                }
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
                    self.traces.proposed(&span, *seq, self.replica.peers());
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
                                leader: *leader,
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
        let before = self.status.snapshot();
        if matches!(before.role, Role::Follower | Role::Candidate) && before.leader.is_some() {
            // Another node's leadership, as this replica last heard of it (a leader's own
            // hint names itself).
            self.known_leader = before.leader;
        }
        let fields = |peer| EventFields {
            shard: Some(self.id),
            epoch: Some(epoch),
            peer,
            map_version: None,
        };
        if role == Role::Leader {
            self.events
                .record(EventKind::BecameLeader, fields(self.known_leader));
        } else if before.role == Role::Leader {
            self.events
                .record(EventKind::SteppedDown, fields(self.replica.leader_hint()));
        }
        // Published now, before any message of the same step leaves: a leader that hands the
        // shard over stops serving strong reads before its `Handover` can reach the target.
        self.status.publish(&self.replica, self.caught_up());
        if role == Role::Leader {
            self.status.leaderships.fetch_add(1, Ordering::Relaxed);
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
        self.traces.clear();
        for (_, w) in std::mem::take(&mut self.waiters) {
            let _ = w.reply.send(ProposeReply::Failed(Error::OutcomeUnknown {
                shard: self.id,
            }));
        }
        self.overlay.clear();
        // The entries they saw may never commit: nothing was applied for these, so they are
        // refused as "not leader" (safe to retry) rather than answered as failures.
        for (_, reply, _) in std::mem::take(&mut self.held_failures) {
            let _ = reply.send(ProposeReply::Failed(Error::NotLeader {
                shard: self.id,
                leader: None,
            }));
        }
    }
}
