from enum import Enum

class ErrorCode(str, Enum):
    BACKPRESSURE = "backpressure"
    BATCH_EMPTY = "batch_empty"
    BATCH_TOO_LARGE = "batch_too_large"
    BODY_TOO_LARGE = "body_too_large"
    DATA_CORRUPTION = "data_corruption"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    INTERNAL = "internal"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    INVALID_REQUEST = "invalid_request"
    INVALID_TTL = "invalid_ttl"
    KEY_EMPTY = "key_empty"
    KEY_NOT_FOUND = "key_not_found"
    KEY_TOO_LONG = "key_too_long"
    MALFORMED_JSON = "malformed_json"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_FOUND = "not_found"
    NOT_LEADER = "not_leader"
    OUTCOME_UNKNOWN = "outcome_unknown"
    OVERLOADED = "overloaded"
    PRECONDITION_FAILED = "precondition_failed"
    RATE_LIMITED = "rate_limited"
    SHUTTING_DOWN = "shutting_down"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    TIMEOUT = "timeout"
    UNAUTHORIZED = "unauthorized"
    UNKNOWN_FIELD = "unknown_field"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    VALUE_TOO_LARGE = "value_too_large"

    def __str__(self) -> str:
        return str(self.value)
