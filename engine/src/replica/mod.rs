//! Replication and leases of one shard: a pure, I/O-free state machine (design note 0002).
//!
//! A [`Replica`] is one replica (node) of one shard. The node drives it with
//! [`Replica::handle`]`(now, input)` and carries out the returned [`Output`]s: it sends
//! messages, makes records durable in its WAL and reports back with [`Input::Persisted`],
//! claims epochs and loads manifests in object storage, applies committed records to the
//! memtable. The core never reads a clock, draws a random number or does I/O, so the same
//! code runs in the node and in the deterministic simulator (`tests/sim.rs`).
//!
//! # Layout
//!
//! - `mod.rs`: the types of the interface ([`Config`], [`Input`], [`Output`], [`Record`], ...).
//! - [`msg`]: messages between replicas and their binary encoding.
//! - [`log`]: the in-memory log (records after the flushed base, contiguous).
//! - `core.rs`: the [`Replica`] itself: dispatch, timers, role changes, commit point.
//! - `follower.rs`: accepting `Append`s (prefix check, truncation of older-epoch tails, acks),
//!   granting promises, answering `Fetch`.
//! - `candidate.rs`: takeover (manifest, epoch claim, quorum promises, adopt the longest log).
//! - `leader.rs`: sequencing, replication, commit rule, barrier, stepping down, handing the
//!   shard over to the first-ranked replica (design note 0006).
//! - [`membership`]: configurations (steady and joint voter sets), their quorums and encoding
//!   (design note 0009).
//! - `reconfig.rs`: the leader's change procedure toward the target replica set: learners,
//!   joint configuration, final configuration, release ([`Input::SetTarget`]).
//! - `persist.rs`: persistence requests and what is durable.
//! - `lease.rs`: lease arithmetic (the leader's read lease, the follower's promise window).
//! - `read_lease.rs`: read leases a serving leader grants gateways, and the commit hold
//!   that keeps them true (design note 0014).
//! - [`invariants`]: the safety rules as named functions, used by the core and the auditor.
//!
//! # Durability contract with the caller
//!
//! Every [`Output::Persist`] carries a [`PersistId`]; ids increase and the caller makes the
//! operations durable **in id order** (one WAL, group commit) and reports each with
//! [`Input::Persisted`]. After a crash the caller rebuilds the replica with
//! [`Replica::new`] from what was durable ([`Recovered`]): the last promise, the records with
//! truncations applied, and the latest manifest's flushed prefix.
//!
//! # Wiring into a node
//!
//! - One `Replica` per hosted shard, driven from the shard's task: every inbound RPC,
//!   WAL completion, object-store answer and a tick every 10–50 ms becomes an [`Input`].
//! - `Persist(Append)` goes through the node WAL as batch records ([`Record::into_wal`]; a
//!   barrier is a batch without entries); `Promise` and `Truncate` need WAL record kinds of
//!   their own. Completions are reported in id order.
//! - `Committed{upto}` replaces "WAL durable" in the shard write path: apply the records up
//!   to `upto` (from [`Replica::log`]) to the memtable in seq order, then answer the clients
//!   whose `Proposed{seq}` is covered, if this replica is still the leader of the epoch that
//!   sequenced them. On `RoleChanged` away from leader, pending clients get "outcome unknown".
//! - Strong reads check [`Replica::can_serve_strong_read`]; eventual reads read the
//!   committed state.
//! - The leader flushes only committed records, publishes the manifest (with the epoch of
//!   the record at `flushed_seq`) and reports it with [`Input::ManifestLoaded`]; on becoming
//!   [`Role::Leader`] it publishes a manifest with its epoch (fencing older flushes).

mod candidate;
mod core;
mod follower;
pub mod invariants;
mod leader;
mod lease;
pub mod log;
pub mod membership;
pub mod msg;
mod persist;
mod read_lease;
mod reconfig;
#[cfg(test)]
mod tests;

use crate::types::{Entry, Epoch, SeqNo, ShardId};
use crate::wal::WalRecord;

pub use self::core::Replica;
pub use self::membership::Membership;
pub use self::msg::Msg;
pub use self::read_lease::{LeaseMark, ReadLease, ReadLeaseCounts, ReadLeaseRefusal};
pub use self::reconfig::{ChangePhase, LearnerProgress};

