//! The engine's error type.
//!
//! [`Error`] has precise, structured variants; [`Error::kind`] classifies each into an
//! [`ErrorKind`] that tells the caller what to do. The classification is one exhaustive match
//! without a wildcard arm, so a new variant cannot be added without deciding its kind. The
//! gateway maps kinds (and a few variants) to HTTP statuses in one place.

use std::path::PathBuf;

use bytes::Bytes;

use crate::codec::DecodeError;
use crate::types::{Condition, Epoch, NodeId, SeqNo, ShardId};

/// Result alias for engine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a caller should do about an error.
///
/// Deliberately not `#[non_exhaustive]`: callers (the gateway's error mapping) match it
/// exhaustively, so a new kind fails to compile until it is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or violates a limit; retrying it unchanged fails again.
    Invalid,
    /// A precondition (`If-Match`, must-not-exist) did not hold; re-read and decide.
    Conflict,
    /// Temporarily unable to serve (backpressure, object storage down, poisoned WAL until
    /// restart); retry later, possibly elsewhere.
    Unavailable,
    /// This writer lost its epoch to a newer writer; it must stop writing.
    Fenced,
    /// The engine is shut down.
    Closed,
    /// Stored data failed validation (checksum, magic, format); needs operator attention.
    Data,
    /// A bug or an unexpected environment failure.
    Internal,
}

/// Engine errors.
///
/// Deliberately not `#[non_exhaustive]`: the gateway maps every variant to an HTTP status
/// with one exhaustive match, so adding a variant fails to compile until it is classified.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A local file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open wal segment", "fdatasync", ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An object-storage call failed (after the retries the caller allowed).
    #[error("object store {op} {path}: {source}")]
    ObjectStore {
        /// The call ("put", "get_range", "list", ...).
        op: &'static str,
        /// The object key.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// Stored bytes failed to decode.
    #[error("corrupt {format} in {location}: {source}")]
    Corrupt {
        /// Which format ("wal record", "segment footer", "manifest", ...).
        format: &'static str,
        /// File name or object key, with an offset where meaningful.
        location: String,
        /// What was wrong and where.
        source: DecodeError,
    },
    /// A format carried a version this build does not read.
    #[error(
        "{format} in {location}: unsupported format version {actual} (supported: {supported:?})"
    )]
    UnsupportedVersion {
        /// Which format.
        format: &'static str,
        /// File name or object key.
        location: String,
        /// Versions this build reads.
        supported: &'static [u16],
        /// Version found.
        actual: u16,
    },
    /// A previous fsync or write of the WAL failed; the WAL refuses all writes until the
    /// process restarts and recovers (an fsync is never retried: see the fsyncgate paper).
    #[error("write-ahead log is poisoned after a failed {op}; restart to recover")]
    WalPoisoned {
        /// The failed operation.
        op: &'static str,
    },
    /// Another process (or another handle in this one) holds a data or WAL directory
    /// ([`crate::dirlock`]).
    #[error(
        "directory {dir} is in use by another process ({holder}); a node's data directory belongs to one process at a time"
    )]
    DirLocked {
        /// The directory.
        dir: PathBuf,
        /// Who holds it, as its lock file says (`pid <n>`).
        holder: String,
    },
    /// A newer writer holds the shard.
    #[error("shard {shard}: fenced at epoch {ours}, current epoch is {current}")]
    Fenced {
        /// The shard.
        shard: ShardId,
        /// Our epoch.
        ours: Epoch,
        /// The epoch found in object storage.
        current: Epoch,
    },
    /// A write precondition failed.
    #[error("condition {expected:?} failed for key {key:?}: current version {actual:?}")]
    ConditionFailed {
        /// The key whose condition failed.
        key: Bytes,
        /// The condition.
        expected: Condition,
        /// The key's current version (None if absent or expired).
        actual: Option<SeqNo>,
    },
    /// Unflushed data reached its memory bound (object storage slow or down).
    #[error(
        "shard {shard}: {unflushed_bytes} unflushed bytes reached the bound of {limit}; retry later"
    )]
    Backpressure {
        /// The shard.
        shard: ShardId,
        /// Bytes in memtables not yet in object storage.
        unflushed_bytes: u64,
        /// The configured bound.
        limit: u64,
    },
    /// A request violates a rule.
    #[error("invalid request: {reason}")]
    Invalid {
        /// Which rule.
        reason: InvalidReason,
    },
    /// Configuration is unusable.
    #[error("invalid configuration {field}: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The shard or engine was closed.
    #[error("shard is closed")]
    Closed,
    /// This replica does not lead the shard (or its lease is not valid for a strong read);
    /// `leader` is the node it last heard from, if any. Retry at the leader.
    #[error("shard {shard}: not the leader (last known leader: {})", leader.map_or("none".to_owned(), |n| n.to_string()))]
    NotLeader {
        /// The shard.
        shard: ShardId,
        /// The node believed to lead, if known.
        leader: Option<NodeId>,
    },
    /// A write was sequenced by a leader that lost its leadership before the write was
    /// known to be committed: it may or may not take effect. Never retried blindly (retry
    /// with the same idempotency key, or re-read).
    #[error(
        "shard {shard}: leadership changed while the write was in flight; its outcome is unknown"
    )]
    OutcomeUnknown {
        /// The shard.
        shard: ShardId,
    },
    /// An invariant did not hold; a bug.
    #[error("internal invariant violated: {what}")]
    Invariant {
        /// The invariant.
        what: &'static str,
    },
}

