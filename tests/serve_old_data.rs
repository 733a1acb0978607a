//! A data directory written by the standalone `tierkv serve` of before (the committed
//! fixture `tests/fixtures/serve-v0`: standalone epochs, a WAL of batch records without
//! promises that no manifest covers, no shard map, no `NODE_ID`) opens under today's
//! `tierkv serve`: every acknowledged write is readable with its version and content type,
//! deleted keys stay deleted, an idempotent retry replays its first answer, and new writes
//! get newer versions.

mod cluster;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tierkv_engine::routing::shard_for;

struct Serve {
    child: Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path, shards: u64) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierkv"))
        .args(["serve", "--listen", "127.0.0.1:0", "--shards"])
        .arg(shards.to_string())
        .arg("--data-dir")
        .arg(data)
        .env("TIERKV_CACHE__DISK_BYTES", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tierkv serve");
    let url = cluster::url_of(&mut child);
    Serve { child, url }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// `(status, body, etag, content type)` of `GET /v1/kv/<key>`.
async fn get(c: &reqwest::Client, url: &str, key: &str) -> (u16, String, String, String) {
    let r = c
        .get(format!("{url}/v1/kv/{key}"))
        .send()
        .await
        .expect("get");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (etag, ct) = (header("etag"), header("content-type"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default(), etag, ct)
}

fn version(etag: &str) -> u64 {
    etag.trim_matches('"').parse().expect("numeric etag")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_the_standalone_serve_opens_with_every_acknowledged_write() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/serve-v0");
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture.join("expected.json")).expect("expected.json"),
    )
    .expect("json");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    copy_dir(&fixture, &data);
    let shards = expected["shards"].as_u64().expect("shards");
    let s = start(&data, shards);
    // An old data directory has no key: the first start makes one (note 0012).
    let c = reqwest::Client::builder()
        .default_headers(cluster::dev_key_headers(&data))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let keys = expected["keys"].as_object().expect("keys");
    assert!(keys.len() > 100);
    // Per shard, the newest version the old process acknowledged for a live key.
    let shard_of = |key: &str| shard_for(key.as_bytes(), u32::try_from(shards).expect("u32")).0;
    let mut newest: BTreeMap<u32, u64> = BTreeMap::new();
    for (key, want) in keys {
        let (status, body, etag, ct) = get(&c, &s.url, key).await;
        if want.is_null() {
            assert_eq!(status, 404, "{key} was deleted");
            continue;
        }
        assert_eq!(status, 200, "{key}");
        assert_eq!(
            Some(body.as_str()),
            want["value"].as_str(),
            "value of {key}"
        );
        assert_eq!(
            Some(etag.as_str()),
            want["etag"].as_str(),
            "version of {key}"
        );
        assert_eq!(
            Some(ct.as_str()),
            want["content_type"].as_str(),
            "content type of {key}"
        );
        let n = newest.entry(shard_of(key)).or_default();
        *n = (*n).max(version(&etag));
    }
    // The idempotency record came along: a retry replays the first answer.
    let idem = &expected["idempotency"];
    let retry = c
        .put(format!(
            "{}/v1/kv/{}",
            s.url,
            idem["key"].as_str().expect("key")
        ))
        .header(
            "idempotency-key",
            idem["idempotency_key"].as_str().expect("idempotency key"),
        )
        .header("content-type", "application/octet-stream")
        .body("first")
        .send()
        .await
        .expect("retry");
    assert!(retry.status().is_success(), "{}", retry.status());
    assert_eq!(
        retry.headers().get("etag").and_then(|v| v.to_str().ok()),
        idem["etag"].as_str()
    );
    // New writes are newer than everything the old process wrote, in every shard.
    for i in 0..16 {
        let r = c
            .put(format!("{}/v1/kv/new-{i}", s.url))
            .body("new")
            .send()
            .await
            .expect("put");
        assert_eq!(r.status().as_u16(), 201);
        let etag = r.headers().get("etag").and_then(|v| v.to_str().ok());
        let v = version(etag.expect("etag"));
        let old = newest.get(&shard_of(&format!("new-{i}"))).copied();
        assert!(old.is_none_or(|o| v > o), "new-{i}: {v} after {old:?}");
    }
    drop(s);
    // It stays readable after the new serve's own restart.
    let s = start(&data, shards);
    for (key, want) in keys {
        let (status, body, _, _) = get(&c, &s.url, key).await;
        match want["value"].as_str() {
            Some(v) => assert_eq!((status, body.as_str()), (200, v), "{key} after restart"),
            None => assert_eq!(status, 404, "{key} after restart"),
        }
    }
}
