//! Domain types shared by every engine module.
//!
//! Every domain number is a newtype so that a sequence number can never be passed where an
//! epoch is expected. Keys and values are [`Bytes`] so that they move between the WAL, the
//! memtable and segments without copies.

use std::fmt;

use bytes::Bytes;

/// Identifies a node (a member of the cluster). Shown as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Longest key a client may use, in bytes.
pub const MAX_USER_KEY_LEN: usize = 1024;
/// Longest key the engine accepts, in bytes: a user key plus room for the namespace prefix
/// the gateway puts in front of every key (user data and internal records such as
/// idempotency keys live in separate namespaces of the same shard).
pub const MAX_KEY_LEN: usize = MAX_USER_KEY_LEN + 64;
/// Longest content type the engine stores, in bytes.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;

/// Identifies one shard (a slice of the keyspace with its own manifest and sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u32);

/// Per-shard sequence number. Every committed write batch takes the next one, and it is also
/// the version of every entry the batch writes: strictly increasing per shard, hence per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SeqNo(pub u64);

/// Leadership epoch of a shard writer. A writer whose epoch is older than the one recorded
/// in object storage is fenced and may not publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Epoch(pub u64);

/// Unique name of an immutable segment object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub u128);

/// Version of a shard's manifest (its object name in `shards/<sid>/manifest/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ManifestVersion(pub u64);

/// Milliseconds since the Unix epoch, as given by a [`crate::clock::Clock`].
pub type UnixMillis = u64;

impl SeqNo {
    /// The sequence number after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl Epoch {
    /// The epoch after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl SegmentId {
    /// A fresh random id; 128 random bits make collisions between writers negligible.
    #[must_use]
    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}
impl fmt::Display for ManifestVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a stored entry says about its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// The key holds `value`, labelled with an optional content type.
    Put {
        /// The value bytes.
        value: Bytes,
        /// Content type given by the writer (at most [`MAX_CONTENT_TYPE_LEN`] bytes).
        content_type: Option<Bytes>,
    },
    /// The key was deleted at this version.
    Tombstone,
}

/// One version of one key, as stored in the memtable and in segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key (1..=[`MAX_KEY_LEN`] bytes).
    pub key: Bytes,
    /// Version: the sequence number of the batch that wrote it.
    pub seq: SeqNo,
    /// Value or tombstone.
    pub kind: EntryKind,
    /// Absolute expiry; the entry is invisible from this instant on.
    pub expires_at: Option<UnixMillis>,
}

impl Entry {
    /// Whether the entry is invisible at `now` (expired). Tombstones never "expire".
    #[must_use]
    pub fn is_expired(&self, now: UnixMillis) -> bool {
        matches!(self.expires_at, Some(t) if t <= now)
    }

    /// Whether a reader at `now` sees a live value (not a tombstone and not expired).
    #[must_use]
    pub fn is_live(&self, now: UnixMillis) -> bool {
        matches!(self.kind, EntryKind::Put { .. }) && !self.is_expired(now)
    }

    /// Bytes this entry costs in a memtable (an estimate used for size bounds).
    #[must_use]
    pub fn approx_size(&self) -> usize {
        let body = match &self.kind {
            EntryKind::Put {
                value,
                content_type,
            } => value.len() + content_type.as_ref().map_or(0, Bytes::len),
            EntryKind::Tombstone => 0,
        };
        self.key.len() + body + 48
    }

    /// Bytes of the key, the value and the content type: what [`compact_entries`] copies.
    #[must_use]
    pub fn data_len(&self) -> usize {
        self.key.len()
            + match &self.kind {
                EntryKind::Put {
                    value,
                    content_type,
                } => value.len() + content_type.as_ref().map_or(0, Bytes::len),
                EntryKind::Tombstone => 0,
            }
    }
}