pub use crate::types::NodeId;

/// Monotonic local time of one node in milliseconds, passed in by the caller. Only
/// differences of one node's readings are meaningful; clocks of different nodes are never
/// compared (the `sent_at` a follower echoes is the leader's own reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + d`, saturating.
    #[must_use]
    pub const fn plus(self, d: Self) -> Self {
        Self(self.0.saturating_add(d.0))
    }
    /// `self - d`, saturating at zero.
    #[must_use]
    pub const fn minus(self, d: Self) -> Self {
        Self(self.0.saturating_sub(d.0))
    }
}

/// Names one persistence request; ids increase by one per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PersistId(pub u64);

/// One record of the shard log: a client batch, a barrier (no entries) that a new leader
/// appends to commit everything before it in its own epoch, or a configuration record
/// (design note 0009: no entries, a [`Membership`] that is in force from the moment it is
/// appended to a log, committed or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Epoch of the leader that sequenced it.
    pub epoch: Epoch,
    /// Position in the log, also the version of its entries.
    pub seq: SeqNo,
    /// The batch; empty for a barrier or a configuration record.
    pub entries: Vec<Entry>,
    /// The configuration this record puts in force; `None` for batches and barriers.
    pub membership: Option<Membership>,
}

impl Record {
    /// A batch (or, with no entries, a barrier).
    #[must_use]
    pub fn batch(epoch: Epoch, seq: SeqNo, entries: Vec<Entry>) -> Self {
        Self {
            epoch,
            seq,
            entries,
            membership: None,
        }
    }

    /// Whether this is a leader's barrier record.
    #[must_use]
    pub fn is_barrier(&self) -> bool {
        self.entries.is_empty() && self.membership.is_none()
    }

    /// The WAL record of this log record (a barrier is a batch without entries, a
    /// configuration record is WAL record kind 4).
    #[must_use]
    pub fn into_wal(self, shard: ShardId) -> WalRecord {
        WalRecord {
            shard,
            epoch: self.epoch,
            seq: self.seq,
            entries: self.entries,
            membership: self.membership,
        }
    }

    /// The log record of a recovered WAL record.
    #[must_use]
    pub fn from_wal(r: WalRecord) -> Self {
        Self {
            epoch: r.epoch,
            seq: r.seq,
            entries: r.entries,
            membership: r.membership,
        }
    }
}

/// Settings of a replica. All durations are on the node's local clock.
#[derive(Debug, Clone)]
pub struct Config {
    /// The shard.
    pub shard: ShardId,
    /// This node.
    pub me: NodeId,
    /// The shard's *genesis configuration*: its replicas in rank order in the shard map
    /// that created the cluster (the first goes first in a takeover, the others wait
    /// `rank × rank_delay` longer). The configuration in force is this one until a
    /// configuration record (or a manifest recording one) says otherwise (design note 0009
    /// §1); then ranks follow the configuration in force. `me` need not be among them (a
    /// replica created as a learner).
    pub replicas: Vec<NodeId>,
    /// Write quorum W, also the promise quorum; `2W > N` so any two quorums intersect.
    /// Under other configurations than the genesis one, a set of `k` voters needs
    /// [`membership::quorum_size`]`(k, N − W)`. Default: 2 (of 3).
    pub quorum: usize,
    /// Interval between the leader's heartbeats (empty `Append`s). Default: 250 ms.
    pub heartbeat_interval: Millis,
    /// How long an ack promises not to promise a newer epoch. Default: 2 s.
    pub lease_duration: Millis,
    /// Bound on how far two clocks may drift apart within one lease. Default: 250 ms.
    pub max_clock_drift: Millis,
    /// Extra takeover delay per rank. Default: 300 ms.
    pub rank_delay: Millis,
    /// Upper bound of the takeover jitter (a pseudo-random function of node and attempt).
    /// Default: 150 ms.
    pub max_jitter: Millis,
    /// How long a takeover may take before the candidate gives up. Default: 2 s.
    pub takeover_timeout: Millis,
    /// Most records in one `Append`. Default: 64.
    pub max_records_per_append: usize,
    /// How long the first-ranked replica must have been acking without a pause before a
    /// leader of another rank hands the shard over to it ([`Msg::Handover`]), so that
    /// leadership returns to the balanced placement after a failover or a restart. Should be
    /// at least `lease_duration`: a restarted target ignores handovers for one lease. `None`:
    /// never hand over. Default: two leases (4 s).
    pub handover_after: Option<Millis>,
    /// How close to the leader's commit point a learner's durable log must be before the
    /// leader makes it a voter (appends the joint configuration, design note 0009 §2): a
    /// learner far behind would leave the new configuration without a working quorum.
    /// Default: 64 records.
    pub move_lag_records: u64,
    /// Longest read lease a serving leader grants a gateway (design note 0014): a promise
    /// that no write of the shard commits before it ends. `Millis(0)`: none are granted.
    /// Default: 0 (off; the node sets `cluster.read_lease`).
    pub read_lease: Millis,
    /// A leader grants read leases only when no write was proposed for this long (and none
    /// is uncommitted): under steady writes no lease is granted, so writes never wait.
    /// Default: 1 s.
    pub read_lease_quiet: Millis,
    /// Deliberate protocol bugs, to show that the simulator finds them.
    #[cfg(test)]
    pub(crate) bug: Option<tests::Bug>,
}

