//! The document a node answers `Describe` with (design note 0010): what the gateway's admin
//! API shows about a node beyond `Status`: storage figures, follower progress, load
//! counters and recent events.
//!
//! # Encoding and evolution
//!
//! The `Described` answer (kind 22) carries a u16 [`DESCRIBE_FORMAT`] and the document as
//! UTF-8 JSON. Readers ignore fields they do not know, and every field has a default that a
//! reader fills in when the writer did not send it (`#[serde(default)]` on every struct), so
//! a field can be added without a new format. The format changes only when the meaning of
//! an existing field changes; a reader refuses formats it does not know
//! ([`super::decode_response`] fails), and the gateway then shows the node as one that does
//! not know `Describe` (design note 0010, "Rolling upgrades").
//!
//! Enumerations whose set grows ([`ShardFacts::role`], [`NodeEvent::kind`]) are strings, so
//! a reader shows values added later as they are instead of refusing the document.

use serde::{Deserialize, Serialize};

/// The format of the document this build writes and reads.
pub const DESCRIBE_FORMAT: u16 = 1;

/// The newest events a node keeps (and the most a `Describe` may ask for).
pub const MAX_EVENTS: u32 = 512;

/// A node's description of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeDescription {
    /// The answering node's id.
    pub node: u32,
    /// Its software version (the `tierkv` crate version).
    pub version: String,
    /// The client wire revision it speaks ([`super::REVISION`]; 0 from a node older than
    /// revision 5): the admin API refuses membership changes while a member is below
    /// [`super::REVISION_CONFIGURATIONS`] (design note 0009, "Compatibility").
    pub wire_revision: u16,
    /// When it started, unix milliseconds (its wall clock).
    pub started_at_ms: u64,
    /// Its wall-clock time when it answered, unix milliseconds (compare with the reader's
    /// clock for a skew estimate).
    pub now_ms: u64,
    /// Version of the shard map it runs under.
    pub map_version: u64,
    /// Its write-ahead log (one per node, shared by every hosted shard).
    pub wal: WalFacts,
    /// Its segment block cache.
    pub block_cache: CacheFacts,
    /// Every shard it hosts, by shard id.
    pub shards: Vec<ShardFacts>,
    /// Its newest events, oldest first (at most what was asked for).
    pub events: Vec<NodeEvent>,
}

/// A node's write-ahead log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WalFacts {
    /// Bytes in live WAL files (headers included).
    pub bytes: u64,
    /// Live WAL files, the active one included.
    pub files: u64,
    /// Whether a write or sync failed (the node must restart).
    pub poisoned: bool,
}

/// A cache's lookups since the node started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheFacts {
    /// Lookups that found the block.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
}

/// One hosted shard replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardFacts {
    /// The shard.
    pub shard: u32,
    /// `leader`, `recovering` (leader not serving yet), `candidate` or `follower` (more may
    /// come: membership adds `learner`).
    pub role: String,
    /// The epoch it promised (a leader's own epoch).
    pub epoch: u64,
    /// The leader it knows of (itself when leading).
    pub leader: Option<u32>,
    /// Highest seq known committed.
    pub commit_seq: u64,
    /// Highest seq applied to its view (memtables or installed segments).
    pub applied_seq: u64,
    /// End of its log.
    pub last_seq: u64,
    /// Flushed prefix of its latest manifest (its log's base).
    pub flushed_seq: u64,
    /// Committed records its log is known to miss (0 once caught up with its leader).
    pub records_behind: u64,
    /// Rejoining after disk loss (design note 0002).
    pub rejoining: bool,
    /// Stopped by a WAL failure.
    pub poisoned: bool,
    /// Bytes in its active memtable.
    pub memtable_bytes: u64,
    /// Bytes not yet flushed to object storage (active and frozen memtables).
    pub unflushed_bytes: u64,
    /// Frozen memtables waiting for a flush.
    pub frozen_memtables: u64,
    /// Level-0 segments in its view.
    pub l0_segments: u64,
    /// Level-1 segments in its view.
    pub l1_segments: u64,
    /// Bytes in those segments.
    pub segment_bytes: u64,
    /// Reads (gets and scans) this node served on the shard since it started.
    pub reads: u64,
    /// Writes this node was asked to apply on the shard since it started.
    pub writes: u64,
    /// On a leader: each follower's durably acknowledged seq in its epoch (empty otherwise).
    pub followers: Vec<FollowerFacts>,
    /// Whether it is a voter of its configuration in force (design note 0009).
    pub voter: bool,
    /// Its configuration in force: its voter sets, one (steady) or two (joint: old, new);
    /// empty from a node of an older version.
    pub configuration: Vec<Vec<u32>>,
    /// The target replica set the newest shard map gives the shard (empty: none yet).
    pub target: Vec<u32>,
    /// Where the move of the shard stands: `done`, `learning`, `joint`, `final`,
    /// `releasing` (meaningful at the leader; empty from an older node).
    pub phase: String,
    /// On a leader moving the shard: each learner's progress (empty otherwise).
    pub learners: Vec<LearnerFacts>,
}

/// A learner's progress as its leader sees it (design note 0009 §7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LearnerFacts {
    /// The learner.
    pub node: u32,
    /// Records between its durably matched log end and the leader's commit point.
    pub records_behind: u64,
    /// Bytes of the entries after its matched log end in the leader's log.
    pub bytes_behind: u64,
    /// Whether it acknowledged anything in this epoch.
    pub acked: bool,
}

/// A follower's progress as its leader sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowerFacts {
    /// The follower.
    pub node: u32,
    /// Highest seq it acknowledged as durable and matching the leader's log.
    pub match_seq: u64,
}

/// Something that happened on a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeEvent {
    /// Its number on this node: 1, 2, ... from the node's start.
    pub id: u64,
    /// When, unix milliseconds (the node's wall clock).
    pub at_ms: u64,
    /// What ([`EventKind::as_str`]; readers show kinds they do not know as they are).
    pub kind: String,
    /// The shard, for shard events.
    pub shard: Option<u32>,
    /// The epoch, for leadership events.
    pub epoch: Option<u64>,
    /// The other node involved: the previous leader (`became_leader`), the known leader
    /// (`stepped_down`), the target (`handed_over`).
    pub peer: Option<u32>,
    /// The shard map version (`node_started`).
    pub map_version: Option<u64>,
}

/// The kinds of [`NodeEvent`] this build writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The node opened (every earlier event of this node is gone).
    NodeStarted,
    /// A replica became its shard's serving leader.
    BecameLeader,
    /// A replica that led its shard no longer does.
    SteppedDown,
    /// A leader handed its shard to another replica (design note 0006).
    HandedOver,
    /// A replica stopped because the WAL failed.
    WalFailed,
}

impl EventKind {
    /// The kind as it appears in the document.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NodeStarted => "node_started",
            Self::BecameLeader => "became_leader",
            Self::SteppedDown => "stepped_down",
            Self::HandedOver => "handed_over",
            Self::WalFailed => "wal_failed",
        }
    }
}
