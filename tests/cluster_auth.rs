//! API keys across processes (design note 0012): a key made through one gateway works on
//! another; revoked through one gateway (or with `tierkv admin keys revoke`), it is refused
//! by the other within the documented delay; prefix and role limits on a real gateway; real
//! nodes refuse RPC, `/status` and `/metrics` without the cluster secret or with a wrong
//! one.

mod cluster;

use std::time::{Duration, Instant};

use cluster::{Cluster, Opts};
use serde_json::json;
use tierkv_node::wire::proto::{self, Request};

/// The revocation delay the note documents (`poll_interval` 1 s plus one object-store read),
/// with room for a loaded test machine.
const REVOCATION_BOUND: Duration = Duration::from_secs(5);

async fn status_with(c: &Cluster, url: &str, method: reqwest::Method, key: &str) -> u16 {
    c.http
        .request(method, url)
        .bearer_auth(key)
        .body(if url.contains("/v1/kv/") { "v" } else { "" })
        .send()
        .await
        .expect("gateway answers")
        .status()
        .as_u16()
}

/// Polls `url` with `key` until it answers `want`; how long that took.
async fn until_status(c: &Cluster, url: &str, key: &str, want: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = status_with(c, url, reqwest::Method::GET, key).await;
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{url} still answers {got}, not {want}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_reach_every_gateway_and_revocation_too() {
    let c = Cluster::start(Opts {
        gateways: 2,
        ..Opts::default()
    })
    .await;
    let (g0, g1) = (c.gateway_url(0), c.gateway_url(1));
    // Made through gateway 0.
    let r = c
        .http
        .post(format!("{g0}/admin/v1/keys"))
        .json(&json!({"name": "svc", "role": "write", "prefixes": ["tenant/"]}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let made: serde_json::Value = r.json().await.expect("json");
    let (id, key) = (
        made["id"].as_str().expect("id").to_owned(),
        made["key"].as_str().expect("key").to_owned(),
    );
    // Usable on gateway 0 at once, on gateway 1 after its next poll.
    let inside = |g: &str| format!("{g}/v1/kv/tenant/a");
    assert_eq!(
        status_with(&c, &inside(&g0), reqwest::Method::PUT, &key).await,
        201
    );
    until_status(&c, &inside(&g1), &key, 200, REVOCATION_BOUND).await;
    // Its limits hold on a real gateway: outside its prefix, the admin API, /metrics.
    for (m, path) in [
        (reqwest::Method::PUT, "/v1/kv/other/a"),
        (reqwest::Method::GET, "/v1/kv/other/a"),
        (reqwest::Method::GET, "/admin/v1/keys"),
        (reqwest::Method::GET, "/metrics"),
    ] {
        assert_eq!(
            status_with(&c, &format!("{g1}{path}"), m.clone(), &key).await,
            403,
            "{m} {path}"
        );
    }
    // Revoked through gateway 0: refused there at once, by gateway 1 within the bound.
    let r = c
        .http
        .delete(format!("{g0}/admin/v1/keys/{id}"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 204);
    assert_eq!(
        status_with(&c, &inside(&g0), reqwest::Method::GET, &key).await,
        401
    );
    let took = until_status(&c, &inside(&g1), &key, 401, REVOCATION_BOUND).await;
    eprintln!("revocation reached the second gateway after {took:?}");
    // The failures are counted.
    let text = c.metrics_text(&g1).await.expect("metrics");
    assert!(
        text.lines().any(|l| l
            .starts_with("tierkv_gateway_auth_failures_total{reason=\"forbidden\"}")
            && !l.ends_with(" 0")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_keys_in_object_storage() {
    let c = Cluster::start(Opts::default()).await;
    let key = c.create_key(&["--role", "read", "--name", "reader"]);
    assert!(key.starts_with("tkv_"), "{key}");
    let id = key.split('_').nth(1).expect("id").to_owned();
    let listed = c.admin_keys(&["list"]);
    assert!(
        listed.contains(&id) && listed.contains("reader"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "list never shows a secret");
    let url = format!("{}/v1/kv/some-key", c.url);
    until_status(&c, &url, &key, 404, REVOCATION_BOUND).await;
    assert_eq!(
        status_with(&c, &url, reqwest::Method::PUT, &key).await,
        403,
        "read keys do not write"
    );
    c.admin_keys(&["revoke", &id]);
    until_status(&c, &url, &key, 401, REVOCATION_BOUND).await;
    // No request without credentials gets through.
    let r = reqwest::Client::new().get(&url).send().await.expect("send");
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_refuse_rpc_status_and_metrics_without_the_secret() {
    let c = Cluster::start(Opts::default()).await;
    let plain = reqwest::Client::new();
    let node = c.node_url(1);
    let body = proto::encode_request(&Request::Status);
    for (path, post) in [
        ("/rpc/v1/kv", true),
        ("/rpc/v1/kv/batch", true),
        ("/rpc/v1/replica", true),
        ("/status", false),
        ("/metrics", false),
    ] {
        let url = format!("{node}{path}");
        for secret in [None, Some("wrong-secret"), Some(c.api_key.as_str())] {
            let mut r = if post {
                plain.post(&url).body(body.clone())
            } else {
                plain.get(&url)
            };
            if let Some(s) = secret {
                r = r.bearer_auth(s);
            }
            let status = r.send().await.expect("node answers").status();
            assert_eq!(status, 401, "{path} with {secret:?}");
        }
    }
    // With the secret they answer; health stays open.
    assert!(c.status(1).await.is_some());
    assert!(c.metric(1, "tierkv_up").await.is_some() || c.metrics_text(&node).await.is_some());
    assert!(c.rpc(1, &Request::Status).await.is_ok());
    let r = plain
        .get(format!("{node}/health/live"))
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), 200);
}
