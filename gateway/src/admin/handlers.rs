//! The admin routes. Every one but `POST`/`DELETE /admin/v1/session` takes [`Admin`]: a
//! caller of role `admin` (authenticated by `crate::auth`'s middleware), else `401`/`403`.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{self, Credential, Principal};
use super::model::{
    CacheTier, ClusterOverview, EventList, GatewayInfo, HotKey, HotKeys, NodeList, Session,
    ShardList, SignIn, Traffic,
};
use super::report;
use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::extract::{self, AppQuery, NoQuery, RawBody};
use crate::state::AppState;

/// An authorized admin request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admin(pub(crate) Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.role().covers(Role::Admin) {
            return Err(ApiError::Forbidden {
                detail: "this route needs the role `admin`".to_owned(),
            });
        }
        Ok(Self(caller.principal()))
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    session,
    sign_in,
    sign_out,
    cluster,
    nodes,
    shards,
    events,
    traffic,
    hot_keys,
    super::members::add_member,
    super::members::drain_member,
    super::members::remove_member,
    super::members::replace_member,
    super::members::moves
))]
pub(crate) struct ApiDocAdmin;

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub(crate) fn json<T: serde::Serialize>(v: T) -> Response {
    no_store(Json(v).into_response())
}

/// Who the caller is signed in as.
#[utoipa::path(get, path = "/admin/v1/session", tag = "admin",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Signed in.", body = Session)))]
pub(crate) async fn session(Admin(who): Admin, AppQuery(_none): AppQuery<NoQuery>) -> Response {
    json(match who {
        Principal::Bearer => Session {
            method: "bearer".to_owned(),
            expires_at_ms: None,
        },
        Principal::Session { expires_at_ms } => Session {
            method: "cookie".to_owned(),
            expires_at_ms: Some(expires_at_ms),
        },
        Principal::Key => Session {
            method: "key".to_owned(),
            expires_at_ms: None,
        },
        Principal::Open => Session {
            method: "open".to_owned(),
            expires_at_ms: None,
        },
    })
}

/// Signs in: with the cluster secret, or a one-time login token (the link `tierkv dev`
/// prints); answers a session cookie (`tierkv_admin`: HttpOnly, SameSite=Strict, 12 h).
#[utoipa::path(post, path = "/admin/v1/session", tag = "admin",
    request_body(content = SignIn, content_type = "application/json",
        description = "Exactly one of `secret` and `token`."),
    responses((status = 204, description = "Signed in: `Set-Cookie` holds the session.",
        headers(("Set-Cookie" = String, description = "`tierkv_admin=...; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200`")))))]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
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
    let req: SignIn = extract::parse_json(&body)?;
    let credential = match (&req.secret, &req.token) {
        (Some(s), None) => Credential::Secret(s),
        (None, Some(t)) => Credential::Token(t),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of `secret` and `token`",
            ));
        }
    };
    let auth = state.inner.admin.auth()?;
    let (cookie, _) = auth.sign_in(credential, state.now_millis())?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    let set = HeaderValue::from_str(&auth::set_cookie(&cookie))
        .map_err(|_| ApiError::internal("session cookie is not a header value"))?;
    res.headers_mut().insert(header::SET_COOKIE, set);
    Ok(no_store(res))
}

/// Signs out: clears the session cookie in this browser.
#[utoipa::path(delete, path = "/admin/v1/session", tag = "admin",
    responses((status = 204, description = "The cookie is cleared.",
        headers(("Set-Cookie" = String, description = "`tierkv_admin=; Max-Age=0`")))))]
pub(crate) async fn sign_out(AppQuery(_none): AppQuery<NoQuery>) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::clear_cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    no_store(res)
}

/// Cluster overview: health, shard map, members with their last heartbeat, versions and
/// leader counts, replica roles.
#[utoipa::path(get, path = "/admin/v1/cluster", tag = "admin",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The overview.", body = ClusterOverview)))]
pub(crate) async fn cluster(
    State(state): State<AppState>,
    _auth: Admin,
    AppQuery(_none): AppQuery<NoQuery>,
) -> Result<Response, ApiError> {
    let snap = state.admin_snapshot().await?;
    let gateway = GatewayInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at_ms: state.inner.admin.started_at_ms,
        now_ms: state.now_millis(),
    };
    Ok(json(report::overview(&snap.gathered, gateway)))
}

/// Per node: shards led and followed, WAL, memtable and unflushed bytes, segments, block
/// cache hit ratio, load, last heartbeat.
#[utoipa::path(get, path = "/admin/v1/nodes", tag = "admin",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Every member.", body = NodeList)))]
pub(crate) async fn nodes(
    State(state): State<AppState>,
    _auth: Admin,
    AppQuery(_none): AppQuery<NoQuery>,
) -> Result<Response, ApiError> {
    let snap = state.admin_snapshot().await?;
    Ok(json(report::nodes(&snap.gathered, &snap.rates)))
}

