//! The systems under test. Every target has the same small shape ([`Target`]): `read`,
//! `update` (optionally with a TTL) and `rmw`, plus `reset` to drop a connection whose state is
//! unknown (after a timeout).
//!
//! - [`tierkv`]: TierKV's HTTP/JSON API (`GET`/`PUT /v1/kv/{key}`).
//! - [`etcd`]: etcd's v3 JSON gateway (`/v3/kv/{range,put,txn}`, `/v3/lease/grant`).
//! - [`redis`]: Redis over RESP2 on one TCP connection per worker.

pub mod etcd;
pub mod redis;
pub mod tierkv;

use bytes::Bytes;
use std::fmt;
use std::future::Future;

/// How a completed operation ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The operation did what it was asked.
    Ok,
    /// A read found no value (counted apart from errors; expected without `--load`).
    NotFound,
    /// A conditional write lost a race (HTTP 412, etcd txn not succeeded, Redis nil `EXEC`).
    Conflict,
}

/// Why an operation failed. The [`fmt::Display`] form is the stable key used in the
/// report's `errors_by_kind`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The server answered with an unexpected HTTP status.
    #[error("http_{status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// Could not open a connection.
    #[error("connect")]
    Connect,
    /// The connection broke mid-request.
    #[error("io")]
    Io,
    /// The operation did not finish within `--timeout`.
    #[error("timeout")]
    Timeout,
    /// The server's answer could not be understood.
    #[error("protocol")]
    Protocol,
    /// Redis answered with an error reply; `prefix` is its first word (`ERR`, `WRONGTYPE`, ...).
    #[error("redis_{prefix}")]
    Redis {
        /// The error prefix.
        prefix: String,
    },
}

impl OpError {
    /// Whether the connection should be dropped and reopened before the next operation.
    pub fn poisons_connection(&self) -> bool {
        match self {
            Self::Connect | Self::Io | Self::Timeout | Self::Protocol => true,
            Self::Status { .. } | Self::Redis { .. } => false,
        }
    }
}

/// Result of one operation.
pub type OpResult = Result<Outcome, OpError>;

/// One worker's client for a system under test. Each worker owns one (one connection each).
pub trait Target: Send + 'static {
    /// Reads `key`.
    fn read(&mut self, key: &str) -> impl Future<Output = OpResult> + Send;
    /// Writes `value` under `key`, expiring after `ttl_secs` when given.
    fn update(
        &mut self,
        key: &str,
        value: Bytes,
        ttl_secs: Option<u32>,
    ) -> impl Future<Output = OpResult> + Send;
    /// Reads `key`, then writes `value` only if `key` did not change in between.
    fn rmw(&mut self, key: &str, value: Bytes) -> impl Future<Output = OpResult> + Send;
    /// Drops the connection; the next operation reconnects.
    fn reset(&mut self);
}

/// Read consistency requested from targets that offer a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Consistency {
    /// Linearizable reads (TierKV `?consistency=strong`, etcd default range).
    Strong,
    /// TierKV `?consistency=quorum` (read R replicas); etcd treats it as linearizable.
    Quorum,
    /// Possibly stale reads (TierKV `?consistency=eventual`, etcd `serializable: true`).
    Eventual,
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Strong => "strong",
            Self::Quorum => "quorum",
            Self::Eventual => "eventual",
        })
    }
}
