//! The admin API's JSON documents (the `admin` tag of `openapi.yaml`). Figures a node did
//! not report (an older node, an unreachable one) are `null`, never a made-up zero.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether what a node said about itself is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FactsState {
    /// It answered `Describe`: every figure is there.
    Ok,
    /// It does not know `Describe` (an older version): replica state only, from `Status`.
    Unsupported,
    /// Its description could not be read: replica state only, from `Status`.
    Invalid,
    /// It did not answer.
    Unreachable,
}

/// Overall health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Every member answers and every shard has a serving leader with every replica caught up.
    Healthy,
    /// Every shard has a serving leader, but a member is down or a replica lags, rejoins or
    /// failed.
    Degraded,
    /// Some shard has no serving leader: its keys cannot be written.
    Unavailable,
}

/// `GET /admin/v1/cluster`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClusterOverview {
    /// The gateway answering.
    pub gateway: GatewayInfo,
    /// The shard map in use.
    pub map: MapInfo,
    /// Overall health.
    pub health: ClusterHealth,
    /// Replica roles over every shard and member.
    pub roles: RoleCounts,
    /// Every member, in the map's order.
    pub members: Vec<MemberSummary>,
}

/// The gateway answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GatewayInfo {
    /// Its software version.
    pub version: String,
    /// When it started, unix milliseconds.
    pub started_at_ms: u64,
    /// Its clock now, unix milliseconds.
    pub now_ms: u64,
}

/// The shard map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MapInfo {
    /// Its version.
    pub version: u64,
    /// Shards of the keyspace.
    pub shards: u32,
    /// Replicas per shard.
    pub replication: u32,
}

/// Overall health with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterHealth {
    /// The verdict.
    pub status: HealthState,
    /// Members answering status polls.
    pub members_up: u32,
    /// Members in the map.
    pub members: u32,
    /// Shards no replica reports as serving leader.
    pub shards_without_leader: u32,
    /// Replicas that lag their leader, rejoin after disk loss or stopped on a WAL failure.
    pub replicas_lagging: u32,
    /// Why it is not healthy, one sentence each.
    pub reasons: Vec<String>,
}

/// Replica roles summed over every shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleCounts {
    /// Serving leaders.
    pub leader: u32,
    /// Leaders not serving yet.
    pub recovering: u32,
    /// Replicas taking over.
    pub candidate: u32,
    /// Followers.
    pub follower: u32,
    /// Replicas of members that did not report.
    pub unknown: u32,
}

/// One member in the overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberSummary {
    /// Node id.
    pub id: u32,
    /// Address in the shard map.
    pub addr: String,
    /// Whether it answered the last status poll (null before the first poll).
    pub up: Option<bool>,
    /// When it last answered a status poll, unix milliseconds (the gateway's clock).
    pub last_heartbeat_ms: Option<u64>,
    /// Its software version (null unless it answered `Describe`).
    pub version: Option<String>,
    /// Shards it leads (serving).
    pub leaders: Option<u32>,
    /// Shards it follows.
    pub followers: Option<u32>,
    /// Whether its facts are complete.
    pub facts: FactsState,
    /// Why not, when they are not.
    pub facts_detail: Option<String>,
}

/// `GET /admin/v1/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    /// Every member, in the map's order.
    pub nodes: Vec<NodeInfo>,
}

/// One node in detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// Node id.
    pub id: u32,
    /// Address in the shard map.
    pub addr: String,
    /// Whether it answered the last status poll (null before the first poll).
    pub up: Option<bool>,
    /// When it last answered a status poll, unix milliseconds (the gateway's clock).
    pub last_heartbeat_ms: Option<u64>,
    /// Whether its facts are complete.
    pub facts: FactsState,
    /// Why not, when they are not.
    pub facts_detail: Option<String>,
    /// Its software version.
    pub version: Option<String>,
    /// When it started, unix milliseconds (its clock).
    pub started_at_ms: Option<u64>,
    /// The shard map version it runs under.
    pub map_version: Option<u64>,
    /// Shards it hosts.
    pub shards_hosted: Option<u32>,
    /// Shards it leads (serving).
    pub shards_led: Option<u32>,
    /// Shards it follows.
    pub shards_followed: Option<u32>,
    /// Its replicas rejoining after disk loss.
    pub rejoining: Option<u32>,
    /// Bytes in its WAL files.
    pub wal_bytes: Option<u64>,
    /// Its WAL files.
    pub wal_files: Option<u64>,
    /// Whether its WAL failed (it must restart).
    pub wal_poisoned: Option<bool>,
    /// Bytes in its active memtables.
    pub memtable_bytes: Option<u64>,
    /// Bytes it has not flushed to object storage.
    pub unflushed_bytes: Option<u64>,
    /// Segments in its replicas' views.
    pub segments: Option<u64>,
    /// Bytes in those segments.
    pub segment_bytes: Option<u64>,
    /// Its block cache.
    pub block_cache: Option<CacheRatio>,
    /// Client operations per second it served, over the last two gatherings (null until
    /// there are two).
    pub ops_per_sec: Option<f64>,
}

