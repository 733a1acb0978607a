//! One RPC to a node over HTTP/2, and the classification of its failures by whether the
//! request may have been delivered (which decides whether a write may be retried).

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use super::{RPC_PATH, Shared};
use crate::proto::{self, Response};

/// Why one RPC produced no answer.
#[derive(Debug)]
pub(super) enum RpcFailure {
    /// The request surely did not reach the node (no connection).
    NotSent(String),
    /// The node refused the request at the HTTP level (4xx; 401 is a wrong secret).
    Rejected(StatusCode),
    /// The request may have been delivered, but no usable answer came back.
    MaybeDelivered(String),
}

/// Error text with its sources, for logs.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

impl Shared {
    /// The endpoint of the node at `addr`, parsed once.
    fn endpoint(&self, addr: &str) -> Result<reqwest::Url, RpcFailure> {
        if let Some(u) = self.urls.read().get(addr) {
            return Ok(u.clone());
        }
        let u = reqwest::Url::parse(&format!("http://{addr}{RPC_PATH}"))
            .map_err(|e| RpcFailure::NotSent(format!("bad node address {addr:?}: {e}")))?;
        self.urls.write().insert(addr.to_owned(), u.clone());
        Ok(u)
    }

    /// One RPC to the node at `addr`.
    pub(super) async fn send(&self, addr: &str, body: Bytes) -> Result<Response, RpcFailure> {
        let url = self.endpoint(addr)?;
        let resp = self
            .http
            .post(url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_builder() {
                    RpcFailure::NotSent(chain(&e))
                } else {
                    RpcFailure::MaybeDelivered(chain(&e))
                }
            })?;
        let status = resp.status();
        if status.is_client_error() {
            return Err(RpcFailure::Rejected(status));
        }
        if status != StatusCode::OK {
            return Err(RpcFailure::MaybeDelivered(format!("HTTP {status}")));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| RpcFailure::MaybeDelivered(chain(&e)))?;
        proto::decode_response(&body)
            .map_err(|e| RpcFailure::MaybeDelivered(format!("unreadable answer: {e}")))
    }
}
