//! `GET /admin/v1/moves` (design note 0009 §7): each shard's configuration at its serving
//! leader against the newest map's placement, the learners' lag, and overall progress with
//! an ETA from the recent completion rate ([`MoveLog`], this gateway's memory of the last
//! minute of readings).

use std::collections::{BTreeSet, VecDeque};
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
        let target: BTreeSet<u32> = s.target.iter().copied().collect();
        let settled = match s.current.as_slice() {
            [steady] => steady.iter().copied().collect::<BTreeSet<u32>>() == target,
            _ => false,
        };
        s.moving = !(settled && s.phase == "done");
    }
    let moving = u32::try_from(shards.iter().filter(|s| s.moving).count()).unwrap_or(u32::MAX);
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
        shards_to_move: to_move,
        progress,
        eta_secs,
        shards,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
