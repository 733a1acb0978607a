//! Counters of the gateway's cluster client, rendered on the gateway's `/metrics`: how many
//! RPCs it sends and how well they are batched, and every time routing had to try another
//! replica (and why), back off, or give up. In a steady cluster only the request and
//! operation counters move; the others count failovers, handovers, map changes and faults.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::prom;

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

/// The counters (all monotonic except where noted).
#[derive(Debug, Default)]
pub(super) struct ClientStats {
    /// HTTP requests (batches) sent to nodes.
    pub(super) requests: AtomicU64,
    /// Operations in them.
    pub(super) operations: AtomicU64,
    retries: [AtomicU64; Retry::ALL.len()],
    /// Passes over a shard's replicas that found nobody to serve, followed by a backoff.
    pub(super) backoffs: AtomicU64,
    /// Operations that failed after `leader_wait` without finding a replica to serve them.
    pub(super) gave_up: AtomicU64,
    /// Writes that ended as "outcome unknown" because the request may have been delivered.
    pub(super) outcome_unknown: AtomicU64,
    /// Newer shard maps adopted.
    pub(super) map_changes: AtomicU64,
}

impl ClientStats {
    pub(super) fn retry(&self, why: Retry) {
        if let Some(c) = self.retries.get(why as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Appends the Prometheus text of the counters, plus the gauges given (the map version,
    /// the members and how many answered the last status poll).
    pub(super) fn render(
        &self,
        out: &mut String,
        map_version: u64,
        members: usize,
        answering: usize,
    ) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let plain: [(&str, &str, u64); 9] = [
            (
                "tierkv_gateway_node_requests_total",
                "RPC requests sent to nodes (each carries a batch of operations).",
                load(&self.requests),
            ),
            (
                "tierkv_gateway_node_operations_total",
                "Operations sent to nodes (operations per request is the batching factor; retries count again).",
                load(&self.operations),
            ),
            (
                "tierkv_gateway_backoffs_total",
                "Passes over a shard's replicas that found none to serve (no leader yet), each followed by a backoff.",
                load(&self.backoffs),
            ),
            (
                "tierkv_gateway_gave_up_total",
                "Operations that failed after leader_wait without finding a replica to serve them.",
                load(&self.gave_up),
            ),
            (
                "tierkv_gateway_outcome_unknown_total",
                "Writes answered 'outcome unknown' because their request may have reached a node that did not answer.",
                load(&self.outcome_unknown),
            ),
            (
                "tierkv_gateway_map_changes_total",
                "Newer shard maps adopted.",
                load(&self.map_changes),
            ),
            (
                "tierkv_gateway_map_version",
                "Version of the shard map in use.",
                map_version,
            ),
            (
                "tierkv_gateway_members",
                "Members in the shard map.",
                members as u64,
            ),
            (
                "tierkv_gateway_members_answering",
                "Members that answered the last status poll.",
                answering as u64,
            ),
        ];
        for (name, help, v) in plain {
            prom::sample(out, name, help, v);
        }
        let name = "tierkv_gateway_retries_total";
        prom::family(
            out,
            name,
            "Operations sent to another replica, by why the one tried did not serve them.",
        );
        for why in Retry::ALL {
            let v = self.retries.get(why as usize).map_or(0, load);
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {v}", why.label());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_values() {
        let s = ClientStats::default();
        ClientStats::add(&s.requests, 2);
        ClientStats::add(&s.operations, 7);
        s.retry(Retry::Redirect);
        s.retry(Retry::Redirect);
        s.retry(Retry::Unreachable);
        let mut out = String::new();
        s.render(&mut out, 3, 4, 2);
        for line in [
            "tierkv_gateway_node_requests_total 2",
            "tierkv_gateway_node_operations_total 7",
            "tierkv_gateway_retries_total{reason=\"redirect\"} 2",
            "tierkv_gateway_retries_total{reason=\"unreachable\"} 1",
            "tierkv_gateway_retries_total{reason=\"not_hosted\"} 0",
            "tierkv_gateway_map_version 3",
            "tierkv_gateway_members 4",
            "tierkv_gateway_members_answering 2",
            "# TYPE tierkv_gateway_retries_total counter",
            "# TYPE tierkv_gateway_map_version gauge",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    }
}
