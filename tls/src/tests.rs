//! The listener and the client configuration against each other on 127.0.0.1, with
//! certificates made here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::testing::{Pem, TestCa, write_file};
use crate::{
    ClientTlsSettings, LISTENER, Listener, NODE_CLIENT, Peer, ServerTlsSettings, TlsError,
    TlsFigures, client_config, serve,
};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn put(&self, name: &str, contents: &str) -> PathBuf {
        write_file(self.dir.path(), name, contents)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn server_settings(f: &Files, client_ca: bool) -> ServerTlsSettings {
    ServerTlsSettings {
        cert_file: Some(f.path("server.pem")),
        key_file: Some(f.path("server.key")),
        client_ca_file: client_ca.then(|| f.path("ca.pem")),
        require_client_cert: false,
        reload_interval: Duration::from_millis(50),
    }
}

/// A server on 127.0.0.1 answering `/peer` with whether the connection's client certificate
/// verified; it stops when the token is cancelled. Also the listener's figures.
async fn start(
    settings: &ServerTlsSettings,
) -> (String, CancellationToken, Option<Arc<TlsFigures>>) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let listener = Listener::new(tcp, settings).expect("listener");
    let figures = listener.figures();
    let url = format!(
        "{}://{}",
        listener.scheme(),
        listener.local_addr().expect("addr")
    );
    let app = Router::new().route(
        "/peer",
        get(|Extension(p): Extension<Peer>| async move { p.client_cert.to_string() }),
    );
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(serve(listener, app, async move { s.cancelled().await }));
    (url, stop, figures)
}

fn client(ca: &str, identity: Option<&Pem>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA")])
        .tls_info(true)
        .timeout(Duration::from_secs(5));
    if let Some(p) = identity {
        let pem = format!("{}{}", p.cert, p.key);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    b.build().expect("client")
}

/// The answer to `/peer` and the DER of the certificate the server presented.
async fn peer(c: &reqwest::Client, url: &str) -> Result<(String, Vec<u8>), reqwest::Error> {
    let r = c.get(format!("{url}/peer")).send().await?;
    let der = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec))
        .unwrap_or_default();
    Ok((r.text().await?, der))
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM")
        .to_vec()
}

#[test]
fn bad_files_are_named() {
    let f = Files::new();
    let ca = TestCa::new("ca");
    let a = ca.leaf(&["127.0.0.1"]);
    let b = ca.leaf(&["127.0.0.1"]);
    let s = server_settings(&f, false);
    let err = |s: &ServerTlsSettings| crate::load::server_config(s).expect_err("refused");
    assert!(matches!(
        err(&s),
        TlsError::Read {
            setting: "tls.cert_file",
            ..
        }
    ));
    f.put("server.pem", &a.cert);
    f.put("server.key", &b.key);
    let e = err(&s);
    assert!(
        matches!(
            e,
            TlsError::Content {
                setting: "tls.key_file",
                ..
            }
        ) && e.to_string().contains("does not match"),
        "{e}"
    );
    f.put("server.key", "not a key");
    assert!(matches!(
        err(&s),
        TlsError::Content {
            setting: "tls.key_file",
            ..
        }
    ));
    f.put("server.key", &a.key);
    assert!(crate::load::server_config(&s).is_ok());
    f.put("ca.pem", "no certificates here");
    let e = err(&server_settings(&f, true));
    assert!(
        matches!(
            e,
            TlsError::Content {
                setting: "tls.client_ca_file",
                ..
            }
        ),
        "{e}"
    );
    let client = ClientTlsSettings {
        ca_file: Some(f.path("missing.pem")),
        ..Default::default()
    };
    assert!(matches!(
        client_config(&client),
        Err(TlsError::Read {
            setting: "cluster.tls.ca_file",
            ..
        })
    ));
}

