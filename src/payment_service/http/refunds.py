"""The refund use case: check a refund request quickly, route it to the processor, await it.

The API's pre-check (`core.rules.refundable_amount`, knowing no refunds in flight) refuses the
obvious cases at once; the processor decides under the payment's row lock. Refund ids are derived
from the Idempotency-Key, so a replay finds the refund it created.
"""

from __future__ import annotations

from payment_service.core.errors import IdempotencyKeyReused, NotFound, ValidationFailed
from payment_service.core.ids import new_id
from payment_service.core.money import MoneyError, to_minor_units
from payment_service.core.ports import PaymentRepository, RefundRepository
from payment_service.core.records import PaymentRecord
from payment_service.core.rules import refundable_amount
from payment_service.http.answers import Answer, check_hash, replay, result_error
from payment_service.http.idempotency import IdempotencyLocks
from payment_service.http.intake import refund_command, refund_request_hash
from payment_service.http.request_reply import RequestReply
from payment_service.ops.logcontext import bind
from payment_service.schemas.messages import RefundPaymentV1
from payment_service.schemas.payments import RefundRequest
from payment_service.schemas.views import refund_view


class RefundService:
    """`POST .../{id}/refund` and `GET .../{id}/refunds/{refund_id}` (the list: `http.lists`)."""

    def __init__(
        self,
        *,
        secret_key: bytes,
        payments: PaymentRepository,
        refunds: RefundRepository,
        locks: IdempotencyLocks,
        sender: RequestReply,
    ) -> None:
        self._secret = secret_key
        self._payments = payments
        self._refunds = refunds
        self._locks = locks
        self._sender = sender

    async def refund(
        self,
        transaction_id: str,
        request: RefundRequest,
        *,
        merchant_id: str,
        idempotency_key: str | None,
        correlation_id: str,
        actor: str = "api",
    ) -> Answer:
        payment = await self._payments.get_payment(transaction_id, merchant_id=merchant_id)
        if payment is None:
            raise NotFound(f"no payment {transaction_id!r}", param="transaction_id")
        body_hash = refund_request_hash(self._secret, transaction_id, request)
        refund_id = new_id(merchant_id, idempotency_key, "refund")
        bind(refund_id=refund_id)
        if idempotency_key is None:
            return await self._submit(
                payment, request, refund_id, None, body_hash, correlation_id, actor
            )
        async with self._locks.hold(merchant_id, idempotency_key, None):
            existing = await self._refunds.get_refund(refund_id)
            if existing is not None:
                if existing.merchant_id != merchant_id or existing.transaction_id != transaction_id:
                    raise IdempotencyKeyReused("Idempotency-Key was used for another request")
                check_hash(existing.request_hash, body_hash)
                return replay(payment, existing)
            return await self._submit(
                payment, request, refund_id, idempotency_key, body_hash, correlation_id, actor
            )

    async def _submit(
        self,
        payment: PaymentRecord,
        request: RefundRequest,
        refund_id: str,
        idempotency_key: str | None,
        body_hash: str,
        correlation_id: str,
        actor: str,
    ) -> Answer:
        amount_minor = _amount_minor(request, payment)
        # A quick answer for the obvious cases; the processor decides under the row lock.
        refundable_amount(payment, amount_minor, in_flight_minor=0)
        command = refund_command(
            request,
            refund_id=refund_id,
            transaction_id=payment.transaction_id,
            merchant_id=payment.merchant_id,
            amount_minor=amount_minor,
            idempotency_key=idempotency_key,
            body_hash=body_hash,
            requested_by=actor,
        )
        message = RefundPaymentV1(data=command).model_dump_json().encode()
        result = await self._sender.send(
            message,
            payment.transaction_id,
            correlation_id,
            kind="refund",
            merchant_id=payment.merchant_id,
            refund_id=refund_id,
        )
        if result is not None and result.error is not None:
            raise result_error(result.error.code, result.error.message)
        if result is None or not result.final or result.refund is None:
            location = f"/api/v1/payments/{payment.transaction_id}/refunds/{refund_id}"
            body = {"refund_id": refund_id, "transaction_id": payment.transaction_id}
            return Answer(202, {**body, "status": "processing"}, {"Location": location})
        return Answer(200, {**result.refund, "payment": result.payment})

    async def get_refund(self, transaction_id: str, refund_id: str, *, merchant_id: str) -> Answer:
        refund = await self._refunds.get_refund(refund_id)
        mine = refund is not None and refund.merchant_id == merchant_id
        if refund is None or not mine or refund.transaction_id != transaction_id:
            raise NotFound(f"no refund {refund_id!r}", param="refund_id")
        return Answer(200, refund_view(refund).model_dump(mode="json"))


def _amount_minor(request: RefundRequest, payment: PaymentRecord) -> int | None:
    """The requested amount in minor units (None: all that remains), or a 422 for its digits."""
    if request.amount is None:
        return None
    try:
        return to_minor_units(request.amount, payment.currency)
    except MoneyError as exc:
        detail = {"param": "amount", "message": str(exc), "type": exc.code}
        raise ValidationFailed(
            f"amount: {exc}", errors=[detail], param="amount", code=exc.code
        ) from None
