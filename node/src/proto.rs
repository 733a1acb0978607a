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
//! | 6 | u8 | kind: requests 1 Get, 2 Write, 3 Scan, 4 Status; responses 16 Got, 17 Written, 18 Scanned, 19 Status, 20 Error |
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
//! | Got | opt\<entry\> |
//! | Written | seq, count, priors: opt\<u64\> each |
//! | Scanned | count, entries, next: opt\<bytes\> |
//! | Status | node, map_version, count, shards: shard, role: u8 (1 follower, 2 candidate, 3 recovering, 4 leader), epoch, leader: opt\<u32\>, commit_seq, last_seq, flushed_seq |
//! | Error | code: u8, then the code's fields (see [`RemoteError`]; codes 1–8 in declaration order) |
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
//! [`decode_request`] and [`decode_response`] never panic: short, corrupt or oversized
//! input is a [`DecodeError`].

use bytes::Bytes;
use tierkv_engine::codec::{
    Dec, DecodeError, Enc, get_entry_body, put_entry_body, split_crc_trailer,
};
use tierkv_engine::error::InvalidReason;
use tierkv_engine::replica::{NodeId, Role};
use tierkv_engine::shard::ScanPage;
use tierkv_engine::types::{
    Condition, Entry, Epoch, Mutation, ReadConsistency, SeqNo, ShardId, WriteBatch, WriteOp,
};
use tierkv_engine::{Error, ErrorKind};

/// Envelope magic: `"TKVC"` as a little-endian u32.
pub const MAGIC: u32 = u32::from_le_bytes(*b"TKVC");
/// The format version this build writes.
pub const VERSION: u16 = 1;
/// Versions this build reads.
pub const SUPPORTED_VERSIONS: &[u16] = &[VERSION];

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
    /// Answer to `Status`.
    Status(NodeStatus),
    /// The operation failed.
    Error(RemoteError),
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

/// An error a node reports for one operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// A write precondition failed.
    #[error("condition {expected:?} failed for key {key:?}: current version {actual:?}")]
    ConditionFailed {
        /// The key.
        key: Bytes,
        /// The condition.
        expected: Condition,
        /// The key's current version.
        actual: Option<SeqNo>,
    },
    /// The request breaks a rule.
    #[error("invalid request: {reason}")]
    Invalid {
        /// Which rule.
        reason: InvalidReason,
    },
    /// Unflushed data reached its bound.
    #[error("shard {shard}: {unflushed_bytes} unflushed bytes reached the bound of {limit}")]
    Backpressure {
        /// The shard.
        shard: ShardId,
        /// Unflushed bytes.
        unflushed_bytes: u64,
        /// The bound.
        limit: u64,
    },
    /// This replica does not lead the shard; `leader` is the one it last heard from.
    #[error("shard {shard}: not the leader (last known leader: {leader:?})")]
    NotLeader {
        /// The shard.
        shard: ShardId,
        /// The leader's node id, if known.
        leader: Option<u32>,
    },
    /// The write may or may not take effect.
    #[error("shard {shard}: outcome of the write is unknown")]
    OutcomeUnknown {
        /// The shard.
        shard: ShardId,
    },
    /// The node or shard is shutting down.
    #[error("shard is closed")]
    Closed,
    /// This node does not host the shard under shard map `map_version`.
    #[error("shard {shard} is not hosted here under shard map version {map_version}")]
    NotHosted {
        /// The shard.
        shard: ShardId,
        /// The node's shard map version.
        map_version: u64,
    },
    /// Any other engine error, with its class and message.
    #[error("{message}")]
    Other {
        /// What the caller should do.
        kind: ErrorKind,
        /// The node's description.
        message: String,
    },
}

impl RemoteError {
    /// The wire form of an engine error. Variants the gateway distinguishes travel as
    /// themselves; every other one as [`RemoteError::Other`] with its kind and message.
    #[must_use]
    pub fn from_engine(e: &Error) -> Self {
        match e {
            Error::ConditionFailed {
                key,
                expected,
                actual,
            } => Self::ConditionFailed {
                key: key.clone(),
                expected: *expected,
                actual: *actual,
            },
            Error::Invalid { reason } => Self::Invalid { reason: *reason },
            Error::Backpressure {
                shard,
                unflushed_bytes,
                limit,
            } => Self::Backpressure {
                shard: *shard,
                unflushed_bytes: *unflushed_bytes,
                limit: *limit,
            },
            Error::NotLeader { shard, leader } => Self::NotLeader {
                shard: *shard,
                leader: *leader,
            },
            Error::OutcomeUnknown { shard } => Self::OutcomeUnknown { shard: *shard },
            Error::Closed => Self::Closed,
            Error::Io { .. }
            | Error::ObjectStore { .. }
            | Error::Corrupt { .. }
            | Error::UnsupportedVersion { .. }
            | Error::WalPoisoned { .. }
            | Error::Fenced { .. }
            | Error::Config { .. }
            | Error::Remote { .. }
            | Error::Invariant { .. } => Self::Other {
                kind: e.kind(),
                message: e.to_string(),
            },
        }
    }

