//! The node's replica figures on `/metrics`, read when scraped from what each shard's driver
//! publishes ([`crate::driver::ShardHandle::status`]): replicas by role, read leases,
//! leaderships and handovers, records not yet committed or applied, poisoned and rejoining
//! replicas, read leases granted to gateways and writes they held. The other families of a node's `/metrics` are registered where they are
//! measured: [`crate::server`] (client RPCs), [`crate::transport`] (replication messages),
//! the engine's WAL and shards ([`crate::node::Node::register_metrics`] gathers them).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use tierkv_engine::replica::{ReadLeaseCounts, ReadLeaseRefusal, Role};

use crate::driver::{ShardHandle, StatusSnapshot};
use crate::node::WeakNode;
use crate::server::role_name;

/// One unlabelled family: name (counters without their `_total`, which the encoder adds),
/// help, type, and the figure of one replica, summed over the node's replicas.
type Figure = (
    &'static str,
    &'static str,
    MetricType,
    fn(&ShardHandle, &StatusSnapshot) -> u64,
);

const FIGURES: [Figure; 11] = [
    (
        "tierkv_replica_read_lease_writes_held",
        "Writes the leaders here sequenced while a read lease they granted was outstanding: their commit waited for its end (design note 0014).",
        MetricType::Counter,
        |h, _| h.read_lease_counts().writes_held,
    ),
    (
        "tierkv_node_read_leases",
        "Leader replicas here holding a valid strong-read lease.",
        MetricType::Gauge,
        |h, _| u64::from(h.holds_read_lease()),
    ),
    (
        "tierkv_replica_leaderships",
        "Times a replica here became the serving leader of its shard (takeovers and handovers received).",
        MetricType::Counter,
        |h, _| h.leadership_counts().0,
    ),
    (
        "tierkv_replica_handovers",
        "Times a replica here handed its shard to another replica (back to the first-ranked one, or when stopping).",
        MetricType::Counter,
        |h, _| h.leadership_counts().1,
    ),
    (
        "tierkv_replication_uncommitted_records",
        "Log records here not yet known committed (sum over hosted shards).",
        MetricType::Gauge,
        |_, s| s.last_seq.0.saturating_sub(s.commit_seq.0),
    ),
    (
        "tierkv_replication_unapplied_records",
        "Committed records not yet visible in the shards' views (catching up).",
        MetricType::Gauge,
        |h, s| s.commit_seq.0.saturating_sub(h.shard().applied().0),
    ),
    (
        "tierkv_node_poisoned_replicas",
        "Replicas stopped by a WAL failure (restart the node).",
        MetricType::Gauge,
        |_, s| u64::from(s.poisoned),
    ),
    (
        "tierkv_replica_learners",
        "Learners the leaders here replicate to while they move their shards' configurations (design note 0009).",
        MetricType::Gauge,
        |h, _| h.learner_progress().len() as u64,
    ),
    (
        "tierkv_replica_move_appends_throttled",
        "Appends to learners the leaders here dropped to hold cluster.move_bytes_per_sec; each is sent again once the learner made no progress for a heartbeat (design note 0009).",
        MetricType::Counter,
        |h, _| h.throttled_appends(),
    ),
    (
        "tierkv_replica_move_lag_records",
        "Records the learners of the leaders here are behind their commit points (sum).",
        MetricType::Gauge,
        |h, _| h.learner_progress().iter().map(|l| l.records_behind).sum(),
    ),
    (
        "tierkv_node_rejoining_replicas",
        "Replicas rejoining after disk loss: they promise nothing until they caught up with a newer epoch.",
        MetricType::Gauge,
        |_, s| u64::from(s.rejoining),
    ),
];

/// Every role, in the order `tierkv_node_replicas` lists them (all four, also at 0).
const ROLES: [Role; 4] = [
    Role::Follower,
    Role::Candidate,
    Role::Recovering,
    Role::Leader,
];

/// The collector of a node's replica figures; it does not keep the node alive.
#[derive(Debug)]
pub(crate) struct ReplicaFigures {
    node: WeakNode,
}

impl ReplicaFigures {
    pub(crate) fn new(node: WeakNode) -> Self {
        Self { node }
    }
}

impl Collector for ReplicaFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(node) = self.node.upgrade() else {
            return Ok(());
        };
        let replicas: Vec<(ShardHandle, StatusSnapshot)> = node
            .shards()
            .map(|h| {
                let s = h.status();
                (h, s)
            })
            .collect();
        let mut family = encoder.encode_descriptor(
            "tierkv_node_replicas",
            "Hosted shard replicas by role.",
            None,
            MetricType::Gauge,
        )?;
        for role in ROLES {
            let n = replicas.iter().filter(|(_, s)| s.role == role).count() as u64;
            let labels = [("role", role_name(role))];
            family.encode_family(&labels)?.encode_gauge(&n)?;
        }
        let mut moves = encoder.encode_descriptor(
            "tierkv_replica_moves",
            "Configuration changes committed by the leaders here, by kind: joint (a move's first record) and final (its second): design note 0009.",
            None,
            MetricType::Counter,
        )?;
        let (joint, last) = replicas.iter().fold((0u64, 0u64), |(j, f), (h, _)| {
            let (a, b) = h.move_counts();
            (j + a, f + b)
        });
        for (kind, n) in [("joint", joint), ("final", last)] {
            moves
                .encode_family(&[("kind", kind)])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        let leases = replicas
            .iter()
            .fold(ReadLeaseCounts::default(), |mut sum, (h, _)| {
                let c = h.read_lease_counts();
                sum.granted += c.granted;
                for (a, b) in sum.refused.iter_mut().zip(c.refused) {
                    *a += b;
                }
                sum
            });
        let mut grants = encoder.encode_descriptor(
            "tierkv_replica_read_lease_requests",
            "Read leases gateways asked the leaders here for, by result: granted, or the reason of a refusal (design note 0014).",
            None,
            MetricType::Counter,
        )?;
        grants
            .encode_family(&[("result", "granted")])?
            .encode_counter::<NoLabelSet, _, u64>(&leases.granted, None)?;
        for why in ReadLeaseRefusal::ALL {
            grants
                .encode_family(&[("result", why.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&leases.refused(why), None)?;
        }
        for (name, help, kind, figure) in FIGURES {
            let value: u64 = replicas.iter().map(|(h, s)| figure(h, s)).sum();
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            if kind == MetricType::Counter {
                metric.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            } else {
                metric.encode_gauge(&value)?;
            }
        }
        Ok(())
    }
}

/// The engine's shard figures over the replicas the node hosts *when scraped* (reconciliation
/// creates and releases replicas after the node registered its metrics).
#[derive(Debug)]
pub(crate) struct HostedShardFigures {
    node: WeakNode,
}

impl HostedShardFigures {
    pub(crate) fn new(node: WeakNode) -> Self {
        Self { node }
    }
}

impl Collector for HostedShardFigures {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let hosted: Vec<ShardHandle> = self
            .node
            .upgrade()
            .map(|n| n.shards().collect())
            .unwrap_or_default();
        tierkv_engine::shard::ShardFigures::new(hosted.iter().map(ShardHandle::shard))
            .encode(encoder)
    }
}