/// A cache's effectiveness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CacheRatio {
    /// Lookups that hit.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
    /// hits / (hits + misses); null before the first lookup.
    pub hit_ratio: Option<f64>,
}

/// `GET /admin/v1/shards`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShardList {
    /// Every shard, by id.
    pub shards: Vec<ShardInfo>,
}

/// One shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShardInfo {
    /// Shard id.
    pub shard: u32,
    /// The serving leader (null when none reports serving).
    pub leader: Option<u32>,
    /// The leader's epoch (else the highest epoch a replica reports).
    pub epoch: Option<u64>,
    /// Committed seq at the leader: the shard's latest version.
    pub commit_seq: Option<u64>,
    /// Flushed seq of its latest manifest.
    pub flushed_seq: Option<u64>,
    /// Segments in the leader's view.
    pub segments: Option<u64>,
    /// Bytes in those segments.
    pub segment_bytes: Option<u64>,
    /// Bytes in the leader's active memtable.
    pub memtable_bytes: Option<u64>,
    /// Bytes the leader has not flushed.
    pub unflushed_bytes: Option<u64>,
    /// Client operations per second on the shard (every replica's), over the last two
    /// gatherings; null until there are two.
    pub ops_per_sec: Option<f64>,
    /// Replicas in rank order (the first is the preferred leader).
    pub replicas: Vec<ReplicaInfo>,
}

/// One replica of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaInfo {
    /// Its node.
    pub node: u32,
    /// Its rank (0: preferred leader).
    pub rank: u32,
    /// `leader`, `recovering`, `candidate`, `follower`; null when its node did not report.
    pub role: Option<String>,
    /// The epoch it promised (a leader's own).
    pub epoch: Option<u64>,
    /// Highest seq it knows committed.
    pub commit_seq: Option<u64>,
    /// Highest seq applied to its view (null from nodes that report `Status` only).
    pub applied_seq: Option<u64>,
    /// End of its log.
    pub last_seq: Option<u64>,
    /// Its flushed prefix.
    pub flushed_seq: Option<u64>,
    /// Records behind the leader's log end, as the leader counts its acknowledgements (null
    /// for the leader itself and when the leader did not say).
    pub lag: Option<u64>,
    /// Committed records it knows it misses (its own count).
    pub records_behind: Option<u64>,
    /// Rejoining after disk loss.
    pub rejoining: Option<bool>,
    /// Its node answered the last status poll.
    pub up: Option<bool>,
}

/// `GET /admin/v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// Newest first.
    pub events: Vec<Event>,
    /// Members whose events could not be read (down, or an older version).
    pub missing_from: Vec<u32>,
}

/// Who reported an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// A node (see `node`).
    Node,
    /// The gateway answering.
    Gateway,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// When, unix milliseconds (the source's clock).
    pub at_ms: u64,
    /// Who reported it.
    pub source: EventSource,
    /// The node that reported it, or (gateway events) the node it is about.
    pub node: u32,
    /// `node_started`, `became_leader`, `stepped_down`, `handed_over`, `wal_failed`
    /// (nodes); `member_down`, `member_up` (gateway). More may be added.
    pub kind: String,
    /// The shard, for shard events.
    pub shard: Option<u32>,
    /// The epoch, for leadership events.
    pub epoch: Option<u64>,
    /// The other node involved: previous leader, known leader, handover target.
    pub peer: Option<u32>,
    /// The event in one sentence.
    pub message: String,
}

/// `GET /admin/v1/traffic`: this gateway's `/v1/` requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Traffic {
    /// Seconds between points.
    pub interval_secs: u32,
    /// Seconds of history kept.
    pub window_secs: u32,
    /// Oldest first.
    pub points: Vec<TrafficPoint>,
}

/// One interval of traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrafficPoint {
    /// End of the interval, unix milliseconds.
    pub at_ms: u64,
    /// Requests answered per second.
    pub requests_per_sec: f64,
    /// 4xx answers per second.
    pub client_errors_per_sec: f64,
    /// 5xx answers per second.
    pub server_errors_per_sec: f64,
    /// Median latency, milliseconds (null without requests).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, milliseconds (null without requests).
    pub p99_ms: Option<f64>,
}

/// `GET /admin/v1/hot-keys`: this gateway's hot keys and its value cache's hits per tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HotKeys {
    /// Whether this gateway tracks hot keys (always true since the gateway cache tier;
    /// kept for dashboards built against older gateways).
    pub available: bool,
    /// The window the counts cover, seconds.
    pub window_secs: Option<u32>,
    /// Most-read keys, hottest first.
    pub reads: Vec<HotKey>,
    /// Most-written keys, hottest first.
    pub writes: Vec<HotKey>,
    /// The value cache, per tier: `memory`, then `disk` when the gateway has a disk tier
    /// (which sees the memory tier's misses); empty when the gateway keeps no value cache.
    pub cache: Vec<CacheTier>,
}