/// Why a request was invalid. Each has a stable name for clients. Exhaustively matched by
/// the gateway, like [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReason {
    /// Key is empty.
    #[error("key is empty")]
    KeyEmpty,
    /// Key longer than the limit.
    #[error("key longer than the limit")]
    KeyTooLong,
    /// Value longer than the limit.
    #[error("value larger than the configured limit")]
    ValueTooLarge,
    /// Content type longer than 255 bytes.
    #[error("content type longer than 255 bytes")]
    ContentTypeTooLong,
    /// Batch has no operations.
    #[error("batch is empty")]
    BatchEmpty,
    /// The same key appears twice in one batch.
    #[error("batch writes the same key twice")]
    DuplicateKey,
    /// Scan limit of zero.
    #[error("limit must be at least 1")]
    ZeroLimit,
}

impl Error {
    /// What the caller should do.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Invalid,
            Self::ConditionFailed { .. } => ErrorKind::Conflict,
            Self::Backpressure { .. }
            | Self::WalPoisoned { .. }
            | Self::ObjectStore { .. }
            | Self::NotLeader { .. }
            | Self::OutcomeUnknown { .. } => ErrorKind::Unavailable,
            Self::Fenced { .. } => ErrorKind::Fenced,
            Self::Closed => ErrorKind::Closed,
            Self::Corrupt { .. } | Self::UnsupportedVersion { .. } => ErrorKind::Data,
            Self::Io { .. }
            | Self::DirLocked { .. }
            | Self::Config { .. }
            | Self::Invariant { .. } => ErrorKind::Internal,
        }
    }

    /// Shorthand for an [`Error::Invalid`].
    #[must_use]
    pub const fn invalid(reason: InvalidReason) -> Self {
        Self::Invalid { reason }
    }

    /// Wraps an object-store error.
    pub fn store(op: &'static str, path: impl Into<String>, source: object_store::Error) -> Self {
        Self::ObjectStore {
            op,
            path: path.into(),
            source,
        }
    }

    /// Wraps an I/O error.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Wraps a decode error.
    pub fn corrupt(format: &'static str, location: impl Into<String>, source: DecodeError) -> Self {
        Self::Corrupt {
            format,
            location: location.into(),
            source,
        }
    }
}
