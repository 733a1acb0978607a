//! The key set in object storage (design note 0012):
//!
//! ```text
//! auth/keys/<version:020>     the whole key set at this version (create-only: the CAS)
//! auth/usage/<instance>.json  one gateway's last-use times, rewritten by that gateway only
//! ```
//!
//! A key set version is JSON `{format: 1, version, keys: [KeyRecord]}`. A change reads the
//! newest version `v`, builds `v+1` and creates it; the loser of a race re-reads and retries
//! ([`MAX_ATTEMPTS`]). The winner then deletes versions older than `v+1-`[`KEEP_VERSIONS`].

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tierkv_engine::store::{CreateOutcome, ObjStore};
use utoipa::ToSchema;

use super::key::{self, NewKey};

/// Prefix of every key set version.
pub const KEYS_PREFIX: &str = "auth/keys/";
/// Prefix of the gateways' last-use objects.
pub const USAGE_PREFIX: &str = "auth/usage/";
/// Format of a key set document.
pub const KEYSET_FORMAT: u16 = 1;
/// Versions kept behind the newest.
pub const KEEP_VERSIONS: u64 = 32;
/// Tries of one change against concurrent writers.
pub const MAX_ATTEMPTS: usize = 8;
/// Most keys a cluster may have.
pub const MAX_KEYS: usize = 10_000;
/// Most prefixes of one key.
pub const MAX_PREFIXES: usize = 16;
/// Longest prefix, characters.
pub const MAX_PREFIX_CHARS: usize = 256;
/// Longest key name, characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Usage objects read by one listing (the newest by modification time).
const MAX_USAGE_OBJECTS: usize = 256;
/// Usage objects older than this are deleted when keys are listed.
const USAGE_RETENTION_MS: u64 = 30 * 24 * 3600 * 1000;

/// What a key may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `GET`/`HEAD` on `/v1/*`: get, head, list.
    Read,
    /// `read`, plus put, delete and batch.
    Write,
    /// Everything, including the admin API, key management and `/metrics`.
    Admin,
}

impl Role {
    /// Whether this role includes `need`.
    #[must_use]
    pub fn covers(self, need: Role) -> bool {
        self >= need
    }

    /// The role's name as in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            other => Err(format!("unknown role `{other}` (read, write or admin)")),
        }
    }
}

/// One key as stored: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// The key's public id (16 hex characters).
    pub id: String,
    /// What the key is for.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Key prefixes it is limited to (empty: every key).
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// When it was made, unix milliseconds.
    pub created_at_ms: u64,
    /// Hex SHA-256 of `tierkv-api-key|v1|<id>|<secret>`.
    pub hash: String,
}

impl KeyRecord {
    /// Whether `token` is this key (its id, and its secret's digest compared in constant
    /// time).
    #[must_use]
    pub fn is_key(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        let Some((id, secret)) = key::parse(token) else {
            return false;
        };
        let Some(stored) = key::unhex32(&self.hash) else {
            return false;
        };
        id == self.id && bool::from(key::digest(id, secret).ct_eq(&stored))
    }
}

/// One version of the key set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    /// Its version (0: none written yet).
    pub version: u64,
    /// Its keys.
    pub keys: Vec<KeyRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    format: u16,
    version: u64,
    keys: Vec<KeyRecord>,
}

/// Why a key-set operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// Object storage failed.
    #[error("object storage: {0}")]
    Store(#[from] tierkv_engine::Error),
    /// A stored document does not decode.
    #[error("key set object {object} is invalid: {detail}")]
    Corrupt {
        /// Its object key.
        object: String,
        /// Why.
        detail: String,
    },
    /// The request is not valid (name, role, prefixes, limits).
    #[error("{0}")]
    Invalid(String),
    /// Other writers kept winning.
    #[error("the key set changed {MAX_ATTEMPTS} times during this change; retry")]
    Contended,
}

/// Key of key set `version`.
#[must_use]
pub fn keyset_key(version: u64) -> String {
    format!("{KEYS_PREFIX}{version:020}")
}

fn parse_version(object: &str) -> Option<u64> {
    let d = object.strip_prefix(KEYS_PREFIX)?;
    (d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
        .then(|| d.parse().ok())
        .flatten()
}

/// What a new key asks for, checked by [`KeyStore::create`].
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its prefixes.
    pub prefixes: Vec<String>,
}

impl KeySpec {
    fn check(&self) -> Result<(), KeyStoreError> {
        let bad = |m: &str| Err(KeyStoreError::Invalid(m.to_owned()));
        if self.name.is_empty() || self.name.chars().count() > MAX_NAME_CHARS {
            return bad("`name` must be 1 to 128 characters");
        }
        if self.name.chars().any(char::is_control) {
            return bad("`name` must not contain control characters");
        }
        if self.role == Role::Admin && !self.prefixes.is_empty() {
            return bad("an admin key cannot be limited to prefixes");
        }
        if self.prefixes.len() > MAX_PREFIXES {
            return bad("at most 16 prefixes");
        }
        // Characters (the contract's maxLength), so at most 1024 bytes: a key's limit.
        if self
            .prefixes
            .iter()
            .any(|p| p.is_empty() || p.chars().count() > MAX_PREFIX_CHARS)
        {
            return bad("each prefix must be 1 to 256 characters");
        }
        Ok(())
    }
}

