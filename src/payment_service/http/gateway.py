"""What the API does for each call, between parsing and the response: accept, route, await.

Accepting a payment means: its security code is in the vault, its command is acknowledged by
Kafka (acks=all), and a waiter is registered for its result. Only then can the caller be told
anything but 503. The answer is 200 with the final payment, or 202 with `Location` when the result
has not arrived within the sync timeout: the payment goes on, and GET shows it.

Idempotency-Key (merchant-scoped, Stripe semantics): ids are derived from the key, a Redis lock
refuses concurrent use (409), a stored request hash tells a replay (same answer,
`Idempotent-Replayed: true`) from reuse with another body (422).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payment_service.app.config import Settings
from payment_service.app.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidRequest,
    NotAccepted,
    NotFound,
    PaymentNotRefundable,
    PaymentServiceError,
    RefundExceedsRemaining,
    ValidationFailed,
)
from payment_service.app.intake import (
    new_id,
    payment_command,
    payment_request_hash,
    refund_command,
    refund_request_hash,
)
from payment_service.app.money import MoneyError, to_major_units, to_minor_units
from payment_service.app.states import REFUNDABLE
from payment_service.app.telemetry import inject_trace
from payment_service.cards.crypto import KeyRing
from payment_service.cards.vault import SecurityCodeVault
from payment_service.http.replies import ReplyRouter
from payment_service.kafka.producer import AsyncProducer, ProduceFailed
from payment_service.schemas.messages import (
    HEADER_CORRELATION_ID,
    HEADER_REPLY_ID,
    HEADER_REPLY_PARTITION,
    PaymentResult,
    ProcessPaymentV1,
    RefundPaymentV1,
)
from payment_service.schemas.payments import PaymentRequest, RefundRequest
from payment_service.storage.payments import PgPaymentRepository
from payment_service.storage.records import PaymentRecord, RefundRecord
from payment_service.storage.refunds import PgRefundRepository

log = logging.getLogger(__name__)

LOCK_SECONDS = 60
ACCEPTED_SECONDS = 24 * 3600

_RESULT_ERRORS: dict[str, type[PaymentServiceError]] = {
    "idempotency_key_reused": IdempotencyKeyReused,
    "resource_missing": NotFound,
    "payment_not_refundable": PaymentNotRefundable,
    "refund_exceeds_remaining": RefundExceedsRemaining,
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Gateway:
    def __init__(
        self,
        settings: Settings,
        *,
        payments: PgPaymentRepository,
        refunds: PgRefundRepository,
        redis: Redis,
        vault: SecurityCodeVault,
        ring: KeyRing,
        producer: AsyncProducer,
        replies: ReplyRouter,
    ) -> None:
        self._settings = settings
        self._secret = settings.require_secret("secret_key").encode()
        self._payments = payments
        self._refunds = refunds
        self._redis = redis
        self._vault = vault
        self._ring = ring
        self._producer = producer
        self._replies = replies
        # Compare-and-delete: release the lock only if it is still ours.
        self._release = redis.register_script(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
            " return 0"
        )

    # -- payments -------------------------------------------------------------------------------

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
        if idempotency_key is None:
            return await self._submit_payment(
                request, transaction_id, None, body_hash, correlation_id
            )
        accepted_key = _accepted_key(transaction_id)
        async with self._idempotency_lock(merchant_id, idempotency_key, accepted_key) as marker:
            existing = await self._payments.get_payment(transaction_id, merchant_id=merchant_id)
            if existing is not None:
                _check_hash(existing.request_hash, body_hash)
                return _replay(existing, None)
            accepted = _accepted_hash(marker, merchant_id)
            if accepted is not None:
                _check_hash(accepted, body_hash)
                return _processing(transaction_id, replayed=True)
            return await self._submit_payment(
                request, transaction_id, idempotency_key, body_hash, correlation_id
            )

    async def _submit_payment(
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
        accepted_key = _accepted_key(transaction_id)
        marker = json.dumps({"merchant_id": request.merchant_id, "request_hash": body_hash})
        # The security code and the "accepted" marker in one round trip.
        also = {accepted_key: (marker, ACCEPTED_SECONDS)}
        await self._vault.put(transaction_id, request.card_data.cvv, also=also)
        message = ProcessPaymentV1(data=command).model_dump_json().encode()
        try:
            result = await self._send(message, transaction_id, correlation_id)
        except NotAccepted:
            await self._vault.discard(transaction_id)
            await self._redis.delete(accepted_key)
            raise
        return self._payment_answer(result, transaction_id)

    def _payment_answer(self, result: PaymentResult | None, transaction_id: str) -> Answer:
        if result is not None and result.error is not None:
            raise _result_error(result.error.code, result.error.message)
        if result is None or not result.final or result.payment is None:
            return _processing(transaction_id, replayed=False)
        return Answer(200, result.payment)

    async def get_payment(self, transaction_id: str, *, merchant_id: str) -> Answer:
        payment = await self._payments.get_payment(transaction_id, merchant_id=merchant_id)
        if payment is not None:
            return Answer(200, payment.to_view().model_dump(mode="json"))
        if await self._accepted(transaction_id, merchant_id) is not None:
            return Answer(200, {"transaction_id": transaction_id, "status": "pending"})
        raise NotFound(f"no payment {transaction_id!r}", param="transaction_id")

    # -- refunds --------------------------------------------------------------------------------

    async def refund(
        self,
        transaction_id: str,
        request: RefundRequest,
        *,
        merchant_id: str,
        idempotency_key: str | None,
        correlation_id: str,
    ) -> Answer:
        payment = await self._payments.get_payment(transaction_id, merchant_id=merchant_id)
        if payment is None:
            raise NotFound(f"no payment {transaction_id!r}", param="transaction_id")
        body_hash = refund_request_hash(self._secret, transaction_id, request)
        refund_id = new_id(merchant_id, idempotency_key, "refund")
        if idempotency_key is None:
            return await self._submit_refund(
                payment, request, refund_id, None, body_hash, correlation_id
            )
        async with self._idempotency_lock(merchant_id, idempotency_key, None):
            existing = await self._refunds.get_refund(refund_id)
            if existing is not None:
                if existing.merchant_id != merchant_id or existing.transaction_id != transaction_id:
                    raise IdempotencyKeyReused("Idempotency-Key was used for another request")
                _check_hash(existing.request_hash, body_hash)
                return _replay(payment, existing)
            return await self._submit_refund(
                payment, request, refund_id, idempotency_key, body_hash, correlation_id
            )

    async def _submit_refund(
        self,
        payment: PaymentRecord,
        request: RefundRequest,
        refund_id: str,
        idempotency_key: str | None,
        body_hash: str,
        correlation_id: str,
    ) -> Answer:
        amount_minor = _refund_amount(request, payment)
        # A quick answer for the obvious cases; the processor decides under the row lock.
        if payment.status not in REFUNDABLE:
            raise PaymentNotRefundable(
                f"payment is {payment.status}; only captured payments can be refunded"
            )
        remaining = payment.captured_minor - payment.refunded_minor
        if remaining <= 0 or (amount_minor is not None and amount_minor > remaining):
            left = to_major_units(remaining, payment.currency)
            raise RefundExceedsRemaining(
                f"refund exceeds what remains refundable ({left} {payment.currency})",
                param="amount",
            )
        command = refund_command(
            request,
            refund_id=refund_id,
            transaction_id=payment.transaction_id,
            merchant_id=payment.merchant_id,
            amount_minor=amount_minor,
            idempotency_key=idempotency_key,
            body_hash=body_hash,
        )
        message = RefundPaymentV1(data=command).model_dump_json().encode()
        result = await self._send(message, payment.transaction_id, correlation_id)
        if result is not None and result.error is not None:
            raise _result_error(result.error.code, result.error.message)
        if result is None or not result.final or result.refund is None:
            location = f"/api/v1/payments/{payment.transaction_id}/refunds/{refund_id}"
            body = {"refund_id": refund_id, "transaction_id": payment.transaction_id}
            return Answer(202, {**body, "status": "processing"}, {"Location": location})
        return Answer(200, {**result.refund, "payment": result.payment})

    async def list_refunds(self, transaction_id: str, *, merchant_id: str) -> Answer:
        payment = await self._payments.get_payment(transaction_id, merchant_id=merchant_id)
        if payment is None:
            raise NotFound(f"no payment {transaction_id!r}", param="transaction_id")
        refunds = [r.to_view().model_dump(mode="json") for r in payment.refunds]
        return Answer(200, {"transaction_id": transaction_id, "refunds": refunds})

    async def get_refund(self, transaction_id: str, refund_id: str, *, merchant_id: str) -> Answer:
        refund = await self._refunds.get_refund(refund_id)
        if (
            refund is None
            or refund.merchant_id != merchant_id
            or (refund.transaction_id != transaction_id)
        ):
            raise NotFound(f"no refund {refund_id!r}", param="refund_id")
        return Answer(200, refund.to_view().model_dump(mode="json"))

    # -- plumbing -------------------------------------------------------------------------------

    async def _send(
        self, message: bytes, transaction_id: str, correlation_id: str
    ) -> PaymentResult | None:
        """Produce a command and wait for its result; NotAccepted when Kafka did not ack."""
        reply_id = str(uuid.uuid4())
        self._replies.expect(reply_id)
        headers = {
            HEADER_CORRELATION_ID: correlation_id,
            HEADER_REPLY_ID: reply_id,
            HEADER_REPLY_PARTITION: str(self._replies.partition),
        }
        if self._settings.datadog.trace_enabled:
            inject_trace(headers)
        try:
            await self._producer.produce(
                self._settings.kafka.topic_requests, message, key=transaction_id, headers=headers
            )
        except ProduceFailed:
            self._replies.forget(reply_id)
            raise NotAccepted(
                "the request could not be durably accepted (Kafka did not acknowledge it); "
                "nothing was charged: retry with the same Idempotency-Key"
            ) from None
        return await self._replies.wait(reply_id, self._settings.api.sync_timeout_seconds)

    @asynccontextmanager
    async def _idempotency_lock(
        self, merchant_id: str, key: str, prefetch: str | None
    ) -> AsyncIterator[bytes | str | None]:
        """Hold the key's lock (or 409); yields the value of `prefetch`, read in the same trip."""
        lock = f"idempotency-lock:{merchant_id}:{key}"
        token = str(uuid.uuid4())
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(lock, token, nx=True, ex=LOCK_SECONDS)
        if prefetch is not None:
            pipe.get(prefetch)
        acquired, *prefetched = await pipe.execute()
        if not acquired:
            raise IdempotencyKeyInUse(
                "another request with this Idempotency-Key is in progress; retry shortly"
            )
        try:
            yield prefetched[0] if prefetched else None
        finally:
            try:
                await self._release(keys=[lock], args=[token])
            except RedisError:
                # The answer is already decided; the lock expires by itself after LOCK_SECONDS.
                log.warning("could not release an idempotency lock; it will expire")

    async def _accepted(self, transaction_id: str, merchant_id: str) -> str | None:
        """The request hash of an accepted, not yet recorded payment of this merchant's."""
        return _accepted_hash(await self._redis.get(_accepted_key(transaction_id)), merchant_id)


