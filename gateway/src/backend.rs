//! The storage seam ([`Backend`]) and its errors ([`BackendError`], [`NotReady`]).
//!
//! The gateway speaks to shards only through [`Backend`]: the cluster client
//! ([`crate::cluster::ClusterBackend`]) implements it by RPC to the shards' leaders, and
//! `tierkv serve` in process over its one-replica node (the binary's `local` module). The
//! seam speaks the wire contract ([`tierkv_wire::proto`]): the operations' data types and the
//! errors a node reports for one operation ([`RemoteError`]), plus what can go wrong on the
//! way to a node. [`crate::ApiError::from_backend`] is the one place these become HTTP
//! answers.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use tierkv_engine::replica::LeaseMark;
use tierkv_engine::shard::ScanPage;
use tierkv_engine::types::{Entry, EntryKind, NodeId, ReadConsistency, SeqNo, ShardId, WriteBatch};
use tierkv_wire::proto::RemoteError;

/// A read lease a shard's leader granted with an answer (design note 0014): for
/// `duration`, counted from before the request was sent, the shard's committed state stays
/// the one `mark` names, which the answer was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// How long.
    pub duration: std::time::Duration,
    /// The committed state it vouches for (the leader's epoch and commit point).
    pub mark: LeaseMark,
}

/// What the gateway needs from storage.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Number of shards; keys are routed with `routing::shard_for(key, shard_count)`.
    fn shard_count(&self) -> u32;
    /// The live entry of engine key `key` in `shard`, read at `consistency`.
    async fn get(
        &self,
        shard: ShardId,
        key: Bytes,
        consistency: ReadConsistency,
    ) -> Result<Option<Entry>, BackendError>;
    /// Whether `known` is still the version of engine key `key`, read like a strong `get`
    /// (design note 0008). The default asks for the entry and compares here; the cluster
    /// client sends `GetIfChanged`, which brings no value back when nothing changed.
    async fn get_if_changed(
        &self,
        shard: ShardId,
        key: Bytes,
        known: SeqNo,
    ) -> Result<Revalidated, BackendError> {
        let entry = self.get(shard, key, ReadConsistency::Strong).await?;
        Ok(Revalidated::compare(entry, known))
    }
    /// A strong read of engine key `key` (a revalidation of `known` when given) that also
    /// asks the shard's leader for a read lease (design note 0014): the answer, and the
    /// lease if one was granted. The default asks without a lease; the cluster client sends
    /// `GetLeased` to nodes that announced wire revision 6.
    async fn get_leased(
        &self,
        shard: ShardId,
        key: Bytes,
        known: Option<SeqNo>,
    ) -> Result<(Revalidated, Option<Lease>), BackendError> {
        let r = match known {
            Some(k) => self.get_if_changed(shard, key, k).await?,
            None => Revalidated::Current(self.get(shard, key, ReadConsistency::Strong).await?),
        };
        Ok((r, None))
    }
    /// Applies `batch` atomically in `shard`; returns its version and, when
    /// `batch.report_prior` is set, each op's prior live version (else empty).
    async fn write(
        &self,
        shard: ShardId,
        batch: WriteBatch,
    ) -> Result<(SeqNo, Vec<Option<SeqNo>>), BackendError>;
    /// Live entries of `shard` under engine prefix `prefix`, after `start_after`, read at
    /// `consistency`.
    async fn scan(
        &self,
        shard: ShardId,
        prefix: Bytes,
        start_after: Option<Bytes>,
        limit: usize,
        consistency: ReadConsistency,
    ) -> Result<ScanPage, BackendError>;
    /// Ok when every shard can be served; else why not.
    async fn ready(&self) -> Result<(), NotReady>;
}

/// What a shard's leader said of a cached version ([`Backend::get_if_changed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revalidated {
    /// The key's live version is still the one the caller holds.
    Unchanged,
    /// It is not: the key's current live entry, if any.
    Current(Option<Entry>),
}

impl Revalidated {
    /// The answer to "is `known` current?" given the key's current live `entry`.
    #[must_use]
    pub fn compare(entry: Option<Entry>, known: SeqNo) -> Self {
        match entry {
            Some(e) if e.seq == known && matches!(e.kind, EntryKind::Put { .. }) => Self::Unchanged,
            other => Self::Current(other),
        }
    }
}

/// Why the storage behind the gateway did not carry out an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The node that served the operation answered it with an error.
    #[error("node {node}: {error}")]
    Node {
        /// The node.
        node: NodeId,
        /// Its answer.
        error: RemoteError,
    },
    /// No replica of the shard acted as its leader within the wait (a failover or an
    /// election in progress); nothing was applied.
    #[error("shard {shard}: no leader found in time")]
    NoLeader {
        /// The shard.
        shard: ShardId,
    },
    /// No replica of the shard could be reached for a read within the wait.
    #[error("shard {shard}: no replica answered (last: {last})")]
    Unreachable {
        /// The shard.
        shard: ShardId,
        /// The last failure seen.
        last: String,
    },
    /// A write was sent but no answer came back: it may or may not have been applied.
    #[error("shard {shard}: the write may have been applied; no answer came back")]
    OutcomeUnknown {
        /// The shard.
        shard: ShardId,
    },
    /// A node refused the request itself (HTTP 401: the cluster secret differs).
    #[error("node {node} refused the request (HTTP {status})")]
    Refused {
        /// The node.
        node: NodeId,
        /// The HTTP status it answered.
        status: u16,
    },
    /// A node's answer does not match the request, or a shard is outside the shard map: a
    /// bug on one side.
    #[error("protocol error with node {node:?}: {what}")]
    Protocol {
        /// The node, when one answered.
        node: Option<NodeId>,
        /// What did not match.
        what: &'static str,
    },
}

/// Why a backend is not ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The first poll of the nodes has not completed yet.
    NotPolledYet,
    /// A shard has fewer replicas answering than a majority.
    NoQuorum {
        /// The shard.
        shard: ShardId,
        /// Replicas that answered the last poll.
        answered: usize,
        /// Replicas the shard has.
        replicas: usize,
    },
    /// These shards have no serving leader yet.
    NoLeader {
        /// The shards.
        shards: Vec<ShardId>,
    },
    /// The write-ahead log failed; the node must restart.
    WalPoisoned,
    /// Object storage does not answer.
    ObjectStore {
        /// The store's error.
        cause: String,
    },
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPolledYet => write!(f, "no status poll of the nodes has completed yet"),
            Self::NoQuorum {
                shard,
                answered,
                replicas,
            } => write!(
                f,
                "shard {shard}: {answered} of {replicas} replicas answered the last status poll"
            ),
            Self::NoLeader { shards } => {
                let list: Vec<String> = shards.iter().map(ToString::to_string).collect();
                write!(f, "no serving leader yet for shards {}", list.join(", "))
            }
            Self::WalPoisoned => write!(f, "the write-ahead log failed; restart the node"),
            Self::ObjectStore { cause } => write!(f, "object storage does not answer: {cause}"),
        }
    }
}
