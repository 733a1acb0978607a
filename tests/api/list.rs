//! `GET /v1/kv`: ordering and paging across shards, prefixes, binary keys.

use std::collections::BTreeSet;

use tierkv_engine::routing::shard_for;

use crate::env::{Env, SHARDS};

/// Follows cursors from `first` to the end, returning every key (raw bytes, via encoding).
async fn list_all(env: &Env, query: &str, limit: usize) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let mut keys = Vec::new();
    let mut cursor: Option<(String, String)> = None;
    loop {
        let mut url = format!("/v1/kv?limit={limit}{query}");
        if let Some((c, enc)) = &cursor {
            let c: String = url_encode(c);
            let param = if enc == "base64" {
                "start_after_base64"
            } else {
                "start_after"
            };
            url.push_str(&format!("&{param}={c}"));
        }
        let r = env.get(&url).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let j = r.json();
        let items = j["items"].as_array().expect("items");
        assert!(items.len() <= limit);
        for it in items {
            let k = it["key"].as_str().expect("key");
            keys.push(match it["key_encoding"].as_str() {
                Some("base64") => base64::engine::general_purpose::STANDARD
                    .decode(k)
                    .expect("b64"),
                _ => k.as_bytes().to_vec(),
            });
        }
        match j["next_start_after"].as_str() {
            Some(c) => {
                let enc = j["next_start_after_encoding"].as_str().expect("encoding");
                cursor = Some((c.to_owned(), enc.to_owned()));
            }
            None => return keys,
        }
    }
}

fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn listing_is_ordered_and_paged_across_shards() {
    let env = Env::new().await;
    let mut expected = BTreeSet::new();
    let mut shards = BTreeSet::new();
    for i in 0..37 {
        let k = format!("item-{i:03}");
        shards.insert(shard_for(k.as_bytes(), SHARDS));
        assert_eq!(
            env.put(&format!("/v1/kv/{k}"), format!("v{i}"))
                .await
                .status,
            201
        );
        expected.insert(k.into_bytes());
    }
    assert!(shards.len() > 1, "keys must span shards");
    env.put("/v1/kv/other", "x").await;
    env.delete("/v1/kv/item-005").await;
    expected.remove(&b"item-005"[..]);
    let expected: Vec<_> = expected.into_iter().collect();
    for limit in [1, 5, 36, 1000] {
        let got = list_all(&env, "&prefix=item-", limit).await;
        assert_eq!(got, expected, "limit {limit}");
    }
    let first = env.get("/v1/kv?prefix=item-&limit=2").await.json();
    let item = &first["items"][0];
    assert_eq!(item["key"], "item-000");
    assert_eq!(item["size"], 2);
    assert_eq!(item["content_type"], "application/octet-stream");
    assert!(item["version"].as_u64().is_some());
    assert_eq!(first["next_start_after"], "item-001");
    // Everything, default limit.
    let all = env.get("/v1/kv").await.json();
    assert_eq!(all["items"].as_array().expect("items").len(), 37);
    assert!(all["next_start_after"].is_null());
}

#[tokio::test]
async fn non_utf8_keys_are_listable_and_their_cursors_usable() {
    let env = Env::new().await;
    let keys: [&[u8]; 5] = [b"b\xff\x00", b"b\xff\x01", b"b\xfe", b"b-plain", b"b\xff"];
    for k in keys {
        let path = format!(
            "/v1/kv/{}",
            percent_encoding::percent_encode(k, percent_encoding::NON_ALPHANUMERIC)
        );
        assert_eq!(env.put(&path, "v").await.status, 201);
    }
    let mut expected: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    expected.sort();
    assert_eq!(list_all(&env, "&prefix=b", 1).await, expected);
    assert_eq!(list_all(&env, "&prefix=b", 2).await, expected);
    // A base64 prefix (0x62 0xff = "b\xff").
    let got = list_all(&env, "&prefix=ignored&prefix_base64=Yv8%3D", 1).await;
    assert_eq!(
        got,
        vec![
            b"b\xff".to_vec(),
            b"b\xff\x00".to_vec(),
            b"b\xff\x01".to_vec()
        ]
    );
}

#[tokio::test]
async fn listing_parameter_errors() {
    let env = Env::new().await;
    env.get("/v1/kv?limit=0")
        .await
        .problem(400, "invalid_request");
    env.get("/v1/kv?limit=abc")
        .await
        .problem(400, "invalid_request");
    env.get("/v1/kv?prefix_base64=!!")
        .await
        .problem(400, "invalid_request");
    env.get("/v1/kv?start_after_base64=A")
        .await
        .problem(400, "invalid_request");
    env.get("/v1/kv?limit=-1")
        .await
        .problem(400, "invalid_request");
    env.get("/v1/kv?limit=1001")
        .await
        .problem(400, "invalid_request");
    // Unpadded base64 is accepted.
    assert_eq!(env.get("/v1/kv?prefix_base64=Yv8").await.status, 200);
    assert_eq!(env.get("/v1/kv?limit=1000").await.status, 200);
}
