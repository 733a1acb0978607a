//! The admin API (`/admin/v1/...`, the `admin` tag of `openapi.yaml`) and the dashboard it
//! serves (`/ui/`): design note 0010.
//!
//! # Layout
//!
//! - `auth`: the operator's credentials (the cluster secret as a bearer token, or a signed
//!   session cookie), sign-in with the secret or a one-time login token. Every request is
//!   authenticated by `crate::auth` (API keys, note 0012) before it reaches these routes.
//! - [`view`]: [`ClusterView`], the seam to the cluster's facts (the cluster client gathers
//!   them over node RPC with `Describe`; `tierkv serve` in process).
//! - `report`: what the members said → the overview, nodes, shards and events documents, and
//!   the load between two gatherings.
//! - `traffic`: this gateway's request rate, latency quantiles and error rates, sampled every
//!   two seconds from its own HTTP figures.
//! - [`model`]: the JSON documents.
//! - `handlers`: the routes.
//! - `members`, `moves`: membership changes (add, drain, remove, replace: design note 0009
//!   §6, the `membership` tag) and `GET /admin/v1/moves` (each shard's move, progress, ETA).
//! - `ui`: the dashboard's built assets, embedded in the binary (`admin-ui/dist`).
//!
//! # Gathering
//!
//! Facts are gathered on demand, single-flight, and reused for [`FRESH_FOR`]: however many
//! dashboards are open, a gateway asks each node at most once per second. Each gathering is
//! compared with the previous one for the load (operations per second per shard and node).

mod auth;
pub(crate) mod handlers;
mod members;
pub mod model;
mod moves;
mod report;
mod traffic;
mod ui;
pub mod view;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get, post};
use tierkv_engine::types::NodeId;

pub(crate) use self::auth::AdminAuth;
pub(crate) use self::auth::MISSING as MISSING_DETAIL;
pub use self::auth::{LOGIN_TOKEN_LIFETIME, Principal};
use self::report::{Rates, Reading};
use self::traffic::TrafficLog;
pub use self::view::{
    ClusterView, Facts, FactsGap, GatewayEvent, GatewayEventKind, Gathered, MemberChange,
    MemberFacts,
};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) use self::handlers::ApiDocAdmin;

/// How long one gathering is reused.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Events asked of each node per gathering.
pub(crate) const EVENTS_PER_NODE: u32 = 256;

/// One gathering and the load derived from it.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    at: tokio::time::Instant,
    pub(crate) gathered: Arc<Gathered>,
    pub(crate) rates: Arc<Rates>,
}

/// The last gathering and the readings of the last [`RATE_WINDOW`] the next one is compared
/// with (oldest first; one per gathering).
#[derive(Debug, Default)]
struct Slot {
    last: Option<Snapshot>,
    readings: VecDeque<(tokio::time::Instant, HashMap<NodeId, Reading>)>,
}

/// The load is measured over about this long (the oldest reading within it), so that a
/// dashboard polling every second or two sees a steady figure rather than a flicker.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(10);

/// The admin API's state in [`AppState`].
pub(crate) struct AdminState {
    /// Credentials; unset: every admin request is 401.
    auth: OnceLock<AdminAuth>,
    /// Where cluster facts come from; unset: the cluster endpoints are 503.
    view: OnceLock<Arc<dyn ClusterView>>,
    /// Held across a gathering (tokio's): single flight.
    slot: tokio::sync::Mutex<Slot>,
    /// This gateway's traffic samples.
    pub(crate) traffic: TrafficLog,
    /// Whether the traffic sampler runs.
    sampling: AtomicBool,
    /// When this gateway started, unix milliseconds.
    pub(crate) started_at_ms: u64,
    /// Readings of the shards moving (`GET /admin/v1/moves`: progress and ETA).
    pub(crate) moves: parking_lot::Mutex<moves::MoveLog>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("enabled", &self.auth.get().is_some())
            .field("view", &self.view.get().is_some())
            .finish_non_exhaustive()
    }
}

impl AdminState {
    pub(crate) fn new(started_at_ms: u64) -> Self {
        Self {
            auth: OnceLock::new(),
            view: OnceLock::new(),
            slot: tokio::sync::Mutex::new(Slot::default()),
            traffic: TrafficLog::default(),
            sampling: AtomicBool::new(false),
            started_at_ms,
            moves: parking_lot::Mutex::new(moves::MoveLog::default()),
        }
    }

