//! `GET /v1/kv`: ordered, paged listing across every shard (scatter-gather).
//!
//! Every shard is scanned for `limit` entries after the cursor; the pages are merged in key
//! order and cut at `limit`. `next_start_after` is the last key returned when more may
//! follow, else null.
//!
//! Binary keys: every key field has a sibling `*_encoding` (`utf8` or `base64`). Responses
//! use `utf8` whenever the bytes are valid UTF-8. Query parameters come in two forms:
//! `prefix` / `start_after` (text) and `prefix_base64` / `start_after_base64` (any bytes; the
//! base64 form wins when both are given). To continue a listing, pass `next_start_after` as
//! `start_after` when `next_start_after_encoding` is `utf8`, as `start_after_base64` when it
//! is `base64`; so any key is listable and every cursor usable.

use axum::Json;
use axum::extract::State;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tierkv_engine::types::EntryKind;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::AppQuery;
use crate::keys::{self, DATA_NS, Encoding};
use crate::routes::kv::DEFAULT_CONTENT_TYPE;
use crate::state::AppState;
use tierkv_engine::types::ShardId;

/// Listing parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only keys starting with this text (default: all keys).
    prefix: Option<String>,
    /// Only keys starting with these bytes, in base64 (for binary prefixes); wins over
    /// `prefix`.
    #[param(pattern = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}(==)?|[A-Za-z0-9+/]{3}=?)?$")]
    prefix_base64: Option<String>,
    /// Only keys strictly after this one: the previous page's `next_start_after` when its
    /// `next_start_after_encoding` is `utf8`.
    start_after: Option<String>,
    /// Like `start_after`, in base64: the previous page's `next_start_after` when its
    /// encoding is `base64`; wins over `start_after`.
    #[param(pattern = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}(==)?|[A-Za-z0-9+/]{3}=?)?$")]
    start_after_base64: Option<String>,
    /// Page size: 1..=`max_list_limit` (1000 by default). Default: 100.
    #[param(minimum = 1, maximum = 1000, value_type = Option<u32>)]
    limit: Option<u64>,
    /// `strong` (default) or `eventual`.
    #[param(inline)]
    consistency: Option<crate::extract::Consistency>,
}

/// One listed key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListItem {
    /// The key (see `key_encoding`).
    pub key: String,
    /// `utf8`, or `base64` when the key is not valid UTF-8.
    pub key_encoding: Encoding,
    /// Current version.
    pub version: u64,
    /// Expiry in unix milliseconds, if set.
    pub expires_at: Option<u64>,
    /// Stored content type.
    pub content_type: String,
    /// Value size in bytes.
    pub size: u64,
}

/// A page of keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListPage {
    /// Keys in byte order.
    pub items: Vec<ListItem>,
    /// Cursor for the next page; null at the end.
    pub next_start_after: Option<String>,
    /// Encoding of `next_start_after` (null at the end).
    pub next_start_after_encoding: Option<Encoding>,
}

fn ns(b: &[u8]) -> Bytes {
    let mut k = BytesMut::with_capacity(b.len() + 1);
    k.put_u8(DATA_NS);
    k.put_slice(b);
    k.freeze()
}

/// Lists keys.
#[utoipa::path(
    get, path = "/v1/kv", tag = "kv",
    params(ListQuery),
    responses((status = 200, description = "A page of keys in byte order.", body = ListPage))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<ListPage>, ApiError> {
    let opts = state.options();
    let limit = match q.limit {
        None => opts.default_list_limit.max(1),
        Some(l) if l >= 1 && l <= opts.max_list_limit as u64 => {
            usize::try_from(l).unwrap_or(opts.max_list_limit)
        }
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "limit must be between 1 and {}",
                opts.max_list_limit
            )));
        }
    };
    let prefix = match (&q.prefix_base64, &q.prefix) {
        (Some(p), _) => Encoding::Base64.decode(p, "prefix_base64")?,
        (None, Some(p)) => Bytes::copy_from_slice(p.as_bytes()),
        (None, None) => Bytes::new(),
    };
    // Every key the listing could return is under `prefix` (design note 0012).
    caller.allow_key(&prefix)?;
    let start_after = match (&q.start_after_base64, &q.start_after) {
        (Some(s), _) => Some(Encoding::Base64.decode(s, "start_after_base64")?),
        (None, Some(s)) => Some(Bytes::copy_from_slice(s.as_bytes())),
        (None, None) => None,
    };
    let backend = state.backend();
    let level = crate::extract::read_level(q.consistency);
    let eprefix = ns(&prefix);
    let eafter = start_after.as_deref().map(ns);
    let pages = futures::future::try_join_all(
        (0..backend.shard_count())
            .map(|s| backend.scan(ShardId(s), eprefix.clone(), eafter.clone(), limit, level)),
    )
    .await?;
    let mut more = false;
    let mut entries = Vec::new();
    for p in pages {
        more |= p.next.is_some();
        entries.extend(p.entries);
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    more |= entries.len() > limit;
    entries.truncate(limit);
    let items: Vec<ListItem> = entries
        .into_iter()
        .filter_map(|e| {
            let user = keys::user_key(&e.key)?;
            let EntryKind::Put {
                value,
                content_type,
            } = &e.kind
            else {
                return None;
            };
            let (key, key_encoding) = keys::encode(&user);
            Some(ListItem {
                key,
                key_encoding,
                version: e.seq.0,
                expires_at: e.expires_at,
                content_type: content_type
                    .as_ref()
                    .map_or(DEFAULT_CONTENT_TYPE.to_owned(), |c| {
                        String::from_utf8_lossy(c).into_owned()
                    }),
                size: value.len() as u64,
            })
        })
        .collect();
    let (next_start_after, next_start_after_encoding) = match items.last() {
        Some(last) if more => (Some(last.key.clone()), Some(last.key_encoding)),
        _ => (None, None),
    };
    Ok(Json(ListPage {
        items,
        next_start_after,
        next_start_after_encoding,
    }))
}
