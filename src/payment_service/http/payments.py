"""The payment use case: accept a payment request, route it to the processor, await its answer.

Accepting a payment means: its security code is in the vault, its command is acknowledged by
Kafka (acks=all), and a waiter is registered for its result. Only then can the caller be told
anything but 503. The answer is 200 with the final payment, or 202 with `Location` when the result
has not arrived within the sync timeout: the payment goes on, and GET shows it.

Idempotency-Key (merchant-scoped, Stripe semantics): the transaction id is derived from the key,
a Redis lock refuses concurrent use (409), a stored request hash tells a replay (same answer,
`Idempotent-Replayed: true`) from reuse with another body (422).
"""

from __future__ import annotations

from payment_service.cards.crypto import KeyRing
from payment_service.core.errors import NotAccepted, NotFound, ValidationFailed
from payment_service.core.ids import new_id
from payment_service.core.ports import PaymentRepository, SecurityCodeStore
from payment_service.http.answers import Answer, check_hash, processing, replay, result_error
from payment_service.http.idempotency import AcceptedMarkers, IdempotencyLocks
from payment_service.http.intake import payment_command, payment_request_hash
from payment_service.http.request_reply import RequestReply
from payment_service.ops.logcontext import bind
from payment_service.schemas.messages import PaymentResult, ProcessPaymentV1
from payment_service.schemas.payments import PaymentRequest
from payment_service.schemas.views import payment_view


class PaymentService:
    """`POST /api/v1/payments/process` and `GET /api/v1/payments/{id}`."""

    def __init__(
        self,
        *,
        secret_key: bytes,
        payments: PaymentRepository,
        vault: SecurityCodeStore,
        ring: KeyRing,
        locks: IdempotencyLocks,
        markers: AcceptedMarkers,
        sender: RequestReply,
    ) -> None:
        self._secret = secret_key
        self._payments = payments
        self._vault = vault
        self._ring = ring
        self._locks = locks
        self._markers = markers
        self._sender = sender

    async def process_payment(
        self,
        request: PaymentRequest,
        *,
        merchant_id: str,
        idempotency_key: str | None,
        correlation_id: str,
    ) -> Answer:
        if request.merchant_id != merchant_id:
            raise ValidationFailed(
                "merchant_id: does not match the API key's merchant",
                errors=[{"param": "merchant_id", "message": "does not match the API key"}],
                param="merchant_id",
            )
        body_hash = payment_request_hash(self._secret, request)
        transaction_id = new_id(merchant_id, idempotency_key, "payment")
        bind(transaction_id=transaction_id)
        if idempotency_key is None:
            return await self._submit(request, transaction_id, None, body_hash, correlation_id)
        marker_key = self._markers.key(transaction_id)
        async with self._locks.hold(merchant_id, idempotency_key, marker_key) as marker:
            existing = await self._payments.get_payment(transaction_id, merchant_id=merchant_id)
            if existing is not None:
                check_hash(existing.request_hash, body_hash)
                return replay(existing, None)
            accepted = self._markers.request_hash(marker, merchant_id)
            if accepted is not None:
                check_hash(accepted, body_hash)
                return processing(transaction_id, replayed=True)
            return await self._submit(
                request, transaction_id, idempotency_key, body_hash, correlation_id
            )

    async def _submit(
        self,
        request: PaymentRequest,
        transaction_id: str,
        idempotency_key: str | None,
        body_hash: str,
        correlation_id: str,
    ) -> Answer:
        command = payment_command(
            request,
            transaction_id=transaction_id,
            ring=self._ring,
            secret_key=self._secret,
            idempotency_key=idempotency_key,
            body_hash=body_hash,
        )
        # The security code and the "accepted" marker in one round trip.
        marker = self._markers.entry(transaction_id, request.merchant_id, body_hash)
        await self._vault.put(transaction_id, request.card_data.cvv, also=marker)
        message = ProcessPaymentV1(data=command).model_dump_json().encode()
        try:
            result = await self._sender.send(message, transaction_id, correlation_id)
        except NotAccepted:
            await self._vault.discard(transaction_id)
            await self._markers.forget(transaction_id)
            raise
        return _answer(result, transaction_id)

    async def get_payment(self, transaction_id: str, *, merchant_id: str) -> Answer:
        payment = await self._payments.get_payment(transaction_id, merchant_id=merchant_id)
        if payment is not None:
            return Answer(200, payment_view(payment).model_dump(mode="json"))
        if await self._markers.accepted_hash(transaction_id, merchant_id) is not None:
            return Answer(200, {"transaction_id": transaction_id, "status": "pending"})
        raise NotFound(f"no payment {transaction_id!r}", param="transaction_id")


def _answer(result: PaymentResult | None, transaction_id: str) -> Answer:
    if result is not None and result.error is not None:
        raise result_error(result.error.code, result.error.message)
    if result is None or not result.final or result.payment is None:
        return processing(transaction_id, replayed=False)
    return Answer(200, result.payment)
