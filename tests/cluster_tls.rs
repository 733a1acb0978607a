//! TLS end to end (design note 0013): three nodes and a gateway as processes on 127.0.0.1,
//! every listener and every connection between them over TLS with certificates made here,
//! the nodes' RPC authenticated by client certificates (each process has its own cluster
//! secret, so nothing between them could work on the secret), certificate rotation while
//! serving (and its figures on `/metrics`), and the refusals.

mod cluster;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cluster::{Cluster, HarnessTls, Opts};
use tierkv_node::wire::proto::{self, Request, Response};
use tierkv_tls::testing::{Pem, TestCa, write_file};

/// The certificates of one test cluster, in files under `dir`.
struct Pki {
    ca: TestCa,
    /// Another CA, trusted by nobody.
    stranger: TestCa,
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).expect("pki dir");
        let ca = TestCa::new("tierkv test cluster");
        write_file(&dir, "ca.pem", &ca.cert_pem());
        Self {
            ca,
            stranger: TestCa::new("stranger"),
            dir,
        }
    }

    /// Writes a new certificate for 127.0.0.1 as `<name>.pem` / `<name>.key` (renamed over
    /// the old files, key first); returns it.
    fn issue(&self, name: &str) -> Pem {
        self.write(name, self.ca.leaf(&["127.0.0.1"]))
    }

    /// [`Self::issue`] with a certificate valid until midnight UTC of `date`.
    fn issue_until(&self, name: &str, date: (i32, u8, u8)) -> Pem {
        self.write(name, self.ca.leaf_until(&["127.0.0.1"], date))
    }

    fn write(&self, name: &str, pem: Pem) -> Pem {
        write_file(&self.dir, &format!("{name}.key"), &pem.key);
        write_file(&self.dir, &format!("{name}.pem"), &pem.cert);
        pem
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// The environment giving a process its listener certificate `name` and its client
    /// certificate (the same one) for connections to nodes.
    fn env(&self, name: &str) -> Vec<(String, String)> {
        [
            ("TIERKV_TLS__CERT_FILE", self.path(&format!("{name}.pem"))),
            ("TIERKV_TLS__KEY_FILE", self.path(&format!("{name}.key"))),
            ("TIERKV_TLS__RELOAD_INTERVAL", "100ms".to_owned()),
            ("TIERKV_CLUSTER__TLS__CA_FILE", self.path("ca.pem")),
            (
                "TIERKV_CLUSTER__TLS__CERT_FILE",
                self.path(&format!("{name}.pem")),
            ),
            (
                "TIERKV_CLUSTER__TLS__KEY_FILE",
                self.path(&format!("{name}.key")),
            ),
            ("TIERKV_CLUSTER__TLS__RELOAD_INTERVAL", "100ms".to_owned()),
            // Every process has its own secret: only client certificates authenticate.
            ("TIERKV_CLUSTER__SECRET", format!("secret-of-{name}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    use tierkv_tls::rustls::pki_types::CertificateDer;
    use tierkv_tls::rustls::pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM")
        .to_vec()
}

/// A client trusting the cluster CA, presenting `identity` (if any), on a new connection.
/// A client of the public API: trusts `ca`, sends `headers` (the API key) with every request.
fn api_client(ca: &TestCa, headers: reqwest::header::HeaderMap) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).expect("CA")])
        .default_headers(headers)
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client")
}

fn client(ca: &TestCa, identity: Option<&Pem>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).expect("CA")])
        .tls_info(true)
        .timeout(Duration::from_secs(15));
    if let Some(p) = identity {
        let pem = format!("{}{}", p.cert, p.key);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    b.build().expect("client")
}

/// The certificate a server at `url` presents to a new connection.
async fn presented(ca: &TestCa, url: &str) -> Option<Vec<u8>> {
    let r = client(ca, None)
        .get(format!("{url}/health/live"))
        .send()
        .await
        .ok()?;
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()
        .map(<[u8]>::to_vec)
}