    /// The engine error a gateway reports for this answer from `node`, whose shard map is
    /// `current_map_version`.
    #[must_use]
    pub fn into_engine(self, node: NodeId, current_map_version: u64) -> Error {
        match self {
            Self::ConditionFailed {
                key,
                expected,
                actual,
            } => Error::ConditionFailed {
                key,
                expected,
                actual,
            },
            Self::Invalid { reason } => Error::Invalid { reason },
            Self::Backpressure {
                shard,
                unflushed_bytes,
                limit,
            } => Error::Backpressure {
                shard,
                unflushed_bytes,
                limit,
            },
            Self::NotLeader { shard, leader } => Error::NotLeader { shard, leader },
            Self::OutcomeUnknown { shard } => Error::OutcomeUnknown { shard },
            Self::Closed => Error::Closed,
            Self::NotHosted { shard, map_version } => Error::Remote {
                node: node.0,
                kind: ErrorKind::Unavailable,
                message: format!(
                    "shard {shard} is not hosted under the node's shard map version \
                     {map_version} (gateway's: {current_map_version})"
                ),
            },
            Self::Other { kind, message } => Error::Remote {
                node: node.0,
                kind,
                message,
            },
        }
    }
}

const REQ_GET: u8 = 1;
const REQ_WRITE: u8 = 2;
const REQ_SCAN: u8 = 3;
const REQ_STATUS: u8 = 4;
const RESP_GOT: u8 = 16;
const RESP_WRITTEN: u8 = 17;
const RESP_SCANNED: u8 = 18;
const RESP_STATUS: u8 = 19;
const RESP_ERROR: u8 = 20;

/// Smallest encoded write op: delete tag, empty key, no condition.
const MIN_OP_LEN: usize = 6;
/// Smallest encoded prior version.
const MIN_PRIOR_LEN: usize = 1;
/// Smallest encoded entry: seq and a tombstone body with a one-byte key.
const MIN_ENTRY_LEN: usize = 12;
/// Smallest encoded shard status.
const MIN_SHARD_STATUS_LEN: usize = 38;

fn header(kind: u8) -> Enc {
    let mut enc = Enc::with_capacity(64);
    enc.u32(MAGIC);
    enc.u16(VERSION);
    enc.u8(kind);
    enc
}

