//! `tierkv-loadgen`: a YCSB-style load generator for TierKV, etcd and Redis, with the
//! `tierkv-bench` binary on top.
//!
//! # Layout
//!
//! - [`options`]: the command line (`BenchOptions`), defaults and validation.
//! - [`workload`]: YCSB workloads (`a`, `b`, `c`, `w`, `f`, `ttl`) and their operation mix.
//! - [`zipf`]: the YCSB zipfian generator and the scrambler that spreads hot keys.
//! - [`keys`]: key names (`user0000000042`) and key choice (uniform / zipfian).
//! - [`target`]: the [`target::Target`] trait (read, update, rmw) and one client per system:
//!   [`target::tierkv`], [`target::etcd`], [`target::redis`].
//! - [`http`]: one keep-alive HTTP/1.1 connection per worker (hyper low-level client).
//! - [`resp`]: RESP2 encoder and decoder for the Redis target.
//! - [`stats`]: per-worker HdrHistograms and counters.
//! - [`runner`]: load phase, closed and open loop, warmup.
//! - `progress`: the once-a-second progress line on stderr.
//! - [`report`]: the report, its text form and its JSON schema.
//!
//! # HTTP client choice
//!
//! Each worker owns one hyper `client::conn::http1::SendRequest` over its own `TcpStream`
//! (`TCP_NODELAY`), instead of a pooled client such as `reqwest` (default features off) or
//! hyper-util's legacy `Client`. A load generator worker only ever has one request in flight,
//! so a pool can only add work per request: a mutex-protected checkout and return, URL
//! parsing and connector lookup, redirect and header bookkeeping. On 2 cores with 32+
//! connections the generator competes with the server for CPU, and that per-request overhead
//! is what would cap the offered load; the per-connection design also makes the connection
//! count exactly the worker count. Measured on the 2-core dev machine (release build,
//! `tests/client_compare.rs`, 32 connections x 2,000 GETs of 256 B against an in-process
//! hyper server): hyper conn per worker 57.7k-59.8k req/s, hyper-util pooled `Client`
//! 50.9k-59.8k, `reqwest` (default features off) 40.5k-47.4k. The per-worker connection is
//! as fast as the best pooled client, about 25-45% faster than reqwest, and simpler. Connections are opened lazily and reopened after an I/O
//! error or a timeout; a request that a closed idle connection never sent is retried once.
#![warn(missing_docs)]

pub mod http;
pub mod keys;
pub mod options;
mod progress;
pub mod report;
pub mod resp;
pub mod runner;
pub mod stats;
pub mod target;
pub mod workload;
pub mod zipf;

pub use options::{BenchOptions, TargetKind};
pub use report::Report;
pub use runner::{run, run_with};
