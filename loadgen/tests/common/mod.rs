//! An in-process mock of TierKV's KV API on 127.0.0.1:0: `GET`/`PUT /v1/kv/{key}` with
//! versions, `ETag`, `If-Match` and `If-None-Match: *`. It counts requests and can stall one
//! chosen request to simulate a server hiccup.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// Mock state shared by every connection.
#[derive(Default)]
pub struct MockKv {
    data: Mutex<HashMap<String, (u64, Bytes)>>,
    next_version: AtomicU64,
    pub gets: AtomicU64,
    pub puts: AtomicU64,
    pub conflicts: AtomicU64,
    pub requests: AtomicU64,
    pub connections: AtomicU64,
    /// The 1-based request number to stall, and for how long (0 = none).
    stall_at: AtomicU64,
    stall_for: Mutex<Duration>,
    /// Queries seen on GET (e.g. `consistency=eventual`).
    pub last_get_query: Mutex<Option<String>>,
    /// Queries seen on PUT (e.g. `ttl=30`).
    pub last_put_query: Mutex<Option<String>>,
    /// Requests that came without `authorization: Bearer <key>` when `require_key` is set.
    pub unauthorized: AtomicU64,
    /// The API key every request must carry (none: no check).
    pub require_key: Mutex<Option<String>>,
}

impl MockKv {
    pub fn stall_once(&self, request_number: u64, d: Duration) {
        *self.stall_for.lock().expect("lock") = d;
        self.stall_at.store(request_number, Ordering::SeqCst);
    }

    pub fn len(&self) -> usize {
        self.data.lock().expect("lock").len()
    }

    fn handle(
        &self,
        method: &Method,
        key: &str,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let mut data = self.data.lock().expect("lock");
        let current = data.get(key).map(|(v, _)| *v);
        let resp = |status: StatusCode| Response::builder().status(status);
        if *method == Method::GET {
            self.gets.fetch_add(1, Ordering::Relaxed);
            return match data.get(key) {
                Some((v, val)) => resp(StatusCode::OK)
                    .header("etag", format!("\"{v}\""))
                    .body(Full::new(val.clone())),
                None => resp(StatusCode::NOT_FOUND).body(Full::new(Bytes::from_static(b"{}"))),
            }
            .expect("valid response");
        }
        if *method != Method::PUT {
            return resp(StatusCode::METHOD_NOT_ALLOWED)
                .body(Full::new(Bytes::new()))
                .expect("valid response");
        }
        self.puts.fetch_add(1, Ordering::Relaxed);
        let precondition_ok = match (headers.get("if-match"), headers.get("if-none-match")) {
            (Some(m), _) => current.is_some_and(|v| m.as_bytes() == format!("\"{v}\"").as_bytes()),
            (None, Some(n)) if n.as_bytes() == b"*" => current.is_none(),
            _ => true,
        };
        if !precondition_ok {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
            return resp(StatusCode::PRECONDITION_FAILED)
                .body(Full::new(Bytes::new()))
                .expect("valid response");
        }
        let v = self.next_version.fetch_add(1, Ordering::Relaxed) + 1;
        data.insert(key.to_owned(), (v, body));
        let status = if current.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        resp(status)
            .header("etag", format!("\"{v}\""))
            .body(Full::new(Bytes::from(format!(
                "{{\"key\":\"{key}\",\"version\":{v},\"expires_at\":null}}"
            ))))
            .expect("valid response")
    }

    async fn serve(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.stall_at.load(Ordering::SeqCst) {
            let d = *self.stall_for.lock().expect("lock");
            // A server-side fault, not test synchronisation: this request answers late.
            tokio::time::sleep(d).await;
        }
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let path = parts.uri.path();
        let Some(key) = path.strip_prefix("/v1/kv/") else {
            return Ok(Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Full::new(Bytes::new()))
                .expect("valid response"));
        };
        if let Some(k) = self.require_key.lock().expect("lock").as_deref() {
            let want = format!("Bearer {k}");
            if parts.headers.get("authorization").map(|v| v.as_bytes()) != Some(want.as_bytes()) {
                self.unauthorized.fetch_add(1, Ordering::Relaxed);
                return Ok(Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .body(Full::new(Bytes::new()))
                    .expect("valid response"));
            }
        }
        let query = parts.uri.query().map(str::to_owned);
        if parts.method == Method::GET {
            *self.last_get_query.lock().expect("lock") = query;
        } else {
            *self.last_put_query.lock().expect("lock") = query;
        }
        Ok(self.handle(&parts.method, key, &parts.headers, body))
    }
}

/// Starts the mock on 127.0.0.1:0; it runs until the test's runtime shuts down.
pub async fn start_mock() -> (SocketAddr, Arc<MockKv>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let kv = Arc::new(MockKv::default());
    let state = kv.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            state.connections.fetch_add(1, Ordering::Relaxed);
            let state = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| state.clone().serve(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, kv)
}

/// Parses `tierkv-bench` arguments (the program name is added).
pub fn opts(addr: SocketAddr, args: &[&str]) -> tierkv_loadgen::BenchOptions {
    use clap::Parser;
    let endpoint = format!("--endpoint={addr}");
    let mut all = vec!["tierkv-bench", endpoint.as_str(), "--quiet"];
    all.extend_from_slice(args);
    tierkv_loadgen::BenchOptions::try_parse_from(all).expect("valid options")
}