fn finish(mut enc: Enc) -> Bytes {
    enc.crc_trailer();
    enc.finish()
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_opt_u64(enc: &mut Enc, v: Option<u64>) {
    match v {
        Some(v) => {
            enc.u8(1);
            enc.u64(v);
        }
        None => enc.u8(0),
    }
}

fn put_opt_bytes(enc: &mut Enc, v: Option<&Bytes>) {
    match v {
        Some(b) => {
            enc.u8(1);
            enc.bytes32(b);
        }
        None => enc.u8(0),
    }
}

fn put_consistency(enc: &mut Enc, c: ReadConsistency) {
    enc.u8(match c {
        ReadConsistency::Strong => 0,
        ReadConsistency::Eventual => 1,
    });
}

fn put_condition(enc: &mut Enc, c: Condition) {
    match c {
        Condition::None => enc.u8(0),
        Condition::MustNotExist => enc.u8(1),
        Condition::MustExist => enc.u8(2),
        Condition::VersionIs(s) => {
            enc.u8(3);
            enc.u64(s.0);
        }
        Condition::ExpiredVersion(s) => {
            enc.u8(4);
            enc.u64(s.0);
        }
    }
}

fn put_mutation(enc: &mut Enc, m: &Mutation) {
    match m {
        Mutation::Put {
            key,
            value,
            content_type,
            expires_at,
        } => {
            enc.u8(1);
            enc.bytes32(key);
            let flags = u8::from(content_type.is_some()) | (u8::from(expires_at.is_some()) << 1);
            enc.u8(flags);
            if let Some(t) = expires_at {
                enc.u64(*t);
            }
            if let Some(ct) = content_type {
                enc.bytes32(ct);
            }
            enc.bytes32(value);
        }
        Mutation::Delete { key } => {
            enc.u8(2);
            enc.bytes32(key);
        }
    }
}

fn put_entry(enc: &mut Enc, e: &Entry) {
    enc.u64(e.seq.0);
    put_entry_body(enc, &e.key, &e.kind, e.expires_at);
}

fn invalid_code(r: InvalidReason) -> u8 {
    match r {
        InvalidReason::KeyEmpty => 1,
        InvalidReason::KeyTooLong => 2,
        InvalidReason::ValueTooLarge => 3,
        InvalidReason::ContentTypeTooLong => 4,
        InvalidReason::BatchEmpty => 5,
        InvalidReason::DuplicateKey => 6,
        InvalidReason::ZeroLimit => 7,
    }
}

fn kind_code(k: ErrorKind) -> u8 {
    match k {
        ErrorKind::Invalid => 1,
        ErrorKind::Conflict => 2,
        ErrorKind::Unavailable => 3,
        ErrorKind::Fenced => 4,
        ErrorKind::Closed => 5,
        ErrorKind::Data => 6,
        ErrorKind::Internal => 7,
        // `ErrorKind` is `#[non_exhaustive]` in another crate; a kind added later travels as
        // internal until it gets a code (and the format a new version).
        _ => 7,
    }
}

fn role_code(r: ReplicaRole) -> u8 {
    match r {
        ReplicaRole::Follower => 1,
        ReplicaRole::Candidate => 2,
        ReplicaRole::Recovering => 3,
        ReplicaRole::Leader => 4,
    }
}

fn put_error(enc: &mut Enc, e: &RemoteError) {
    match e {
        RemoteError::ConditionFailed {
            key,
            expected,
            actual,
        } => {
            enc.u8(1);
            enc.bytes32(key);
            put_condition(enc, *expected);
            put_opt_u64(enc, actual.map(|s| s.0));
        }
        RemoteError::Invalid { reason } => {
            enc.u8(2);
            enc.u8(invalid_code(*reason));
        }
        RemoteError::Backpressure {
            shard,
            unflushed_bytes,
            limit,
        } => {
            enc.u8(3);
            enc.u32(shard.0);
            enc.u64(*unflushed_bytes);
            enc.u64(*limit);
        }
        RemoteError::NotLeader { shard, leader } => {
            enc.u8(4);
            enc.u32(shard.0);
            match leader {
                Some(l) => {
                    enc.u8(1);
                    enc.u32(*l);
                }
                None => enc.u8(0),
            }
        }
        RemoteError::OutcomeUnknown { shard } => {
            enc.u8(5);
            enc.u32(shard.0);
        }
        RemoteError::Closed => enc.u8(6),
        RemoteError::NotHosted { shard, map_version } => {
            enc.u8(7);
            enc.u32(shard.0);
            enc.u64(*map_version);
        }
        RemoteError::Other { kind, message } => {
            enc.u8(8);
            enc.u8(kind_code(*kind));
            enc.bytes32(message.as_bytes());
        }
    }
}

/// Encodes a request.
#[must_use]
pub fn encode_request(req: &Request) -> Bytes {
    match req {
        Request::Get {
            shard,
            key,
            consistency,
        } => {
            let mut enc = header(REQ_GET);
            enc.u32(shard.0);
            enc.bytes32(key);
            put_consistency(&mut enc, *consistency);
            finish(enc)
        }
        Request::Write { shard, batch } => {
            let mut enc = header(REQ_WRITE);
            enc.u32(shard.0);
            enc.u8(u8::from(batch.report_prior));
            enc.u32(len32(batch.ops.len()));
            for op in &batch.ops {
                put_mutation(&mut enc, &op.mutation);
                put_condition(&mut enc, op.condition);
            }
            finish(enc)
        }
        Request::Scan {
            shard,
            prefix,
            start_after,
            limit,
            consistency,
        } => {
            let mut enc = header(REQ_SCAN);
            enc.u32(shard.0);
            enc.bytes32(prefix);
            put_opt_bytes(&mut enc, start_after.as_ref());
            enc.u32(*limit);
            put_consistency(&mut enc, *consistency);
            finish(enc)
        }
        Request::Status => finish(header(REQ_STATUS)),
    }
}

/// Encodes a response.
#[must_use]
pub fn encode_response(resp: &Response) -> Bytes {
    match resp {
        Response::Got(entry) => {
            let mut enc = header(RESP_GOT);
            match entry {
                Some(e) => {
                    enc.u8(1);
                    put_entry(&mut enc, e);
                }
                None => enc.u8(0),
            }
            finish(enc)
        }
        Response::Written { seq, prior } => {
            let mut enc = header(RESP_WRITTEN);
            enc.u64(seq.0);
            enc.u32(len32(prior.len()));
            for p in prior {
                put_opt_u64(&mut enc, p.map(|s| s.0));
            }
            finish(enc)
        }
        Response::Scanned(page) => {
            let mut enc = header(RESP_SCANNED);
            enc.u32(len32(page.entries.len()));
            for e in &page.entries {
                put_entry(&mut enc, e);
            }
            put_opt_bytes(&mut enc, page.next.as_ref());
            finish(enc)
        }
        Response::Status(st) => {
            let mut enc = header(RESP_STATUS);
            enc.u32(st.node.0);
            enc.u64(st.map_version);
            enc.u32(len32(st.shards.len()));
            for s in &st.shards {
                enc.u32(s.shard.0);
                enc.u8(role_code(s.role));
                enc.u64(s.epoch.0);
                match s.leader {
                    Some(l) => {
                        enc.u8(1);
                        enc.u32(l.0);
                    }
                    None => enc.u8(0),
                }
                enc.u64(s.commit_seq.0);
                enc.u64(s.last_seq.0);
                enc.u64(s.flushed_seq.0);
            }
            finish(enc)
        }
        Response::Error(e) => {
            let mut enc = header(RESP_ERROR);
            put_error(&mut enc, e);
            finish(enc)
        }
    }
}

/// Checks the trailer and envelope; returns the body (without the trailer), positioned
/// after the kind byte, and the kind.
fn open(buf: &Bytes) -> Result<(Bytes, usize, u8), DecodeError> {
    let body = split_crc_trailer(buf)?;
    let src = buf.slice(..body.len());
    let mut d = Dec::new(&src);
    if d.u32()? != MAGIC {
        return Err(DecodeError {
            what: "bad magic",
            offset: 0,
        });
    }
    if !SUPPORTED_VERSIONS.contains(&d.u16()?) {
        return Err(DecodeError {
            what: "unsupported message version",
            offset: 4,
        });
    }
    let kind = d.u8()?;
    let pos = d.pos();
    Ok((src, pos, kind))
}

/// A decoder over `src` positioned at `pos`.
fn dec_at(src: &Bytes, pos: usize) -> Result<Dec<'_>, DecodeError> {
    let mut d = Dec::new(src);
    d.take(pos)?;
    Ok(d)
}

