//! TierKV storage engine: the part of a shard replica that makes writes durable and serves
//! reads.
//!
//! # Layout
//!
//! - [`types`]: domain newtypes (`ShardId`, `SeqNo`, `Epoch`, ...), entries, write batches.
//! - [`error`]: the engine error and its caller-facing [`error::ErrorKind`].
//! - [`codec`]: panic-free little-endian encoding helpers and the shared entry body format.
//! - [`clock`]: injected wall clock (system or manual for tests).
//! - [`meta`]: cluster metadata fixed at creation (shard count).
//! - [`metrics`]: the metric types (`prometheus-client`'s counters and gauges, our lock-free
//!   latency histogram, gauges read at scrape time) and the text encoding of a registry; each
//!   component registers its own figures (`register_metrics`) into a registry it is handed.
//! - [`paths`]: every object-storage key and WAL file name.
//! - [`routing`]: key → shard (jump consistent hash of xxh3).
//! - [`store`]: object-store backends (`file://`, `s3://`, `memory://`), per-handle call
//!   metrics, retries.
//! - [`block_cache`]: the block-cache seam (foyer implementation lives in `tierkv-cache`).
//! - [`wal`]: the node's write-ahead log: framed records, group commit, torn-tail recovery.
//! - [`memtable`]: the concurrent in-memory map of recent writes.
//! - [`segment`]: immutable sorted segments (blocks, index, bloom filter) and their readers.
//! - [`manifest`]: per-shard manifest versions, create-only publish, epochs and fencing.
//! - [`shard`]: one shard replica's storage: applying committed records, conditions for the
//!   leader, reads, scans, flush, compaction, TTL sweeping; `ShardFigures`, the collector
//!   of a node's shard figures.
//! - [`options`]: engine settings with their defaults.
//! - [`write_buffers`]: the node's memory budget for memtables, the flush scheduler (largest
//!   first, WAL size and age), flush and compaction slots and pacing (design note 0007).
//! - [`replica`]: replication and leases as a pure state machine, with its deterministic simulator.
//! - `testing` (with the `testing` feature, for tests): a fault-injecting object store.
#![warn(missing_docs)]

pub mod block_cache;
pub mod clock;
pub mod codec;
pub mod dirlock;
pub mod error;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
pub mod manifest;
pub mod memtable;
pub mod meta;
pub mod metrics;
pub mod options;
pub mod paths;
pub mod replica;
pub mod routing;
pub mod segment;
pub mod shard;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;
pub mod wal;
pub mod write_buffers;

pub use error::{Error, ErrorKind, Result};
