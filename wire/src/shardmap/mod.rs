//! The versioned shard map: which nodes are members, where they listen, and which replicas
//! each shard has (design note 0002, "Shard map").
//!
//! # Object
//!
//! Each version is one create-only JSON object at `cluster/shardmap/<version:020>` (see
//! [`tierkv_engine::paths::shardmap`]); creating version `v` is the compare-and-swap: the first writer of `v`
//! wins and every loser re-reads. Versions are never rewritten or deleted, so the newest key
//! is the current map.
//!
//! ```json
//! {"format": 2, "version": 3, "shards": 64, "replication": 3, "vnodes": 64,
//!  "members": [{"id": 1, "addr": "10.0.0.1:7400", "state": "active"},
//!              {"id": 2, "addr": "10.0.0.2:7400", "state": "draining"}]}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `format` | [`FORMAT`] = 2, or [`FORMAT_1`] (still read and still written, see below); other values are rejected |
//! | `version` | the map version; equals the number in the object's key |
//! | `shards` | number of shards (fixed for the cluster, 1..=[`MAX_SHARDS`]) |
//! | `replication` | replicas per shard, N (at least 1; all active members if fewer) |
//! | `vnodes` | ring points per member (1..=[`MAX_VNODES`], default [`DEFAULT_VNODES`]) |
//! | `members` | node id (distinct) and `host:port` of its RPC/HTTP endpoint (non-empty); format 2: `state` |
//! | `members[].state` | format 2 only: `active` (in the ring), `draining` (out of the ring, still holding replicas until its moves finish) or `retired` (replaced; never placed again, never counted again) — see [`MemberState`] and design note 0009 §6. At least one member is active. |
//!
//! Format 1 is format 2 without `state`: every member is active. A map whose members are all
//! active is written as format 1, byte for byte what the previous version wrote, so nodes of
//! that version read every map until a membership change makes a member draining or retired
//! (design note 0009, "Compatibility").
//!
//! # Placement
//!
//! Only active members are on the ring; draining and retired members are listed (with their
//! addresses: replicas there are reachable until they are released) but never placed.
//! Consistent hashing with virtual nodes on a `u64` ring. Member `id` owns the points
//! `xxh3_64(id.to_le_bytes() ++ i.to_le_bytes())` for `i` in `0..vnodes` (both `u32`).
//! Shard `s` sits at `xxh3_64(b"shard" ++ s.to_le_bytes())`; its replicas are the first
//! `replication` distinct members met walking clockwise from there (points equal to the
//! shard's count; ties between members' points are broken by node id). Adding a member only
//! inserts its points, so a shard's new replica set is a subset of its old set plus the new
//! member.
//!
//! The replicas are listed in rank order (design note 0005): rank 0 goes first in a
//! takeover, so it is the leader of a healthy cluster. The ring order alone would leave
//! leadership as uneven as the ring (with 3 members, 64 shards and 64 points each: 30, 17
//! and 17 leaders), and the leader of a shard does more work than its followers. So rank 0
//! is chosen greedily in shard order: the replica of the shard that has been rank 0 the
//! fewest times so far (ties: the earlier one in ring order); the others follow in ring
//! order. Rank 0 counts then differ by at most one whenever every member holds every shard,
//! and stay close otherwise. Rank only orders takeovers: it never moves a replica, and a
//! live leader keeps its lease whatever the ranks say. The placement is computed once when
//! a map is built or decoded, so [`ShardMap::replicas`] is a slice lookup.

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tierkv_engine::replica::NodeId;
use tierkv_engine::types::ShardId;
use xxhash_rust::xxh3::xxh3_64;

mod members;
mod store;

pub use store::{
    PublishOutcome, bootstrap, change_members, load_latest, load_newer, load_version, publish,
    set_member_addr, wait_for_latest,
};

