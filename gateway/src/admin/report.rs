//! From a [`Gathered`] (what the members said) to the admin API's documents: the overview,
//! nodes, shards and events, and the load derived from two gatherings.

use std::collections::HashMap;

use tierkv_engine::types::{NodeId, ShardId};
use tierkv_wire::proto::ReplicaRole;
use tierkv_wire::proto::describe::{NodeEvent, ShardFacts};

use super::model::{
    CacheRatio, ClusterHealth, ClusterOverview, Event, EventList, EventSource, FactsState,
    GatewayInfo, HealthState, MapInfo, MemberSummary, NodeInfo, NodeList, ReplicaInfo, RoleCounts,
    ShardInfo, ShardList,
};
use super::view::{Facts, FactsGap, Gathered, MemberFacts};

/// A follower this many committed records behind counts as lagging in the health verdict
/// (a few behind is normal under writes).
const LAGGING_RECORDS: u64 = 1000;

/// Readings further apart than this give no rate (the dashboard was closed meanwhile).
const MAX_RATE_WINDOW_SECS: f64 = 30.0;

/// One replica as its node reported it: everything `Describe` gives, or `Status`'s part.
#[derive(Debug, Clone)]
struct Replica {
    role: String,
    epoch: u64,
    commit_seq: u64,
    last_seq: u64,
    flushed_seq: u64,
    /// Only from `Describe`.
    full: Option<ShardFacts>,
}

fn role_name(r: ReplicaRole) -> &'static str {
    match r {
        ReplicaRole::Follower => "follower",
        ReplicaRole::Candidate => "candidate",
        ReplicaRole::Recovering => "recovering",
        ReplicaRole::Leader => "leader",
    }
}

/// The replicas a member reported, by shard.
fn replicas_of(m: &MemberFacts) -> HashMap<u32, Replica> {
    match &m.facts {
        Facts::Described(d) => d
            .shards
            .iter()
            .map(|s| {
                (
                    s.shard,
                    Replica {
                        role: s.role.clone(),
                        epoch: s.epoch,
                        commit_seq: s.commit_seq,
                        last_seq: s.last_seq,
                        flushed_seq: s.flushed_seq,
                        full: Some(s.clone()),
                    },
                )
            })
            .collect(),
        Facts::StatusOnly { status, .. } => status
            .shards
            .iter()
            .map(|s| {
                (
                    s.shard.0,
                    Replica {
                        role: role_name(s.role).to_owned(),
                        epoch: s.epoch.0,
                        commit_seq: s.commit_seq.0,
                        last_seq: s.last_seq.0,
                        flushed_seq: s.flushed_seq.0,
                        full: None,
                    },
                )
            })
            .collect(),
        Facts::Unreachable { .. } => HashMap::new(),
    }
}

fn facts_state(m: &MemberFacts) -> (FactsState, Option<String>) {
    match &m.facts {
        Facts::Described(_) => (FactsState::Ok, None),
        Facts::StatusOnly {
            gap: FactsGap::Unsupported,
            ..
        } => (
            FactsState::Unsupported,
            Some("an older version: it does not answer Describe".to_owned()),
        ),
        Facts::StatusOnly {
            gap: FactsGap::Invalid(why),
            ..
        } => (FactsState::Invalid, Some(why.clone())),
        Facts::Unreachable { error } => (FactsState::Unreachable, Some(error.clone())),
    }
}

/// The load between two gatherings: client operations per second per shard and per node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rates {
    pub(crate) shard: HashMap<u32, f64>,
    pub(crate) node: HashMap<u32, f64>,
}

/// One node's operation counters at one gathering.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    started_at_ms: u64,
    at: tokio::time::Instant,
    /// Per shard: reads + writes.
    ops: HashMap<u32, u64>,
}

/// The readings of `g` taken at `at`.
pub(crate) fn readings(g: &Gathered, at: tokio::time::Instant) -> HashMap<NodeId, Reading> {
    g.members
        .iter()
        .filter_map(|m| match &m.facts {
            Facts::Described(d) => Some((
                m.id,
                Reading {
                    started_at_ms: d.started_at_ms,
                    at,
                    ops: d
                        .shards
                        .iter()
                        .map(|s| (s.shard, s.reads.saturating_add(s.writes)))
                        .collect(),
                },
            )),
            _ => None,
        })
        .collect()
}

