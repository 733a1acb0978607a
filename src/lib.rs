//! The `tierkv` binary's library part: what the processes are built from that tests also
//! use in process.
//!
//! - [`local`]: `tierkv serve`'s one-replica node and the gateway backend over it.

pub mod local;
