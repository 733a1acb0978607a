//! etcd through its v3 JSON gateway (grpc-gateway). Keys and values are base64 in JSON;
//! 64-bit integers are JSON strings in responses (proto3 JSON mapping) and are accepted as
//! strings or numbers.
//!
//! - read: `POST /v3/kv/range {"key"}`; linearizable by default, `"serializable": true` with
//!   `--consistency eventual`. An empty `kvs` is "not found".
//! - update: `POST /v3/kv/put {"key","value"}`. With a TTL, a lease is granted first
//!   (`POST /v3/lease/grant {"TTL"}`) and attached as `"lease"`: two round trips per write,
//!   which is what per-key expiry costs in etcd.
//! - rmw: range, then `POST /v3/kv/txn` comparing `mod_revision` (0 when absent) and putting
//!   on success; `"succeeded": false` (or absent, proto3 omits false) is a conflict.

use super::{Consistency, OpError, OpResult, Outcome, Target};
use crate::http::{HttpConn, HttpResponse};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Body of `POST /v3/kv/range` for one key.
pub fn range_request(key: &str, serializable: bool) -> Value {
    let mut v = json!({ "key": B64.encode(key) });
    if serializable {
        v["serializable"] = Value::Bool(true);
    }
    v
}

/// Body of `POST /v3/kv/put`; `lease` attaches a granted lease id.
pub fn put_request(key: &str, value: &[u8], lease: Option<i64>) -> Value {
    let mut v = json!({ "key": B64.encode(key), "value": B64.encode(value) });
    if let Some(id) = lease {
        v["lease"] = Value::String(id.to_string());
    }
    v
}

/// Body of `POST /v3/lease/grant`.
pub fn lease_grant_request(ttl_secs: u32) -> Value {
    json!({ "TTL": ttl_secs.to_string() })
}

/// Body of `POST /v3/kv/txn`: put `value` if `key`'s `mod_revision` is still `mod_revision`.
pub fn txn_request(key: &str, mod_revision: i64, value: &[u8]) -> Value {
    let k = B64.encode(key);
    json!({
        "compare": [{
            "key": k,
            "result": "EQUAL",
            "target": "MOD",
            "mod_revision": mod_revision.to_string(),
        }],
        "success": [{ "request_put": { "key": k, "value": B64.encode(value) } }],
        "failure": [],
    })
}

/// Reads a proto3-JSON int64 (a string or a number).
fn json_i64(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The `mod_revision` of the first kv in a range response; `None` when no key matched.
pub fn range_mod_revision(resp: &Value) -> Result<Option<i64>, OpError> {
    match resp.get("kvs").and_then(Value::as_array) {
        None => Ok(None),
        Some(kvs) => match kvs.first() {
            None => Ok(None),
            Some(kv) => kv
                .get("mod_revision")
                .and_then(json_i64)
                .map(Some)
                .ok_or(OpError::Protocol),
        },
    }
}

/// One worker's etcd client.
#[derive(Debug)]
pub struct EtcdTarget {
    conn: HttpConn,
    serializable: bool,
}

impl EtcdTarget {
    /// A client for the gateway at `addr`.
    pub fn new(addr: SocketAddr, host: &str, consistency: Option<Consistency>) -> Self {
        Self {
            conn: HttpConn::new(addr, host),
            serializable: consistency == Some(Consistency::Eventual),
        }
    }

    async fn post(&mut self, path: &str, body: &Value) -> Result<Value, OpError> {
        let body = Bytes::from(serde_json::to_vec(body).map_err(|_| OpError::Protocol)?);
        let HttpResponse { status, body, .. } = self
            .conn
            .send(Method::POST, path, Some("application/json"), &[], body)
            .await?;
        if status != StatusCode::OK {
            return Err(OpError::Status {
                status: status.as_u16(),
            });
        }
        serde_json::from_slice(&body).map_err(|_| OpError::Protocol)
    }

    async fn range(&mut self, key: &str) -> Result<Option<i64>, OpError> {
        let resp = self
            .post("/v3/kv/range", &range_request(key, self.serializable))
            .await?;
        range_mod_revision(&resp)
    }
}

impl Target for EtcdTarget {
    async fn read(&mut self, key: &str) -> OpResult {
        Ok(match self.range(key).await? {
            Some(_) => Outcome::Ok,
            None => Outcome::NotFound,
        })
    }

    async fn update(&mut self, key: &str, value: Bytes, ttl_secs: Option<u32>) -> OpResult {
        let lease = match ttl_secs {
            Some(ttl) => {
                let resp = self
                    .post("/v3/lease/grant", &lease_grant_request(ttl))
                    .await?;
                Some(resp.get("ID").and_then(json_i64).ok_or(OpError::Protocol)?)
            }
            None => None,
        };
        self.post("/v3/kv/put", &put_request(key, &value, lease))
            .await?;
        Ok(Outcome::Ok)
    }

    async fn rmw(&mut self, key: &str, value: Bytes) -> OpResult {
        let rev = self.range(key).await?.unwrap_or(0);
        let resp = self
            .post("/v3/kv/txn", &txn_request(key, rev, &value))
            .await?;
        Ok(match resp.get("succeeded").and_then(Value::as_bool) {
            Some(true) => Outcome::Ok,
            _ => Outcome::Conflict,
        })
    }

    fn reset(&mut self) {
        self.conn.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_request_json_shape() {
        assert_eq!(range_request("user1", false), json!({ "key": "dXNlcjE=" }));
        assert_eq!(
            range_request("user1", true),
            json!({ "key": "dXNlcjE=", "serializable": true })
        );
        assert_eq!(
            put_request("user1", b"hi", None),
            json!({ "key": "dXNlcjE=", "value": "aGk=" })
        );
        assert_eq!(
            put_request("user1", b"hi", Some(7)),
            json!({ "key": "dXNlcjE=", "value": "aGk=", "lease": "7" })
        );
        assert_eq!(lease_grant_request(30), json!({ "TTL": "30" }));
        assert_eq!(
            txn_request("user1", 12, b"hi"),
            json!({
                "compare": [{ "key": "dXNlcjE=", "result": "EQUAL", "target": "MOD", "mod_revision": "12" }],
                "success": [{ "request_put": { "key": "dXNlcjE=", "value": "aGk=" } }],
                "failure": [],
            })
        );
    }

    #[test]
    fn etcd_range_response_parsing() {
        let hit = json!({ "header": {}, "kvs": [{ "key": "dXNlcjE=", "mod_revision": "42" }], "count": "1" });
        assert_eq!(range_mod_revision(&hit), Ok(Some(42)));
        let numeric = json!({ "kvs": [{ "mod_revision": 5 }] });
        assert_eq!(range_mod_revision(&numeric), Ok(Some(5)));
        assert_eq!(range_mod_revision(&json!({ "header": {} })), Ok(None));
        assert_eq!(range_mod_revision(&json!({ "kvs": [] })), Ok(None));
        assert_eq!(
            range_mod_revision(&json!({ "kvs": [{ "key": "x" }] })),
            Err(OpError::Protocol)
        );
    }
}
