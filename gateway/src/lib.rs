//! TierKV gateway: the public HTTP/JSON API (`/v1/...`), health, metrics and the OpenAPI
//! contract, over a [`Backend`] that reaches the shards.
//!
//! # Layout
//!
//! - [`options`]: [`GatewayOptions`], the API's limits and timeouts with their defaults.
//! - [`problem`]: the problem+json body and the stable [`ErrorCode`]s.
//! - [`error`]: [`ApiError`] with `status()`/`code()` and the one engine-error mapping.
//! - `extract`: extractors whose rejections are our errors (key path, bodies, query, headers).
//! - [`keys`]: engine key namespaces (data vs idempotency records) and binary-key encoding.
//! - [`backend`]: the [`Backend`] seam.
//! - `state`: [`AppState`] shared by handlers.
//! - `ops`: single-key put/delete/read with conditions, shared by kv and batch routes.
//! - [`cache`]: the read tier (design note 0008): [`ValueStore`] (foyer memory + disk value
//!   cache), freshness facts, flights that coalesce reads of a key; strong reads revalidate
//!   with the leader, eventual reads are answered within `max_staleness`.
//! - `limits`: per-key token buckets (429 `rate_limited`); `hotkeys`: space-saving top-k per
//!   direction over a sliding window.
//! - `idempotency`: `Idempotency-Key` records, replays and reuse detection.
//! - `routes/{kv,list,batch,health,admin}`: the handlers.
//! - `metrics`: the gateway's own figures (HTTP answers and latency by route, method and
//!   status, in flight, shards), registered into the registry [`AppState`] serves on
//!   `/metrics` (one exporter per process: see [`AppState::with_registry`]).
//! - `layers`: the edge (request id, tracing span, metrics, error finishing, load shedding,
//!   concurrency limit, timeout, catch-panic, body limit).
//! - [`openapi`](fn@openapi): the generated OpenAPI document.
//! - `trace`: trace context across hops (design note 0011): an incoming `traceparent`
//!   parents the request span; each node RPC's `node_rpc` span travels with the operation.
//! - [`auth`]: API keys, roles and prefixes (design note 0012): the middleware that
//!   authenticates every request but the open ones, the key set in object storage and its
//!   cache, failed-attempt limits, `/admin/v1/keys`.
//! - [`admin`]: the admin API (`/admin/v1/...`: cluster overview, nodes, shards, events,
//!   traffic, hot keys, sessions; design note 0010), its authorization, and the embedded
//!   dashboard (`/ui/`).
//!
//! # API
//!
//! - `PUT /v1/kv/{key}`: raw body; `Content-Type` is stored. 201 created / 200 replaced,
//!   JSON `{key, key_encoding, version, expires_at}`, `ETag: "<version>"`. `If-Match`,
//!   `If-None-Match: *`, `?ttl=<seconds>` or `?expires_at=<unix seconds>`, `Idempotency-Key`.
//! - `GET`/`HEAD /v1/kv/{key}`: the value with `Content-Type`, `ETag`, `X-TierKV-Version`,
//!   `X-TierKV-Expires-At` (unix millis), `X-TierKV-Cache` (`hit`, `revalidated`, `leased`, `miss`);
//!   `If-None-Match` → 304. `?consistency=strong` (default, linearizable) or `eventual` with
//!   `max_staleness=<n>ms|<n>s` (default 1 s): possibly stale, never staler than that.
//! - `DELETE /v1/kv/{key}`: 204 with the tombstone's `ETag` (also for absent keys).
//! - `GET /v1/kv?prefix=&start_after=&limit=` (binary forms: `prefix_base64`,
//!   `start_after_base64`): ordered pages across all shards, `{items, next_start_after,
//!   next_start_after_encoding}`; limit 1..=`max_list_limit`.
//! - `POST /v1/batch`: per-item results, not atomic; schema violations (ttl range, integer
//!   fields) fail the whole batch with 400 before any item runs.
//! - `GET /health/live`, `GET /health/ready`, `GET /metrics`, `GET /openapi.yaml`.
//! - `/admin/v1/...`: the admin API (role `admin`); `/ui/`: the dashboard (`/` redirects
//!   there).
//!
//! Every route but `/health/*`, `/openapi.yaml`, `/ui/` and signing in/out needs
//! `Authorization: Bearer <API key>` (or the cluster secret, or a dashboard session): see
//! [`auth`].
//!
//! Keys are 1..=1024 arbitrary bytes, percent-encoded in the path (an unencoded `/` is part
//! of the key too). JSON fields that carry keys or values have an `*_encoding` sibling:
//! `utf8` or `base64` (see [`keys`]). `If-Match` takes `*` or one version tag (else 400);
//! `If-Match` together with `If-None-Match: *` is 412. A request that times out (504) may
//! still have been applied.
//! JSON `expires_at` fields are unix **milliseconds**; the `expires_at` query parameter of
//! PUT is unix **seconds**.
//!
//! # Errors
//!
//! Every 4xx/5xx is `application/problem+json`:
//! `{"type": "https://tierkv.dev/errors/<code>", "title", "status", "detail", "code", "instance"}`.
//! Codes (status): `key_empty` (400), `key_too_long` (400), `value_too_large` (413),
//! `body_too_large` (413), `batch_too_large` (413), `batch_empty` (400), `invalid_ttl` (400),
//! `invalid_idempotency_key` (400), `idempotency_key_reused` (422), `malformed_json` (400),
//! `unknown_field` (400), `invalid_request` (400), `unauthorized` (401), `forbidden` (403),
//! `unsupported_media_type` (415),
//! `key_not_found` (404), `not_found` (404), `method_not_allowed` (405),
//! `precondition_failed` (412), `rate_limited` (429: one key's per-key limit), `backpressure` (503),
//! `storage_unavailable` (503), `not_leader` (503), `outcome_unknown` (503), `shutting_down` (503),
//! `overloaded` (503),
//! `timeout` (504), `data_corruption` (500), `internal` (500); membership changes (design
//! note 0009): `member_not_found` (404), `member_exists`, `member_state`, `too_few_members`,
//! `member_not_empty`, `members_outdated`, `membership_unsupported` (409). 429 and the retryable 503s
//! carry `Retry-After`. 5xx bodies never contain internal details; the full error is logged
//! in the request's span.
//!
//! # Idempotency
//!
//! See the `idempotency` module: only successful outcomes are recorded; batch records are
//! written after the batch ran (a crash in between re-runs it on retry).

