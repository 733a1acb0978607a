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
//! {"format": 1, "version": 3, "shards": 64, "replication": 3, "vnodes": 64,
//!  "members": [{"id": 1, "addr": "10.0.0.1:7400"}, {"id": 2, "addr": "10.0.0.2:7400"}]}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `format` | [`FORMAT`] = 1; other values are rejected |
//! | `version` | the map version; equals the number in the object's key |
//! | `shards` | number of shards (fixed for the cluster, 1..=[`MAX_SHARDS`]) |
//! | `replication` | replicas per shard, N (at least 1; all members if fewer) |
//! | `vnodes` | ring points per member (1..=[`MAX_VNODES`], default [`DEFAULT_VNODES`]) |
//! | `members` | node id (distinct) and `host:port` of its RPC/HTTP endpoint (non-empty) |
//!
//! # Placement
//!
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

mod store;

pub use store::{
    PublishOutcome, bootstrap, load_latest, load_newer, publish, set_member_addr, wait_for_latest,
};

/// The format this build writes and reads.
pub const FORMAT: u32 = 1;
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
    #[error("shard map format {actual} is not supported (supported: {FORMAT})")]
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
    /// Replicas per shard: `min(replication, members.len())`.
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

    /// Computes the placement table (the map is valid).
    fn place(&mut self) {
        let mut ring: Vec<(u64, NodeId)> = Vec::with_capacity(
            self.members
                .len()
                .saturating_mul(usize::try_from(self.vnodes).unwrap_or(0)),
        );
        for m in &self.members {
            for i in 0..self.vnodes {
                ring.push((member_point(m.id, i), m.id));
            }
        }
        ring.sort_unstable();
        self.width = self.replication.min(self.members.len());
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

    /// Replicas of `shard` in rank order (rank 0 first); empty if the shard is outside the
    /// map. `min(replication, members)` distinct members.
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

    /// The same map under another version number.
    #[must_use]
    pub fn with_version(&self, version: u64) -> Self {
        Self {
            version,
            ..self.clone()
        }
    }

    /// The next version of this map, with member `id` listening at `addr`.
    pub fn with_member_addr(&self, id: NodeId, addr: &str) -> Result<Self, ShardMapError> {
        let mut members = self.members.clone();
        let m = members
            .iter_mut()
            .find(|m| m.id == id)
            .ok_or(ShardMapError::NotAMember {
                id,
                version: self.version,
            })?;
        addr.clone_into(&mut m.addr);
        Self::new(
            self.version.saturating_add(1),
            self.shards,
            self.replication,
            self.vnodes,
            members,
        )
    }

    /// The JSON body of this map's object.
    #[must_use]
    pub fn to_json(&self) -> Bytes {
        let file = MapFile {
            format: FORMAT,
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
                })
                .collect(),
        };
        Bytes::from(serde_json::to_vec(&file).expect("a MapFile of plain fields always serializes"))
    }

    /// Parses and validates a map object's body.
    pub fn from_json(body: &[u8]) -> Result<Self, ShardMapError> {
        let FormatOnly { format } =
            serde_json::from_slice(body).map_err(|source| ShardMapError::Malformed { source })?;
        if format != FORMAT {
            return Err(ShardMapError::UnsupportedFormat { actual: format });
        }
        let f: MapFile =
            serde_json::from_slice(body).map_err(|source| ShardMapError::Malformed { source })?;
        let members = f
            .members
            .into_iter()
            .map(|m| Member {
                id: NodeId(m.id),
                addr: m.addr,
            })
            .collect();
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
            .map(|&i| Member {
                id: NodeId(i),
                addr: format!("127.0.0.1:{}", 7000 + i),
            })
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
            e(ShardMap::from_json(br#"{"format": 2}"#)),
            Some(ShardMapError::UnsupportedFormat { actual: 2 })
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
