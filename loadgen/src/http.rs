//! A single keep-alive HTTP/1.1 connection per worker, on hyper's low-level client.
//!
//! Why not a pooled client (reqwest, hyper-util's legacy `Client`): every worker issues one
//! request at a time, so a pool adds a shared lock, a checkout and URL parsing per request
//! and buys nothing. Owning one `SendRequest` per worker keeps the hot path to "write the
//! request, read the response" and makes the connection count exactly `--concurrency`
//! (or `--max-in-flight`). See the crate docs for the measurement.
//!
//! Lifecycle: the connection opens lazily on the first request. Its driver future runs in a
//! spawned task that ends when the server closes the socket or when the `SendRequest` is
//! dropped (on [`HttpConn::reset`], or when the worker ends).

use crate::target::OpError;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// A response with its body read in full.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// One lazily opened keep-alive connection.
#[derive(Debug)]
pub struct HttpConn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpConn {
    /// A connection to `addr`; `host` is sent as the `Host` header.
    pub fn new(addr: SocketAddr, host: &str) -> Self {
        let host =
            HeaderValue::from_str(host).unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Self {
            addr,
            host,
            sender: None,
        }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, OpError> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|_| OpError::Connect)?;
        // Latency benchmark: do not let Nagle hold back small requests.
        stream.set_nodelay(true).map_err(|_| OpError::Connect)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| OpError::Connect)?;
        tokio::spawn(async move {
            // The error (server closed, reset) surfaces on the next send; nothing to do here.
            let _ = conn.await;
        });
        Ok(self.sender.insert(sender))
    }

    /// Drops the connection; the next request opens a new one.
    pub fn reset(&mut self) {
        self.sender = None;
    }

    /// Sends one request and reads the whole response.
    ///
    /// `path_and_query` is sent in origin form. `headers` are added after `Host`,
    /// `Content-Length` and (when `content_type` is given) `Content-Type`.
    pub async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&'static str>,
        headers: &[(http::HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<HttpResponse, OpError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(HOST, self.host.clone())
            .header(CONTENT_LENGTH, body.len());
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let req = builder
            .body(Full::new(body))
            .map_err(|_| OpError::Protocol)?;

        let res = self.exchange(req).await;
        if res.is_err() {
            self.sender = None;
        }
        res
    }

    /// Sends `req`, retrying once on a fresh connection when the request provably never left
    /// (the kept-alive connection had been closed by the server while idle).
    async fn exchange(&mut self, req: Request<Full<Bytes>>) -> Result<HttpResponse, OpError> {
        let mut req = req;
        for attempt in 0..2 {
            let sender = match self.sender.as_mut() {
                Some(s) if !s.is_closed() => s,
                _ => self.connect().await?,
            };
            let ready = sender.ready().await;
            if ready.is_err() {
                self.sender = None;
                if attempt == 0 {
                    continue;
                }
                return Err(OpError::Io);
            }
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = body.collect().await.map_err(|_| OpError::Io)?.to_bytes();
                    return Ok(HttpResponse {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    });
                }
                Err(mut e) => {
                    self.sender = None;
                    match e.take_message() {
                        Some(unsent) if attempt == 0 => req = unsent,
                        _ => return Err(OpError::Io),
                    }
                }
            }
        }
        Err(OpError::Io)
    }
}