async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn client_certificates_identify_and_certificates_reload() {
    let f = Files::new();
    let ca = TestCa::new("cluster");
    let other = TestCa::new("other");
    let first = ca.leaf(&["127.0.0.1"]);
    f.put("ca.pem", &ca.cert_pem());
    f.put("server.pem", &first.cert);
    f.put("server.key", &first.key);
    let (url, _stop, _) = start(&server_settings(&f, true)).await;
    assert!(url.starts_with("https://"));
    let member = ca.leaf(&["member"]);
    let stranger = other.leaf(&["member"]);

    let (who, der) = peer(&client(&ca.cert_pem(), Some(&member)), &url)
        .await
        .expect("trusted client certificate");
    assert_eq!((who.as_str(), der), ("true", der_of(&first.cert)));
    let (who, _) = peer(&client(&ca.cert_pem(), None), &url)
        .await
        .expect("no client certificate");
    assert_eq!(who, "false");
    assert!(
        peer(&client(&ca.cert_pem(), Some(&stranger)), &url)
            .await
            .is_err(),
        "a certificate of another CA fails the handshake"
    );
    assert!(
        peer(&client(&other.cert_pem(), None), &url).await.is_err(),
        "a client that does not trust the server's CA refuses it"
    );

    // The cluster client configuration: h2 over TLS, with the client certificate.
    f.put("member.pem", &member.cert);
    f.put("member.key", &member.key);
    let cfg = client_config(&ClientTlsSettings {
        ca_file: Some(f.path("ca.pem")),
        cert_file: Some(f.path("member.pem")),
        key_file: Some(f.path("member.key")),
        reload_interval: Duration::from_millis(50),
    })
    .expect("loads")
    .expect("enabled");
    let cluster = reqwest::Client::builder()
        .http2_prior_knowledge()
        .tls_backend_preconfigured(cfg.config)
        .build()
        .expect("client");
    let r = cluster
        .get(format!("{url}/peer"))
        .send()
        .await
        .expect("h2 over TLS");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().await.expect("body"), "true");

    // Rotation: new connections see the new certificate.
    let second = ca.leaf(&["127.0.0.1"]);
    f.put("server.key", &second.key);
    f.put("server.pem", &second.cert);
    until("the new certificate", async || {
        let (_, der) = peer(&client(&ca.cert_pem(), None), &url).await.ok()?;
        (der == der_of(&second.cert)).then_some(())
    })
    .await;
    // A key that does not match: the second certificate stays in force. The stamp check
    // runs every 50 ms; after a few of them a new connection still gets the second one.
    f.put("server.key", &first.key);
    let checked = Instant::now();
    until("a few reload checks", async || {
        (checked.elapsed() > Duration::from_millis(300)).then_some(())
    })
    .await;
    let (_, der) = peer(&client(&ca.cert_pem(), None), &url)
        .await
        .expect("still serving");
    assert_eq!(der, der_of(&second.cert));
}

#[tokio::test]
async fn required_client_certificates_refuse_handshakes_without_one() {
    let f = Files::new();
    let ca = TestCa::new("cluster");
    let server = ca.leaf(&["127.0.0.1"]);
    f.put("ca.pem", &ca.cert_pem());
    f.put("server.pem", &server.cert);
    f.put("server.key", &server.key);
    let (url, _stop, _) = start(&ServerTlsSettings {
        require_client_cert: true,
        ..server_settings(&f, true)
    })
    .await;
    assert!(peer(&client(&ca.cert_pem(), None), &url).await.is_err());
    let (who, _) = peer(&client(&ca.cert_pem(), Some(&ca.leaf(&["m"]))), &url)
        .await
        .expect("with a certificate");
    assert_eq!(who, "true");
}

#[tokio::test]
async fn plain_listeners_stay_plain() {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let l = Listener::new(tcp, &ServerTlsSettings::default()).expect("plain");
    assert!(!l.is_tls());
    assert_eq!(l.scheme(), "http");
    assert!(l.figures().is_none(), "nothing reloads");
}

/// Midnight UTC of the dates the certificates below expire, as Unix seconds (computed
/// outside this code: `date -u -d 2031-03-04 +%s`).
const MARCH_2031: i64 = 1_930_348_800;
const JULY_2032: i64 = 1_972_252_800;
const JANUARY_2033: i64 = 1_989_360_000;

/// One file holding a certificate and its key, so that a rename replaces both at once (the
/// watch then sees exactly one change).
fn both(p: &Pem) -> String {
    format!("{}{}", p.cert, p.key)
}

