//! API keys, roles and prefixes (design note 0012), in process: every route of the
//! contract without credentials, with a role too small, with a key outside its prefixes;
//! key management; the cluster secret and dashboard sessions; `/metrics`; failed-attempt
//! limits; the loopback opt-out.

use std::time::Duration;

use axum::body::Body;
use axum::http::Method;
use serde_json::json;
use tierkv_engine::options::EngineOptions;
use tierkv_gateway::GatewayOptions;

use crate::env::{ADMIN_SECRET, Env, Res, req};

/// Every operation of the contract: (method, concrete path, whether it is open).
fn operations() -> Vec<(Method, String, bool)> {
    let doc = tierkv_gateway::openapi();
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        let concrete = path
            .replace("{key}", "p/k")
            .replace("{id}", "0123456789abcdef");
        let ops = [
            (Method::GET, item.get.as_ref()),
            (Method::HEAD, item.head.as_ref()),
            (Method::PUT, item.put.as_ref()),
            (Method::POST, item.post.as_ref()),
            (Method::DELETE, item.delete.as_ref()),
        ];
        for (m, op) in ops {
            let Some(op) = op else { continue };
            let open = op
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(|r| *r == Default::default()));
            out.push((m, concrete.clone(), open));
        }
    }
    assert!(out.len() >= 15, "the contract lists every route: {out:?}");
    out
}

fn request(m: &Method, path: &str, auth: Option<&str>) -> axum::http::Request<Body> {
    let mut b = req(m.clone(), path);
    if let Some(a) = auth {
        b = b.header("authorization", format!("Bearer {a}"));
    }
    let body = if *m == Method::POST || *m == Method::PUT {
        b = b.header("content-type", "application/json");
        Body::from("{}")
    } else {
        Body::empty()
    };
    b.body(body).expect("req")
}

async fn create_key(env: &Env, body: serde_json::Value) -> (String, String) {
    let r = env.post_json("/admin/v1/keys", &body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let j = r.json();
    (
        j["id"].as_str().expect("id").to_owned(),
        j["key"].as_str().expect("key").to_owned(),
    )
}

async fn as_key(
    env: &Env,
    m: Method,
    path: impl AsRef<str>,
    key: &str,
    body: Option<serde_json::Value>,
) -> Res {
    let mut b = req(m, path.as_ref()).header("authorization", format!("Bearer {key}"));
    let body = match body {
        Some(j) => {
            b = b.header("content-type", "application/json");
            Body::from(j.to_string())
        }
        None => Body::empty(),
    };
    env.send_as_is(b.body(body).expect("req")).await
}

#[tokio::test]
async fn every_protected_route_needs_credentials() {
    // Many wrong credentials from one (in-process: unknown) address, by design.
    let mut opts = GatewayOptions::default();
    opts.auth.failure_burst = 1000;
    let env = Env::with(opts, EngineOptions::default(), 1 << 20).await;
    let mut protected = 0;
    for (m, path, open) in operations() {
        let r = env.send_as_is(request(&m, &path, None)).await;
        if open {
            assert_ne!(r.status, 401, "{m} {path} is open");
            continue;
        }
        protected += 1;
        if m == Method::HEAD {
            assert_eq!(r.status, 401, "{m} {path}");
        } else {
            r.problem(401, "unauthorized");
        }
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"tierkv\""),
            "{m} {path}"
        );
        // A token that is no key and not the secret, and a well-formed key nobody made.
        for wrong in [
            "nope",
            "tkv_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let r = env.send_as_is(request(&m, &path, Some(wrong))).await;
            assert_eq!(r.status, 401, "{m} {path} with {wrong}");
        }
    }
    assert!(protected >= 12, "{protected}");
    // Open paths stay open.
    for p in ["/health/live", "/openapi.yaml", "/ui/"] {
        let r = env.send_as_is(request(&Method::GET, p, None)).await;
        assert_eq!(r.status, 200, "{p}");
    }
    // Unknown paths are denied by default (no route oracle without credentials).
    env.send_as_is(request(&Method::GET, "/nope", None))
        .await
        .problem(401, "unauthorized");
}

