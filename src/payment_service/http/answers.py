"""What the API answers for payments and refunds: the final answer, a replay, or "processing".

An Idempotency-Key replay answers with the payment (or refund) as it stands now, with
`Idempotent-Replayed: true`: 200 once it is settled, 202 + `Location` while it is not. A result
that carries an error is raised as the service error its code names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from payment_service.core.errors import (
    CaptureExceedsAuthorized,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    PaymentMethodNotFound,
    PaymentNotCapturable,
    PaymentNotRefundable,
    PaymentServiceError,
    RefundExceedsRemaining,
    ValidationFailed,
)
from payment_service.core.records import PaymentRecord, RefundRecord
from payment_service.core.states import PAYMENT_SETTLED, RefundStatus
from payment_service.schemas.views import payment_view, refund_view

REPLAYED = {"Idempotent-Replayed": "true"}
# Commands the processor could not take or store as they stood (never sent to the bank).
_REFUSED = frozenset({"invalid_command", "command_not_stored"})

_RESULT_ERRORS: dict[str, type[PaymentServiceError]] = {
    "idempotency_key_reused": IdempotencyKeyReused,
    "resource_missing": NotFound,
    "payment_method_not_found": PaymentMethodNotFound,
    "payment_not_refundable": PaymentNotRefundable,
    "refund_exceeds_remaining": RefundExceedsRemaining,
    "payment_not_capturable": PaymentNotCapturable,
    "capture_exceeds_authorized": CaptureExceedsAuthorized,
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def replay(payment: PaymentRecord, refund: RefundRecord | None) -> Answer:
    """The answer to a replayed request: the payment (or the refund) as it stands now."""
    headers = dict(REPLAYED)
    view = payment_view(payment).model_dump(mode="json")
    if refund is not None:
        body = {**refund_view(refund).model_dump(mode="json"), "payment": view}
        status = 202 if refund.status == RefundStatus.PROCESSING else 200
        return Answer(status, body, headers)
    if payment.status not in PAYMENT_SETTLED:
        headers["Location"] = f"/api/v1/payments/{payment.transaction_id}"
        return Answer(202, view, headers)
    return Answer(200, view, headers)


def processing(transaction_id: str, *, replayed: bool) -> Answer:
    """202: accepted, no final answer yet; GET `Location` shows the payment."""
    headers = {"Location": f"/api/v1/payments/{transaction_id}"}
    if replayed:
        headers.update(REPLAYED)
    return Answer(202, {"transaction_id": transaction_id, "status": "processing"}, headers)


def check_hash(stored: str | None, presented: str) -> None:
    """The same Idempotency-Key with another request body is an error (422)."""
    if stored is not None and stored != presented:
        raise IdempotencyKeyReused(
            "Idempotency-Key was already used with a different request body; use a new key"
        )


def result_error(code: str, message: str) -> PaymentServiceError:
    """The service error a result's error code stands for."""
    if code in _REFUSED:  # the processor refused the command as it stood: 422
        detail = {"param": None, "message": message, "type": code}
        return ValidationFailed(message, errors=[detail], code=code)
    error_type = _RESULT_ERRORS.get(code)
    if error_type is None:
        return InvalidRequest(message, code=code)
    return error_type(message)
