//! Client operations between gateways and nodes, and their binary encoding (the bodies of
//! `POST /rpc/v1/kv`; design note 0002, "Node RPC").
//!
//! Integers are little-endian; the checksum is CRC-32C of everything before it.
//!
//! # Envelope
//!
//! | offset | type | meaning |
//! |---|---|---|
//! | 0 | u32 | magic [`MAGIC`]: the bytes `"TKVC"` as a little-endian u32 |
//! | 4 | u16 | format version, [`VERSION`] = 1; others are rejected |
//! | 6 | u8 | kind: requests 1 Get, 2 Write, 3 Scan, 4 Status, 5 GetIfChanged (revision 2), 6 Describe (revision 3), 7 Traced (revision 4), 8 StatusWithConfigurations (revision 5), 9 GetLeased (revision 6); responses 16 Got, 17 Written, 18 Scanned, 19 Status, 20 Error, 21 Unchanged (revision 2), 22 Described (revision 3), 23 Status with configurations (revision 5), 24 Leased (revision 6) |
//! | 7 | ... | fields of the kind, in declaration order (below) |
//! | end−4 | u32 | crc32c of bytes `0..end−4` |
//!
//! # Fields
//!
//! Shards and node ids are u32; seqs, epochs, versions and byte counts u64. `bytes` is a u32
//! length and that many bytes; `opt<T>` is a u8 (0 absent, 1 present) followed by `T` when
//! present; a `bool` is a u8 0 or 1. Counts are u32 and checked against the input left.
//!
//! | kind | fields |
//! |---|---|
//! | Get | shard, key: bytes, consistency: u8 (0 strong, 1 eventual) |
//! | Write | shard, report_prior: bool, op count, ops: mutation, condition |
//! | Scan | shard, prefix: bytes, start_after: opt\<bytes\>, limit: u32, consistency: u8 |
//! | Status | (none) |
//! | GetIfChanged | shard, key: bytes, known: u64 |
//! | Describe | max_events: u32 |
//! | Traced | trace_id: 16 bytes, span_id: 8 bytes, flags: u8, inner: bytes (one whole request envelope of kinds 1–6, 8 or 9) |
//! | StatusWithConfigurations | (none) |
//! | GetLeased | shard, key: bytes, known: opt\<u64\> |
//! | Got | opt\<entry\> |
//! | Written | seq, count, priors: opt\<u64\> each |
//! | Scanned | count, entries, next: opt\<bytes\> |
//! | Status | node, map_version, count, shards: shard, role: u8 (1 follower, 2 candidate, 3 recovering, 4 leader), epoch, leader: opt\<u32\>, commit_seq, last_seq, flushed_seq |
//! | Error | code: u8, then the code's fields (see [`RemoteError`]; codes 1–8 in declaration order) |
//! | Unchanged | (none) |
//! | Leased | lease_ms: u32, mark epoch: u64, mark seq: u64, answer: u8 (0 unchanged, 1 no live entry, 2 entry follows), entry if 2 |
//! | Described | format: u16 ([`DESCRIBE_FORMAT`]), document: bytes (UTF-8 JSON of [`NodeDescription`]) |
//! | Status with configurations (23) | as Status, each shard followed by an opt\<configuration\>: committed: membership, in_force: membership, target count: u16 and that many u32 ids, phase: u8 (0 done, 1 learning, 2 joint, 3 final, 4 releasing) |
//!
//! - mutation: u8 (1 put, 2 delete), key: bytes; a put continues with flags: u8 (bit0 has
//!   content type, bit1 has expiry), expires_at: u64 if bit1, content type: bytes if bit0,
//!   value: bytes. Requests are not validated yet (the node's engine does that and answers
//!   `Invalid`), hence 32-bit lengths throughout.
//! - condition: u8 (0 none, 1 must not exist, 2 must exist, 3 version is, 4 expired
//!   version), then the seq for 3 and 4.
//! - entry: seq: u64, then the engine's entry body ([`tierkv_engine::codec::put_entry_body`]);
//!   answers carry stored entries, which passed the engine's limits when written.
//! - error fields: 1 ConditionFailed key: bytes, condition, actual: opt\<u64\>; 2 Invalid
//!   reason: u8 (1..=7 in [`InvalidReason`] order); 3 Backpressure shard, unflushed_bytes,
//!   limit; 4 NotLeader shard, leader: opt\<u32\>; 5 OutcomeUnknown shard; 6 Closed; 7
//!   NotHosted shard, map_version; 8 Other kind: u8 (1 invalid, 2 conflict, 3 unavailable,
//!   4 fenced, 5 closed, 6 data, 7 internal), message: bytes (UTF-8).
//!
//! # Revisions
//!
//! Kinds are added to format version 1 without changing any existing encoding, so that
//! processes of different versions keep talking during a rolling upgrade; [`REVISION`] names
//! the set of kinds a build knows. Revision 1: kinds 1–4 and 16–20. Revision 2 (design note
//! 0008): request kind 5 `GetIfChanged` (answered like a strong `Get`, but `Unchanged` when
//! the live entry's version is `known`) and response kind 21 `Unchanged`. A node announces
//! its revision in the [`REVISION_HEADER`] of every client-RPC answer; a gateway sends kinds
//! of revision 2 only to nodes that announced it. A node of revision 1 refuses a request (or
//! a whole batch) holding an unknown kind with HTTP 400 before running any of it.
//!
//! Revision 3 (design note 0010) adds request kind 6 `Describe` and response kind 22
//! `Described`, for the admin API: a gateway sends `Describe` alone on `POST /rpc/v1/kv`,
//! never in a batch, and shows a node that refuses it (HTTP 400, an older version) from
//! `Status`. A `Described` whose format this build does not know, or whose document does
//! not parse, does not decode.
//!
//! Revision 4 (design note 0011) adds request kind 7 `Traced`: the W3C trace context of one
//! operation wrapped around its envelope, so that each operation of a batch keeps its own
//! parent span. A gateway wraps operations only for nodes that announced revision 4; the
//! answer is the inner operation's. A nested `Traced`, or one with a zero id, does not decode.
//!
//! Revision 5 (design note 0009 §6–7) adds request kind 8 `StatusWithConfigurations` and
//! response kind 23: the `Status` answer with each shard's configuration (the one committed
//! at the replica's commit point, the one in force, the target and the move phase), the
//! membership encoding of `tierkv_engine::replica::Membership` (genesis configurations
//! resolved by the node). A node asks the shard's serving leader with it before releasing
//! a removed replica that missed the leader's last `Append`; a node of an older revision
//! refuses it (HTTP 400) and the replica is kept. `Status` (kind 4) keeps answering kind 19
//! byte for byte: a [`ShardStatus`] without a configuration.
//!
//! Revision 6 (design note 0014) adds request kind 9 `GetLeased` and response kind 24
//! `Leased`: a strong read (`known` absent) or revalidation (`known` present) that also asks
//! the shard's leader for a read lease; the answer carries the lease in ms (0: refused), its
//! mark (the leader's epoch and commit point at the grant; zeros when refused) and the
//! read's outcome (`Unchanged` only when `known` is the live version). A gateway sends it
//! only to nodes that announced revision 6; to others it sends `GetIfChanged` (revision 2)
//! or a strong `Get`, and holds no lease.
//!
//! [`decode_request`] and [`decode_response`] never panic: short, corrupt or oversized
//! input is a [`DecodeError`].
//!
//! # Code layout
//!
//! This module holds the message types. Batches of operations (one HTTP/2 request for
//! several operations, answers streamed back) are framed in `batch.rs`. The envelope and the field encodings shared by
//! every kind are in `codec.rs`; requests are encoded and decoded in `request.rs`,
//! responses in `response.rs`; [`RemoteError`], its mapping to and from engine errors and
//! its wire form in `error.rs`; the `Describe` document in `describe.rs`.
//!
//! [`DecodeError`]: tierkv_engine::codec::DecodeError
//! [`InvalidReason`]: tierkv_engine::error::InvalidReason

