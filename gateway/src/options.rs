//! Gateway settings ([`GatewayOptions`]): limits, timeouts and windows of the public API.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::AuthOptions;
use crate::cache::CacheOptions;
use crate::cluster::ClientOptions;
use crate::hotkeys::HotKeyOptions;
use crate::limits::KeyLimitOptions;

/// Settings of the public HTTP API. Every field has a default, so an empty table is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayOptions {
    /// Largest value a `PUT` (or a batch `put` item) may store, in bytes; larger values get
    /// `413 value_too_large`. Default: 1 MiB (1048576).
    pub max_value_bytes: usize,
    /// Largest request body, in bytes (raw values and JSON batches alike); larger bodies get
    /// `413 body_too_large`. Default: `max_value_bytes` + 64 KiB (1114112).
    pub max_body_bytes: usize,
    /// Most items one `POST /v1/batch` may carry; more get `413 batch_too_large`.
    /// Default: 100.
    pub max_batch_items: usize,
    /// Largest `limit` a listing may ask for (larger values are clamped). Default: 1000.
    pub max_list_limit: usize,
    /// `limit` of a listing that gives none. Default: 100.
    pub default_list_limit: usize,
    /// Time a request may take end to end before it is answered `504 timeout`
    /// (humantime, e.g. `"10s"`). Default: 10s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Requests served at once; further requests are shed at once with `503 overloaded`.
    /// Default: 1024.
    pub concurrency_limit: usize,
    /// How long an `Idempotency-Key` is remembered (humantime). Default: 24h.
    #[serde(with = "humantime_serde")]
    pub idempotency_window: Duration,
    /// Seconds sent in `Retry-After` on 429 and retryable 503 answers. Default: 1.
    pub retry_after_secs: u64,
    /// How the gateway reaches the cluster's nodes (`tierkv gateway`, `tierkv dev`): map
    /// refresh, how long to look for a leader, RPC timeout. The secret is `cluster.secret`.
    pub cluster: ClientOptions,
    /// The value cache (memory and disk tiers), eventual reads' default staleness bound, and
    /// read coalescing (design note 0008).
    pub cache: CacheOptions,
    /// Per-key rate limits (429 `rate_limited`).
    pub limits: KeyLimitOptions,
    /// Hot-key tracking for `GET /admin/v1/hot-keys`.
    pub hot_keys: HotKeyOptions,
    /// API keys and failed-attempt limits (design note 0012).
    pub auth: AuthOptions,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        let max_value_bytes = 1 << 20;
        Self {
            max_value_bytes,
            max_body_bytes: max_value_bytes + (64 << 10),
            max_batch_items: 100,
            max_list_limit: 1000,
            default_list_limit: 100,
            request_timeout: Duration::from_secs(10),
            concurrency_limit: 1024,
            idempotency_window: Duration::from_secs(24 * 3600),
            retry_after_secs: 1,
            cluster: ClientOptions::default(),
            cache: CacheOptions::default(),
            limits: KeyLimitOptions::default(),
            hot_keys: HotKeyOptions::default(),
            auth: AuthOptions::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_is_default_and_unknown_fields_are_rejected() {
        let o: GatewayOptions = serde_json::from_str("{}").expect("parse");
        assert_eq!(o, GatewayOptions::default());
        let o: GatewayOptions =
            serde_json::from_str(r#"{"request_timeout":"250ms","idempotency_window":"1h"}"#)
                .expect("parse");
        assert_eq!(o.request_timeout, Duration::from_millis(250));
        assert_eq!(o.idempotency_window, Duration::from_secs(3600));
        assert!(serde_json::from_str::<GatewayOptions>(r#"{"nope":1}"#).is_err());
    }
}
