//! Cluster settings of a node or gateway process (the `[cluster]` section of the
//! configuration).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tierkv_tls::{ClientTlsSettings, TlsError};
use tierkv_wire::peer_addresses::{PeerAddressError, PeerAddresses};

/// The secret every process of a development cluster uses unless told otherwise. Nodes and
/// gateways log a warning when they run with it.
pub const DEV_SECRET: &str = "tierkv-dev-secret";

/// How a node takes part in the cluster, and how gateways reach nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// This node's id (`tierkv node`), unique in the cluster and stable across restarts.
    /// Default: 1.
    pub node_id: u32,
    /// Address (`host:port`) other nodes and gateways use to reach this node; it is recorded
    /// in the shard map. Default: the address the node's listener bound.
    pub advertise: Option<String>,
    /// Members of a new cluster as `id=host:port`, e.g. `["1=10.0.0.1:7001",
    /// "2=10.0.0.2:7001", "3=10.0.0.3:7001"]`. Used only by the first node that finds no shard
    /// map in object storage (it publishes version 1); later starts read the map. Default:
    /// empty (wait for a map).
    pub initial_members: Vec<String>,
    /// Replicas per shard (N). Fixed when the shard map is created. Default: 3.
    pub replication: usize,
    /// Durable copies before a write is acknowledged (W), also the promise quorum; must be
    /// a majority of N. Default: 2.
    pub write_quorum: usize,
    /// Virtual nodes per member on the placement ring. Default: 64.
    pub vnodes: u32,
    /// Shared secret of node-to-node and gateway-to-node RPC (bearer token). Default:
    /// `tierkv-dev-secret` (a warning is logged: set your own).
    pub secret: String,
    /// Leader heartbeat interval. Default: 250ms.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How long an acknowledged heartbeat holds the lease. Failover after a crash takes
    /// about this long plus half a second (2.5 s by default). Default: 2s.
    #[serde(with = "humantime_serde")]
    pub lease_duration: Duration,
    /// Bound on clock drift between two nodes over one lease; subtracted from the leader's
    /// lease for strong reads. Default: 250ms.
    #[serde(with = "humantime_serde")]
    pub max_clock_drift: Duration,
    /// Interval of the replicas' timer tick (heartbeats, lease and takeover timers move in
    /// these steps). Default: 50ms.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// How long the first-ranked replica of a shard must have been acking without a pause
    /// before a leader of another rank hands the shard back to it (after a failover or a
    /// restart), which keeps leaders balanced; writes to the shard pause for a few
    /// milliseconds while it moves. `0s` disables handovers, also the ones a node makes when
    /// it stops (SIGTERM). At least `lease_duration`. Default: 4s.
    #[serde(with = "humantime_serde")]
    pub handover_after: Duration,
    /// Longest read lease a shard's leader grants a gateway (design note 0014): the gateway
    /// answers strong reads of a key it revalidated from its cache, without a round trip,
    /// for this long; the leader holds the commit of writes to the shard until the leases it
    /// granted ended. `0s`: no read leases. Below `lease_duration − max_clock_drift`.
    /// Default: 0s (off): a write to a shard that was read-only for `read_lease_quiet`
    /// waits up to one lease, which read-mostly data with rare writes would see as write
    /// latency; turn it on (300ms is a good start) where strong reads dominate.
    #[serde(with = "humantime_serde")]
    pub read_lease: Duration,
    /// A leader grants read leases only after this long without a write to the shard (and
    /// none uncommitted): under steady writes no lease is granted and writes never wait.
    /// Default: 1s.
    #[serde(with = "humantime_serde")]
    pub read_lease_quiet: Duration,
    /// How often a follower re-reads the manifest (compactions change segment lists).
    /// Default: 30s.
    #[serde(with = "humantime_serde")]
    pub manifest_refresh: Duration,
    /// How often nodes re-read the shard map. Default: 2s.
    #[serde(with = "humantime_serde")]
    pub map_refresh: Duration,
    /// Addresses this node dials other members at instead of the ones the shard map
    /// records, as `id=host:port`, e.g. `["2=10.1.0.2:7001"]`: for members reachable from
    /// here only through NAT, a sidecar or a TCP proxy, or over another network. Members
    /// not listed are dialled at the map's address. Changes nothing in the map or in what
    /// this node advertises. Default: empty.
    pub peer_addresses: Vec<String>,
    /// TLS of this process's connections to nodes (`[cluster.tls]`, design note 0013):
    /// with `ca_file` set, nodes are reached over `https://` and verified against it, and
    /// `cert_file`/`key_file` are presented as a client certificate. Default: off (plain
    /// HTTP).
    pub tls: ClientTlsSettings,
    /// Most replicas of this node learning at once (design note 0009 §2): replicas a
    /// membership change placed here that are not voters yet. Reconciliation creates new
    /// learners only below it; the other moves wait. At least 1. Default: 4.
    pub max_moves_per_node: usize,
    /// Bytes of log entries per second a shard's leader sends to its learners (a token
    /// bucket around their `Append`s; voters and heartbeats are never throttled): what a
    /// move may take from client traffic. 0: unlimited. Default: 67108864 (64 MiB).
    pub move_bytes_per_sec: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_id: 1,
            advertise: None,
            initial_members: Vec::new(),
            replication: 3,
            write_quorum: 2,
            vnodes: 64,
            secret: DEV_SECRET.to_owned(),
            heartbeat_interval: Duration::from_millis(250),
            lease_duration: Duration::from_secs(2),
            max_clock_drift: Duration::from_millis(250),
            tick: Duration::from_millis(50),
            handover_after: Duration::from_secs(4),
            read_lease: Duration::ZERO,
            read_lease_quiet: Duration::from_secs(1),
            manifest_refresh: Duration::from_secs(30),
            map_refresh: Duration::from_secs(2),
            peer_addresses: Vec::new(),
            tls: ClientTlsSettings::default(),
            max_moves_per_node: 4,
            move_bytes_per_sec: 64 << 20,
        }
    }
}

