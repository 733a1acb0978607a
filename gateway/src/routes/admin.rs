//! `GET /admin/hot-keys`: this gateway's hottest keys (reads and writes over a sliding
//! window) and its value cache's hit ratio per tier, for the dashboard (design note 0008).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::AppQuery;
use crate::hotkeys::HotKey;
use crate::keys::{self, Encoding};
use crate::limits::Access;
use crate::state::AppState;

/// Keys listed when the request gives no `limit`.
const DEFAULT_LIMIT: usize = 20;
/// Largest `limit` accepted.
const MAX_LIMIT: usize = 1000;

/// Query of `GET /admin/hot-keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HotKeysQuery {
    /// Keys per list, 1..=1000 (no list is longer than the keys tracked,
    /// `gateway.hot_keys.capacity`, default 100). Default: 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// One hot key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HotKeyItem {
    /// The key (see `key_encoding`).
    pub key: String,
    /// `utf8`, or `base64` when the key is not valid UTF-8.
    pub key_encoding: Encoding,
    /// Requests to the key in the window, at this gateway (an overestimate by at most
    /// `error`).
    pub count: u64,
    /// Bound on the overcount of `count` (space-saving summary).
    pub error: u64,
}

/// Hits of one cache tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TierFigures {
    /// Lookups answered by this tier.
    pub hits: u64,
    /// Lookups that reached this tier (the disk tier sees the memory tier's misses).
    pub lookups: u64,
    /// `hits / lookups`; null before any lookup.
    pub hit_ratio: Option<f64>,
}

impl TierFigures {
    fn new(hits: u64, lookups: u64) -> Self {
        #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
        let hit_ratio = (lookups > 0).then(|| hits as f64 / lookups as f64);
        Self {
            hits,
            lookups,
            hit_ratio,
        }
    }
}

/// The value cache's figures since the gateway started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CacheFigures {
    /// Whether the gateway keeps a value cache.
    pub enabled: bool,
    /// The memory tier.
    pub memory: TierFigures,
    /// The disk tier (zero lookups without one).
    pub disk: TierFigures,
}

/// The hottest keys of this gateway and its cache's hit ratios.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HotKeysReport {
    /// The sliding window the counts cover, in seconds.
    pub window_seconds: u64,
    /// The most read keys, hottest first.
    pub reads: Vec<HotKeyItem>,
    /// The most written keys, hottest first.
    pub writes: Vec<HotKeyItem>,
    /// The value cache.
    pub cache: CacheFigures,
}

fn items(keys: Vec<HotKey>) -> Vec<HotKeyItem> {
    keys.into_iter()
        .map(|h| {
            let (key, key_encoding) = keys::encode(&h.key);
            HotKeyItem {
                key,
                key_encoding,
                count: h.count,
                error: h.error,
            }
        })
        .collect()
}

/// This gateway's hottest keys and cache hit ratios.
#[utoipa::path(
    get, path = "/admin/hot-keys", tag = "admin",
    params(HotKeysQuery),
    responses((status = 200, description = "Hot keys over the window and the cache's hit ratio per tier, for this gateway.", body = HotKeysReport))
)]
pub(crate) async fn hot_keys(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<HotKeysQuery>,
) -> Result<Json<HotKeysReport>, ApiError> {
    let hot = state.hot_keys();
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::invalid("limit must be an integer from 1 to 1000"))?,
    }
    .min(hot.capacity());
    let tiers = state.reads().tier_stats();
    Ok(Json(HotKeysReport {
        window_seconds: hot.window().as_secs(),
        reads: items(hot.top(Access::Read, limit)),
        writes: items(hot.top(Access::Write, limit)),
        cache: CacheFigures {
            enabled: state.reads().caching(),
            memory: TierFigures::new(tiers.memory_hits, tiers.memory_lookups),
            disk: TierFigures::new(tiers.disk_hits, tiers.disk_lookups),
        },
    }))
}
