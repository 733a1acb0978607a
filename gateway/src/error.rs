//! [`ApiError`]: every way a request can fail, its HTTP status and stable code, and the one
//! place where storage errors become API errors ([`ApiError::from_backend`]).
//!
//! Rendering: [`ApiError`] becomes a problem+json response that carries a [`ProblemInfo`]
//! extension; the error middleware (`layers::finish_errors`) fills in `instance`, sets
//! `Retry-After` from the options and logs the full error (5xx details never reach the body).

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tierkv_engine::error::{ErrorKind, InvalidReason};
use tierkv_wire::proto::RemoteError;
use tierkv_wire::shardmap::ShardMapError;

use crate::backend::BackendError;

use crate::problem::{ErrorCode, PROBLEM_JSON, PROBLEM_TYPE_BASE, Problem};

/// A failed request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The key is empty.
    #[error("the key is empty")]
    KeyEmpty,
    /// The key is too long.
    #[error("the key is {len} bytes long; the limit is {max}")]
    KeyTooLong {
        /// Key length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value is too large.
    #[error("the value is {len} bytes; the limit is {max}")]
    ValueTooLarge {
        /// Value length in bytes (0 when only the engine knew).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is too large.
    #[error("the request body exceeds the limit of {max} bytes")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// Too many batch items.
    #[error("the batch has {len} items; the limit is {max}")]
    BatchTooLarge {
        /// Items sent.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No batch items.
    #[error("the batch has no items")]
    BatchEmpty,
    /// Bad TTL parameters.
    #[error("invalid TTL: {reason}")]
    InvalidTtl {
        /// Why.
        reason: &'static str,
    },
    /// Bad `Idempotency-Key`.
    #[error("invalid Idempotency-Key: {reason}")]
    InvalidIdempotencyKey {
        /// Why.
        reason: &'static str,
    },
    /// `Idempotency-Key` reused for a different request.
    #[error("the Idempotency-Key was first used for a different request")]
    IdempotencyKeyReused,
    /// JSON syntax error.
    #[error("malformed JSON: {detail}")]
    MalformedJson {
        /// Parser message.
        detail: String,
    },
    /// Unknown JSON field.
    #[error("{detail}")]
    UnknownField {
        /// Parser message naming the field.
        detail: String,
    },
    /// Any other bad request.
    #[error("{detail}")]
    InvalidRequest {
        /// What is wrong.
        detail: String,
    },
    /// No valid credentials came with the request (design note 0012).
    #[error("{detail}")]
    Unauthorized {
        /// What was missing or wrong (never the credentials themselves).
        detail: &'static str,
    },
    /// The credentials are valid, but their role or key prefixes do not allow the request.
    #[error("{detail}")]
    Forbidden {
        /// What is not allowed (a key's id at most, never a secret).
        detail: String,
    },
    /// Too many wrong credentials came from the client's address.
    #[error(
        "too many failed authentication attempts from this address; retry in {retry_after_secs} s"
    )]
    TooManyFailures {
        /// Seconds until one more attempt is allowed (the `Retry-After`).
        retry_after_secs: u64,
    },
    /// Wrong `Content-Type`.
    #[error("expected Content-Type {expected}")]
    UnsupportedMediaType {
        /// The accepted media type.
        expected: &'static str,
    },
    /// No live value under the key.
    #[error("the key has no live value")]
    KeyNotFound,
    /// Unknown route.
    #[error("no such route")]
    NotFound,
    /// No API key with this id (`DELETE /admin/v1/keys/{id}`).
    #[error("no API key with this id")]
    NoSuchApiKey,
    /// Method not supported by the route.
    #[error("the route does not support this method")]
    MethodNotAllowed,
    /// A precondition failed.
    #[error("precondition failed: {detail}")]
    PreconditionFailed {
        /// Which precondition.
        detail: &'static str,
    },
    /// One key got more requests than its per-key limit allows (design note 0008).
    #[error("too many {} of this key; retry in {retry_after_secs} s", if *.writes { "writes" } else { "reads" })]
    RateLimited {
        /// Seconds until the key's bucket has a token again (the `Retry-After`).
        retry_after_secs: u64,
        /// Whether the write limit (else the read limit) was hit.
        writes: bool,
    },
    /// Engine backpressure.
    #[error("{cause}")]
    Backpressure {
        /// Internal cause (logged, never sent).
        cause: String,
    },
    /// Object store down, WAL poisoned.
    #[error("{cause}")]
    StorageUnavailable {
        /// Internal cause (logged, never sent).
        cause: String,
    },
    /// Fenced by a newer leader.
    #[error("{cause}")]
    NotLeader {
        /// Internal cause (logged, never sent).
        cause: String,
    },
    /// Leadership changed while a write was in flight.
    #[error("{cause}")]
    OutcomeUnknown {
        /// Internal cause (logged, never sent).
        cause: String,
    },
    /// The engine or server is closing.
    #[error("shutting down")]
    ShuttingDown,
    /// Load shed.
    #[error("too many requests in flight")]
    Overloaded,
    /// Request timeout.
    #[error("the request timed out")]
    Timeout,
    /// Stored data failed validation.
    #[error("{cause}")]
    DataCorruption {
        /// Internal cause (logged, never sent).
        cause: String,
    },
    /// A bug or unexpected failure.
    #[error("{cause}")]
    Internal {
        /// Internal cause (logged, never sent).
        cause: String,
    },
    /// A membership operation was refused (design note 0009): nothing changed.
    #[error("{detail}")]
    Membership {
        /// Which refusal.
        code: MembershipRefusal,
        /// What to do about it.
        detail: String,
    },
}

