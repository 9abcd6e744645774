"""Cards on file in PostgreSQL (`payment_methods`), and the custody audit they and the keys write.

The API stores a card on file directly (it moves no money, so no Kafka command): the row, its
Idempotency-Key binding and its `custody_audit` row in one transaction. Detaching destroys the
envelope (NULL, for good) and keeps what may be shown. Every read is merchant-scoped: another
merchant's id reads as missing, so the API answers 404 and the processor refuses the command.

The rewrap job pages through envelopes not under the current key (keyset paging on the id, so
rows that cannot be re-sealed never hide the others) and swaps each one by compare-and-set on
the old envelope, so a card detached or re-sealed meanwhile is left as it is.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

import asyncpg

from payment_service.core.errors import IdempotencyConflict
from payment_service.core.records import NewPaymentMethod, PaymentMethodRecord
from payment_service.storage.errors import translated
from payment_service.storage.idempotency import claim_idempotency_key

_INSERT: Final = """
INSERT INTO payment_methods (payment_method_id, merchant_id, envelope, key_id, fingerprint, brand,
    last4, expiry_month, expiry_year, cardholder_name, metadata, idempotency_key, request_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (payment_method_id) DO NOTHING
RETURNING *"""
_SELECT: Final = "SELECT * FROM payment_methods WHERE payment_method_id = $1 AND merchant_id = $2"
_DETACH: Final = """
UPDATE payment_methods SET envelope = NULL, key_id = NULL, detached_at = now()
WHERE payment_method_id = $1 AND merchant_id = $2 AND detached_at IS NULL
RETURNING *"""
_AUDIT: Final = """
INSERT INTO custody_audit (event_id, action, actor, merchant_id, payment_method_id, key_id, details)
VALUES ($1, $2, $3, $4, $5, $6, $7)"""
_NOT_CURRENT: Final = """
SELECT payment_method_id, envelope FROM payment_methods
WHERE envelope IS NOT NULL AND key_id <> $1 AND payment_method_id > $2
ORDER BY payment_method_id LIMIT $3"""
_SWAP: Final = """
UPDATE payment_methods SET envelope = $3, key_id = $4
WHERE payment_method_id = $1 AND envelope = $2"""
_USAGE: Final = """
SELECT key_id, count(*) AS n FROM payment_methods WHERE envelope IS NOT NULL GROUP BY key_id"""


def _record(row: Any) -> PaymentMethodRecord:
    return PaymentMethodRecord(**dict(row.items()))


async def write_custody_audit(
    executor: asyncpg.Connection | asyncpg.Pool,
    *,
    action: str,
    actor: str,
    merchant_id: str | None = None,
    payment_method_id: str | None = None,
    key_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one row to the insert-only `custody_audit` (no card data, no key material)."""
    await executor.execute(
        _AUDIT, uuid.uuid4(), action, actor, merchant_id, payment_method_id, key_id,
        details or {},
    )  # fmt: skip


class PgPaymentMethods:
    """The `PaymentMethodRepository` port, plus the rewrap job's reads and swaps."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, new: NewPaymentMethod, *, actor: str
    ) -> tuple[PaymentMethodRecord, bool]:
        card = new.card
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                if new.idempotency_key is not None:
                    await claim_idempotency_key(
                        conn, merchant_id=new.merchant_id, key=new.idempotency_key,
                        kind="payment_method", request_hash=new.request_hash,
                        resource_id=new.payment_method_id,
                    )  # fmt: skip
                row = await conn.fetchrow(
                    _INSERT, new.payment_method_id, new.merchant_id, new.envelope, new.key_id,
                    card.fingerprint, card.brand, card.last4, card.expiry_month, card.expiry_year,
                    card.holder_name, dict(new.metadata), new.idempotency_key, new.request_hash,
                )  # fmt: skip
                if row is None:
                    existing = await conn.fetchrow(_SELECT, new.payment_method_id, new.merchant_id)
                    if existing is None or existing["request_hash"] != new.request_hash:
                        raise IdempotencyConflict(
                            "this payment method id was already used for another request",
                            existing_resource_id=new.payment_method_id,
                        )
                    return _record(existing), False
                await write_custody_audit(
                    conn, action="payment_method.created", actor=actor,
                    merchant_id=new.merchant_id, payment_method_id=new.payment_method_id,
                    key_id=new.key_id, details={"brand": card.brand, "last4": card.last4},
                )  # fmt: skip
        return _record(row), True

    async def get(self, payment_method_id: str, *, merchant_id: str) -> PaymentMethodRecord | None:
        with translated():
            row = await self._pool.fetchrow(_SELECT, payment_method_id, merchant_id)
        return _record(row) if row is not None else None

    async def detach(
        self, payment_method_id: str, *, merchant_id: str, actor: str
    ) -> PaymentMethodRecord | None:
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_DETACH, payment_method_id, merchant_id)
                if row is None:
                    row = await conn.fetchrow(_SELECT, payment_method_id, merchant_id)
                    return _record(row) if row is not None else None
                await write_custody_audit(
                    conn, action="payment_method.detached", actor=actor,
                    merchant_id=merchant_id, payment_method_id=payment_method_id,
                )  # fmt: skip
        return _record(row)

    async def not_under(self, current_kid: str, *, after: str, limit: int) -> list[tuple[str, str]]:
        """(id, envelope) of cards on file sealed under a key other than `current_kid`, by id."""
        with translated():
            rows = await self._pool.fetch(_NOT_CURRENT, current_kid, after, limit)
        return [(r["payment_method_id"], r["envelope"]) for r in rows]

    async def swap_envelope(
        self, payment_method_id: str, *, old: str, new: str, new_kid: str
    ) -> bool:
        """Replace the envelope if it is still `old`; False when it changed meanwhile."""
        with translated():
            status = await self._pool.execute(_SWAP, payment_method_id, old, new, new_kid)
        return bool(status == "UPDATE 1")

    async def key_usage(self) -> dict[str, int]:
        """How many cards on file each key id seals."""
        with translated():
            rows = await self._pool.fetch(_USAGE)
        return {r["key_id"]: r["n"] for r in rows}
