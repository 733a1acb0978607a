//! A gateway's copy of the key set (design note 0012, "Gateways: cache and revocation").
//!
//! Lifecycle: [`KeyCache::load`] reads the newest version before the gateway serves;
//! [`KeyCache::run`] (a task holding only a weak reference) then polls every
//! `poll_interval`: a GET of `auth/keys/<v+1>` (adopted at once, then `v+2`, ...), a list
//! of `auth/keys/` every [`LIST_EVERY`]th poll; every [`USAGE_EVERY`] it writes this
//! gateway's last-use times if any changed. It ends when the cache is dropped. If no read
//! succeeded for `max_stale`, keys are refused (fail closed) until one does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::key;
use super::store::{KeyRecord, KeySet, KeyStore, KeyStoreError};

/// Polls between two listings.
pub(crate) const LIST_EVERY: u32 = 30;
/// How often last-use times are written.
pub(crate) const USAGE_EVERY: Duration = Duration::from_secs(60);

/// One cached key.
#[derive(Debug)]
pub struct CachedKey {
    /// Its record (the stored hash included).
    pub record: KeyRecord,
    digest: [u8; 32],
    /// Last successful authentication on this gateway, unix ms (0: never).
    last_used_ms: AtomicU64,
}

impl CachedKey {
    /// Whether `key` (a user key) is inside this key's prefixes.
    #[must_use]
    pub fn allows_key(&self, key: &[u8]) -> bool {
        self.record.prefixes.is_empty()
            || self
                .record
                .prefixes
                .iter()
                .any(|p| key.starts_with(p.as_bytes()))
    }
}

#[derive(Debug, Default)]
struct Snapshot {
    version: u64,
    by_id: HashMap<String, Arc<CachedKey>>,
}

/// Why a key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRefusal {
    /// No such key, revoked, or the secret does not match.
    Unknown,
    /// The key set could not be read for longer than `max_stale`.
    Stale,
}

/// The cache.
pub(crate) struct KeyCache {
    store: KeyStore,
    set: ArcSwap<Snapshot>,
    /// What `fresh_ms` counts from.
    base: Instant,
    /// When a read of the store last succeeded, milliseconds since `base` (an atomic: read
    /// on every request, without a lock).
    fresh_ms: AtomicU64,
    /// Whether any key was used since the last usage write.
    used: AtomicBool,
    instance: String,
    poll_interval: Duration,
    max_stale: Duration,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("version", &self.set.load().version)
            .finish_non_exhaustive()
    }
}

fn snapshot(set: KeySet, old: &Snapshot) -> Snapshot {
    let by_id = set
        .keys
        .into_iter()
        .filter_map(|record| {
            let Some(digest) = key::unhex32(&record.hash) else {
                tracing::warn!(id = %record.id, "key record with an invalid hash; ignored");
                return None;
            };
            let last = old
                .by_id
                .get(&record.id)
                .map_or(0, |k| k.last_used_ms.load(Ordering::Relaxed));
            Some((
                record.id.clone(),
                Arc::new(CachedKey {
                    record,
                    digest,
                    last_used_ms: AtomicU64::new(last),
                }),
            ))
        })
        .collect();
    Snapshot {
        version: set.version,
        by_id,
    }
}

impl KeyCache {
    /// Reads the newest key set from `store`.
    pub(crate) async fn load(
        store: KeyStore,
        poll_interval: Duration,
        max_stale: Duration,
    ) -> Result<Self, KeyStoreError> {
        let set = store.latest().await?;
        Ok(Self {
            store,
            set: ArcSwap::from_pointee(snapshot(set, &Snapshot::default())),
            base: Instant::now(),
            fresh_ms: AtomicU64::new(0),
            used: AtomicBool::new(false),
            instance: key::hex(&rand::random::<[u8; 8]>()),
            poll_interval,
            max_stale,
        })
    }

    pub(crate) fn store(&self) -> &KeyStore {
        &self.store
    }

    /// Version of the key set in use.
    pub(crate) fn version(&self) -> u64 {
        self.set.load().version
    }

    /// Keys in the set in use.
    pub(crate) fn len(&self) -> usize {
        self.set.load().by_id.len()
    }

    /// The key `(id, secret)` if it is in the set and the secret matches (constant-time
    /// over the digests); records its use at `now_ms`.
    pub(crate) fn check(
        &self,
        id: &str,
        secret: &str,
        now_ms: u64,
    ) -> Result<Arc<CachedKey>, KeyRefusal> {
        let fresh = Duration::from_millis(self.fresh_ms.load(Ordering::Relaxed));
        if self.base.elapsed().saturating_sub(fresh) > self.max_stale {
            return Err(KeyRefusal::Stale);
        }
        let presented = key::digest(id, secret);
        let set = self.set.load();
        match set.by_id.get(id) {
            Some(k) if bool::from(k.digest.ct_eq(&presented)) => {
                // Written at most once a second per key (and the flag once per usage write):
                // no shared cache line is written on every request.
                let last = k.last_used_ms.load(Ordering::Relaxed);
                if last == 0 || now_ms.saturating_sub(last) >= 1000 {
                    k.last_used_ms.store(now_ms, Ordering::Relaxed);
                    if !self.used.load(Ordering::Relaxed) {
                        self.used.store(true, Ordering::Relaxed);
                    }
                }
                Ok(Arc::clone(k))
            }
            _ => Err(KeyRefusal::Unknown),
        }
    }

