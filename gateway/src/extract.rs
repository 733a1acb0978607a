//! Extractors whose rejections are our problem+json errors: the key from the path, raw
//! bodies, JSON bodies, query strings, and the conditional / idempotency headers.

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tierkv_engine::types::ReadConsistency;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::keys;
use crate::state::AppState;

/// Path prefix of single-key routes.
pub(crate) const KV_PREFIX: &str = "/v1/kv/";

/// The user key of a `/v1/kv/{key}` request: the rest of the raw path, percent-decoded to
/// bytes (so `%2F` is a `/` inside the key, and any byte can be sent), 1..=1024 bytes,
/// inside the caller's key prefixes (`403 forbidden` otherwise: design note 0012): every
/// single-key route checks its key's scope by taking this extractor.
#[derive(Debug, Clone)]
pub(crate) struct KeyPath(pub(crate) Bytes);

impl<S: Send + Sync> FromRequestParts<S> for KeyPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.path().strip_prefix(KV_PREFIX).unwrap_or("");
        let key: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
        keys::validate_user_key(&key)?;
        Caller::from_request_parts(parts, state)
            .await?
            .allow_key(&key)?;
        Ok(Self(Bytes::from(key)))
    }
}

/// A raw request body within the body limit.
#[derive(Debug)]
pub(crate) struct RawBody(pub(crate) Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| bytes_rejection(&e, state))
    }
}

fn bytes_rejection(e: &BytesRejection, state: &AppState) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge {
            max: state.options().max_body_bytes,
        }
    } else {
        ApiError::invalid(format!("could not read the request body: {e}"))
    }
}

/// Parses a JSON body; syntax errors are `malformed_json`, unknown fields `unknown_field`,
/// other shape errors `invalid_request`.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedJson {
                detail: e.to_string(),
            },
            Category::Data if e.to_string().contains("unknown field") => ApiError::UnknownField {
                detail: e.to_string(),
            },
            Category::Data => ApiError::invalid(e.to_string()),
        }
    })
}

/// Read consistency (`?consistency=`): `strong` reads come from the shard's leaseholder,
/// `eventual` reads from any replica's committed state (a single-process server holds one
/// copy of each shard, so both levels read that copy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Consistency {
    /// Linearizable: the latest acknowledged write is visible. The default.
    #[default]
    Strong,
    /// Possibly stale, never uncommitted.
    Eventual,
}

/// Query of a read: `consistency` and `max_staleness` (anything else is `invalid_request`).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadQuery {
    /// `strong` (default: linearizable, confirmed by the shard's leader) or `eventual`
    /// (possibly stale, never staler than `max_staleness`; may be answered from the
    /// gateway's cache without a round trip).
    #[param(inline)]
    pub(crate) consistency: Option<Consistency>,
    /// Eventual reads only: the answer reflects the key's state at some instant at most this
    /// long before the request arrived. `<n>ms` or `<n>s`, at most 3600s. Default: 1s
    /// (`gateway.cache.default_max_staleness`).
    #[param(value_type = Option<String>, pattern = "^[0-9]{1,7}(ms|s)$", example = "250ms")]
    pub(crate) max_staleness: Option<String>,
}

