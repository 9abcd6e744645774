"""Turn a validated HTTP request into a Kafka command: request hashes, the sealed card.

Pure functions (sealing reads the current public key). The API can seal and never open: the
card number goes to the processor sealed for the transaction, or not at all when the payment
names a card on file. The ids come from `core.ids.new_id` (derived from the merchant's
Idempotency-Key when one is given, so a retried request names the same payment and the claim
makes it a no-op).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from payment_service.cards.crypto import CardSealer
from payment_service.core.ports import Fingerprints
from payment_service.schemas.messages import EncryptedCard, ProcessPayment, RefundPayment
from payment_service.schemas.payment_methods import PaymentMethodRequest
from payment_service.schemas.payments import PaymentRequest, RefundRequest


def payment_request_hash(
    secret_key: bytes, fingerprints: Fingerprints, request: PaymentRequest
) -> str:
    """What identifies a payment request for Idempotency-Key, without its card secrets.

    Computed from the parsed request, so key order and number formatting do not matter. The
    card number enters only as its keyed fingerprint (`CARD_FINGERPRINT_KEY`) and the security
    code not at all: this hash is stored for as long as the payment, and a hash over a 3-digit
    code could be reversed by trying all thousand values.
    """
    data = request.model_dump(mode="json")
    data["amount"] = request.amount_minor
    if request.card_data is not None:
        data["card_data"]["card_number"] = fingerprints.fingerprint(request.card_data.card_number)
        del data["card_data"]["cvv"]
    for absent in ("card_data", "payment_method_id"):
        if data[absent] is None:
            del data[absent]
    del data["cvv"]
    if data["capture_method"] == "automatic":
        del data["capture_method"]  # the default: a key used before manual capture still fits
    return _keyed_hash(secret_key, "/api/v1/payments/process", data)


def payment_method_request_hash(
    secret_key: bytes, fingerprints: Fingerprints, request: PaymentMethodRequest
) -> str:
    """What identifies a card-on-file request for Idempotency-Key (same rules as payments)."""
    data = request.model_dump(mode="json")
    data["card_data"]["card_number"] = fingerprints.fingerprint(request.card_data.card_number)
    del data["card_data"]["cvv"]
    return _keyed_hash(secret_key, "/api/v1/payment_methods", data)


def refund_request_hash(secret_key: bytes, transaction_id: str, request: RefundRequest) -> str:
    """What identifies a refund request for Idempotency-Key (its payment, amount, reason...)."""
    data = request.model_dump(mode="json")
    data["amount"] = None if request.amount is None else str(request.amount.normalize())
    return _keyed_hash(secret_key, f"/api/v1/payments/{transaction_id}/refund", data)


def capture_request_hash(
    secret_key: bytes, transaction_id: str, action: str, data: dict[str, Any]
) -> str:
    """What identifies a capture or cancel request for Idempotency-Key."""
    return _keyed_hash(secret_key, f"/api/v1/payments/{transaction_id}/{action}", data)


def _keyed_hash(secret_key: bytes, path: str, data: dict[str, Any]) -> str:
    canonical = json.dumps({"path": path, "request": data}, sort_keys=True, separators=(",", ":"))
    return hmac.new(secret_key, canonical.encode(), hashlib.sha256).hexdigest()


def payment_command(
    request: PaymentRequest,
    *,
    transaction_id: str,
    sealer: CardSealer,
    idempotency_key: str | None,
    body_hash: str,
    security_code_in_vault: bool,
    requested_by: str | None = None,
) -> ProcessPayment:
    """The `payment.process/v1` body; the processor computes the fingerprint after opening."""
    card = request.card_data
    sealed = (
        EncryptedCard(
            number_envelope=sealer.seal_card_number(card.card_number, transaction_id),
            brand=card.card_number.brand,
            last4=card.card_number.last4,
            expiry_month=card.expiry_month,
            expiry_year=card.expiry_year,
            holder_name=card.cardholder_name,
        )
        if card is not None
        else None
    )
    return ProcessPayment(
        transaction_id=transaction_id,
        merchant_id=request.merchant_id,
        amount_minor=request.amount_minor,
        currency=request.currency,
        payment_method=request.payment_method,
        card=sealed,
        payment_method_id=request.payment_method_id,
        description=request.description,
        metadata=request.metadata,
        idempotency_key=idempotency_key,
        request_hash=body_hash,
        security_code_in_vault=security_code_in_vault,
        requested_by=_requested_by(requested_by),
        capture_method=request.capture_method,
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
    requested_by: str | None = None,
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
        requested_by=_requested_by(requested_by),
    )


def _requested_by(actor: str | None) -> str | None:
    """`api:<key id>` as the command carries it; the bare `api` (no key id) is left out."""
    return actor if actor is not None and actor.startswith("api:") else None