/// Why a membership operation was refused (each is a stable [`ErrorCode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipRefusal {
    /// `member_not_found` (404).
    NotFound,
    /// `member_exists` (409).
    Exists,
    /// `member_state` (409).
    WrongState,
    /// `too_few_members` (409).
    TooFew,
    /// `member_not_empty` (409).
    NotEmpty,
    /// `members_outdated` (409).
    Outdated,
    /// `membership_unsupported` (409).
    Unsupported,
}

/// Attached to every error response: the code and the full (internal) message for the log.
#[derive(Debug, Clone)]
pub(crate) struct ProblemInfo {
    /// The problem as sent (without `instance`).
    pub problem: Arc<Problem>,
    /// The full error, including internal details.
    pub log_message: Arc<str>,
    /// A `Retry-After` of this answer's own (429: when the key's bucket refills), instead of
    /// the configured one.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::KeyEmpty
            | Self::KeyTooLong { .. }
            | Self::BatchEmpty
            | Self::InvalidTtl { .. }
            | Self::InvalidIdempotencyKey { .. }
            | Self::MalformedJson { .. }
            | Self::UnknownField { .. }
            | Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::ValueTooLarge { .. } | Self::BodyTooLarge { .. } | Self::BatchTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::KeyNotFound | Self::NotFound | Self::NoSuchApiKey => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::RateLimited { .. } | Self::TooManyFailures { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Backpressure { .. }
            | Self::StorageUnavailable { .. }
            | Self::NotLeader { .. }
            | Self::OutcomeUnknown { .. }
            | Self::ShuttingDown
            | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::DataCorruption { .. } | Self::Internal { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Membership {
                code: MembershipRefusal::NotFound,
                ..
            } => StatusCode::NOT_FOUND,
            Self::Membership { .. } => StatusCode::CONFLICT,
        }
    }

