//! `POST /v1/batch`: many gets, puts and deletes with per-item results.
//!
//! Items run one after another, in order, each exactly like the single-key route would run
//! it (so a later item sees an earlier item's write). A batch is NOT atomic: each item
//! succeeds or fails on its own and reports its own `status`; the response is 200 whenever
//! the batch itself was valid. See [`crate::idempotency`] for `Idempotency-Key` on batches.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cache::Want;
use crate::limits::Access;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{self, IfMatch, RawBody};
use crate::idempotency::{self, Fingerprint, Idem, body_hash};
use crate::keys::{self, Encoding};
use crate::ops::{self, PutRequest, UserCondition};
use crate::problem::ErrorCode;
use crate::routes::kv::DEFAULT_CONTENT_TYPE;
use crate::state::AppState;

/// A batch request.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1..=`max_batch_items` (default 100) items; more get 413 `batch_too_large`.
    #[schema(min_items = 1)]
    pub items: Vec<BatchItem>,
}

/// Operation of a batch item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchOp {
    /// Read the key.
    Get,
    /// Write `value` to the key.
    Put,
    /// Delete the key.
    Delete,
}

/// `*` (create-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub enum Star {
    /// The only value.
    #[serde(rename = "*")]
    Any,
}

/// One item of a batch.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// What to do.
    pub op: BatchOp,
    /// The key (see `key_encoding`).
    pub key: String,
    /// Encoding of `key`. Default: utf8.
    #[serde(default)]
    pub key_encoding: Option<Encoding>,
    /// The value (put only; see `value_encoding`). Default: empty.
    #[serde(default)]
    pub value: Option<String>,
    /// Encoding of `value`. Default: utf8.
    #[serde(default)]
    pub value_encoding: Option<Encoding>,
    /// Content type to store (put only): a media type such as `text/plain; charset=utf-8`.
    #[serde(default)]
    #[schema(
        max_length = 255,
        pattern = r"^ *[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+ *(;[\t -~]*)?$"
    )]
    pub content_type: Option<String>,
    /// Seconds until the value expires, 1..=315360000 (put only).
    #[serde(default, deserialize_with = "de_opt_uint")]
    #[schema(minimum = 1, maximum = 315_360_000)]
    pub ttl: Option<u64>,
    /// Write only if this is the current version (put, delete).
    #[serde(default, deserialize_with = "de_opt_uint")]
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub if_match: Option<u64>,
    /// `*`: write only if the key does not exist (put only).
    #[serde(default)]
    pub if_none_match: Option<Star>,
}

/// A non-negative integer; JSON numbers written as integral floats (`12.0`) are accepted.
fn de_opt_uint<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error as _;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(u) = n.as_u64() {
        return Ok(Some(u));
    }
    match n.as_f64() {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "range checked"
        )]
        Some(f) if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) => Ok(Some(f as u64)),
        _ => Err(D::Error::custom(format!(
            "expected a non-negative integer, got {n}"
        ))),
    }
}

/// `403 forbidden` if any item's key is outside the caller's key prefixes (design note
/// 0012): checked for every item before any runs. An item whose key does not decode fails
/// on its own when it runs.
fn in_scope(caller: &Caller, items: &[BatchItem]) -> Result<(), ApiError> {
    for (i, item) in items.iter().enumerate() {
        if let Ok(key) = item
            .key_encoding
            .unwrap_or_default()
            .decode(&item.key, "key")
            && let Err(e) = caller.allow_key(&key)
        {
            return Err(ApiError::Forbidden {
                detail: format!("items[{i}]: {e}"),
            });
        }
    }
    Ok(())
}

/// Checks what the schema says of each item before any runs (a violation fails the whole
/// batch with 400); what happens when an item runs is reported per item.
fn validate(items: &[BatchItem]) -> Result<(), ApiError> {
    for (i, item) in items.iter().enumerate() {
        if item.ttl.is_some_and(|t| !(1..=315_360_000).contains(&t)) {
            return Err(ApiError::InvalidTtl {
                reason: "ttl must be between 1 and 315360000 seconds",
            });
        }
        if item.if_match.is_some_and(|v| v > i64::MAX as u64) {
            return Err(ApiError::invalid(format!(
                "items[{i}].if_match is out of range"
            )));
        }
        if let Some(ct) = &item.content_type {
            extract::media_type(ct)?;
        }
    }
    Ok(())
}

/// Error of one item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct ItemError {
    /// Stable code (as in problem documents).
    pub code: ErrorCode,
    /// What went wrong.
    pub detail: String,
}

/// Result of one item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct ItemResult {
    /// HTTP-like status of the item (200, 201, 204, 404, 412, ...).
    pub status: u16,
    /// Version read or written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The value (get).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Encoding of `value`: utf8 when valid UTF-8, else base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_encoding: Option<Encoding>,
    /// Stored content type (get).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Expiry in unix milliseconds (get, put).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Why the item failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

