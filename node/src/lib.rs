//! TierKV cluster: the pieces that turn single-shard storage into a replicated cluster
//! (design note 0002).
//!
//! # Layout
//!
//! - [`shardmap`]: the versioned shard map in object storage and replica placement
//!   (consistent hashing with virtual nodes).
//! - [`proto`]: the binary encoding of client operations between gateways and nodes.
//! - [`client`]: [`client::ClusterBackend`], the gateway's [`tierkv_gateway::Backend`] over
//!   node RPC (routing by shard map and leader hints, retries, map refresh).
//! - [`settings`]: the `[cluster]` configuration section.
//! - [`identity`]: which node a data directory belongs to (`NODE_ID`).
//! - [`rejoin`]: the floors a node rejoining after disk loss starts from (`REJOIN`).
//! - [`node`]: a storage node's lifecycle: shard map, WAL recovery, one driver per hosted
//!   shard, shutdown.
//! - [`driver`]: the task that runs one shard's replica state machine
//!   ([`tierkv_engine::replica`]) against the WAL, the shard's storage, object storage and
//!   the transport; the read path checks its published lease.
//! - [`frame`]: length-prefixed frames, several envelopes in one HTTP/2 body.
//! - [`transport`]: batched, best-effort replication messages to peers over HTTP/2.
//! - [`server`]: the node's HTTP endpoints (replication, client operations, health, status,
//!   metrics); `prom`: the Prometheus text helpers its `/metrics` and the gateway client's
//!   figures share.
#![warn(missing_docs)]

pub mod client;
pub mod driver;
pub mod frame;
pub mod identity;
pub mod node;
mod prom;
pub mod proto;
pub mod rejoin;
pub mod server;
pub mod settings;
pub mod shardmap;
pub mod transport;