impl Config {
    /// Default settings for `me` among `replicas` with a majority quorum.
    #[must_use]
    pub fn new(shard: ShardId, me: NodeId, replicas: Vec<NodeId>) -> Self {
        let quorum = replicas.len() / 2 + 1;
        Self {
            shard,
            me,
            replicas,
            quorum,
            heartbeat_interval: Millis(250),
            lease_duration: Millis(2000),
            max_clock_drift: Millis(250),
            rank_delay: Millis(300),
            max_jitter: Millis(150),
            takeover_timeout: Millis(2000),
            max_records_per_append: 64,
            handover_after: Some(Millis(4000)),
            move_lag_records: 64,
            read_lease: Millis(0),
            read_lease_quiet: Millis(1000),
            #[cfg(test)]
            bug: None,
        }
    }
}

/// What happened to the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time passed (the caller ticks every few tens of milliseconds).
    Tick,
    /// A message from another replica.
    Message {
        /// The sender.
        from: NodeId,
        /// The message.
        msg: Msg,
    },
    /// A persistence request (and every earlier one) is durable.
    Persisted {
        /// The request.
        id: PersistId,
    },
    /// The outcome of an [`Output::ClaimEpoch`].
    EpochClaimed {
        /// The epoch claimed if `won`, else the newest epoch that already existed.
        epoch: Epoch,
        /// Whether this node's create-only put succeeded.
        won: bool,
    },
    /// The latest manifest (after an [`Output::LoadManifest`], or after this node, as leader,
    /// published one).
    ManifestLoaded {
        /// Everything up to here is in segments.
        flushed_seq: SeqNo,
        /// Epoch of the record at `flushed_seq` (the manifest stores it).
        flushed_epoch: Epoch,
        /// The configuration in force at `flushed_seq`, if the manifest records one
        /// (`None`: no configuration record was ever flushed, the genesis one holds).
        membership: Option<Membership>,
    },
    /// A client batch at the leader; its conditions were already evaluated by the caller.
    Propose {
        /// The entries (their `seq` is ignored: the record's seq is their version).
        entries: Vec<Entry>,
    },
    /// The connection to `node` broke (it stopped or restarted, or the network failed): as
    /// leader, count its steady acking afresh from its next ack, so that a replica that
    /// restarted within two heartbeats is not handed the shard while its restart guard holds.
    PeerLost {
        /// The peer.
        node: NodeId,
    },
    /// This node's write buffers need the shard flushed up to `upto` (design note 0007): a
    /// follower that knows its leader sends it a [`Msg::FlushRequest`] (`hard`: its node is
    /// past its unflushed limit). Ignored by other roles: a leader flushes on its own.
    RequestFlush {
        /// Flush at least up to here (the follower's log end).
        upto: SeqNo,
        /// The node is past its limit: the leader should refuse writes too.
        hard: bool,
    },
    /// The target replica set of the shard in the newest shard map (design note 0009 §2), in
    /// rank order. A serving leader moves the configuration toward it, one change at a
    /// time: learners catch up, then the joint configuration, then the new one. Other roles
    /// keep it for when they lead.
    SetTarget {
        /// The target voters.
        voters: Vec<NodeId>,
    },
    /// The shard map retired `node` (it was replaced): its messages are ignored from now on,
    /// so nothing ever counts its acks or promises again (design note 0009 §5).
    Retired {
        /// The retired id.
        node: NodeId,
    },
    /// The node is about to stop: a leader hands the shard to the most up-to-date replica
    /// that acks steadily (retrying until the node stops), and from now on this replica
    /// starts no takeover of its own (one it is handed it completes, then hands the shard
    /// on). Until a restart.
    Drain,
}