/// The key set's objects.
#[derive(Debug, Clone)]
pub struct KeyStore {
    store: ObjStore,
}

impl KeyStore {
    /// Over `store` (the cluster's object store).
    #[must_use]
    pub fn new(store: ObjStore) -> Self {
        Self { store }
    }

    /// The newest key set (an empty one at version 0 if none was ever written).
    pub async fn latest(&self) -> Result<KeySet, KeyStoreError> {
        let listed = self.store.list(KEYS_PREFIX, None).await?;
        let Some(v) = listed.iter().filter_map(|(k, _)| parse_version(k)).max() else {
            return Ok(KeySet::default());
        };
        match self.version(v).await? {
            Some(set) => Ok(set),
            None => Err(KeyStoreError::Corrupt {
                object: keyset_key(v),
                detail: "listed but not found".to_owned(),
            }),
        }
    }

    /// Key set `version`, if it exists.
    pub async fn version(&self, version: u64) -> Result<Option<KeySet>, KeyStoreError> {
        let object = keyset_key(version);
        let Some(bytes) = self.store.get(&object).await? else {
            return Ok(None);
        };
        let corrupt = |detail: String| KeyStoreError::Corrupt {
            object: object.clone(),
            detail,
        };
        let doc: Doc = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if doc.format != KEYSET_FORMAT {
            return Err(corrupt(format!("unsupported format {}", doc.format)));
        }
        if doc.version != version {
            return Err(corrupt(format!("holds version {}", doc.version)));
        }
        Ok(Some(KeySet {
            version,
            keys: doc.keys,
        }))
    }

