//! The `tierkv` binary as a process on 127.0.0.1: durability under `kill -9` while clients
//! write over HTTP, graceful shutdown on SIGTERM, and an idempotent retry across a restart.

mod cluster;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on a free port with a small memtable (so flushes run during the test)
/// and returns once it prints its URL.
fn start(data: &Path) -> Server {
    start_with(data, &[])
}

/// `words` as process arguments.
fn os_args(words: &[&str]) -> Vec<std::ffi::OsString> {
    words.iter().map(Into::into).collect()
}

/// `tierkv dev` on a free port with 8 shards and its data in `data`.
fn dev_args(data: &Path) -> Vec<std::ffi::OsString> {
    let mut args = os_args(&[
        "dev",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "8",
        "--data-dir",
    ]);
    args.push(data.into());
    args
}

fn start_with(data: &Path, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .envs(env.iter().copied())
        .args(dev_args(data))
        .env("TIERKV_ENGINE__WRITE_BUFFER_BYTES", "262144")
        .env("TIERKV_CACHE__DISK_BYTES", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tierkv");
    let url = cluster::url_of(&mut child);
    Server { child, url }
}

/// PUTs `body` at `key` and expects success.
async fn put_ok(c: &reqwest::Client, url: &str, key: &str, body: &'static str) {
    let r = c
        .put(format!("{url}/v1/kv/{key}"))
        .body(body)
        .send()
        .await
        .expect("put");
    assert!(r.status().is_success(), "PUT {key}: {}", r.status());
}

/// A client that sends the admin key `tierkv dev`/`serve` keeps in `data` (written before
/// the process prints its URL).
fn client(data: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(cluster::dev_key_headers(data))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn get(c: &reqwest::Client, url: &str, key: &str) -> (u16, String) {
    let r = c
        .get(format!("{url}/v1/kv/{key}"))
        .send()
        .await
        .expect("get");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_under_http_write_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    for round in 0..5 {
        let server = start(dir.path());
        let c = client(dir.path());
        // Everything acknowledged in earlier rounds is still there.
        for (k, v) in acked.lock().await.iter() {
            assert_eq!(
                get(&c, &server.url, k).await,
                (200, v.clone()),
                "key {k} after restart {round}"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let kill_at = 200 + rand::random_range(0..600usize);
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for w in 0..16 {
            let (c, url, acked, count) =
                (c.clone(), server.url.clone(), acked.clone(), count.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..100_000 {
                    if Instant::now() > deadline {
                        return;
                    }
                    let key = format!("r{round}-w{w}-{i}");
                    let value = format!("value of {key} {}", "z".repeat(i % 300));
                    let Ok(r) = c
                        .put(format!("{url}/v1/kv/{key}"))
                        .body(value.clone())
                        .send()
                        .await
                    else {
                        return; // the server was killed
                    };
                    if r.status().is_success() {
                        acked.lock().await.insert(key, value);
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    } else {
                        panic!("PUT {key}: {}", r.status());
                    }
                }
            }));
        }
        while count.load(std::sync::atomic::Ordering::SeqCst) < kill_at && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(server); // SIGKILL mid-load
        for t in tasks {
            t.await.expect("writer task");
        }
    }
    let server = start(dir.path());
    let c = client(dir.path());
    let acked = acked.lock().await;
    assert!(
        acked.len() > 600,
        "only {} writes acknowledged",
        acked.len()
    );
    for (k, v) in acked.iter() {
        assert_eq!(
            get(&c, &server.url, k).await,
            (200, v.clone()),
            "key {k} after the last kill"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_flushes_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path());
    let c = client(dir.path());
    for i in 0..50 {
        let r = c
            .put(format!("{}/v1/kv/t{i}", server.url))
            .body(format!("v{i}"))
            .send()
            .await
            .expect("put");
        assert!(r.status().is_success());
    }
    let status = sigterm_and_wait(&mut server).await;
    assert!(status.success(), "exit status {status}");
    // The memtables were flushed: segments exist in object storage.
    let segs = walkdir(&dir.path().join("objects"))
        .into_iter()
        .filter(|p| p.ends_with(".seg"))
        .count();
    assert!(segs > 0, "no segment was flushed on shutdown");
    let server = start(dir.path());
    assert_eq!(get(&c, &server.url, "t7").await, (200, "v7".to_owned()));
}

/// Sends SIGTERM and polls (with a deadline) until the server exits.
async fn sigterm_and_wait(server: &mut Server) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    cluster::exit_within(&mut server.child, Duration::from_secs(60))
        .await
        .expect("server did not exit after SIGTERM")
}

fn walkdir(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walkdir(&path));
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retry_after_kill9_restart_is_not_applied_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path());
    let c = client(dir.path());
    let put = |url: &str, body: &str| {
        c.put(format!("{url}/v1/kv/counter"))
            .header("Idempotency-Key", "retry-me-1")
            .body(body.to_owned())
            .send()
    };
    let first = put(&server.url, "one").await.expect("put");
    assert!(first.status().is_success());
    let etag = first.headers().get("etag").cloned().expect("etag");
    // A different write in between moves the key on.
    let r = c
        .put(format!("{}/v1/kv/counter", server.url))
        .body("two")
        .send()
        .await
        .expect("put");
    assert!(r.status().is_success());
    drop(server); // kill -9
    let server = start(dir.path());
    let again = put(&server.url, "one").await.expect("retry");
    assert!(
        again.status().is_success(),
        "retry status {}",
        again.status()
    );
    assert_eq!(
        again.headers().get("etag"),
        Some(&etag),
        "the retry replays the first result"
    );
    assert_eq!(
        get(&c, &server.url, "counter").await,
        (200, "two".to_owned()),
        "the retry was not applied again"
    );
    let reused = c
        .put(format!("{}/v1/kv/counter", server.url))
        .header("Idempotency-Key", "retry-me-1")
        .body("different")
        .send()
        .await
        .expect("put");
    assert_eq!(reused.status().as_u16(), 422);
}

