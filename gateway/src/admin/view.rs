//! [`ClusterView`]: the admin API's seam to the cluster, beside [`crate::Backend`]. The
//! cluster client implements it over node RPC (`Describe`, design note 0010), `tierkv
//! serve` in process over its one node. Membership changes (design note 0009) go through it
//! too ([`ClusterView::change_members`]).

use std::sync::Arc;

use async_trait::async_trait;
use tierkv_engine::types::NodeId;
use tierkv_wire::proto::{NodeDescription, NodeStatus};
use tierkv_wire::shardmap::{ShardMap, ShardMapError};

use crate::error::{ApiError, MembershipRefusal};

/// What the admin API reads about the cluster.
#[async_trait]
pub trait ClusterView: Send + Sync + 'static {
    /// The shard map in use, what every member says about itself (each asked for its newest
    /// `max_events` events), and the events the view observed itself.
    async fn gather(&self, max_events: u32) -> Gathered;

    /// Publishes the next shard map version with `change` applied (design note 0009 §6),
    /// re-applied to a newer map after a lost race, and adopts it. The admin API checked
    /// what the map cannot (hosting nothing, versions) before. Default: refused (`tierkv
    /// serve` has one node and no shard map).
    async fn change_members(&self, change: MemberChange) -> Result<Arc<ShardMap>, ApiError> {
        Err(ApiError::Membership {
            code: MembershipRefusal::Unsupported,
            detail: format!("this server cannot {}: it has no shard map", change.verb()),
        })
    }
}

/// One membership operation (design note 0009 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// A new active member.
    Add {
        /// Its node id.
        id: NodeId,
        /// Its `host:port`.
        addr: String,
    },
    /// An active member leaves the ring: its replicas move to the others.
    Drain {
        /// The member.
        id: NodeId,
    },
    /// A drained member that hosts nothing leaves the map.
    Remove {
        /// The member.
        id: NodeId,
    },
    /// A member lost for good: its id is retired, a new one takes its place.
    Replace {
        /// The member replaced.
        old: NodeId,
        /// The new member's id.
        new: NodeId,
        /// The new member's `host:port`.
        addr: String,
    },
}

impl MemberChange {
    /// `map` with the change applied (the map's own checks: states, ids, active count).
    pub fn apply(&self, map: &ShardMap) -> Result<ShardMap, ShardMapError> {
        match self {
            Self::Add { id, addr } => map.add_member(*id, addr),
            Self::Drain { id } => map.drain_member(*id),
            Self::Remove { id } => map.remove_member(*id),
            Self::Replace { old, new, addr } => map.replace_member(*old, *new, addr),
        }
    }

    /// The operation's name, for messages.
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Add { .. } => "add a member",
            Self::Drain { .. } => "drain a member",
            Self::Remove { .. } => "remove a member",
            Self::Replace { .. } => "replace a member",
        }
    }
}

/// One gathering.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The shard map in use.
    pub map: Arc<ShardMap>,
    /// Every member of the map, in the map's order.
    pub members: Vec<MemberFacts>,
    /// Events the gateway observed itself (members that stopped or resumed answering),
    /// oldest first.
    pub events: Vec<GatewayEvent>,
}

/// One member of the map.
#[derive(Debug, Clone)]
pub struct MemberFacts {
    /// Its id.
    pub id: NodeId,
    /// Its address in the map.
    pub addr: String,
    /// Whether it answered the last status poll (`None` before the first poll).
    pub answering: Option<bool>,
    /// When it last answered a status poll, unix milliseconds (the gateway's clock).
    pub last_seen_ms: Option<u64>,
    /// What it said about itself.
    pub facts: Facts,
}

/// What a member said about itself.
#[derive(Debug, Clone)]
pub enum Facts {
    /// It answered `Describe`.
    Described(Box<NodeDescription>),
    /// It answered `Status` only: an older node that does not know `Describe`, or one whose
    /// description could not be read.
    StatusOnly {
        /// Its status.
        status: NodeStatus,
        /// Why there is no description.
        gap: FactsGap,
    },
    /// It did not answer.
    Unreachable {
        /// The failure (no secrets in it).
        error: String,
    },
}

/// Why a member gave no description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactsGap {
    /// It refused `Describe` as an unknown operation (an older version).
    Unsupported,
    /// Its description did not decode (an unknown format, or malformed).
    Invalid(String),
}

/// An event a gateway observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayEvent {
    /// When, unix milliseconds (the gateway's clock).
    pub at_ms: u64,
    /// What.
    pub kind: GatewayEventKind,
    /// The member concerned.
    pub node: NodeId,
}

/// Kinds of [`GatewayEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayEventKind {
    /// A member that answered status polls stopped answering.
    MemberDown,
    /// A member that did not answer answers again (or for the first time after being down).
    MemberUp,
}

impl GatewayEventKind {
    /// The kind's name in the admin API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MemberDown => "member_down",
            Self::MemberUp => "member_up",
        }
    }
}