#[tokio::test]
async fn roles_limit_routes() {
    let env = Env::new().await;
    let (_, read) = create_key(&env, json!({"name": "r", "role": "read"})).await;
    let (_, write) = create_key(&env, json!({"name": "w", "role": "write"})).await;
    for (m, path, open) in operations() {
        if open {
            continue;
        }
        let needs = if path.starts_with("/v1/") {
            if m == Method::GET || m == Method::HEAD {
                "read"
            } else {
                "write"
            }
        } else {
            "admin"
        };
        for (role, key) in [("read", &read), ("write", &write)] {
            let allowed = match needs {
                "read" => true,
                "write" => role == "write",
                _ => false,
            };
            let r = env.send_as_is(request(&m, &path, Some(key))).await;
            if allowed {
                assert!(
                    r.status != 401 && r.status != 403,
                    "{role} may {m} {path}: {}",
                    r.status
                );
            } else if m == Method::HEAD {
                assert_eq!(r.status, 403, "{role} {m} {path}");
            } else {
                r.problem(403, "forbidden");
            }
        }
        // The admin key of the env is allowed everywhere.
        let r = env.send(request(&m, &path, None)).await;
        assert!(r.status != 401 && r.status != 403, "admin {m} {path}");
    }
}

#[tokio::test]
async fn prefix_limited_keys_stay_inside_their_prefixes() {
    let env = Env::new().await;
    let (_, k) = create_key(
        &env,
        json!({"name": "tenant", "role": "write", "prefixes": ["p/", "shared"]}),
    )
    .await;
    let put = |path: &'static str| as_key(&env, Method::PUT, path, &k, None);
    assert_eq!(put("/v1/kv/p/a").await.status, 201);
    assert_eq!(put("/v1/kv/shared-x").await.status, 201);
    put("/v1/kv/q/a").await.problem(403, "forbidden");
    put("/v1/kv/p").await.problem(403, "forbidden");
    as_key(&env, Method::GET, "/v1/kv/q/a", &k, None)
        .await
        .problem(403, "forbidden");
    as_key(&env, Method::DELETE, "/v1/kv/q/a", &k, None)
        .await
        .problem(403, "forbidden");
    assert_eq!(
        as_key(&env, Method::GET, "/v1/kv/p/a", &k, None)
            .await
            .status,
        200
    );
    // Listings: only inside a prefix.
    let list = |q: &str| as_key(&env, Method::GET, format!("/v1/kv{q}"), &k, None);
    assert_eq!(list("?prefix=p/").await.status, 200);
    assert_eq!(list("?prefix=p/a").await.status, 200);
    assert_eq!(
        list("?prefix_base64=cC8%3D").await.status,
        200,
        "p/ in base64"
    );
    list("").await.problem(403, "forbidden");
    list("?prefix=p").await.problem(403, "forbidden");
    list("?prefix=q/").await.problem(403, "forbidden");
    // Batches: every item is checked before any runs.
    let batch = json!({"items": [
        {"op": "put", "key": "p/b", "value": "1"},
        {"op": "get", "key": "cS9i", "key_encoding": "base64"},
    ]});
    let r = as_key(&env, Method::POST, "/v1/batch", &k, Some(batch)).await;
    let p = r.problem(403, "forbidden");
    assert!(p.detail.contains("items[1]"), "{p:?}");
    assert_eq!(
        as_key(&env, Method::GET, "/v1/kv/p/b", &k, None)
            .await
            .status,
        404,
        "nothing of a refused batch ran"
    );
    let ok = json!({"items": [{"op": "put", "key": "p/b", "value": "1"}, {"op": "get", "key": "shared"}]});
    assert_eq!(
        as_key(&env, Method::POST, "/v1/batch", &k, Some(ok))
            .await
            .status,
        200
    );
    // Admin keys cannot be limited.
    env.post_json(
        "/admin/v1/keys",
        &json!({"name": "x", "role": "admin", "prefixes": ["p/"]}),
    )
    .await
    .problem(400, "invalid_request");
}