/// Per shard: leader, epoch, replicas with roles, sequence numbers and lag, segments, memory,
/// load.
#[utoipa::path(get, path = "/admin/v1/shards", tag = "admin",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Every shard.", body = ShardList)))]
pub(crate) async fn shards(
    State(state): State<AppState>,
    _auth: Admin,
    AppQuery(_none): AppQuery<NoQuery>,
) -> Result<Response, ApiError> {
    let snap = state.admin_snapshot().await?;
    Ok(json(report::shards(&snap.gathered, &snap.rates)))
}

/// Query of `GET /admin/v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    /// Most events returned, newest first: 1..=1000. Default: 200.
    #[param(minimum = 1, maximum = 1000, value_type = Option<u32>)]
    limit: Option<u64>,
}

/// Recent events: leader changes, handovers, node starts, WAL failures (from the nodes) and
/// members that stopped or resumed answering (from this gateway), newest first.
#[utoipa::path(get, path = "/admin/v1/events", tag = "admin",
    security(("bearer" = []), ("session" = [])),
    params(EventsQuery),
    responses((status = 200, description = "Newest first.", body = EventList)))]
pub(crate) async fn events(
    State(state): State<AppState>,
    _auth: Admin,
    AppQuery(q): AppQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let limit = match q.limit {
        None => 200,
        Some(l @ 1..=1000) => usize::try_from(l).unwrap_or(1000),
        Some(_) => return Err(ApiError::invalid("limit must be between 1 and 1000")),
    };
    let snap = state.admin_snapshot().await?;
    Ok(json(report::events(&snap.gathered, limit)))
}

/// This gateway's `/v1/` traffic over the last ten minutes, every two seconds: request
/// rate, p50/p99 latency, 4xx and 5xx rates.
#[utoipa::path(get, path = "/admin/v1/traffic", tag = "admin",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Oldest point first.", body = Traffic)))]
pub(crate) async fn traffic(
    State(state): State<AppState>,
    _auth: Admin,
    AppQuery(_none): AppQuery<NoQuery>,
) -> Response {
    state.start_admin_sampler();
    json(state.inner.admin.traffic.traffic())
}

/// Keys per list when the request gives no `limit`.
const DEFAULT_HOT_KEYS: u64 = 20;
/// Largest `limit` accepted.
const MAX_HOT_KEYS: u64 = 100;

/// Query of `GET /admin/v1/hot-keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HotKeysQuery {
    /// Most keys per list: 1..=100. Default: 20.
    #[param(minimum = 1, maximum = 100, value_type = Option<u32>)]
    limit: Option<u64>,
}

/// The hottest keys this gateway sees (reads and writes apart, space-saving counts over a
/// sliding window; design note 0008) and its value cache's hits per tier (the disk tier only
/// when the gateway has one).
#[utoipa::path(get, path = "/admin/v1/hot-keys", tag = "admin",
    security(("bearer" = []), ("session" = [])),
    params(HotKeysQuery),
    responses((status = 200, description = "Hot keys and cache figures.", body = HotKeys)))]
pub(crate) async fn hot_keys(
    _auth: Admin,
    State(state): State<AppState>,
    AppQuery(q): AppQuery<HotKeysQuery>,
) -> Result<Response, ApiError> {
    let limit = match q.limit {
        None => DEFAULT_HOT_KEYS,
        Some(l) if (1..=MAX_HOT_KEYS).contains(&l) => l,
        Some(_) => return Err(ApiError::invalid("limit must be between 1 and 100")),
    };
    let hot = state.hot_keys();
    let limit = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .min(hot.capacity());
    let listed = |access| {
        hot.top(access, limit)
            .into_iter()
            .map(|h| {
                let (key, key_encoding) = crate::keys::encode(&h.key);
                HotKey {
                    key,
                    key_encoding,
                    count: h.count,
                    error: h.error,
                }
            })
            .collect()
    };
    let reads = state.reads();
    let cache = if reads.caching() {
        let t = reads.tier_stats();
        let mut tiers = vec![CacheTier::new("memory", t.memory_hits, t.memory_lookups)];
        if t.disk {
            tiers.push(CacheTier::new("disk", t.disk_hits, t.disk_lookups));
        }
        tiers
    } else {
        Vec::new()
    };
    Ok(json(HotKeys {
        available: true,
        window_secs: Some(u32::try_from(hot.window().as_secs()).unwrap_or(u32::MAX)),
        reads: listed(crate::limits::Access::Read),
        writes: listed(crate::limits::Access::Write),
        cache,
    }))
}
