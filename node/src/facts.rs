//! What a node tells about itself: the `Status` operation's answer (gateways' routing and
//! the admin API's fallback) and `Describe`'s (the admin API, design note 0010). Both read
//! only published state: no driver is asked anything.

use tierkv_engine::replica::Membership;
use tierkv_wire::proto::describe::{
    CacheFacts, FollowerFacts, LearnerFacts, NodeDescription, ShardFacts, WalFacts,
};
use tierkv_wire::proto::{self, NodeStatus, ShardConfiguration};

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
                let c = h.configurations();
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
                    voter: s.voter,
                    configuration: halves(&c.in_force),
                    target: c.target.iter().map(|n| n.0).collect(),
                    phase: crate::server::phase_name(s.phase).to_owned(),
                    learners: h
                        .learner_progress()
                        .into_iter()
                        .map(|l| LearnerFacts {
                            node: l.node.0,
                            records_behind: l.records_behind,
                            bytes_behind: l.bytes_behind,
                            acked: l.acked,
                        })
                        .collect(),
                }
            })
            .collect();
        NodeDescription {
            node: self.id().0,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            wire_revision: proto::REVISION,
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

    /// This node's view of itself and its shards, as the `Status` operation answers it
    /// (without configurations) and `StatusWithConfigurations` (with them: design note 0009
    /// §6, wire revision 5).
    #[must_use]
    pub fn status(&self, with_configurations: bool) -> NodeStatus {
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
                        configuration: with_configurations.then(|| {
                            let c = h.configurations();
                            ShardConfiguration {
                                committed: c.committed,
                                in_force: c.in_force,
                                target: c.target,
                                phase: s.phase,
                            }
                        }),
                    }
                })
                .collect(),
        }
    }
}

/// The voter sets of a configuration, for JSON: one (steady) or two (joint: old, new).
fn halves(m: &Membership) -> Vec<Vec<u32>> {
    m.halves()
        .into_iter()
        .map(|h| h.iter().map(|n| n.0).collect())
        .collect()
}
