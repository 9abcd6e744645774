"""Ids the core derives: payment and refund ids, and the bank idempotency key of each operation.

Both are deterministic where it matters: an id derived from the merchant's Idempotency-Key names
the same payment on every retry, and a bank key derived from our own id makes a redelivered
command a retry at the bank, never a second charge.
"""

from __future__ import annotations

import secrets
import uuid

_ID_NAMESPACE = uuid.UUID("8f6f2b1e-5c1e-4f0a-9a57-3f1b3d0c2a11")


def new_id(merchant_id: str, idempotency_key: str | None, kind: str) -> str:
    """A payment or refund id: derived from (merchant, key) when keyed, random otherwise."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_ID_NAMESPACE, f"{kind}\x00{merchant_id}\x00{idempotency_key}"))


def new_payment_method_id(merchant_id: str, idempotency_key: str | None) -> str:
    """A card on file's id, `pm_<32 hex>`: derived from (merchant, key) when keyed, else random."""
    if idempotency_key is None:
        return f"pm_{secrets.token_hex(16)}"
    return f"pm_{new_id(merchant_id, idempotency_key, 'payment_method').replace('-', '')}"


def idempotency_key(entity_id: str, operation: str) -> str:
    """The bank idempotency key for `operation` on our entity: `f"{entity_id}:{operation}"`.

    Use the payment's transaction id for authorize and capture (`"txn_123:authorize"`), the
    refund's id for a refund (`"rfd_456:refund"`). Deterministic, so a replayed Kafka message or a
    restarted processor derives the same key and the bank sees a retry, not a new charge.
    """
    if not entity_id or not operation:
        raise ValueError("entity_id and operation must be non-empty")
    return f"{entity_id}:{operation}"
