"""The service's error tree. Each edge maps these to its own terms once (HTTP status, DLQ, retry).

    PaymentServiceError
    ├── InvalidRequest             400  malformed JSON, bad header
    │   ├── PaymentNotRefundable   400  payment_not_refundable
    │   └── RefundExceedsRemaining 400  refund_exceeds_remaining
    ├── ValidationFailed           422  field-by-field detail
    ├── IdempotencyKeyReused       422  same key, other body
    ├── AuthenticationFailed       401
    ├── NotFound                   404  unknown, or another merchant's (never 403)
    ├── IdempotencyKeyInUse        409  concurrent request with the same key
    ├── BodyTooLarge               413
    ├── RateLimited                429  with Retry-After
    └── NotAccepted                503  not durably accepted: nothing charged, safe to retry

Messages never include card data; they say what to do.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PaymentServiceError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(PaymentServiceError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message, param=param)
        if code is not None:
            self.code = code  # type: ignore[misc]


class PaymentNotRefundable(InvalidRequest):
    code = "payment_not_refundable"


class RefundExceedsRemaining(InvalidRequest):
    code = "refund_exceeds_remaining"


class ValidationFailed(PaymentServiceError):
    status = 422
    type = "invalid_request_error"
    code = "validation_error"

    def __init__(
        self, message: str, *, errors: list[dict[str, Any]], param: str | None = None
    ) -> None:
        super().__init__(message, param=param)
        self.errors = errors


class IdempotencyKeyReused(PaymentServiceError):
    status = 422
    type = "idempotency_error"
    code = "idempotency_key_reused"


class AuthenticationFailed(PaymentServiceError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class NotFound(PaymentServiceError):
    status = 404
    type = "invalid_request_error"
    code = "resource_missing"


class IdempotencyKeyInUse(PaymentServiceError):
    status = 409
    type = "idempotency_error"
    code = "idempotency_key_in_use"


class BodyTooLarge(PaymentServiceError):
    status = 413
    type = "invalid_request_error"
    code = "body_too_large"


class RateLimited(PaymentServiceError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class NotAccepted(PaymentServiceError):
    status = 503
    type = "api_error"
    code = "not_accepted"
