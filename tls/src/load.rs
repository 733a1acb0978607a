//! Reading PEM files into rustls material, and the file stamps that tell a reload when they
//! changed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::figures::not_after;
use crate::settings::{ServerTlsSettings, TlsError};

/// ALPN protocols a listener offers: HTTP/2 first (node RPC and replication are long-lived
/// HTTP/2 streams), HTTP/1.1 for everything else.
const SERVER_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The one crypto provider: aws-lc-rs (also what object storage's HTTPS client uses).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        setting,
        path: shown(path),
        source,
    })
}

fn content(setting: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Content {
        setting,
        path: shown(path),
        reason: reason.into(),
    }
}

/// The certificates of a PEM file, in order (at least one).
pub(crate) fn certs(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(setting, path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(content(setting, path, "holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The private key of a PEM file.
fn key(setting: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(setting, path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| content(setting, path, format!("no usable private key: {e}")))
}

/// The certificate chain of `cert` with the key of `key`, checked to belong together.
pub(crate) fn certified_key(
    (cert_setting, cert): (&'static str, &Path),
    (key_setting, key_path): (&'static str, &Path),
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certs(cert_setting, cert)?;
    let der = key(key_setting, key_path)?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| content(key_setting, key_path, format!("unusable private key: {e}")))?;
    let ck = CertifiedKey::new(chain, signing);
    match ck.keys_match() {
        Ok(()) => Ok(Arc::new(ck)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(content(
                key_setting,
                key_path,
                format!("does not match the certificate in {}", shown(cert)),
            ))
        }
        Err(e) => Err(content(cert_setting, cert, e.to_string())),
    }
}

/// The CA certificates of a PEM file as trust anchors (at least one).
pub(crate) fn roots(setting: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    let (_, rejected) = store.add_parsable_certificates(certs(setting, path)?);
    if store.is_empty() {
        return Err(content(setting, path, "holds no usable CA certificate"));
    }
    if rejected > 0 {
        tracing::warn!(setting, path = %path.display(), rejected, "some certificates were not usable as CAs");
    }
    Ok(store)
}

fn internal(setting: &'static str, path: &Path, e: impl std::fmt::Display) -> TlsError {
    content(setting, path, e.to_string())
}

/// A complete listener configuration from the files `s` names (`s.cert_file` must be set),
/// and the not-after time of the certificate it serves.
pub(crate) fn server_config(
    s: &ServerTlsSettings,
) -> Result<(ServerConfig, Option<i64>), TlsError> {
    let (Some(cert), Some(key)) = (&s.cert_file, &s.key_file) else {
        return Err(TlsError::Settings {
            setting: "tls.cert_file / tls.key_file",
            reason: "set both or neither",
        });
    };
    let provider = provider();
    let ck = certified_key(("tls.cert_file", cert), ("tls.key_file", key), &provider)?;
    let expires = not_after(&ck);
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| internal("tls.cert_file", cert, e))?;
    let builder = match &s.client_ca_file {
        Some(ca) => {
            let roots = roots("tls.client_ca_file", ca)?;
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if s.require_client_cert {
                v
            } else {
                v.allow_unauthenticated()
            };
            let v = v
                .build()
                .map_err(|e| internal("tls.client_ca_file", ca, e))?;
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(ck)));
    cfg.alpn_protocols = SERVER_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok((cfg, expires))
}

/// What identifies a version of a file: modification time, size and inode (a file renamed
/// over the old one has a new inode even within the same clock tick).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp(Option<(SystemTime, u64, u64)>);

/// The stamps of `files` now (a file that cannot be read stamps as `None`).
pub(crate) fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    files
        .iter()
        .map(|f| {
            Stamp(
                std::fs::metadata(f)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len(), m.ino()))),
            )
        })
        .collect()
}
