//! Reading and publishing manifests and epoch claims in object storage.
//!
//! Publishing is create-only: `put_create(manifest/<v+1>)`. Losing that race means another
//! writer published first; the caller re-reads and either rebases (same or older epoch) or
//! learns it is fenced (newer epoch). After a successful create the store also checks that no
//! newer version exists: old versions are garbage-collected, so a writer stalled for a very
//! long time could otherwise re-create a deleted old version and believe it published.

use crate::error::{Error, Result};
use crate::manifest::{Manifest, invariants};
use crate::paths;
use crate::store::{CreateOutcome, ObjStore};
use crate::types::{Epoch, ManifestVersion, ShardId};

/// Outcome of a publish attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The manifest is now the latest version.
    Ok,
    /// Another writer published this version first; here is the latest manifest.
    Lost(Box<Manifest>),
}

/// Manifest and epoch access for one shard.
#[derive(Debug, Clone)]
pub struct ManifestStore {
    store: ObjStore,
    shard: ShardId,
}

impl ManifestStore {
    /// Manifests of `shard` in `store`.
    #[must_use]
    pub fn new(store: ObjStore, shard: ShardId) -> Self {
        Self { store, shard }
    }

    /// Versions present, ascending.
    async fn versions(&self, after: Option<ManifestVersion>) -> Result<Vec<ManifestVersion>> {
        let offset = after.map(|v| paths::manifest(self.shard, v));
        let listed = self
            .store
            .list(&paths::manifest_prefix(self.shard), offset.as_deref())
            .await?;
        let mut v: Vec<_> = listed
            .iter()
            .filter_map(|(k, _)| paths::parse_manifest(self.shard, k))
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    /// The latest manifest, or None for a shard that never published one. A latest version
    /// that fails to decode is an error (never silently fall back to an older one, which
    /// could forget segments).
    pub async fn load_latest(&self) -> Result<Option<Manifest>> {
        loop {
            let Some(&v) = self.versions(None).await?.last() else {
                return Ok(None);
            };
            let key = paths::manifest(self.shard, v);
            // A version listed but gone was garbage-collected between list and get: re-list.
            if let Some(bytes) = self.store.get(&key).await? {
                let m = Manifest::decode(&bytes, &key)?;
                if m.version != v {
                    return Err(Error::Invariant {
                        what: "manifest object name and content disagree",
                    });
                }
                return Ok(Some(m));
            }
        }
    }

    /// Publishes `next` as the successor of `cur` after checking the invariants.
    pub async fn publish(&self, cur: &Manifest, next: &Manifest) -> Result<Published> {
        invariants::check(cur, next)?;
        let key = paths::manifest(self.shard, next.version);
        match self.store.put_create(&key, next.encode()).await? {
            CreateOutcome::Created => {
                if self.versions(Some(next.version)).await?.is_empty() {
                    Ok(Published::Ok)
                } else {
                    self.lost().await
                }
            }
            CreateOutcome::AlreadyExists => self.lost().await,
        }
    }

    async fn lost(&self) -> Result<Published> {
        let latest = self.load_latest().await?.ok_or(Error::Invariant {
            what: "manifest vanished after a lost publish",
        })?;
        Ok(Published::Lost(Box::new(latest)))
    }

    /// Claims the first free epoch greater than both `at_least` and every claimed epoch
    /// (`shards/<sid>/epoch/<e>`, create-only: exactly one claimant gets each epoch).
    pub async fn claim_epoch(&self, at_least: Epoch) -> Result<Epoch> {
        loop {
            let e = self.newest_epoch().await?.max(at_least).next();
            if self.create_epoch(e).await? == CreateOutcome::Created {
                return Ok(e);
            }
        }
    }

    /// One attempt to claim exactly `epoch` (a replication candidate's claim): `(epoch,
    /// true)` if this call created it, else the newest claimed epoch and `false` (someone
    /// else is taking over).
    pub async fn try_claim_epoch(&self, epoch: Epoch) -> Result<(Epoch, bool)> {
        let newest = self.newest_epoch().await?;
        if newest >= epoch {
            return Ok((newest, false));
        }
        let created = self.create_epoch(epoch).await? == CreateOutcome::Created;
        Ok((epoch, created))
    }

    /// The highest claimed epoch (0 if none). Every epoch a replica ever promised was
    /// claimed first, so this bounds them all (a replica rejoining after disk loss starts
    /// its promise here).
    pub async fn newest_epoch(&self) -> Result<Epoch> {
        let listed = self
            .store
            .list(&paths::epoch_prefix(self.shard), None)
            .await?;
        Ok(listed
            .iter()
            .filter_map(|(k, _)| paths::parse_epoch(self.shard, k))
            .max()
            .unwrap_or_default())
    }

    /// Create-only put of `shards/<sid>/epoch/<e>`.
    async fn create_epoch(&self, e: Epoch) -> Result<CreateOutcome> {
        let body = bytes::Bytes::from(format!("{{\"epoch\":{}}}", e.0));
        self.store
            .put_create(&paths::epoch(self.shard, e), body)
            .await
    }

    /// Deletes manifest versions older than the newest `keep` ones.
    pub async fn gc(&self, keep: usize) -> Result<usize> {
        let v = self.versions(None).await?;
        let n = v.len().saturating_sub(keep);
        for old in v.iter().take(n) {
            self.store
                .delete(&paths::manifest(self.shard, *old))
                .await?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SeqNo;

    #[tokio::test]
    async fn a_single_claim_attempt_wins_only_above_every_claimed_epoch() {
        let s = ManifestStore::new(ObjStore::in_memory(), ShardId(3));
        assert_eq!(
            s.try_claim_epoch(Epoch(2)).await.expect("claim"),
            (Epoch(2), true)
        );
        // The same epoch again, or an older one: lost, and the newest is reported.
        assert_eq!(
            s.try_claim_epoch(Epoch(2)).await.expect("claim"),
            (Epoch(2), false)
        );
        assert_eq!(
            s.try_claim_epoch(Epoch(1)).await.expect("claim"),
            (Epoch(2), false)
        );
        assert_eq!(s.claim_epoch(Epoch(0)).await.expect("claim"), Epoch(3));
        assert_eq!(
            s.try_claim_epoch(Epoch(5)).await.expect("claim"),
            (Epoch(5), true)
        );
    }

    fn next_of(m: &Manifest, epoch: Epoch) -> Manifest {
        Manifest {
            version: ManifestVersion(m.version.0 + 1),
            epoch,
            ..m.clone()
        }
    }

    #[tokio::test]
    async fn second_publisher_of_a_version_loses_and_sees_the_winner() {
        let ms = ManifestStore::new(ObjStore::in_memory(), ShardId(1));
        let base = Manifest::default();
        let a = next_of(&base, Epoch(1));
        let b = Manifest {
            flushed_seq: SeqNo(5),
            ..next_of(&base, Epoch(2))
        };
        assert_eq!(ms.publish(&base, &b).await.ok(), Some(Published::Ok));
        match ms.publish(&base, &a).await {
            Ok(Published::Lost(latest)) => assert_eq!(*latest, b),
            other => panic!("expected a lost publish, got {other:?}"),
        }
        assert_eq!(ms.load_latest().await.ok().flatten(), Some(b));
    }

    #[tokio::test]
    async fn recreating_a_collected_version_is_detected() {
        let ms = ManifestStore::new(ObjStore::in_memory(), ShardId(1));
        let mut cur = Manifest::default();
        for _ in 0..5 {
            let n = next_of(&cur, Epoch(1));
            assert_eq!(ms.publish(&cur, &n).await.ok(), Some(Published::Ok));
            cur = n;
        }
        assert_eq!(ms.gc(2).await.ok(), Some(3));
        // A stalled writer still holding version 1 re-creates the collected version 2.
        let stale = Manifest {
            version: ManifestVersion(1),
            epoch: Epoch(1),
            ..Manifest::default()
        };
        let r = ms.publish(&stale, &next_of(&stale, Epoch(1))).await;
        assert!(matches!(r, Ok(Published::Lost(m)) if m.version == ManifestVersion(5)));
    }

    #[tokio::test]
    async fn epochs_are_claimed_once_each() {
        let ms = ManifestStore::new(ObjStore::in_memory(), ShardId(3));
        let mut got = Vec::new();
        let claims: Vec<_> = (0..8).map(|_| ms.claim_epoch(Epoch(0))).collect();
        for r in futures::future::join_all(claims).await {
            got.push(r.expect("claim").0);
        }
        got.sort_unstable();
        assert_eq!(got, (1..=8).collect::<Vec<_>>());
        assert_eq!(ms.claim_epoch(Epoch(20)).await.ok(), Some(Epoch(21)));
    }
}
