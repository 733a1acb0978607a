//! Key management (design note 0012): `POST`/`GET /admin/v1/keys`, `DELETE
//! /admin/v1/keys/{id}` (the `keys` tag of `openapi.yaml`). Role `admin`, like the rest of
//! `/admin/`; the middleware has checked it, [`Admin`] checks it again.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::{KeySpec, Role};
use crate::admin::handlers::Admin;
use crate::error::ApiError;
use crate::extract::{self, AppQuery, NoQuery, RawBody};
use crate::state::AppState;

/// The routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/keys", get(list_keys).post(create_key))
        .route("/admin/v1/keys/{id}", delete(revoke_key))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_key, list_keys, revoke_key),
    components(schemas(Role, CreateKey, CreatedKey, KeyInfo, KeyList)),
    tags((name = "keys", description = "API keys (design note 0012): create (the key is shown once), list (never a secret), revoke (every gateway refuses the key within about a second: `gateway.auth.poll_interval`). Role `admin`."))
)]
pub(crate) struct ApiDocKeys;

/// `POST /admin/v1/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What the key is for: 1..=128 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Key prefixes it is limited to (not for `admin` keys: 400); none: every key.
    #[serde(default)]
    #[schema(max_items = 16, inline, value_type = Vec<Prefix>)]
    pub prefixes: Vec<String>,
}

/// One key prefix: 1..=256 characters.
#[derive(ToSchema)]
#[schema(min_length = 1, max_length = 256)]
#[allow(dead_code)]
struct Prefix(String);

/// A key just created: the only answer that ever holds `key`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    /// The key's public id.
    pub id: String,
    /// The whole key, `tkv_<id>_<secret>`: send it as `Authorization: Bearer <key>`. It is
    /// not stored and cannot be shown again.
    pub key: String,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its prefixes.
    pub prefixes: Vec<String>,
    /// When it was made, unix milliseconds.
    pub created_at_ms: u64,
}

/// One key, without its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    /// The key's public id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its prefixes (empty: every key).
    pub prefixes: Vec<String>,
    /// When it was made, unix milliseconds.
    pub created_at_ms: u64,
    /// When a gateway last accepted it, unix milliseconds (other gateways' use is written
    /// once a minute); null if never.
    pub last_used_at_ms: Option<u64>,
}

/// `GET /admin/v1/keys`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    /// Every key, oldest first.
    pub keys: Vec<KeyInfo>,
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Creates an API key; the answer holds the key, once.
#[utoipa::path(post, path = "/admin/v1/keys", tag = "keys",
    request_body(content = CreateKey, content_type = "application/json"),
    responses((status = 201, description = "Created: `key` is shown only now.", body = CreatedKey)))]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    _admin: Admin,
    AppQuery(_none): AppQuery<NoQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let is_json = extract::header_str(&headers, &header::CONTENT_TYPE)?
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    let req: CreateKey = extract::parse_json(&body)?;
    let cache = state.inner.auth.cache()?;
    let spec = KeySpec {
        name: req.name,
        role: req.role,
        prefixes: req.prefixes,
    };
    let (record, key) = cache.store().create(&spec, state.now_millis()).await?;
    // Usable on this gateway at once; the others see it at their next poll.
    if let Ok(set) = cache.store().latest().await {
        cache.adopt(set);
    }
    let created = CreatedKey {
        id: record.id,
        key,
        name: record.name,
        role: record.role,
        prefixes: record.prefixes,
        created_at_ms: record.created_at_ms,
    };
    Ok(no_store(
        (StatusCode::CREATED, Json(created)).into_response(),
    ))
}

/// Every API key (never a secret nor a hash), with its last use.
#[utoipa::path(get, path = "/admin/v1/keys", tag = "keys",
    responses((status = 200, description = "Oldest first.", body = KeyList)))]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    _admin: Admin,
    AppQuery(_none): AppQuery<NoQuery>,
) -> Result<Response, ApiError> {
    let cache = state.inner.auth.cache()?;
    let set = cache.store().latest().await?;
    let mut usage = cache.store().usage(state.now_millis()).await?;
    for (id, at) in cache.local_usage() {
        let e = usage.entry(id).or_default();
        *e = (*e).max(at);
    }
    let keys = set
        .keys
        .into_iter()
        .map(|r| KeyInfo {
            last_used_at_ms: usage.get(&r.id).copied(),
            id: r.id,
            name: r.name,
            role: r.role,
            prefixes: r.prefixes,
            created_at_ms: r.created_at_ms,
        })
        .collect();
    Ok(no_store(Json(KeyList { keys }).into_response()))
}

/// Revokes an API key: every gateway refuses it within `gateway.auth.poll_interval` (plus
/// one object-store read).
#[utoipa::path(delete, path = "/admin/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "The key's id (16 hex characters).", pattern = "^[0-9a-f]{16}$")),
    responses((status = 204, description = "Revoked.")))]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    _admin: Admin,
    AppQuery(_none): AppQuery<NoQuery>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !super::key::is_id(&id) {
        return Err(ApiError::invalid("a key id is 16 lowercase hex characters"));
    }
    let cache = state.inner.auth.cache()?;
    if !cache.store().revoke(&id).await? {
        return Err(ApiError::NoSuchApiKey);
    }
    if let Ok(set) = cache.store().latest().await {
        cache.adopt(set);
    }
    Ok(no_store(StatusCode::NO_CONTENT.into_response()))
}
