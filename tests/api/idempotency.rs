//! `Idempotency-Key` on PUT and DELETE: replay, reuse, restart, concurrency.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Method;

use crate::env::{Env, Res, req};

async fn put_idem(env: &Env, key: &str, idem: &str, body: &'static str) -> Res {
    env.send(
        req(Method::PUT, &format!("/v1/kv/{key}"))
            .header("idempotency-key", idem)
            .header("content-type", "text/plain")
            .body(Body::from(body))
            .expect("req"),
    )
    .await
}

#[tokio::test]
async fn retry_returns_the_first_result_and_is_not_applied_twice() {
    let env = Env::new().await;
    let first = put_idem(&env, "acct", "req-1", "100").await;
    assert_eq!(first.status, 201);
    let v1 = first.json()["version"].as_u64().expect("version");
    let retry = put_idem(&env, "acct", "req-1", "100").await;
    assert_eq!(retry.status, 201, "same status as the first answer");
    assert_eq!(retry.json(), first.json());
    assert_eq!(retry.header("etag"), first.header("etag"));
    let g = env.get("/v1/kv/acct").await;
    assert_eq!(g.header("x-tierkv-version"), Some(v1.to_string().as_str()));
    // Same key, different body: 422.
    put_idem(&env, "acct", "req-1", "999")
        .await
        .problem(422, "idempotency_key_reused");
    assert_eq!(&env.get("/v1/kv/acct").await.body[..], b"100");
    // A new key applies.
    assert_eq!(put_idem(&env, "acct", "req-2", "200").await.status, 200);
}

#[tokio::test]
async fn conditional_retry_replays_instead_of_failing_the_precondition() {
    let env = Env::new().await;
    let send = || {
        req(Method::PUT, "/v1/kv/once")
            .header("idempotency-key", "create-once")
            .header("if-none-match", "*")
            .body(Body::from("x"))
            .expect("req")
    };
    let first = env.send(send()).await;
    assert_eq!(first.status, 201);
    let again = env.send(send()).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json(), first.json());
}

#[tokio::test]
async fn delete_retry_replays_the_tombstone_version() {
    let env = Env::new().await;
    env.put("/v1/kv/gone", "x").await;
    let del = || {
        req(Method::DELETE, "/v1/kv/gone")
            .header("idempotency-key", "del-1")
            .body(Body::empty())
            .expect("req")
    };
    let first = env.send(del()).await;
    assert_eq!(first.status, 204);
    env.put("/v1/kv/gone", "back").await;
    let again = env.send(del()).await;
    assert_eq!(again.status, 204);
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(&env.get("/v1/kv/gone").await.body[..], b"back");
}

#[tokio::test]
async fn invalid_idempotency_keys_are_400() {
    let env = Env::new().await;
    for bad in ["", "has space", &"x".repeat(256)] {
        put_idem(&env, "k", bad, "v")
            .await
            .problem(400, "invalid_idempotency_key");
    }
    assert_eq!(put_idem(&env, "k", &"x".repeat(255), "v").await.status, 201);
}

#[tokio::test]
async fn records_expire_after_the_window() {
    let env = Env::new().await;
    assert_eq!(put_idem(&env, "w", "win", "1").await.status, 201);
    env.clock
        .advance(env.opts.idempotency_window.as_millis() as u64 + 1);
    // The record is gone: the same key with another body now applies.
    assert_eq!(put_idem(&env, "w", "win", "2").await.status, 200);
}

#[tokio::test]
async fn retry_after_restart_is_replayed() {
    let env = Env::new().await;
    let first = put_idem(&env, "durable", "restart-1", "v").await;
    assert_eq!(first.status, 201);
    let env = env.restart().await;
    let again = put_idem(&env, "durable", "restart-1", "v").await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json(), first.json());
    put_idem(&env, "durable", "restart-1", "other")
        .await
        .problem(422, "idempotency_key_reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_apply_once() {
    let env = Arc::new(Env::new().await);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let env = Arc::clone(&env);
            tokio::spawn(async move {
                let r = put_idem(&env, "dup", "same-request", "v").await;
                (r.status.as_u16(), r.json()["version"].as_u64())
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
    assert_eq!(results[0].0, 201);
}
