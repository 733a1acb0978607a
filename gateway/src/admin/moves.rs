//! `GET /admin/v1/moves` (design note 0009 §7): each shard's configuration at its serving
//! leader against the newest map's placement, the learners' lag, and overall progress with
//! an ETA from the recent completion rate ([`MoveLog`], this gateway's memory of the last
//! minute of readings, and of which shards it last saw settled).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use tierkv_engine::types::ShardId;
use tokio::time::Instant;

use super::model::{Moves, ShardMove};
use super::view::{Facts, Gathered};

/// How far back the completion rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Readings of the number of shards moving, for progress and the ETA.
#[derive(Debug, Default)]
pub(crate) struct MoveLog {
    /// The most shards seen moving since nothing last moved.
    to_move: u32,
    /// `(when, shards moving)`, oldest first, within [`RATE_WINDOW`].
    readings: VecDeque<(Instant, u32)>,
    /// Shards whose leader last reported them settled at their target, with the map
    /// version of that target: a shard whose leader does not report now (a failover, an
    /// unreachable member) counts as it was last seen under the same map version.
    settled: HashMap<u32, u64>,
}

impl MoveLog {
    /// Records that `moving` shards move at `at`; answers `(to_move, eta_secs)`.
    pub(crate) fn observe(&mut self, at: Instant, moving: u32) -> (u32, Option<u64>) {
        if moving == 0 {
            self.to_move = 0;
            self.readings.clear();
            return (0, None);
        }
        self.to_move = self.to_move.max(moving);
        while self
            .readings
            .front()
            .is_some_and(|(t, _)| at.saturating_duration_since(*t) > RATE_WINDOW)
        {
            self.readings.pop_front();
        }
        self.readings.push_back((at, moving));
        let eta = self.readings.front().and_then(|&(t, then)| {
            let secs = at.saturating_duration_since(t).as_secs_f64();
            let done = f64::from(then.saturating_sub(moving));
            // Left at the rate `done / secs`.
            (secs >= 1.0 && done > 0.0).then(|| (f64::from(moving) * secs / done).ceil() as u64)
        });
        (self.to_move, eta)
    }
}