/// A fake OTLP/HTTP collector: answers 200 to every request and counts `POST /v1/traces`
/// requests with a protobuf body.
async fn fake_collector() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
    let exports = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = exports.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_lowercase();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    if text.starts_with("post /v1/traces")
                        && text.contains("application/x-protobuf")
                        && len > 0
                    {
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    buf.drain(..end + 4 + len);
                }
            });
        }
    });
    (url, exports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_are_exported_over_otlp_when_an_endpoint_is_configured() {
    let (endpoint, exports) = fake_collector().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start_with(
        dir.path(),
        &[
            ("TIERKV_TELEMETRY__OTLP_ENDPOINT", &endpoint),
            ("RUST_LOG", "info"),
        ],
    );
    let c = client(dir.path());
    for i in 0..5 {
        let r = c
            .put(format!("{}/v1/kv/o{i}", server.url))
            .body("x")
            .send()
            .await
            .expect("put");
        assert!(r.status().is_success());
    }
    // Shutdown flushes the batch exporter.
    sigterm_and_wait(&mut server).await;
    assert!(
        exports.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "no span batch reached the collector"
    );
}

/// The shard map versions in the `file://` object store under `data`, sorted.
fn shard_maps(data: &Path) -> Vec<String> {
    let mut maps = walkdir(&data.join("objects/cluster/shardmap"));
    maps.sort();
    maps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_data_dir_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path());
    let c = client(dir.path());
    put_ok(&c, &server.url, "mine", "first").await;
    let maps_before = shard_maps(dir.path());
    assert!(!maps_before.is_empty(), "no shard map in {:?}", dir.path());
    let stderr = cluster::refused_start(&dev_args(dir.path())).await;
    let holder = format!("pid {}", server.child.id());
    assert!(
        stderr.contains("in use by another process") && stderr.contains(&holder),
        "stderr does not name the lock and its holder ({holder}): {stderr}"
    );
    // No shard map with the second process's addresses was published, and the first
    // process serves as before.
    assert_eq!(shard_maps(dir.path()), maps_before);
    assert_eq!(
        get(&c, &server.url, "mine").await,
        (200, "first".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_on_another_nodes_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path());
    let status = sigterm_and_wait(&mut server).await;
    assert!(status.success(), "exit status {status}");
    let node1 = dir.path().join("node-1");
    assert_eq!(
        std::fs::read_to_string(node1.join("NODE_ID")).expect("NODE_ID of node 1"),
        "node 1\n"
    );
    let maps_before = shard_maps(dir.path());
    let store = format!("file://{}", dir.path().join("objects").display());
    // A node refuses port 0 (its address goes into the shard map): a free fixed one.
    let listen = format!("127.0.0.1:{}", cluster::free_port());
    let mut node_args = os_args(&[
        "node",
        "--node-id",
        "2",
        "--listen",
        &listen,
        "--shards",
        "8",
        "--store-url",
        &store,
        "--data-dir",
    ]);
    node_args.push(node1.clone().into());
    let stderr = cluster::refused_start(&node_args).await;
    assert!(
        stderr.contains("belongs to node 1, not node 2"),
        "stderr does not say whose directory it is: {stderr}"
    );
    // Node 2's address was not published, and node 1's directory still starts as node 1.
    assert_eq!(shard_maps(dir.path()), maps_before);
    let server = start(dir.path());
    assert_eq!(
        get(&client(dir.path()), &server.url, "nothing-here")
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_empty_disk_rejoins_with_floors_and_serves_the_old_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path());
    let c = client(dir.path());
    put_ok(&c, &server.url, "kept", "v").await;
    let status = sigterm_and_wait(&mut server).await;
    assert!(status.success(), "exit status {status}");
    // Node 1's disk is lost: it starts again without help, its replicas rejoining from the
    // floors it wrote before recording its identity.
    std::fs::remove_dir_all(dir.path().join("node-1")).expect("remove node-1");
    let server = start(dir.path());
    let floors = std::fs::read_to_string(dir.path().join("node-1/REJOIN")).expect("REJOIN");
    assert!(floors.starts_with("tierkv rejoin 1\n"), "{floors:?}");
    assert!(floors.lines().count() > 1, "no shard floors: {floors:?}");
    assert_eq!(get(&c, &server.url, "kept").await, (200, "v".to_owned()));
    put_ok(&c, &server.url, "new", "w").await;
}

/// `tierkv dev` and its printed admin key's line (the line after its URL, read from its
/// standard output).
fn start_dev_with_key(data: &Path) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(dev_args(data))
        .env("TIERKV_CACHE__DISK_BYTES", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tierkv");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(key) = line.strip_prefix("admin key: ") {
                let _ = tx.send(key.trim().to_owned());
            }
        }
    });
    let key = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("tierkv dev printed a line starting `admin key:`");
    (child, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_prints_the_same_admin_key_at_every_start_and_keeps_it_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, first) = start_dev_with_key(dir.path());
    assert!(first.starts_with("tkv_"), "{first}");
    let file = dir.path().join("admin.key");
    let mode = std::fs::metadata(&file)
        .expect("admin.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    assert_eq!(std::fs::read_to_string(&file).expect("read").trim(), first);
    let _ = child.kill();
    let _ = child.wait();
    let (mut child, second) = start_dev_with_key(dir.path());
    assert_eq!(first, second, "later starts print the same key");
    let _ = child.kill();
    let _ = child.wait();
}
