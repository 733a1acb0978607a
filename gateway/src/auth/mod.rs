//! Authentication and authorization of every request (design note 0012).
//!
//! # Layout
//!
//! - `key`: the key format (`tkv_<id>_<secret>`) and its stored digest.
//! - [`store`]: the key set in object storage ([`KeyStore`]: versions created only, last-use
//!   objects).
//! - `cache`: a gateway's copy of the key set, polled for changes (revocation delay).
//! - `limiter`: failed attempts per client address.
//! - `handlers`: `/admin/v1/keys`.
//! - `openapi`: security schemes and per-operation requirements of the contract.
//!
//! # Enforcement
//!
//! [`authenticate`] wraps the whole router (inside the edge layers) and classifies each
//! request by its raw path ([`classify`]): open paths pass; `/v1/*` needs `read` (`GET`,
//! `HEAD`) or `write`; everything else `admin`. The credential is an API key, the cluster
//! secret, or a session cookie (both `admin`; `crate::admin::auth`). The resulting
//! [`Caller`] travels in the request's extensions; handlers that name keys check it against
//! the key's prefixes ([`Caller::allow_key`]; the key path extractor does so for every
//! single-key route).

mod cache;
pub mod handlers;
mod key;
mod limiter;
pub(crate) mod openapi;
pub mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use tierkv_engine::metrics::{Counter, Observed, Registry};
use tierkv_engine::store::ObjStore;

pub use self::cache::CachedKey;
use self::cache::{KeyCache, KeyRefusal};
pub use self::key::KEY_PREFIX;
use self::limiter::FailureLimiter;
pub use self::store::{KeyRecord, KeySet, KeySpec, KeyStore, KeyStoreError, Role};
use crate::admin::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// Settings of authentication (`[gateway.auth]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthOptions {
    /// Require credentials on `/v1/*`, `/admin/*` and `/metrics`. `false` is for local
    /// experiments only: processes refuse to start with it unless the public listener is a
    /// loopback address. Default: true.
    pub enabled: bool,
    /// How often the key set in object storage is checked for changes: the revocation
    /// delay (humantime). Default: 1s.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// After this long without a successful read of the key set, API keys are refused
    /// (503) until a read succeeds (humantime). Default: 30s.
    #[serde(with = "humantime_serde")]
    pub max_stale: Duration,
    /// Wrong credentials one client address may present at once before it is refused
    /// (429). Default: 20.
    pub failure_burst: u32,
    /// One more wrong credential is allowed per this long (humantime). Default: 1s.
    #[serde(with = "humantime_serde")]
    pub failure_refill: Duration,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval: Duration::from_secs(1),
            max_stale: Duration::from_secs(30),
            failure_burst: 20,
            failure_refill: Duration::from_secs(1),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Caller {
    /// The cluster secret as a bearer token (`admin`).
    Secret,
    /// A dashboard session cookie (`admin`).
    Session {
        /// Expiry of the session, unix ms.
        expires_at_ms: u64,
    },
    /// An API key.
    Key(Arc<CachedKey>),
    /// Authentication is turned off (`gateway.auth.enabled = false`).
    Open,
}

impl Caller {
    /// The caller's role.
    #[must_use]
    pub fn role(&self) -> Role {
        match self {
            Self::Key(k) => k.record.role,
            Self::Secret | Self::Session { .. } | Self::Open => Role::Admin,
        }
    }

    /// `403 forbidden` unless the caller may touch user key `key` (for a listing: every
    /// key under prefix `key`).
    pub(crate) fn allow_key(&self, key: &[u8]) -> Result<(), ApiError> {
        match self {
            Self::Key(k) if !k.allows_key(key) => Err(ApiError::Forbidden {
                detail: format!("API key {} is limited to other key prefixes", k.record.id),
            }),
            _ => Ok(()),
        }
    }

    /// How the admin API's `session` route describes the caller.
    pub(crate) fn principal(&self) -> Principal {
        match self {
            Self::Secret => Principal::Bearer,
            Self::Session { expires_at_ms } => Principal::Session {
                expires_at_ms: *expires_at_ms,
            },
            Self::Key(_) => Principal::Key,
            Self::Open => Principal::Open,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Set by `authenticate` on every protected path; absent only on open paths.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized { detail: MISSING })
    }
}

/// What a path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Nothing.
    Open,
    /// A caller with this role.
    Role(Role),
}

