"""The capture and cancel use cases: check quickly, route to the processor, await the answer.

`POST /api/v1/payments/{id}/capture` (`amount?`, at most what was authorized) and
`POST /api/v1/payments/{id}/cancel` (`cancellation_reason?`) of a manual-capture payment
(`requires_capture`). Both go to Kafka as commands keyed by the transaction id, so they are
ordered with the payment and its refunds; the processor decides under the row lock. With an
Idempotency-Key (bound by the processor in the same transaction as the request), a retry replays
the payment as it stands (`Idempotent-Replayed: true`); another body under the key is a 422.
"""

from __future__ import annotations

from typing import Any

from payment_service.core.capture_ports import CaptureRepository
from payment_service.core.errors import (
    CaptureExceedsAuthorized,
    IdempotencyKeyReused,
    NotFound,
    PaymentNotCapturable,
    ValidationFailed,
)
from payment_service.core.money import MoneyError, to_major_units, to_minor_units
from payment_service.core.ports import PaymentRepository
from payment_service.core.records import PaymentRecord
from payment_service.core.rules import repeats_capture
from payment_service.core.states import PaymentStatus
from payment_service.http.answers import Answer, check_hash, replay, result_error
from payment_service.http.idempotency import IdempotencyLocks
from payment_service.http.intake import capture_request_hash
from payment_service.http.request_reply import RequestReply
from payment_service.schemas.captures import CancelBody, CaptureBody
from payment_service.schemas.messages import (
    CancelPayment,
    CancelPaymentV1,
    CapturePayment,
    CapturePaymentV1,
)

S = PaymentStatus


class CaptureService:
    """Capture and cancel of manual-capture payments."""

    def __init__(
        self,
        *,
        secret_key: bytes,
        payments: PaymentRepository,
        captures: CaptureRepository,
        locks: IdempotencyLocks,
        sender: RequestReply,
    ) -> None:
        self._secret = secret_key
        self._payments = payments
        self._captures = captures
        self._locks = locks
        self._sender = sender

    async def capture(
        self,
        transaction_id: str,
        body: CaptureBody,
        *,
        merchant_id: str,
        idempotency_key: str | None,
        correlation_id: str,
        actor: str | None = None,
    ) -> Answer:
        payment = await self._payment(transaction_id, merchant_id)
        amount_minor = _amount_minor(body, payment)
        body_hash = capture_request_hash(
            self._secret, transaction_id, "capture", {"amount_minor": amount_minor}
        )

        async def submit() -> Answer:
            _check_capturable(payment, "capture", amount_minor)
            command = CapturePayment(
                transaction_id=transaction_id, merchant_id=merchant_id, amount_minor=amount_minor,
                idempotency_key=idempotency_key, request_hash=body_hash, requested_by=actor,
            )  # fmt: skip
            message = CapturePaymentV1(data=command).model_dump_json().encode()
            return await self._send(message, payment, correlation_id, "capture")

        return await self._keyed(payment, "capture", idempotency_key, body_hash, submit)

    async def cancel(
        self,
        transaction_id: str,
        body: CancelBody,
        *,
        merchant_id: str,
        idempotency_key: str | None,
        correlation_id: str,
        actor: str | None = None,
    ) -> Answer:
        payment = await self._payment(transaction_id, merchant_id)
        body_hash = capture_request_hash(
            self._secret, transaction_id, "cancel", body.model_dump(mode="json")
        )

        async def submit() -> Answer:
            _check_capturable(payment, "cancel", None)
            command = CancelPayment(
                transaction_id=transaction_id, merchant_id=merchant_id,
                cancellation_reason=body.cancellation_reason,
                idempotency_key=idempotency_key, request_hash=body_hash, requested_by=actor,
            )  # fmt: skip
            message = CancelPaymentV1(data=command).model_dump_json().encode()
            return await self._send(message, payment, correlation_id, "cancel")

        return await self._keyed(payment, "cancel", idempotency_key, body_hash, submit)

    async def _payment(self, transaction_id: str, merchant_id: str) -> PaymentRecord:
        payment = await self._payments.get_payment(transaction_id, merchant_id=merchant_id)
        if payment is None:
            raise NotFound(f"no payment {transaction_id!r}", param="transaction_id")
        return payment

    async def _keyed(
        self,
        payment: PaymentRecord,
        kind: str,
        idempotency_key: str | None,
        body_hash: str,
        submit: Any,
    ) -> Answer:
        if idempotency_key is None:
            answer: Answer = await submit()
            return answer
        async with self._locks.hold(payment.merchant_id, idempotency_key, None):
            bound = await self._captures.idempotent_request(payment.merchant_id, idempotency_key)
            if bound is None:
                answer = await submit()
                return answer
            bound_kind, resource_id, stored_hash = bound
            if bound_kind != kind or resource_id != payment.transaction_id:
                raise IdempotencyKeyReused("Idempotency-Key was used for another request")
            check_hash(stored_hash, body_hash)
            return replay(payment, None)

    async def _send(
        self, message: bytes, payment: PaymentRecord, correlation_id: str, kind: str
    ) -> Answer:
        txn = payment.transaction_id
        result = await self._sender.send(
            message, txn, correlation_id, kind=kind, merchant_id=payment.merchant_id
        )
        if result is not None and result.error is not None:
            raise result_error(result.error.code, result.error.message)
        if result is None or not result.final or result.payment is None:
            status = "capturing" if kind == "capture" else "canceling"
            body = {"transaction_id": txn, "status": status}
            return Answer(202, body, {"Location": f"/api/v1/payments/{txn}"})
        return Answer(200, result.payment)


def _check_capturable(payment: PaymentRecord, kind: str, amount_minor: int | None) -> None:
    """The quick answer for the obvious refusals; the processor decides under the row lock
    (where the same capture or cancel again, in flight or done, answers as it stands)."""
    if payment.status == S.REQUIRES_CAPTURE or repeats_capture(payment, kind, amount_minor):
        return
    raise PaymentNotCapturable(
        f"payment {payment.transaction_id} is {payment.status.value}; "
        f"{kind} needs status requires_capture (capture_method manual)"
    )


def _amount_minor(body: CaptureBody, payment: PaymentRecord) -> int | None:
    """The amount to capture in minor units (None: all authorized), or a 422 / 400."""
    if body.amount is None:
        return None
    try:
        amount = to_minor_units(body.amount, payment.currency)
    except MoneyError as exc:
        detail = {"param": "amount", "message": str(exc), "type": exc.code}
        raise ValidationFailed(
            f"amount: {exc}", errors=[detail], param="amount", code=exc.code
        ) from None
    if amount > payment.amount_minor:
        authorized = to_major_units(payment.amount_minor, payment.currency)
        raise CaptureExceedsAuthorized(
            f"capture exceeds the {authorized} {payment.currency} authorized", param="amount"
        )
    return amount
