//! TierKV wire contract: what gateways and storage nodes both speak, and nothing else.
//!
//! # Layout
//!
//! - [`proto`]: client operations between gateways and nodes (get, write, scan, status),
//!   their errors ([`proto::RemoteError`]) and their binary encoding; [`proto::batch`]:
//!   several operations in one request, answers streamed back.
//! - [`frame`]: length-prefixed frames, several envelopes in one HTTP/2 body.
//! - [`shardmap`]: the versioned shard map in object storage and replica placement
//!   (consistent hashing with virtual nodes, balanced ranks).
//! - [`peer_addresses`]: per-process overrides of the members' addresses (NAT, proxies).
//! - [`paths`]: the RPC routes every node serves.
//!
//! Both sides depend on this crate; it depends only on the engine's types. A gateway never
//! links the node crate, and a node never links the gateway (the public HTTP API).
#![warn(missing_docs)]

pub mod frame;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
pub mod peer_addresses;
pub mod proto;
pub mod shardmap;

/// The RPC routes of a node (design note 0003).
pub mod paths {
    /// Replication stream between replicas (`POST`, HTTP/2, frames of replica messages).
    pub const REPLICA: &str = "/rpc/v1/replica";
    /// One client operation (`POST`; tools and tests).
    pub const KV: &str = "/rpc/v1/kv";
    /// Several client operations in one request, answers streamed in completion order
    /// (`POST`; gateways).
    pub const KV_BATCH: &str = "/rpc/v1/kv/batch";
}

/// Sets `TCP_NODELAY` on an accepted or connected stream, so that an answer written in
/// parts (HTTP/2 headers, then a streamed body) leaves at once instead of waiting for the
/// peer's delayed ACK (Nagle's algorithm: up to 40 ms on Linux). Failure is only logged.
pub fn set_nodelay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
    }
}
