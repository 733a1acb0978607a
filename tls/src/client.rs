//! The TLS configuration of connections to nodes (`[cluster.tls]`): servers verified against
//! the cluster CA, a client certificate presented when configured, both reloaded from their
//! files without rebuilding the HTTP clients that use them.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::figures::{NODE_CLIENT, TlsFigures, not_after};
use crate::load::{certified_key, provider, roots};
use crate::reload::watch;
use crate::settings::{ClientTlsSettings, TlsError};

/// What one load of the files gives: the verifier of servers and the client certificate.
#[derive(Debug)]
struct Material {
    verifier: Arc<WebPkiServerVerifier>,
    identity: Option<Arc<CertifiedKey>>,
}

fn load(s: &ClientTlsSettings) -> Result<Material, TlsError> {
    let Some(ca) = &s.ca_file else {
        return Err(TlsError::Settings {
            setting: "cluster.tls.ca_file",
            reason: "is not set",
        });
    };
    let provider = provider();
    let roots = roots("cluster.tls.ca_file", ca)?;
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| TlsError::Content {
                setting: "cluster.tls.ca_file",
                path: ca.display().to_string(),
                reason: e.to_string(),
            })?;
    let identity = match (&s.cert_file, &s.key_file) {
        (Some(cert), Some(key)) => Some(certified_key(
            ("cluster.tls.cert_file", cert),
            ("cluster.tls.key_file", key),
            &provider,
        )?),
        _ => None,
    };
    Ok(Material { verifier, identity })
}

impl Material {
    /// The not-after time of the client certificate, when there is one.
    fn not_after(&self) -> Option<i64> {
        self.identity.as_deref().and_then(not_after)
    }
}

/// A cluster client's TLS: the rustls configuration for `reqwest` and the figures of its
/// reloads (`what` = [`NODE_CLIENT`]; the expiry is the client certificate's, when one is
/// configured).
#[derive(Debug)]
pub struct ClientTls {
    /// The configuration of connections to nodes.
    pub config: ClientConfig,
    /// What its reloads did.
    pub figures: Arc<TlsFigures>,
}

/// The current material, read at each handshake.
#[derive(Debug)]
struct Current(Arc<ArcSwap<Material>>);

impl ServerCertVerifier for Current {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.load().verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .load()
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .load()
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.load().verifier.supported_verify_schemes()
    }
}

impl ResolvesClientCert for Current {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0.load().identity.clone()
    }

    fn has_certs(&self) -> bool {
        self.0.load().identity.is_some()
    }
}

/// The rustls configuration of connections to nodes, or `None` when `[cluster.tls]` is off
/// (plain HTTP). Loads the files now (an error names the setting and the file) and watches
/// them every `reload_interval`, counting the reloads in [`ClientTls::figures`]. ALPN
/// offers `h2` only: node RPC is HTTP/2.
pub fn client_config(s: &ClientTlsSettings) -> Result<Option<ClientTls>, TlsError> {
    s.validate()?;
    if !s.enabled() {
        return Ok(None);
    }
    let material = load(s)?;
    let figures = Arc::new(TlsFigures::new(NODE_CLIENT, material.not_after()));
    let current = Arc::new(ArcSwap::from_pointee(material));
    let files = [&s.ca_file, &s.cert_file, &s.key_file]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let settings = s.clone();
    watch(
        "cluster.tls",
        &figures,
        files,
        s.reload_interval,
        &current,
        move || {
            let m = load(&settings)?;
            let expires = m.not_after();
            Ok((m, expires))
        },
    );
    let shared = Arc::new(Current(current));
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Settings {
            setting: "cluster.tls",
            reason: if e.to_string().is_empty() {
                "no protocol versions"
            } else {
                "unsupported protocol versions"
            },
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&shared) as Arc<dyn ServerCertVerifier>)
        .with_client_cert_resolver(shared);
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Some(ClientTls {
        config: cfg,
        figures,
    }))
}