/// Why cluster settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// An `initial_members` item is not `id=host:port`.
    #[error("cluster.initial_members: {item:?} is not `id=host:port`")]
    BadMember {
        /// The item.
        item: String,
    },
    /// `peer_addresses` is unusable.
    #[error("cluster.peer_addresses: {0}")]
    PeerAddresses(#[from] PeerAddressError),
    /// W is not a majority of N, or N is zero.
    #[error("cluster.write_quorum {w} must be a majority of cluster.replication {n}")]
    Quorum {
        /// W.
        w: usize,
        /// N.
        n: usize,
    },
    /// A duration that must be positive is zero, or the lease is not longer than the drift
    /// margin plus a heartbeat.
    #[error("cluster.{field}: {reason}")]
    Timing {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// `[cluster.tls]` is unusable (settings that go together, or its files).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A limit is out of range.
    #[error("cluster.{field}: {reason}")]
    Limit {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The replication RPC client could not be built from these settings (its TLS backend
    /// refused the configuration, for one); the node does not start without it.
    #[error("cluster: the replication RPC client could not be built: {message}")]
    RpcClient {
        /// The client builder's error.
        message: String,
    },
}

impl ClusterSettings {
    /// These settings for a cluster whose only member is node 1 at `addr`, with one replica
    /// per shard (N = W = 1): `tierkv serve`, which runs it in one process. The timings
    /// stay those of `self`.
    #[must_use]
    pub fn one_replica(&self, addr: &str) -> Self {
        Self {
            node_id: 1,
            advertise: Some(addr.to_owned()),
            initial_members: vec![format!("1={addr}")],
            replication: 1,
            write_quorum: 1,
            ..self.clone()
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.replication == 0
            || self.write_quorum * 2 <= self.replication
            || self.write_quorum > self.replication
        {
            return Err(SettingsError::Quorum {
                w: self.write_quorum,
                n: self.replication,
            });
        }
        if self.tick.is_zero() || self.heartbeat_interval.is_zero() {
            return Err(SettingsError::Timing {
                field: "tick",
                reason: "tick and heartbeat_interval must be positive",
            });
        }
        if self.lease_duration <= self.max_clock_drift + self.heartbeat_interval {
            return Err(SettingsError::Timing {
                field: "lease_duration",
                reason: "must exceed max_clock_drift plus heartbeat_interval",
            });
        }
        if !self.handover_after.is_zero() && self.handover_after < self.lease_duration {
            return Err(SettingsError::Timing {
                field: "handover_after",
                reason: "must be 0s (off) or at least lease_duration",
            });
        }
        if self.read_lease + self.max_clock_drift >= self.lease_duration {
            return Err(SettingsError::Timing {
                field: "read_lease",
                reason: "must be below lease_duration minus max_clock_drift (0s: off)",
            });
        }
        if self.max_moves_per_node == 0 {
            return Err(SettingsError::Limit {
                field: "max_moves_per_node",
                reason: "must be at least 1 (no replica could ever move)",
            });
        }
        self.members()?;
        self.peer_addresses()?;
        self.tls.validate()?;
        Ok(())
    }

    /// `peer_addresses` parsed.
    pub fn peer_addresses(&self) -> Result<PeerAddresses, SettingsError> {
        Ok(PeerAddresses::parse(&self.peer_addresses)?)
    }

    /// HTTP/2 keep-alive of the node's outbound connections (replication streams):
    /// `(ping interval, ping timeout)`, a quarter and half of the lease, so that a silent
    /// peer (crashed host, half-open connection, black-holed network) is noticed and its
    /// stream reopened within three quarters of a lease. Bounded below (100 ms, 200 ms) so
    /// that a busy process does not take a slow pong for a dead peer, and above (1 s, 2 s).
    #[must_use]
    pub fn keep_alive(&self) -> (Duration, Duration) {
        (
            (self.lease_duration / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
            (self.lease_duration / 2).clamp(Duration::from_millis(200), Duration::from_secs(2)),
        )
    }

    /// `initial_members` parsed as `(id, addr)`.
    pub fn members(&self) -> Result<Vec<(u32, String)>, SettingsError> {
        self.initial_members
            .iter()
            .map(|item| {
                let bad = || SettingsError::BadMember { item: item.clone() };
                let (id, addr) = item.split_once('=').ok_or_else(bad)?;
                let id = id.trim().parse::<u32>().map_err(|_| bad())?;
                let addr = addr.trim();
                if addr.is_empty() || !addr.contains(':') {
                    return Err(bad());
                }
                Ok((id, addr.to_owned()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierkv_engine::replica::NodeId;

    #[test]
    fn members_parse_and_bad_ones_are_named() {
        let s = ClusterSettings {
            initial_members: vec!["1=127.0.0.1:7001".into(), " 2 = h:2".into()],
            ..ClusterSettings::default()
        };
        assert_eq!(
            s.members().expect("parses"),
            vec![(1, "127.0.0.1:7001".to_owned()), (2, "h:2".to_owned())]
        );
        for bad in ["x=h:1", "1", "1=", "1=host"] {
            let s = ClusterSettings {
                initial_members: vec![bad.into()],
                ..ClusterSettings::default()
            };
            assert!(
                matches!(s.validate(), Err(SettingsError::BadMember { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn peer_addresses_are_validated() {
        let with = |items: &[&str]| ClusterSettings {
            peer_addresses: items.iter().map(|s| (*s).to_owned()).collect(),
            ..ClusterSettings::default()
        };
        let ok = with(&["2=10.1.0.2:7001"]);
        assert!(ok.validate().is_ok());
        let p = ok.peer_addresses().expect("parses");
        assert_eq!(p.resolve(NodeId(2), "map:1"), "10.1.0.2:7001");
        assert_eq!(p.resolve(NodeId(3), "map:1"), "map:1");
        for bad in [&["2=nowhere"][..], &["2=h:1", "2=h:2"]] {
            assert!(
                matches!(with(bad).validate(), Err(SettingsError::PeerAddresses(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keep_alive_notices_a_silent_peer_within_the_lease() {
        for lease in [400, 1000, 2000, 10_000] {
            let s = ClusterSettings {
                lease_duration: Duration::from_millis(lease),
                ..ClusterSettings::default()
            };
            let (every, timeout) = s.keep_alive();
            assert!(every + timeout < s.lease_duration, "lease {lease} ms");
        }
        assert_eq!(
            ClusterSettings::default().keep_alive(),
            (Duration::from_millis(500), Duration::from_secs(1))
        );
    }

    #[test]
    fn quorum_must_be_a_majority() {
        let s = ClusterSettings {
            replication: 4,
            write_quorum: 2,
            ..ClusterSettings::default()
        };
        assert!(matches!(s.validate(), Err(SettingsError::Quorum { .. })));
        assert!(ClusterSettings::default().validate().is_ok());
    }

    #[test]
    fn moves_need_at_least_one_at_a_time() {
        let with = |n| ClusterSettings {
            max_moves_per_node: n,
            ..ClusterSettings::default()
        };
        assert!(with(1).validate().is_ok());
        assert!(matches!(
            with(0).validate(),
            Err(SettingsError::Limit {
                field: "max_moves_per_node",
                ..
            })
        ));
    }

    #[test]
    fn handover_after_is_off_or_at_least_a_lease() {
        let with = |d| ClusterSettings {
            handover_after: Duration::from_millis(d),
            ..ClusterSettings::default()
        };
        assert!(with(0).validate().is_ok());
        assert!(with(2000).validate().is_ok());
        assert!(matches!(
            with(1999).validate(),
            Err(SettingsError::Timing {
                field: "handover_after",
                ..
            })
        ));
    }

    #[test]
    fn read_lease_is_shorter_than_the_leaders_lease() {
        let with = |d| ClusterSettings {
            read_lease: Duration::from_millis(d),
            ..ClusterSettings::default()
        };
        assert!(with(0).validate().is_ok());
        assert!(with(1749).validate().is_ok());
        assert!(matches!(
            with(1750).validate(),
            Err(SettingsError::Timing {
                field: "read_lease",
                ..
            })
        ));
    }
}