    /// Applies `change` to the newest set and writes the result as the next version; the
    /// new set and what `change` returned. `change` runs again after a lost race.
    async fn change<R>(
        &self,
        mut change: impl FnMut(&mut Vec<KeyRecord>) -> Result<R, KeyStoreError>,
    ) -> Result<(R, KeySet), KeyStoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let mut set = self.latest().await?;
            let out = change(&mut set.keys)?;
            let next = set.version + 1;
            let doc = Doc {
                format: KEYSET_FORMAT,
                version: next,
                keys: set.keys,
            };
            let body = serde_json::to_vec(&doc).map_err(|e| KeyStoreError::Corrupt {
                object: keyset_key(next),
                detail: e.to_string(),
            })?;
            match self
                .store
                .put_create(&keyset_key(next), Bytes::from(body))
                .await?
            {
                CreateOutcome::Created => {
                    self.prune(next).await;
                    return Ok((
                        out,
                        KeySet {
                            version: next,
                            keys: doc.keys,
                        },
                    ));
                }
                CreateOutcome::AlreadyExists => {}
            }
        }
        Err(KeyStoreError::Contended)
    }

    /// Deletes versions older than `newest - KEEP_VERSIONS` (best effort).
    async fn prune(&self, newest: u64) {
        let Some(below) = newest.checked_sub(KEEP_VERSIONS) else {
            return;
        };
        let Ok(listed) = self.store.list(KEYS_PREFIX, None).await else {
            return;
        };
        for (object, _) in listed {
            if parse_version(&object).is_some_and(|v| v < below)
                && let Err(e) = self.store.delete(&object).await
            {
                tracing::warn!(error = %e, object, "pruning an old key set version");
            }
        }
    }

    /// Makes a new key; its record and the whole key (to show once).
    pub async fn create(
        &self,
        spec: &KeySpec,
        now_ms: u64,
    ) -> Result<(KeyRecord, String), KeyStoreError> {
        spec.check()?;
        let ((record, token), _) = self
            .change(|keys| {
                if keys.len() >= MAX_KEYS {
                    return Err(KeyStoreError::Invalid(format!(
                        "the cluster has {MAX_KEYS} keys already; revoke some first"
                    )));
                }
                let NewKey { id, token, digest } = loop {
                    let k = key::generate();
                    if !keys.iter().any(|r| r.id == k.id) {
                        break k;
                    }
                };
                let record = KeyRecord {
                    id,
                    name: spec.name.clone(),
                    role: spec.role,
                    prefixes: spec.prefixes.clone(),
                    created_at_ms: now_ms,
                    hash: key::hex(&digest),
                };
                keys.push(record.clone());
                Ok((record, token))
            })
            .await?;
        Ok((record, token))
    }

    /// Revokes key `id`: true if it existed.
    pub async fn revoke(&self, id: &str) -> Result<bool, KeyStoreError> {
        if !self.latest().await?.keys.iter().any(|r| r.id == id) {
            return Ok(false);
        }
        let (found, _) = self
            .change(|keys| {
                let before = keys.len();
                keys.retain(|r| r.id != id);
                Ok(keys.len() != before)
            })
            .await?;
        Ok(found)
    }

    /// Writes this gateway's last-use times (`id → unix ms`).
    pub(crate) async fn write_usage(
        &self,
        instance: &str,
        usage: &HashMap<String, u64>,
    ) -> Result<(), KeyStoreError> {
        let body = serde_json::to_vec(usage).map_err(|e| KeyStoreError::Invalid(e.to_string()))?;
        self.store
            .put(&format!("{USAGE_PREFIX}{instance}.json"), Bytes::from(body))
            .await?;
        Ok(())
    }

    /// Every gateway's last-use times merged (the newest per key); usage objects older than
    /// 30 days are deleted on the way.
    pub async fn usage(&self, now_ms: u64) -> Result<HashMap<String, u64>, KeyStoreError> {
        let mut listed = self.store.list_modified(USAGE_PREFIX).await?;
        listed.sort_by_key(|(_, modified)| std::cmp::Reverse(*modified));
        let mut merged: HashMap<String, u64> = HashMap::new();
        for (i, (object, modified)) in listed.into_iter().enumerate() {
            if now_ms.saturating_sub(modified) > USAGE_RETENTION_MS {
                let _ = self.store.delete(&object).await;
                continue;
            }
            if i >= MAX_USAGE_OBJECTS {
                continue;
            }
            let Some(bytes) = self.store.get(&object).await? else {
                continue;
            };
            // A usage object that does not parse only loses its last-use figures.
            let Ok(usage) = serde_json::from_slice::<HashMap<String, u64>>(&bytes) else {
                tracing::warn!(object, "usage object does not parse; ignored");
                continue;
            };
            for (id, at) in usage {
                let e = merged.entry(id).or_default();
                *e = (*e).max(at);
            }
        }
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(role: Role, prefixes: &[&str]) -> KeySpec {
        KeySpec {
            name: "test".to_owned(),
            role,
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[tokio::test]
    async fn create_list_revoke_with_concurrent_writers() {
        let ks = KeyStore::new(ObjStore::in_memory());
        assert_eq!(ks.latest().await.expect("latest"), KeySet::default());
        // Concurrent creations all land: create-only versions, losers retry.
        let made = futures::future::join_all(
            (0..6).map(|_| async { ks.create(&spec(Role::Read, &["a/"]), 7).await }),
        )
        .await;
        let made: Vec<_> = made.into_iter().map(|r| r.expect("created")).collect();
        let set = ks.latest().await.expect("latest");
        assert_eq!(set.version, 6);
        assert_eq!(set.keys.len(), 6);
        for (record, token) in &made {
            assert!(set.keys.contains(record));
            let (id, secret) = key::parse(token).expect("a key");
            assert_eq!(id, record.id);
            assert_eq!(key::hex(&key::digest(id, secret)), record.hash);
            // Nothing stored holds the secret.
            let raw = ks
                .store
                .get(&keyset_key(6))
                .await
                .expect("get")
                .expect("exists");
            assert!(!String::from_utf8_lossy(&raw).contains(secret));
        }
        assert!(ks.revoke(&made[0].0.id).await.expect("revoke"));
        assert!(!ks.revoke(&made[0].0.id).await.expect("revoke again"));
        let set = ks.latest().await.expect("latest");
        assert_eq!((set.version, set.keys.len()), (7, 5));
    }

    #[tokio::test]
    async fn invalid_specs_and_old_versions_pruned() {
        let ks = KeyStore::new(ObjStore::in_memory());
        for bad in [
            spec(Role::Admin, &["a"]),
            spec(Role::Read, &[""]),
            KeySpec {
                name: String::new(),
                ..spec(Role::Read, &[])
            },
            KeySpec {
                name: "x".repeat(129),
                ..spec(Role::Read, &[])
            },
            spec(Role::Read, &["p"; 17]),
            KeySpec {
                prefixes: vec!["é".repeat(257)],
                ..spec(Role::Read, &[])
            },
        ] {
            assert!(matches!(
                ks.create(&bad, 1).await,
                Err(KeyStoreError::Invalid(_))
            ));
        }
        for _ in 0..(KEEP_VERSIONS + 3) {
            ks.create(&spec(Role::Write, &[]), 1)
                .await
                .expect("created");
        }
        let listed = ks.store.list(KEYS_PREFIX, None).await.expect("list");
        assert!(listed.len() as u64 <= KEEP_VERSIONS + 1, "{}", listed.len());
        assert!(ks.version(1).await.expect("get").is_none());
        assert_eq!(
            ks.latest().await.expect("latest").version,
            KEEP_VERSIONS + 3
        );
    }

    #[tokio::test]
    async fn usage_merges_gateways() {
        let ks = KeyStore::new(ObjStore::in_memory());
        let a = HashMap::from([("k1".to_owned(), 5), ("k2".to_owned(), 9)]);
        let b = HashMap::from([("k1".to_owned(), 8)]);
        ks.write_usage("ga", &a).await.expect("write");
        ks.write_usage("gb", &b).await.expect("write");
        let now = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("fits");
        let merged = ks.usage(now).await.expect("usage");
        assert_eq!(merged.get("k1"), Some(&8));
        assert_eq!(merged.get("k2"), Some(&9));
    }
}
