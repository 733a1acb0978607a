//! Single-key operations shared by `/v1/kv/{key}` and `/v1/batch`: conditional put and
//! delete (with an optional idempotency record in the same engine batch) and get.
//!
//! A PUT answers 201 when it created the key and 200 when it replaced a live value. Without
//! an `Idempotency-Key` this is one engine write that reports the key's prior version. With
//! one, the status must be stored in the idempotency record, which is written in the same
//! batch, so it has to be known first: the gateway reads the current version and makes the
//! write conditional on it (`VersionIs` / `MustNotExist`); if another writer got in between,
//! it re-reads and retries (bounded; the last attempt writes unconditionally).

use std::time::Duration;
use tierkv_engine::types::ReadConsistency;

use axum::http::StatusCode;
use bytes::Bytes;
use tierkv_engine::types::{Condition, Mutation, SeqNo, WriteBatch, WriteOp};
use tokio::time::Instant;

use crate::cache::{CachedValue, ReadOutcome, Want};

use tierkv_wire::proto::RemoteError;

use crate::backend::BackendError;
use crate::error::ApiError;
use crate::extract::IfMatch;
use crate::idempotency::{Idem, Replay};
use crate::keys;
use crate::state::AppState;

/// Attempts of the read-then-conditional-write loop of an unconditional PUT.
const PUT_ATTEMPTS: usize = 8;

/// The precondition a client put on a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum UserCondition {
    /// None.
    #[default]
    None,
    /// `If-Match`.
    IfMatch(IfMatch),
    /// `If-None-Match: *`.
    IfNoneMatchAny,
}

impl UserCondition {
    /// The condition as a request-fingerprint part (record format 2): a defined encoding,
    /// so renaming a type or a variant never changes a stored fingerprint.
    pub(crate) fn fingerprint_part(self) -> Vec<u8> {
        match self {
            Self::None => b"none".to_vec(),
            Self::IfMatch(m) => m.fingerprint_part(),
            Self::IfNoneMatchAny => b"if-none-match:*".to_vec(),
        }
    }

    /// The part record format 1 used: this type's `Debug` text as it was then (frozen
    /// here, so records written by earlier versions are still recognised).
    pub(crate) fn legacy_fingerprint_part(self) -> String {
        match self {
            Self::None => "None".to_owned(),
            Self::IfMatch(m) => format!("IfMatch({})", m.legacy_fingerprint_text()),
            Self::IfNoneMatchAny => "IfNoneMatchAny".to_owned(),
        }
    }
}

/// The key whose condition failed, when `e` is a failed condition.
fn condition_failed(e: &BackendError) -> Option<&Bytes> {
    match e {
        BackendError::Node {
            error: RemoteError::ConditionFailed { key, .. },
            ..
        } => Some(key),
        _ => None,
    }
}

/// A validated PUT.
#[derive(Debug, Clone)]
pub(crate) struct PutRequest {
    pub(crate) key: Bytes,
    pub(crate) value: Bytes,
    pub(crate) content_type: Option<Bytes>,
    pub(crate) expires_at: Option<u64>,
    pub(crate) condition: UserCondition,
}

/// Result of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteOutcome {
    pub(crate) status: StatusCode,
    pub(crate) version: u64,
    pub(crate) expires_at: Option<u64>,
    /// This request's write produced `version` (false: an idempotent replay).
    pub(crate) fresh: bool,
}

impl WriteOutcome {
    fn from_replay(r: &Replay) -> Self {
        Self {
            status: StatusCode::from_u16(r.record.status).unwrap_or(StatusCode::OK),
            version: r.version,
            expires_at: r.record.expires_at,
            fresh: false,
        }
    }
}

const PRECONDITION: ApiError = ApiError::PreconditionFailed {
    detail: "the key's current version does not satisfy If-Match / If-None-Match",
};

/// The engine condition for a write, given the key's current version; `Err` when the
/// precondition already fails.
fn engine_condition(
    cond: UserCondition,
    cur: Option<SeqNo>,
    last_attempt: bool,
) -> Result<Condition, ApiError> {
    match cond {
        UserCondition::None if last_attempt => Ok(Condition::None),
        UserCondition::None => Ok(cur.map_or(Condition::MustNotExist, Condition::VersionIs)),
        UserCondition::IfMatch(IfMatch::Version(v)) if cur == Some(SeqNo(v)) => {
            Ok(Condition::VersionIs(SeqNo(v)))
        }
        UserCondition::IfMatch(IfMatch::Any) => cur.map(Condition::VersionIs).ok_or(PRECONDITION),
        UserCondition::IfMatch(IfMatch::Version(_)) => Err(PRECONDITION),
        UserCondition::IfNoneMatchAny if cur.is_none() => Ok(Condition::MustNotExist),
        UserCondition::IfNoneMatchAny => Err(PRECONDITION),
    }
}