/// One hot key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HotKey {
    /// The key (see `key_encoding`).
    pub key: String,
    /// `utf8` or `base64`.
    pub key_encoding: crate::keys::Encoding,
    /// Operations counted in the window.
    pub count: u64,
    /// How much `count` may overestimate (top-k sketches).
    pub error: u64,
}

/// One tier of the value cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CacheTier {
    /// `memory` or `disk`.
    pub tier: String,
    /// Lookups that hit.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
    /// hits / (hits + misses); null before the first lookup.
    pub hit_ratio: Option<f64>,
}

impl CacheTier {
    pub(crate) fn new(tier: &str, hits: u64, lookups: u64) -> Self {
        #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
        let hit_ratio = (lookups > 0).then(|| hits as f64 / lookups as f64);
        Self {
            tier: tier.to_owned(),
            hits,
            misses: lookups.saturating_sub(hits),
            hit_ratio,
        }
    }
}

/// `POST /admin/v1/session`: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The cluster secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A one-time login token (from the link `tierkv dev` prints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// How the caller is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// `bearer` (the secret in `Authorization`), `cookie`, `key` (an admin API key) or
    /// `open` (authentication turned off).
    pub method: String,
    /// When the session ends, unix milliseconds (null for bearer).
    pub expires_at_ms: Option<u64>,
}

/// `POST /admin/v1/members`: the member to add (design note 0009 §6). Start its node first
/// (same object store, no `initial_members`): it waits until a map lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// Its node id (the node's `cluster.node_id`), never used before in this cluster.
    #[schema(minimum = 1, maximum = 4_294_967_295_u64)]
    pub id: u64,
    /// `host:port` where other nodes and gateways reach it (the node's `cluster.advertise`).
    #[schema(
        pattern = r"^[A-Za-z0-9.-]{1,253}:([1-9][0-9]{0,3}|[1-5][0-9]{4})$",
        max_length = 259
    )]
    pub address: String,
}

/// State of a member in the shard map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberStateName {
    /// In the ring: holds replicas.
    Active,
    /// Leaving: its replicas move to the active members.
    Draining,
    /// Replaced: its id never serves again.
    Retired,
}

/// A member of the shard map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberEntry {
    /// Node id.
    pub id: u32,
    /// Address in the shard map.
    pub addr: String,
    /// Its state.
    pub state: MemberStateName,
}

/// The answer of a membership operation: the shard map version it published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MembershipChange {
    /// The version published (follow the moves until `GET /admin/v1/moves` reports this
    /// version or a newer one with nothing moving).
    pub map_version: u64,
    /// Every member of that version.
    pub members: Vec<MemberEntry>,
}

/// `GET /admin/v1/moves`: every shard's move toward the newest map's placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Moves {
    /// The shard map version the targets come from.
    pub map_version: u64,
    /// Shards of the keyspace.
    pub shards_total: u32,
    /// Shards whose configuration is not their target yet. A shard whose leader did not
    /// report counts as this gateway last saw it under the same map version (settled after
    /// a failover stays settled), and as moving when it never saw it settled.
    pub shards_moving: u32,
    /// Shards whose serving leader did not report (a failover in progress, a member
    /// unreachable): their `phase` is `unknown` and `leader` null.
    pub shards_unreported: u32,
    /// Shards that had to move since the cluster was last settled (the largest number seen
    /// moving since then, by this gateway).
    pub shards_to_move: u32,
    /// Done fraction of those, 0..=1 (1 when nothing moves).
    pub progress: f64,
    /// Estimated seconds until every move is done, from the completion rate of the last
    /// minute (null when nothing completed lately, or nothing moves).
    pub eta_secs: Option<u64>,
    /// Every shard, in order.
    pub shards: Vec<ShardMove>,
}

/// One shard's move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShardMove {
    /// The shard.
    pub shard: u32,
    /// Its serving leader (null: none reported).
    pub leader: Option<u32>,
    /// The configuration in force at the leader: one voter set, or two (old, new) during
    /// the joint step (empty: unknown).
    pub current: Vec<Vec<u32>>,
    /// The replica set the newest map places it on.
    pub target: Vec<u32>,
    /// `done`, `learning`, `joint`, `final`, `releasing`, or `unknown` (no leader reported).
    pub phase: String,
    /// Whether it still moves.
    pub moving: bool,
    /// Records its learners are behind the leader's commit point (summed).
    pub records_behind: u64,
    /// Bytes of the log tail its learners still have to receive (summed).
    pub bytes_behind: u64,
}