pub mod batch;
mod codec;
pub mod describe;
mod error;
mod request;
mod response;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use tierkv_engine::replica::{ChangePhase, LeaseMark, Membership, NodeId, Role};
use tierkv_engine::shard::ScanPage;
use tierkv_engine::types::{Entry, Epoch, ReadConsistency, SeqNo, ShardId, WriteBatch};

pub use self::describe::{DESCRIBE_FORMAT, NodeDescription};
pub use self::error::RemoteError;
pub use self::request::{decode_request, decode_traced_request, encode_request, encode_traced};
pub use self::response::{decode_response, encode_response};

/// Envelope magic: `"TKVC"` as a little-endian u32.
pub const MAGIC: u32 = u32::from_le_bytes(*b"TKVC");
/// The format version this build writes.
pub const VERSION: u16 = 1;
/// Versions this build reads.
pub const SUPPORTED_VERSIONS: &[u16] = &[VERSION];
/// The revision of format version 1 this build speaks (the kinds it knows; see "Revisions").
pub const REVISION: u16 = 6;
/// The first revision with `GetIfChanged` / `Unchanged`.
pub const REVISION_GET_IF_CHANGED: u16 = 2;
/// The first revision with `Describe` / `Described`.
pub const REVISION_DESCRIBE: u16 = 3;
/// The first revision with the `Traced` wrapper (design note 0011).
pub const REVISION_TRACE_CONTEXT: u16 = 4;
/// The first revision with `StatusWithConfigurations` (design note 0009).
pub const REVISION_CONFIGURATIONS: u16 = 5;
/// The first revision with `GetLeased` / `Leased` (design note 0014).
pub const REVISION_READ_LEASES: u16 = 6;

