//! The `[tls]` (a process's listener) and `[cluster.tls]` (its connections to nodes)
//! configuration sections, and their validation (design note 0013).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default of both sections' `reload_interval`.
const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// TLS on a process's own listener (`[tls]`). Off unless `cert_file` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerTlsSettings {
    /// PEM file with the certificate chain the listener serves, leaf first. Default: none
    /// (plain HTTP).
    pub cert_file: Option<PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1). Default: none.
    pub key_file: Option<PathBuf>,
    /// PEM file with the CA certificates whose client certificates the listener accepts; on
    /// a node a verified client certificate stands in for the cluster secret. Default: none
    /// (client certificates are not asked for).
    pub client_ca_file: Option<PathBuf>,
    /// Refuse handshakes without a client certificate signed by `client_ca_file`.
    /// Default: false.
    pub require_client_cert: bool,
    /// How often the files are checked for changes (a changed set is loaded for new
    /// connections; a bad one keeps the previous). Default: 10s.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for ServerTlsSettings {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            require_client_cert: false,
            reload_interval: RELOAD_INTERVAL,
        }
    }
}

/// TLS on the connections a process opens to nodes (`[cluster.tls]`). Off unless `ca_file`
/// is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTlsSettings {
    /// PEM file with the cluster's CA certificates. Set: every node is reached over
    /// `https://` and its certificate must chain to one of them and name its address.
    /// Default: none (plain HTTP).
    pub ca_file: Option<PathBuf>,
    /// PEM file with the client certificate chain presented to nodes (mutual TLS).
    /// Default: none.
    pub cert_file: Option<PathBuf>,
    /// PEM file with its private key. Default: none.
    pub key_file: Option<PathBuf>,
    /// How often the files are checked for changes. Default: 10s.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for ClientTlsSettings {
    fn default() -> Self {
        Self {
            ca_file: None,
            cert_file: None,
            key_file: None,
            reload_interval: RELOAD_INTERVAL,
        }
    }
}

/// Why TLS settings or their files are unusable. Each names the setting (as written in the
/// configuration) and, for a file, its path.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Two settings that go together, or one that needs another, are not both set.
    #[error("{setting}: {reason}")]
    Settings {
        /// The setting.
        setting: &'static str,
        /// What is missing.
        reason: &'static str,
    },
    /// A file could not be read.
    #[error("{setting}: cannot read {path}: {source}")]
    Read {
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file's content is not what the setting needs.
    #[error("{setting}: {path}: {reason}")]
    Content {
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ServerTlsSettings {
    /// Whether the listener serves TLS.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }

    /// Checks that the settings go together (the files are checked when loaded).
    pub fn validate(&self) -> Result<(), TlsError> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(TlsError::Settings {
                setting: "tls.cert_file / tls.key_file",
                reason: "set both or neither",
            });
        }
        if !self.enabled() && self.client_ca_file.is_some() {
            return Err(TlsError::Settings {
                setting: "tls.client_ca_file",
                reason: "needs tls.cert_file and tls.key_file",
            });
        }
        if self.require_client_cert && self.client_ca_file.is_none() {
            return Err(TlsError::Settings {
                setting: "tls.require_client_cert",
                reason: "needs tls.client_ca_file",
            });
        }
        if self.reload_interval.is_zero() {
            return Err(TlsError::Settings {
                setting: "tls.reload_interval",
                reason: "must be positive",
            });
        }
        Ok(())
    }
}

impl ClientTlsSettings {
    /// Whether connections to nodes use TLS.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.ca_file.is_some()
    }

    /// The URL scheme of node addresses: `https` with a CA, else `http`.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        if self.enabled() { "https" } else { "http" }
    }

    /// Checks that the settings go together (the files are checked when loaded).
    pub fn validate(&self) -> Result<(), TlsError> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(TlsError::Settings {
                setting: "cluster.tls.cert_file / cluster.tls.key_file",
                reason: "set both or neither",
            });
        }
        if self.cert_file.is_some() && !self.enabled() {
            return Err(TlsError::Settings {
                setting: "cluster.tls.cert_file",
                reason: "needs cluster.tls.ca_file",
            });
        }
        if self.reload_interval.is_zero() {
            return Err(TlsError::Settings {
                setting: "cluster.tls.reload_interval",
                reason: "must be positive",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_go_together_are_checked() {
        let p = || Some(PathBuf::from("x.pem"));
        assert!(ServerTlsSettings::default().validate().is_ok());
        for bad in [
            ServerTlsSettings {
                cert_file: p(),
                ..Default::default()
            },
            ServerTlsSettings {
                client_ca_file: p(),
                ..Default::default()
            },
            ServerTlsSettings {
                cert_file: p(),
                key_file: p(),
                require_client_cert: true,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(TlsError::Settings { .. })),
                "{bad:?}"
            );
        }
        assert!(ClientTlsSettings::default().validate().is_ok());
        assert_eq!(ClientTlsSettings::default().scheme(), "http");
        let bad = ClientTlsSettings {
            cert_file: p(),
            key_file: p(),
            ..Default::default()
        };
        assert!(matches!(bad.validate(), Err(TlsError::Settings { .. })));
        let ok = ClientTlsSettings {
            ca_file: p(),
            ..bad
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.scheme(), "https");
    }
}
