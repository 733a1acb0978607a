//! The etcd target against a tiny in-process mock of etcd's v3 JSON gateway
//! (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn` with a `mod_revision` compare,
//! `/v3/lease/grant`).

mod common;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

#[derive(Default)]
struct MockEtcd {
    /// base64 key -> (mod_revision, base64 value)
    data: Mutex<HashMap<String, (i64, String)>>,
    revision: AtomicU64,
    ranges: AtomicU64,
    serializable_ranges: AtomicU64,
    puts: AtomicU64,
    leased_puts: AtomicU64,
    txns: AtomicU64,
    failed_txns: AtomicU64,
    grants: AtomicU64,
}

impl MockEtcd {
    fn put(&self, key: &str, value: &str) -> i64 {
        let rev = self.revision.fetch_add(1, Ordering::SeqCst) as i64 + 1;
        self.data
            .lock()
            .expect("lock")
            .insert(key.to_owned(), (rev, value.to_owned()));
        rev
    }

    fn handle(&self, path: &str, body: &Value) -> Value {
        let key = body["key"].as_str().unwrap_or_default();
        match path {
            "/v3/kv/range" => {
                self.ranges.fetch_add(1, Ordering::Relaxed);
                if body["serializable"] == json!(true) {
                    self.serializable_ranges.fetch_add(1, Ordering::Relaxed);
                }
                match self.data.lock().expect("lock").get(key) {
                    Some((rev, v)) => {
                        json!({ "header": {}, "kvs": [{ "key": key, "value": v, "mod_revision": rev.to_string() }], "count": "1" })
                    }
                    None => json!({ "header": {} }),
                }
            }
            "/v3/kv/put" => {
                self.puts.fetch_add(1, Ordering::Relaxed);
                if body.get("lease").is_some() {
                    self.leased_puts.fetch_add(1, Ordering::Relaxed);
                }
                self.put(key, body["value"].as_str().unwrap_or_default());
                json!({ "header": {} })
            }
            "/v3/lease/grant" => {
                self.grants.fetch_add(1, Ordering::Relaxed);
                json!({ "header": {}, "ID": "7587869", "TTL": body["TTL"] })
            }
            "/v3/kv/txn" => {
                self.txns.fetch_add(1, Ordering::Relaxed);
                let cmp = &body["compare"][0];
                let k = cmp["key"].as_str().unwrap_or_default();
                let want: i64 = cmp["mod_revision"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(-1);
                assert_eq!(
                    (cmp["result"].as_str(), cmp["target"].as_str()),
                    (Some("EQUAL"), Some("MOD"))
                );
                // Compare and put under one lock, like etcd's serialised txn.
                let mut data = self.data.lock().expect("lock");
                let have = data.get(k).map_or(0, |(r, _)| *r);
                if have == want {
                    let put = &body["success"][0]["request_put"];
                    let rev = self.revision.fetch_add(1, Ordering::SeqCst) as i64 + 1;
                    data.insert(
                        k.to_owned(),
                        (rev, put["value"].as_str().unwrap_or_default().to_owned()),
                    );
                    json!({ "header": {}, "succeeded": true })
                } else {
                    self.failed_txns.fetch_add(1, Ordering::Relaxed);
                    // proto3 JSON omits `succeeded: false`.
                    json!({ "header": {} })
                }
            }
            _ => json!({ "error": "not found" }),
        }
    }

    async fn serve(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_owned();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let out = self.handle(&path, &body);
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(out.to_string())))
            .expect("valid response"))
    }
}

async fn start_etcd() -> (SocketAddr, Arc<MockEtcd>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = Arc::new(MockEtcd::default());
    let s = state.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| s.clone().serve(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_rmw_conflicts_on_failed_txn() {
    let (addr, etcd) = start_etcd().await;
    let o = common::opts(
        addr,
        &[
            "--target=etcd",
            "--workload=f",
            "--keys=2",
            "--ops=2000",
            "--concurrency=16",
            "--load",
            "--distribution=uniform",
            "--consistency=eventual",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!(r.errors, 0, "{:?}", r.errors_by_kind);
    assert_eq!(r.total_ops, 2000);
    assert_eq!(r.not_found, 0);
    assert_eq!(r.conflicts, etcd.failed_txns.load(Ordering::Relaxed));
    assert!(r.conflicts > 0, "16 workers on 2 keys should conflict");
    assert_eq!(etcd.txns.load(Ordering::Relaxed), r.ops["rmw"].count);
    let ranges = etcd.ranges.load(Ordering::Relaxed);
    assert_eq!(ranges, r.ops["read"].count + r.ops["rmw"].count);
    assert_eq!(etcd.serializable_ranges.load(Ordering::Relaxed), ranges);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_ttl_writes_grant_a_lease() {
    let (addr, etcd) = start_etcd().await;
    let o = common::opts(
        addr,
        &[
            "--target=etcd",
            "--workload=ttl",
            "--ttl=5",
            "--keys=5",
            "--ops=30",
            "--concurrency=2",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!((r.total_ops, r.errors), (30, 0), "{:?}", r.errors_by_kind);
    assert_eq!(etcd.grants.load(Ordering::Relaxed), 30);
    assert_eq!(etcd.leased_puts.load(Ordering::Relaxed), 30);
    // Default consistency: linearizable ranges (no `serializable`).
    let o = common::opts(
        addr,
        &[
            "--target=etcd",
            "--workload=c",
            "--keys=5",
            "--ops=10",
            "--concurrency=1",
        ],
    );
    let r = tierkv_loadgen::run(&o).await.expect("run");
    assert_eq!(r.total_ops, 10);
    assert_eq!(etcd.serializable_ranges.load(Ordering::Relaxed), 0);
}
