//! Which HTTP client drives the most requests per second at 32 concurrent connections on a
//! small machine? Ignored by default (a measurement, not a check):
//!
//! ```text
//! cargo test -p tierkv-loadgen --release --test client_compare -- --ignored --nocapture
//! ```
//!
//! Compares the crate's per-worker hyper `conn::http1` connection ([`HttpConn`]) with a shared
//! `reqwest::Client` (default features off) and a shared hyper-util legacy `Client`, all
//! against the same in-process hyper server on 127.0.0.1:0.

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tierkv_loadgen::http::HttpConn;
use tokio::net::TcpListener;

const CONNS: usize = 32;
const REQS_PER_CONN: usize = 2_000;

async fn start_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body = Bytes::from(vec![b'x'; 256]);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let body = body.clone();
                    async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

async fn hyper_conn(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNS)
        .map(|_| {
            tokio::spawn(async move {
                let mut c = HttpConn::new(addr, &addr.to_string());
                for _ in 0..REQS_PER_CONN {
                    let r = c
                        .send(
                            Method::GET,
                            "/v1/kv/user0000000001",
                            None,
                            &[],
                            Bytes::new(),
                        )
                        .await
                        .expect("request");
                    assert_eq!(r.body.len(), 256);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed()
}

async fn reqwest_pool(addr: SocketAddr) -> Duration {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNS)
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let url = format!("http://{addr}/v1/kv/user0000000001");
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNS)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for _ in 0..REQS_PER_CONN {
                    let r = client.get(&url).send().await.expect("request");
                    assert_eq!(r.bytes().await.expect("body").len(), 256);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed()
}

async fn hyper_util_pool(addr: SocketAddr) -> Duration {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONNS)
        .build::<_, Full<Bytes>>(connector);
    let uri: http::Uri = format!("http://{addr}/v1/kv/user0000000001")
        .parse()
        .expect("uri");
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNS)
        .map(|_| {
            let (client, uri) = (client.clone(), uri.clone());
            tokio::spawn(async move {
                for _ in 0..REQS_PER_CONN {
                    let req = Request::get(uri.clone())
                        .body(Full::new(Bytes::new()))
                        .expect("req");
                    let r = client.request(req).await.expect("request");
                    let b = r.into_body().collect().await.expect("body").to_bytes();
                    assert_eq!(b.len(), 256);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn compare_http_clients_at_32_connections() {
    let addr = start_server().await;
    let total = (CONNS * REQS_PER_CONN) as f64;
    for round in 0..3 {
        let a = hyper_conn(addr).await;
        let b = reqwest_pool(addr).await;
        let c = hyper_util_pool(addr).await;
        eprintln!(
            "round {round}: hyper conn/worker {:>8.0} req/s | reqwest pool {:>8.0} req/s | hyper-util pool {:>8.0} req/s",
            total / a.as_secs_f64(),
            total / b.as_secs_f64(),
            total / c.as_secs_f64(),
        );
    }
}
