//! `tierkv serve` as a process on 127.0.0.1: one process, every shard with one replica,
//! writes through the replica driver. It answers the requests that arrive while its replicas
//! take over (no error), keeps what it acknowledged across SIGTERM and `kill -9`, and is
//! refused on a store that holds a cluster's shard map.

mod cluster;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Serve {
    child: Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_args(data: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = ["serve", "--listen", "127.0.0.1:0", "--shards", "8"]
        .iter()
        .map(Into::into)
        .collect();
    args.push("--data-dir".into());
    args.push(data.into());
    args
}

/// Starts `tierkv serve` on `data` and returns once it printed its URL (its replicas may
/// still be taking over).
fn start(data: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(serve_args(data))
        .env("TIERKV_ENGINE__WRITE_BUFFER_BYTES", "262144")
        .env("TIERKV_CACHE__DISK_BYTES", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tierkv serve");
    let url = cluster::url_of(&mut child);
    Serve { child, url }
}

/// A client that sends the admin key `tierkv dev`/`serve` keeps in `data` (written before
/// the process prints its URL).
fn client(data: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(cluster::dev_key_headers(data))
        .timeout(Duration::from_secs(20))
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

async fn put(c: &reqwest::Client, url: &str, key: &str, value: &str) -> u16 {
    c.put(format!("{url}/v1/kv/{key}"))
        .body(value.to_owned())
        .send()
        .await
        .expect("put")
        .status()
        .as_u16()
}

async fn sigterm_and_wait(s: &mut Serve) -> std::process::ExitStatus {
    let pid = s.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    cluster::exit_within(&mut s.child, Duration::from_secs(60))
        .await
        .expect("serve did not exit after SIGTERM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_at_once_and_keeps_data_across_sigterm_and_kill9() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The first requests go out as soon as the address is printed: they are answered, not
    // refused while the replicas take over.
    let mut s = start(dir.path());
    let c = client(dir.path());
    assert_eq!(put(&c, &s.url, "first", "1").await, 201);
    assert_eq!(get(&c, &s.url, "first").await, (200, "1".to_owned()));
    for i in 0..200 {
        let v = format!("value {i} {}", "x".repeat(i % 100));
        assert!(matches!(
            put(&c, &s.url, &format!("k{i}"), &v).await,
            200 | 201
        ));
    }
    let status = sigterm_and_wait(&mut s).await;
    assert!(status.success(), "exit status {status}");
    // Restarted: the first read after the address line already sees everything.
    let s = start(dir.path());
    assert_eq!(get(&c, &s.url, "k7").await.0, 200);
    for i in 0..200 {
        let want = format!("value {i} {}", "x".repeat(i % 100));
        assert_eq!(get(&c, &s.url, &format!("k{i}")).await, (200, want), "k{i}");
    }
    assert_eq!(put(&c, &s.url, "after", "kill").await, 201);
    drop(s); // kill -9: the last write is only in the WAL
    let s = start(dir.path());
    assert_eq!(get(&c, &s.url, "after").await, (200, "kill".to_owned()));
    // Ready once every shard's replica leads: within moments, not a lease.
    let started = std::time::Instant::now();
    loop {
        let ready = c
            .get(format!("{}/health/ready", s.url))
            .send()
            .await
            .expect("ready");
        if ready.status().as_u16() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not ready: {}",
            ready.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // One process: a data directory of its own, with the node's identity and WAL.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("NODE_ID")).expect("NODE_ID"),
        "node 1\n"
    );
    assert!(dir.path().join("wal").is_dir());
}

/// Runs `tierkv` with `args`, expects it to exit with an error within 30 s, and returns its
/// stderr.
async fn refused_start(args: &[std::ffi::OsString]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(args)
        .env("RUST_LOG", "error")
        .env("TIERKV_CACHE__DISK_BYTES", "0")
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
    assert!(!status.success(), "tierkv {args:?} exited with {status}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_store_of_a_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A three-node map in the store (as `tierkv dev` writes it).
    let mut dev = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args([
            "dev",
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "8",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("TIERKV_CACHE__DISK_BYTES", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn tierkv dev");
    let _ = cluster::url_of(&mut dev);
    let _ = dev.kill();
    let _ = dev.wait();
    let store = format!("file://{}", dir.path().join("objects").display());
    let serve_dir = dir.path().join("serve");
    let mut args = serve_args(&serve_dir);
    args.push("--store-url".into());
    args.push(store.into());
    let stderr = refused_start(&args).await;
    assert!(
        stderr.contains("shard map of a cluster (3 members, 3 replicas per shard)"),
        "{stderr}"
    );
    assert!(
        !serve_dir.join("NODE_ID").exists(),
        "the refused start claimed an identity"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_cannot_be_turned_off_beyond_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A documentation address: refused before anything binds.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(["serve", "--listen", "192.0.2.1:8080", "--data-dir"])
        .arg(dir.path())
        .env("TIERKV_GATEWAY__AUTH__ENABLED", "false")
        .env("TIERKV_CACHE__DISK_BYTES", "0")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tierkv serve");
    let status = cluster::exit_within(&mut child, Duration::from_secs(30))
        .await
        .expect("tierkv serve exits");
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(
        stderr.contains("gateway.auth.enabled = false is only allowed on a loopback address"),
        "{stderr}"
    );
}
