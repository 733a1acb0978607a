//! TierKV storage engine: the part of a shard replica that makes writes durable and serves
//! reads.
//!
//! # Layout
//!
//! - [`types`]: domain newtypes (`ShardId`, `SeqNo`, `Epoch`, ...), entries, write batches.
//! - [`error`]: the engine error and its caller-facing [`error::ErrorKind`].
//! - [`codec`]: panic-free little-endian encoding helpers and the shared entry body format.
//! - [`clock`]: injected wall clock (system or manual for tests).
//! - [`metrics`]: lock-free counters and histograms the server exports.
//! - [`paths`]: every object-storage key and WAL file name.
//! - [`store`]: object-store backends (`file://`, `s3://`, `memory://`), metrics, retries.
//! - [`block_cache`]: the block-cache seam (foyer implementation lives in `tierkv-cache`).
//! - [`wal`]: the node-level write-ahead log shared by all shards (group commit, recovery).
#![warn(missing_docs)]

pub mod block_cache;
pub mod clock;
pub mod codec;
pub mod error;
pub mod metrics;
pub mod paths;
pub mod store;
pub mod types;
pub mod wal;

pub use error::{Error, ErrorKind, Result};