    /// The operator's credentials, if the admin API is enabled.
    pub(crate) fn credentials(&self) -> Option<&AdminAuth> {
        self.auth.get()
    }

    fn auth(&self) -> Result<&AdminAuth, ApiError> {
        self.auth.get().ok_or(ApiError::Unauthorized {
            detail: "the admin API is not enabled on this gateway",
        })
    }
}

impl AppState {
    /// Enables the admin API: `secret` (the cluster secret) is its credential, `view` the
    /// source of cluster facts. Returns false, changing nothing, if it was enabled already
    /// or `secret` is empty.
    pub fn enable_admin(&self, secret: &str, view: Arc<dyn ClusterView>) -> bool {
        let Some(auth) = AdminAuth::new(secret) else {
            return false;
        };
        let admin = &self.inner.admin;
        if admin.auth.set(auth).is_err() {
            return false;
        }
        let _ = admin.view.set(view);
        true
    }

    /// A new one-time login token for the dashboard (`/ui/#login=<token>`), valid for
    /// [`LOGIN_TOKEN_LIFETIME`]; `None` unless the admin API is enabled. Print it only where
    /// its operator reads it (never into logs).
    #[must_use]
    pub fn admin_login_token(&self) -> Option<String> {
        let auth = self.inner.admin.auth.get()?;
        Some(auth.issue_login_token(self.now_millis()))
    }

    /// Starts sampling this gateway's traffic for the admin API (once; a no-op outside a
    /// tokio runtime). [`crate::serve`] does it.
    pub fn start_admin_sampler(&self) {
        let admin = &self.inner.admin;
        if admin.sampling.load(Ordering::SeqCst) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !admin.sampling.swap(true, Ordering::SeqCst) {
            rt.spawn(traffic::run(Arc::downgrade(&self.inner)));
        }
    }

    /// The admin API's view of the cluster.
    pub(crate) fn admin_view(&self) -> Result<&Arc<dyn ClusterView>, ApiError> {
        self.inner
            .admin
            .view
            .get()
            .ok_or_else(|| ApiError::StorageUnavailable {
                cause: "the admin API has no cluster view on this gateway".to_owned(),
            })
    }

    /// Drops the last gathering: the next one is fresh (after a membership change).
    pub(crate) async fn admin_forget_snapshot(&self) {
        self.inner.admin.slot.lock().await.last = None;
    }

    /// The current gathering (a fresh one if the last is older than [`FRESH_FOR`]).
    pub(crate) async fn admin_snapshot(&self) -> Result<Snapshot, ApiError> {
        let admin = &self.inner.admin;
        let view = self.admin_view()?;
        let mut slot = admin.slot.lock().await;
        if let Some(last) = &slot.last
            && last.at.elapsed() < FRESH_FOR
        {
            return Ok(last.clone());
        }
        let gathered = view.gather(EVENTS_PER_NODE).await;
        let at = tokio::time::Instant::now();
        let readings = report::readings(&gathered, at);
        while slot
            .readings
            .front()
            .is_some_and(|(t, _)| at.saturating_duration_since(*t) > RATE_WINDOW)
        {
            slot.readings.pop_front();
        }
        let base = report::baseline(slot.readings.iter().map(|(_, r)| r), &readings);
        let rates = report::rates(&base, &readings);
        slot.readings.push_back((at, readings));
        let snap = Snapshot {
            at,
            gathered: Arc::new(gathered),
            rates: Arc::new(rates),
        };
        slot.last = Some(snap.clone());
        Ok(snap)
    }
}

/// The admin routes and the dashboard's.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/session",
            get(handlers::session)
                .post(handlers::sign_in)
                .delete(handlers::sign_out),
        )
        .route("/admin/v1/cluster", get(handlers::cluster))
        .route("/admin/v1/nodes", get(handlers::nodes))
        .route("/admin/v1/shards", get(handlers::shards))
        .route("/admin/v1/events", get(handlers::events))
        .route("/admin/v1/traffic", get(handlers::traffic))
        .route("/admin/v1/hot-keys", get(handlers::hot_keys))
        .route("/admin/v1/members", post(members::add_member))
        .route("/admin/v1/members/{id}", delete(members::remove_member))
        .route("/admin/v1/members/{id}/drain", post(members::drain_member))
        .route(
            "/admin/v1/members/{id}/replace",
            post(members::replace_member),
        )
        .route("/admin/v1/moves", get(members::moves))
        .merge(crate::auth::handlers::router())
        .merge(ui::router())
}
