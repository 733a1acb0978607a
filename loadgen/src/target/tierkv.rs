//! TierKV over its HTTP/JSON API.
//!
//! - read: `GET /v1/kv/{key}[?consistency=strong|eventual[&max_staleness=<bound>]]`; 200 ok,
//!   404 not found.
//! - update: `PUT /v1/kv/{key}[?ttl=N]` with the raw value; 200/201 ok.
//! - rmw: `GET`, then `PUT` with `If-Match: "<version from ETag>"` (or `If-None-Match: *`
//!   when the key was absent); 412 is a conflict.
//!
//! With an API key, every request carries `Authorization: Bearer <key>` (design note 0012).

use super::{Consistency, OpError, OpResult, Outcome, Target};
use crate::http::{HttpConn, HttpResponse};
use bytes::Bytes;
use http::header::{ETAG, IF_MATCH, IF_NONE_MATCH};
use http::{HeaderValue, Method, StatusCode};
use std::net::SocketAddr;

const VALUE_TYPE: &str = "application/octet-stream";

/// One worker's TierKV client.
#[derive(Debug)]
pub struct TierKvTarget {
    conn: HttpConn,
    consistency: Option<Consistency>,
    max_staleness: Option<String>,
    /// `Authorization: Bearer <key>`, when a key was given.
    auth: Option<(http::HeaderName, HeaderValue)>,
}

impl TierKvTarget {
    /// A client for the server at `addr` (`host` is the `Host` header); reads ask for
    /// `consistency` and, for eventual reads, `max_staleness` (e.g. `250ms`).
    pub fn new(
        addr: SocketAddr,
        host: &str,
        consistency: Option<Consistency>,
        max_staleness: Option<String>,
    ) -> Self {
        Self {
            conn: HttpConn::new(addr, host),
            consistency,
            max_staleness,
            auth: None,
        }
    }

    /// Sends `Authorization: Bearer <key>` with every request (a key that is not a valid
    /// header value is ignored; the server then answers 401).
    #[must_use]
    pub fn with_api_key(mut self, key: Option<&str>) -> Self {
        self.auth = key
            .and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok())
            .map(|v| (http::header::AUTHORIZATION, v));
        self
    }

    /// The headers of every request, plus `extra`.
    fn headers(
        &self,
        extra: Option<(http::HeaderName, HeaderValue)>,
    ) -> Vec<(http::HeaderName, HeaderValue)> {
        self.auth.iter().cloned().chain(extra).collect()
    }

    fn read_path(&self, key: &str) -> String {
        match (self.consistency, &self.max_staleness) {
            (Some(c @ Consistency::Eventual), Some(s)) => {
                format!("/v1/kv/{key}?consistency={c}&max_staleness={s}")
            }
            (Some(c), _) => format!("/v1/kv/{key}?consistency={c}"),
            (None, _) => format!("/v1/kv/{key}"),
        }
    }

    async fn get(&mut self, key: &str) -> Result<HttpResponse, OpError> {
        let path = self.read_path(key);
        let headers = self.headers(None);
        self.conn
            .send(Method::GET, &path, None, &headers, Bytes::new())
            .await
    }
}

fn status_error(status: StatusCode) -> OpError {
    OpError::Status {
        status: status.as_u16(),
    }
}

impl Target for TierKvTarget {
    async fn read(&mut self, key: &str) -> OpResult {
        let resp = self.get(key).await?;
        match resp.status {
            StatusCode::OK => Ok(Outcome::Ok),
            StatusCode::NOT_FOUND => Ok(Outcome::NotFound),
            s => Err(status_error(s)),
        }
    }

    async fn update(&mut self, key: &str, value: Bytes, ttl_secs: Option<u32>) -> OpResult {
        let path = match ttl_secs {
            Some(t) => format!("/v1/kv/{key}?ttl={t}"),
            None => format!("/v1/kv/{key}"),
        };
        let headers = self.headers(None);
        let resp = self
            .conn
            .send(Method::PUT, &path, Some(VALUE_TYPE), &headers, value)
            .await?;
        match resp.status {
            StatusCode::OK | StatusCode::CREATED => Ok(Outcome::Ok),
            s => Err(status_error(s)),
        }
    }

    async fn rmw(&mut self, key: &str, value: Bytes) -> OpResult {
        let read = self.get(key).await?;
        let condition = match read.status {
            // The ETag is already the quoted version: `"<version>"`; send it back verbatim.
            StatusCode::OK => match read.headers.get(ETAG) {
                Some(etag) => (IF_MATCH, etag.clone()),
                None => return Err(OpError::Protocol),
            },
            StatusCode::NOT_FOUND => (IF_NONE_MATCH, HeaderValue::from_static("*")),
            s => return Err(status_error(s)),
        };
        let path = format!("/v1/kv/{key}");
        let headers = self.headers(Some(condition));
        let resp = self
            .conn
            .send(Method::PUT, &path, Some(VALUE_TYPE), &headers, value)
            .await?;
        match resp.status {
            StatusCode::OK | StatusCode::CREATED => Ok(Outcome::Ok),
            StatusCode::PRECONDITION_FAILED => Ok(Outcome::Conflict),
            s => Err(status_error(s)),
        }
    }

    fn reset(&mut self) {
        self.conn.reset();
    }
}
