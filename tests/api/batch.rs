//! `POST /v1/batch`: per-item results, limits, JSON errors, idempotency.

use axum::body::Body;
use axum::http::Method;
use serde_json::json;

use crate::env::{Env, req};

#[tokio::test]
async fn batch_runs_items_in_order_with_per_item_status() {
    let env = Env::new().await;
    env.put("/v1/kv/existing", "old").await;
    let r = env
        .post_json(
            "/v1/batch",
            &json!({"items": [
                {"op": "put", "key": "a", "value": "1", "content_type": "text/plain"},
                {"op": "get", "key": "a"},
                {"op": "put", "key": "existing", "value": "new", "ttl": 60},
                {"op": "get", "key": "missing"},
                {"op": "put", "key": "/w==", "key_encoding": "base64", "value": "/wA=", "value_encoding": "base64"},
                {"op": "get", "key": "/w==", "key_encoding": "base64"},
                {"op": "put", "key": "a", "value": "2", "if_match": 999},
                {"op": "put", "key": "a", "value": "2", "if_none_match": "*"},
                {"op": "delete", "key": "existing"},
                {"op": "get", "key": ""},
                {"op": "put", "key": "x", "value": "!", "value_encoding": "base64"},
                {"op": "put", "key": "y", "ttl": 5.0, "if_match": 7.0}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let j = r.json();
    let items = j["items"].as_array().expect("items");
    let statuses: Vec<u64> = items
        .iter()
        .map(|i| i["status"].as_u64().expect("status"))
        .collect();
    assert_eq!(
        statuses,
        [201, 200, 200, 404, 201, 200, 412, 412, 204, 400, 400, 412]
    );
    assert_eq!(items[1]["value"], "1");
    assert_eq!(items[1]["value_encoding"], "utf8");
    assert_eq!(items[1]["content_type"], "text/plain");
    assert_eq!(items[1]["version"], items[0]["version"]);
    assert!(items[2]["expires_at"].as_u64().is_some());
    assert_eq!(items[3]["error"]["code"], "key_not_found");
    assert_eq!(items[5]["value"], "/wA=");
    assert_eq!(items[5]["value_encoding"], "base64");
    assert_eq!(items[6]["error"]["code"], "precondition_failed");
    assert_eq!(items[9]["error"]["code"], "key_empty");
    assert_eq!(items[10]["error"]["code"], "invalid_request");
    assert_eq!(items[11]["error"]["code"], "precondition_failed");
    // Schema violations fail the whole batch.
    env.post_json(
        "/v1/batch",
        &json!({"items": [{"op": "put", "key": "y", "ttl": 0}]}),
    )
    .await
    .problem(400, "invalid_ttl");
    env.post_json(
        "/v1/batch",
        &json!({"items": [{"op": "get", "key": "y", "if_match": 1.5}]}),
    )
    .await
    .problem(400, "invalid_request");
    env.get("/v1/kv/existing")
        .await
        .problem(404, "key_not_found");
}

#[tokio::test]
async fn batch_limits() {
    let env = Env::new().await;
    env.post_json("/v1/batch", &json!({"items": []}))
        .await
        .problem(400, "batch_empty");
    let items: Vec<_> = (0..101)
        .map(|i| json!({"op": "get", "key": format!("k{i}")}))
        .collect();
    env.post_json("/v1/batch", &json!({ "items": items }))
        .await
        .problem(413, "batch_too_large");
    let items: Vec<_> = (0..100)
        .map(|i| json!({"op": "get", "key": format!("k{i}")}))
        .collect();
    assert_eq!(
        env.post_json("/v1/batch", &json!({ "items": items }))
            .await
            .status,
        200
    );
    let big = "v".repeat(env.opts.max_value_bytes + 1);
    let r = env
        .post_json(
            "/v1/batch",
            &json!({"items": [{"op": "put", "key": "big", "value": big}]}),
        )
        .await;
    assert_eq!(r.json()["items"][0]["error"]["code"], "value_too_large");
    let huge = "v".repeat(env.opts.max_body_bytes + 1);
    env.post_json(
        "/v1/batch",
        &json!({"items": [{"op": "put", "key": "big", "value": huge}]}),
    )
    .await
    .problem(413, "body_too_large");
}

#[tokio::test]
async fn batch_json_errors() {
    let env = Env::new().await;
    env.post_json(
        "/v1/batch",
        &json!({"items": [{"op": "get", "key": "a", "colour": 1}]}),
    )
    .await
    .problem(400, "unknown_field");
    env.post_json("/v1/batch", &json!({"items": [], "extra": true}))
        .await
        .problem(400, "unknown_field");
    env.post_json(
        "/v1/batch",
        &json!({"items": [{"op": "frobnicate", "key": "a"}]}),
    )
    .await
    .problem(400, "invalid_request");
    let r = env
        .send(
            req(Method::POST, "/v1/batch")
                .header("content-type", "application/json")
                .body(Body::from("{\"items\": ["))
                .expect("req"),
        )
        .await;
    r.problem(400, "malformed_json");
    let r = env
        .send(
            req(Method::POST, "/v1/batch")
                .header("content-type", "text/plain")
                .body(Body::from("{\"items\": []}"))
                .expect("req"),
        )
        .await;
    r.problem(415, "unsupported_media_type");
    let r = env
        .send(
            req(Method::POST, "/v1/batch")
                .body(Body::from("{}"))
                .expect("req"),
        )
        .await;
    r.problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn batch_idempotency_replays_the_first_response() {
    let env = Env::new().await;
    let body =
        json!({"items": [{"op": "put", "key": "ctr", "value": "1"}, {"op": "get", "key": "ctr"}]});
    let send = |body: serde_json::Value| {
        req(Method::POST, "/v1/batch")
            .header("content-type", "application/json")
            .header("idempotency-key", "batch-1")
            .body(Body::from(body.to_string()))
            .expect("req")
    };
    let first = env.send(send(body.clone())).await;
    assert_eq!(first.status, 200);
    env.put("/v1/kv/ctr", "changed").await;
    let second = env.send(send(body.clone())).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.json(), first.json());
    // Not applied twice: the value written after the first batch survives.
    assert_eq!(&env.get("/v1/kv/ctr").await.body[..], b"changed");
    let other = json!({"items": [{"op": "get", "key": "ctr"}]});
    env.send(send(other))
        .await
        .problem(422, "idempotency_key_reused");
}