/// Copies the keys, values and content types of `entries` into one allocation of their own
/// and points the entries at it.
///
/// Decoded entries are slices of the buffer they arrived in (a replication chunk holding
/// messages of many shards, a gateway's batch, a whole WAL file at recovery), and a slice
/// keeps its whole buffer alive. An entry kept for long (the replication log and the
/// memtable keep it until the flush) must own its bytes, or a 1 KiB entry can pin megabytes
/// and the memory the node accounts for (note 0007) is not what it holds. One allocation
/// per record: its entries live and die together (the log drops a record whole).
pub fn compact_entries(entries: &mut [Entry]) {
    let total: usize = entries.iter().map(Entry::data_len).sum();
    if total == 0 {
        return;
    }
    let mut buf = bytes::BytesMut::with_capacity(total);
    let mut spans = Vec::with_capacity(entries.len());
    let mut put = |b: &Bytes| {
        let start = buf.len();
        buf.extend_from_slice(b);
        (start, buf.len())
    };
    for e in entries.iter() {
        let key = put(&e.key);
        let (value, ct) = match &e.kind {
            EntryKind::Put {
                value,
                content_type,
            } => (Some(put(value)), content_type.as_ref().map(&mut put)),
            EntryKind::Tombstone => (None, None),
        };
        spans.push((key, value, ct));
    }
    let buf = buf.freeze();
    for (e, (key, value, ct)) in entries.iter_mut().zip(spans) {
        e.key = buf.slice(key.0..key.1);
        if let (
            EntryKind::Put {
                value: v,
                content_type,
            },
            Some(value),
        ) = (&mut e.kind, value)
        {
            *v = buf.slice(value.0..value.1);
            if let Some(ct) = ct {
                *content_type = Some(buf.slice(ct.0..ct.1));
            }
        }
    }
}

/// A change to one key requested by a writer, before it has a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Set the key to a value.
    Put {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// Optional content type.
        content_type: Option<Bytes>,
        /// Optional absolute expiry.
        expires_at: Option<UnixMillis>,
    },
    /// Delete the key.
    Delete {
        /// The key.
        key: Bytes,
    },
}

impl Mutation {
    /// The key this mutation changes.
    #[must_use]
    pub fn key(&self) -> &Bytes {
        match self {
            Self::Put { key, .. } | Self::Delete { key } => key,
        }
    }

    /// The entry this mutation becomes once it has version `seq`.
    #[must_use]
    pub fn into_entry(self, seq: SeqNo) -> Entry {
        match self {
            Self::Put {
                key,
                value,
                content_type,
                expires_at,
            } => Entry {
                key,
                seq,
                kind: EntryKind::Put {
                    value,
                    content_type,
                },
                expires_at,
            },
            Self::Delete { key } => Entry {
                key,
                seq,
                kind: EntryKind::Tombstone,
                expires_at: None,
            },
        }
    }
}

/// Precondition a write places on the current state of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// No precondition.
    #[default]
    None,
    /// The key must not exist (no live value).
    MustNotExist,
    /// The key must exist (a live value, any version).
    MustExist,
    /// The key must exist with exactly this version.
    VersionIs(SeqNo),
    /// The key's newest version must be exactly this one and expired. Used by the TTL
    /// sweeper so that its delete never removes a newer write.
    ExpiredVersion(SeqNo),
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ReadConsistency {
    /// Linearizable: served by the shard's leaseholder under a valid lease; sees every
    /// write acknowledged before the read started. The default.
    #[default]
    Strong,
    /// Any replica's committed state: possibly stale, never uncommitted.
    Eventual,
}

/// One mutation with its precondition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOp {
    /// The change.
    pub mutation: Mutation,
    /// What must hold for the change to apply.
    pub condition: Condition,
}

/// An atomic group of writes to distinct keys of one shard: all apply, with one version, or
/// none does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The writes, in any order; keys must be distinct.
    pub ops: Vec<WriteOp>,
    /// Report each key's live version just before the batch applied (see
    /// [`crate::shard::Shard::evaluate`]). Costs the lookup a condition costs.
    pub report_prior: bool,
}

impl WriteBatch {
    /// An empty batch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an unconditional put.
    #[must_use]
    pub fn put(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        self.ops.push(WriteOp {
            mutation: Mutation::Put {
                key: key.into(),
                value: value.into(),
                content_type: None,
                expires_at: None,
            },
            condition: Condition::None,
        });
        self
    }

    /// Adds an unconditional delete.
    #[must_use]
    pub fn delete(mut self, key: impl Into<Bytes>) -> Self {
        self.ops.push(WriteOp {
            mutation: Mutation::Delete { key: key.into() },
            condition: Condition::None,
        });
        self
    }

    /// Asks for each key's prior live version.
    #[must_use]
    pub fn reporting_prior(mut self) -> Self {
        self.report_prior = true;
        self
    }

    /// Adds a write with a condition.
    #[must_use]
    pub fn op(mut self, mutation: Mutation, condition: Condition) -> Self {
        self.ops.push(WriteOp {
            mutation,
            condition,
        });
        self
    }
}