/// The format this build writes when some member is not active.
pub const FORMAT: u32 = 2;
/// The format without member states: still read, and written while every member is active.
pub const FORMAT_1: u32 = 1;
/// Ring points per member unless configured otherwise.
pub const DEFAULT_VNODES: u32 = 64;
/// Most shards a map may have (the engine's cluster meta has the same bound).
pub const MAX_SHARDS: u32 = 65_536;
/// Most ring points per member (bounds the work of decoding a hostile map).
pub const MAX_VNODES: u32 = 4_096;
/// Why a shard map is unusable, or a shard map operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ShardMapError {
    /// The map has no members.
    #[error("shard map has no members")]
    NoMembers,
    /// No member of the map is active (none could hold a replica).
    #[error("shard map has no active member")]
    NoActiveMembers,
    /// A format 2 member without a state, or a format 1 member with one.
    #[error("member {id}: format 2 needs a state per member, format 1 allows none")]
    StateFormat {
        /// The member.
        id: u32,
    },
    /// A member state other than `active`, `draining` or `retired`.
    #[error("member {id} has an unknown state {state:?}")]
    UnknownState {
        /// The member.
        id: u32,
        /// The state found.
        state: String,
    },
    /// Two members share an id.
    #[error("shard map lists member {id} twice")]
    DuplicateMember {
        /// The repeated id.
        id: NodeId,
    },
    /// A member has no address.
    #[error("member {id} has an empty address")]
    EmptyAddr {
        /// The member.
        id: NodeId,
    },
    /// `shards` is outside `1..=MAX_SHARDS`.
    #[error("shard count {shards} is outside 1..={MAX_SHARDS}")]
    ShardCount {
        /// The value found.
        shards: u32,
    },
    /// `replication` is zero.
    #[error("replication must be at least 1")]
    ZeroReplication,
    /// `vnodes` is outside `1..=MAX_VNODES`.
    #[error("vnodes {vnodes} is outside 1..={MAX_VNODES}")]
    Vnodes {
        /// The value found.
        vnodes: u32,
    },
    /// The JSON names a format this build does not read.
    #[error("shard map format {actual} is not supported (supported: {FORMAT_1}, {FORMAT})")]
    UnsupportedFormat {
        /// Format found.
        actual: u32,
    },
    /// The JSON does not parse as a shard map.
    #[error("shard map JSON is malformed: {source}")]
    Malformed {
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The version inside an object differs from the version in its key.
    #[error("{key} holds shard map version {found}")]
    VersionMismatch {
        /// The object key.
        key: String,
        /// The version in the body.
        found: u64,
    },
    /// A listed map object could not be read back (objects are never deleted).
    #[error("{key} was listed but could not be read")]
    Vanished {
        /// The object key.
        key: String,
    },
    /// No shard map has been published yet.
    #[error("no shard map has been published")]
    NoMap,
    /// The node is not a member of the map.
    #[error("node {id} is not a member of shard map version {version}")]
    NotAMember {
        /// The node.
        id: NodeId,
        /// The map consulted.
        version: u64,
    },
    /// A member with this id exists already (retired ids are never reused).
    #[error("node {id} is already listed in shard map version {version} ({state})")]
    MemberExists {
        /// The id.
        id: NodeId,
        /// Its state.
        state: MemberState,
        /// The map consulted.
        version: u64,
    },
    /// The change would leave fewer active members than replicas per shard.
    #[error("the change would leave {active} active members for {replication} replicas per shard")]
    TooFewActive {
        /// Active members after the change.
        active: usize,
        /// N.
        replication: usize,
    },
    /// The member is not in the state the operation needs (remove: draining; drain,
    /// replace: not retired).
    #[error("node {id} is {state}; the operation needs it {needed}")]
    WrongState {
        /// The member.
        id: NodeId,
        /// Its state.
        state: MemberState,
        /// What the operation needs.
        needed: &'static str,
    },
    /// Every attempt to publish lost a race to another writer.
    #[error("lost {attempts} races publishing the shard map")]
    Contended {
        /// Attempts made.
        attempts: usize,
    },
    /// Object storage failed.
    #[error(transparent)]
    Store(#[from] tierkv_engine::Error),
}

/// A member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its node id.
    pub id: NodeId,
    /// `host:port` of its RPC/HTTP endpoint.
    pub addr: String,
    /// Whether it is placed, leaving or gone for good.
    pub state: MemberState,
}

impl Member {
    /// An active member.
    #[must_use]
    pub fn active(id: NodeId, addr: impl Into<String>) -> Self {
        Self {
            id,
            addr: addr.into(),
            state: MemberState::Active,
        }
    }
}

/// A member's state (design note 0009 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MemberState {
    /// On the ring: placed as a replica of its shards.
    #[default]
    Active,
    /// Off the ring: its replicas move to active members; it stays listed (and reachable)
    /// until removed.
    Draining,
    /// Replaced for good: never placed again, its acks and promises never count again, and a
    /// process started with its id is refused.
    Retired,
}

impl MemberState {
    /// The name in the JSON (`active`, `draining`, `retired`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Retired => "retired",
        }
    }

    fn parse(id: u32, s: &str) -> Result<Self, ShardMapError> {
        match s {
            "active" => Ok(Self::Active),
            "draining" => Ok(Self::Draining),
            "retired" => Ok(Self::Retired),
            _ => Err(ShardMapError::UnknownState {
                id,
                state: s.to_owned(),
            }),
        }
    }
}

