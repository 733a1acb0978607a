//! `GET /v1/kv`: ordered, paged listing across every shard (scatter-gather).
//!
//! Every shard is scanned for `limit` entries after the cursor; the pages are merged in key
//! order and cut at `limit`. `next_start_after` is the last key returned when more may
//! follow, else null.
//!
//! Binary keys: every key field has a sibling `*_encoding` (`utf8` or `base64`). Responses
//! use `utf8` whenever the bytes are valid UTF-8. To continue a listing, pass
//! `start_after=<next_start_after>&start_after_encoding=<next_start_after_encoding>`; so any
//! key is listable and every cursor usable.

use axum::Json;
use axum::extract::State;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tierkv_engine::types::EntryKind;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::AppQuery;
use crate::keys::{self, DATA_NS, Encoding};
use crate::routes::kv::DEFAULT_CONTENT_TYPE;
use crate::state::AppState;
use tierkv_engine::types::ShardId;

/// Listing parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only keys starting with this (default: all keys).
    prefix: Option<String>,
    /// Encoding of `prefix`. Default: utf8.
    prefix_encoding: Option<Encoding>,
    /// Only keys strictly after this one (the previous page's `next_start_after`).
    start_after: Option<String>,
    /// Encoding of `start_after`. Default: utf8.
    start_after_encoding: Option<Encoding>,
    /// Page size, at least 1 (default 100; larger than the maximum, 1000, is clamped).
    #[param(minimum = 1)]
    limit: Option<u64>,
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
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<ListPage>, ApiError> {
    let opts = state.options();
    let limit = match q.limit {
        None => opts.default_list_limit,
        Some(0) => return Err(ApiError::invalid("limit must be at least 1")),
        Some(l) => usize::try_from(l)
            .unwrap_or(usize::MAX)
            .min(opts.max_list_limit),
    }
    .max(1);
    let prefix = match &q.prefix {
        Some(p) => q.prefix_encoding.unwrap_or_default().decode(p, "prefix")?,
        None => Bytes::new(),
    };
    let start_after = match &q.start_after {
        Some(s) => Some(
            q.start_after_encoding
                .unwrap_or_default()
                .decode(s, "start_after")?,
        ),
        None => None,
    };
    let backend = state.backend();
    let eprefix = ns(&prefix);
    let eafter = start_after.as_deref().map(ns);
    let pages = futures::future::try_join_all(
        (0..backend.shard_count())
            .map(|s| backend.scan(ShardId(s), eprefix.clone(), eafter.clone(), limit)),
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
