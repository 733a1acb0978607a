//! What a node tells about itself: the `Status` operation's answer (gateways' routing and
//! the admin API's fallback) and `Describe`'s (the admin API, design note 0010). Both read
//! only published state: no driver is asked anything.

use tierkv_wire::proto::describe::{
    CacheFacts, FollowerFacts, NodeDescription, ShardFacts, WalFacts,
};
use tierkv_wire::proto::{self, NodeStatus};

use crate::admin::EVENT_CAPACITY;
use crate::node::Node;

impl Node {
    /// This node's description of itself for the admin API, as the `Describe` operation
    /// answers it (design note 0010), with its newest `max_events` events (at most
    /// [`EVENT_CAPACITY`]). Reads only published state: no driver is asked anything.
    #[must_use]
    pub fn describe(&self, max_events: usize) -> NodeDescription {
        let wal = self.wal_stats();
        let cache = self.inner.cache.stats();
        let shards = self
            .shards()
            .map(|h| {
                let s = h.status();
                let st = h.shard().stats();
                let (reads, writes) = self.inner.ops.of(h.id);
                ShardFacts {
                    shard: h.id.0,
                    role: crate::server::role_name(s.role).to_owned(),
                    epoch: s.epoch.0,
                    leader: s.leader.map(|n| n.0),
                    commit_seq: s.commit_seq.0,
                    applied_seq: st.applied_seq.0,
                    last_seq: s.last_seq.0,
                    flushed_seq: s.flushed_seq.0,
                    records_behind: s.records_behind,
                    rejoining: s.rejoining,
                    poisoned: s.poisoned,
                    memtable_bytes: st.memtable_bytes,
                    unflushed_bytes: st.unflushed_bytes,
                    frozen_memtables: st.frozen_memtables,
                    l0_segments: st.l0_segments,
                    l1_segments: st.l1_segments,
                    segment_bytes: st.segment_bytes,
                    reads,
                    writes,
                    followers: h
                        .follower_progress()
                        .into_iter()
                        .map(|(node, seq)| FollowerFacts {
                            node: node.0,
                            match_seq: seq.0,
                        })
                        .collect(),
                }
            })
            .collect();
        NodeDescription {
            node: self.id().0,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at_ms: self.inner.started_at_ms,
            now_ms: self.inner.clock.now_millis(),
            map_version: self.map().version(),
            wal: WalFacts {
                bytes: wal.bytes,
                files: wal.files,
                poisoned: wal.poisoned,
            },
            block_cache: CacheFacts {
                hits: cache.hits,
                misses: cache.misses,
            },
            shards,
            events: self.inner.events.newest(max_events.min(EVENT_CAPACITY)),
        }
    }

    /// This node's view of itself and its shards, as the `Status` operation answers it.
    #[must_use]
    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            node: self.id(),
            map_version: self.map().version(),
            shards: self
                .shards()
                .map(|h| {
                    let s = h.status();
                    proto::ShardStatus {
                        shard: h.shard().id(),
                        role: s.role.into(),
                        epoch: s.epoch,
                        leader: s.leader,
                        commit_seq: s.commit_seq,
                        last_seq: s.last_seq,
                        flushed_seq: s.flushed_seq,
                    }
                })
                .collect(),
        }
    }
}
