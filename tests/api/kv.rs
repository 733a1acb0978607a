//! Single-key routes: values, versions, conditions, TTL, key encoding, limits.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, StatusCode};

use crate::env::{Env, req};

#[tokio::test]
async fn put_get_round_trip_with_content_type_and_etag() {
    let env = Env::new().await;
    let r = env
        .send(
            req(Method::PUT, "/v1/kv/greeting")
                .header("content-type", "text/plain")
                .body(Body::from("hello"))
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, 201);
    let j = r.json();
    let v = j["version"].as_u64().expect("version");
    assert_eq!(j["key"], "greeting");
    assert_eq!(j["key_encoding"], "utf8");
    assert!(j["expires_at"].is_null());
    assert_eq!(r.header("etag"), Some(format!("\"{v}\"").as_str()));

    let g = env.get("/v1/kv/greeting").await;
    assert_eq!(g.status, 200);
    assert_eq!(&g.body[..], b"hello");
    assert_eq!(g.header("content-type"), Some("text/plain"));
    assert_eq!(g.header("etag"), Some(format!("\"{v}\"").as_str()));
    assert_eq!(g.header("x-tierkv-version"), Some(v.to_string().as_str()));
    assert_eq!(g.header("x-tierkv-expires-at"), None);

    // No content type: octet-stream.
    env.put("/v1/kv/raw", "\x00\x01").await;
    let g = env.get("/v1/kv/raw").await;
    assert_eq!(g.header("content-type"), Some("application/octet-stream"));
}

#[tokio::test]
async fn overwrite_returns_200_with_a_newer_version() {
    let env = Env::new().await;
    let v1 = env.put("/v1/kv/k", "a").await.json()["version"]
        .as_u64()
        .expect("v1");
    let r = env.put("/v1/kv/k", "b").await;
    assert_eq!(r.status, 200);
    assert!(r.json()["version"].as_u64().expect("v2") > v1);
    assert_eq!(&env.get("/v1/kv/k").await.body[..], b"b");
}

