//! `Idempotency-Key`: records of first outcomes, replays, and reuse detection.
//!
//! # Records
//!
//! A record lives at engine key `0x00 "idem/" <idempotency key>` (see [`crate::keys`]) and
//! holds a JSON [`Record`]: its format `v`, the request fingerprint (xxh3-128 over
//! length-prefixed parts: method, key, body hash, content type, condition and TTL
//! parameters), the status answered, the `expires_at` of the written value and, for
//! batches, the full response body.
//!
//! Record formats: `v: 2` (written now) encodes conditions as defined bytes
//! (`none`, `if-match:*`, `if-match:<version>`, `if-none-match:*`); format 1 (records
//! without `v`, written before 0.2) hashed the `Debug` text of the condition types, frozen
//! in `legacy_fingerprint_part`, so a record of either format is matched against the
//! fingerprint of its own format. Batch fingerprints (`BATCH`, body hash) are the same in
//! both. The version of a PUT/DELETE is
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
use crate::extract::IfMatch;
use crate::keys;
use crate::ops::UserCondition;
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

/// Record format written now.
const RECORD_FORMAT: u16 = 2;

/// Format of records written before formats were numbered.
fn format_one() -> u16 {
    1
}

/// A stored first outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Record format (absent in format 1).
    #[serde(default = "format_one")]
    pub(crate) v: u16,
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

/// What a PUT's fingerprint covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PutFingerprint<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
    pub(crate) content_type: Option<&'a [u8]>,
    pub(crate) condition: UserCondition,
    /// The `ttl` and `expires_at` query parameters as given.
    pub(crate) ttl: Option<&'a str>,
    pub(crate) expires_at: Option<&'a str>,
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
    /// The request's fingerprint in record format 1, when it differs.
    legacy: Option<Fingerprint>,
}

impl Idem {
    pub(crate) fn new(key: Bytes, fp: Fingerprint) -> Self {
        Self {
            record_key: keys::idem_record_key(&key),
            fp,
            legacy: None,
        }
    }

    /// The context of a PUT with idempotency key `key`.
    pub(crate) fn for_put(key: Bytes, r: &PutFingerprint<'_>) -> Self {
        let hash = body_hash(r.value);
        let fp = |cond: &[u8]| {
            Fingerprint::of(&[
                b"PUT",
                r.key,
                &hash,
                r.content_type.unwrap_or(b""),
                cond,
                r.ttl.unwrap_or("").as_bytes(),
                r.expires_at.unwrap_or("").as_bytes(),
            ])
        };
        let legacy = fp(r.condition.legacy_fingerprint_part().as_bytes());
        Self::new(key, fp(&r.condition.fingerprint_part())).honouring(legacy)
    }

    /// The context of a DELETE of `data_key` with idempotency key `key`.
    pub(crate) fn for_delete(key: Bytes, data_key: &[u8], if_match: Option<IfMatch>) -> Self {
        let (cond, legacy) = match if_match {
            Some(m) => (
                m.fingerprint_part(),
                format!("Some({})", m.legacy_fingerprint_text()),
            ),
            None => (b"none".to_vec(), "None".to_owned()),
        };
        Self::new(key, Fingerprint::of(&[b"DELETE", data_key, &cond]))
            .honouring(Fingerprint::of(&[b"DELETE", data_key, legacy.as_bytes()]))
    }

    /// Also recognises records of format 1 written for this request (`legacy` is its
    /// fingerprint in that format).
    pub(crate) fn honouring(self, legacy: Fingerprint) -> Self {
        Self {
            legacy: Some(legacy),
            ..self
        }
    }

    /// Whether `record` was written for this request.
    fn matches(&self, record: &Record) -> bool {
        match record.v {
            1 => record.fp == self.legacy.unwrap_or(self.fp).hex(),
            _ => record.fp == self.fp.hex(),
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
        if record.v > RECORD_FORMAT {
            return Err(ApiError::internal(format!(
                "idempotency record format {} is newer than this version reads ({RECORD_FORMAT})",
                record.v
            )));
        }
        if !self.matches(&record) {
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
            v: RECORD_FORMAT,
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

    fn record(v: u16, fp: &str) -> Record {
        Record {
            v,
            fp: fp.to_owned(),
            status: 201,
            expires_at: None,
            body: None,
        }
    }

    /// Records written before record formats were numbered (fixtures: their fingerprints
    /// were computed with an independent xxh3 implementation over the format-1 parts) are
    /// still recognised, and only for the request they were written for.
    #[test]
    fn format_one_records_are_honoured() {
        let put = |condition| PutFingerprint {
            key: b"greeting",
            value: b"hello",
            content_type: Some(b"text/plain"),
            condition,
            ttl: Some("60"),
            expires_at: None,
        };
        let old: Record = serde_json::from_str(
            r#"{"fp":"d31206453b89033ceb8b2b5ef6b730d2","status":201,"expires_at":null}"#,
        )
        .expect("a format-1 record");
        assert_eq!(old.v, 1);
        let k = Bytes::from_static(b"idem-1");
        let same = Idem::for_put(
            k.clone(),
            &put(UserCondition::IfMatch(IfMatch::Version(12))),
        );
        assert!(same.matches(&old));
        let other = Idem::for_put(
            k.clone(),
            &put(UserCondition::IfMatch(IfMatch::Version(13))),
        );
        assert!(!other.matches(&old));

        let deleted = record(1, "40a17bc2a9d0c5219fb55429fac9723a");
        assert!(Idem::for_delete(k.clone(), b"greeting", Some(IfMatch::Any)).matches(&deleted));
        assert!(!Idem::for_delete(k.clone(), b"greeting", None).matches(&deleted));
        // A format-2 record never matches by its format-1 fingerprint.
        assert!(!same.matches(&record(2, "d31206453b89033ceb8b2b5ef6b730d2")));
    }

    /// Format 2 hashes defined bytes: the same request matches its own record, requests
    /// differing only in their condition do not.
    #[test]
    fn format_two_records_match_their_request_only() {
        let k = Bytes::from_static(b"idem-2");
        let conditions = [
            UserCondition::None,
            UserCondition::IfNoneMatchAny,
            UserCondition::IfMatch(IfMatch::Any),
            UserCondition::IfMatch(IfMatch::Version(7)),
        ];
        for (i, a) in conditions.iter().enumerate() {
            let fp = |c: UserCondition| {
                Idem::for_put(
                    k.clone(),
                    &PutFingerprint {
                        key: b"k",
                        value: b"v",
                        content_type: None,
                        condition: c,
                        ttl: None,
                        expires_at: None,
                    },
                )
            };
            let written = record(RECORD_FORMAT, &fp(*a).fp.hex());
            for (j, b) in conditions.iter().enumerate() {
                assert_eq!(fp(*b).matches(&written), i == j, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn fingerprints_separate_parts() {
        assert_ne!(
            Fingerprint::of(&[b"ab", b"c"]),
            Fingerprint::of(&[b"a", b"bc"])
        );
        assert_eq!(Fingerprint::of(&[b"x"]), Fingerprint::of(&[b"x"]));
    }
}
