"""Cards on file (`/api/v1/payment_methods`): store, read and detach, merchant-scoped.

Storing seals the card number to the processor's public key, bound to the new `pm_` id (purpose
`card_on_file`), and writes the row directly: it moves no money, so it needs no command on
Kafka. The API computes the fingerprint (it has the number in hand) and keeps no way to open the
envelope again. The security code is optional and never stored.

Idempotency-Key as on payments: the id is derived from (merchant, key), the same Redis lock
refuses concurrent use (409), the stored request hash tells a replay (the card as it stands,
`Idempotent-Replayed: true`) from reuse with another body (422). Detaching destroys the envelope;
doing it again answers the same. Another merchant's id is 404 on every endpoint.
"""

from __future__ import annotations

from payment_service.cards.crypto import CardSealer
from payment_service.cards.envelope import key_id_of
from payment_service.core.errors import PaymentMethodNotFound, ValidationFailed
from payment_service.core.ids import new_payment_method_id
from payment_service.core.ports import Fingerprints, PaymentMethodRepository
from payment_service.core.records import CardDetails, NewPaymentMethod, PaymentMethodRecord
from payment_service.http.answers import REPLAYED, Answer, check_hash
from payment_service.http.idempotency import IdempotencyLocks
from payment_service.http.intake import payment_method_request_hash
from payment_service.schemas.payment_methods import PaymentMethodRequest
from payment_service.schemas.views import payment_method_view


def _shown(method: PaymentMethodRecord, *, replayed: bool = False) -> Answer:
    headers = dict(REPLAYED) if replayed else {}
    return Answer(200, payment_method_view(method).model_dump(mode="json"), headers)


class PaymentMethodService:
    """`POST /api/v1/payment_methods`, `GET` and `DELETE /api/v1/payment_methods/{id}`."""

    def __init__(
        self,
        *,
        secret_key: bytes,
        fingerprints: Fingerprints,
        sealer: CardSealer,
        methods: PaymentMethodRepository,
        locks: IdempotencyLocks,
    ) -> None:
        self._secret = secret_key
        self._fingerprints = fingerprints
        self._sealer = sealer
        self._methods = methods
        self._locks = locks

    async def create(
        self,
        request: PaymentMethodRequest,
        *,
        merchant_id: str,
        idempotency_key: str | None,
        actor: str,
    ) -> Answer:
        if request.merchant_id is not None and request.merchant_id != merchant_id:
            raise ValidationFailed(
                "merchant_id: does not match the API key's merchant",
                errors=[{"param": "merchant_id", "message": "does not match the API key"}],
                param="merchant_id",
            )
        body_hash = payment_method_request_hash(self._secret, self._fingerprints, request)
        method_id = new_payment_method_id(merchant_id, idempotency_key)
        if idempotency_key is None:
            return await self._store(request, method_id, merchant_id, None, body_hash, actor)
        async with self._locks.hold(merchant_id, idempotency_key, None):
            existing = await self._methods.get(method_id, merchant_id=merchant_id)
            if existing is not None:
                check_hash(existing.request_hash, body_hash)
                return _shown(existing, replayed=True)
            return await self._store(
                request, method_id, merchant_id, idempotency_key, body_hash, actor
            )

    async def _store(
        self,
        request: PaymentMethodRequest,
        method_id: str,
        merchant_id: str,
        idempotency_key: str | None,
        body_hash: str,
        actor: str,
    ) -> Answer:
        card = request.card_data
        envelope = self._sealer.seal_card_on_file(card.card_number, method_id)
        new = NewPaymentMethod(
            payment_method_id=method_id,
            merchant_id=merchant_id,
            envelope=envelope,
            key_id=key_id_of(envelope),
            card=CardDetails(
                brand=card.card_number.brand,
                last4=card.card_number.last4,
                expiry_month=card.expiry_month,
                expiry_year=card.expiry_year,
                holder_name=card.cardholder_name,
                fingerprint=self._fingerprints.fingerprint(card.card_number),
            ),
            metadata=request.metadata,
            idempotency_key=idempotency_key,
            request_hash=body_hash,
        )
        stored, created = await self._methods.create(new, actor=actor)
        return _shown(stored, replayed=not created)

    async def get(self, method_id: str, *, merchant_id: str) -> Answer:
        method = await self._methods.get(method_id, merchant_id=merchant_id)
        if method is None:
            raise PaymentMethodNotFound(f"no payment method {method_id!r}", param="id")
        return _shown(method)

    async def detach(self, method_id: str, *, merchant_id: str, actor: str) -> Answer:
        method = await self._methods.detach(method_id, merchant_id=merchant_id, actor=actor)
        if method is None:
            raise PaymentMethodNotFound(f"no payment method {method_id!r}", param="id")
        return _shown(method)
