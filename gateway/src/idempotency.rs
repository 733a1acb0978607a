//! `Idempotency-Key`: records of first outcomes, replays, and reuse detection.
//!
//! # Records
//!
//! A record lives at engine key `0x00 "idem/" <idempotency key>` (see [`crate::keys`]) and
//! holds a JSON [`Record`]: the request fingerprint (xxh3-128 over method, key, body hash,
//! content type, conditions and TTL parameters), the status answered, the `expires_at` of the
//! written value and, for batches, the full response body. The version of a PUT/DELETE is
//! the record entry's own version: it is written in the same atomic engine batch as the data
//! (condition `MustNotExist` on the record), so both share one sequence number. The record
//! expires after `idempotency_window` through the engine TTL, and survives restarts because
//! it is ordinary engine data.
//!
//! Only successful outcomes are recorded: a request that failed (4xx or 5xx) left no record,
//! and a retry with the same key is executed afresh.
//!
//! A reuse of a key for a different request gets `422 idempotency_key_reused`. Records of a
//! PUT/DELETE live in the shard of the *data* key, so reuse across different data keys is
//! only detected when both keys route to the same shard: clients must use a fresh key per
//! logical request.
//!
//! # Batches
//!
//! `POST /v1/batch` is not atomic across shards, so its record is written *after* the items
//! ran, in the shard of the idempotency key. Concurrent duplicates in this process wait on an
//! in-process lock per key and then replay. Crash window: a crash (or a failed record write)
//! after the items ran and before the record is durable means a retry runs the items again.

use std::sync::Arc;
use tierkv_engine::types::ReadConsistency;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tierkv_engine::types::{Condition, Mutation, ShardId, WriteOp};
use xxhash_rust::xxh3::Xxh3;

use crate::error::ApiError;
use crate::keys;
use crate::state::AppState;

/// Hash identifying a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint(u128);

impl Fingerprint {
    /// Fingerprint of length-prefixed `parts`.
    pub(crate) fn of(parts: &[&[u8]]) -> Self {
        let mut h = Xxh3::new();
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Self(h.digest128())
    }

    fn hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

/// Hash of a body, as one fingerprint part.
pub(crate) fn body_hash(body: &[u8]) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(body).to_le_bytes()
}

/// A stored first outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Fingerprint of the request (hex).
    pub(crate) fp: String,
    /// Status answered.
    pub(crate) status: u16,
    /// Expiry of the written value (unix millis).
    #[serde(default)]
    pub(crate) expires_at: Option<u64>,
    /// Full response body (batches).
    #[serde(default)]
    pub(crate) body: Option<String>,
}

/// A record found for this request, with the version it was written at.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    pub(crate) record: Record,
    pub(crate) version: u64,
}

/// The idempotency context of one request.
#[derive(Debug, Clone)]
pub(crate) struct Idem {
    pub(crate) record_key: Bytes,
    fp: Fingerprint,
}

impl Idem {
    pub(crate) fn new(key: Bytes, fp: Fingerprint) -> Self {
        Self {
            record_key: keys::idem_record_key(&key),
            fp,
        }
    }

    /// The record for this key in `shard`: `Ok(None)` if there is none, `Ok(Some)` if it
    /// was written by the same request, `idempotency_key_reused` otherwise.
    pub(crate) async fn lookup(
        &self,
        state: &AppState,
        shard: ShardId,
    ) -> Result<Option<Replay>, ApiError> {
        let Some(e) = state
            .backend()
            .get(shard, self.record_key.clone(), ReadConsistency::Strong)
            .await?
        else {
            return Ok(None);
        };
        let tierkv_engine::types::EntryKind::Put { value, .. } = e.kind else {
            return Ok(None);
        };
        let record: Record = serde_json::from_slice(&value)
            .map_err(|err| ApiError::internal(format!("undecodable idempotency record: {err}")))?;
        if record.fp != self.fp.hex() {
            return Err(ApiError::IdempotencyKeyReused);
        }
        Ok(Some(Replay {
            record,
            version: e.seq.0,
        }))
    }

    /// The engine write that stores `record` (create-only, expiring after the window).
    pub(crate) fn record_op(
        &self,
        state: &AppState,
        status: u16,
        expires_at: Option<u64>,
        body: Option<String>,
    ) -> Result<WriteOp, ApiError> {
        let record = Record {
            fp: self.fp.hex(),
            status,
            expires_at,
            body,
        };
        let value = serde_json::to_vec(&record).map_err(ApiError::internal)?;
        let window =
            u64::try_from(state.options().idempotency_window.as_millis()).unwrap_or(u64::MAX);
        Ok(WriteOp {
            mutation: Mutation::Put {
                key: self.record_key.clone(),
                value: Bytes::from(value),
                content_type: None,
                expires_at: Some(state.now_millis().saturating_add(window.max(1))),
            },
            condition: Condition::MustNotExist,
        })
    }
}

/// Serializes executions of one batch idempotency key in this process.
pub(crate) async fn batch_guard(state: &AppState, key: &Bytes) -> BatchGuard {
    let m = Arc::clone(
        state
            .inner
            .batch_guards
            .lock()
            .entry(key.clone())
            .or_default(),
    );
    let guard = Arc::clone(&m).lock_owned().await;
    BatchGuard {
        state: state.clone(),
        key: key.clone(),
        mutex: m,
        _guard: Some(guard),
    }
}

/// Held while a batch with an idempotency key runs; removes its map entry when the last
/// interested request is done.
pub(crate) struct BatchGuard {
    state: AppState,
    key: Bytes,
    mutex: Arc<tokio::sync::Mutex<()>>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        let mut map = self.state.inner.batch_guards.lock();
        // References: the map, `self.mutex` and the owned guard; more means waiters.
        if Arc::strong_count(&self.mutex) <= 3 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_separate_parts() {
        assert_ne!(
            Fingerprint::of(&[b"ab", b"c"]),
            Fingerprint::of(&[b"a", b"bc"])
        );
        assert_eq!(Fingerprint::of(&[b"x"]), Fingerprint::of(&[b"x"]));
    }
}
