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
#![warn(missing_docs)]

pub mod client;
pub mod proto;
pub mod shardmap;
