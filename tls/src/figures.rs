//! [`TlsFigures`]: what the reloads of one TLS configuration did and when the certificate in
//! force expires, as plain atomics. The crate knows no metrics library: whoever serves a
//! process's `/metrics` reads these (the `tierkv` binary exports them as `tierkv_tls_*`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rustls::sign::CertifiedKey;

/// The `what` of a listener's configuration (`[tls]`).
pub const LISTENER: &str = "listener";
/// The `what` of the configuration of connections to nodes (`[cluster.tls]`).
pub const NODE_CLIENT: &str = "node_client";

/// `not_after` when the configuration has no certificate of its own.
const NO_CERTIFICATE: i64 = i64::MIN;

/// The figures of one TLS configuration; shared with its watch task.
#[derive(Debug)]
pub struct TlsFigures {
    what: &'static str,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    not_after: AtomicI64,
}

impl TlsFigures {
    pub(crate) fn new(what: &'static str, not_after: Option<i64>) -> Self {
        Self {
            what,
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            not_after: AtomicI64::new(not_after.unwrap_or(NO_CERTIFICATE)),
        }
    }

    /// Which configuration: [`LISTENER`] or [`NODE_CLIENT`] (stable, snake_case: a label).
    #[must_use]
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Reloads that put new files in force (the load at start is not one).
    #[must_use]
    pub fn reloads_ok(&self) -> u64 {
        self.reloads_ok.load(Ordering::Relaxed)
    }

    /// Reloads that failed, leaving the previous configuration in force.
    #[must_use]
    pub fn reloads_failed(&self) -> u64 {
        self.reloads_failed.load(Ordering::Relaxed)
    }

    /// The not-after time (Unix seconds) of the configuration's own certificate in force
    /// (the one a listener serves, the one a client presents); `None` without one.
    #[must_use]
    pub fn not_after(&self) -> Option<i64> {
        Some(self.not_after.load(Ordering::Relaxed)).filter(|&t| t != NO_CERTIFICATE)
    }

    pub(crate) fn reloaded(&self, not_after: Option<i64>) {
        self.not_after
            .store(not_after.unwrap_or(NO_CERTIFICATE), Ordering::Relaxed);
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.reloads_failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// The not-after time (Unix seconds) of `ck`'s end-entity certificate; `None` (logged) when
/// it does not parse as X.509, which rustls has not checked at load.
pub(crate) fn not_after(ck: &CertifiedKey) -> Option<i64> {
    let der = ck.end_entity_cert().ok()?;
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => Some(cert.validity().not_after.timestamp()),
        Err(e) => {
            tracing::warn!(error = %e, "reading the certificate's expiry");
            None
        }
    }
}
