//! Cluster metadata fixed when a store is first used: the number of shards. Keys are routed
//! by `routing::shard_for(key, shards)`, so opening a store with a different shard count
//! would make existing keys unreachable; [`ensure_shard_count`] refuses that.
//!
//! The object `cluster/meta.json` is written create-only, so concurrent first starts agree on
//! one value. Body: `{"format": 1, "shards": <n>, "created_at_ms": <unix millis>}`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::paths;
use crate::store::{CreateOutcome, ObjStore};

/// The stored cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMeta {
    /// Format of this object.
    pub format: u32,
    /// Number of shards.
    pub shards: u32,
    /// When the store was first used.
    pub created_at_ms: u64,
}

/// Records `shards` on first use, or checks it against what was recorded.
pub async fn ensure_shard_count(store: &ObjStore, shards: u32, now_ms: u64) -> Result<ClusterMeta> {
    if shards == 0 || shards > 65_536 {
        return Err(Error::Config {
            field: "shards",
            reason: format!("must be in 1..=65536, got {shards}"),
        });
    }
    let key = paths::cluster_meta();
    let mine = ClusterMeta {
        format: 1,
        shards,
        created_at_ms: now_ms,
    };
    let body = serde_json::to_vec(&mine).map_err(|e| Error::Config {
        field: "cluster meta",
        reason: e.to_string(),
    })?;
    let stored = match store.put_create(&key, Bytes::from(body)).await? {
        CreateOutcome::Created => return Ok(mine),
        CreateOutcome::AlreadyExists => store.get(&key).await?.ok_or(Error::Invariant {
            what: "cluster meta vanished after AlreadyExists",
        })?,
    };
    let meta: ClusterMeta = serde_json::from_slice(&stored).map_err(|e| Error::Config {
        field: "cluster meta",
        reason: format!("{key} is unreadable: {e}"),
    })?;
    if meta.shards != shards {
        return Err(Error::Config {
            field: "shards",
            reason: format!(
                "this object store was created with {} shards; configure shards = {} (the shard count cannot change)",
                meta.shards, meta.shards
            ),
        });
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_use_records_and_later_uses_must_match() {
        let s = ObjStore::in_memory();
        assert_eq!(
            ensure_shard_count(&s, 8, 1).await.ok().map(|m| m.shards),
            Some(8)
        );
        assert_eq!(
            ensure_shard_count(&s, 8, 2)
                .await
                .ok()
                .map(|m| m.created_at_ms),
            Some(1)
        );
        assert!(matches!(
            ensure_shard_count(&s, 16, 3).await,
            Err(Error::Config {
                field: "shards",
                ..
            })
        ));
        assert!(
            ensure_shard_count(&ObjStore::in_memory(), 0, 1)
                .await
                .is_err()
        );
    }
}
