//! What a node tells the admin API about itself (design note 0010): its bounded event log,
//! per-shard operation counters, and the document it answers `Describe` with
//! ([`crate::node::Node::describe`]).
//!
//! Nothing here is on a request path except one relaxed atomic increment per client
//! operation ([`OpCounters`]); the drivers push one event per role change (a short lock).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tierkv_engine::clock::Clock;
use tierkv_engine::replica::NodeId;
use tierkv_engine::types::{Epoch, ShardId};
use tierkv_wire::proto::describe::{EventKind, MAX_EVENTS, NodeEvent};

/// Events a node keeps (the oldest go first).
pub(crate) const EVENT_CAPACITY: usize = MAX_EVENTS as usize;

/// One event as kept (fixed size; the document's strings are made when described).
#[derive(Debug, Clone, Copy)]
struct Event {
    id: u64,
    at_ms: u64,
    kind: EventKind,
    shard: Option<ShardId>,
    epoch: Option<Epoch>,
    peer: Option<NodeId>,
    map_version: Option<u64>,
}

/// What an event is about, besides its kind.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EventFields {
    pub(crate) shard: Option<ShardId>,
    pub(crate) epoch: Option<Epoch>,
    pub(crate) peer: Option<NodeId>,
    pub(crate) map_version: Option<u64>,
}

/// The newest [`EVENT_CAPACITY`] events of a node, with wall-clock times.
pub(crate) struct EventLog {
    me: NodeId,
    clock: Arc<dyn Clock>,
    /// The events, oldest first, and the id of the next. Held only to push or copy.
    inner: Mutex<(VecDeque<Event>, u64)>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("me", &self.me)
            .field("events", &self.inner.lock().0.len())
            .finish_non_exhaustive()
    }
}

impl EventLog {
    /// An empty log of node `me`, timed by `clock` (wall clock).
    pub(crate) fn new(me: NodeId, clock: Arc<dyn Clock>) -> Self {
        Self {
            me,
            clock,
            inner: Mutex::new((VecDeque::with_capacity(EVENT_CAPACITY), 1)),
        }
    }

    /// Records an event now. A `peer` that is this node itself is dropped (a replica's
    /// leader hint may still name itself).
    pub(crate) fn record(&self, kind: EventKind, fields: EventFields) {
        let at_ms = self.clock.now_millis();
        let peer = fields.peer.filter(|p| *p != self.me);
        let mut inner = self.inner.lock();
        let (events, next) = &mut *inner;
        if events.len() == EVENT_CAPACITY {
            events.pop_front();
        }
        events.push_back(Event {
            id: *next,
            at_ms,
            kind,
            shard: fields.shard,
            epoch: fields.epoch,
            peer,
            map_version: fields.map_version,
        });
        *next += 1;
    }

    /// The newest `n` events, oldest first.
    pub(crate) fn newest(&self, n: usize) -> Vec<NodeEvent> {
        let kept: Vec<Event> = {
            let inner = self.inner.lock();
            let events = &inner.0;
            events
                .iter()
                .skip(events.len().saturating_sub(n))
                .copied()
                .collect()
        };
        kept.into_iter()
            .map(|e| NodeEvent {
                id: e.id,
                at_ms: e.at_ms,
                kind: e.kind.as_str().to_owned(),
                shard: e.shard.map(|s| s.0),
                epoch: e.epoch.map(|x| x.0),
                peer: e.peer.map(|p| p.0),
                map_version: e.map_version,
            })
            .collect()
    }
}

/// Client operations a node served per shard since it started (the admin API derives each
/// shard's load from two readings).
#[derive(Debug)]
pub(crate) struct OpCounters {
    /// Per shard id: gets and scans.
    reads: Vec<AtomicU64>,
    /// Per shard id: writes (applied or refused).
    writes: Vec<AtomicU64>,
}

impl OpCounters {
    /// Counters for shards `0..shards`.
    pub(crate) fn new(shards: u32) -> Self {
        let make = || (0..shards).map(|_| AtomicU64::new(0)).collect();
        Self {
            reads: make(),
            writes: make(),
        }
    }

    /// Counts a read of `shard` (ignored outside the keyspace).
    pub(crate) fn read(&self, shard: ShardId) {
        Self::bump(&self.reads, shard);
    }

    /// Counts a write of `shard` (ignored outside the keyspace).
    pub(crate) fn write(&self, shard: ShardId) {
        Self::bump(&self.writes, shard);
    }

    fn bump(counters: &[AtomicU64], shard: ShardId) {
        if let Some(c) = usize::try_from(shard.0).ok().and_then(|i| counters.get(i)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(reads, writes)` of `shard`.
    pub(crate) fn of(&self, shard: ShardId) -> (u64, u64) {
        let get = |counters: &[AtomicU64]| {
            usize::try_from(shard.0)
                .ok()
                .and_then(|i| counters.get(i))
                .map_or(0, |c| c.load(Ordering::Relaxed))
        };
        (get(&self.reads), get(&self.writes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierkv_engine::clock::ManualClock;

    #[test]
    fn the_event_log_keeps_the_newest_in_order_with_times() {
        let clock = ManualClock::new(1_000);
        let log = EventLog::new(NodeId(2), clock.clone());
        for i in 0..(EVENT_CAPACITY as u64 + 10) {
            clock.set(1_000 + i);
            log.record(
                EventKind::BecameLeader,
                EventFields {
                    shard: Some(ShardId(u32::try_from(i % 64).expect("small"))),
                    epoch: Some(Epoch(i)),
                    // Node 2 itself is never a peer.
                    peer: Some(NodeId(if i % 2 == 0 { 2 } else { 3 })),
                    map_version: None,
                },
            );
        }
        let all = log.newest(usize::MAX);
        assert_eq!(all.len(), EVENT_CAPACITY, "bounded");
        assert_eq!(all.first().map(|e| e.id), Some(11), "the oldest went first");
        assert_eq!(all.last().map(|e| e.id), Some(EVENT_CAPACITY as u64 + 10));
        assert!(
            all.windows(2)
                .all(|w| w[0].id + 1 == w[1].id && w[0].at_ms <= w[1].at_ms)
        );
        let newest = log.newest(3);
        assert_eq!(newest.len(), 3);
        assert_eq!(newest.last(), all.last());
        assert_eq!(newest[2].kind, "became_leader");
        assert_eq!(
            newest.iter().map(|e| e.peer).collect::<Vec<_>>(),
            vec![Some(3), None, Some(3)],
            "ids 520..=522 were recorded with peers 3, 2 (itself: dropped), 3"
        );
    }

    #[test]
    fn op_counters_count_per_shard_and_ignore_strangers() {
        let c = OpCounters::new(4);
        c.read(ShardId(1));
        c.read(ShardId(1));
        c.write(ShardId(1));
        c.write(ShardId(3));
        c.write(ShardId(9));
        assert_eq!(c.of(ShardId(1)), (2, 1));
        assert_eq!(c.of(ShardId(3)), (0, 1));
        assert_eq!(c.of(ShardId(9)), (0, 0));
    }
}