/// Per node, its oldest reading in `history` (oldest first) from the same run as its reading
/// in `now` (a node that restarted meanwhile counts from its first reading since).
pub(crate) fn baseline<'a>(
    history: impl Iterator<Item = &'a HashMap<NodeId, Reading>>,
    now: &HashMap<NodeId, Reading>,
) -> HashMap<NodeId, Reading> {
    let mut base: HashMap<NodeId, Reading> = HashMap::new();
    for readings in history {
        for (node, r) in readings {
            if now
                .get(node)
                .is_some_and(|cur| cur.started_at_ms == r.started_at_ms)
            {
                base.entry(*node).or_insert_with(|| r.clone());
            }
        }
    }
    base
}

/// Operations per second between `prev` and `now` (nodes that restarted in between, or
/// that have no earlier reading, are left out).
#[expect(clippy::cast_precision_loss, reason = "rates are approximate")]
pub(crate) fn rates(prev: &HashMap<NodeId, Reading>, now: &HashMap<NodeId, Reading>) -> Rates {
    let mut r = Rates::default();
    for (node, cur) in now {
        let Some(old) = prev.get(node) else { continue };
        if old.started_at_ms != cur.started_at_ms {
            continue;
        }
        let secs = cur.at.saturating_duration_since(old.at).as_secs_f64();
        // Too close to measure, or too old to say anything about now.
        if !(0.2..=MAX_RATE_WINDOW_SECS).contains(&secs) {
            continue;
        }
        let mut total = 0.0;
        for (shard, ops) in &cur.ops {
            let before = old.ops.get(shard).copied().unwrap_or(0);
            let rate = ops.saturating_sub(before) as f64 / secs;
            *r.shard.entry(*shard).or_default() += rate;
            total += rate;
        }
        r.node.insert(node.0, total);
    }
    r
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `GET /admin/v1/cluster`.
pub(crate) fn overview(g: &Gathered, gateway: GatewayInfo) -> ClusterOverview {
    let map = &g.map;
    let mut roles = RoleCounts::default();
    let mut members = Vec::new();
    let mut leading: HashMap<u32, bool> = HashMap::new();
    let mut lagging = 0u32;
    for m in &g.members {
        let reps = replicas_of(m);
        let (facts, facts_detail) = facts_state(m);
        let reported = !matches!(m.facts, Facts::Unreachable { .. });
        let mut leaders = 0;
        let mut followers = 0;
        for (shard, r) in &reps {
            match r.role.as_str() {
                "leader" => {
                    roles.leader += 1;
                    leaders += 1;
                    leading.insert(*shard, true);
                }
                "recovering" => roles.recovering += 1,
                "candidate" => roles.candidate += 1,
                _ => {
                    roles.follower += 1;
                    followers += 1;
                }
            }
            if let Some(f) = &r.full
                && (f.rejoining || f.poisoned || f.records_behind >= LAGGING_RECORDS)
            {
                lagging += 1;
            }
        }
        if !reported {
            roles.unknown += count(map.shards_of(m.id).len());
        }
        members.push(MemberSummary {
            id: m.id.0,
            addr: m.addr.clone(),
            up: m.answering,
            last_heartbeat_ms: m.last_seen_ms,
            version: match &m.facts {
                Facts::Described(d) => Some(d.version.clone()),
                _ => None,
            },
            leaders: reported.then_some(leaders),
            followers: reported.then_some(followers),
            facts,
            facts_detail,
        });
    }
    let members_up = count(
        g.members
            .iter()
            .filter(|m| m.answering == Some(true))
            .count(),
    );
    let without = count(
        (0..map.shards())
            .filter(|s| !leading.contains_key(s))
            .count(),
    );
    let mut reasons = Vec::new();
    for m in g.members.iter().filter(|m| m.answering != Some(true)) {
        reasons.push(match m.answering {
            Some(false) => format!("node {} does not answer", m.id),
            _ => format!("node {} has not been polled yet", m.id),
        });
    }
    if without > 0 {
        reasons.push(format!("{without} shard(s) have no serving leader"));
    }
    if lagging > 0 {
        reasons.push(format!(
            "{lagging} replica(s) lag, rejoin after disk loss or stopped on a WAL failure"
        ));
    }
    let status = if without > 0 {
        HealthState::Unavailable
    } else if reasons.is_empty() {
        HealthState::Healthy
    } else {
        HealthState::Degraded
    };
    ClusterOverview {
        gateway,
        map: MapInfo {
            version: map.version(),
            shards: map.shards(),
            replication: count(map.replication()),
        },
        health: ClusterHealth {
            status,
            members_up,
            members: count(g.members.len()),
            shards_without_leader: without,
            replicas_lagging: lagging,
            reasons,
        },
        roles,
        members,
    }
}

/// `GET /admin/v1/nodes`.
pub(crate) fn nodes(g: &Gathered, rates: &Rates) -> NodeList {
    let nodes = g
        .members
        .iter()
        .map(|m| {
            let (facts, facts_detail) = facts_state(m);
            let reps = replicas_of(m);
            let reported = !matches!(m.facts, Facts::Unreachable { .. });
            let role_count = |role: &str| {
                reported.then(|| count(reps.values().filter(|r| r.role == role).count()))
            };
            let mut info = NodeInfo {
                id: m.id.0,
                addr: m.addr.clone(),
                up: m.answering,
                last_heartbeat_ms: m.last_seen_ms,
                facts,
                facts_detail,
                version: None,
                started_at_ms: None,
                map_version: None,
                shards_hosted: reported.then(|| count(reps.len())),
                shards_led: role_count("leader"),
                shards_followed: role_count("follower"),
                rejoining: None,
                wal_bytes: None,
                wal_files: None,
                wal_poisoned: None,
                memtable_bytes: None,
                unflushed_bytes: None,
                segments: None,
                segment_bytes: None,
                block_cache: None,
                ops_per_sec: rates.node.get(&m.id.0).copied(),
            };
            match &m.facts {
                Facts::Described(d) => {
                    let sum = |f: fn(&ShardFacts) -> u64| Some(d.shards.iter().map(f).sum());
                    info.version = Some(d.version.clone());
                    info.started_at_ms = Some(d.started_at_ms);
                    info.map_version = Some(d.map_version);
                    info.rejoining = Some(count(d.shards.iter().filter(|s| s.rejoining).count()));
                    info.wal_bytes = Some(d.wal.bytes);
                    info.wal_files = Some(d.wal.files);
                    info.wal_poisoned = Some(d.wal.poisoned);
                    info.memtable_bytes = sum(|s| s.memtable_bytes);
                    info.unflushed_bytes = sum(|s| s.unflushed_bytes);
                    info.segments = sum(|s| s.l0_segments + s.l1_segments);
                    info.segment_bytes = sum(|s| s.segment_bytes);
                    info.block_cache = Some(ratio(d.block_cache.hits, d.block_cache.misses));
                }
                Facts::StatusOnly { status, .. } => info.map_version = Some(status.map_version),
                Facts::Unreachable { .. } => {}
            }
            info
        })
        .collect();
    NodeList { nodes }
}

/// A cache's hit ratio.
#[expect(clippy::cast_precision_loss, reason = "ratios are approximate")]
pub(crate) fn ratio(hits: u64, misses: u64) -> CacheRatio {
    let total = hits.saturating_add(misses);
    CacheRatio {
        hits,
        misses,
        hit_ratio: (total > 0).then(|| hits as f64 / total as f64),
    }
}

/// `GET /admin/v1/shards`.
pub(crate) fn shards(g: &Gathered, rates: &Rates) -> ShardList {
    let by_member: HashMap<NodeId, (&MemberFacts, HashMap<u32, Replica>)> = g
        .members
        .iter()
        .map(|m| (m.id, (m, replicas_of(m))))
        .collect();
    let shards = (0..g.map.shards())
        .map(|s| {
            let ranked = g.map.replicas(ShardId(s));
            let found: Vec<(u32, NodeId, Option<&Replica>, Option<bool>)> = (0u32..)
                .zip(ranked)
                .map(|(rank, node)| {
                    let entry = by_member.get(node);
                    let rep = entry.and_then(|(_, reps)| reps.get(&s));
                    let up = entry.and_then(|(m, _)| m.answering);
                    (rank, *node, rep, up)
                })
                .collect();
            let leader = found
                .iter()
                .filter_map(|(_, n, r, _)| {
                    r.filter(|r| r.role == "leader").map(|r| (r.epoch, *n, r))
                })
                .max_by_key(|(e, n, _)| (*e, n.0));
            let leader_full = leader.and_then(|(_, _, r)| r.full.as_ref());
            let replicas = found
                .iter()
                .map(|(rank, node, rep, up)| {
                    let full = rep.and_then(|r| r.full.as_ref());
                    let lag = match (leader, leader_full) {
                        (Some((_, l, _)), Some(lf)) if l != *node => lf
                            .followers
                            .iter()
                            .find(|f| f.node == node.0)
                            .map(|f| lf.last_seq.saturating_sub(f.match_seq)),
                        _ => None,
                    };
                    ReplicaInfo {
                        node: node.0,
                        rank: *rank,
                        role: rep.map(|r| r.role.clone()),
                        epoch: rep.map(|r| r.epoch),
                        commit_seq: rep.map(|r| r.commit_seq),
                        applied_seq: full.map(|f| f.applied_seq),
                        last_seq: rep.map(|r| r.last_seq),
                        flushed_seq: rep.map(|r| r.flushed_seq),
                        lag,
                        records_behind: full.map(|f| f.records_behind),
                        rejoining: full.map(|f| f.rejoining),
                        up: *up,
                    }
                })
                .collect();
            let best_epoch = found
                .iter()
                .filter_map(|(_, _, r, _)| r.map(|r| r.epoch))
                .max();
            ShardInfo {
                shard: s,
                leader: leader.map(|(_, n, _)| n.0),
                epoch: leader.map(|(e, _, _)| e).or(best_epoch),
                commit_seq: leader.map(|(_, _, r)| r.commit_seq),
                flushed_seq: leader.map(|(_, _, r)| r.flushed_seq),
                segments: leader_full.map(|f| f.l0_segments + f.l1_segments),
                segment_bytes: leader_full.map(|f| f.segment_bytes),
                memtable_bytes: leader_full.map(|f| f.memtable_bytes),
                unflushed_bytes: leader_full.map(|f| f.unflushed_bytes),
                ops_per_sec: rates.shard.get(&s).copied(),
                replicas,
            }
        })
        .collect();
    ShardList { shards }
}

fn node_message(node: u32, e: &NodeEvent) -> String {
    let shard = e.shard.map_or(String::new(), |s| format!(" shard {s}"));
    let epoch = e.epoch.map_or(String::new(), |x| format!(" (epoch {x})"));
    match e.kind.as_str() {
        "node_started" => format!(
            "node {node} started{}",
            e.map_version
                .map_or(String::new(), |v| format!(" (shard map version {v})"))
        ),
        "became_leader" => format!(
            "node {node} became leader of{shard}{epoch}{}",
            e.peer
                .map_or(String::new(), |p| format!("; previous leader: node {p}"))
        ),
        "stepped_down" => format!(
            "node {node} stopped leading{shard}{epoch}{}",
            e.peer
                .map_or(String::new(), |p| format!("; leader now: node {p}"))
        ),
        "handed_over" => format!(
            "node {node} handed{shard} over to node {}{epoch}",
            e.peer.map_or("?".to_owned(), |p| p.to_string())
        ),
        "wal_failed" => {
            format!("node {node}: the WAL failed; the replica of{shard} stopped until restart")
        }
        other => format!("node {node}: {other}{shard}{epoch}"),
    }
}

/// `GET /admin/v1/events`: the newest `limit`, newest first.
pub(crate) fn events(g: &Gathered, limit: usize) -> EventList {
    let mut out = Vec::new();
    let mut missing_from = Vec::new();
    for m in &g.members {
        match &m.facts {
            Facts::Described(d) => out.extend(d.events.iter().map(|e| Event {
                at_ms: e.at_ms,
                source: EventSource::Node,
                node: m.id.0,
                kind: e.kind.clone(),
                shard: e.shard,
                epoch: e.epoch,
                peer: e.peer,
                message: node_message(m.id.0, e),
            })),
            _ => missing_from.push(m.id.0),
        }
    }
    out.extend(g.events.iter().map(|e| Event {
        at_ms: e.at_ms,
        source: EventSource::Gateway,
        node: e.node.0,
        kind: e.kind.as_str().to_owned(),
        shard: None,
        epoch: None,
        peer: None,
        message: match e.kind {
            super::view::GatewayEventKind::MemberDown => {
                format!("node {} stopped answering status polls", e.node)
            }
            super::view::GatewayEventKind::MemberUp => {
                format!("node {} answers status polls", e.node)
            }
        },
    }));
    // Newest first; among equal times, gateway observations after node reports.
    out.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then(a.node.cmp(&b.node)));
    out.truncate(limit);
    EventList {
        events: out,
        missing_from,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tierkv_wire::proto::describe::{FollowerFacts, NodeDescription, NodeEvent};
    use tierkv_wire::proto::{NodeStatus, ShardStatus};
    use tierkv_wire::shardmap::{DEFAULT_VNODES, Member, ShardMap};

    use super::*;
    use crate::admin::view::{GatewayEvent, GatewayEventKind};

    const SHARDS: u32 = 4;

    fn map() -> Arc<ShardMap> {
        let members = (1..=3)
            .map(|id| Member::active(NodeId(id), format!("127.0.0.1:{id}")))
            .collect();
        Arc::new(ShardMap::new(1, SHARDS, 3, DEFAULT_VNODES, members).expect("map"))
    }

    /// Node `id`'s facts with every shard led by its first-ranked replica.
    fn described(map: &ShardMap, id: u32, started_at_ms: u64, ops: u64) -> Facts {
        let shards = (0..SHARDS)
            .map(|s| {
                let ranked = map.replicas(ShardId(s));
                let leads = ranked[0] == NodeId(id);
                ShardFacts {
                    shard: s,
                    role: if leads { "leader" } else { "follower" }.to_owned(),
                    epoch: 1,
                    leader: Some(ranked[0].0),
                    commit_seq: 20,
                    last_seq: 20,
                    reads: ops,
                    followers: if leads {
                        ranked[1..]
                            .iter()
                            .map(|n| FollowerFacts {
                                node: n.0,
                                match_seq: 15,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    ..ShardFacts::default()
                }
            })
            .collect();
        Facts::Described(Box::new(NodeDescription {
            node: id,
            started_at_ms,
            shards,
            events: vec![NodeEvent {
                id: 1,
                at_ms: 100 + u64::from(id),
                kind: "became_leader".to_owned(),
                shard: Some(0),
                epoch: Some(1),
                peer: Some(9),
                ..NodeEvent::default()
            }],
            ..NodeDescription::default()
        }))
    }

    fn member(id: u32, answering: Option<bool>, facts: Facts) -> MemberFacts {
        MemberFacts {
            id: NodeId(id),
            addr: format!("127.0.0.1:{id}"),
            answering,
            last_seen_ms: answering.map(|_| 5),
            facts,
        }
    }

    fn gateway() -> GatewayInfo {
        GatewayInfo {
            version: "v".to_owned(),
            started_at_ms: 0,
            now_ms: 1,
        }
    }

    #[test]
    fn a_healthy_cluster_and_one_that_lost_a_node() {
        let m = map();
        let all = Gathered {
            map: Arc::clone(&m),
            members: (1..=3)
                .map(|id| member(id, Some(true), described(&m, id, 1, 0)))
                .collect(),
            events: Vec::new(),
        };
        let o = overview(&all, gateway());
        assert_eq!(o.health.status, HealthState::Healthy, "{:?}", o.health);
        assert_eq!(o.roles.leader, SHARDS);
        assert_eq!(o.roles.follower, 2 * SHARDS);
        let leaders: u32 = o.members.iter().filter_map(|x| x.leaders).sum();
        assert_eq!(leaders, SHARDS);

        // Node 1 gone: the shards it led have no leader; node 2 is an older version.
        let status_of_2 = NodeStatus {
            node: NodeId(2),
            map_version: 1,
            shards: (0..SHARDS)
                .map(|s| ShardStatus {
                    shard: ShardId(s),
                    role: if m.replicas(ShardId(s))[0] == NodeId(2) {
                        ReplicaRole::Leader
                    } else {
                        ReplicaRole::Follower
                    },
                    epoch: tierkv_engine::types::Epoch(1),
                    leader: None,
                    commit_seq: tierkv_engine::types::SeqNo(20),
                    last_seq: tierkv_engine::types::SeqNo(20),
                    flushed_seq: tierkv_engine::types::SeqNo(0),
                    configuration: None,
                })
                .collect(),
        };
        let broken = Gathered {
            map: Arc::clone(&m),
            members: vec![
                member(
                    1,
                    Some(false),
                    Facts::Unreachable {
                        error: "cannot connect".to_owned(),
                    },
                ),
                member(
                    2,
                    Some(true),
                    Facts::StatusOnly {
                        status: status_of_2,
                        gap: FactsGap::Unsupported,
                    },
                ),
                member(3, Some(true), described(&m, 3, 1, 0)),
            ],
            events: vec![GatewayEvent {
                at_ms: 200,
                kind: GatewayEventKind::MemberDown,
                node: NodeId(1),
            }],
        };
        let led_by_1 = (0..SHARDS)
            .filter(|s| m.replicas(ShardId(*s))[0] == NodeId(1))
            .count();
        let o = overview(&broken, gateway());
        assert_eq!(o.health.members_up, 2);
        assert_eq!(o.health.shards_without_leader as usize, led_by_1);
        assert_eq!(
            o.health.status,
            if led_by_1 > 0 {
                HealthState::Unavailable
            } else {
                HealthState::Degraded
            }
        );
        assert!(
            o.health
                .reasons
                .iter()
                .any(|r| r == "node 1 does not answer")
        );
        assert_eq!(o.roles.unknown, SHARDS, "node 1 hosts every shard");
        assert_eq!(o.members[0].leaders, None, "unknown, not zero");
        assert_eq!(o.members[1].facts, FactsState::Unsupported);

        let list = shards(&broken, &Rates::default());
        for s in &list.shards {
            let r1 = &s.replicas.iter().find(|r| r.node == 1).expect("replica");
            assert_eq!((r1.role.as_deref(), r1.up), (None, Some(false)));
            let r2 = &s.replicas.iter().find(|r| r.node == 2).expect("replica");
            assert!(r2.role.is_some() && r2.applied_seq.is_none());
            if s.leader == Some(3) {
                assert_eq!(s.segments, Some(0), "the leader's figures");
                for r in s.replicas.iter().filter(|r| r.node != 3) {
                    assert_eq!(r.lag, Some(5), "last_seq 20 - match_seq 15");
                }
            }
        }

        let ev = events(&broken, 10);
        assert_eq!(ev.missing_from, vec![1, 2]);
        let kinds: Vec<&str> = ev.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, vec!["member_down", "became_leader"], "newest first");
        assert_eq!(
            ev.events[1].message,
            "node 3 became leader of shard 0 (epoch 1); previous leader: node 9"
        );
        assert_eq!(events(&broken, 1).events.len(), 1);
    }

    #[test]
    fn load_is_measured_from_the_oldest_reading_of_the_same_run() {
        let m = map();
        let gathered = |ops: u64, started: u64| Gathered {
            map: Arc::clone(&m),
            members: vec![member(1, Some(true), described(&m, 1, started, ops))],
            events: Vec::new(),
        };
        let t0 = tokio::time::Instant::now();
        let first = readings(&gathered(100, 1), t0);
        let second = readings(&gathered(150, 1), t0 + Duration::from_secs(1));
        let third = readings(&gathered(300, 1), t0 + Duration::from_secs(5));
        let base = baseline([&first, &second].into_iter(), &third);
        let r = rates(&base, &third);
        // (300 - 100) per shard over 5 s.
        assert_eq!(r.shard.get(&0).copied(), Some(40.0));
        assert_eq!(r.node.get(&1).copied(), Some(40.0 * f64::from(SHARDS)));
        // A restart in between: only readings of the new run count.
        let restarted = readings(&gathered(10, 2), t0 + Duration::from_secs(6));
        let base = baseline([&first, &second, &third].into_iter(), &restarted);
        assert!(rates(&base, &restarted).node.is_empty());
        // Too far apart to say anything about now.
        let late = readings(&gathered(400, 1), t0 + Duration::from_secs(60));
        assert!(rates(&first, &late).node.is_empty());
    }
}
