//! [`RemoteError`]: the errors a node reports for one operation, their mapping to and from
//! engine errors, and their wire form (the body of an `Error` response).

use bytes::Bytes;
use tierkv_engine::codec::{Dec, DecodeError, Enc};
use tierkv_engine::error::InvalidReason;
use tierkv_engine::replica::NodeId;
use tierkv_engine::types::{Condition, SeqNo, ShardId};
use tierkv_engine::{Error, ErrorKind};

use super::codec::{
    get_bytes, get_condition, get_opt_u32, get_opt_u64, put_condition, put_opt_u64,
};

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
    #[error(
        "shard {shard}: {unflushed_bytes} unflushed bytes reached the bound of {limit}; retry later"
    )]
    Backpressure {
        /// The shard.
        shard: ShardId,
        /// Unflushed bytes.
        unflushed_bytes: u64,
        /// The bound.
        limit: u64,
    },
    /// This replica does not lead the shard; `leader` is the one it last heard from.
    #[error("shard {shard}: not the leader (last known leader: {})", leader.map_or("none".to_owned(), |n| n.to_string()))]
    NotLeader {
        /// The shard.
        shard: ShardId,
        /// The leader's node id, if known.
        leader: Option<NodeId>,
    },
    /// The write may or may not take effect.
    #[error(
        "shard {shard}: leadership changed while the write was in flight; its outcome is unknown"
    )]
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
            | Error::DirLocked { .. }
            | Error::Fenced { .. }
            | Error::Config { .. }
            | Error::Invariant { .. } => Self::Other {
                kind: e.kind(),
                message: e.to_string(),
            },
        }
    }
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
    }
}

pub(super) fn put_error(enc: &mut Enc, e: &RemoteError) {
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
                    enc.u32(l.0);
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

pub(super) fn get_error(d: &mut Dec<'_>, src: &Bytes) -> Result<RemoteError, DecodeError> {
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
            leader: get_opt_u32(d)?.map(NodeId),
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