#[tokio::test]
async fn head_has_the_headers_and_no_body() {
    let env = Env::new().await;
    env.put("/v1/kv/h", "12345").await;
    let r = env
        .send(
            req(Method::HEAD, "/v1/kv/h")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert!(r.header("etag").is_some());
    assert!(r.header("x-tierkv-version").is_some());
    let r = env
        .send(
            req(Method::HEAD, "/v1/kv/nope")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn get_missing_is_404_key_not_found_with_instance() {
    let env = Env::new().await;
    let p = env
        .get("/v1/kv/missing")
        .await
        .problem(404, "key_not_found");
    assert_eq!(p.instance.as_deref(), Some("/v1/kv/missing"));
}

#[tokio::test]
async fn if_none_match_on_get_returns_304() {
    let env = Env::new().await;
    let etag = env
        .put("/v1/kv/c", "x")
        .await
        .header("etag")
        .expect("etag")
        .to_owned();
    let r = env
        .send(
            req(Method::GET, "/v1/kv/c")
                .header("if-none-match", &etag)
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = env
        .send(
            req(Method::GET, "/v1/kv/c")
                .header("if-none-match", "\"999999\"")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn delete_is_204_with_tombstone_etag_and_idempotent() {
    let env = Env::new().await;
    let v = env.put("/v1/kv/d", "x").await.json()["version"]
        .as_u64()
        .expect("v");
    let r = env.delete("/v1/kv/d").await;
    assert_eq!(r.status, 204);
    let tomb: u64 = r
        .header("etag")
        .expect("etag")
        .trim_matches('"')
        .parse()
        .expect("num");
    assert!(tomb > v);
    env.get("/v1/kv/d").await.problem(404, "key_not_found");
    assert_eq!(env.delete("/v1/kv/d").await.status, 204);
    assert_eq!(env.delete("/v1/kv/never-existed").await.status, 204);
}

#[tokio::test]
async fn delete_with_if_match() {
    let env = Env::new().await;
    let etag = env
        .put("/v1/kv/d", "x")
        .await
        .header("etag")
        .expect("etag")
        .to_owned();
    let r = env
        .send(
            req(Method::DELETE, "/v1/kv/d")
                .header("if-match", "\"999\"")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    r.problem(412, "precondition_failed");
    let r = env
        .send(
            req(Method::DELETE, "/v1/kv/d")
                .header("if-match", &etag)
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = env
        .send(
            req(Method::DELETE, "/v1/kv/d")
                .header("if-match", &etag)
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    r.problem(412, "precondition_failed");
}

#[tokio::test]
async fn if_match_put() {
    let env = Env::new().await;
    // Absent key: 412.
    let r = env
        .send(
            req(Method::PUT, "/v1/kv/m")
                .header("if-match", "\"1\"")
                .body(Body::from("a"))
                .expect("req"),
        )
        .await;
    r.problem(412, "precondition_failed");
    let etag = env
        .put("/v1/kv/m", "a")
        .await
        .header("etag")
        .expect("etag")
        .to_owned();
    let ok = env
        .send(
            req(Method::PUT, "/v1/kv/m")
                .header("if-match", &etag)
                .body(Body::from("b"))
                .expect("req"),
        )
        .await;
    assert_eq!(ok.status, 200);
    // The old version no longer matches.
    let r = env
        .send(
            req(Method::PUT, "/v1/kv/m")
                .header("if-match", &etag)
                .body(Body::from("c"))
                .expect("req"),
        )
        .await;
    r.problem(412, "precondition_failed");
    let r = env
        .send(
            req(Method::PUT, "/v1/kv/m")
                .header("if-match", "not-a-tag")
                .body(Body::from("c"))
                .expect("req"),
        )
        .await;
    r.problem(400, "invalid_request");
    assert_eq!(&env.get("/v1/kv/m").await.body[..], b"b");
}

#[tokio::test]
async fn if_none_match_star_is_create_only() {
    let env = Env::new().await;
    let put = |body: &'static str| {
        req(Method::PUT, "/v1/kv/once")
            .header("if-none-match", "*")
            .body(Body::from(body))
            .expect("req")
    };
    assert_eq!(env.send(put("first")).await.status, 201);
    env.send(put("second"))
        .await
        .problem(412, "precondition_failed");
    assert_eq!(&env.get("/v1/kv/once").await.body[..], b"first");
    let r = env
        .send(
            req(Method::PUT, "/v1/kv/x")
                .header("if-none-match", "\"3\"")
                .body(Body::from("a"))
                .expect("req"),
        )
        .await;
    r.problem(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_race_has_exactly_one_winner() {
    let env = Arc::new(Env::new().await);
    let etag = env
        .put("/v1/kv/cas", "0")
        .await
        .header("etag")
        .expect("etag")
        .to_owned();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let env = Arc::clone(&env);
            let etag = etag.clone();
            tokio::spawn(async move {
                env.send(
                    req(Method::PUT, "/v1/kv/cas")
                        .header("if-match", etag)
                        .body(Body::from(format!("writer-{i}")))
                        .expect("req"),
                )
                .await
                .status
                .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        15,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_only_race_has_exactly_one_winner() {
    let env = Arc::new(Env::new().await);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let env = Arc::clone(&env);
            tokio::spawn(async move {
                env.send(
                    req(Method::PUT, "/v1/kv/race")
                        .header("if-none-match", "*")
                        .body(Body::from(format!("writer-{i}")))
                        .expect("req"),
                )
                .await
                .status
                .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        15,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn ttl_expiry_is_visible_through_the_api() {
    let env = Env::new().await;
    let r = env.put("/v1/kv/t?ttl=10", "short-lived").await;
    assert_eq!(r.status, 201);
    let at = r.json()["expires_at"].as_u64().expect("expires_at");
    assert_eq!(at, crate::env::START_MS + 10_000);
    let g = env.get("/v1/kv/t").await;
    assert_eq!(g.status, 200);
    assert_eq!(
        g.header("x-tierkv-expires-at"),
        Some(at.to_string().as_str())
    );
    env.clock.advance(10_000);
    env.get("/v1/kv/t").await.problem(404, "key_not_found");

    // Absolute expiry in unix seconds.
    let when = (crate::env::START_MS + 10_000) / 1000 + 60;
    let r = env.put(&format!("/v1/kv/abs?expires_at={when}"), "x").await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["expires_at"].as_u64(), Some(when * 1000));
}

#[tokio::test]
async fn invalid_ttls_are_400_invalid_ttl() {
    let env = Env::new().await;
    for q in [
        "ttl=0",
        "ttl=-1",
        "ttl=abc",
        "ttl=315360001",
        "expires_at=1",
        "expires_at=abc",
        "ttl=5&expires_at=99999999999",
    ] {
        env.put(&format!("/v1/kv/t?{q}"), "x")
            .await
            .problem(400, "invalid_ttl");
    }
}

#[tokio::test]
async fn percent_encoded_keys_with_slash_space_and_binary() {
    let env = Env::new().await;
    assert_eq!(env.put("/v1/kv/a%2Fb%20c", "slash-space").await.status, 201);
    let g = env.get("/v1/kv/a%2Fb%20c").await;
    assert_eq!(&g.body[..], b"slash-space");
    // An unencoded slash names the same key.
    assert_eq!(&env.get("/v1/kv/a/b%20c").await.body[..], b"slash-space");
    // Non-UTF-8 bytes.
    let r = env.put("/v1/kv/%FF%00%FE", "bin").await;
    assert_eq!(r.status, 201);
    let j = r.json();
    assert_eq!(j["key_encoding"], "base64");
    assert_eq!(j["key"], "/wD+");
    assert_eq!(&env.get("/v1/kv/%FF%00%FE").await.body[..], b"bin");
}

#[tokio::test]
async fn key_limits() {
    let env = Env::new().await;
    env.get("/v1/kv/").await.problem(400, "key_empty");
    env.put("/v1/kv/", "x").await.problem(400, "key_empty");
    let long = "k".repeat(1025);
    env.put(&format!("/v1/kv/{long}"), "x")
        .await
        .problem(400, "key_too_long");
    let max = "k".repeat(1024);
    assert_eq!(env.put(&format!("/v1/kv/{max}"), "x").await.status, 201);
}

#[tokio::test]
async fn value_and_body_limits() {
    let env = Env::new().await;
    let max = env.opts.max_value_bytes;
    assert_eq!(env.put("/v1/kv/big", vec![7u8; max]).await.status, 201);
    env.put("/v1/kv/big", vec![7u8; max + 1])
        .await
        .problem(413, "value_too_large");
    env.put("/v1/kv/big", vec![7u8; env.opts.max_body_bytes + 1])
        .await
        .problem(413, "body_too_large");
}

#[tokio::test]
async fn conflicting_conditions_are_412_and_bad_headers_400() {
    let env = Env::new().await;
    let r = env
        .send(
            req(Method::PUT, "/v1/kv/x")
                .header("if-match", "\"1\"")
                .header("if-none-match", "*")
                .body(Body::from("a"))
                .expect("req"),
        )
        .await;
    r.problem(412, "precondition_failed");
    let r = env
        .send(
            req(Method::PUT, "/v1/kv/x")
                .header("content-type", "x".repeat(300))
                .body(Body::from("a"))
                .expect("req"),
        )
        .await;
    r.problem(400, "invalid_request");
}

#[tokio::test]
async fn read_consistency_is_validated_and_unknown_query_parameters_are_rejected() {
    let env = Env::new().await;
    assert_eq!(env.put("/v1/kv/c", "v").await.status, StatusCode::CREATED);
    for q in ["", "?consistency=strong", "?consistency=eventual"] {
        assert_eq!(
            env.get(&format!("/v1/kv/c{q}")).await.status,
            StatusCode::OK,
            "{q}"
        );
    }
    for path in [
        "/v1/kv/c?consistency=bogus",
        "/v1/kv/c?surprise=1",
        "/v1/kv?limit=5&surprise=1",
        "/v1/kv?consistency=linear",
    ] {
        let r = env.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(r.json()["code"], "invalid_request", "{path}");
    }
    assert_eq!(
        env.get("/v1/kv?consistency=eventual").await.status,
        StatusCode::OK
    );
    assert_eq!(
        env.put("/v1/kv/c?ttl=5&nope=1", "v").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        env.delete("/v1/kv/c?x=1").await.status,
        StatusCode::BAD_REQUEST
    );
}