/// Reads `u32` length + bytes as a zero-copy slice of `src`.
fn get_bytes(d: &mut Dec<'_>, src: &Bytes) -> Result<Bytes, DecodeError> {
    let start = d.pos() + 4;
    let b = d.bytes32()?;
    Ok(src.slice(start..start + b.len()))
}

fn get_flag(d: &mut Dec<'_>) -> Result<bool, DecodeError> {
    match d.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(d.err("bad flag byte")),
    }
}

fn get_opt_u64(d: &mut Dec<'_>) -> Result<Option<u64>, DecodeError> {
    if get_flag(d)? {
        Ok(Some(d.u64()?))
    } else {
        Ok(None)
    }
}

fn get_opt_u32(d: &mut Dec<'_>) -> Result<Option<u32>, DecodeError> {
    if get_flag(d)? {
        Ok(Some(d.u32()?))
    } else {
        Ok(None)
    }
}

fn get_opt_bytes(d: &mut Dec<'_>, src: &Bytes) -> Result<Option<Bytes>, DecodeError> {
    if get_flag(d)? {
        Ok(Some(get_bytes(d, src)?))
    } else {
        Ok(None)
    }
}

/// Reads a count of items at least `min_len` bytes each, bounded by the input left.
fn get_count(d: &mut Dec<'_>, min_len: usize) -> Result<usize, DecodeError> {
    let n = usize::try_from(d.u32()?).map_err(|_| d.err("length overflow"))?;
    if n > d.remaining() / min_len {
        return Err(d.err("count exceeds input"));
    }
    Ok(n)
}

fn get_consistency(d: &mut Dec<'_>) -> Result<ReadConsistency, DecodeError> {
    match d.u8()? {
        0 => Ok(ReadConsistency::Strong),
        1 => Ok(ReadConsistency::Eventual),
        _ => Err(d.err("unknown consistency")),
    }
}

fn get_condition(d: &mut Dec<'_>) -> Result<Condition, DecodeError> {
    Ok(match d.u8()? {
        0 => Condition::None,
        1 => Condition::MustNotExist,
        2 => Condition::MustExist,
        3 => Condition::VersionIs(SeqNo(d.u64()?)),
        4 => Condition::ExpiredVersion(SeqNo(d.u64()?)),
        _ => return Err(d.err("unknown condition")),
    })
}

fn get_mutation(d: &mut Dec<'_>, src: &Bytes) -> Result<Mutation, DecodeError> {
    match d.u8()? {
        1 => {
            let key = get_bytes(d, src)?;
            let flags = d.u8()?;
            if flags & !0b11 != 0 {
                return Err(d.err("unknown mutation flags"));
            }
            let expires_at = if flags & 0b10 != 0 {
                Some(d.u64()?)
            } else {
                None
            };
            let content_type = if flags & 0b01 != 0 {
                Some(get_bytes(d, src)?)
            } else {
                None
            };
            let value = get_bytes(d, src)?;
            Ok(Mutation::Put {
                key,
                value,
                content_type,
                expires_at,
            })
        }
        2 => Ok(Mutation::Delete {
            key: get_bytes(d, src)?,
        }),
        _ => Err(d.err("unknown mutation")),
    }
}

fn get_entry(d: &mut Dec<'_>, src: &Bytes) -> Result<Entry, DecodeError> {
    let seq = SeqNo(d.u64()?);
    let b = get_entry_body(d, src)?;
    Ok(Entry {
        key: b.key,
        seq,
        kind: b.kind,
        expires_at: b.expires_at,
    })
}

fn get_invalid(d: &mut Dec<'_>) -> Result<InvalidReason, DecodeError> {
    Ok(match d.u8()? {
        1 => InvalidReason::KeyEmpty,
        2 => InvalidReason::KeyTooLong,
        3 => InvalidReason::ValueTooLarge,
        4 => InvalidReason::ContentTypeTooLong,
        5 => InvalidReason::BatchEmpty,
        6 => InvalidReason::DuplicateKey,
        7 => InvalidReason::ZeroLimit,
        _ => return Err(d.err("unknown invalid reason")),
    })
}

fn get_kind(d: &mut Dec<'_>) -> Result<ErrorKind, DecodeError> {
    Ok(match d.u8()? {
        1 => ErrorKind::Invalid,
        2 => ErrorKind::Conflict,
        3 => ErrorKind::Unavailable,
        4 => ErrorKind::Fenced,
        5 => ErrorKind::Closed,
        6 => ErrorKind::Data,
        7 => ErrorKind::Internal,
        _ => return Err(d.err("unknown error kind")),
    })
}