/// Results in item order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One result per item, in order.
    pub items: Vec<ItemResult>,
}

/// Runs a batch.
#[utoipa::path(
    post, path = "/v1/batch", tag = "kv",
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1..=255 visible ASCII characters; a retry returns the first response."),
    ),
    request_body(content = BatchRequest, content_type = "application/json"),
    responses((status = 200, description = "Per-item results in order (the batch is not atomic).", body = BatchResponse))
)]
pub(crate) async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let is_json = extract::header_str(&headers, &header::CONTENT_TYPE)?
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    let idem_key = extract::idempotency_key(&headers)?;
    let req: BatchRequest = extract::parse_json(&body)?;
    let max = state.options().max_batch_items;
    validate(&req.items)?;
    in_scope(&caller, &req.items)?;
    if req.items.is_empty() {
        return Err(ApiError::BatchEmpty);
    }
    if req.items.len() > max {
        return Err(ApiError::BatchTooLarge {
            len: req.items.len(),
            max,
        });
    }
    let Some(idem_key) = idem_key else {
        return Ok(Json(run(&state, req).await).into_response());
    };
    let idem = Idem::new(
        idem_key.clone(),
        Fingerprint::of(&[b"BATCH", &body_hash(&body)]),
    );
    let shard = state.shard_of(&idem_key);
    let _guard = idempotency::batch_guard(&state, &idem_key).await;
    if let Some(r) = idem.lookup(&state, shard).await? {
        let body = r.record.body.unwrap_or_default();
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response());
    }
    let resp = run(&state, req).await;
    let text = serde_json::to_string(&resp).map_err(ApiError::internal)?;
    let op = idem.record_op(&state, StatusCode::OK.as_u16(), None, Some(text.clone()))?;
    let write = tierkv_engine::types::WriteBatch {
        ops: vec![op],
        report_prior: false,
    };
    if let Err(e) = state.backend().write(shard, write).await {
        tracing::warn!(error = %e, "could not record the batch idempotency key; a retry will run the batch again");
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}

async fn run(state: &AppState, req: BatchRequest) -> BatchResponse {
    let mut items = Vec::with_capacity(req.items.len());
    for item in req.items {
        items.push(match run_item(state, item).await {
            Ok(r) => r,
            Err(e) => ItemResult {
                status: e.status().as_u16(),
                error: Some(ItemError {
                    code: e.code(),
                    detail: e.public_detail(),
                }),
                ..ItemResult::default()
            },
        });
    }
    BatchResponse { items }
}

async fn run_item(state: &AppState, item: BatchItem) -> Result<ItemResult, ApiError> {
    let key = item
        .key_encoding
        .unwrap_or_default()
        .decode(&item.key, "key")?;
    keys::validate_user_key(&key)?;
    match item.op {
        BatchOp::Get => {
            state.admit(&key, Access::Read)?;
            let e = ops::read(state, &key, Want::Strong)
                .await?
                .value
                .ok_or(ApiError::KeyNotFound)?;
            let content_type = e.content_type;
            let (value, enc) = keys::encode(&e.value);
            Ok(ItemResult {
                status: 200,
                version: Some(e.version),
                value: Some(value),
                value_encoding: Some(enc),
                content_type: Some(content_type.map_or(DEFAULT_CONTENT_TYPE.to_owned(), |c| {
                    String::from_utf8_lossy(&c).into_owned()
                })),
                expires_at: e.expires_at,
                error: None,
            })
        }
        BatchOp::Put => {
            let value = match &item.value {
                Some(v) => item.value_encoding.unwrap_or_default().decode(v, "value")?,
                None => Bytes::new(),
            };
            let condition = match (item.if_match, item.if_none_match) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::PreconditionFailed {
                        detail: "if_match and if_none_match cannot both hold",
                    });
                }
                (Some(v), None) => UserCondition::IfMatch(IfMatch::Version(v)),
                (None, Some(Star::Any)) => UserCondition::IfNoneMatchAny,
                (None, None) => UserCondition::None,
            };
            let content_type = item
                .content_type
                .as_deref()
                .map(extract::media_type)
                .transpose()?;
            let ttl = item.ttl.map(|t| t.to_string());
            let expires_at = ops::expiry(state, ttl.as_deref(), None)?;
            state.admit(&key, Access::Write)?;
            let o = ops::put(
                state,
                PutRequest {
                    key,
                    value,
                    content_type,
                    expires_at,
                    condition,
                },
                None,
            )
            .await?;
            Ok(ItemResult {
                status: o.status.as_u16(),
                version: Some(o.version),
                expires_at: o.expires_at,
                ..ItemResult::default()
            })
        }
        BatchOp::Delete => {
            state.admit(&key, Access::Write)?;
            let o = ops::delete(state, &key, item.if_match.map(IfMatch::Version), None).await?;
            Ok(ItemResult {
                status: o.status.as_u16(),
                version: Some(o.version),
                ..ItemResult::default()
            })
        }
    }
}