/// The W3C trace context of one operation, carried by a `Traced` envelope (design note
/// 0011): the caller's span for the operation, which the node's spans take as parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// W3C trace id.
    pub trace_id: [u8; 16],
    /// The caller's span id.
    pub span_id: [u8; 8],
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceContext {
    /// Whether both ids are non-zero (W3C: an all-zero id is invalid).
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.trace_id.iter().any(|b| *b != 0) && self.span_id.iter().any(|b| *b != 0)
    }
}
/// The HTTP response header in which a node announces its [`REVISION`] on every client-RPC
/// answer (absent: revision 1).
pub const REVISION_HEADER: &str = "tierkv-wire-revision";

/// A client operation sent by a gateway to a node.
///
/// Not `#[non_exhaustive]`: the node's server matches it exhaustively, and a new variant is
/// a format change anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Read one key.
    Get {
        /// The shard.
        shard: ShardId,
        /// The engine key.
        key: Bytes,
        /// How fresh the answer must be.
        consistency: ReadConsistency,
    },
    /// Apply a batch (the leader only).
    Write {
        /// The shard.
        shard: ShardId,
        /// The batch.
        batch: WriteBatch,
    },
    /// One page of a prefix scan.
    Scan {
        /// The shard.
        shard: ShardId,
        /// Engine key prefix.
        prefix: Bytes,
        /// Resume after this key.
        start_after: Option<Bytes>,
        /// Most entries to return.
        limit: u32,
        /// How fresh the answer must be.
        consistency: ReadConsistency,
    },
    /// The node's view of itself and its shards.
    Status,
    /// Revalidate a cached entry (revision 2): served like a strong `Get` (a leader under
    /// its lease), answered `Unchanged` when the key's live version is `known`, else
    /// `Got` with the current live entry (or none).
    GetIfChanged {
        /// The shard.
        shard: ShardId,
        /// The engine key.
        key: Bytes,
        /// The version the caller holds.
        known: SeqNo,
    },
    /// `Status` with each shard's configuration (revision 5, design note 0009): answered by
    /// a `Status` whose shards carry [`ShardStatus::configuration`].
    StatusWithConfigurations,
    /// A strong read that also asks for a read lease (revision 6, design note 0014): served
    /// like `GetIfChanged` when `known` is given, like a strong `Get` otherwise, and
    /// answered `Leased` with the lease granted (0 ms: refused).
    GetLeased {
        /// The shard.
        shard: ShardId,
        /// The engine key.
        key: Bytes,
        /// The version the caller holds, if any.
        known: Option<SeqNo>,
    },
    /// The node's description of itself for the admin API (design note 0010).
    Describe {
        /// The newest events to include (capped at [`describe::MAX_EVENTS`]).
        max_events: u32,
    },
}