pub mod admin;
pub mod auth;
pub mod backend;
pub mod cache;
pub mod cluster;
mod error;
mod extract;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
mod hotkeys;
mod idempotency;
mod keys;
mod layers;
mod limits;
mod metrics;
mod openapi;
mod ops;
mod options;
mod problem;
mod routes;
mod state;
mod trace;

use std::future::Future;

pub use auth::AuthOptions;
pub use backend::Backend;
pub use cache::ValueStore;
pub use error::{ApiError, MembershipRefusal};
pub use hotkeys::HotKeyOptions;
pub use limits::KeyLimitOptions;
pub use openapi::{openapi, openapi_yaml};
pub use options::GatewayOptions;
pub use problem::{ErrorCode, Problem};
pub use routes::batch::{BatchItem, BatchOp, BatchRequest, BatchResponse, ItemError, ItemResult};
pub use routes::health::Health;
pub use routes::kv::WriteResult;
pub use routes::list::{ListItem, ListPage};
pub use state::AppState;

/// The whole API with every edge layer; authentication (`auth::authenticate`) wraps every
/// route inside them.
pub fn app(state: AppState) -> axum::Router {
    let routes = routes::router(state.clone()).layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::authenticate,
    ));
    layers::apply(routes, &state)
}

/// Serves the API on `listener` until `shutdown` resolves; in-flight requests then finish
/// before this returns.
pub async fn serve(
    listener: impl Into<tierkv_tls::Listener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.start_admin_sampler();
    // The listener sets `TCP_NODELAY` on every connection, so that an answer written in parts
    // (HTTP/2 headers, then a streamed body) leaves at once instead of waiting for the peer's
    // delayed ACK (Nagle's algorithm: up to 40 ms on Linux); every request carries the peer's
    // `ConnectInfo<SocketAddr>`, which failed authentications are limited by (note 0012).
    tierkv_tls::serve(listener.into(), app(state), shutdown).await
}
