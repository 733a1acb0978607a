//! `GET`/`HEAD`/`PUT`/`DELETE /v1/kv/{key}`: one key, raw value bodies.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{self, AppQuery, IfNoneMatch, KeyPath, NoQuery, RawBody, ReadQuery};
use crate::idempotency::{Idem, PutFingerprint};
use crate::keys::{self, Encoding};
use crate::limits::Access;
use crate::ops::{self, PutRequest, UserCondition, WriteOutcome};
use crate::state::AppState;

/// Content type of values stored without one.
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// Version header.
pub(crate) const VERSION_HEADER: &str = "x-tierkv-version";
/// Expiry header (unix millis).
pub(crate) const EXPIRES_HEADER: &str = "x-tierkv-expires-at";
/// How a read was answered: `hit`, `revalidated`, `leased` or `miss` (design notes 0008,
/// 0014).
pub(crate) const CACHE_HEADER: &str = "x-tierkv-cache";

/// Result of a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WriteResult {
    /// The key (see `key_encoding`).
    pub key: String,
    /// `utf8`, or `base64` when the key is not valid UTF-8.
    pub key_encoding: Encoding,
    /// Version of the write (also in `ETag`).
    pub version: u64,
    /// Absolute expiry in unix milliseconds, if the value expires.
    pub expires_at: Option<u64>,
}

/// A raw value in OpenAPI: `type: string, format: binary`.
pub(crate) struct RawValue;

impl utoipa::PartialSchema for RawValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for RawValue {}

/// TTL of a PUT: at most one of them (other parameters are `invalid_request`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct TtlQuery {
    /// Seconds until the value expires (1..=315360000). Not with `expires_at`.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 315360000)]
    ttl: Option<String>,
    /// Absolute expiry, unix seconds (in the future, at most 315360000 s away). Not with
    /// `ttl`.
    #[param(value_type = Option<u64>, minimum = 1)]
    expires_at: Option<String>,
}

fn etag(version: u64) -> HeaderValue {
    // `"<version>"` written in place (at most 20 digits): one allocation, the header's.
    let mut buf = [b'"'; 22];
    let mut n = version;
    let mut start = 21;
    loop {
        start -= 1;
        let digit = (n % 10) as u8;
        if let Some(b) = buf.get_mut(start) {
            *b = b'0' + digit;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let quoted = buf.get(start - 1..).unwrap_or(b"\"0\"");
    HeaderValue::from_bytes(quoted).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn write_response(key: &[u8], o: &WriteOutcome) -> Response {
    let (key, key_encoding) = keys::encode(key);
    let mut res = if o.status == StatusCode::NO_CONTENT {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            o.status,
            Json(WriteResult {
                key,
                key_encoding,
                version: o.version,
                expires_at: o.expires_at,
            }),
        )
            .into_response()
    };
    res.headers_mut().insert(header::ETAG, etag(o.version));
    res
}

/// Reads a value.
#[utoipa::path(
    get, path = "/v1/kv/{key}", tag = "kv",
    params(
        ("key" = String, Path, min_length = 1, max_length = 1024, description = "The key, 1..=1024 bytes, percent-encoded (`%2F` for `/`)."),
        ("If-None-Match" = Option<String>, Header, description = "`\"<version>\"` or `*`: answer 304 when it matches."),
        ReadQuery,
    ),
    responses(
        (status = 200, description = "The value, with the Content-Type it was stored with (application/octet-stream when none was given).",
            content(
                (inline(RawValue) = "application/octet-stream"),
                (inline(RawValue) = "*/*"),
            ),
            headers(
                ("ETag" = String, description = "`\"<version>\"`"),
                ("X-TierKV-Version" = u64, description = "The version."),
                ("X-TierKV-Expires-At" = Option<u64>, description = "Expiry in unix milliseconds, when set."),
                ("X-TierKV-Cache" = String, description = "How the gateway answered: `hit` (from its cache, no round trip; eventual reads only), `revalidated` (the shard's leader confirmed the cached version), `leased` (a strong read from its cache, no round trip, under a read lease the shard's leader granted with an earlier revalidation), `miss` (the value came from the node)."),
            )),
        (status = 304, description = "The version matches If-None-Match.",
            headers(("ETag" = String, description = "`\"<version>\"`"))),
    )
)]
pub(crate) async fn get_kv(
    State(state): State<AppState>,
    KeyPath(key): KeyPath,
    if_none_match: IfNoneMatch,
    AppQuery(read): AppQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let want = extract::read_want(&read, state.reads().default_staleness())?;
    let inm = if_none_match.as_str()?;
    state.admit(&key, Access::Read)?;
    let out = ops::read(&state, &key, want).await?;
    let cache_header = HeaderValue::from_static(out.answer.as_str());
    let entry = out.value.ok_or(ApiError::KeyNotFound)?;
    let version = entry.version;
    if let Some(inm) = inm {
        let any = inm.trim() == "*";
        if any || extract::parse_etags(inm).contains(&Some(version)) {
            let mut res = StatusCode::NOT_MODIFIED.into_response();
            res.headers_mut().insert(header::ETAG, etag(version));
            res.headers_mut()
                .insert(HeaderName::from_static(CACHE_HEADER), cache_header);
            return Ok(res);
        }
    }
    let ct = entry
        .content_type
        .and_then(|c| HeaderValue::from_maybe_shared(c).ok())
        .unwrap_or(HeaderValue::from_static(DEFAULT_CONTENT_TYPE));
    let mut res = (StatusCode::OK, entry.value).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(header::ETAG, etag(version));
    h.insert(
        HeaderName::from_static(VERSION_HEADER),
        HeaderValue::from(version),
    );
    h.insert(HeaderName::from_static(CACHE_HEADER), cache_header);
    if let Some(at) = entry.expires_at {
        h.insert(
            HeaderName::from_static(EXPIRES_HEADER),
            HeaderValue::from(at),
        );
    }
    Ok(res)
}

