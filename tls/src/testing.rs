//! Certificates made in tests (feature `testing`): a CA, and leaf certificates it signs for
//! servers (with IP or DNS names) and clients.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate and its key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// Its private key (PKCS#8).
    pub key: String,
}

/// A certificate authority for tests.
#[derive(Debug)]
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new self-signed CA named `name`.
    ///
    /// # Panics
    ///
    /// When key generation or signing fails (tests only).
    #[must_use]
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA certificate.
    #[must_use]
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names` (IP addresses or DNS names) usable by servers and clients
    /// (a node is both).
    ///
    /// # Panics
    ///
    /// When key generation or signing fails (tests only).
    #[must_use]
    pub fn leaf(&self, names: &[&str]) -> Pem {
        self.leaf_with(names, |_| {})
    }

    /// [`Self::leaf`] valid until midnight UTC of `(year, month, day)`.
    ///
    /// # Panics
    ///
    /// When the date is invalid, or key generation or signing fails (tests only).
    #[must_use]
    pub fn leaf_until(&self, names: &[&str], (year, month, day): (i32, u8, u8)) -> Pem {
        self.leaf_with(names, |p| {
            p.not_after = rcgen::date_time_ymd(year, month, day);
        })
    }

    fn leaf_with(&self, names: &[&str], adjust: impl FnOnce(&mut CertificateParams)) -> Pem {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        adjust(&mut params);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Writes `contents` to `dir/name` by renaming a complete temporary file over it (how
/// certificates should be replaced: a reload never reads half a file).
///
/// # Panics
///
/// On I/O errors (tests only).
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, contents).expect("write temporary file");
    std::fs::rename(&tmp, &path).expect("rename over");
    path
}
