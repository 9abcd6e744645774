"""The service's error tree: what callers are answered, and what every port may raise.

Each edge maps these to its own terms once (HTTP status by class, DLQ or retry in the processor);
the adapters raise them (storage translates asyncpg's errors, the bank client its transport's).

    PaymentServiceError            answers for the caller, by HTTP status
    ├── InvalidRequest             400  malformed JSON, bad header
    │   ├── PaymentNotRefundable   400  payment_not_refundable
    │   ├── RefundExceedsRemaining 400  refund_exceeds_remaining
    │   ├── PaymentNotCapturable   400  payment_not_capturable (not requires_capture)
    │   ├── CaptureExceedsAuthorized 400 capture_exceeds_authorized
    │   └── PaymentMethodDetached  400  payment_method_detached
    ├── ValidationFailed           422  field-by-field detail
    ├── IdempotencyKeyReused       422  same key, other body
    │   └── IdempotencyConflict         (also a StorageError, below)
    ├── AuthenticationFailed       401
    ├── CardExpired                402  card_expired (a card on file past its expiry)
    ├── NotFound                   404  unknown, or another merchant's (never 403)
    │   └── PaymentMethodNotFound  404  payment_method_not_found
    ├── MethodNotAllowed           405  method_not_allowed (with Allow)
    ├── BodyReadTimeout            408  the body did not arrive within its deadline
    ├── IdempotencyKeyInUse        409  concurrent request with the same key
    ├── BodyTooLarge               413
    ├── RateLimited                429  with Retry-After
    └── NotAccepted                503  not durably accepted: nothing charged, safe to retry
        └── Overloaded             503  too many requests in flight, with Retry-After

    StorageError                   the repositories (PostgreSQL could not do what was asked)
    ├── StorageUnavailable         transient (refused, lost, timeout, deadlock): nothing written
    ├── IntegrityViolation         a constraint refused the write
    ├── TransitionConflict         compare-and-set matched no row: not in the expected status
    ├── IdempotencyConflict        same idempotency key or id, other request
    └── MigrationError             migrations cannot be applied as they are

    BankError                      the BankClient port; a decline is a BankResult, never an error
    ├── BankNotSent                definitely not delivered: nothing charged; retry, same key
    │   ├── BankCircuitOpen        the breaker refused the call (open, or its probe in flight)
    │   └── BankBusy               our side was busy: no slot or connection in time, or a 429
    ├── BankOutcomeUnknown         maybe delivered, no usable answer: resolve by status inquiry
    │                              or a retry with the SAME key, never a new charge
    └── BankRejected               4xx: invalid, key reuse, over-capture; permanent

    CardDataError                  card data (the card-opening and security-code ports)
    ├── CardCryptoError            card_data_unreadable: encryption or decryption not done
    │   ├── KeyConfigError         card keys / secrets missing, malformed or weak
    │   ├── MalformedEnvelope      the ciphertext is not a valid envelope
    │   ├── UnknownKeyId           card_key_unknown: the envelope's key id is not held
    │   └── DecryptionError        authentication failed: wrong key, tampered, other binding
    │       └── EnvelopeMismatch   card_data_mismatch: sealed for another purpose or subject
    └── VaultUnavailable           Redis failed or was too slow (transient: retry later)

A card-data error's `failure_code` is what a payment that meets it fails with. Messages never
include card data, key bytes or ciphertext; they say what to do.
"""

from __future__ import annotations

from typing import Any, ClassVar

# The bank and card-data branches live in their own modules (this one would pass 300 lines);
# they are part of this tree and re-exported here, so every `except` names them from
# `core.errors`.
from payment_service.core.bank_errors import (
    BankBusy,
    BankCircuitOpen,
    BankError,
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
)
from payment_service.core.card_errors import (
    CardCryptoError,
    CardDataError,
    DecryptionError,
    EnvelopeMismatch,
    KeyConfigError,
    MalformedEnvelope,
    UnknownKeyId,
    VaultUnavailable,
)

__all__ = [
    "BankBusy",
    "BankCircuitOpen",
    "BankError",
    "BankNotSent",
    "BankOutcomeUnknown",
    "BankRejected",
    "CardCryptoError",
    "CardDataError",
    "DecryptionError",
    "EnvelopeMismatch",
    "KeyConfigError",
    "MalformedEnvelope",
    "UnknownKeyId",
    "VaultUnavailable",
]


class PaymentServiceError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        """`code` overrides the class's code with a more specific one (`malformed_json`...)."""
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code  # type: ignore[misc]


class InvalidRequest(PaymentServiceError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class PaymentNotRefundable(InvalidRequest):
    code = "payment_not_refundable"


class RefundExceedsRemaining(InvalidRequest):
    code = "refund_exceeds_remaining"


class PaymentNotCapturable(InvalidRequest):
    code = "payment_not_capturable"  # capture and cancel need status requires_capture


class CaptureExceedsAuthorized(InvalidRequest):
    code = "capture_exceeds_authorized"


class ValidationFailed(PaymentServiceError):
    status = 422
    type = "invalid_request_error"
    code = "validation_error"

    def __init__(
        self,
        message: str,
        *,
        errors: list[dict[str, Any]],
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code, param=param)
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


class PaymentMethodNotFound(NotFound):
    code = "payment_method_not_found"


class PaymentMethodDetached(InvalidRequest):
    code = "payment_method_detached"  # its envelope is destroyed: it can never be charged


class CardExpired(PaymentServiceError):
    status = 402
    type = "card_error"
    code = "card_expired"


class MethodNotAllowed(PaymentServiceError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


class BodyReadTimeout(PaymentServiceError):
    status = 408
    type = "invalid_request_error"
    code = "body_read_timeout"


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
    """503: the request's outcome is not known to us; the same Idempotency-Key finds it out."""

    status = 503
    type = "api_error"
    code = "not_accepted"


class Overloaded(NotAccepted):
    code = "overloaded"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


# -- storage -------------------------------------------------------------------------------------


class StorageError(Exception):
    """PostgreSQL could not do what was asked; the message names no card data nor secrets."""


class StorageUnavailable(StorageError):
    """Transient: nothing was committed, the same call may be retried."""


class IntegrityViolation(StorageError):
    """A constraint refused the write; retrying the same write will fail the same way."""


class MigrationError(StorageError):
    """The migration files and the database disagree; nothing was applied past the last good one."""


class TransitionConflict(StorageError):
    """The row was not in the expected status (or is missing: `current_status` is None).

    For a redelivered message this usually means the transition already happened; the caller
    reads the row and decides.
    """

    def __init__(self, current_status: str | None, *, resource_id: str = "") -> None:
        shown = current_status if current_status is not None else "missing"
        super().__init__(f"{resource_id or 'row'} is {shown}: compare-and-set matched no row")
        self.current_status = current_status
        self.resource_id = resource_id


class IdempotencyConflict(StorageError, IdempotencyKeyReused):
    """An idempotency key (or transaction/refund id) was already used for another request.

    `existing_resource_id` names what the key points at; `same_request` is True when the stored
    request hash matches (the key was used for the same body but another resource, e.g. two
    concurrent HTTP requests): the caller may answer with the existing resource.
    """

    def __init__(
        self, message: str, *, existing_resource_id: str | None = None, same_request: bool = False
    ) -> None:
        IdempotencyKeyReused.__init__(self, message)
        self.existing_resource_id = existing_resource_id
        self.same_request = same_request
