//! Transport security of TierKV's processes (design note 0013): TLS on listeners with
//! certificates reloaded from their files, TLS to nodes verified against the cluster CA, and
//! client certificates as a connection's identity.
//!
//! # Layout
//!
//! | module | role |
//! |---|---|
//! | `settings` | the `[tls]` ([`ServerTlsSettings`]) and `[cluster.tls]` ([`ClientTlsSettings`]) sections, [`TlsError`] |
//! | `load` | PEM files → rustls material (certificate chains, keys checked against their certificate, CA stores), a listener's `ServerConfig`, file stamps |
//! | `reload` | the watch task: reloads a configuration when its files change, keeps the old one when the new files are bad, counts both in its [`TlsFigures`] |
//! | `listener` | [`Listener`] (plain or TLS, handshakes off the accept path), [`Peer`] (address, verified client certificate), [`serve`] |
//! | `client` | [`client_config`]: the rustls configuration of connections to nodes, for `reqwest` ([`ClientTls`]) |
//! | `figures` | [`TlsFigures`]: reloads that succeeded and failed, the not-after time of the certificate in force (plain atomics: the process exports them) |
//!
//! The crate knows no TierKV route or format: the node and the gateway decide what a verified
//! client certificate is worth.

mod client;
mod figures;
mod listener;
mod load;
mod reload;
mod settings;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use client::{ClientTls, client_config};
pub use figures::{LISTENER, NODE_CLIENT, TlsFigures};
pub use listener::{Io, Listener, Peer, serve};
/// The rustls version this crate builds configurations for (reqwest must use the same).
pub use rustls;
pub use settings::{ClientTlsSettings, ServerTlsSettings, TlsError};
