"""Turn a validated HTTP request into a Kafka command: request hashes, the encrypted card.

Pure functions. The ids come from `core.ids.new_id` (derived from the merchant's Idempotency-Key
when one is given, so a retried request names the same payment and the claim makes it a no-op).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from payment_service.cards.crypto import KeyRing, encrypt_card_number, fingerprint
from payment_service.schemas.messages import EncryptedCard, ProcessPayment, RefundPayment
from payment_service.schemas.payments import PaymentRequest, RefundRequest


def payment_request_hash(secret_key: bytes, request: PaymentRequest) -> str:
    """What identifies a payment request for Idempotency-Key, without its card secrets.

    Computed from the parsed request, so key order and number formatting do not matter. The
    card number enters only as its keyed fingerprint and the security code not at all: this
    hash is stored for as long as the payment, and a hash over a 3-digit code could be reversed
    by trying all thousand values.
    """
    data = request.model_dump(mode="json")
    data["amount"] = request.amount_minor
    data["card_data"]["card_number"] = fingerprint(secret_key, request.card_data.card_number)
    del data["card_data"]["cvv"]
    return _keyed_hash(secret_key, "/api/v1/payments/process", data)


def refund_request_hash(secret_key: bytes, transaction_id: str, request: RefundRequest) -> str:
    """What identifies a refund request for Idempotency-Key (its payment, amount, reason...)."""
    data = request.model_dump(mode="json")
    data["amount"] = None if request.amount is None else str(request.amount.normalize())
    return _keyed_hash(secret_key, f"/api/v1/payments/{transaction_id}/refund", data)


def _keyed_hash(secret_key: bytes, path: str, data: dict[str, Any]) -> str:
    canonical = json.dumps({"path": path, "request": data}, sort_keys=True, separators=(",", ":"))
    return hmac.new(secret_key, canonical.encode(), hashlib.sha256).hexdigest()


def payment_command(
    request: PaymentRequest,
    *,
    transaction_id: str,
    ring: KeyRing,
    secret_key: bytes,
    idempotency_key: str | None,
    body_hash: str,
) -> ProcessPayment:
    card = request.card_data
    return ProcessPayment(
        transaction_id=transaction_id,
        merchant_id=request.merchant_id,
        amount_minor=request.amount_minor,
        currency=request.currency,
        payment_method=request.payment_method,
        card=EncryptedCard(
            number_envelope=encrypt_card_number(ring, card.card_number, transaction_id),
            fingerprint=fingerprint(secret_key, card.card_number),
            brand=card.card_number.brand,
            last4=card.card_number.last4,
            expiry_month=card.expiry_month,
            expiry_year=card.expiry_year,
            holder_name=card.cardholder_name,
        ),
        description=request.description,
        metadata=request.metadata,
        idempotency_key=idempotency_key,
        request_hash=body_hash,
        security_code_in_vault=True,
    )


def refund_command(
    request: RefundRequest,
    *,
    refund_id: str,
    transaction_id: str,
    merchant_id: str,
    amount_minor: int | None,
    idempotency_key: str | None,
    body_hash: str,
) -> RefundPayment:
    return RefundPayment(
        refund_id=refund_id,
        transaction_id=transaction_id,
        merchant_id=merchant_id,
        amount_minor=amount_minor,
        reason=request.reason,
        metadata=request.metadata,
        idempotency_key=idempotency_key,
        request_hash=body_hash,
    )
