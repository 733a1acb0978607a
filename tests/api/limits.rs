//! Per-key rate limits (429 `rate_limited` with `Retry-After`, other keys unaffected, batch
//! items limited one by one, counted on `/metrics`) and the hot-key admin endpoint.

use tierkv_engine::options::EngineOptions;
use tierkv_gateway::{GatewayOptions, KeyLimitOptions};

use crate::env::Env;

/// One token a second, three at once: a hammered key is refused after three requests (each
/// direction apart) and told to come back in a second; other keys go on.
fn strict() -> GatewayOptions {
    GatewayOptions {
        limits: KeyLimitOptions {
            reads_per_sec: 1,
            read_burst: 3,
            writes_per_sec: 1,
            write_burst: 3,
            ..KeyLimitOptions::default()
        },
        ..GatewayOptions::default()
    }
}

#[tokio::test]
async fn a_hammered_key_gets_429_and_other_keys_do_not() {
    let env = Env::with(strict(), EngineOptions::default(), 1 << 20).await;
    for i in 0..3 {
        assert_eq!(
            env.put("/v1/kv/hot", format!("v{i}")).await.status,
            200 + u16::from(i == 0)
        );
    }
    let refused = env.put("/v1/kv/hot", "v3").await;
    let p = refused.problem(429, "rate_limited");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(p.detail.contains("writes"), "{p:?}");
    assert_eq!(env.delete("/v1/kv/hot").await.status, 429);
    // Another key, and reads of the same key, have buckets of their own.
    assert_eq!(env.put("/v1/kv/cold", "x").await.status, 201);
    for _ in 0..3 {
        assert_eq!(env.get("/v1/kv/hot").await.status, 200);
    }
    let r = env.get("/v1/kv/hot").await;
    r.problem(429, "rate_limited");
    assert_eq!(r.header("retry-after"), Some("1"));
    // A batch item on the hot key is refused alone.
    let batch = env
        .post_json(
            "/v1/batch",
            &serde_json::json!({"items": [
                {"op": "put", "key": "hot", "value": "b"},
                {"op": "put", "key": "cold2", "value": "b"},
            ]}),
        )
        .await;
    assert_eq!(batch.status, 200);
    let items = batch.json()["items"].clone();
    assert_eq!(items[0]["status"], 429);
    assert_eq!(items[0]["error"]["code"], "rate_limited");
    assert_eq!(items[1]["status"], 201);
    let metrics = String::from_utf8(env.get("/metrics").await.body.to_vec()).expect("utf8");
    for line in [
        "tierkv_gateway_throttled_total{reason=\"key_write_rate\"} 3",
        "tierkv_gateway_throttled_total{reason=\"key_read_rate\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn the_admin_endpoint_lists_hot_keys_and_cache_ratios() {
    let env = Env::new().await;
    for i in 0..5 {
        env.put("/v1/kv/often", format!("{i}")).await;
    }
    env.put("/v1/kv/once", "1").await;
    for _ in 0..4 {
        assert_eq!(env.get("/v1/kv/often").await.status, 200);
    }
    // Only for operators: the admin API's credential is required.
    env.send_as_is(
        crate::env::req(axum::http::Method::GET, "/admin/v1/hot-keys")
            .body(axum::body::Body::empty())
            .expect("req"),
    )
    .await
    .problem(401, "unauthorized");
    let r = env.admin_get("/admin/v1/hot-keys?limit=1").await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["available"], true);
    assert_eq!(j["window_secs"], 60);
    assert_eq!(j["writes"].as_array().map(Vec::len), Some(1));
    assert_eq!(j["writes"][0]["key"], "often");
    assert_eq!(j["writes"][0]["count"], 5);
    assert_eq!(j["reads"][0]["key"], "often");
    assert_eq!(j["reads"][0]["count"], 4);
    // `tierkv serve`'s gateway keeps no value cache.
    assert_eq!(j["cache"].as_array().map(Vec::len), Some(0));
    for bad in ["limit=0", "limit=101", "limit=x", "nope=1"] {
        env.admin_get(&format!("/admin/v1/hot-keys?{bad}"))
            .await
            .problem(400, "invalid_request");
    }
}
