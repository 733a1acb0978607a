//! Secrets never reach logs, error messages or `tierkv config` (issue 21, design note 0012):
//! a `tierkv serve` process logging at `debug` is given the cluster secret, makes its admin
//! key, and answers requests with that key, a key made through the API, a revoked key, an
//! unknown key and the cluster secret; none of them appears in its output afterwards (but
//! for the one `admin key:` line that hands the development key to its operator), nor in
//! any answer's body.

mod cluster;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const SECRET: &str = "s3cr3t-cluster-credential-8f2a61";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The URL the process printed to `stdout_path` (polled until it appears).
fn printed_url(stdout_path: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = std::fs::read_to_string(stdout_path).unwrap_or_default();
        if let Some(url) = out.lines().find_map(|l| l.split("listening on ").nth(1)) {
            return url.trim().to_owned();
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "tierkv serve exited: {out}"
        );
        assert!(Instant::now() < deadline, "no URL printed: {out}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_or_an_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "4",
            "--data-dir",
        ])
        .arg(&data)
        .env("TIERKV_CLUSTER__SECRET", SECRET)
        .env("TIERKV_CACHE__DISK_BYTES", "0")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(File::create(&out_path).expect("stdout file")))
        .stderr(Stdio::from(File::create(&err_path).expect("stderr file")))
        .spawn()
        .expect("spawn tierkv serve");
    let mut serve = Killed(child);
    let url = printed_url(&out_path, &mut serve.0);
    let admin = std::fs::read_to_string(data.join("admin.key")).expect("admin.key");
    let admin = admin.trim().to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let bodies = std::cell::RefCell::new(String::new());
    let call =
        async |method: reqwest::Method, path: &str, key: &str, body: Option<serde_json::Value>| {
            let mut req = http
                .request(method, format!("{url}{path}"))
                .bearer_auth(key);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.expect("answer");
            let status = r.status().as_u16();
            let text = r.text().await.expect("body");
            bodies.borrow_mut().push_str(&text);
            bodies.borrow_mut().push('\n');
            (status, text)
        };
    // Wait until the replicas took over: a write with the admin key succeeds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, _) = call(reqwest::Method::PUT, "/v1/kv/a", &admin, None).await;
        if st == 201 || st == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no write accepted: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, made) = call(
        reqwest::Method::POST,
        "/admin/v1/keys",
        &admin,
        Some(json!({"name": "svc", "role": "write", "prefixes": ["t/"]})),
    )
    .await;
    assert_eq!(st, 201, "{made}");
    let made: serde_json::Value = serde_json::from_str(&made).expect("json");
    let (id, key) = (
        made["id"].as_str().expect("id").to_owned(),
        made["key"].as_str().expect("key").to_owned(),
    );
    assert_eq!(
        call(reqwest::Method::PUT, "/v1/kv/t/1", &key, None).await.0,
        201
    );
    assert_eq!(
        call(reqwest::Method::PUT, "/v1/kv/u/1", &key, None).await.0,
        403
    );
    assert_eq!(
        call(reqwest::Method::GET, "/admin/v1/keys", &key, None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(reqwest::Method::GET, "/v1/kv/a", SECRET, None).await.0,
        200
    );
    let unknown = "tkv_0123456789abcdef_c2VjcmV0LXRoYXQtZG9lcy1ub3QtZXhpc3QtYXQtYWxs";
    assert_eq!(
        call(reqwest::Method::GET, "/v1/kv/a", unknown, None)
            .await
            .0,
        401
    );
    let wrong_secret = format!("{SECRET}-but-wrong");
    assert_eq!(
        call(reqwest::Method::GET, "/metrics", &wrong_secret, None)
            .await
            .0,
        401
    );
    let (st, _) = call(
        reqwest::Method::DELETE,
        &format!("/admin/v1/keys/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(
        call(reqwest::Method::GET, "/v1/kv/t/1", &key, None).await.0,
        401
    );
    drop(serve);
    // The created key is in the one answer that hands it over; nowhere else.
    let bodies = bodies
        .borrow()
        .replacen(&key, "<the created key, shown once>", 1);

    let stdout = std::fs::read_to_string(&out_path).expect("stdout");
    let stderr = std::fs::read_to_string(&err_path).expect("stderr");
    assert!(
        stderr.lines().count() + stdout.lines().count() > 10,
        "debug logging produced output to search: {stdout}{stderr}"
    );
    // The development key is handed over once, on its own line; nowhere else.
    let handed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("admin key:"))
        .collect();
    assert_eq!(handed.len(), 1, "{stdout}");
    let logs: String = stdout
        .lines()
        .filter(|l| !l.starts_with("admin key:"))
        .chain(stderr.lines())
        .collect::<Vec<_>>()
        .join("\n");
    // A key's secret part (everything after `tkv_<id>_`; it may itself hold `_`) is what
    // must never leak.
    let secret_part = |k: &str| {
        let s = k.splitn(3, '_').nth(2).expect("secret part").to_owned();
        assert!(
            s.len() >= 32,
            "{k}: a secret part this short proves nothing"
        );
        s
    };
    for (what, s) in [
        ("the cluster secret", SECRET.to_owned()),
        ("a wrong cluster secret", wrong_secret.clone()),
        ("the admin key", secret_part(&admin)),
        ("the created key", secret_part(&key)),
        ("an unknown key", secret_part(unknown)),
    ] {
        assert!(!logs.contains(&s), "{what} appears in the process output");
        assert!(!bodies.contains(&s), "{what} appears in an answer");
    }
    // `tierkv config` prints the configuration with the secret redacted.
    let cfg = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(["config"])
        .env("TIERKV_CLUSTER__SECRET", SECRET)
        .output()
        .expect("tierkv config");
    assert!(cfg.status.success());
    let printed = String::from_utf8_lossy(&cfg.stdout);
    assert!(printed.contains("secret"), "{printed}");
    assert!(
        !printed.contains(SECRET),
        "tierkv config shows the secret: {printed}"
    );
}