fn get_role(d: &mut Dec<'_>) -> Result<ReplicaRole, DecodeError> {
    Ok(match d.u8()? {
        1 => ReplicaRole::Follower,
        2 => ReplicaRole::Candidate,
        3 => ReplicaRole::Recovering,
        4 => ReplicaRole::Leader,
        _ => return Err(d.err("unknown role")),
    })
}

fn get_error(d: &mut Dec<'_>, src: &Bytes) -> Result<RemoteError, DecodeError> {
    Ok(match d.u8()? {
        1 => RemoteError::ConditionFailed {
            key: get_bytes(d, src)?,
            expected: get_condition(d)?,
            actual: get_opt_u64(d)?.map(SeqNo),
        },
        2 => RemoteError::Invalid {
            reason: get_invalid(d)?,
        },
        3 => RemoteError::Backpressure {
            shard: ShardId(d.u32()?),
            unflushed_bytes: d.u64()?,
            limit: d.u64()?,
        },
        4 => RemoteError::NotLeader {
            shard: ShardId(d.u32()?),
            leader: get_opt_u32(d)?,
        },
        5 => RemoteError::OutcomeUnknown {
            shard: ShardId(d.u32()?),
        },
        6 => RemoteError::Closed,
        7 => RemoteError::NotHosted {
            shard: ShardId(d.u32()?),
            map_version: d.u64()?,
        },
        8 => {
            let kind = get_kind(d)?;
            let at = d.pos();
            let message = std::str::from_utf8(d.bytes32()?)
                .map_err(|_| DecodeError {
                    what: "message is not UTF-8",
                    offset: at,
                })?
                .to_owned();
            RemoteError::Other { kind, message }
        }
        _ => return Err(d.err("unknown error code")),
    })
}

/// Decodes a request; never panics.
pub fn decode_request(buf: &Bytes) -> Result<Request, DecodeError> {
    let (src, pos, kind) = open(buf)?;
    let mut d = dec_at(&src, pos)?;
    let req = match kind {
        REQ_GET => Request::Get {
            shard: ShardId(d.u32()?),
            key: get_bytes(&mut d, &src)?,
            consistency: get_consistency(&mut d)?,
        },
        REQ_WRITE => {
            let shard = ShardId(d.u32()?);
            let report_prior = get_flag(&mut d)?;
            let n = get_count(&mut d, MIN_OP_LEN)?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(WriteOp {
                    mutation: get_mutation(&mut d, &src)?,
                    condition: get_condition(&mut d)?,
                });
            }
            Request::Write {
                shard,
                batch: WriteBatch { ops, report_prior },
            }
        }
        REQ_SCAN => Request::Scan {
            shard: ShardId(d.u32()?),
            prefix: get_bytes(&mut d, &src)?,
            start_after: get_opt_bytes(&mut d, &src)?,
            limit: d.u32()?,
            consistency: get_consistency(&mut d)?,
        },
        REQ_STATUS => Request::Status,
        _ => {
            return Err(DecodeError {
                what: "unknown request kind",
                offset: 6,
            });
        }
    };
    d.finish()?;
    Ok(req)
}