#[tokio::test]
async fn keys_are_created_listed_without_secrets_and_revoked() {
    let env = Env::new().await;
    let (id, key) = create_key(&env, json!({"name": "svc", "role": "read"})).await;
    assert!(key.starts_with("tkv_") && key.contains(&id));
    // `tkv_<16 hex id>_<secret>` (the secret's base64url may hold `_` itself).
    let secret = &key["tkv_".len() + 16 + 1..];
    assert_eq!(secret.len(), 43);
    assert_eq!(
        as_key(&env, Method::GET, "/v1/kv/a", &key, None)
            .await
            .status,
        404
    );
    let r = env.get("/admin/v1/keys").await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(!text.contains(secret) && !text.contains("hash"), "{text}");
    let j = r.json();
    let listed = j["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(listed["name"], "svc");
    assert_eq!(listed["role"], "read");
    assert!(listed["last_used_at_ms"].as_u64().is_some(), "{listed}");
    assert!(listed["created_at_ms"].as_u64().is_some());
    // Write keys cannot manage keys.
    let (_, w) = create_key(&env, json!({"name": "w", "role": "write"})).await;
    as_key(
        &env,
        Method::POST,
        "/admin/v1/keys",
        &w,
        Some(json!({"name": "x", "role": "admin"})),
    )
    .await
    .problem(403, "forbidden");
    as_key(
        &env,
        Method::DELETE,
        &format!("/admin/v1/keys/{id}"),
        &w,
        None,
    )
    .await
    .problem(403, "forbidden");
    // Revoked: refused at once on this gateway.
    let r = env.delete(&format!("/admin/v1/keys/{id}")).await;
    assert_eq!(r.status, 204);
    as_key(&env, Method::GET, "/v1/kv/a", &key, None)
        .await
        .problem(401, "unauthorized");
    env.delete(&format!("/admin/v1/keys/{id}"))
        .await
        .problem(404, "not_found");
    env.delete("/admin/v1/keys/NOT-AN-ID")
        .await
        .problem(400, "invalid_request");
    for bad in [
        json!({"name": "x", "role": "owner"}),
        json!({"name": "", "role": "read"}),
        json!({"name": "x", "role": "read", "extra": 1}),
    ] {
        let r = env.post_json("/admin/v1/keys", &bad).await;
        assert_eq!(r.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn secret_and_sessions_are_admin_and_metrics_need_admin() {
    let env = Env::new().await;
    let (_, read) = create_key(&env, json!({"name": "r", "role": "read"})).await;
    // The cluster secret works everywhere, as `admin`.
    let r = as_key(&env, Method::PUT, "/v1/kv/s", ADMIN_SECRET, None).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        as_key(&env, Method::GET, "/admin/v1/keys", ADMIN_SECRET, None)
            .await
            .status,
        200
    );
    // A dashboard session too (the dashboard's keys page uses /v1/kv).
    let r = env
        .send_as_is(
            req(Method::POST, "/admin/v1/session")
                .header("content-type", "application/json")
                .body(Body::from(json!({"secret": ADMIN_SECRET}).to_string()))
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, 204);
    let cookie = r
        .header("set-cookie")
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let r = env
        .send_as_is(
            req(Method::GET, "/v1/kv/s")
                .header("cookie", &cookie)
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(r.status, 200);
    // /metrics: admin only.
    env.send_as_is(request(&Method::GET, "/metrics", None))
        .await
        .problem(401, "unauthorized");
    as_key(&env, Method::GET, "/metrics", &read, None)
        .await
        .problem(403, "forbidden");
    let r = as_key(&env, Method::GET, "/metrics", ADMIN_SECRET, None).await;
    assert_eq!(r.status, 200);
    let r = env.get("/metrics").await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    assert!(
        text.contains("tierkv_gateway_auth_failures_total{reason=\"missing\"} 1"),
        "{text}"
    );
    assert!(text.contains("tierkv_gateway_auth_failures_total{reason=\"forbidden\"} 1"));
    assert!(text.contains("tierkv_gateway_auth_keys 2"));
}

#[tokio::test]
async fn wrong_credentials_are_limited_per_address() {
    let mut opts = GatewayOptions::default();
    opts.auth.failure_burst = 3;
    opts.auth.failure_refill = Duration::from_secs(3600);
    let env = Env::with(opts, EngineOptions::default(), 1 << 20).await;
    // Requests without credentials do not count.
    for _ in 0..5 {
        env.send_as_is(request(&Method::GET, "/v1/kv/a", None))
            .await
            .problem(401, "unauthorized");
    }
    for _ in 0..3 {
        as_key(&env, Method::GET, "/v1/kv/a", "guess", None)
            .await
            .problem(401, "unauthorized");
    }
    let r = as_key(&env, Method::GET, "/v1/kv/a", "guess", None).await;
    r.problem(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
    // Refused before any check: a right key is no different now.
    env.get("/v1/kv/a").await.problem(429, "rate_limited");
    // Open routes stay open.
    assert_eq!(
        env.send_as_is(request(&Method::GET, "/health/live", None))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn auth_can_be_turned_off() {
    let mut opts = GatewayOptions::default();
    opts.auth.enabled = false;
    let env = Env::with(opts, EngineOptions::default(), 1 << 20).await;
    let r = env
        .send_as_is(request(&Method::PUT, "/v1/kv/a", None))
        .await;
    assert_eq!(r.status, 201);
    let r = env
        .send_as_is(request(&Method::GET, "/admin/v1/keys", None))
        .await;
    assert_eq!(r.status, 200);
}
