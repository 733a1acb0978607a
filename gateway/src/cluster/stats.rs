//! Counters of the gateway's cluster client, rendered on the gateway's `/metrics`: how many
//! RPCs it sends and how well they are batched, and every time routing had to try another
//! replica (and why), back off, or give up. In a steady cluster only the request and
//! operation counters move; the others count failovers, handovers, map changes and faults.

use prometheus_client::metrics::family::Family;
use tierkv_engine::metrics::{Counter, Gauge, Registry};
use tierkv_wire::shardmap::ShardMap;

/// Why an operation was sent to another replica than the one it tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// `NotLeader` naming the leader: the operation follows the hint.
    Redirect,
    /// `NotLeader` without a leader (an election or handover in progress).
    NotLeader,
    /// The node does not host the shard (its map is newer or older than ours).
    NotHosted,
    /// No connection to the node.
    Unreachable,
    /// A read whose request may have reached the node got no usable answer, or the node
    /// answered with a transient error.
    ReadFailed,
}

impl Retry {
    const ALL: [Self; 5] = [
        Self::Redirect,
        Self::NotLeader,
        Self::NotHosted,
        Self::Unreachable,
        Self::ReadFailed,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Redirect => "redirect",
            Self::NotLeader => "not_leader",
            Self::NotHosted => "not_hosted",
            Self::Unreachable => "unreachable",
            Self::ReadFailed => "read_failed",
        }
    }
}

/// The client's figures: counters, and the gauges of the map in use and of the last status
/// poll, set where they change.
#[derive(Debug)]
pub(super) struct ClientMetrics {
    /// HTTP requests (batches) sent to nodes.
    pub(super) requests: Counter,
    /// Operations in them.
    pub(super) operations: Counter,
    /// `tierkv_gateway_retries_total` by reason.
    retries_by_reason: Family<[(&'static str, &'static str); 1], Counter>,
    /// Its series, resolved once, in the order of [`Retry::ALL`].
    retries: [Counter; Retry::ALL.len()],
    /// Passes over a shard's replicas that found nobody to serve, followed by a backoff.
    pub(super) backoffs: Counter,
    /// Operations that failed after `leader_wait` without finding a replica to serve them.
    pub(super) gave_up: Counter,
    /// Writes that ended as "outcome unknown" because the request may have been delivered.
    pub(super) outcome_unknown: Counter,
    /// Newer shard maps adopted.
    pub(super) map_changes: Counter,
    /// Version of the map in use.
    map_version: Gauge,
    /// Members in it.
    members: Gauge,
    /// Members that answered the last status poll.
    pub(super) members_answering: Gauge,
}

impl ClientMetrics {
    /// Figures of a client whose map is `map`.
    pub(super) fn new(map: &ShardMap) -> Self {
        let retries_by_reason = Family::default();
        let retries =
            Retry::ALL.map(|why| retries_by_reason.get_or_create_owned(&[("reason", why.label())]));
        let stats = Self {
            requests: Counter::default(),
            operations: Counter::default(),
            retries_by_reason,
            retries,
            backoffs: Counter::default(),
            gave_up: Counter::default(),
            outcome_unknown: Counter::default(),
            map_changes: Counter::default(),
            map_version: Gauge::default(),
            members: Gauge::default(),
            members_answering: Gauge::default(),
        };
        stats.map_in_use(map);
        stats
    }

    pub(super) fn retry(&self, why: Retry) {
        if let Some(c) = self.retries.get(why as usize) {
            c.inc();
        }
    }

    /// The client now routes by `map`.
    pub(super) fn map_in_use(&self, map: &ShardMap) {
        self.map_version
            .set(i64::try_from(map.version()).unwrap_or(i64::MAX));
        self.members
            .set(i64::try_from(map.members().len()).unwrap_or(i64::MAX));
    }

    /// Registers the figures into `registry`: `tierkv_gateway_*`.
    pub(super) fn register(&self, registry: &mut Registry) {
        let counters = [
            (
                "tierkv_gateway_node_requests",
                "RPC requests sent to nodes (each carries a batch of operations)",
                &self.requests,
            ),
            (
                "tierkv_gateway_node_operations",
                "Operations sent to nodes (operations per request is the batching factor; retries count again)",
                &self.operations,
            ),
            (
                "tierkv_gateway_backoffs",
                "Passes over a shard's replicas that found none to serve (no leader yet), each followed by a backoff",
                &self.backoffs,
            ),
            (
                "tierkv_gateway_gave_up",
                "Operations that failed after leader_wait without finding a replica to serve them",
                &self.gave_up,
            ),
            (
                "tierkv_gateway_outcome_unknown",
                "Writes answered 'outcome unknown' because their request may have reached a node that did not answer",
                &self.outcome_unknown,
            ),
            (
                "tierkv_gateway_map_changes",
                "Newer shard maps adopted",
                &self.map_changes,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let gauges = [
            (
                "tierkv_gateway_map_version",
                "Version of the shard map in use",
                &self.map_version,
            ),
            (
                "tierkv_gateway_members",
                "Members in the shard map",
                &self.members,
            ),
            (
                "tierkv_gateway_members_answering",
                "Members that answered the last status poll",
                &self.members_answering,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "tierkv_gateway_retries",
            "Operations sent to another replica, by why the one tried did not serve them",
            self.retries_by_reason.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierkv_engine::metrics::encode_text;
    use tierkv_engine::replica::NodeId;

    #[test]
    fn renders_every_family_with_its_values() {
        let members = (1..=4)
            .map(|i| tierkv_wire::shardmap::Member::active(NodeId(i), format!("127.0.0.1:{i}")))
            .collect();
        let map = ShardMap::new(3, 8, 3, 8, members).expect("a map");
        let s = ClientMetrics::new(&map);
        let mut r = Registry::default();
        s.register(&mut r);
        s.requests.inc_by(2);
        s.operations.inc_by(7);
        s.retry(Retry::Redirect);
        s.retry(Retry::Redirect);
        s.retry(Retry::Unreachable);
        s.members_answering.set(2);
        let out = encode_text(&r).expect("encodes");
        for line in [
            "tierkv_gateway_node_requests_total 2",
            "tierkv_gateway_node_operations_total 7",
            "tierkv_gateway_retries_total{reason=\"redirect\"} 2",
            "tierkv_gateway_retries_total{reason=\"unreachable\"} 1",
            "tierkv_gateway_retries_total{reason=\"not_hosted\"} 0",
            "tierkv_gateway_retries_total{reason=\"not_leader\"} 0",
            "tierkv_gateway_retries_total{reason=\"read_failed\"} 0",
            "tierkv_gateway_map_version 3",
            "tierkv_gateway_members 4",
            "tierkv_gateway_members_answering 2",
            "# TYPE tierkv_gateway_retries_total counter",
            "# TYPE tierkv_gateway_backoffs_total counter",
            "# TYPE tierkv_gateway_gave_up_total counter",
            "# TYPE tierkv_gateway_outcome_unknown_total counter",
            "# TYPE tierkv_gateway_map_changes_total counter",
            "# TYPE tierkv_gateway_map_version gauge",
            "# TYPE tierkv_gateway_members gauge",
            "# TYPE tierkv_gateway_members_answering gauge",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        assert_eq!(out.lines().filter(|l| l.starts_with("# TYPE")).count(), 10);
    }
}