/// `POST /rpc/v1/kv` with a `Status` request: the HTTP status, or the error text.
async fn status_rpc(
    c: &reqwest::Client,
    node_url: &str,
    bearer: Option<&str>,
) -> Result<u16, String> {
    let mut req = c
        .post(format!("{node_url}/rpc/v1/kv"))
        .body(proto::encode_request(&Request::Status));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let r = req.send().await.map_err(|e| format!("{e:?}"))?;
    let status = r.status().as_u16();
    if status == 200 {
        let body = r.bytes().await.map_err(|e| e.to_string())?;
        assert!(
            matches!(proto::decode_response(&body), Ok(Response::Status { .. })),
            "a status answer"
        );
    }
    Ok(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_tls_serves_authenticates_by_certificate_and_rotates() {
    let pre = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(pre.path());
    for name in ["node-1", "node-2", "node-3", "gateway"] {
        pki.issue(name);
    }
    let tester = pki.ca.leaf(&["tester"]);
    let mut node_env: Vec<(u32, String, String)> = (1..=3u32)
        .flat_map(|id| {
            pki.env(&format!("node-{id}"))
                .into_iter()
                .chain([("TIERKV_TLS__CLIENT_CA_FILE".to_owned(), pki.path("ca.pem"))])
                .map(move |(k, v)| (id, k, v))
        })
        .collect();
    // Node 3 takes no connection without a client certificate.
    node_env.push((3, "TIERKV_TLS__REQUIRE_CLIENT_CERT".into(), "true".into()));
    let c = Cluster::start(Opts {
        node_env,
        gateway_env: pki.env("gateway"),
        tls: Some(HarnessTls {
            ca: pki.ca.cert_pem(),
            client: tester.clone(),
        }),
        ..Opts::default()
    })
    .await;
    assert!(c.url.starts_with("https://127.0.0.1:"), "{}", c.url);

    // Writes and strong reads through the gateway, whose certificate the client verifies.
    let api = api_client(&pki.ca, c.auth_headers());
    for i in 0..20 {
        let r = api
            .put(format!("{}/v1/kv/tls-{i}", c.url))
            .body(format!("v{i}"))
            .send()
            .await
            .expect("put");
        assert!(r.status().is_success(), "put: {}", r.status());
    }
    for i in 0..20 {
        let r = api
            .get(format!("{}/v1/kv/tls-{i}", c.url))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.expect("body"), format!("v{i}"));
    }
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(pki.stranger.cert_pem().as_bytes()).expect("CA"),
        ])
        .build()
        .expect("client");
    let e = untrusting
        .get(format!("{}/health/live", c.url))
        .send()
        .await
        .expect_err("a client that does not trust the cluster CA refuses the gateway");
    assert!(e.is_connect(), "{e:?}");

    // Node RPC: certificates in place of the secret; refusals.
    let stranger = pki.stranger.leaf(&["tester"]);
    let n1 = c.node_url(1);
    let n3 = c.node_url(3);
    assert_eq!(
        status_rpc(&client(&pki.ca, Some(&tester)), &n1, None).await,
        Ok(200)
    );
    assert_eq!(status_rpc(&client(&pki.ca, None), &n1, None).await, Ok(401));
    assert_eq!(
        status_rpc(&client(&pki.ca, None), &n1, Some("wrong")).await,
        Ok(401)
    );
    assert_eq!(
        status_rpc(&client(&pki.ca, None), &n1, Some("secret-of-node-1")).await,
        Ok(200)
    );
    assert!(
        status_rpc(&client(&pki.ca, Some(&stranger)), &n1, None)
            .await
            .is_err(),
        "an untrusted client certificate fails the handshake"
    );
    assert_eq!(
        status_rpc(&client(&pki.ca, Some(&tester)), &n3, None).await,
        Ok(200)
    );
    for (what, cl) in [
        ("no client certificate", client(&pki.ca, None)),
        ("an untrusted certificate", client(&pki.ca, Some(&stranger))),
    ] {
        assert!(
            status_rpc(&cl, &n3, Some("secret-of-node-3"))
                .await
                .is_err(),
            "node 3 requires a client certificate: {what} is refused even with the secret"
        );
    }
    let plain = reqwest::Client::new();
    assert!(
        status_rpc(
            &plain,
            &n1.replace("https://", "http://"),
            Some("secret-of-node-1")
        )
        .await
        .is_err(),
        "a TLS listener does not speak plain HTTP"
    );

    // Rotation while serving: a bounded write/read loop through the gateway (every tenth
    // round on a new connection) runs while the gateway's and node 1's files are replaced.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = Arc::clone(&stop);
        let url = c.url.clone();
        let ca = pki.ca.cert_pem();
        let headers = c.auth_headers();
        tokio::spawn(async move {
            let trust = || {
                reqwest::Client::builder()
                    .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA")])
                    .default_headers(headers.clone())
                    .timeout(Duration::from_secs(15))
                    .build()
                    .expect("client")
            };
            let mut http = trust();
            let (mut ok, mut failed) = (0u32, Vec::new());
            let deadline = Instant::now() + Duration::from_secs(60);
            for round in 0..5000u32 {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                if round % 10 == 0 {
                    http = trust();
                }
                let key = format!("{url}/v1/kv/rot-{}", round % 50);
                let put = http.put(&key).body(round.to_string()).send().await;
                let get = http.get(&key).send().await;
                match (put, get) {
                    (Ok(p), Ok(g)) if p.status().is_success() && g.status() == 200 => {
                        let body = g.text().await.unwrap_or_default();
                        if body == round.to_string() {
                            ok += 1;
                        } else {
                            failed.push(format!("round {round}: read {body:?}"));
                        }
                    }
                    (p, g) => failed.push(format!(
                        "round {round}: {:?} / {:?}",
                        p.map(|r| r.status()),
                        g.map(|r| r.status())
                    )),
                }
            }
            (ok, failed)
        })
    };
    let old_gateway = presented(&pki.ca, &c.url).await.expect("gateway answers");
    let new_gateway = pki.issue_until("gateway", (2031, 3, 4));
    let new_node = pki.issue_until("node-1", (2031, 3, 4));
    assert_ne!(old_gateway, der_of(&new_gateway.cert));
    let deadline = Instant::now() + Duration::from_secs(20);
    for (url, want) in [
        (c.url.clone(), der_of(&new_gateway.cert)),
        (n1.clone(), der_of(&new_node.cert)),
    ] {
        loop {
            if presented(&pki.ca, &url).await.as_ref() == Some(&want) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{url} did not present its new certificate within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The reloads show on `/metrics` (design note 0013, "Observability"): on the gateway and
    // on node 1, the listener's and the node client's (both read the rotated files), with
    // the new certificates' expiry.
    reloads_on_metrics("the gateway", async || {
        api.get(format!("{}/metrics", c.url))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    })
    .await;
    reloads_on_metrics("node 1", async || c.metrics_text(&n1).await).await;
    // Node 1 with its new certificate still takes part: a client certificate from the
    // (same) CA still authenticates, and the cluster still writes.
    assert_eq!(
        status_rpc(&client(&pki.ca, Some(&tester)), &n1, None).await,
        Ok(200)
    );
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.await.expect("load loop");
    assert!(
        failed.is_empty(),
        "failed requests during rotation: {failed:?}"
    );
    assert!(ok > 0, "the load loop ran");
    for i in 0..20 {
        let r = api
            .get(format!("{}/v1/kv/tls-{i}", c.url))
            .send()
            .await
            .expect("get after rotation");
        assert_eq!(r.text().await.expect("body"), format!("v{i}"));
    }
}

/// `date -u -d 2031-03-04 +%s`: when the rotated certificates expire.
const MARCH_2031: f64 = 1_930_348_800.0;

/// The value of the sample `series` (its name and labels as printed) in a `/metrics` text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Polls `fetch` (a process's `/metrics`) until its listener and its node client each show
/// a successful reload and the expiry of the certificates issued until March 2031; fails
/// after 20 s with the last text seen.
async fn reloads_on_metrics(who: &str, fetch: impl AsyncFn() -> Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    loop {
        if let Some(text) = fetch().await {
            let shown = ["listener", "node_client"].iter().all(|what| {
                let ok = format!("tierkv_tls_reloads_total{{what=\"{what}\",result=\"ok\"}}");
                let expiry = format!("tierkv_tls_certificate_expiry_seconds{{what=\"{what}\"}}");
                sample(&text, &ok).is_some_and(|n| n >= 1.0)
                    && sample(&text, &expiry) == Some(MARCH_2031)
            });
            if shown {
                return;
            }
            last = text;
        }
        assert!(
            Instant::now() < deadline,
            "{who}: the reloads are not on /metrics within 20 s:\n{last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Bad TLS settings stop a start with an error naming the setting and the file.
#[tokio::test]
async fn bad_tls_files_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    pki.issue("a");
    write_file(&pki.dir, "b.key", &pki.ca.leaf(&["127.0.0.1"]).key);
    let store = format!("file://{}", dir.path().join("objects").display());
    for (env, wants) in [
        (
            vec![
                ("TIERKV_TLS__CERT_FILE", pki.path("missing.pem")),
                ("TIERKV_TLS__KEY_FILE", pki.path("a.key")),
            ],
            vec!["tls.cert_file", "missing.pem"],
        ),
        (
            vec![
                ("TIERKV_TLS__CERT_FILE", pki.path("a.pem")),
                ("TIERKV_TLS__KEY_FILE", pki.path("b.key")),
            ],
            vec!["tls.key_file", "does not match"],
        ),
        (
            vec![("TIERKV_TLS__CERT_FILE", pki.path("a.pem"))],
            vec!["tls.cert_file / tls.key_file"],
        ),
        (
            vec![("TIERKV_CLUSTER__TLS__CA_FILE", pki.path("a.key"))],
            vec!["cluster.tls.ca_file"],
        ),
    ] {
        let stderr = refused_gateway(&store, &env).await;
        for w in wants {
            assert!(stderr.contains(w), "{env:?}: {w:?} not in {stderr}");
        }
    }
}

/// Starts `tierkv gateway` with `env` and expects it to exit with an error: its stderr.
async fn refused_gateway(store: &str, env: &[(&str, String)]) -> String {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(["gateway", "--listen", "127.0.0.1:0", "--store-url", store])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("TIERKV_GATEWAY__CLUSTER__LEADER_WAIT", "100ms")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tierkv");
    let status = cluster::exit_within(&mut child, Duration::from_secs(30))
        .await
        .expect("tierkv did not exit");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "{env:?}: exited with {status}");
    stderr
}

/// `tierkv serve` (the same listener set-up as `dev`'s public API) over TLS: a client that
/// trusts the CA writes and reads; the printed URL is `https://`.
#[tokio::test]
async fn serve_answers_over_tls() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    pki.issue("serve");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(["serve", "--listen", "127.0.0.1:0", "--shards", "4"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("TIERKV_TLS__CERT_FILE", pki.path("serve.pem"))
        .env("TIERKV_TLS__KEY_FILE", pki.path("serve.key"))
        .env("TIERKV_CACHE__DISK_BYTES", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tierkv serve");
    let url = cluster::url_of(&mut child);
    let _killed = KillOnDrop(child);
    {
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        let api = api_client(&pki.ca, cluster::dev_key_headers(&dir.path().join("data")));
        let put = api
            .put(format!("{url}/v1/kv/k"))
            .body("over tls")
            .send()
            .await
            .expect("put");
        assert!(put.status().is_success(), "{}", put.status());
        let got = api.get(format!("{url}/v1/kv/k")).send().await.expect("get");
        assert_eq!(got.text().await.expect("body"), "over tls");
        assert!(
            reqwest::Client::new()
                .get(format!(
                    "{}/health/live",
                    url.replace("https://", "http://")
                ))
                .send()
                .await
                .is_err(),
            "no plain HTTP on a TLS listener"
        );
    }
}

/// Kills and reaps the process when dropped (also when an assertion fails).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