impl Request {
    /// The first [`REVISION`] that has this request's kind.
    #[must_use]
    pub fn revision(&self) -> u16 {
        match self {
            Self::Get { .. } | Self::Write { .. } | Self::Scan { .. } | Self::Status => 1,
            Self::GetIfChanged { .. } => REVISION_GET_IF_CHANGED,
            Self::Describe { .. } => REVISION_DESCRIBE,
            Self::StatusWithConfigurations => REVISION_CONFIGURATIONS,
            Self::GetLeased { .. } => REVISION_READ_LEASES,
        }
    }
}

/// A node's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Answer to `Get`: the live entry, if any.
    Got(Option<Entry>),
    /// Answer to `Write`.
    Written {
        /// The batch's version.
        seq: SeqNo,
        /// Each op's prior live version when `report_prior` was set, else empty.
        prior: Vec<Option<SeqNo>>,
    },
    /// Answer to `Scan`.
    Scanned(ScanPage),
    /// Answer to `Status` (kind 19), and to `StatusWithConfigurations` (kind 23: every
    /// shard carries its configuration).
    Status(NodeStatus),
    /// Answer to `Describe` (boxed: it is much larger than the other answers).
    Described(Box<NodeDescription>),
    /// The operation failed.
    Error(RemoteError),
    /// Answer to `GetIfChanged`: the key's live version is still the one the caller holds
    /// (revision 2).
    Unchanged,
    /// Answer to `GetLeased` (revision 6): the read lease and the read.
    Leased {
        /// How long, from when the caller sent the request and on its clock, the value read
        /// stays the shard's committed state for this key (0: no lease).
        lease_ms: u32,
        /// The committed state the lease vouches for (the leader's epoch and commit point);
        /// every key read under a lease of the same mark stays current until the latest such
        /// lease ends. Zeros when refused.
        mark: LeaseMark,
        /// The read.
        read: LeasedRead,
    },
}

/// The read of a [`Response::Leased`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeasedRead {
    /// The caller's known version is the live one.
    Unchanged,
    /// The key's live entry, if any.
    Got(Option<Entry>),
}

/// A node's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The answering node.
    pub node: NodeId,
    /// Version of the shard map the node runs under.
    pub map_version: u64,
    /// The shards it hosts.
    pub shards: Vec<ShardStatus>,
}

/// One hosted shard's replication state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStatus {
    /// The shard.
    pub shard: ShardId,
    /// This replica's role.
    pub role: ReplicaRole,
    /// The epoch it promised or leads.
    pub epoch: Epoch,
    /// The leader it knows of (itself when leading).
    pub leader: Option<NodeId>,
    /// Highest seq known committed.
    pub commit_seq: SeqNo,
    /// Last seq in its log.
    pub last_seq: SeqNo,
    /// Flushed prefix of its latest manifest.
    pub flushed_seq: SeqNo,
    /// Its configurations, in answers to `StatusWithConfigurations` only (revision 5).
    pub configuration: Option<ShardConfiguration>,
}

/// A replica's configurations (design note 0009): what a removed replica's node asks the
/// shard's serving leader before releasing it, and what the admin API shows of a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardConfiguration {
    /// The configuration in force at the replica's commit point (committed).
    pub committed: Membership,
    /// The configuration in force at the end of its log (committed or not).
    pub in_force: Membership,
    /// The target replica set it was given (empty: none yet).
    pub target: Vec<NodeId>,
    /// Where the move stands (meaningful at a serving leader).
    pub phase: ChangePhase,
}

/// Role of a replica, as reported on the wire (mirrors [`Role`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaRole {
    /// Follows a leader (or waits for one).
    Follower,
    /// Taking over.
    Candidate,
    /// Leader whose barrier is not committed yet: does not serve.
    Recovering,
    /// Serving leader.
    Leader,
}

impl From<Role> for ReplicaRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Follower => Self::Follower,
            Role::Candidate => Self::Candidate,
            Role::Recovering => Self::Recovering,
            Role::Leader => Self::Leader,
        }
    }
}