/// Parses `max_staleness` (`<n>ms` or `<n>s`, at most [`crate::cache::MAX_STALENESS`]).
pub(crate) fn parse_staleness(s: &str) -> Result<std::time::Duration, ApiError> {
    use std::time::Duration;
    let bad = || {
        ApiError::invalid(format!(
            "max_staleness must be <n>ms or <n>s, at most 3600s; got {s:?}"
        ))
    };
    let (digits, unit) = if let Some(d) = s.strip_suffix("ms") {
        (d, Duration::from_millis(1))
    } else if let Some(d) = s.strip_suffix('s') {
        (d, Duration::from_secs(1))
    } else {
        return Err(bad());
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u32 = digits.parse().map_err(|_| bad())?;
    let d = unit.checked_mul(n).ok_or_else(bad)?;
    if d > crate::cache::MAX_STALENESS {
        return Err(bad());
    }
    Ok(d)
}

/// What a single-key read asks for: `max_staleness` only with `consistency=eventual`.
pub(crate) fn read_want(
    q: &ReadQuery,
    default_staleness: std::time::Duration,
) -> Result<crate::cache::Want, ApiError> {
    use crate::cache::Want;
    match (
        q.consistency.unwrap_or_default(),
        q.max_staleness.as_deref(),
    ) {
        (Consistency::Strong, None) => Ok(Want::Strong),
        (Consistency::Strong, Some(_)) => Err(ApiError::invalid(
            "max_staleness applies to consistency=eventual only",
        )),
        (Consistency::Eventual, None) => Ok(Want::Eventual(default_staleness)),
        (Consistency::Eventual, Some(s)) => Ok(Want::Eventual(parse_staleness(s)?)),
    }
}

impl From<Consistency> for ReadConsistency {
    fn from(c: Consistency) -> Self {
        match c {
            Consistency::Strong => Self::Strong,
            Consistency::Eventual => Self::Eventual,
        }
    }
}

/// The engine's read level of an optional `?consistency=` (strong when absent).
pub(crate) fn read_level(c: Option<Consistency>) -> ReadConsistency {
    c.unwrap_or_default().into()
}

/// A query that must be empty (any parameter is `invalid_request`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoQuery {}

/// A query string whose errors are `invalid_request`.
#[derive(Debug)]
pub(crate) struct AppQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e: QueryRejection| ApiError::invalid(e.body_text()))
    }
}

/// A header as text; `None` when absent, `invalid_request` when not visible ASCII.
pub(crate) fn header_str<'a>(
    h: &'a HeaderMap,
    name: &header::HeaderName,
) -> Result<Option<&'a str>, ApiError> {
    h.get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::invalid(format!("header {name} is not visible ASCII")))
        })
        .transpose()
}

/// The `If-None-Match` header of a read, taken without copying the request's other headers
/// (axum's `HeaderMap` extractor clones them all); validated by [`IfNoneMatch::as_str`].
#[derive(Debug)]
pub(crate) struct IfNoneMatch(Option<header::HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(header::IF_NONE_MATCH).cloned()))
    }
}

impl IfNoneMatch {
    /// The header's text, as [`header_str`] gives it.
    pub(crate) fn as_str(&self) -> Result<Option<&str>, ApiError> {
        self.0
            .as_ref()
            .map(|v| {
                v.to_str().map_err(|_| {
                    ApiError::invalid(format!(
                        "header {} is not visible ASCII",
                        header::IF_NONE_MATCH
                    ))
                })
            })
            .transpose()
    }
}

/// Validates a content type (`type/subtype` of RFC 9110 token characters, optionally followed
/// by `;` parameters of visible ASCII, at most 255 bytes) and returns its bytes. Stored content
/// types are sent back verbatim as a response header, so anything else is refused.
pub(crate) fn media_type(s: &str) -> Result<Bytes, ApiError> {
    fn token(t: &str) -> bool {
        !t.is_empty()
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
    }
    if s.len() > tierkv_engine::types::MAX_CONTENT_TYPE_LEN {
        return Err(ApiError::invalid("content type is longer than 255 bytes"));
    }
    let (essence, params) = s.split_once(';').unwrap_or((s, ""));
    let valid = essence
        .trim()
        .split_once('/')
        .is_some_and(|(t, st)| token(t) && token(st))
        && params
            .bytes()
            .all(|c| c == b'\t' || (b' '..=b'~').contains(&c));
    if valid {
        Ok(Bytes::copy_from_slice(s.as_bytes()))
    } else {
        Err(ApiError::invalid(
            "content type must be a media type such as text/plain; charset=utf-8",
        ))
    }
}

/// A parsed `If-Match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfMatch {
    /// `*`: the key must exist.
    Any,
    /// This version must be current.
    Version(u64),
}