/// A persistence request: the caller writes it to the WAL and fsyncs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistOp {
    /// Append these records (contiguous, after the current end of the log).
    Append(Vec<Record>),
    /// Record that this replica promised `epoch` (never accept older `Append`s again).
    Promise(Epoch),
    /// Forget every record after `after` (older-epoch tail replaced by a newer leader's).
    Truncate {
        /// Last seq kept.
        after: SeqNo,
    },
}

/// Role of a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Taking over: loading the manifest, claiming an epoch, collecting promises, adopting.
    Candidate,
    /// Leader whose barrier is not committed yet: replicates but does not serve.
    Recovering,
    /// Leader whose barrier is committed: sequences client batches.
    Leader,
}

/// Why a proposal was not sequenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// This replica is not the leader; `leader` is the last one it heard from.
    NotLeader {
        /// Hint for the client.
        leader: Option<NodeId>,
    },
    /// This replica is a leader whose barrier is not committed yet; retry shortly.
    NotReady,
    /// A batch must have at least one entry (an empty record is a barrier).
    Empty,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a message to another replica (best effort).
    Send {
        /// The receiver.
        to: NodeId,
        /// The message.
        msg: Msg,
    },
    /// Make this durable, then report [`Input::Persisted`] with `id` (in id order).
    Persist {
        /// Request id.
        id: PersistId,
        /// What to persist.
        op: PersistOp,
    },
    /// Records up to `upto` are committed: apply them to the memtable in seq order (from
    /// [`Replica::log`]). At the leader, proposals up to `upto` may be acknowledged.
    Committed {
        /// Highest committed seq.
        upto: SeqNo,
    },
    /// Claim an epoch `>= at_least` with a create-only put; answer [`Input::EpochClaimed`].
    ClaimEpoch {
        /// Smallest epoch worth claiming.
        at_least: Epoch,
    },
    /// Read the latest manifest; answer [`Input::ManifestLoaded`].
    LoadManifest,
    /// The proposal was sequenced at `seq` (not yet committed).
    Proposed {
        /// Its seq.
        seq: SeqNo,
    },
    /// The proposal was refused.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
    /// A follower asked this serving leader to flush up to `upto`, already capped at the
    /// commit point (only committed records are ever flushed): freeze the memtable if it
    /// holds records at or below it; `hard`: refuse writes to the shard for a while (the
    /// follower is past its limit). Design note 0007.
    FlushRequested {
        /// The follower.
        from: NodeId,
        /// Flush up to here (at most the commit point).
        upto: SeqNo,
        /// Refuse writes for a while.
        hard: bool,
    },
    /// The role changed. A leader that stops leading must fail its pending proposals as
    /// "outcome unknown": they may or may not commit under the next leader.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The epoch this replica has promised.
        epoch: Epoch,
    },
}

/// Durable state a replica restarts from.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// The last durable promise.
    pub promised_epoch: Epoch,
    /// `flushed_seq` of the latest manifest.
    pub flushed_seq: SeqNo,
    /// Epoch of the record at `flushed_seq`.
    pub flushed_epoch: Epoch,
    /// The configuration in force at `flushed_seq` as the manifest records it (`None`: the
    /// genesis configuration).
    pub flushed_membership: Option<Membership>,
    /// The durable records of the shard, truncations applied, in seq order.
    pub records: Vec<Record>,
    /// Set when this replica lost its durable state (it restarted with an empty disk under
    /// an id that ran before): the newest epoch claimed for the shard when it found out,
    /// which is at least every epoch it could have promised or acked. Until its durable log
    /// (or the manifest's flushed prefix) holds a record of an epoch newer than this one, the
    /// replica is *rejoining*: it accepts nothing older, answers no `Promise`, starts no
    /// takeover and takes no handover (design note 0002, "Rejoining after disk loss").
    pub amnesia_floor: Option<Epoch>,
}
