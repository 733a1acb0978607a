//! Membership operations on `tierkv serve` (design note 0009): one node and no shard map,
//! so every change is refused with `membership_unsupported` (after the credential and input
//! checks), and the moves document shows every shard settled on its one replica.

use axum::body::Body;
use axum::http::Method;

use crate::env::{ADMIN_SECRET, Env, req};

async fn admin(env: &Env, method: Method, path: &str, body: Option<&str>) -> crate::env::Res {
    let mut r = req(method, path).header("authorization", format!("Bearer {ADMIN_SECRET}"));
    if body.is_some() {
        r = r.header("content-type", "application/json");
    }
    env.send(
        r.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .expect("req"),
    )
    .await
}

#[tokio::test]
async fn serve_refuses_membership_changes_and_shows_no_moves() {
    let env = Env::new().await;
    admin(
        &env,
        Method::POST,
        "/admin/v1/members",
        Some(r#"{"id": 2, "address": "127.0.0.1:7002"}"#),
    )
    .await
    .problem(409, "membership_unsupported");
    admin(&env, Method::POST, "/admin/v1/members/1/drain", None)
        .await
        .problem(409, "too_few_members");
    admin(&env, Method::DELETE, "/admin/v1/members/9", None)
        .await
        .problem(404, "member_not_found");
    let m = env.admin_get("/admin/v1/moves").await;
    assert_eq!(m.status, 200);
    let j = m.json();
    assert_eq!(j["shards_moving"], 0, "{j}");
    assert_eq!(j["progress"], 1.0);
    assert!(
        j["shards"].as_array().is_some_and(
            |s| !s.is_empty() && s.iter().all(|x| x["current"] == serde_json::json!([[1]]))
        ),
        "{j}"
    );
}