/// Reads a value's headers (documentation only: `GET` serves `HEAD`).
#[utoipa::path(
    head, path = "/v1/kv/{key}", tag = "kv",
    params(
        ("key" = String, Path, min_length = 1, max_length = 1024, description = "The key, 1..=1024 bytes, percent-encoded."),
        ("If-None-Match" = Option<String>, Header, description = "`\"<version>\"` or `*`."),
    ),
    responses(
        (status = 200, description = "The key exists; same headers as GET, no body.",
            headers(
                ("ETag" = String, description = "`\"<version>\"`"),
                ("X-TierKV-Version" = u64, description = "The version."),
                ("X-TierKV-Expires-At" = Option<u64>, description = "Expiry in unix milliseconds."),
            )),
        (status = 304, description = "The version matches If-None-Match."),
    )
)]
#[allow(dead_code)]
pub(crate) async fn head_kv() {}

/// Writes a value.
#[utoipa::path(
    put, path = "/v1/kv/{key}", tag = "kv",
    params(
        ("key" = String, Path, min_length = 1, max_length = 1024, description = "The key, 1..=1024 bytes, percent-encoded (`%2F` for `/`)."),
        TtlQuery,
        ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#, description = "`\"<version>\"` (or `*`): write only if that is the current version (412 otherwise)."),
        ("If-None-Match" = Option<String>, Header, pattern = r"^\*$", description = "`*`: write only if the key does not exist (412 otherwise)."),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1..=255 visible ASCII characters; a retry returns the first result."),
    ),
    request_body(content = inline(RawValue), content_type = "application/octet-stream",
        description = "The raw value (any Content-Type; it is stored and returned on GET)."),
    responses(
        (status = 201, description = "Created.", body = WriteResult,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 200, description = "Replaced a live value.", body = WriteResult,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
    )
)]
pub(crate) async fn put_kv(
    State(state): State<AppState>,
    KeyPath(key): KeyPath,
    headers: HeaderMap,
    AppQuery(q): AppQuery<TtlQuery>,
    RawBody(value): RawBody,
) -> Result<Response, ApiError> {
    let idem_key = extract::idempotency_key(&headers)?;
    let if_match = extract::if_match(&headers)?;
    let create_only = extract::if_none_match_any(&headers)?;
    let content_type = extract::header_str(&headers, &header::CONTENT_TYPE)?
        .map(extract::media_type)
        .transpose()?;
    let expires_at = ops::expiry(&state, q.ttl.as_deref(), q.expires_at.as_deref())?;
    state.admit(&key, Access::Write)?;
    // Conditions are judged only once every input is known to be valid (400 before 412).
    let condition = match (if_match, create_only) {
        // RFC 9110 order: If-Match first; if it holds the key exists, so `If-None-Match: *`
        // fails. Either way the answer is 412.
        (Some(_), true) => {
            return Err(ApiError::PreconditionFailed {
                detail: "If-Match and If-None-Match: * cannot both hold",
            });
        }
        (Some(m), false) => UserCondition::IfMatch(m),
        (None, true) => UserCondition::IfNoneMatchAny,
        (None, false) => UserCondition::None,
    };
    let idem = idem_key.map(|k| {
        Idem::for_put(
            k,
            &PutFingerprint {
                key: &key,
                value: &value,
                content_type: content_type.as_deref(),
                condition,
                ttl: q.ttl.as_deref(),
                expires_at: q.expires_at.as_deref(),
            },
        )
    });
    let req = PutRequest {
        key: key.clone(),
        value,
        content_type,
        expires_at,
        condition,
    };
    let outcome = ops::put(&state, req, idem.as_ref()).await?;
    Ok(write_response(&key, &outcome))
}

/// Deletes a key (204 also when it was absent).
#[utoipa::path(
    delete, path = "/v1/kv/{key}", tag = "kv",
    params(
        ("key" = String, Path, min_length = 1, max_length = 1024, description = "The key, 1..=1024 bytes, percent-encoded."),
        ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#, description = "`\"<version>\"` (or `*`): delete only if that is the current version."),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1..=255 visible ASCII characters; a retry returns the first result."),
    ),
    responses(
        (status = 204, description = "Deleted (or was absent).",
            headers(("ETag" = String, description = "`\"<version>\"` of the tombstone"))),
    )
)]
pub(crate) async fn delete_kv(
    State(state): State<AppState>,
    KeyPath(key): KeyPath,
    headers: HeaderMap,
    AppQuery(NoQuery {}): AppQuery<NoQuery>,
) -> Result<Response, ApiError> {
    let idem_key = extract::idempotency_key(&headers)?;
    let if_match = extract::if_match(&headers)?;
    let idem = idem_key.map(|k| Idem::for_delete(k, &key, if_match));
    state.admit(&key, Access::Write)?;
    let outcome = ops::delete(&state, &key, if_match, idem.as_ref()).await?;
    Ok(write_response(&key, &outcome))
}

/// `/v1/kv/` with no key.
pub(crate) async fn empty_key() -> ApiError {
    ApiError::KeyEmpty
}

#[cfg(test)]
mod tests {
    use super::etag;

    #[test]
    fn etags_quote_the_version() {
        for v in [0, 7, 10, 12_345, u64::MAX] {
            assert_eq!(etag(v).to_str().ok(), Some(format!("\"{v}\"").as_str()));
        }
    }
}