/// THE classification of requests (design note 0012, "Where it is enforced"), on the raw
/// path the router matches: deny by default.
pub(crate) fn classify(method: &Method, path: &str) -> Need {
    let open = path == "/"
        || path == "/openapi.yaml"
        || path.starts_with("/health/")
        || path == "/ui"
        || path.starts_with("/ui/")
        || (path == "/admin/v1/session" && (method == Method::POST || method == Method::DELETE));
    if open {
        Need::Open
    } else if path == "/v1" || path.starts_with("/v1/") {
        if method == Method::GET || method == Method::HEAD {
            Need::Role(Role::Read)
        } else {
            Need::Role(Role::Write)
        }
    } else {
        Need::Role(Role::Admin)
    }
}

const MISSING: &str = "this route needs an API key (or the cluster secret) as a bearer token";
const WRONG: &str = "the credentials are not valid";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Why a request was refused, as counted.
#[derive(Debug, Clone, Copy)]
enum Reason {
    Missing,
    Malformed,
    Unknown,
    Forbidden,
    RateLimited,
    Stale,
}

impl Reason {
    const ALL: [Self; 6] = [
        Self::Missing,
        Self::Malformed,
        Self::Unknown,
        Self::Forbidden,
        Self::RateLimited,
        Self::Stale,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::Stale => "stale",
        }
    }
}

/// Authentication state of a gateway.
pub(crate) struct AuthState {
    keys: Arc<OnceLock<Arc<KeyCache>>>,
    limiter: FailureLimiter,
    failures: Family<ReasonLabels, Counter>,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("keys", &self.keys.get())
            .finish_non_exhaustive()
    }
}

impl AuthState {
    /// Registers `tierkv_gateway_auth_failures_total{reason}`, `tierkv_gateway_auth_keys`
    /// and `tierkv_gateway_auth_keyset_version`.
    pub(crate) fn new(opts: &AuthOptions, registry: &mut Registry) -> Self {
        let failures: Family<ReasonLabels, Counter> = Family::default();
        for r in Reason::ALL {
            // Every reason is shown from the start, at 0.
            let _ = failures.get_or_create(&ReasonLabels { reason: r.as_str() });
        }
        registry.register(
            "tierkv_gateway_auth_failures",
            "Requests refused by authentication or authorization, by reason",
            failures.clone(),
        );
        let keys: Arc<OnceLock<Arc<KeyCache>>> = Arc::new(OnceLock::new());
        let k = Arc::clone(&keys);
        registry.register(
            "tierkv_gateway_auth_keys",
            "API keys in the key set this gateway uses",
            Observed::gauge(move || k.get().map_or(0, |c| c.len() as u64)),
        );
        let k = Arc::clone(&keys);
        registry.register(
            "tierkv_gateway_auth_keyset_version",
            "Version of the key set this gateway uses (0: none read)",
            Observed::gauge(move || k.get().map_or(0, |c| c.version())),
        );
        let per_sec = 1.0 / opts.failure_refill.as_secs_f64().max(0.001);
        Self {
            keys,
            limiter: FailureLimiter::new(opts.failure_burst, per_sec),
            failures,
        }
    }

    fn count(&self, r: Reason) {
        self.failures
            .get_or_create(&ReasonLabels { reason: r.as_str() })
            .inc();
    }

    pub(crate) fn cache(&self) -> Result<&Arc<KeyCache>, ApiError> {
        self.keys.get().ok_or_else(|| ApiError::StorageUnavailable {
            cause: "API keys are not enabled on this gateway".to_owned(),
        })
    }
}

impl AppState {
    /// Reads the key set from `store` and keeps it current (a task polling every
    /// `gateway.auth.poll_interval`). Call once, before serving, inside a tokio runtime;
    /// later calls change nothing.
    ///
    /// # Errors
    ///
    /// When the key set cannot be read.
    pub async fn enable_keys(&self, store: ObjStore) -> Result<(), KeyStoreError> {
        let auth = &self.inner.auth;
        if auth.keys.get().is_some() {
            return Ok(());
        }
        let opts = &self.options().auth;
        let cache = Arc::new(
            KeyCache::load(KeyStore::new(store), opts.poll_interval, opts.max_stale).await?,
        );
        if auth.keys.set(Arc::clone(&cache)).is_ok() {
            tokio::spawn(KeyCache::run(Arc::downgrade(&cache)));
        }
        Ok(())
    }

