//! Edge behaviour: routing errors, health, metrics, request ids, timeouts, load shedding,
//! panics, storage faults, and a real listener with graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::Method;
use tierkv_engine::options::EngineOptions;
use tierkv_engine::types::ShardId;
use tierkv_gateway::GatewayOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::{Env, eventually, req};

#[tokio::test]
async fn unknown_route_and_wrong_method_are_problems() {
    let env = Env::new().await;
    env.get("/nope").await.problem(404, "not_found");
    env.get("/v2/kv/a").await.problem(404, "not_found");
    let r = env
        .send(
            req(Method::POST, "/v1/kv/a")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    r.problem(405, "method_not_allowed");
    assert!(r.header("allow").is_some());
    let r = env
        .send(
            req(Method::DELETE, "/v1/batch")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    r.problem(405, "method_not_allowed");
}

#[tokio::test]
async fn health_live_and_ready() {
    let env = Env::new().await;
    assert_eq!(env.get("/health/live").await.status, 200);
    assert_eq!(env.get("/health/ready").await.json()["status"], "ready");
    env.faulty.set_down(true);
    let r = env.get("/health/ready").await;
    r.problem(503, "storage_unavailable");
    assert!(r.header("retry-after").is_some());
    assert_eq!(env.get("/health/live").await.status, 200);
    env.faulty.set_down(false);
    assert_eq!(env.get("/health/ready").await.status, 200);
}

/// The value of the sample `name` (no labels) in the text of `/metrics`.
fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_expose_http_and_engine_figures() {
    let env = Env::new().await;
    // Starting to lead wrote each shard's promise and barrier: the PUT is one append more.
    let before = env.get("/metrics").await;
    let before = String::from_utf8(before.body.to_vec()).expect("utf8");
    let appends = sample(&before, "tierkv_wal_appends_total").expect("wal appends");
    env.put("/v1/kv/m", "x").await;
    env.get("/v1/kv/m").await;
    env.get("/v1/kv/absent").await;
    let r = env.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .expect("ct")
            .starts_with("text/plain")
    );
    let text = String::from_utf8(r.body.to_vec()).expect("utf8");
    let wal_appends = format!("tierkv_wal_appends_total {}", appends + 1);
    for needle in [
        "tierkv_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",status=\"201\"} 1",
        "tierkv_http_requests_total{route=\"/v1/kv/{key}\",method=\"GET\",status=\"404\"} 1",
        "tierkv_http_request_duration_seconds_bucket{route=\"/v1/kv/{key}\",method=\"GET\",le=\"+Inf\"} 2",
        "tierkv_http_requests_in_flight 1",
        "tierkv_shards 4",
        wal_appends.as_str(),
        "tierkv_wal_fsync_duration_seconds_count",
        "tierkv_object_store_request_duration_seconds_bucket",
        "tierkv_block_cache_hits_total",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn request_id_is_generated_or_echoed() {
    let env = Env::new().await;
    let r = env.get("/health/live").await;
    assert!(!r.header("x-request-id").expect("generated").is_empty());
    let r = env
        .send(
            req(Method::GET, "/health/live")
                .header("x-request-id", "abc-123")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_and_excess_load_is_shed() {
    let opts = GatewayOptions {
        request_timeout: Duration::from_millis(300),
        concurrency_limit: 1,
        ..GatewayOptions::default()
    };
    let env = Arc::new(Env::with(opts, EngineOptions::default(), 1 << 20).await);
    let slow = {
        let env = Arc::clone(&env);
        tokio::spawn(async move { env.get("/v1/kv/gated").await })
    };
    let backend = Arc::clone(&env.backend);
    eventually(5, "the slow request to reach the backend", || {
        backend.entered.load(Ordering::SeqCst) == 1
    })
    .await;
    let shed = env.get("/health/live").await;
    shed.problem(503, "overloaded");
    assert_eq!(shed.header("retry-after"), Some("1"));
    slow.await.expect("task").problem(504, "timeout");
    assert_eq!(env.get("/health/live").await.status, 200);
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem() {
    let env = Env::new().await;
    let p = env
        .get("/v1/kv/please-panic")
        .await
        .problem(500, "internal");
    assert!(!p.detail.contains("panic"), "no internals in 5xx: {p:?}");
    assert_eq!(env.get("/health/live").await.status, 200);
}

#[tokio::test]
async fn object_store_outage_is_storage_unavailable_and_backpressure() {
    let engine = EngineOptions {
        write_buffer_bytes: 4096,
        max_unflushed_bytes: 32 << 10,
        ..EngineOptions::default()
    };
    let env = Env::with(GatewayOptions::default(), engine, 0).await;
    for i in 0..20 {
        env.put(&format!("/v1/kv/seg-{i}"), "segment data").await;
    }
    for s in 0..crate::env::SHARDS {
        env.node
            .shard(ShardId(s))
            .expect("shard")
            .shard()
            .flush()
            .await
            .expect("flush");
    }
    env.faulty.set_down(true);
    // Reads that need a segment block fail: no cache (capacity 0).
    let mut saw_unavailable = false;
    for i in 0..20 {
        let r = env.get(&format!("/v1/kv/seg-{i}")).await;
        if r.status == 503 {
            let p = r.problem(503, "storage_unavailable");
            assert!(!p.detail.contains("faulty"), "no internals: {p:?}");
            assert!(r.header("retry-after").is_some());
            saw_unavailable = true;
            break;
        }
    }
    assert!(saw_unavailable, "no read reached the object store");
    // Writes pile up in memory until the unflushed bound: backpressure.
    let value = vec![b'x'; 2048];
    let mut saw_backpressure = false;
    for i in 0..200 {
        let r = env.put(&format!("/v1/kv/bp-{i}"), value.clone()).await;
        if r.status == 503 {
            r.problem(503, "backpressure");
            assert!(r.header("retry-after").is_some());
            saw_backpressure = true;
            break;
        }
    }
    assert!(saw_backpressure, "writes never hit backpressure");
    env.faulty.set_down(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_a_real_listener_with_graceful_shutdown() {
    let env = Env::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let key = env.key.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tierkv_gateway::serve(
        listener,
        env.state.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    async fn http(addr: std::net::SocketAddr, raw: String) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(raw.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }
    let put = http(
        addr,
        format!("PUT /v1/kv/net HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
    )
    .await;
    assert!(put.starts_with("HTTP/1.1 201"), "{put}");
    let get = http(
        addr,
        format!("GET /v1/kv/net HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(
        get.starts_with("HTTP/1.1 200") && get.ends_with("hello"),
        "{get}"
    );
    // An in-flight request finishes after shutdown was asked for.
    let in_flight = tokio::spawn(http(
        addr,
        format!(
            "GET /v1/kv/gated HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        ),
    ));
    let backend = Arc::clone(&env.backend);
    eventually(5, "the request to be in flight", || {
        backend.entered.load(Ordering::SeqCst) == 1
    })
    .await;
    stop_tx.send(()).expect("stop");
    env.backend.release.add_permits(1);
    let answer = in_flight.await.expect("task");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .expect("task")
        .expect("serve");
}