    /// The stable code.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::KeyEmpty => ErrorCode::KeyEmpty,
            Self::KeyTooLong { .. } => ErrorCode::KeyTooLong,
            Self::ValueTooLarge { .. } => ErrorCode::ValueTooLarge,
            Self::BodyTooLarge { .. } => ErrorCode::BodyTooLarge,
            Self::BatchTooLarge { .. } => ErrorCode::BatchTooLarge,
            Self::BatchEmpty => ErrorCode::BatchEmpty,
            Self::InvalidTtl { .. } => ErrorCode::InvalidTtl,
            Self::InvalidIdempotencyKey { .. } => ErrorCode::InvalidIdempotencyKey,
            Self::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Self::MalformedJson { .. } => ErrorCode::MalformedJson,
            Self::UnknownField { .. } => ErrorCode::UnknownField,
            Self::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            Self::Unauthorized { .. } => ErrorCode::Unauthorized,
            Self::Forbidden { .. } => ErrorCode::Forbidden,
            Self::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            Self::KeyNotFound => ErrorCode::KeyNotFound,
            Self::NotFound | Self::NoSuchApiKey => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::PreconditionFailed { .. } => ErrorCode::PreconditionFailed,
            Self::RateLimited { .. } | Self::TooManyFailures { .. } => ErrorCode::RateLimited,
            Self::Backpressure { .. } => ErrorCode::Backpressure,
            Self::StorageUnavailable { .. } => ErrorCode::StorageUnavailable,
            Self::NotLeader { .. } => ErrorCode::NotLeader,
            Self::OutcomeUnknown { .. } => ErrorCode::OutcomeUnknown,
            Self::ShuttingDown => ErrorCode::ShuttingDown,
            Self::Overloaded => ErrorCode::Overloaded,
            Self::Timeout => ErrorCode::Timeout,
            Self::DataCorruption { .. } => ErrorCode::DataCorruption,
            Self::Internal { .. } => ErrorCode::Internal,
            Self::Membership { code, .. } => match code {
                MembershipRefusal::NotFound => ErrorCode::MemberNotFound,
                MembershipRefusal::Exists => ErrorCode::MemberExists,
                MembershipRefusal::WrongState => ErrorCode::MemberState,
                MembershipRefusal::TooFew => ErrorCode::TooFewMembers,
                MembershipRefusal::NotEmpty => ErrorCode::MemberNotEmpty,
                MembershipRefusal::Outdated => ErrorCode::MembersOutdated,
                MembershipRefusal::Unsupported => ErrorCode::MembershipUnsupported,
            },
        }
    }

    /// Whether the answer carries `Retry-After`.
    #[must_use]
    pub fn retry_after(&self) -> bool {
        matches!(
            self.code(),
            ErrorCode::RateLimited
                | ErrorCode::Backpressure
                | ErrorCode::StorageUnavailable
                | ErrorCode::NotLeader
                | ErrorCode::Overloaded
        )
    }

    /// What the client is told: the message for 4xx, a fixed sentence for 5xx.
    #[must_use]
    pub fn public_detail(&self) -> String {
        match self {
            Self::Backpressure { .. } => {
                "the shard is catching up with object storage; retry later".into()
            }
            Self::StorageUnavailable { .. } => {
                "storage is temporarily unavailable; retry later".into()
            }
            Self::NotLeader { .. } => "no leader of the shard is reachable now; retry later".into(),
            Self::OutcomeUnknown { .. } => {
                "leadership of the shard changed while the write was in \
                 flight; it may or may not have been applied: re-read, or retry with the same \
                 Idempotency-Key"
                    .into()
            }
            Self::DataCorruption { .. } => {
                "stored data failed validation; operators have been alerted".into()
            }
            Self::Internal { .. } => "internal error".into(),
            other => other.to_string(),
        }
    }

    /// Shorthand for an internal error.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal {
            cause: cause.to_string(),
        }
    }

    /// Shorthand for an invalid request.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::InvalidRequest {
            detail: detail.into(),
        }
    }

    /// The problem document of this error (without `instance`).
    #[must_use]
    pub fn problem(&self) -> Problem {
        let code = self.code();
        Problem {
            type_uri: format!("{PROBLEM_TYPE_BASE}{}", code.as_str()),
            title: code.title().to_owned(),
            status: self.status().as_u16(),
            detail: self.public_detail(),
            code,
            instance: None,
        }
    }

    /// The mapping of a refused or failed shard map change (membership, design note 0009):
    /// the operation's refusals are their stable codes; a map that cannot be written or read
    /// is `storage_unavailable` (retry); a map this build cannot read is `internal`.
    #[must_use]
    pub fn from_shard_map(e: ShardMapError) -> Self {
        let refused = |code, e: &ShardMapError| Self::Membership {
            code,
            detail: e.to_string(),
        };
        match e {
            ShardMapError::NotAMember { .. } => refused(MembershipRefusal::NotFound, &e),
            ShardMapError::MemberExists { .. } => refused(MembershipRefusal::Exists, &e),
            ShardMapError::WrongState { .. } => refused(MembershipRefusal::WrongState, &e),
            ShardMapError::TooFewActive { .. } | ShardMapError::NoActiveMembers => {
                refused(MembershipRefusal::TooFew, &e)
            }
            ShardMapError::EmptyAddr { .. } | ShardMapError::DuplicateMember { .. } => {
                Self::invalid(e.to_string())
            }
            ShardMapError::Contended { .. }
            | ShardMapError::Store(_)
            | ShardMapError::NoMap
            | ShardMapError::Vanished { .. } => Self::StorageUnavailable {
                cause: e.to_string(),
            },
            ShardMapError::NoMembers
            | ShardMapError::StateFormat { .. }
            | ShardMapError::UnknownState { .. }
            | ShardMapError::ShardCount { .. }
            | ShardMapError::ZeroReplication
            | ShardMapError::Vnodes { .. }
            | ShardMapError::UnsupportedFormat { .. }
            | ShardMapError::Malformed { .. }
            | ShardMapError::VersionMismatch { .. } => Self::internal(e),
        }
    }

    /// THE mapping from storage errors to API errors: every variant, down to the wire
    /// contract's error kinds, is listed (a variant added later fails to compile here until
    /// it is classified).
    #[must_use]
    pub fn from_backend(e: BackendError) -> Self {
        let cause = e.to_string();
        match e {
            BackendError::Node { error, .. } => Self::from_remote(error, cause),
            BackendError::NoLeader { .. } => Self::NotLeader { cause },
            BackendError::Unreachable { .. } => Self::StorageUnavailable { cause },
            BackendError::OutcomeUnknown { .. } => Self::OutcomeUnknown { cause },
            BackendError::Refused { .. } | BackendError::Protocol { .. } => {
                Self::Internal { cause }
            }
        }
    }

    /// A node's answer `e` (`cause`: its text with the node, for logs).
    fn from_remote(e: RemoteError, cause: String) -> Self {
        match e {
            RemoteError::Invalid { reason } => match reason {
                InvalidReason::KeyEmpty => Self::KeyEmpty,
                InvalidReason::KeyTooLong => Self::KeyTooLong {
                    len: 0,
                    max: tierkv_engine::types::MAX_USER_KEY_LEN,
                },
                InvalidReason::ValueTooLarge => Self::ValueTooLarge { len: 0, max: 0 },
                InvalidReason::BatchEmpty => Self::BatchEmpty,
                InvalidReason::ContentTypeTooLong
                | InvalidReason::DuplicateKey
                | InvalidReason::ZeroLimit => Self::InvalidRequest { detail: cause },
            },
            RemoteError::ConditionFailed { .. } => Self::PreconditionFailed {
                detail: "the key's current version does not satisfy the condition",
            },
            RemoteError::Backpressure { .. } => Self::Backpressure { cause },
            RemoteError::NotLeader { .. } => Self::NotLeader { cause },
            RemoteError::OutcomeUnknown { .. } => Self::OutcomeUnknown { cause },
            RemoteError::Closed => Self::ShuttingDown,
            RemoteError::NotHosted { .. } => Self::StorageUnavailable { cause },
            RemoteError::Other { kind, .. } => match kind {
                ErrorKind::Invalid => Self::InvalidRequest { detail: cause },
                ErrorKind::Conflict => Self::PreconditionFailed {
                    detail: "the key's current version does not satisfy the condition",
                },
                ErrorKind::Unavailable => Self::StorageUnavailable { cause },
                ErrorKind::Fenced => Self::NotLeader { cause },
                ErrorKind::Closed => Self::ShuttingDown,
                ErrorKind::Data => Self::DataCorruption { cause },
                ErrorKind::Internal => Self::Internal { cause },
            },
        }
    }
}