impl std::fmt::Display for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One version of the shard map, with its placement precomputed. Immutable: derive a new
/// map with [`ShardMap::with_version`] or [`ShardMap::with_member_addr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    version: u64,
    shards: u32,
    replication: usize,
    vnodes: u32,
    members: Vec<Member>,
    /// Replicas of every shard in rank order: shard `s` is `placement[s*width..(s+1)*width]`.
    placement: Vec<NodeId>,
    /// Replicas per shard: `min(replication, active members)`.
    width: usize,
}

/// The JSON body of a shard map object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    format: u32,
    version: u64,
    shards: u32,
    replication: usize,
    vnodes: u32,
    members: Vec<MemberFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberFile {
    id: u32,
    addr: String,
    /// Format 2 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
}

/// Just the format field, read before the rest so that a newer format is reported as such.
#[derive(Debug, Deserialize)]
struct FormatOnly {
    format: u32,
}

impl ShardMap {
    /// A validated map with its placement computed.
    pub fn new(
        version: u64,
        shards: u32,
        replication: usize,
        vnodes: u32,
        members: Vec<Member>,
    ) -> Result<Self, ShardMapError> {
        let mut map = Self {
            version,
            shards,
            replication,
            vnodes,
            members,
            placement: Vec::new(),
            width: 0,
        };
        map.validate()?;
        map.place();
        Ok(map)
    }