def _accepted_key(transaction_id: str) -> str:
    return f"accepted:{transaction_id}"


def _accepted_hash(raw: bytes | str | None, merchant_id: str) -> str | None:
    if raw is None:
        return None
    marker = json.loads(raw)
    if marker.get("merchant_id") != merchant_id:
        return None
    return str(marker.get("request_hash"))


def _check_hash(stored: str | None, presented: str) -> None:
    if stored is not None and stored != presented:
        raise IdempotencyKeyReused(
            "Idempotency-Key was already used with a different request body; use a new key"
        )


def _replay(payment: PaymentRecord, refund: RefundRecord | None) -> Answer:
    headers = {"Idempotent-Replayed": "true"}
    view = payment.to_view().model_dump(mode="json")
    if refund is not None:
        body = {**refund.to_view().model_dump(mode="json"), "payment": view}
        if refund.status == "processing":
            return Answer(202, body, headers)
        return Answer(200, body, headers)
    if view["status"] in ("processing", "authorized", "unknown", "unknown_capture"):
        headers["Location"] = f"/api/v1/payments/{payment.transaction_id}"
        return Answer(202, view, headers)
    return Answer(200, view, headers)


def _processing(transaction_id: str, *, replayed: bool) -> Answer:
    headers = {"Location": f"/api/v1/payments/{transaction_id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Answer(202, {"transaction_id": transaction_id, "status": "processing"}, headers)


def _refund_amount(request: RefundRequest, payment: PaymentRecord) -> int | None:
    if request.amount is None:
        return None
    try:
        return to_minor_units(request.amount, payment.currency)
    except MoneyError as exc:
        raise ValidationFailed(
            f"amount: {exc}", errors=[{"param": "amount", "message": str(exc)}], param="amount"
        ) from None


def _result_error(code: str, message: str) -> PaymentServiceError:
    error_type = _RESULT_ERRORS.get(code)
    if error_type is None:
        return InvalidRequest(message, code=code)
    return error_type(message)