/// Decodes a response; never panics.
pub fn decode_response(buf: &Bytes) -> Result<Response, DecodeError> {
    let (src, pos, kind) = open(buf)?;
    let mut d = dec_at(&src, pos)?;
    let resp = match kind {
        RESP_GOT => Response::Got(if get_flag(&mut d)? {
            Some(get_entry(&mut d, &src)?)
        } else {
            None
        }),
        RESP_WRITTEN => {
            let seq = SeqNo(d.u64()?);
            let n = get_count(&mut d, MIN_PRIOR_LEN)?;
            let mut prior = Vec::with_capacity(n);
            for _ in 0..n {
                prior.push(get_opt_u64(&mut d)?.map(SeqNo));
            }
            Response::Written { seq, prior }
        }
        RESP_SCANNED => {
            let n = get_count(&mut d, MIN_ENTRY_LEN)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(get_entry(&mut d, &src)?);
            }
            let next = get_opt_bytes(&mut d, &src)?;
            Response::Scanned(ScanPage { entries, next })
        }
        RESP_STATUS => {
            let node = NodeId(d.u32()?);
            let map_version = d.u64()?;
            let n = get_count(&mut d, MIN_SHARD_STATUS_LEN)?;
            let mut shards = Vec::with_capacity(n);
            for _ in 0..n {
                shards.push(ShardStatus {
                    shard: ShardId(d.u32()?),
                    role: get_role(&mut d)?,
                    epoch: Epoch(d.u64()?),
                    leader: get_opt_u32(&mut d)?.map(NodeId),
                    commit_seq: SeqNo(d.u64()?),
                    last_seq: SeqNo(d.u64()?),
                    flushed_seq: SeqNo(d.u64()?),
                });
            }
            Response::Status(NodeStatus {
                node,
                map_version,
                shards,
            })
        }
        RESP_ERROR => Response::Error(get_error(&mut d, &src)?),
        _ => {
            return Err(DecodeError {
                what: "unknown response kind",
                offset: 6,
            });
        }
    };
    d.finish()?;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use tierkv_engine::types::EntryKind;

    use super::*;

    fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
        vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    /// Keys of stored entries obey the engine's limits (1..=MAX_KEY_LEN bytes).
    fn entry_key() -> impl Strategy<Value = Bytes> {
        vec(any::<u8>(), 1..24).prop_map(Bytes::from)
    }

    fn consistency() -> impl Strategy<Value = ReadConsistency> {
        prop_oneof![
            Just(ReadConsistency::Strong),
            Just(ReadConsistency::Eventual)
        ]
    }

    fn condition() -> impl Strategy<Value = Condition> {
        prop_oneof![
            Just(Condition::None),
            Just(Condition::MustNotExist),
            Just(Condition::MustExist),
            any::<u64>().prop_map(|s| Condition::VersionIs(SeqNo(s))),
            any::<u64>().prop_map(|s| Condition::ExpiredVersion(SeqNo(s))),
        ]
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (
                bytes(24),
                bytes(40),
                proptest::option::of(bytes(300)),
                proptest::option::of(any::<u64>())
            )
                .prop_map(|(key, value, content_type, expires_at)| Mutation::Put {
                    key,
                    value,
                    content_type,
                    expires_at,
                }),
            bytes(24).prop_map(|key| Mutation::Delete { key }),
        ]
    }

    fn entry() -> impl Strategy<Value = Entry> {
        let kind = prop_oneof![
            Just(EntryKind::Tombstone),
            (bytes(40), proptest::option::of(bytes(32))).prop_map(|(value, content_type)| {
                EntryKind::Put {
                    value,
                    content_type,
                }
            }),
        ];
        (
            entry_key(),
            any::<u64>(),
            kind,
            proptest::option::of(any::<u64>()),
        )
            .prop_map(|(key, seq, kind, expires_at)| Entry {
                key,
                seq: SeqNo(seq),
                kind,
                expires_at,
            })
    }

    fn shard() -> impl Strategy<Value = ShardId> {
        any::<u32>().prop_map(ShardId)
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (shard(), bytes(24), consistency()).prop_map(|(shard, key, consistency)| {
                Request::Get {
                    shard,
                    key,
                    consistency,
                }
            }),
            (shard(), vec((mutation(), condition()), 0..6), any::<bool>()).prop_map(
                |(shard, ops, report_prior)| Request::Write {
                    shard,
                    batch: WriteBatch {
                        ops: ops
                            .into_iter()
                            .map(|(mutation, condition)| WriteOp {
                                mutation,
                                condition,
                            })
                            .collect(),
                        report_prior,
                    },
                }
            ),
            (
                shard(),
                bytes(16),
                proptest::option::of(bytes(16)),
                any::<u32>(),
                consistency()
            )
                .prop_map(|(shard, prefix, start_after, limit, consistency)| {
                    Request::Scan {
                        shard,
                        prefix,
                        start_after,
                        limit,
                        consistency,
                    }
                }),
            Just(Request::Status),
        ]
    }

    fn role() -> impl Strategy<Value = ReplicaRole> {
        prop_oneof![
            Just(ReplicaRole::Follower),
            Just(ReplicaRole::Candidate),
            Just(ReplicaRole::Recovering),
            Just(ReplicaRole::Leader),
        ]
    }

    fn shard_status() -> impl Strategy<Value = ShardStatus> {
        (
            shard(),
            role(),
            any::<u64>(),
            proptest::option::of(any::<u32>()),
            any::<[u64; 3]>(),
        )
            .prop_map(|(shard, role, epoch, leader, [c, l, f])| ShardStatus {
                shard,
                role,
                epoch: Epoch(epoch),
                leader: leader.map(NodeId),
                commit_seq: SeqNo(c),
                last_seq: SeqNo(l),
                flushed_seq: SeqNo(f),
            })
    }

    fn invalid_reason() -> impl Strategy<Value = InvalidReason> {
        prop_oneof![
            Just(InvalidReason::KeyEmpty),
            Just(InvalidReason::KeyTooLong),
            Just(InvalidReason::ValueTooLarge),
            Just(InvalidReason::ContentTypeTooLong),
            Just(InvalidReason::BatchEmpty),
            Just(InvalidReason::DuplicateKey),
            Just(InvalidReason::ZeroLimit),
        ]
    }

    fn error_kind() -> impl Strategy<Value = ErrorKind> {
        prop_oneof![
            Just(ErrorKind::Invalid),
            Just(ErrorKind::Conflict),
            Just(ErrorKind::Unavailable),
            Just(ErrorKind::Fenced),
            Just(ErrorKind::Closed),
            Just(ErrorKind::Data),
            Just(ErrorKind::Internal),
        ]
    }

    fn remote_error() -> impl Strategy<Value = RemoteError> {
        prop_oneof![
            (bytes(24), condition(), proptest::option::of(any::<u64>())).prop_map(
                |(key, expected, actual)| RemoteError::ConditionFailed {
                    key,
                    expected,
                    actual: actual.map(SeqNo),
                }
            ),
            invalid_reason().prop_map(|reason| RemoteError::Invalid { reason }),
            (shard(), any::<u64>(), any::<u64>()).prop_map(|(shard, unflushed_bytes, limit)| {
                RemoteError::Backpressure {
                    shard,
                    unflushed_bytes,
                    limit,
                }
            }),
            (shard(), proptest::option::of(any::<u32>()))
                .prop_map(|(shard, leader)| RemoteError::NotLeader { shard, leader }),
            shard().prop_map(|shard| RemoteError::OutcomeUnknown { shard }),
            Just(RemoteError::Closed),
            (shard(), any::<u64>())
                .prop_map(|(shard, map_version)| RemoteError::NotHosted { shard, map_version }),
            (error_kind(), ".{0,40}")
                .prop_map(|(kind, message)| RemoteError::Other { kind, message }),
        ]
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            proptest::option::of(entry()).prop_map(Response::Got),
            (any::<u64>(), vec(proptest::option::of(any::<u64>()), 0..8)).prop_map(
                |(seq, prior)| Response::Written {
                    seq: SeqNo(seq),
                    prior: prior.into_iter().map(|p| p.map(SeqNo)).collect(),
                }
            ),
            (vec(entry(), 0..5), proptest::option::of(entry_key()))
                .prop_map(|(entries, next)| Response::Scanned(ScanPage { entries, next })),
            (any::<u32>(), any::<u64>(), vec(shard_status(), 0..5)).prop_map(
                |(node, map_version, shards)| Response::Status(NodeStatus {
                    node: NodeId(node),
                    map_version,
                    shards,
                })
            ),
            remote_error().prop_map(Response::Error),
        ]
    }

    proptest! {
        #[test]
        fn every_request_round_trips(req in request()) {
            let b = encode_request(&req);
            prop_assert_eq!(decode_request(&b), Ok(req));
            // A request is not a response.
            prop_assert!(decode_response(&b).is_err());
        }

        #[test]
        fn every_response_round_trips(resp in response()) {
            let b = encode_response(&resp);
            prop_assert_eq!(decode_response(&b), Ok(resp));
            prop_assert!(decode_request(&b).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..512)) {
            let b = Bytes::from(data);
            // Random bytes essentially never carry a valid checksum; the point is no panic.
            let _ = decode_request(&b);
            let _ = decode_response(&b);
        }

        #[test]
        fn valid_crc_over_garbage_never_panics(kind in any::<u8>(), data in vec(any::<u8>(), 0..256)) {
            // Past the checksum the field decoders see arbitrary bytes.
            let mut enc = header(kind);
            enc.raw(&data);
            let b = finish(enc);
            let _ = decode_request(&b);
            let _ = decode_response(&b);
        }
    }

    /// One message of each kind, with optional fields present.
    fn samples() -> (Vec<Request>, Vec<Response>) {
        let entry = Entry {
            key: Bytes::from_static(b"key"),
            seq: SeqNo(9),
            kind: EntryKind::Put {
                value: Bytes::from_static(b"value"),
                content_type: Some(Bytes::from_static(b"text/plain")),
            },
            expires_at: Some(1_700_000_000_000),
        };
        let requests = vec![
            Request::Get {
                shard: ShardId(3),
                key: Bytes::from_static(b"k"),
                consistency: ReadConsistency::Eventual,
            },
            Request::Write {
                shard: ShardId(3),
                batch: WriteBatch::new()
                    .put(&b"a"[..], &b"1"[..])
                    .delete(&b"b"[..])
                    .op(
                        Mutation::Put {
                            key: Bytes::from_static(b"c"),
                            value: Bytes::from_static(b"3"),
                            content_type: Some(Bytes::from_static(b"x/y")),
                            expires_at: Some(5),
                        },
                        Condition::VersionIs(SeqNo(4)),
                    )
                    .reporting_prior(),
            },
            Request::Scan {
                shard: ShardId(1),
                prefix: Bytes::from_static(b"p/"),
                start_after: Some(Bytes::from_static(b"p/a")),
                limit: 100,
                consistency: ReadConsistency::Strong,
            },
            Request::Status,
        ];
        let responses = vec![
            Response::Got(Some(entry.clone())),
            Response::Written {
                seq: SeqNo(10),
                prior: vec![Some(SeqNo(2)), None],
            },
            Response::Scanned(ScanPage {
                entries: vec![entry],
                next: Some(Bytes::from_static(b"key")),
            }),
            Response::Status(NodeStatus {
                node: NodeId(2),
                map_version: 7,
                shards: vec![ShardStatus {
                    shard: ShardId(0),
                    role: ReplicaRole::Leader,
                    epoch: Epoch(3),
                    leader: Some(NodeId(2)),
                    commit_seq: SeqNo(5),
                    last_seq: SeqNo(6),
                    flushed_seq: SeqNo(1),
                }],
            }),
            Response::Error(RemoteError::ConditionFailed {
                key: Bytes::from_static(b"k"),
                expected: Condition::MustNotExist,
                actual: Some(SeqNo(1)),
            }),
            Response::Error(RemoteError::Other {
                kind: ErrorKind::Data,
                message: "corrupt segment".to_owned(),
            }),
        ];
        (requests, responses)
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error() {
        let (requests, responses) = samples();
        let encoded: Vec<(Bytes, bool)> = requests
            .iter()
            .map(|r| (encode_request(r), true))
            .chain(responses.iter().map(|r| (encode_response(r), false)))
            .collect();
        for (b, is_request) in encoded {
            let decode = |x: &Bytes| {
                if is_request {
                    decode_request(x).map(drop)
                } else {
                    decode_response(x).map(drop)
                }
            };
            assert!(decode(&b).is_ok());
            for cut in 0..b.len() {
                assert!(decode(&b.slice(..cut)).is_err(), "cut at {cut} of {b:02x?}");
            }
            for byte in 0..b.len() {
                for bit in 0..8 {
                    let mut v = b.to_vec();
                    v[byte] ^= 1 << bit;
                    assert!(
                        decode(&Bytes::from(v)).is_err(),
                        "flip of bit {bit} in byte {byte} of {b:02x?}"
                    );
                }
            }
            let mut long = b.to_vec();
            long.push(0);
            assert!(
                decode(&Bytes::from(long)).is_err(),
                "trailing byte accepted"
            );
        }
    }

    #[test]
    fn huge_counts_are_rejected_without_allocating() {
        let mut enc = header(RESP_WRITTEN);
        enc.u64(1);
        enc.u32(u32::MAX);
        let err = decode_response(&finish(enc)).err();
        assert_eq!(err.map(|e| e.what), Some("count exceeds input"));
        let mut enc = header(REQ_WRITE);
        enc.u32(0);
        enc.u8(0);
        enc.u32(u32::MAX);
        let err = decode_request(&finish(enc)).err();
        assert_eq!(err.map(|e| e.what), Some("count exceeds input"));
    }

    #[test]
    fn wrong_magic_and_version_are_named() {
        let mut enc = Enc::default();
        enc.u32(MAGIC ^ 1);
        enc.u16(VERSION);
        enc.u8(REQ_STATUS);
        assert_eq!(
            decode_request(&finish(enc)).err().map(|e| e.what),
            Some("bad magic")
        );
        let mut enc = Enc::default();
        enc.u32(MAGIC);
        enc.u16(VERSION + 1);
        enc.u8(REQ_STATUS);
        assert_eq!(
            decode_request(&finish(enc)).err().map(|e| e.what),
            Some("unsupported message version")
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Snapshot of the format: if this changes, the wire format changed (bump [`VERSION`]).
    #[test]
    fn golden_bytes() {
        let get = encode_request(&Request::Get {
            shard: ShardId(7),
            key: Bytes::from_static(b"k1"),
            consistency: ReadConsistency::Eventual,
        });
        assert_eq!(hex(&get), GOLDEN_GET);
        let not_leader = encode_response(&Response::Error(RemoteError::NotLeader {
            shard: ShardId(7),
            leader: Some(2),
        }));
        assert_eq!(hex(&not_leader), GOLDEN_NOT_LEADER);
    }

    /// "TKVC", version 1, kind 1 (Get), shard 7, key length 2, "k1", eventual, crc32c.
    const GOLDEN_GET: &str = "544b564301000107000000020000006b3101a60f2120";
    /// "TKVC", version 1, kind 20 (Error), code 4 (NotLeader), shard 7, leader Some(2), crc32c.
    const GOLDEN_NOT_LEADER: &str = "544b5643010014040700000001020000005345a97e";

    #[test]
    fn engine_errors_cross_the_wire_and_back() {
        let node = NodeId(4);
        let same = [
            Error::NotLeader {
                shard: ShardId(1),
                leader: Some(2),
            },
            Error::OutcomeUnknown { shard: ShardId(1) },
            Error::Closed,
            Error::Invalid {
                reason: InvalidReason::DuplicateKey,
            },
            Error::Backpressure {
                shard: ShardId(1),
                unflushed_bytes: 10,
                limit: 5,
            },
            Error::ConditionFailed {
                key: Bytes::from_static(b"k"),
                expected: Condition::MustExist,
                actual: None,
            },
        ];
        for e in same {
            let back = RemoteError::from_engine(&e).into_engine(node, 1);
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(back.kind(), e.kind());
            assert!(!matches!(back, Error::Remote { .. }), "{back:?}");
        }
        let fenced = Error::Fenced {
            shard: ShardId(1),
            ours: Epoch(1),
            current: Epoch(2),
        };
        let wire = RemoteError::from_engine(&fenced);
        assert_eq!(
            wire,
            RemoteError::Other {
                kind: ErrorKind::Fenced,
                message: fenced.to_string(),
            }
        );
        assert!(matches!(
            wire.into_engine(node, 1),
            Error::Remote {
                node: 4,
                kind: ErrorKind::Fenced,
                ..
            }
        ));
        let not_hosted = RemoteError::NotHosted {
            shard: ShardId(3),
            map_version: 9,
        }
        .into_engine(node, 8);
        assert!(matches!(
            &not_hosted,
            Error::Remote { node: 4, kind: ErrorKind::Unavailable, message }
                if message.contains('9') && message.contains('8')
        ));
        assert_eq!(ReplicaRole::from(Role::Recovering), ReplicaRole::Recovering);
        assert_eq!(ReplicaRole::from(Role::Leader), ReplicaRole::Leader);
    }
}