#[tokio::test]
async fn reloads_are_counted_and_the_expiry_follows_the_certificate_in_force() {
    let f = Files::new();
    let ca = TestCa::new("cluster");
    let first = ca.leaf_until(&["127.0.0.1"], (2031, 3, 4));
    f.put("server.both", &both(&first));
    let settings = ServerTlsSettings {
        cert_file: Some(f.path("server.both")),
        key_file: Some(f.path("server.both")),
        ..server_settings(&f, false)
    };
    let (url, _stop, figures) = start(&settings).await;
    let figures = figures.expect("a TLS listener has figures");
    assert_eq!(figures.what(), LISTENER);
    assert_eq!((figures.reloads_ok(), figures.reloads_failed()), (0, 0));
    assert_eq!(figures.not_after(), Some(MARCH_2031));
    let presented = async || {
        peer(&client(&ca.cert_pem(), None), &url)
            .await
            .expect("serving")
            .1
    };

    // A good new certificate: one reload, counted once it is in force.
    let second = ca.leaf_until(&["127.0.0.1"], (2032, 7, 1));
    f.put("server.both", &both(&second));
    until("the reload", async || {
        (figures.reloads_ok() == 1).then_some(())
    })
    .await;
    assert_eq!(figures.reloads_failed(), 0);
    assert_eq!(figures.not_after(), Some(JULY_2032));
    assert_eq!(presented().await, der_of(&second.cert));

    // A bad file: counted as an error; the second certificate and its expiry stay.
    f.put("server.both", "not a certificate");
    until("the failed reload", async || {
        (figures.reloads_failed() == 1).then_some(())
    })
    .await;
    assert_eq!(figures.reloads_ok(), 1);
    assert_eq!(figures.not_after(), Some(JULY_2032));
    assert_eq!(presented().await, der_of(&second.cert));

    // The watch goes on after a failure.
    let third = ca.leaf_until(&["127.0.0.1"], (2033, 1, 15));
    f.put("server.both", &both(&third));
    until("the next reload", async || {
        (figures.reloads_ok() == 2).then_some(())
    })
    .await;
    assert_eq!(figures.reloads_failed(), 1);
    assert_eq!(figures.not_after(), Some(JANUARY_2033));
    assert_eq!(presented().await, der_of(&third.cert));
}

#[tokio::test]
async fn a_node_client_counts_its_reloads_and_shows_its_own_certificate_only() {
    let f = Files::new();
    let ca = TestCa::new("cluster");
    f.put("ca.pem", &ca.cert_pem());
    f.put(
        "member.both",
        &both(&ca.leaf_until(&["member"], (2031, 3, 4))),
    );
    // Kept: the watch stops when the configuration is dropped.
    let member = client_config(&ClientTlsSettings {
        ca_file: Some(f.path("ca.pem")),
        cert_file: Some(f.path("member.both")),
        key_file: Some(f.path("member.both")),
        reload_interval: Duration::from_millis(50),
    })
    .expect("loads")
    .expect("enabled");
    let with_identity = &member.figures;
    assert_eq!(with_identity.what(), NODE_CLIENT);
    assert_eq!(with_identity.not_after(), Some(MARCH_2031));
    let ca_only = client_config(&ClientTlsSettings {
        ca_file: Some(f.path("ca.pem")),
        reload_interval: Duration::from_millis(50),
        ..Default::default()
    })
    .expect("loads")
    .expect("enabled")
    .figures;
    assert_eq!(ca_only.not_after(), None, "no certificate of its own");

    f.put(
        "member.both",
        &both(&ca.leaf_until(&["member"], (2032, 7, 1))),
    );
    until("the reload", async || {
        (with_identity.reloads_ok() == 1).then_some(())
    })
    .await;
    assert_eq!(with_identity.not_after(), Some(JULY_2032));
    f.put("member.both", "no key here");
    until("the failed reload", async || {
        (with_identity.reloads_failed() == 1).then_some(())
    })
    .await;
    assert_eq!(
        (with_identity.reloads_ok(), with_identity.not_after()),
        (1, Some(JULY_2032))
    );
}