    /// Checks the rules of the format (see the module table).
    pub fn validate(&self) -> Result<(), ShardMapError> {
        if self.shards == 0 || self.shards > MAX_SHARDS {
            return Err(ShardMapError::ShardCount {
                shards: self.shards,
            });
        }
        if self.replication == 0 {
            return Err(ShardMapError::ZeroReplication);
        }
        if self.vnodes == 0 || self.vnodes > MAX_VNODES {
            return Err(ShardMapError::Vnodes {
                vnodes: self.vnodes,
            });
        }
        if self.members.is_empty() {
            return Err(ShardMapError::NoMembers);
        }
        if !self.members.iter().any(|m| m.state == MemberState::Active) {
            return Err(ShardMapError::NoActiveMembers);
        }
        let mut ids: Vec<NodeId> = self.members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(ShardMapError::DuplicateMember { id: w[0] });
        }
        if let Some(m) = self.members.iter().find(|m| m.addr.trim().is_empty()) {
            return Err(ShardMapError::EmptyAddr { id: m.id });
        }
        Ok(())
    }

    /// Computes the placement table over the active members (the map is valid).
    fn place(&mut self) {
        let active: Vec<NodeId> = self
            .members
            .iter()
            .filter(|m| m.state == MemberState::Active)
            .map(|m| m.id)
            .collect();
        let mut ring: Vec<(u64, NodeId)> = Vec::with_capacity(
            active
                .len()
                .saturating_mul(usize::try_from(self.vnodes).unwrap_or(0)),
        );
        for &id in &active {
            for i in 0..self.vnodes {
                ring.push((member_point(id, i), id));
            }
        }
        ring.sort_unstable();
        self.width = self.replication.min(active.len());
        let shards = usize::try_from(self.shards).unwrap_or(0);
        let mut placement = Vec::with_capacity(shards.saturating_mul(self.width));
        let mut led: HashMap<NodeId, usize> = HashMap::new();
        for s in 0..self.shards {
            let at = shard_point(ShardId(s));
            let start = ring.partition_point(|(p, _)| *p < at);
            let mut picked: Vec<NodeId> = Vec::with_capacity(self.width);
            for (_, id) in ring.iter().cycle().skip(start).take(ring.len()) {
                if !picked.contains(id) {
                    picked.push(*id);
                    if picked.len() == self.width {
                        break;
                    }
                }
            }
            // Rank 0: the replica that leads the fewest shards so far (first in ring order
            // among equals).
            let first = picked
                .iter()
                .enumerate()
                .min_by_key(|(_, id)| led.get(*id).copied().unwrap_or(0))
                .map(|(i, _)| i);
            if let Some(i) = first {
                let leader = picked.remove(i);
                picked.insert(0, leader);
                *led.entry(leader).or_insert(0) += 1;
            }
            placement.extend(picked);
        }
        self.placement = placement;
    }

    /// The map version.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of shards.
    #[must_use]
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// Configured replicas per shard (N).
    #[must_use]
    pub fn replication(&self) -> usize {
        self.replication
    }

    /// Ring points per member.
    #[must_use]
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// The members, in the order they were listed.
    #[must_use]
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member with id `id`.
    #[must_use]
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Replicas of `shard` in rank order (rank 0 first): its *target* replica set; empty if
    /// the shard is outside the map. `min(replication, active members)` distinct active
    /// members.
    #[must_use]
    pub fn replicas(&self, shard: ShardId) -> &[NodeId] {
        let Ok(s) = usize::try_from(shard.0) else {
            return &[];
        };
        let start = s.saturating_mul(self.width);
        self.placement
            .get(start..start.saturating_add(self.width))
            .unwrap_or(&[])
    }

    /// Shards that `node` replicates, with its rank in each.
    #[must_use]
    pub fn shards_of(&self, node: NodeId) -> Vec<(ShardId, usize)> {
        (0..self.shards)
            .filter_map(|s| {
                let rank = self.replicas(ShardId(s)).iter().position(|&r| r == node)?;
                Some((ShardId(s), rank))
            })
            .collect()
    }

    /// The state of member `id`, if it is one.
    #[must_use]
    pub fn state(&self, id: NodeId) -> Option<MemberState> {
        self.member(id).map(|m| m.state)
    }

    /// Whether `id` was retired (replaced for good).
    #[must_use]
    pub fn is_retired(&self, id: NodeId) -> bool {
        self.state(id) == Some(MemberState::Retired)
    }

    /// Ids of the retired members.
    pub fn retired(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members
            .iter()
            .filter(|m| m.state == MemberState::Retired)
            .map(|m| m.id)
    }

    /// Whether `self` and `other` place every shard on the same replicas in the same rank
    /// order (addresses and versions may differ).
    #[must_use]
    pub fn same_placement(&self, other: &Self) -> bool {
        self.shards == other.shards
            && self.width == other.width
            && self.placement == other.placement
    }

    /// The same map under another version number.
    #[must_use]
    pub fn with_version(&self, version: u64) -> Self {
        Self {
            version,
            ..self.clone()
        }
    }

    /// The JSON body of this map's object: format 1 while every member is active (byte for
    /// byte what builds before member states wrote), format 2 otherwise.
    #[must_use]
    pub fn to_json(&self) -> Bytes {
        let states = self.members.iter().any(|m| m.state != MemberState::Active);
        let file = MapFile {
            format: if states { FORMAT } else { FORMAT_1 },
            version: self.version,
            shards: self.shards,
            replication: self.replication,
            vnodes: self.vnodes,
            members: self
                .members
                .iter()
                .map(|m| MemberFile {
                    id: m.id.0,
                    addr: m.addr.clone(),
                    state: states.then(|| m.state.as_str().to_owned()),
                })
                .collect(),
        };
        Bytes::from(serde_json::to_vec(&file).expect("a MapFile of plain fields always serializes"))
    }

    /// Parses and validates a map object's body.
    pub fn from_json(body: &[u8]) -> Result<Self, ShardMapError> {
        let FormatOnly { format } =
            serde_json::from_slice(body).map_err(|source| ShardMapError::Malformed { source })?;
        if format != FORMAT && format != FORMAT_1 {
            return Err(ShardMapError::UnsupportedFormat { actual: format });
        }
        let f: MapFile =
            serde_json::from_slice(body).map_err(|source| ShardMapError::Malformed { source })?;
        let members = f
            .members
            .into_iter()
            .map(|m| {
                let state = match (format, m.state) {
                    (FORMAT_1, None) => MemberState::Active,
                    (FORMAT, Some(s)) => MemberState::parse(m.id, &s)?,
                    // A state in format 1, or a member without one in format 2.
                    _ => return Err(ShardMapError::StateFormat { id: m.id }),
                };
                Ok(Member {
                    id: NodeId(m.id),
                    addr: m.addr,
                    state,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(f.version, f.shards, f.replication, f.vnodes, members)
    }
}

fn member_point(id: NodeId, i: u32) -> u64 {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&id.0.to_le_bytes());
    b[4..].copy_from_slice(&i.to_le_bytes());
    xxh3_64(&b)
}

fn shard_point(shard: ShardId) -> u64 {
    let mut b = [0u8; 9];
    b[..5].copy_from_slice(b"shard");
    b[5..].copy_from_slice(&shard.0.to_le_bytes());
    xxh3_64(&b)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use tierkv_engine::store::{ObjStore, StoreOptions};

    use super::*;

    fn members(ids: &[u32]) -> Vec<Member> {
        ids.iter()
            .map(|&i| Member::active(NodeId(i), format!("127.0.0.1:{}", 7000 + i)))
            .collect()
    }

    fn map(ids: &[u32], shards: u32, replication: usize) -> ShardMap {
        ShardMap::new(1, shards, replication, DEFAULT_VNODES, members(ids)).expect("valid map")
    }

    fn memory_store() -> ObjStore {
        ObjStore::open(&StoreOptions {
            url: "memory://".to_owned(),
            ..StoreOptions::default()
        })
        .expect("memory store opens")
    }

    #[test]
    fn placement_is_deterministic_and_independent_of_member_order() {
        let a = map(&[1, 2, 3, 4, 5], 64, 3);
        let b = map(&[5, 3, 1, 4, 2], 64, 3);
        for s in 0..64 {
            assert_eq!(a.replicas(ShardId(s)), b.replicas(ShardId(s)), "shard {s}");
        }
        // Pinned (the ring walk cross-checked against libxxhash's XXH3_64bits): a change to
        // the hash inputs, the ring walk or the rank-0 balancing moves shards or leaders, and
        // every node must agree on placement. Shard 63's ring order is 5, 3, 4; member 3
        // had led fewer shards by then, so it is rank 0.
        assert_eq!(a.replicas(ShardId(0)), [NodeId(3), NodeId(2), NodeId(4)]);
        assert_eq!(a.replicas(ShardId(63)), [NodeId(3), NodeId(5), NodeId(4)]);
    }

    #[test]
    fn every_shard_gets_distinct_replicas_in_rank_order() {
        for (ids, n) in [
            (&[1u32, 2, 3][..], 3),
            (&[1, 2, 3, 4, 5][..], 3),
            (&[1, 2][..], 3),
        ] {
            let m = map(ids, 64, n);
            let width = n.min(ids.len());
            for s in 0..64 {
                let r = m.replicas(ShardId(s));
                assert_eq!(r.len(), width, "shard {s}");
                let distinct: BTreeSet<_> = r.iter().collect();
                assert_eq!(distinct.len(), width, "shard {s}: {r:?}");
                assert!(r.iter().all(|id| m.member(*id).is_some()));
            }
        }
        assert!(map(&[1, 2, 3], 4, 3).replicas(ShardId(4)).is_empty());
    }

    /// Slots (replica positions) and rank-0 positions per member.
    fn load(m: &ShardMap) -> (HashMap<NodeId, usize>, HashMap<NodeId, usize>) {
        let mut slots = HashMap::new();
        let mut primaries = HashMap::new();
        for s in 0..m.shards() {
            let r = m.replicas(ShardId(s));
            for id in r {
                *slots.entry(*id).or_insert(0) += 1;
            }
            if let Some(p) = r.first() {
                *primaries.entry(*p).or_insert(0) += 1;
            }
        }
        (slots, primaries)
    }

    #[test]
    fn load_is_roughly_balanced() {
        // 3 members, N=3: every member holds every shard; rank 0 spreads.
        let (slots, primaries) = load(&map(&[1, 2, 3], 64, 3));
        assert!(slots.values().all(|&n| n == 64), "{slots:?}");
        assert_eq!(primaries.len(), 3, "{primaries:?}");
        assert!(
            primaries.values().all(|&n| (21..=22).contains(&n)),
            "{primaries:?}"
        );
        // 5 members, N=3: 192 slots, 38.4 per member on average.
        let (slots, primaries) = load(&map(&[1, 2, 3, 4, 5], 64, 3));
        assert_eq!(slots.values().sum::<usize>(), 192);
        assert!(slots.values().all(|&n| (24..=54).contains(&n)), "{slots:?}");
        assert_eq!(primaries.len(), 5, "{primaries:?}");
        assert!(
            primaries.values().all(|&n| (12..=13).contains(&n)),
            "{primaries:?}"
        );
    }

    #[test]
    fn adding_a_member_moves_few_slots_and_only_to_the_new_member() {
        let before = map(&[1, 2, 3], 64, 3);
        let after = map(&[1, 2, 3, 4], 64, 3);
        let mut moved = 0;
        for s in 0..64 {
            let old: BTreeSet<_> = before.replicas(ShardId(s)).iter().copied().collect();
            let new: BTreeSet<_> = after.replicas(ShardId(s)).iter().copied().collect();
            let gained: Vec<_> = new.difference(&old).collect();
            assert!(
                gained.iter().all(|id| **id == NodeId(4)),
                "shard {s}: old members swapped places: {old:?} -> {new:?}"
            );
            moved += gained.len();
        }
        // Ideal is 1/4 of the 192 slots (the new member's fair share); allow up to 40%.
        assert!(moved > 0, "the new member got no replicas");
        assert!(moved * 100 < 192 * 40, "{moved} of 192 slots moved");
    }

    #[test]
    fn json_round_trips() {
        let m = ShardMap::new(9, 16, 3, 32, members(&[4, 2, 7])).expect("valid");
        let back = ShardMap::from_json(&m.to_json()).expect("decodes");
        assert_eq!(back, m);
        let v: serde_json::Value = serde_json::from_slice(&m.to_json()).expect("json");
        assert_eq!(v["format"], 1);
        assert_eq!(v["members"][0]["addr"], "127.0.0.1:7004");
    }

    #[test]
    fn bad_maps_are_typed_errors() {
        let e = |r: Result<ShardMap, ShardMapError>| r.err();
        assert!(matches!(
            e(ShardMap::new(1, 0, 3, 64, members(&[1]))),
            Some(ShardMapError::ShardCount { shards: 0 })
        ));
        assert!(matches!(
            e(ShardMap::new(1, 4, 0, 64, members(&[1]))),
            Some(ShardMapError::ZeroReplication)
        ));
        assert!(matches!(
            e(ShardMap::new(1, 4, 3, 0, members(&[1]))),
            Some(ShardMapError::Vnodes { vnodes: 0 })
        ));
        assert!(matches!(
            e(ShardMap::new(1, 4, 3, 64, Vec::new())),
            Some(ShardMapError::NoMembers)
        ));
        assert!(matches!(
            e(ShardMap::new(1, 4, 3, 64, members(&[1, 2, 1]))),
            Some(ShardMapError::DuplicateMember { id: NodeId(1) })
        ));
        let mut blank = members(&[1, 2]);
        blank[1].addr = " ".to_owned();
        assert!(matches!(
            e(ShardMap::new(1, 4, 3, 64, blank)),
            Some(ShardMapError::EmptyAddr { id: NodeId(2) })
        ));
        assert!(matches!(
            e(ShardMap::from_json(br#"{"format": 3}"#)),
            Some(ShardMapError::UnsupportedFormat { actual: 3 })
        ));
        assert!(matches!(
            e(ShardMap::from_json(b"{")),
            Some(ShardMapError::Malformed { .. })
        ));
        let unknown_field = br#"{"format":1,"version":1,"shards":1,"replication":1,"vnodes":1,"members":[{"id":1,"addr":"a:1"}],"x":0}"#;
        assert!(matches!(
            e(ShardMap::from_json(unknown_field)),
            Some(ShardMapError::Malformed { .. })
        ));
    }

    fn with_states(ids: &[u32], states: &[(u32, MemberState)]) -> ShardMap {
        let mut ms = members(ids);
        for m in &mut ms {
            if let Some((_, st)) = states.iter().find(|(id, _)| *id == m.id.0) {
                m.state = *st;
            }
        }
        ShardMap::new(1, 64, 3, DEFAULT_VNODES, ms).expect("valid map")
    }

    /// A format 1 map as the previous version wrote it (committed bytes): read as every
    /// member active, and written back byte for byte.
    #[test]
    fn format_1_reads_as_all_active_and_is_still_written() {
        let v1 = br#"{"format":1,"version":4,"shards":8,"replication":3,"vnodes":16,"members":[{"id":1,"addr":"10.0.0.1:7400"},{"id":2,"addr":"10.0.0.2:7400"},{"id":3,"addr":"10.0.0.3:7400"}]}"#;
        let m = ShardMap::from_json(v1).expect("format 1 decodes");
        assert!(m.members().iter().all(|x| x.state == MemberState::Active));
        assert_eq!(m.to_json().as_ref(), v1.as_slice());
        let with_state = br#"{"format":1,"version":1,"shards":1,"replication":1,"vnodes":1,"members":[{"id":1,"addr":"a:1","state":"active"}]}"#;
        assert!(matches!(
            ShardMap::from_json(with_state),
            Err(ShardMapError::StateFormat { id: 1 })
        ));
    }

    #[test]
    fn format_2_round_trips_member_states() {
        let m = with_states(
            &[1, 2, 3, 4, 5],
            &[(4, MemberState::Draining), (5, MemberState::Retired)],
        );
        let json = m.to_json();
        let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(v["format"], 2);
        assert_eq!(v["members"][0]["state"], "active");
        assert_eq!(v["members"][3]["state"], "draining");
        assert_eq!(v["members"][4]["state"], "retired");
        assert_eq!(ShardMap::from_json(&json).expect("decodes"), m);
        assert_eq!(m.retired().collect::<Vec<_>>(), [NodeId(5)]);
        assert!(m.is_retired(NodeId(5)) && !m.is_retired(NodeId(4)));
        let missing = br#"{"format":2,"version":1,"shards":1,"replication":1,"vnodes":1,"members":[{"id":1,"addr":"a:1"}]}"#;
        assert!(matches!(
            ShardMap::from_json(missing),
            Err(ShardMapError::StateFormat { id: 1 })
        ));
        let unknown = br#"{"format":2,"version":1,"shards":1,"replication":1,"vnodes":1,"members":[{"id":1,"addr":"a:1","state":"gone"}]}"#;
        assert!(matches!(
            ShardMap::from_json(unknown),
            Err(ShardMapError::UnknownState { id: 1, .. })
        ));
    }

    #[test]
    fn only_active_members_are_placed() {
        let states = with_states(
            &[1, 2, 3, 4, 5],
            &[(4, MemberState::Draining), (5, MemberState::Retired)],
        );
        let active_only = map(&[1, 2, 3], 64, 3);
        assert!(states.same_placement(&active_only));
        for s in 0..64 {
            assert_eq!(
                states.replicas(ShardId(s)),
                active_only.replicas(ShardId(s))
            );
        }
        assert!(states.shards_of(NodeId(4)).is_empty());
        assert!(states.shards_of(NodeId(5)).is_empty());
        // Fewer active members than N: every shard on all of them.
        let two = with_states(&[1, 2, 3], &[(3, MemberState::Draining)]);
        assert!((0..64).all(|s| two.replicas(ShardId(s)).len() == 2));
        assert!(matches!(
            ShardMap::new(
                1,
                4,
                3,
                64,
                vec![Member {
                    state: MemberState::Retired,
                    ..Member::active(NodeId(1), "a:1")
                }]
            ),
            Err(ShardMapError::NoActiveMembers)
        ));
    }

    #[test]
    fn draining_a_member_moves_only_its_slots() {
        let before = map(&[1, 2, 3, 4, 5], 64, 3);
        let after = before
            .with_member_state(NodeId(4), MemberState::Draining)
            .expect("member");
        assert_eq!(after.version(), 2);
        for s in 0..64 {
            let old: BTreeSet<_> = before.replicas(ShardId(s)).iter().copied().collect();
            let new: BTreeSet<_> = after.replicas(ShardId(s)).iter().copied().collect();
            assert!(!new.contains(&NodeId(4)), "shard {s}");
            if !old.contains(&NodeId(4)) {
                assert_eq!(old, new, "shard {s} did not hold member 4 but changed");
            } else {
                assert_eq!(
                    old.intersection(&new).count(),
                    2,
                    "shard {s}: {old:?} -> {new:?}"
                );
            }
        }
        assert!(matches!(
            before.with_member_state(NodeId(9), MemberState::Draining),
            Err(ShardMapError::NotAMember { id: NodeId(9), .. })
        ));
    }

    #[test]
    fn membership_operations_check_states_and_the_active_count() {
        let m = map(&[1, 2, 3], 16, 3);
        let added = m.add_member(NodeId(4), "127.0.0.1:7004").expect("add");
        assert_eq!((added.version(), added.active()), (2, 4));
        assert!(matches!(
            added.add_member(NodeId(4), "x:1"),
            Err(ShardMapError::MemberExists { id: NodeId(4), .. })
        ));
        // Draining below N active members is refused.
        assert!(matches!(
            m.drain_member(NodeId(1)),
            Err(ShardMapError::TooFewActive {
                active: 2,
                replication: 3
            })
        ));
        let drained = added.drain_member(NodeId(1)).expect("drain");
        assert_eq!(drained.state(NodeId(1)), Some(MemberState::Draining));
        assert!(drained.shards_of(NodeId(1)).is_empty());
        assert!(matches!(
            added.remove_member(NodeId(1)),
            Err(ShardMapError::WrongState {
                needed: "draining",
                ..
            })
        ));
        let removed = drained.remove_member(NodeId(1)).expect("remove");
        assert!(removed.member(NodeId(1)).is_none());
        assert_eq!(removed.version(), 4);
        // Replace: the old id retired for good, never reused.
        let replaced = removed
            .replace_member(NodeId(2), NodeId(5), "127.0.0.1:7005")
            .expect("replace");
        assert!(replaced.is_retired(NodeId(2)));
        assert!(replaced.shards_of(NodeId(2)).is_empty());
        assert!(matches!(
            replaced.add_member(NodeId(2), "x:1"),
            Err(ShardMapError::MemberExists {
                state: MemberState::Retired,
                ..
            })
        ));
        assert!(matches!(
            replaced.replace_member(NodeId(2), NodeId(6), "x:1"),
            Err(ShardMapError::WrongState { .. })
        ));
        assert!(matches!(
            replaced.drain_member(NodeId(9)),
            Err(ShardMapError::NotAMember { .. })
        ));
        let back = ShardMap::from_json(&replaced.to_json()).expect("decodes");
        assert_eq!(back, replaced);
    }

    #[tokio::test]
    async fn change_members_publishes_the_next_version_and_reapplies_after_a_lost_race() {
        let store = memory_store();
        bootstrap(&store, &map(&[1, 2, 3], 8, 3))
            .await
            .expect("bootstrap");
        let v2 = change_members(&store, |m| m.add_member(NodeId(4), "a:4"))
            .await
            .expect("add");
        assert_eq!(v2.version(), 2);
        // Both land, whichever wins the race for version 3.
        let (a, b) = tokio::join!(
            change_members(&store, |m| m.add_member(NodeId(5), "a:5")),
            change_members(&store, |m| m.drain_member(NodeId(1))),
        );
        a.expect("add 5");
        b.expect("drain 1");
        let latest = load_latest(&store).await.expect("load").expect("a map");
        assert_eq!(latest.version(), 4);
        assert!(latest.member(NodeId(5)).is_some());
        assert_eq!(latest.state(NodeId(1)), Some(MemberState::Draining));
        // A refused change publishes nothing.
        assert!(matches!(
            change_members(&store, |m| m.add_member(NodeId(5), "a:5")).await,
            Err(ShardMapError::MemberExists { .. })
        ));
        assert_eq!(
            load_latest(&store)
                .await
                .expect("load")
                .map(|m| m.version()),
            Some(4)
        );
    }

    #[tokio::test]
    async fn publish_is_create_only_and_latest_wins() {
        let store = memory_store();
        assert!(load_latest(&store).await.expect("list").is_none());
        let v1 = map(&[1, 2, 3], 8, 3);
        assert_eq!(
            publish(&store, &v1).await.expect("publish"),
            PublishOutcome::Created
        );
        let rival = v1
            .with_member_addr(NodeId(1), "10.0.0.1:1")
            .expect("member")
            .with_version(1);
        assert_eq!(
            publish(&store, &rival).await.expect("publish"),
            PublishOutcome::Lost(v1.clone())
        );
        let v2 = v1
            .with_member_addr(NodeId(2), "10.0.0.2:2")
            .expect("member");
        assert_eq!(
            publish(&store, &v2).await.expect("publish"),
            PublishOutcome::Created
        );
        assert_eq!(load_latest(&store).await.expect("load"), Some(v2.clone()));
        assert_eq!(load_newer(&store, 1).await.expect("load"), Some(v2.clone()));
        assert_eq!(load_newer(&store, 2).await.expect("load"), None);
    }

    #[tokio::test]
    async fn concurrent_bootstraps_agree_on_one_map() {
        let store = memory_store();
        let tasks: Vec<_> = (0..8u32)
            .map(|i| {
                let store = store.clone();
                // Every contender proposes different addresses.
                let mut ms = members(&[1, 2, 3]);
                for m in &mut ms {
                    m.addr = format!("10.0.{i}.{}:7400", m.id.0);
                }
                let initial = ShardMap::new(0, 8, 3, DEFAULT_VNODES, ms).expect("valid");
                tokio::spawn(async move { bootstrap(&store, &initial).await })
            })
            .collect();
        let mut maps = Vec::new();
        for t in tasks {
            maps.push(t.await.expect("task").expect("bootstrap"));
        }
        assert!(maps.iter().all(|m| m == &maps[0]), "bootstraps disagree");
        assert_eq!(maps[0].version(), 1);
        let keys = store
            .list(tierkv_engine::paths::SHARDMAP_PREFIX, None)
            .await
            .expect("list");
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_eq!(
            load_latest(&store).await.expect("load").as_ref(),
            Some(&maps[0])
        );
    }

    #[tokio::test]
    async fn set_member_addr_publishes_only_changes_and_retries_races() {
        let store = memory_store();
        assert!(matches!(
            set_member_addr(&store, NodeId(1), "a:1").await,
            Err(ShardMapError::NoMap)
        ));
        let v1 = bootstrap(&store, &map(&[1, 2, 3], 8, 3))
            .await
            .expect("bootstrap");
        let same = set_member_addr(&store, NodeId(1), "127.0.0.1:7001")
            .await
            .expect("set");
        assert_eq!(same.version(), 1, "unchanged address must not publish");
        let v2 = set_member_addr(&store, NodeId(2), "10.0.0.2:9")
            .await
            .expect("set");
        assert_eq!(v2.version(), 2);
        assert_eq!(
            v2.member(NodeId(2)).map(|m| m.addr.as_str()),
            Some("10.0.0.2:9")
        );
        assert_eq!(v2.replicas(ShardId(3)), v1.replicas(ShardId(3)));
        assert!(matches!(
            set_member_addr(&store, NodeId(9), "a:1").await,
            Err(ShardMapError::NotAMember {
                id: NodeId(9),
                version: 2
            })
        ));
        // Concurrent changes of different members: both land, in some order.
        let (a, b) = tokio::join!(
            set_member_addr(&store, NodeId(1), "10.0.0.1:9"),
            set_member_addr(&store, NodeId(3), "10.0.0.3:9"),
        );
        a.expect("set 1");
        b.expect("set 3");
        let latest = load_latest(&store).await.expect("load").expect("a map");
        assert_eq!(latest.version(), 4);
        for (id, addr) in [(1, "10.0.0.1:9"), (2, "10.0.0.2:9"), (3, "10.0.0.3:9")] {
            assert_eq!(
                latest.member(NodeId(id)).map(|m| m.addr.as_str()),
                Some(addr)
            );
        }
    }
}