/// The engine condition for a client's precondition, without reading anything first.
fn direct_condition(cond: UserCondition) -> Condition {
    match cond {
        UserCondition::None => Condition::None,
        UserCondition::IfMatch(IfMatch::Version(v)) => Condition::VersionIs(SeqNo(v)),
        UserCondition::IfMatch(IfMatch::Any) => Condition::MustExist,
        UserCondition::IfNoneMatchAny => Condition::MustNotExist,
    }
}

/// On a failed precondition: replay if a concurrent twin with the same idempotency key won,
/// else the error.
async fn precondition_or_replay(
    state: &AppState,
    idem: Option<&Idem>,
    shard: tierkv_engine::types::ShardId,
    err: ApiError,
) -> Result<WriteOutcome, ApiError> {
    if let Some(idem) = idem
        && let Some(r) = idem.lookup(state, shard).await?
    {
        return Ok(WriteOutcome::from_replay(&r));
    }
    Err(err)
}

/// The outcome of a twin request whose record write made ours fail. Its batch was sequenced
/// before ours but may not be durable and visible yet, so the record is polled for a bounded
/// time (if the twin's write fails instead, the WAL is poisoned and the lookup finds nothing).
async fn await_replay(
    state: &AppState,
    idem: &Idem,
    shard: tierkv_engine::types::ShardId,
) -> Result<WriteOutcome, ApiError> {
    let mut delay = Duration::from_millis(1);
    for _ in 0..12 {
        if let Some(r) = idem.lookup(state, shard).await? {
            return Ok(WriteOutcome::from_replay(&r));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
    Err(ApiError::StorageUnavailable {
        cause: "a concurrent request with the same Idempotency-Key did not complete".into(),
    })
}

/// Puts a value, honouring the condition and the idempotency record, and tells the read
/// tier what it wrote (or that it knows nothing more of the key).
pub(crate) async fn put(
    state: &AppState,
    req: PutRequest,
    idem: Option<&Idem>,
) -> Result<WriteOutcome, ApiError> {
    let sent = Instant::now();
    let key = req.key.clone();
    let cached = CachedValue {
        version: 0,
        value: req.value.clone(),
        content_type: req.content_type.clone(),
        expires_at: req.expires_at,
    };
    let r = put_inner(state, req, idem).await;
    match &r {
        Ok(o) if o.fresh => state.reads().wrote(
            &key,
            CachedValue {
                version: o.version,
                ..cached
            },
            sent,
        ),
        _ => state.reads().forget(&key),
    }
    r
}

async fn put_inner(
    state: &AppState,
    req: PutRequest,
    idem: Option<&Idem>,
) -> Result<WriteOutcome, ApiError> {
    let max = state.options().max_value_bytes;
    if req.value.len() > max {
        return Err(ApiError::ValueTooLarge {
            len: req.value.len(),
            max,
        });
    }
    let shard = state.shard_of(&req.key);
    if let Some(idem) = idem
        && let Some(r) = idem.lookup(state, shard).await?
    {
        return Ok(WriteOutcome::from_replay(&r));
    }
    let dkey = keys::data_key(&req.key);
    let put_op = |condition| WriteOp {
        mutation: Mutation::Put {
            key: dkey.clone(),
            value: req.value.clone(),
            content_type: req.content_type.clone(),
            expires_at: req.expires_at,
        },
        condition,
    };
    let Some(idem) = idem else {
        // One write; the engine says whether the key existed.
        let batch = WriteBatch {
            ops: vec![put_op(direct_condition(req.condition))],
            report_prior: true,
        };
        return match state.backend().write(shard, batch).await {
            Ok((seq, prior)) => Ok(WriteOutcome {
                status: if prior.first().copied().flatten().is_some() {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                },
                version: seq.0,
                expires_at: req.expires_at,
                fresh: true,
            }),
            Err(e) if condition_failed(&e).is_some() => Err(PRECONDITION),
            Err(e) => Err(e.into()),
        };
    };
    let idem = Some(idem);
    for attempt in 0..PUT_ATTEMPTS {
        let cur = state
            .backend()
            .get(shard, dkey.clone(), ReadConsistency::Strong)
            .await?
            .map(|e| e.seq);
        let condition = match engine_condition(req.condition, cur, attempt + 1 == PUT_ATTEMPTS) {
            Ok(c) => c,
            Err(e) => return precondition_or_replay(state, idem, shard, e).await,
        };
        let status = if cur.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        let mut batch = WriteBatch {
            ops: vec![put_op(condition)],
            report_prior: false,
        };
        if let Some(idem) = idem {
            batch
                .ops
                .push(idem.record_op(state, status.as_u16(), req.expires_at, None)?);
        }
        match state.backend().write(shard, batch).await {
            Ok((seq, _)) => {
                return Ok(WriteOutcome {
                    status,
                    version: seq.0,
                    expires_at: req.expires_at,
                    fresh: true,
                });
            }
            Err(ref e) if let Some(key) = condition_failed(e) => {
                if let Some(idem) = idem.filter(|i| i.record_key == *key) {
                    // A twin with the same idempotency key wrote first: replay its outcome.
                    return await_replay(state, idem, shard).await;
                }
                match req.condition {
                    // Another writer got in between our read and our write: read again.
                    UserCondition::None | UserCondition::IfMatch(IfMatch::Any) => {}
                    _ => return precondition_or_replay(state, idem, shard, PRECONDITION).await,
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Only `If-Match: *` can get here: the key kept changing under us.
    precondition_or_replay(state, idem, shard, PRECONDITION).await
}

/// Deletes a key (idempotent: an absent key is deleted too), honouring `If-Match`, and tells
/// the read tier.
pub(crate) async fn delete(
    state: &AppState,
    key: &Bytes,
    if_match: Option<IfMatch>,
    idem: Option<&Idem>,
) -> Result<WriteOutcome, ApiError> {
    let sent = Instant::now();
    let r = delete_inner(state, key, if_match, idem).await;
    match &r {
        Ok(o) if o.fresh => state.reads().deleted(key, o.version, sent),
        _ => state.reads().forget(key),
    }
    r
}

async fn delete_inner(
    state: &AppState,
    key: &Bytes,
    if_match: Option<IfMatch>,
    idem: Option<&Idem>,
) -> Result<WriteOutcome, ApiError> {
    let shard = state.shard_of(key);
    if let Some(idem) = idem
        && let Some(r) = idem.lookup(state, shard).await?
    {
        return Ok(WriteOutcome::from_replay(&r));
    }
    let dkey = keys::data_key(key);
    let condition = if_match.map_or(Condition::None, |m| {
        direct_condition(UserCondition::IfMatch(m))
    });
    let mut batch = WriteBatch {
        ops: vec![WriteOp {
            mutation: Mutation::Delete { key: dkey },
            condition,
        }],
        report_prior: false,
    };
    if let Some(idem) = idem {
        batch
            .ops
            .push(idem.record_op(state, StatusCode::NO_CONTENT.as_u16(), None, None)?);
    }
    match state.backend().write(shard, batch).await {
        Ok((seq, _)) => Ok(WriteOutcome {
            status: StatusCode::NO_CONTENT,
            version: seq.0,
            expires_at: None,
            fresh: true,
        }),
        Err(ref e) if let Some(key) = condition_failed(e) => match idem {
            Some(idem) if idem.record_key == *key => await_replay(state, idem, shard).await,
            _ => precondition_or_replay(state, idem, shard, PRECONDITION).await,
        },
        Err(e) => Err(e.into()),
    }
}

/// The live value of a user key, read as `want` says through the read tier (value cache,
/// coalescing: design note 0008).
pub(crate) async fn read(
    state: &AppState,
    key: &Bytes,
    want: Want,
) -> Result<ReadOutcome, ApiError> {
    let shard = state.shard_of(key);
    Ok(state
        .reads()
        .read(shard, key, want, state.now_millis())
        .await?)
}

/// Converts the TTL parameters (`ttl` seconds, or `expires_at` unix seconds) into an absolute
/// expiry in unix millis.
pub(crate) fn expiry(
    state: &AppState,
    ttl: Option<&str>,
    expires_at: Option<&str>,
) -> Result<Option<u64>, ApiError> {
    const MAX_TTL_SECS: u64 = 315_360_000;
    let now = state.now_millis();
    match (ttl, expires_at) {
        (Some(_), Some(_)) => Err(ApiError::InvalidTtl {
            reason: "give either ttl or expires_at, not both",
        }),
        (Some(t), None) => {
            let secs: u64 = t.trim().parse().map_err(|_| ApiError::InvalidTtl {
                reason: "ttl must be an integer number of seconds",
            })?;
            if !(1..=MAX_TTL_SECS).contains(&secs) {
                return Err(ApiError::InvalidTtl {
                    reason: "ttl must be between 1 and 315360000 seconds",
                });
            }
            Ok(Some(now.saturating_add(secs * 1000)))
        }
        (None, Some(t)) => {
            let secs: u64 = t.trim().parse().map_err(|_| ApiError::InvalidTtl {
                reason: "expires_at must be an integer unix time in seconds",
            })?;
            let at = secs.checked_mul(1000).ok_or(ApiError::InvalidTtl {
                reason: "expires_at is out of range",
            })?;
            if at <= now {
                return Err(ApiError::InvalidTtl {
                    reason: "expires_at is not in the future",
                });
            }
            if at - now > MAX_TTL_SECS * 1000 {
                return Err(ApiError::InvalidTtl {
                    reason: "expires_at is more than 315360000 seconds away",
                });
            }
            Ok(Some(at))
        }
        (None, None) => Ok(None),
    }
}
