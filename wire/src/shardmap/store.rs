//! The shard map's objects: keys, reading the newest version, publishing one with a
//! create-only write, bootstrap and address updates (the format and placement are in the
//! parent module).

use tierkv_engine::paths;
use tierkv_engine::replica::NodeId;
use tierkv_engine::store::{CreateOutcome, ObjStore};

use super::{ShardMap, ShardMapError};

/// Lost publish races [`set_member_addr`] tolerates before giving up.
const MAX_PUBLISH_ATTEMPTS: usize = 64;

/// Outcome of [`publish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// This call created the version.
    Created,
    /// Another writer created that version first; this is the latest map now.
    Lost(ShardMap),
}

/// Reads and decodes the map at `key`.
async fn read(store: &ObjStore, key: &str, version: u64) -> Result<ShardMap, ShardMapError> {
    read_if_present(store, key, version)
        .await?
        .ok_or_else(|| ShardMapError::Vanished {
            key: key.to_owned(),
        })
}

/// Reads and decodes the map at `key`, if it exists.
async fn read_if_present(
    store: &ObjStore,
    key: &str,
    version: u64,
) -> Result<Option<ShardMap>, ShardMapError> {
    let Some(body) = store.get(key).await? else {
        return Ok(None);
    };
    let map = ShardMap::from_json(&body)?;
    if map.version != version {
        return Err(ShardMapError::VersionMismatch {
            key: key.to_owned(),
            found: map.version,
        });
    }
    Ok(Some(map))
}

/// The newest map whose version is greater than `after` (all maps for `None`).
async fn newest_after(
    store: &ObjStore,
    after: Option<u64>,
) -> Result<Option<ShardMap>, ShardMapError> {
    let offset = after.map(paths::shardmap);
    let keys = store
        .list(paths::SHARDMAP_PREFIX, offset.as_deref())
        .await?;
    let newest = keys
        .iter()
        .filter_map(|(k, _)| Some((paths::parse_shardmap(k)?, k)))
        .filter(|(v, _)| after.is_none_or(|a| *v > a))
        .max_by_key(|(v, _)| *v);
    match newest {
        Some((v, key)) => Ok(Some(read(store, key, v).await?)),
        None => Ok(None),
    }
}

/// The map of version `version`, if it was published. Version 1 is the *genesis* map (the
/// one [`bootstrap`] published): its placement is every shard's genesis configuration
/// (design note 0009 §1).
pub async fn load_version(
    store: &ObjStore,
    version: u64,
) -> Result<Option<ShardMap>, ShardMapError> {
    read_if_present(store, &paths::shardmap(version), version).await
}

/// The newest published map, if any.
pub async fn load_latest(store: &ObjStore) -> Result<Option<ShardMap>, ShardMapError> {
    newest_after(store, None).await
}

/// The newest published map if it is newer than `version` (lists only the newer keys).
pub async fn load_newer(store: &ObjStore, version: u64) -> Result<Option<ShardMap>, ShardMapError> {
    newest_after(store, Some(version)).await
}

/// Creates `map`'s version (create-only). If another writer created that version first,
/// nothing is written and the latest map is returned.
pub async fn publish(store: &ObjStore, map: &ShardMap) -> Result<PublishOutcome, ShardMapError> {
    map.validate()?;
    match store
        .put_create(&paths::shardmap(map.version), map.to_json())
        .await?
    {
        CreateOutcome::Created => Ok(PublishOutcome::Created),
        CreateOutcome::AlreadyExists => {
            let latest = load_latest(store).await?.ok_or(ShardMapError::Vanished {
                key: paths::shardmap(map.version),
            })?;
            Ok(PublishOutcome::Lost(latest))
        }
    }
}

/// Publishes `initial` as version 1 if no map exists yet; otherwise (or if another
/// bootstrap won) returns the latest map. Concurrent bootstraps all return the same map.
pub async fn bootstrap(store: &ObjStore, initial: &ShardMap) -> Result<ShardMap, ShardMapError> {
    if let Some(latest) = load_latest(store).await? {
        return Ok(latest);
    }
    let first = initial.with_version(1);
    match publish(store, &first).await? {
        PublishOutcome::Created => Ok(first),
        PublishOutcome::Lost(latest) => Ok(latest),
    }
}

/// Polls for a first shard map for at most `wait` (10 ms doubling to 200 ms between
/// attempts). Object-store errors are retried until the deadline (storage may come up after
/// the caller); the last one is returned if it is still failing then. `Ok(None)`: no map
/// was published in time.
pub async fn wait_for_latest(
    store: &ObjStore,
    wait: std::time::Duration,
) -> Result<Option<ShardMap>, ShardMapError> {
    use std::time::Duration;
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = Duration::from_millis(10);
    loop {
        let store_error = match load_latest(store).await {
            Ok(Some(map)) => return Ok(Some(map)),
            Ok(None) => None,
            Err(ShardMapError::Store(e)) => Some(ShardMapError::Store(e)),
            Err(e) => return Err(e),
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return store_error.map_or(Ok(None), Err);
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// Publishes the next version with member `id` at `addr`, unless it already is there;
/// returns the map that holds the address. Lost races are retried on the newer map.
pub async fn set_member_addr(
    store: &ObjStore,
    id: NodeId,
    addr: &str,
) -> Result<ShardMap, ShardMapError> {
    let mut latest = load_latest(store).await?.ok_or(ShardMapError::NoMap)?;
    for _ in 0..MAX_PUBLISH_ATTEMPTS {
        let member = latest.member(id).ok_or(ShardMapError::NotAMember {
            id,
            version: latest.version,
        })?;
        if member.addr == addr {
            return Ok(latest);
        }
        let next = latest.with_member_addr(id, addr)?;
        match publish(store, &next).await? {
            PublishOutcome::Created => return Ok(next),
            PublishOutcome::Lost(newer) => latest = newer,
        }
    }
    Err(ShardMapError::Contended {
        attempts: MAX_PUBLISH_ATTEMPTS,
    })
}

/// Publishes `change` applied to the latest map as the next version (the admin operations
/// of design note 0009 §6: [`ShardMap::add_member`], [`ShardMap::drain_member`],
/// [`ShardMap::remove_member`], [`ShardMap::replace_member`]); a lost race re-applies it to
/// the newer map. A refused change publishes nothing. Returns the published map.
pub async fn change_members(
    store: &ObjStore,
    change: impl Fn(&ShardMap) -> Result<ShardMap, ShardMapError>,
) -> Result<ShardMap, ShardMapError> {
    let mut latest = load_latest(store).await?.ok_or(ShardMapError::NoMap)?;
    for _ in 0..MAX_PUBLISH_ATTEMPTS {
        let next = change(&latest)?;
        match publish(store, &next).await? {
            PublishOutcome::Created => return Ok(next),
            PublishOutcome::Lost(newer) => latest = newer,
        }
    }
    Err(ShardMapError::Contended {
        attempts: MAX_PUBLISH_ATTEMPTS,
    })
}
