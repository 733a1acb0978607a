//! TierKV storage node: hosts shard replicas and replicates them (design note 0002). It
//! speaks the wire contract ([`tierkv_wire`]) to gateways and other nodes and links no
//! public API.
//!
//! # Layout
//!
//! - [`settings`]: the `[cluster]` configuration section.
//! - [`identity`]: which node a data directory belongs to (`NODE_ID`).
//! - [`rejoin`]: the floors a node rejoining after disk loss starts from (`REJOIN`).
//! - `hosted`: the shards a node hosts once reconciliation created one the genesis map did
//!   not place on it (`HOSTED`).
//! - [`node`]: a storage node's lifecycle: shard map, WAL recovery, one driver per hosted
//!   shard, shutdown; `options` (what it is built from, why it may not start), `map`
//!   (joining the shard map, the genesis map, the refresher), `spawner` (replica settings,
//!   building a replica and starting its driver), `reconcile` (learners, targets, release:
//!   design note 0009 §6), `execute` (one client operation on the shard it names),
//!   `facts` (the `Status` and `Describe` answers), `reads` (the answers of `GetIfChanged`
//!   and `GetLeased`: notes 0008, 0014).
//! - [`driver`]: the task that runs one shard's replica state machine
//!   ([`tierkv_engine::replica`]) against the WAL, the shard's storage, object storage and
//!   the transport; the read path checks its published lease.
//! - [`transport`]: batched, best-effort replication messages to peers over HTTP/2.
//! - `admin`: the node's event log (role changes, handovers, WAL failures, with wall-clock
//!   times) and per-shard operation counters; [`node::Node::describe`] answers the admin
//!   API's `Describe` with them (design note 0010).
//! - [`server`]: the node's HTTP endpoints (replication, client operations, health, status,
//!   metrics) and the client-RPC counters.
//! - `trace`: the span of a client operation that arrived with a trace context (design note
//!   0011), child of the gateway's span; the driver's `wal.append` and `replicate` spans of a
//!   traced write hang under it (`driver/traces.rs`).
//! - `metrics`: the replica figures of the node's `/metrics` (by role, leases, leaderships,
//!   handovers, records not yet committed or applied), read from the drivers when scraped;
//!   [`node::Node::register_metrics`] registers them with the transport's, the RPCs', the
//!   WAL's and the shards'.
#![warn(missing_docs)]

/// The wire contract this crate's public API speaks ([`node::Node::execute`] takes and
/// answers its operations).
pub use tierkv_wire as wire;

mod admin;
mod driver;
mod execute;
mod facts;
mod hosted;
mod identity;
mod map;
mod metrics;
pub mod node;
mod options;
mod reads;
mod reconcile;
mod rejoin;
pub mod server;
pub mod settings;
mod spawner;
mod trace;
mod transport;

pub use driver::{Configurations, NodeClock, ShardHandle, ShardStatus, StatusSnapshot};
pub use identity::IdentityError;
pub use transport::TransportMetrics;