    /// This gateway's last-use times.
    pub(crate) fn local_usage(&self) -> HashMap<String, u64> {
        self.set
            .load()
            .by_id
            .iter()
            .filter_map(|(id, k)| {
                let at = k.last_used_ms.load(Ordering::Relaxed);
                (at > 0).then(|| (id.clone(), at))
            })
            .collect()
    }

    /// Adopts `set` if it is newer than the one in use (a change made through this gateway
    /// is visible here at once).
    pub(crate) fn adopt(&self, set: KeySet) {
        let old = self.set.load();
        if set.version > old.version {
            self.set.store(Arc::new(snapshot(set, &old)));
        }
    }

    fn fresh(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.fresh_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// One poll: the next versions, or (`list`) the newest by listing.
    async fn poll(&self, list: bool) -> Result<(), KeyStoreError> {
        if list {
            let set = self.store.latest().await?;
            self.adopt(set);
        } else {
            loop {
                let next = self.version() + 1;
                match self.store.version(next).await? {
                    Some(set) => self.adopt(set),
                    None => break,
                }
            }
        }
        self.fresh();
        Ok(())
    }

    /// Polls until the cache is dropped.
    pub(crate) async fn run(this: Weak<Self>) {
        let Some(interval) = this.upgrade().map(|c| c.poll_interval) else {
            return;
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut polls: u32 = 0;
        let mut usage_at = Instant::now();
        loop {
            tick.tick().await;
            let Some(cache) = this.upgrade() else { return };
            polls = polls.wrapping_add(1);
            if let Err(e) = cache.poll(polls.is_multiple_of(LIST_EVERY)).await {
                tracing::warn!(error = %e, "reading the key set");
            }
            if usage_at.elapsed() >= USAGE_EVERY && cache.used.swap(false, Ordering::Relaxed) {
                usage_at = Instant::now();
                let usage = cache.local_usage();
                if let Err(e) = cache.store.write_usage(&cache.instance, &usage).await {
                    tracing::warn!(error = %e, "writing key last-use times");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tierkv_engine::store::ObjStore;

    use super::super::store::{KeySpec, Role};
    use super::*;

    #[tokio::test]
    async fn sees_new_and_revoked_keys_by_polling() {
        let store = KeyStore::new(ObjStore::in_memory());
        let (rec, token) = store
            .create(
                &KeySpec {
                    name: "a".into(),
                    role: Role::Read,
                    prefixes: vec!["p/".into()],
                },
                1,
            )
            .await
            .expect("create");
        let cache = Arc::new(
            KeyCache::load(
                store.clone(),
                Duration::from_millis(10),
                Duration::from_secs(30),
            )
            .await
            .expect("load"),
        );
        let (id, secret) = key::parse(&token).expect("a key");
        let k = cache.check(id, secret, 42).expect("known");
        assert!(k.allows_key(b"p/x") && !k.allows_key(b"q/x"));
        assert_eq!(cache.local_usage().get(id), Some(&42));
        let wrong = format!("{}A", &secret[..secret.len() - 1]);
        let wrong = if wrong == secret {
            secret.replace('A', "B")
        } else {
            wrong
        };
        assert_eq!(cache.check(id, &wrong, 1).err(), Some(KeyRefusal::Unknown));
        // Another writer revokes it; a poll sees that.
        assert!(store.revoke(&rec.id).await.expect("revoke"));
        cache.poll(false).await.expect("poll");
        assert_eq!(cache.check(id, secret, 1).err(), Some(KeyRefusal::Unknown));
        // The listing path finds the newest too.
        let (_, t2) = store
            .create(
                &KeySpec {
                    name: "b".into(),
                    role: Role::Admin,
                    prefixes: vec![],
                },
                1,
            )
            .await
            .expect("create");
        cache.poll(true).await.expect("poll");
        let (id2, s2) = key::parse(&t2).expect("a key");
        assert!(cache.check(id2, s2, 1).is_ok());
        assert_eq!(cache.version(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_keys_when_the_set_is_stale() {
        let store = KeyStore::new(ObjStore::in_memory());
        let (_, token) = store
            .create(
                &KeySpec {
                    name: "a".into(),
                    role: Role::Write,
                    prefixes: vec![],
                },
                1,
            )
            .await
            .expect("create");
        let cache = KeyCache::load(store, Duration::from_secs(1), Duration::from_secs(30))
            .await
            .expect("load");
        let (id, secret) = key::parse(&token).expect("a key");
        assert!(cache.check(id, secret, 1).is_ok());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(cache.check(id, secret, 1).err(), Some(KeyRefusal::Stale));
        cache.poll(false).await.expect("poll");
        assert!(cache.check(id, secret, 1).is_ok());
    }
}