/// Each shard's move as the members reported it, with the overall figures (`to_move` and
/// `eta_secs` from `log`).
pub(crate) fn moves(g: &Gathered, log: &mut MoveLog, at: Instant) -> Moves {
    let map = &g.map;
    let mut shards: Vec<ShardMove> = (0..map.shards())
        .map(|s| ShardMove {
            shard: s,
            leader: None,
            current: Vec::new(),
            target: map.replicas(ShardId(s)).iter().map(|n| n.0).collect(),
            phase: "unknown".to_owned(),
            moving: true,
            records_behind: 0,
            bytes_behind: 0,
        })
        .collect();
    for m in &g.members {
        let Facts::Described(d) = &m.facts else {
            continue;
        };
        for f in d.shards.iter().filter(|f| f.role == "leader") {
            let Some(out) = shards.get_mut(f.shard as usize) else {
                continue;
            };
            out.leader = Some(d.node);
            out.current.clone_from(&f.configuration);
            if !f.phase.is_empty() {
                out.phase.clone_from(&f.phase);
            }
            out.records_behind = f.learners.iter().map(|l| l.records_behind).sum();
            out.bytes_behind = f.learners.iter().map(|l| l.bytes_behind).sum();
        }
    }
    for s in &mut shards {
        if s.leader.is_none() {
            // Not reported: as last seen under this map version, else moving (unknown).
            s.moving = log.settled.get(&s.shard) != Some(&map.version());
            continue;
        }
        let target: BTreeSet<u32> = s.target.iter().copied().collect();
        let settled = match s.current.as_slice() {
            [steady] => steady.iter().copied().collect::<BTreeSet<u32>>() == target,
            _ => false,
        };
        s.moving = !(settled && s.phase == "done");
        if s.moving {
            log.settled.remove(&s.shard);
        } else {
            log.settled.insert(s.shard, map.version());
        }
    }
    let moving = u32::try_from(shards.iter().filter(|s| s.moving).count()).unwrap_or(u32::MAX);
    let unreported =
        u32::try_from(shards.iter().filter(|s| s.leader.is_none()).count()).unwrap_or(u32::MAX);
    let (to_move, eta_secs) = log.observe(at, moving);
    let progress = if to_move == 0 {
        1.0
    } else {
        f64::from(to_move.saturating_sub(moving)) / f64::from(to_move)
    };
    Moves {
        map_version: map.version(),
        shards_total: map.shards(),
        shards_moving: moving,
        shards_unreported: unreported,
        shards_to_move: to_move,
        progress,
        eta_secs,
        shards,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tierkv_engine::types::NodeId;
    use tierkv_wire::proto::describe::{NodeDescription, ShardFacts};
    use tierkv_wire::shardmap::{DEFAULT_VNODES, Member, ShardMap};

    use super::*;
    use crate::admin::view::MemberFacts;

    /// Three members, four shards on all three; each member leads the shards in `leads`,
    /// settled at their target.
    fn gathered(version: u64, leads: &[&[u32]; 3]) -> Gathered {
        let members = (1..=3)
            .map(|id| Member::active(NodeId(id), format!("127.0.0.1:{id}")))
            .collect();
        let map = Arc::new(ShardMap::new(version, 4, 3, DEFAULT_VNODES, members).expect("map"));
        let members = (1..=3u32)
            .map(|id| {
                let shards = leads[id as usize - 1]
                    .iter()
                    .map(|&s| ShardFacts {
                        shard: s,
                        role: "leader".to_owned(),
                        leader: Some(id),
                        configuration: vec![map.replicas(ShardId(s)).iter().map(|n| n.0).collect()],
                        phase: "done".to_owned(),
                        ..ShardFacts::default()
                    })
                    .collect();
                MemberFacts {
                    id: NodeId(id),
                    addr: format!("127.0.0.1:{id}"),
                    answering: Some(true),
                    last_seen_ms: Some(1),
                    facts: Facts::Described(Box::new(NodeDescription {
                        node: id,
                        shards,
                        ..NodeDescription::default()
                    })),
                }
            })
            .collect();
        Gathered {
            map,
            members,
            events: Vec::new(),
        }
    }

    /// A shard whose leader does not report counts as this gateway last saw it under the
    /// same map version: settled stays settled through a failover; never seen settled, or
    /// seen under an older map, it counts as moving. Either way it is `unreported`.
    #[test]
    fn unreported_shards_count_as_last_seen_under_the_same_map() {
        let mut log = MoveLog::default();
        let t = Instant::now();
        // Nothing seen yet and shard 3 unreported: moving (unknown).
        let m = moves(&gathered(1, &[&[0, 1], &[2], &[]]), &mut log, t);
        assert_eq!((m.shards_moving, m.shards_unreported), (1, 1));
        assert!(m.shards[3].moving && m.shards[3].leader.is_none());
        assert_eq!(m.shards[3].phase, "unknown");
        // All four reported settled.
        let m = moves(&gathered(1, &[&[0, 1], &[2], &[3]]), &mut log, t);
        assert_eq!((m.shards_moving, m.shards_unreported), (0, 0));
        assert_eq!(m.progress, 1.0);
        // Shard 3's leader fails over: unreported, still settled.
        let m = moves(&gathered(1, &[&[0, 1], &[2], &[]]), &mut log, t);
        assert_eq!((m.shards_moving, m.shards_unreported), (0, 1));
        assert!(!m.shards[3].moving);
        assert_eq!(m.shards[3].phase, "unknown");
        // A newer map: what was seen under the old one does not count.
        let m = moves(&gathered(2, &[&[0, 1], &[2], &[]]), &mut log, t);
        assert_eq!((m.shards_moving, m.shards_unreported), (1, 1));
    }

    /// Progress counts against the most shards seen moving; the ETA comes from the rate of
    /// the last minute; nothing moving resets both.
    #[test]
    fn progress_and_eta_follow_the_completion_rate() {
        let mut log = MoveLog::default();
        let t0 = Instant::now();
        assert_eq!(log.observe(t0, 8), (8, None), "no rate from one reading");
        assert_eq!(log.observe(t0 + Duration::from_secs(2), 8), (8, None));
        // 4 done in 4 s: one per second, 4 left.
        assert_eq!(log.observe(t0 + Duration::from_secs(4), 4), (8, Some(4)));
        // Readings older than a minute leave the rate: 4 → 2 over the last 59 s.
        let later = t0 + Duration::from_secs(63);
        assert_eq!(log.observe(later, 2), (8, Some(59)));
        assert_eq!(log.observe(later + Duration::from_secs(1), 0), (0, None));
        assert_eq!(log.observe(later + Duration::from_secs(2), 3), (3, None));
    }
}