    /// Who presents `headers` from `ip`, or why not.
    fn identify(&self, headers: &HeaderMap, ip: IpAddr) -> Result<Caller, ApiError> {
        let auth = &self.inner.auth;
        if let Some(retry_after_secs) = auth.limiter.blocked(ip) {
            auth.count(Reason::RateLimited);
            return Err(ApiError::TooManyFailures { retry_after_secs });
        }
        let fail = |reason: Reason| {
            auth.count(reason);
            auth.limiter.record_failure(ip);
            ApiError::Unauthorized { detail: WRONG }
        };
        let now = self.now_millis();
        if let Some(v) = headers.get(AUTHORIZATION) {
            let Some(token) = v.to_str().ok().and_then(|s| s.strip_prefix("Bearer ")) else {
                return Err(fail(Reason::Malformed));
            };
            if let Some((id, secret)) = key::parse(token) {
                let Some(cache) = auth.keys.get() else {
                    return Err(fail(Reason::Unknown));
                };
                return match cache.check(id, secret, now) {
                    Ok(k) => Ok(Caller::Key(k)),
                    Err(KeyRefusal::Unknown) => Err(fail(Reason::Unknown)),
                    Err(KeyRefusal::Stale) => {
                        auth.count(Reason::Stale);
                        Err(ApiError::StorageUnavailable {
                            cause: "the key set could not be read for longer than \
                                    gateway.auth.max_stale"
                                .to_owned(),
                        })
                    }
                };
            }
        } else if !headers.contains_key(COOKIE) {
            auth.count(Reason::Missing);
            return Err(ApiError::Unauthorized { detail: MISSING });
        }
        // The cluster secret or a session cookie.
        let Some(admin) = self.inner.admin.credentials() else {
            return Err(fail(Reason::Unknown));
        };
        match admin.authorize(headers, now) {
            Ok(Principal::Session { expires_at_ms }) => Ok(Caller::Session { expires_at_ms }),
            Ok(_) => Ok(Caller::Secret),
            Err(ApiError::Unauthorized { detail }) if detail == crate::admin::MISSING_DETAIL => {
                // Cookies, but not ours.
                auth.count(Reason::Missing);
                Err(ApiError::Unauthorized { detail: MISSING })
            }
            Err(_) => Err(fail(Reason::Unknown)),
        }
    }
}

/// The middleware: classifies the request, authenticates it unless its path is open, checks
/// the role, and leaves the [`Caller`] in the request for the handlers.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Need::Role(need) = classify(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    if !state.options().auth.enabled {
        req.extensions_mut().insert(Caller::Open);
        return next.run(req).await;
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let caller = match state.identify(req.headers(), ip) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let auth = &state.inner.auth;
    if !caller.role().covers(need) {
        auth.count(Reason::Forbidden);
        let who = match &caller {
            Caller::Key(k) => k.record.id.clone(),
            _ => "this credential".to_owned(),
        };
        return ApiError::Forbidden {
            detail: format!(
                "API key {who} has the role `{}`; this request needs `{}`",
                caller.role().as_str(),
                need.as_str()
            ),
        }
        .into_response();
    }
    req.extensions_mut().insert(caller);
    let res = next.run(req).await;
    if res.status() == StatusCode::FORBIDDEN {
        auth.count(Reason::Forbidden);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_denies_by_default() {
        let g = Method::GET;
        let p = Method::POST;
        for (m, path, need) in [
            (&g, "/health/live", Need::Open),
            (&g, "/health/ready", Need::Open),
            (&g, "/openapi.yaml", Need::Open),
            (&g, "/ui/", Need::Open),
            (&g, "/ui/assets/x.js", Need::Open),
            (&g, "/", Need::Open),
            (&p, "/admin/v1/session", Need::Open),
            (&Method::DELETE, "/admin/v1/session", Need::Open),
            (&g, "/admin/v1/session", Need::Role(Role::Admin)),
            (&g, "/v1/kv/a", Need::Role(Role::Read)),
            (&Method::HEAD, "/v1/kv/a", Need::Role(Role::Read)),
            (&g, "/v1/kv", Need::Role(Role::Read)),
            (&Method::PUT, "/v1/kv/a", Need::Role(Role::Write)),
            (&Method::DELETE, "/v1/kv/a", Need::Role(Role::Write)),
            (&p, "/v1/batch", Need::Role(Role::Write)),
            (&g, "/v1/anything-new", Need::Role(Role::Read)),
            (&g, "/admin/v1/keys", Need::Role(Role::Admin)),
            (&g, "/admin/v1/members", Need::Role(Role::Admin)),
            (&g, "/metrics", Need::Role(Role::Admin)),
            (&g, "/nope", Need::Role(Role::Admin)),
            (&g, "//v1/kv/a", Need::Role(Role::Admin)),
            (&g, "/health", Need::Role(Role::Admin)),
            (&g, "/v1x", Need::Role(Role::Admin)),
        ] {
            assert_eq!(classify(m, path), need, "{m} {path}");
        }
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.covers(Role::Write) && Role::Write.covers(Role::Read));
        assert!(!Role::Read.covers(Role::Write) && !Role::Write.covers(Role::Admin));
    }
}
