//! Per-process overrides of the addresses the shard map records (`cluster.peer_addresses`
//! on a node, `gateway.cluster.peer_addresses` on a gateway).
//!
//! The shard map records one address per member: the one the member advertises, used by
//! every node and gateway. Some networks need a process to reach a member somewhere else:
//! behind NAT (a gateway outside reaches a node at its public address), through a
//! sidecar or TCP proxy, or over a dedicated replication network. An override maps a node id
//! to the `host:port` this process dials for it instead of the map's address; members
//! without an override are dialled at the map's address (the default: no overrides). An
//! override changes only where this process connects: the map, the node's advertised
//! address and what the admin API shows stay as they are.

use std::collections::BTreeMap;

use tierkv_engine::replica::NodeId;

/// The parsed overrides: node id → `host:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerAddresses(BTreeMap<NodeId, String>);

/// Why an override list is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAddressError {
    /// An item is not `id=host:port`.
    #[error("{item:?} is not `id=host:port`")]
    Malformed {
        /// The item.
        item: String,
    },
    /// Two items name the same node.
    #[error("node {id} is listed twice")]
    Duplicate {
        /// The node.
        id: u32,
    },
}

impl PeerAddresses {
    /// Parses items of the form `id=host:port` (spaces around either part are ignored).
    pub fn parse(items: &[String]) -> Result<Self, PeerAddressError> {
        let mut out = BTreeMap::new();
        for item in items {
            let bad = || PeerAddressError::Malformed { item: item.clone() };
            let (id, addr) = item.split_once('=').ok_or_else(bad)?;
            let id = id.trim().parse::<u32>().map_err(|_| bad())?;
            let addr = addr.trim();
            let port = addr
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
                return Err(bad());
            }
            if out.insert(NodeId(id), addr.to_owned()).is_some() {
                return Err(PeerAddressError::Duplicate { id });
            }
        }
        Ok(Self(out))
    }

    /// Where this process dials node `id`: its override, else `map_addr` (the shard map's).
    #[must_use]
    pub fn resolve<'a>(&'a self, id: NodeId, map_addr: &'a str) -> &'a str {
        self.0.get(&id).map_or(map_addr, String::as_str)
    }

    /// Whether there are no overrides.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn overrides_replace_only_the_nodes_they_name() {
        let p = PeerAddresses::parse(&items(&["2=10.0.0.2:7001", " 3 = proxy.local:9003 "]))
            .expect("parses");
        assert_eq!(p.resolve(NodeId(2), "192.168.1.2:7001"), "10.0.0.2:7001");
        assert_eq!(p.resolve(NodeId(3), "192.168.1.3:7001"), "proxy.local:9003");
        assert_eq!(p.resolve(NodeId(1), "192.168.1.1:7001"), "192.168.1.1:7001");
        let none = PeerAddresses::parse(&[]).expect("empty parses");
        assert!(none.is_empty());
        assert_eq!(none.resolve(NodeId(2), "h:1"), "h:1");
    }

    #[test]
    fn malformed_and_duplicate_items_are_refused() {
        for bad in [
            "x=h:1",
            "2",
            "2=",
            "2=host",
            "2=:80",
            "2=h:port",
            "2=h:70000",
        ] {
            assert_eq!(
                PeerAddresses::parse(&items(&[bad])),
                Err(PeerAddressError::Malformed { item: bad.into() }),
                "{bad}"
            );
        }
        assert_eq!(
            PeerAddresses::parse(&items(&["2=h:1", "2=g:2"])),
            Err(PeerAddressError::Duplicate { id: 2 })
        );
    }
}