impl IfMatch {
    /// `If-Match` as a request-fingerprint part (record format 2).
    pub(crate) fn fingerprint_part(self) -> Vec<u8> {
        match self {
            Self::Any => b"if-match:*".to_vec(),
            Self::Version(v) => format!("if-match:{v}").into_bytes(),
        }
    }

    /// `If-Match` as record format 1 wrote it (this type's `Debug` text then).
    pub(crate) fn legacy_fingerprint_text(self) -> String {
        match self {
            Self::Any => "Any".to_owned(),
            Self::Version(v) => format!("Version({v})"),
        }
    }
}

/// Parses an entity tag list (`"12"`, `W/"12"`, `12`, `"1", "2"`). Unparseable tags are
/// kept as `None` (they match nothing).
pub(crate) fn parse_etags(v: &str) -> Vec<Option<u64>> {
    v.split(',').map(parse_etag).collect()
}

fn parse_etag(t: &str) -> Option<u64> {
    let t = t.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    let t = t
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<u64>().ok()
}

/// Reads `If-Match`: `*` or one version tag; anything else is `invalid_request`.
pub(crate) fn if_match(h: &HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    let Some(v) = header_str(h, &header::IF_MATCH)? else {
        return Ok(None);
    };
    if v.trim() == "*" {
        return Ok(Some(IfMatch::Any));
    }
    parse_etag(v)
        .map(|n| Some(IfMatch::Version(n)))
        .ok_or_else(|| ApiError::invalid("If-Match must be `*` or one version tag such as \"42\""))
}

/// Reads `If-None-Match` of a write: only `*` (create-only) is supported.
pub(crate) fn if_none_match_any(h: &HeaderMap) -> Result<bool, ApiError> {
    match header_str(h, &header::IF_NONE_MATCH)? {
        None => Ok(false),
        Some(v) if v.trim() == "*" => Ok(true),
        Some(_) => Err(ApiError::invalid(
            "If-None-Match on a write supports only `*` (create-only)",
        )),
    }
}

/// Reads and validates `Idempotency-Key` (1..=255 visible ASCII characters).
pub(crate) fn idempotency_key(h: &HeaderMap) -> Result<Option<Bytes>, ApiError> {
    let Some(v) = h.get("idempotency-key") else {
        return Ok(None);
    };
    let b = v.as_bytes();
    if b.is_empty() {
        return Err(ApiError::InvalidIdempotencyKey {
            reason: "it is empty",
        });
    }
    if b.len() > 255 {
        return Err(ApiError::InvalidIdempotencyKey {
            reason: "it is longer than 255 characters",
        });
    }
    if !b.iter().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::InvalidIdempotencyKey {
            reason: "it must be visible ASCII characters (no spaces)",
        });
    }
    Ok(Some(Bytes::copy_from_slice(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        for ok in [
            "text/plain",
            "application/json; charset=utf-8",
            "a/b;x=\"y z\"",
        ] {
            assert!(media_type(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "text",
            "/plain",
            "text/",
            "te xt/plain",
            "Ã8Ã/x",
            "a/b;\u{7f}",
        ] {
            assert!(media_type(bad).is_err(), "{bad:?}");
        }
        assert!(media_type(&format!("a/{}", "b".repeat(300))).is_err());
    }

    #[test]
    fn etag_parsing() {
        assert_eq!(parse_etags("\"12\""), vec![Some(12)]);
        assert_eq!(
            parse_etags("W/\"3\", 4, \"x\""),
            vec![Some(3), Some(4), None]
        );
    }

    #[test]
    fn idempotency_key_rules() {
        let mut h = HeaderMap::new();
        assert_eq!(idempotency_key(&h).expect("absent"), None);
        h.insert("idempotency-key", "abc-123".parse().expect("hv"));
        assert!(idempotency_key(&h).expect("ok").is_some());
        h.insert("idempotency-key", "a b".parse().expect("hv"));
        assert!(idempotency_key(&h).is_err());
        h.insert("idempotency-key", "x".repeat(256).parse().expect("hv"));
        assert!(idempotency_key(&h).is_err());
    }
}
