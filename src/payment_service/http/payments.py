"""The payment use case: accept a payment request, route it to the processor, await its answer.

Accepting a payment means: its security code is in the vault, its command is acknowledged by
Kafka (acks=all), and a waiter is registered for its result. Only then can the caller be told
anything but 503. The answer is 200 with the final payment, or 202 with `Location` when the result
has not arrived within the sync timeout: the payment goes on, and GET shows it.

Idempotency-Key (merchant-scoped, Stripe semantics): the transaction id is derived from the key,
a Redis lock refuses concurrent use (409), a stored request hash tells a replay (same answer,
`Idempotent-Replayed: true`) from reuse with another body (422). The merchant's rate limit, that
lock, the marker read and the security code are one Redis round trip (`http/admission.py`).

A payment names its card by `card_data` (sealed here to the processor's public key) or by
`payment_method_id`, a card on file of the same merchant: checked here first (404 if it is not
theirs, `payment_method_detached`, `card_expired`) and again by the processor, which alone can
open its envelope. Its security code is optional.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable

from redis.exceptions import RedisError

from payment_service.cards.crypto import CardSealer
from payment_service.core.errors import (
    CardExpired,
    NotFound,
    PaymentMethodDetached,
    PaymentMethodNotFound,
    ValidationFailed,
    VaultUnavailable,
)
from payment_service.core.ids import new_id
from payment_service.core.masking import SecurityCode
from payment_service.core.ports import (
    Fingerprints,
    PaymentMethodRepository,
    PaymentRepository,
    SecurityCodeStore,
)
from payment_service.core.rules import card_expired
from payment_service.http.admission import Admission, PaymentAdmission
from payment_service.http.answers import Answer, check_hash, processing, replay, result_error
from payment_service.http.idempotency import AcceptedMarkers, IdempotencyLocks
from payment_service.http.intake import payment_command, payment_request_hash
from payment_service.http.request_reply import RequestReply
from payment_service.ops.logcontext import bind
from payment_service.schemas.messages import PaymentResult, ProcessPaymentV1
from payment_service.schemas.payments import PaymentRequest
from payment_service.schemas.views import payment_view

log = logging.getLogger(__name__)

KEY_REUSED = "idempotency_key_reused"  # the transaction exists, with another request body


class PaymentService:
    """`POST /api/v1/payments/process` and `GET /api/v1/payments/{id}`."""

    def __init__(
        self,
        *,
        secret_key: bytes,
        fingerprints: Fingerprints,
        payments: PaymentRepository,
        methods: PaymentMethodRepository,
        vault: SecurityCodeStore,
        sealer: CardSealer,
        locks: IdempotencyLocks,
        markers: AcceptedMarkers,
        admission: PaymentAdmission,
        sender: RequestReply,
    ) -> None:
        self._secret = secret_key
        self._fingerprints = fingerprints
        self._payments = payments
        self._methods = methods
        self._vault = vault
        self._sealer = sealer
        self._locks = locks
        self._markers = markers
        self._admission = admission
        self._sender = sender

    async def process_payment(
        self,
        request: PaymentRequest,
        *,
        merchant_id: str,
        idempotency_key: str | None,
        correlation_id: str,
        actor: str = "api",
    ) -> Answer:
        if request.merchant_id != merchant_id:
            raise ValidationFailed(
                "merchant_id: does not match the API key's merchant",
                errors=[{"param": "merchant_id", "message": "does not match the API key"}],
                param="merchant_id",
            )
        body_hash = payment_request_hash(self._secret, self._fingerprints, request)
        transaction_id = new_id(merchant_id, idempotency_key, "payment")
        bind(transaction_id=transaction_id)
        offered = offered_code(request)
        admission = await self._admission.admit(
            merchant_id, idempotency_key, transaction_id, offered
        )
        if idempotency_key is None or admission.lock is None:
            return await self._dropping_unsent(
                admission,
                self._submit(
                    request, transaction_id, None, body_hash, correlation_id, actor, admission
                ),
            )
        async with self._locks.held(admission.lock, admission.token):
            # Inside the lease: a retry with this key must not see our code and lose it after.
            return await self._dropping_unsent(
                admission,
                self._decide(
                    request, transaction_id, idempotency_key, body_hash, correlation_id, actor,
                    admission,
                ),
            )  # fmt: skip

    async def _decide(
        self,
        request: PaymentRequest,
        transaction_id: str,
        idempotency_key: str,
        body_hash: str,
        correlation_id: str,
        actor: str,
        admission: Admission,
    ) -> Answer:
        """Under the key's lease: a replay, a reuse with another body, or a new payment."""
        merchant_id = request.merchant_id
        existing = await self._payments.get_payment(transaction_id, merchant_id=merchant_id)
        if existing is not None:
            check_hash(existing.request_hash, body_hash)
            return replay(existing, None)
        marker = self._markers.parse(admission.marker, merchant_id)
        if marker is not None:
            if marker.request_hash is not None:
                check_hash(marker.request_hash, body_hash)
            if marker.error is not None:
                raise result_error(marker.error["code"], marker.error["message"])
            return processing(transaction_id, replayed=True)
        return await self._submit(
            request, transaction_id, idempotency_key, body_hash, correlation_id, actor, admission
        )

    async def _dropping_unsent(self, admission: Admission, answer: Awaitable[Answer]) -> Answer:
        """The answer; on the way out, discard a code this request stored but whose command it
        never produced (a replay, a refused card on file)."""
        try:
            return await answer
        finally:
            if admission.code_stored:
                try:
                    await self._vault.discard(admission.transaction_id)
                except VaultUnavailable:
                    log.warning("could not discard an unsent security code; it expires by itself")

    async def _submit(
        self,
        request: PaymentRequest,
        transaction_id: str,
        idempotency_key: str | None,
        body_hash: str,
        correlation_id: str,
        actor: str,
        admission: Admission,
    ) -> Answer:
        """Produce the command (its code is in the vault since the admission), then mark it
        accepted and wait for its result.

        The marker follows the acknowledgement, never precedes it: on every path that does not
        produce the command, nothing of it is left but a security code that expires by itself.
        A crash between the acknowledgement and the marker leaves a command without a marker;
        the retry produces the same transaction again, which the processor's claim makes a no-op.
        """
        code = await self._security_code(request)
        command = payment_command(
            request,
            transaction_id=transaction_id,
            sealer=self._sealer,
            idempotency_key=idempotency_key,
            body_hash=body_hash,
            security_code_in_vault=code is not None,
            requested_by=actor,
        )
        # The admission stored `code` (the offered one, checked by now). From here the command
        # may reach Kafka: the stored code is the processor's.
        admission.code_stored = False
        message = ProcessPaymentV1(data=command).model_dump_json().encode()

        async def accepted() -> None:
            try:
                await self._markers.put(transaction_id, request.merchant_id, body_hash)
            except RedisError:
                # Accepted all the same: a retry without the marker produces it again (a no-op).
                log.warning("could not write the accepted marker")

        # On NotAccepted the code stays, under its TTL: a late acknowledgement means the command
        # may be in Kafka after all, and a retry with the same key finds or re-produces it.
        result = await self._sender.send(
            message,
            transaction_id,
            correlation_id,
            merchant_id=request.merchant_id,
            on_accepted=accepted,
        )
        if result is not None and result.error is not None and result.payment is None:
            await self._refused(result.error.code, transaction_id)
        return _answer(result, transaction_id)

    async def _refused(self, code: str, transaction_id: str) -> None:
        """Clean up after a payment refused before it had a row of its own."""
        if code == KEY_REUSED:
            # The row is another request's: its code and marker are not ours to drop.
            return
        await self._vault.discard(transaction_id)

    async def _security_code(self, request: PaymentRequest) -> SecurityCode | None:
        """The code to vault; for a card on file, after checking the card can be charged."""
        if request.card_data is not None:
            return request.card_data.cvv
        assert request.payment_method_id is not None  # the model requires one of the two
        method = await self._methods.get(request.payment_method_id, merchant_id=request.merchant_id)
        if method is None:
            raise PaymentMethodNotFound(
                f"no payment method {request.payment_method_id!r}", param="payment_method_id"
            )
        if method.envelope is None:
            raise PaymentMethodDetached(
                "this payment method was detached and can no longer be charged",
                param="payment_method_id",
            )
        if card_expired(method.expiry_month, method.expiry_year, dt.datetime.now(dt.UTC).date()):
            raise CardExpired("the card on file has expired", param="payment_method_id")
        wanted = 4 if method.brand == "amex" else 3
        if request.cvv is not None and len(request.cvv.reveal()) != wanted:
            message = f"security code must be {wanted} digits for this card"
            raise ValidationFailed(
                f"cvv: {message}", errors=[{"param": "cvv", "message": message}], param="cvv"
            )
        return request.cvv

    async def get_payment(self, transaction_id: str, *, merchant_id: str) -> Answer:
        payment = await self._payments.get_payment(transaction_id, merchant_id=merchant_id)
        if payment is not None:
            return Answer(200, payment_view(payment).model_dump(mode="json"))
        marker = await self._markers.marker(transaction_id, merchant_id)
        if marker is not None and marker.error is not None:
            body = {"transaction_id": transaction_id, "status": "failed", "error": marker.error}
            return Answer(200, body)
        if marker is not None:
            return Answer(200, {"transaction_id": transaction_id, "status": "pending"})
        raise NotFound(f"no payment {transaction_id!r}", param="transaction_id")


def offered_code(request: PaymentRequest) -> SecurityCode | None:
    """The security code the request carries, checked or not (the admission stores it)."""
    return request.card_data.cvv if request.card_data is not None else request.cvv


def _answer(result: PaymentResult | None, transaction_id: str) -> Answer:
    if result is not None and result.error is not None:
        raise result_error(result.error.code, result.error.message)
    if result is None or not result.final or result.payment is None:
        return processing(transaction_id, replayed=False)
    return Answer(200, result.payment)
