//! The error body of every 4xx/5xx answer: `application/problem+json` (RFC 9457) with a
//! stable [`ErrorCode`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Media type of every error body.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of the `type` URI of every problem; the code follows it.
pub(crate) const PROBLEM_TYPE_BASE: &str = "https://tierkv.dev/errors/";

/// Stable, machine-readable error codes. New codes may be added; existing ones never change
/// meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the key is empty.
    KeyEmpty,
    /// 400: the key is longer than 1024 bytes.
    KeyTooLong,
    /// 413: the value is larger than `max_value_bytes`.
    ValueTooLarge,
    /// 413: the request body is larger than `max_body_bytes`.
    BodyTooLarge,
    /// 413: the batch has more than `max_batch_items` items.
    BatchTooLarge,
    /// 400: the batch has no items.
    BatchEmpty,
    /// 400: bad `ttl` / `expires_at` (not a number, out of range, in the past, or both given).
    InvalidTtl,
    /// 400: `Idempotency-Key` is not 1..=255 visible ASCII characters.
    InvalidIdempotencyKey,
    /// 422: the `Idempotency-Key` was first used for a different request.
    IdempotencyKeyReused,
    /// 400: the JSON body does not parse.
    MalformedJson,
    /// 400: the JSON body has a field the API does not know.
    UnknownField,
    /// 400: any other malformed request (bad base64, bad query, bad header, ...).
    InvalidRequest,
    /// 401: the route needs credentials (an API key, the cluster secret, or a dashboard
    /// session) and none valid came with the request; see `WWW-Authenticate`.
    Unauthorized,
    /// 403: the API key's role or key prefixes do not allow this request.
    Forbidden,
    /// 415: the body's `Content-Type` is not accepted (batch: `application/json` only).
    UnsupportedMediaType,
    /// 404: the key has no live value.
    KeyNotFound,
    /// 404: no such route.
    NotFound,
    /// 405: the route does not support the method.
    MethodNotAllowed,
    /// 412: an `If-Match` / `If-None-Match` precondition did not hold.
    PreconditionFailed,
    /// 429: one key got more reads or writes than its per-key limit allows at this gateway,
    /// or the client's address presented too many wrong credentials;
    /// see `Retry-After`.
    RateLimited,
    /// 503: the shard's unflushed data reached its bound; see `Retry-After`.
    Backpressure,
    /// 503: object storage unreachable or the WAL is poisoned; see `Retry-After`.
    StorageUnavailable,
    /// 503: this node no longer leads the shard (fenced); see `Retry-After`.
    NotLeader,
    /// 503: leadership of the shard changed while the write was in flight: it may or may not
    /// have been applied. Re-read, or retry with the same `Idempotency-Key`.
    OutcomeUnknown,
    /// 503: the server is shutting down.
    ShuttingDown,
    /// 503: too many requests in flight, shed; see `Retry-After`.
    Overloaded,
    /// 504: the request took longer than `request_timeout`.
    Timeout,
    /// 500: stored data failed validation.
    DataCorruption,
    /// 500: a bug or an unexpected failure.
    Internal,
    /// 404: the shard map has no member with this id (membership, design note 0009).
    MemberNotFound,
    /// 409: the shard map lists this id already (retired ids are never reused).
    MemberExists,
    /// 409: the member is not in the state the operation needs (drain: active; remove:
    /// draining; replace: not retired).
    MemberState,
    /// 409: the change would leave fewer active members than replicas per shard.
    TooFewMembers,
    /// 409: the member still hosts replicas, or a shard's configuration still lists it, or
    /// its node cannot be asked: drain it and wait for its moves (`GET /admin/v1/moves`).
    MemberNotEmpty,
    /// 409: a member runs an older version that does not know membership changes: upgrade
    /// every node first.
    MembersOutdated,
    /// 409: this server cannot change its membership (`tierkv serve`: one node).
    MembershipUnsupported,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [Self; 36] = [
        Self::KeyEmpty,
        Self::KeyTooLong,
        Self::ValueTooLarge,
        Self::BodyTooLarge,
        Self::BatchTooLarge,
        Self::BatchEmpty,
        Self::InvalidTtl,
        Self::InvalidIdempotencyKey,
        Self::IdempotencyKeyReused,
        Self::MalformedJson,
        Self::UnknownField,
        Self::InvalidRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::UnsupportedMediaType,
        Self::KeyNotFound,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::PreconditionFailed,
        Self::RateLimited,
        Self::Backpressure,
        Self::StorageUnavailable,
        Self::NotLeader,
        Self::OutcomeUnknown,
        Self::ShuttingDown,
        Self::Overloaded,
        Self::Timeout,
        Self::DataCorruption,
        Self::Internal,
        Self::MemberNotFound,
        Self::MemberExists,
        Self::MemberState,
        Self::TooFewMembers,
        Self::MemberNotEmpty,
        Self::MembersOutdated,
        Self::MembershipUnsupported,
    ];

    /// How the gateway logs an answer with this code: expected outcomes of a well-formed
    /// request (a key that does not exist, a failed precondition, a rate limit) are not
    /// server events and go to debug (they are counted on `/metrics`); malformed requests
    /// to info; answers that say the service is degraded for a while (retry later) to warn;
    /// failures to error.
    #[must_use]
    pub const fn log_level(self) -> tracing::Level {
        use tracing::Level;
        match self {
            Self::KeyNotFound | Self::PreconditionFailed | Self::RateLimited => Level::DEBUG,
            Self::KeyEmpty
            | Self::KeyTooLong
            | Self::ValueTooLarge
            | Self::BodyTooLarge
            | Self::BatchTooLarge
            | Self::BatchEmpty
            | Self::InvalidTtl
            | Self::InvalidIdempotencyKey
            | Self::IdempotencyKeyReused
            | Self::MalformedJson
            | Self::UnknownField
            | Self::InvalidRequest
            | Self::UnsupportedMediaType
            | Self::NotFound
            | Self::MethodNotAllowed
            | Self::MemberNotFound
            | Self::MemberExists
            | Self::MemberState
            | Self::TooFewMembers
            | Self::MemberNotEmpty
            | Self::MembersOutdated
            | Self::MembershipUnsupported => Level::INFO,
            Self::Unauthorized
            | Self::Forbidden
            | Self::Backpressure
            | Self::NotLeader
            | Self::OutcomeUnknown
            | Self::ShuttingDown
            | Self::Overloaded
            | Self::Timeout => Level::WARN,
            Self::StorageUnavailable | Self::DataCorruption | Self::Internal => Level::ERROR,
        }
    }

    /// The code as it appears in JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::KeyEmpty => "key_empty",
            Self::KeyTooLong => "key_too_long",
            Self::ValueTooLarge => "value_too_large",
            Self::BodyTooLarge => "body_too_large",
            Self::BatchTooLarge => "batch_too_large",
            Self::BatchEmpty => "batch_empty",
            Self::InvalidTtl => "invalid_ttl",
            Self::InvalidIdempotencyKey => "invalid_idempotency_key",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::MalformedJson => "malformed_json",
            Self::UnknownField => "unknown_field",
            Self::InvalidRequest => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::KeyNotFound => "key_not_found",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PreconditionFailed => "precondition_failed",
            Self::RateLimited => "rate_limited",
            Self::Backpressure => "backpressure",
            Self::StorageUnavailable => "storage_unavailable",
            Self::NotLeader => "not_leader",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::ShuttingDown => "shutting_down",
            Self::Overloaded => "overloaded",
            Self::Timeout => "timeout",
            Self::DataCorruption => "data_corruption",
            Self::Internal => "internal",
            Self::MemberNotFound => "member_not_found",
            Self::MemberExists => "member_exists",
            Self::MemberState => "member_state",
            Self::TooFewMembers => "too_few_members",
            Self::MemberNotEmpty => "member_not_empty",
            Self::MembersOutdated => "members_outdated",
            Self::MembershipUnsupported => "membership_unsupported",
        }
    }

    /// Short human-readable summary (the problem's `title`).
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::KeyEmpty => "Key is empty",
            Self::KeyTooLong => "Key too long",
            Self::ValueTooLarge => "Value too large",
            Self::BodyTooLarge => "Request body too large",
            Self::BatchTooLarge => "Batch too large",
            Self::BatchEmpty => "Batch is empty",
            Self::InvalidTtl => "Invalid TTL",
            Self::InvalidIdempotencyKey => "Invalid Idempotency-Key",
            Self::IdempotencyKeyReused => "Idempotency-Key reused for a different request",
            Self::MalformedJson => "Malformed JSON",
            Self::UnknownField => "Unknown JSON field",
            Self::InvalidRequest => "Invalid request",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::KeyNotFound => "Key not found",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::PreconditionFailed => "Precondition failed",
            Self::RateLimited => "Rate limited",
            Self::Backpressure => "Backpressure",
            Self::StorageUnavailable => "Storage unavailable",
            Self::NotLeader => "Not the shard leader",
            Self::OutcomeUnknown => "Write outcome unknown",
            Self::ShuttingDown => "Shutting down",
            Self::Overloaded => "Overloaded",
            Self::Timeout => "Request timed out",
            Self::DataCorruption => "Data corruption",
            Self::Internal => "Internal error",
            Self::MemberNotFound => "No such member",
            Self::MemberExists => "Member exists",
            Self::MemberState => "Member in the wrong state",
            Self::TooFewMembers => "Too few members would remain",
            Self::MemberNotEmpty => "Member still holds replicas",
            Self::MembersOutdated => "A member runs an older version",
            Self::MembershipUnsupported => "Membership changes unsupported",
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// `https://tierkv.dev/errors/<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the problem class.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request (never internal details for 5xx).
    pub detail: String,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// The request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}