impl From<crate::auth::KeyStoreError> for ApiError {
    /// THE mapping of key-set failures (design note 0012): every variant listed.
    fn from(e: crate::auth::KeyStoreError) -> Self {
        use crate::auth::KeyStoreError as E;
        match e {
            E::Invalid(detail) => Self::InvalidRequest { detail },
            E::Store(_) | E::Contended => Self::StorageUnavailable {
                cause: e.to_string(),
            },
            E::Corrupt { .. } => Self::DataCorruption {
                cause: e.to_string(),
            },
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        Self::from_backend(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (self.status(), body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        let own_retry_after = match &self {
            Self::RateLimited {
                retry_after_secs, ..
            }
            | Self::TooManyFailures { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        if self.retry_after() {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(own_retry_after.unwrap_or(1)),
            );
        }
        if matches!(self, Self::Unauthorized { .. }) {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tierkv\""),
            );
        }
        res.extensions_mut().insert(ProblemInfo {
            problem: Arc::new(problem),
            log_message: self.to_string().into(),
            retry_after_secs: own_retry_after,
        });
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierkv_engine::types::{NodeId, ShardId};

    #[test]
    fn five_hundreds_hide_their_cause() {
        let e = ApiError::internal("secret path /var/lib/x");
        let p = e.problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("secret"));
        assert_eq!(p.type_uri, "https://tierkv.dev/errors/internal");
    }

    #[test]
    fn storage_errors_map_to_codes() {
        let node = |error| BackendError::Node {
            node: NodeId(2),
            error,
        };
        let e = ApiError::from_backend(node(RemoteError::Closed));
        assert_eq!(e.code(), ErrorCode::ShuttingDown);
        // A node's WAL failure travels as its class (`unavailable`) and message.
        let wal = RemoteError::from_engine(&tierkv_engine::Error::WalPoisoned { op: "fdatasync" });
        let e = ApiError::from_backend(node(wal));
        assert_eq!(
            (e.status().as_u16(), e.code()),
            (503, ErrorCode::StorageUnavailable)
        );
        assert!(e.retry_after());
        let e = ApiError::from_backend(BackendError::NoLeader { shard: ShardId(3) });
        assert_eq!((e.code(), e.retry_after()), (ErrorCode::NotLeader, true));
        let e = ApiError::from_backend(BackendError::Refused {
            node: NodeId(1),
            status: 401,
        });
        assert_eq!(e.status().as_u16(), 500);
        assert!(!e.problem().detail.contains("401"), "{:?}", e.problem());
    }
}
